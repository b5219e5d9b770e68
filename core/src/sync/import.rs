//! Import: bring foreign origins' sessions and curation events into the local archive.
//!
//! [`Import`] is a state machine. The host calls [`Import::poll`] for the next batch of store
//! requests, answers them in order with [`Import::handle`], and repeats until `poll` returns
//! [`Step::Done`] with the report: per-session apply units, the events to replay, and every
//! artifact that was quarantined (corrupt: id mismatch, bad signature, decode error, foreign key)
//! or deferred (missing yet, newer version). One bad artifact affects only what depends on it.
//!
//! Order: list every origin's roots in one paginated listing of `roots/`; fetch the new roots;
//! list and fetch new event batches (so purges seen now block imports in the same run); fetch the
//! changed buckets, the changed manifests, and the segments not imported yet.
//!
//! Resuming: the report carries the new [`ImportState`]. A host persists it after applying the
//! units (each unit is idempotent: "replace messages from ordinal N on"). An origin's root is
//! recorded as imported only when every session it changed was imported, so deferred and
//! quarantined sessions are retried by the next run, and sessions already done are skipped.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::checkpoint::{BucketEntry, EventsMark, Root};
use crate::error::Error;
use crate::events::Op;
use crate::frame::SharedDecompressor;
use crate::id::ArtifactId;
use crate::keyring::KeyRing;
use crate::ledger::SignedEvent;
use crate::manifest::Manifest;
use crate::model::{Message, Session, UsageEvent};
use crate::names::{ArtifactKey, NativeId, OriginId, SessionGid};
use crate::signature::PublicKey;
pub use crate::sync::problem::Problem;
use crate::sync::roots::{Newest, RootWalk, RootsListing};
use crate::sync::store::{ListPage, Request, Response, Store, StoreId, StoreRequest, answer_one};

/// What was imported of one foreign session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedSession {
    pub manifest: ArtifactId,
    pub segments: Vec<ArtifactId>,
}

/// Import progress of one foreign origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginProgress {
    /// The last root whose every session was imported.
    pub root: Option<ArtifactKey>,
    pub bits: u8,
    pub buckets: BTreeMap<u32, ArtifactId>,
    pub sessions: BTreeMap<NativeId, ImportedSession>,
    /// Event batches handled (fetched, verified, handed to the replay). A set, not a
    /// watermark: a dumb transport delivers batches in any order, and a batch that failed
    /// (corrupt, missing) must be retried, never stepped over by a later one (issue 17 item 4).
    #[serde(default)]
    pub events_seen: BTreeSet<String>,
    /// The events mark of `root`.
    #[serde(default)]
    pub root_events: EventsMark,
    /// A root that states its events mark and whose batches up to the mark were all handled:
    /// while it stays the origin's newest root, its batches are not listed again.
    #[serde(default)]
    pub events_root: Option<ArtifactKey>,
}

/// The host's persisted import state (it survives a rebuild of the derived tables).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportState {
    pub origins: BTreeMap<OriginId, OriginProgress>,
    pub keyring: KeyRing,
}

impl ImportState {
    /// The user's decision that `key` signs for `origin` from now on. When that changes the
    /// pinned key, the origin's imported root is forgotten (its sessions stay): a machine that
    /// lost its key starts its roots over at sequence 1, below the old key's, and the next
    /// import walks the origin's roots again, refusing the old key's and taking the newest that
    /// the new key signed.
    pub fn trust(&mut self, origin: OriginId, key: PublicKey) {
        if self.keyring.get(&origin) != Some(&key)
            && let Some(progress) = self.origins.get_mut(&origin)
        {
            progress.root = None;
            progress.events_root = None;
        }
        self.keyring.trust(origin, key);
    }

    /// The user's decision to accept nothing more signed for `origin`.
    pub fn revoke(&mut self, origin: OriginId) {
        self.keyring.revoke(origin);
    }
}

/// How to apply a unit: delete the session's messages from `from_ordinal` on (all of them for
/// 0) and insert `messages`; replace the record and usage events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyUnit {
    pub gid: SessionGid,
    pub session: Session,
    pub from_ordinal: u64,
    pub messages: Vec<Message>,
    pub message_count: u64,
    pub usage_events: Vec<UsageEvent>,
    pub manifest: ArtifactId,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub units: Vec<ApplyUnit>,
    pub events: Vec<SignedEvent>,
    pub problems: Vec<Problem>,
    /// Newest roots that sort below the root already imported for their origin: ignored, so
    /// a late or replayed old root never rolls sessions back.
    pub older_roots: Vec<String>,
    /// Artifacts fetched and verified.
    pub fetched: usize,
    /// Store requests made (lists and gets).
    pub requests: usize,
    pub state: ImportState,
}

pub enum Step {
    Requests(Vec<StoreRequest>),
    Done(Box<ImportReport>),
}

/// An artifact the import fetched and verified, with its stored bytes, for a caller that
/// writes what it imports through to another store ([`Import::writing_through`]). A store
/// may receive it once every artifact of `after` landed there: a manifest comes after its
/// segments, so a store never holds a manifest whose segments it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key: ArtifactKey,
    pub bytes: Vec<u8>,
    pub after: Vec<ArtifactKey>,
}

#[derive(Debug, Clone)]
enum Stage {
    Roots,
    ListEvents,
    FetchEvents,
    FetchBuckets,
    FetchManifests,
    FetchSegments,
    Done,
}

/// An origin whose newest root differs from the imported one.
#[derive(Debug)]
struct Candidate {
    key: ArtifactKey,
    root: Option<Root>,
    complete: bool,
    entries: Vec<BucketEntry>,
}

#[derive(Debug)]
struct Wanted {
    origin: OriginId,
    manifest: Manifest,
    manifest_id: ArtifactId,
    from_index: usize,
    failed: bool,
    /// The manifest's stored bytes, kept when writing through.
    stored: Option<Vec<u8>>,
}

pub struct Import {
    store: StoreId,
    purged: BTreeSet<SessionGid>,
    stage: Stage,
    issued: bool,
    outstanding: Vec<Request>,
    walk: RootWalk,
    candidates: BTreeMap<OriginId, Candidate>,
    events_listing: BTreeMap<OriginId, (Option<String>, Vec<String>)>,
    wanted: Vec<Wanted>,
    window_bytes: u64,
    /// `wanted[..window_end]` had their segments requested in the current round.
    window_end: usize,
    segments: BTreeMap<ArtifactKey, Option<Vec<Message>>>,
    /// Canonical sizes the manifests declare for the segments requested.
    declared: BTreeMap<ArtifactKey, u64>,
    /// Origins with a session that could not be imported this run: their root is not recorded.
    incomplete: BTreeSet<OriginId>,
    /// Origins whose batches are listed this run: their newest root and its events mark.
    event_marks: BTreeMap<OriginId, (ArtifactKey, EventsMark)>,
    /// Origins with a batch that could not be listed, fetched or verified this run.
    events_failed: BTreeSet<OriginId>,
    decoder: Option<SharedDecompressor>,
    /// Hand out what was verified ([`Import::writing_through`]).
    write_through: bool,
    verified: Vec<Verified>,
    /// Keep the bucket entries that carry a listing ([`Import::listing_ahead`]).
    list_ahead: bool,
    listed: Vec<(OriginId, BucketEntry)>,
    report: ImportReport,
}

/// Segment bytes fetched per round: bounds what an import holds in memory at once (a host
/// that drains [`Import::take_units`] after each round keeps only one window of messages).
/// The default of [`crate::sync::engine::SyncEngine::with_import_window`].
pub const SEGMENT_WINDOW_BYTES: u64 = 32 << 20;

fn key_of(key: &str) -> Option<ArtifactKey> {
    key.parse().ok()
}

impl Import {
    /// `purged`: sessions the local ledger has purged; they are never imported again.
    pub fn new(local: OriginId, state: ImportState, purged: BTreeSet<SessionGid>) -> Self {
        Self::walking(state, purged, Some(local))
    }

    /// Like [`Import::new`], but the local origin's own sessions and edit batches are
    /// imported too (a rebuilt archive restores them from the mirror).
    pub fn restoring(state: ImportState, purged: BTreeSet<SessionGid>) -> Self {
        Self::walking(state, purged, None)
    }

    /// An import of every origin's roots except `skipped`'s.
    fn walking(
        state: ImportState,
        purged: BTreeSet<SessionGid>,
        skipped: Option<OriginId>,
    ) -> Self {
        let floors = state
            .origins
            .iter()
            .filter_map(|(o, p)| p.root.clone().map(|r| (o.clone(), r)))
            .collect();
        let mut walk = RootWalk::new(StoreId::Mirror, None).with_floors(floors);
        if let Some(origin) = skipped {
            walk = walk.skip(origin);
        }
        Import {
            store: StoreId::Mirror,
            purged,
            stage: Stage::Roots,
            issued: false,
            outstanding: Vec::new(),
            walk,
            candidates: BTreeMap::new(),
            events_listing: BTreeMap::new(),
            wanted: Vec::new(),
            window_bytes: SEGMENT_WINDOW_BYTES,
            window_end: 0,
            segments: BTreeMap::new(),
            declared: BTreeMap::new(),
            incomplete: BTreeSet::new(),
            event_marks: BTreeMap::new(),
            events_failed: BTreeSet::new(),
            decoder: None,
            write_through: false,
            verified: Vec::new(),
            list_ahead: false,
            listed: Vec::new(),
            report: ImportReport {
                state,
                ..ImportReport::default()
            },
        }
    }

    /// Imports from `store` (default: the mirror).
    pub fn from_store(mut self, store: StoreId) -> Self {
        self.store = store;
        self.walk = self.walk.on_store(store);
        self
    }

    /// Takes the store's roots from a listing already made (the engine lists each store's
    /// roots once per run).
    pub fn with_roots(mut self, listing: &RootsListing) -> Self {
        self.store = listing.store;
        let walk = std::mem::replace(&mut self.walk, RootWalk::new(self.store, None));
        self.walk = walk.fed(listing);
        self
    }

    /// Imports only these origins (the engine's fallback import from the target).
    pub fn only(mut self, origins: BTreeSet<OriginId>) -> Self {
        self.walk = self.walk.only(origins);
        self
    }

    /// Leaves these origins alone (the engine imported them from the target already).
    pub fn except(mut self, origins: BTreeSet<OriginId>) -> Self {
        for origin in origins {
            self.walk = self.walk.skip(origin);
        }
        self
    }

    /// Decodes segments with a host's zstd decoder (see [`crate::frame::Decompressor`]).
    pub fn with_decompressor(mut self, decoder: Option<SharedDecompressor>) -> Self {
        self.decoder = decoder;
        self
    }

    /// Keeps the stored bytes of the segments, manifests and event batches it verifies, for
    /// [`Import::take_verified`]: the engine's import ahead of the relay writes them through
    /// to the mirror, so the relay that follows need not fetch them again. A manifest is handed
    /// out only with every segment it names (imported this run), never a bucket or a root:
    /// those name more than an import may fetch.
    pub fn writing_through(mut self) -> Self {
        self.write_through = true;
        self
    }

    /// Keeps the entries of the buckets it fetches that carry a listing, for
    /// [`Import::take_listed`] (a host that shows a list while it syncs).
    pub fn listing_ahead(mut self, on: bool) -> Self {
        self.list_ahead = on;
        self
    }

    /// What was verified since the last call ([`Import::writing_through`]), in the order a
    /// store may receive it.
    pub fn take_verified(&mut self) -> Vec<Verified> {
        std::mem::take(&mut self.verified)
    }

    /// Bucket entries with a listing fetched since the last call ([`Import::listing_ahead`]).
    pub fn take_listed(&mut self) -> Vec<(OriginId, BucketEntry)> {
        std::mem::take(&mut self.listed)
    }

    /// Sets how many segment bytes one round fetches (at least one session per round).
    pub fn with_segment_window(mut self, bytes: u64) -> Self {
        self.window_bytes = bytes;
        self
    }

    /// The next requests, or the report when there is nothing left to do. Calling it again
    /// before [`Import::handle`] returns the same requests.
    pub fn poll(&mut self) -> Step {
        loop {
            if !self.outstanding.is_empty() {
                let store = self.store;
                return Step::Requests(
                    self.outstanding
                        .iter()
                        .map(|request| StoreRequest {
                            store,
                            request: request.clone(),
                        })
                        .collect(),
                );
            }
            if let Stage::Done = self.stage {
                return Step::Done(Box::new(self.finish()));
            }
            if !self.issued {
                self.issued = true;
                self.outstanding = self.requests_for_stage();
                continue;
            }
            // The stage's requests were answered: list further pages, or move on.
            self.issued = false;
            if !self.more_pages() {
                self.advance();
            }
        }
    }

    fn more_pages(&self) -> bool {
        match self.stage {
            Stage::Roots => !self.walk.is_done(),
            Stage::ListEvents => self
                .events_listing
                .values()
                .any(|(after, _)| after.as_deref() != Some("")),
            Stage::FetchSegments => self.window_end < self.wanted.len(),
            _ => false,
        }
    }

    fn advance(&mut self) {
        self.stage = match self.stage {
            Stage::Roots => {
                self.walked();
                Stage::ListEvents
            }
            Stage::ListEvents => Stage::FetchEvents,
            Stage::FetchEvents => Stage::FetchBuckets,
            Stage::FetchBuckets => Stage::FetchManifests,
            Stage::FetchManifests => Stage::FetchSegments,
            Stage::FetchSegments | Stage::Done => Stage::Done,
        };
    }

    fn requests_for_stage(&mut self) -> Vec<Request> {
        match self.stage {
            Stage::Roots => self
                .walk
                .requests()
                .into_iter()
                .map(|r| r.request)
                .collect(),
            Stage::ListEvents => self
                .events_listing
                .iter()
                .filter_map(|(origin, (after, _))| {
                    if after.as_deref() == Some("") {
                        return None;
                    }
                    Some(Request::List {
                        prefix: ArtifactKey::events_prefix(origin),
                        start_after: after.clone(),
                    })
                })
                .collect(),
            Stage::FetchEvents => {
                let keys: Vec<String> = self
                    .events_listing
                    .values_mut()
                    .flat_map(|(_, found)| std::mem::take(found))
                    .collect();
                keys.into_iter().map(Request::get).collect()
            }
            Stage::FetchBuckets => {
                let mut out = Vec::new();
                for (origin, c) in &self.candidates {
                    let Some(root) = &c.root else { continue };
                    let progress = self.report.state.origins.get(origin);
                    for b in root.buckets.iter() {
                        let same_layout = progress.is_some_and(|p| p.bits == root.bits);
                        if same_layout
                            && progress.and_then(|p| p.buckets.get(&b.index)) == Some(&b.id)
                        {
                            continue;
                        }
                        out.push(Request::get(
                            ArtifactKey::Bucket {
                                origin: origin.clone(),
                                id: b.id,
                            }
                            .to_string(),
                        ));
                    }
                }
                out
            }
            Stage::FetchManifests => {
                let mut out = Vec::new();
                for (origin, c) in &mut self.candidates {
                    for e in std::mem::take(&mut c.entries) {
                        let gid = SessionGid::new(origin.clone(), e.session.clone());
                        if self.purged.contains(&gid) {
                            continue;
                        }
                        let done = self
                            .report
                            .state
                            .origins
                            .get(origin)
                            .and_then(|p| p.sessions.get(&e.session))
                            .is_some_and(|s| s.manifest == e.manifest);
                        if !done {
                            out.push(Request::get(
                                ArtifactKey::Manifest {
                                    origin: origin.clone(),
                                    id: e.manifest,
                                }
                                .to_string(),
                            ));
                        }
                    }
                }
                out
            }
            Stage::FetchSegments => {
                // The previous window's segments are all in: hand its sessions out.
                self.complete_window();
                let mut keys: BTreeMap<ArtifactKey, u64> = BTreeMap::new();
                let mut bytes = 0u64;
                while self.window_end < self.wanted.len()
                    && (bytes < self.window_bytes || self.window_end == 0)
                {
                    let w = &self.wanted[self.window_end];
                    self.window_end += 1;
                    if w.failed {
                        continue;
                    }
                    for seg in &w.manifest.segments[w.from_index..] {
                        let key = ArtifactKey::Segment {
                            origin: w.origin.clone(),
                            id: seg.id,
                        };
                        if !self.segments.contains_key(&key) && !keys.contains_key(&key) {
                            keys.insert(key, seg.bytes);
                            bytes += seg.bytes;
                        }
                    }
                }
                // Declared sizes bound what is read (and decoded), so a manifest that
                // understates them cannot make a window hold more (issue 17 item 6).
                self.declared
                    .extend(keys.iter().map(|(k, d)| (k.clone(), *d)));
                keys.into_iter()
                    .map(|(k, declared)| Request::get_declared(k.to_string(), declared))
                    .collect()
            }
            Stage::Done => Vec::new(),
        }
    }

    /// Feeds the responses to the requests of the last [`Import::poll`], in the same order.
    pub fn handle(&mut self, responses: Vec<Response>) {
        let requests = std::mem::take(&mut self.outstanding);
        if let Stage::Roots = self.stage {
            self.walk.handle(responses, &mut self.report.state.keyring);
            return;
        }
        self.report.requests += requests.len();
        for (request, response) in requests.into_iter().zip(responses) {
            match (request, response) {
                (Request::List { prefix, .. }, Response::Listed(page)) => {
                    self.listed(&prefix, page)
                }
                (Request::List { prefix, .. }, Response::Failed(e)) => {
                    self.report.problems.push(Problem::store(&e));
                    if let Some(origin) = self.events_origin(&prefix) {
                        self.events_failed.insert(origin);
                    }
                    self.listed(&prefix, ListPage::default());
                }
                (Request::Get { key, .. }, Response::Got(bytes)) => self.got(&key, bytes),
                (Request::Get { key, max_bytes }, Response::TooLarge(size)) => {
                    self.report.problems.push(Problem::rejected(
                        &key,
                        &Error::SizeLimit {
                            kind: "artifact (as referenced)",
                            limit: max_bytes,
                            actual: size,
                        },
                    ));
                    self.mark_failed_text(&key);
                }
                (Request::Get { key, .. }, Response::Failed(e)) => {
                    self.report.problems.push(Problem::store(&e));
                    self.mark_failed_text(&key);
                }
                (request, _) => {
                    self.report.problems.push(Problem::malformed(
                        request.subject(),
                        "the store answered with a response of the wrong kind",
                    ));
                    self.mark_failed_text(request.subject());
                }
            }
        }
    }

    fn listed(&mut self, prefix: &str, page: ListPage) {
        let last = page.entries.last().map(|l| l.key.clone());
        let more = page.truncated && last.is_some();
        let Some(origin) = self.events_origin(prefix) else {
            return;
        };
        let seen = self
            .report
            .state
            .origins
            .get(&origin)
            .map(|p| &p.events_seen);
        let mut found: Vec<String> = page
            .entries
            .iter()
            .filter(|e| matches!(key_of(&e.key), Some(ArtifactKey::Events { .. })))
            .filter(|e| seen.is_none_or(|s| !s.contains(&e.key)))
            .map(|e| e.key.clone())
            .collect();
        if let Some((after, list)) = self.events_listing.get_mut(&origin) {
            list.append(&mut found);
            *after = if more { last } else { Some(String::new()) };
        }
    }

    /// The origin whose events listing `prefix` is.
    fn events_origin(&self, prefix: &str) -> Option<OriginId> {
        self.events_listing
            .keys()
            .find(|o| ArtifactKey::events_prefix(o) == prefix)
            .cloned()
    }

    fn got(&mut self, key_text: &str, bytes: Option<Vec<u8>>) {
        let Some(key) = key_of(key_text) else { return };
        let origin = key.origin().clone();
        let Some(bytes) = bytes else {
            self.missing(&key, key_text);
            return;
        };
        if let Some(declared) = self.declared.remove(&key)
            && let Ok((header, _)) = crate::frame::read_header(&bytes)
            && header.canonical_len > declared
        {
            let error = Error::SizeLimit {
                kind: "segment (as its manifest declares)",
                limit: declared,
                actual: header.canonical_len,
            };
            self.failed(&key, key_text, &error);
            return;
        }
        let opened = Artifact::open_with(&key, &bytes, self.decoder.as_deref().map(|d| d as _));
        let artifact = match opened {
            Ok(a) => {
                self.report.fetched += 1;
                a
            }
            Err(e) => {
                self.failed(&key, key_text, &e);
                return;
            }
        };
        match artifact {
            // Roots come through the walk only.
            Artifact::Root { .. } => {}
            Artifact::Events(batch) => {
                if let Err(e) = self.report.state.keyring.check(&origin, &batch.signer) {
                    self.failed(&key, key_text, &e);
                    return;
                }
                if self.write_through {
                    self.verified.push(Verified {
                        key: key.clone(),
                        bytes,
                        after: Vec::new(),
                    });
                }
                for event in &batch.batch.events {
                    if event.op == Op::Purge {
                        self.purged.insert(event.session.clone());
                    }
                }
                self.report.events.extend(batch.signed_events());
                self.report
                    .state
                    .origins
                    .entry(origin.clone())
                    .or_default()
                    .events_seen
                    .insert(key_text.to_owned());
            }
            Artifact::Bucket(bucket) => {
                if let Some(c) = self.candidates.get_mut(&origin) {
                    if self.list_ahead {
                        self.listed
                            .extend(bucket.listed().map(|e| (origin.clone(), e.clone())));
                    }
                    c.entries.extend(bucket.entries);
                }
            }
            Artifact::Manifest(manifest) => {
                let stored = self.write_through.then_some(bytes);
                self.manifest(origin, key.id(), *manifest, stored)
            }
            Artifact::Segment(segment) => {
                if self.write_through {
                    self.verified.push(Verified {
                        key: key.clone(),
                        bytes,
                        after: Vec::new(),
                    });
                }
                self.segments.insert(key, Some(segment.messages));
            }
        }
    }

    fn manifest(
        &mut self,
        origin: OriginId,
        id: ArtifactId,
        manifest: Manifest,
        stored: Option<Vec<u8>>,
    ) {
        let previous = self
            .report
            .state
            .origins
            .get(&origin)
            .and_then(|p| p.sessions.get(&manifest.session.native_id));
        let new_ids: Vec<ArtifactId> = manifest.segments.iter().map(|s| s.id).collect();
        // Keep the longest prefix of segments already imported, but never past the old open
        // (last) segment, which a newer manifest may have replaced.
        let from_index = previous.map_or(0, |p| {
            new_ids
                .iter()
                .zip(&p.segments)
                .take_while(|(a, b)| a == b)
                .count()
        });
        self.wanted.push(Wanted {
            origin,
            manifest,
            manifest_id: id,
            from_index,
            failed: false,
            stored,
        });
    }

    fn missing(&mut self, key: &ArtifactKey, text: &str) {
        self.report.problems.push(Problem::missing(text));
        self.mark_failed(key);
    }

    fn failed(&mut self, key: &ArtifactKey, text: &str, error: &Error) {
        self.report.problems.push(Problem::rejected(text, error));
        self.mark_failed(key);
    }

    fn mark_failed_text(&mut self, key: &str) {
        if let Some(key) = key_of(key) {
            if let ArtifactKey::Segment { .. } = key {
                self.segments.insert(key.clone(), None);
            }
            self.mark_failed(&key);
        }
    }

    /// The walk is done: origins with a newer verified root become candidates, and every
    /// origin it found has its events listed.
    fn walked(&mut self) {
        let walk = std::mem::replace(&mut self.walk, RootWalk::new(self.store, None));
        self.report.requests += walk.requests;
        self.report.problems.extend(walk.problems);
        self.report
            .older_roots
            .extend(walk.older_than_floor.iter().map(ToString::to_string));
        for (origin, newest) in walk.found {
            let progress = self.report.state.origins.get(&origin);
            let (key, mark) = match &newest {
                Newest::Verified(v) => (v.key.clone(), v.root.events),
                Newest::Floor(k) => (
                    k.clone(),
                    progress
                        .filter(|p| p.root.as_ref() == Some(k))
                        .map_or(EventsMark::Unstated, |p| p.root_events),
                ),
            };
            // Its batches up to the mark were all handled while this root was the newest:
            // nothing to list (issue 17 item 8).
            if progress.is_none_or(|p| p.events_root.as_ref() != Some(&key)) {
                self.events_listing
                    .insert(origin.clone(), (None, Vec::new()));
                self.event_marks.insert(origin.clone(), (key, mark));
            }
            if let Newest::Verified(v) = newest {
                self.candidates.insert(
                    origin,
                    Candidate {
                        key: v.key,
                        root: Some(v.root),
                        complete: true,
                        entries: Vec::new(),
                    },
                );
            }
        }
    }

    /// Whatever depends on a failed artifact waits for the next run.
    fn mark_failed(&mut self, key: &ArtifactKey) {
        let origin = key.origin().clone();
        match key {
            ArtifactKey::Root { .. } => {
                self.candidates.remove(&origin);
            }
            ArtifactKey::Bucket { .. } | ArtifactKey::Manifest { .. } => {
                if let Some(c) = self.candidates.get_mut(&origin) {
                    c.complete = false;
                }
            }
            ArtifactKey::Segment { id, .. } => {
                self.segments.insert(key.clone(), None);
                for w in &mut self.wanted {
                    if w.origin == origin && w.manifest.segments.iter().any(|s| s.id == *id) {
                        w.failed = true;
                    }
                }
                if let Some(c) = self.candidates.get_mut(&origin) {
                    c.complete = false;
                }
            }
            // Not marked seen: the next run lists and fetches it again.
            ArtifactKey::Events { .. } => {
                self.events_failed.insert(origin);
            }
        }
    }

    /// Sessions handed out so far, for a host that applies them while the import runs (and
    /// so holds one window of messages, not the whole import). The rest come in the report.
    pub fn take_units(&mut self) -> Vec<ApplyUnit> {
        std::mem::take(&mut self.report.units)
    }

    /// Turns the sessions of the fetched window into units and frees their segments.
    fn complete_window(&mut self) {
        let window: Vec<Wanted> = self.wanted.drain(..self.window_end).collect();
        self.window_end = 0;
        let mut done_with: BTreeSet<ArtifactKey> = BTreeSet::new();
        for w in window {
            for seg in &w.manifest.segments {
                done_with.insert(ArtifactKey::Segment {
                    origin: w.origin.clone(),
                    id: seg.id,
                });
            }
            self.unit_of(w);
        }
        for key in done_with {
            self.segments.remove(&key);
        }
    }

    fn unit_of(&mut self, w: Wanted) {
        if w.failed {
            self.incomplete.insert(w.origin.clone());
            return;
        }
        let mut messages = Vec::new();
        let mut ok = true;
        for seg in &w.manifest.segments[w.from_index..] {
            let key = ArtifactKey::Segment {
                origin: w.origin.clone(),
                id: seg.id,
            };
            match self.segments.get(&key) {
                Some(Some(m))
                    if m.first().map(|x| x.ordinal) == Some(seg.first_ordinal)
                        && m.len() == seg.count as usize =>
                {
                    messages.extend(m.iter().cloned())
                }
                Some(Some(_)) => {
                    self.report.problems.push(Problem::malformed(
                        &key.to_string(),
                        "segment does not hold the ordinals its manifest lists",
                    ));
                    ok = false;
                }
                _ => ok = false,
            }
        }
        if !ok {
            self.incomplete.insert(w.origin.clone());
            return;
        }
        let from_ordinal = w
            .manifest
            .segments
            .get(w.from_index)
            .map_or(w.manifest.message_count, |s| s.first_ordinal);
        let gid = w.manifest.gid();
        let progress = self
            .report
            .state
            .origins
            .entry(w.origin.clone())
            .or_default();
        progress.sessions.insert(
            w.manifest.session.native_id.clone(),
            ImportedSession {
                manifest: w.manifest_id,
                segments: w.manifest.segments.iter().map(|s| s.id).collect(),
            },
        );
        // Segments imported before this run may not be where this one is written to.
        if let Some(bytes) = w.stored.filter(|_| w.from_index == 0) {
            self.verified.push(Verified {
                key: ArtifactKey::Manifest {
                    origin: w.origin.clone(),
                    id: w.manifest_id,
                },
                bytes,
                after: w
                    .manifest
                    .segments
                    .iter()
                    .map(|s| ArtifactKey::Segment {
                        origin: w.origin.clone(),
                        id: s.id,
                    })
                    .collect(),
            });
        }
        self.report.units.push(ApplyUnit {
            gid,
            from_ordinal,
            messages,
            message_count: w.manifest.message_count,
            usage_events: w.manifest.usage_events,
            manifest: w.manifest_id,
            session: w.manifest.session,
        });
    }

    fn finish(&mut self) -> ImportReport {
        self.window_end = self.wanted.len();
        self.complete_window();
        let incomplete = std::mem::take(&mut self.incomplete);
        for (origin, c) in std::mem::take(&mut self.candidates) {
            let Some(root) = c.root else { continue };
            if !c.complete || incomplete.contains(&origin) {
                continue;
            }
            let progress = self.report.state.origins.entry(origin).or_default();
            progress.root = Some(c.key);
            progress.root_events = root.events;
            progress.bits = root.bits;
            progress.buckets = root.buckets.iter().map(|b| (b.index, b.id)).collect();
        }
        for (origin, (key, mark)) in std::mem::take(&mut self.event_marks) {
            if !mark.is_stated() || self.events_failed.contains(&origin) {
                continue;
            }
            let progress = self.report.state.origins.entry(origin.clone()).or_default();
            if handled_up_to(&progress.events_seen, &origin, &mark) {
                progress.events_root = Some(key);
            }
        }
        self.report.units.sort_by(|a, b| a.gid.cmp(&b.gid));
        std::mem::take(&mut self.report)
    }
}

/// Whether the batches a root's mark names were all handled: the named one, and as many up
/// to it as the mark counts. A store that holds the root without them (a replicated folder
/// that delivered the root first) is listed again next run.
fn handled_up_to(seen: &BTreeSet<String>, origin: &OriginId, mark: &EventsMark) -> bool {
    match mark {
        EventsMark::Unstated => false,
        EventsMark::NoBatch => true,
        EventsMark::Newest { count, .. } => {
            let Some(newest) = mark.key(origin) else {
                return false;
            };
            if !seen.contains(&newest.to_string()) {
                return false;
            }
            let up_to = seen
                .iter()
                .filter_map(|k| k.parse::<ArtifactKey>().ok())
                .filter(|k| k.origin() == origin && *k <= newest)
                .count();
            up_to as u64 >= *count
        }
    }
}

/// Runs an import to the end against a synchronous store.
pub fn run(mut import: Import, store: &mut dyn Store) -> ImportReport {
    loop {
        match import.poll() {
            Step::Requests(requests) => {
                let responses = requests
                    .iter()
                    .map(|r| answer_one(store, &r.request))
                    .collect();
                import.handle(responses);
            }
            Step::Done(report) => return *report,
        }
    }
}
