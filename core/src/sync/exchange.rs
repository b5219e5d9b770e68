//! Exchange: relay artifacts between the mirror and the target, guided by verified roots.
//!
//! For each origin whose newest verified root differs between the two stores, the store that
//! lags receives what the newer root reaches and it lacks (buckets, manifests, segments),
//! then the root itself, last; and for every origin, each store receives the event batches it
//! lacks. Bytes are copied verbatim, after full verification (id, limits, decoding,
//! signature, the pinned key). Guiding by roots instead of a blind union of names keeps a
//! peer's mirror from copying back what the origin's GC deleted.
//!
//! A corrupt or missing artifact is reported and skipped, and the root that needs it is not
//! copied, so a store never holds a root whose data it lacks. A corrupt copy in the
//! destination is replaced by the verified one ([`crate::sync::placement`]).
//!
//! What the lagging store lacks is known from its own older root of the origin when it has
//! one (see `Trust`): that is what makes a small change cost a few reads. A store without one,
//! or that cannot produce the part of it the relay reads, is listed instead.
//!
//! Sans-IO: [`Exchange::requests`] gives a round of store requests (they are independent:
//! run them in any order, or in parallel), [`Exchange::handle`] takes their answers in order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::checkpoint::BucketEntry;
use crate::frame::SharedDecompressor;
use crate::id::ArtifactId;
use crate::keyring::KeyRing;
use crate::names::{ArtifactKey, NativeId, OriginId};
use crate::segment::SegmentRef;
use crate::sync::placement::{Placed, Placement};
use crate::sync::problem::Problem;
use crate::sync::roots::{Newest, RootWalk, RootsListing, VerifiedRoot};
use crate::sync::store::{ListPage, Request, Response, Store, StoreId, StoreRequest, answer_one};

/// What verifying a fetched artifact came to, ahead of its turn, on the host's threads.
enum OpenedAhead {
    /// A segment this run sealed: whether the bytes are the ones it sealed.
    Sealed(bool),
    /// Another segment: whether it is a segment (its messages are not kept), or why it failed.
    Segment(crate::error::Result<bool>),
    /// A manifest: the segments it names (`None`: the bytes are another kind of artifact), not
    /// the whole manifest, so that a round of thousands holds no more than their references.
    Manifest(crate::error::Result<Option<Vec<SegmentRef>>>),
}

/// Segment bytes fetched per round of a relay: bounds what the exchange holds in memory.
const SEGMENT_WINDOW_BYTES: u64 = 32 << 20;

/// Sessions in the buckets two roots do not share, past which a relay lists the destination
/// rather than reading its old manifests one by one (a listing page names a thousand keys).
const OLD_MANIFESTS_MAX: u64 = 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeReport {
    /// Keys written, with the store written to, in write order.
    pub copied: Vec<(StoreId, String)>,
    /// Corrupt copies replaced by verified ones.
    pub healed: usize,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    ListRoots,
    WalkRoots,
    FetchOldBuckets,
    ListKeys,
    FetchBuckets,
    FetchManifests,
    Segments,
    PutManifests,
    PutBuckets,
    PutRoots,
    Done,
}

#[derive(Debug)]
struct ListJob {
    store: StoreId,
    prefix: String,
    after: Option<String>,
    done: bool,
    /// A page could not be listed: what the job holds may be partial.
    failed: bool,
    keys: BTreeSet<String>,
}

impl ListJob {
    fn new(store: StoreId, prefix: String) -> Self {
        ListJob {
            store,
            prefix,
            after: None,
            done: false,
            failed: false,
            keys: BTreeSet::new(),
        }
    }
}

#[derive(Debug)]
struct Relay {
    origin: OriginId,
    src: StoreId,
    dst: StoreId,
    root: VerifiedRoot,
    /// Index of the listing job of the destination's `<origin>/` keys, for a relay without
    /// [`Trust`].
    dst_listing: Option<usize>,
    trust: Option<Trust>,
    complete: bool,
}

/// What a relay knows the destination holds without listing it: everything the destination's
/// own newest verified root reaches, since a store receives a root only after all it reaches
/// (from its writer, or from a relay, which puts the root last). Of that, only the part the
/// new root may share is read: the destination's buckets that differ from the new root's, and
/// the old manifests of sessions whose manifest changed. A small change then costs a few reads
/// instead of a listing of every key of the origin.
#[derive(Debug)]
struct Trust {
    /// The destination's root's buckets, by index.
    old_buckets: BTreeMap<u32, ArtifactId>,
    /// The manifest of each session of the old buckets read.
    old_manifests: BTreeMap<NativeId, ArtifactId>,
    /// Keys the destination holds by its root, as far as they were read.
    known: BTreeSet<String>,
}

#[derive(Debug)]
struct Item {
    relay: usize,
    key: ArtifactKey,
    bytes: Vec<u8>,
    /// Index of the item (bucket for a manifest) this one is needed by.
    parent: Option<usize>,
    ok: bool,
    /// A manifest's segments, kept from when it was fetched and verified.
    segments: Vec<SegmentRef>,
}

/// The exchange machine; see the module comment.
#[derive(Debug)]
pub struct Exchange {
    phase: Phase,
    walks: Vec<RootWalk>,
    relays: Vec<Relay>,
    jobs: Vec<ListJob>,
    /// Per origin: the listing jobs of its events in the mirror and the target.
    event_jobs: BTreeMap<OriginId, (usize, usize)>,
    /// Origins whose batches need no listing while both stores' newest root is this key (a
    /// root that states its events mark, whose batches this machine handled).
    settled: BTreeMap<OriginId, ArtifactKey>,
    buckets: Vec<Item>,
    manifests: Vec<Item>,
    /// Old manifests to read from a trusting relay's destination: (relay, key).
    old_manifests: Vec<(usize, ArtifactKey)>,
    /// Segments to relay: key → (relay, size, manifests needing it).
    segments: BTreeMap<ArtifactKey, (usize, u64, Vec<usize>)>,
    segments_queue: Vec<ArtifactKey>,
    in_flight: Vec<InFlight>,
    placement: Placement,
    /// The current phase's one-off requests went out.
    issued: bool,
    decoder: Option<SharedDecompressor>,
    /// Segments this run sealed itself ([`Exchange::with_sealed`]).
    sealed: BTreeMap<ArtifactKey, blake3::Hash>,
    /// Keep the listed entries of buckets bound for the mirror ([`Exchange::listing_ahead`]).
    list_ahead: bool,
    /// Listed entries of verified buckets on their way into the mirror, not taken yet.
    listed: Vec<(OriginId, BucketEntry)>,
    /// Keys each store is known to hold beyond what its listing or root says
    /// ([`Exchange::with_present`]), by `StoreId`.
    present: [BTreeSet<String>; 2],
    report: ExchangeReport,
}

#[derive(Debug)]
enum InFlight {
    Walk(usize, usize),
    Job(usize),
    OldBucket(usize, ArtifactKey),
    OldManifest(usize, ArtifactKey),
    Bucket(usize),
    Manifest(usize),
    Segment(ArtifactKey),
    Events { key: ArtifactKey, dst: StoreId },
    Placement(usize),
}

impl Default for Exchange {
    fn default() -> Self {
        Self::new()
    }
}

impl Exchange {
    pub fn new() -> Self {
        Exchange {
            phase: Phase::ListRoots,
            walks: vec![
                RootWalk::new(StoreId::Mirror, None),
                RootWalk::new(StoreId::Target, None),
            ],
            relays: Vec::new(),
            jobs: Vec::new(),
            event_jobs: BTreeMap::new(),
            settled: BTreeMap::new(),
            buckets: Vec::new(),
            manifests: Vec::new(),
            old_manifests: Vec::new(),
            segments: BTreeMap::new(),
            segments_queue: Vec::new(),
            in_flight: Vec::new(),
            placement: Placement::default(),
            issued: false,
            decoder: None,
            sealed: BTreeMap::new(),
            list_ahead: false,
            listed: Vec::new(),
            present: [BTreeSet::new(), BTreeSet::new()],
            report: ExchangeReport::default(),
        }
    }

    /// Keeps the entries with a listing of the buckets it fetches for the mirror, for
    /// [`Exchange::take_listed`] (a host that shows a list while it syncs).
    pub fn listing_ahead(mut self, on: bool) -> Self {
        self.list_ahead = on;
        self
    }

    /// Entries with a listing of the verified buckets fetched for the mirror since the last
    /// call: sessions this machine may list before their manifests and segments arrive.
    pub fn take_listed(&mut self) -> Vec<(OriginId, BucketEntry)> {
        std::mem::take(&mut self.listed)
    }

    /// Verifies what it copies with a host's zstd decoder (see [`crate::frame::Decompressor`]).
    pub fn with_decompressor(mut self, decoder: Option<SharedDecompressor>) -> Self {
        self.decoder = decoder;
        self
    }

    /// Segments the engine encoded and sealed in this very run, with the hash of the bytes it
    /// stored: a copy read back with those exact bytes is the artifact the core built, and is
    /// relayed without decoding it again (a first sync otherwise verifies every segment it
    /// just wrote, a tenth of its time). Any other bytes are verified in full.
    pub fn with_sealed(mut self, sealed: BTreeMap<ArtifactKey, blake3::Hash>) -> Self {
        self.sealed = sealed;
        self
    }

    /// Keys this run placed in `store` after verifying them, each with everything it names
    /// (a manifest only after its segments): a relay into `store` neither fetches nor copies
    /// them. The engine's import ahead of the relay writes what it imports through to the
    /// mirror, and a relay trusting the mirror's older root would otherwise fetch it again.
    pub fn with_present(mut self, store: StoreId, keys: BTreeSet<String>) -> Self {
        self.present[store as usize] = keys;
        self
    }

    /// An exchange over both stores' `roots/` listings, already made.
    pub fn with_listings(mirror: &RootsListing, target: &RootsListing) -> Self {
        let mut exchange = Exchange::new();
        exchange.walks = vec![
            RootWalk::new(StoreId::Mirror, None).fed(mirror),
            RootWalk::new(StoreId::Target, None).fed(target),
        ];
        exchange
    }

    /// Origins whose batches need no listing while both stores' newest root is the given key:
    /// a store holding a root that states its events mark holds every batch up to the mark
    /// (writers and relays put batches before the root), so two stores with the same such
    /// root hold the same batches as far as the root goes; newer ones travel with the next.
    pub fn with_settled(mut self, settled: BTreeMap<OriginId, ArtifactKey>) -> Self {
        self.settled = settled;
        self
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The report; complete once [`Exchange::is_done`].
    pub fn into_report(mut self) -> ExchangeReport {
        for w in &mut self.walks {
            self.report.problems.append(&mut w.problems);
        }
        self.report
    }

    /// The next round of requests; empty only when the exchange is done.
    pub fn requests(&mut self) -> Vec<StoreRequest> {
        loop {
            let mut out = Vec::new();
            self.in_flight.clear();
            let placing = self.placement.requests();
            if !placing.is_empty() {
                self.in_flight.push(InFlight::Placement(placing.len()));
                out.extend(placing);
            }
            self.phase_requests(&mut out);
            if !out.is_empty() || self.phase == Phase::Done {
                return out;
            }
            self.issued = false;
            self.advance();
        }
    }

    fn phase_requests(&mut self, out: &mut Vec<StoreRequest>) {
        match self.phase {
            Phase::ListRoots | Phase::WalkRoots => {
                for (i, w) in self.walks.iter_mut().enumerate() {
                    if self.phase == Phase::ListRoots && w.is_listed() {
                        continue;
                    }
                    let r = w.requests();
                    if !r.is_empty() {
                        self.in_flight.push(InFlight::Walk(i, r.len()));
                        out.extend(r);
                    }
                }
            }
            Phase::ListKeys => {
                for (i, job) in self.jobs.iter().enumerate() {
                    if job.done {
                        continue;
                    }
                    self.in_flight.push(InFlight::Job(i));
                    out.push(StoreRequest {
                        store: job.store,
                        request: Request::List {
                            prefix: job.prefix.clone(),
                            start_after: job.after.clone(),
                        },
                    });
                }
            }
            Phase::FetchOldBuckets | Phase::FetchBuckets | Phase::FetchManifests if self.issued => {
            }
            Phase::FetchOldBuckets => {
                self.issued = true;
                for (i, relay) in self.relays.iter().enumerate() {
                    let Some(trust) = &relay.trust else { continue };
                    for b in &relay.root.root.buckets {
                        match trust.old_buckets.get(&b.index) {
                            Some(old) if *old != b.id => {
                                let key = ArtifactKey::Bucket {
                                    origin: relay.origin.clone(),
                                    id: *old,
                                };
                                out.push(self.get(relay.dst, &key));
                                self.in_flight.push(InFlight::OldBucket(i, key));
                            }
                            _ => {}
                        }
                    }
                }
            }
            Phase::FetchBuckets => {
                self.issued = true;
                // Buckets and event batches are independent: one round.
                let fetches = std::mem::take(&mut self.buckets);
                for (i, b) in fetches.iter().enumerate() {
                    if b.bytes.is_empty() {
                        self.in_flight.push(InFlight::Bucket(i));
                        out.push(self.get(self.relays[b.relay].src, &b.key));
                    }
                }
                self.buckets = fetches;
                let events: Vec<(ArtifactKey, StoreId)> = self.missing_events();
                self.event_jobs.clear();
                for (key, dst) in events {
                    out.push(self.get(dst.other(), &key));
                    self.in_flight.push(InFlight::Events { key, dst });
                }
            }
            Phase::FetchManifests => {
                self.issued = true;
                for (i, m) in self.manifests.iter().enumerate() {
                    if m.bytes.is_empty() && m.ok {
                        self.in_flight.push(InFlight::Manifest(i));
                        out.push(self.get(self.relays[m.relay].src, &m.key));
                    }
                }
                for (relay, key) in std::mem::take(&mut self.old_manifests) {
                    out.push(self.get(self.relays[relay].dst, &key));
                    self.in_flight.push(InFlight::OldManifest(relay, key));
                }
            }
            Phase::Segments => {
                let mut bytes = 0u64;
                while let Some(key) = self.segments_queue.pop() {
                    let Some((relay, size, _)) = self.segments.get(&key) else {
                        continue;
                    };
                    bytes += size;
                    out.push(self.get(self.relays[*relay].src, &key));
                    self.in_flight.push(InFlight::Segment(key));
                    if bytes >= SEGMENT_WINDOW_BYTES {
                        break;
                    }
                }
            }
            Phase::PutManifests | Phase::PutBuckets | Phase::PutRoots | Phase::Done => {}
        }
    }

    fn get(&self, store: StoreId, key: &ArtifactKey) -> StoreRequest {
        let request = match self.segments.get(key) {
            Some((_, declared, _)) => Request::get_declared(key.to_string(), *declared),
            None => Request::get(key.to_string()),
        };
        StoreRequest { store, request }
    }

    /// The phase's requests are all answered and placements are settled: move on.
    fn advance(&mut self) {
        self.phase = match self.phase {
            Phase::ListRoots => {
                if self.walks.iter().all(RootWalk::is_listed) {
                    self.restrict_walks();
                    Phase::WalkRoots
                } else {
                    Phase::ListRoots
                }
            }
            Phase::WalkRoots => {
                self.plan();
                Phase::FetchOldBuckets
            }
            Phase::FetchOldBuckets => {
                self.list_untrusted();
                Phase::ListKeys
            }
            Phase::ListKeys => {
                self.plan_buckets();
                Phase::FetchBuckets
            }
            Phase::FetchBuckets => Phase::FetchManifests,
            Phase::FetchManifests => {
                self.plan_segments();
                Phase::Segments
            }
            Phase::Segments => {
                self.settle_segments();
                self.place_items(true);
                Phase::PutManifests
            }
            Phase::PutManifests => {
                self.settle_items(true);
                self.place_items(false);
                Phase::PutBuckets
            }
            Phase::PutBuckets => {
                self.settle_items(false);
                self.place_roots();
                Phase::PutRoots
            }
            Phase::PutRoots => {
                self.settle_rest();
                Phase::Done
            }
            Phase::Done => Phase::Done,
        };
    }

    /// Answers to the last [`Exchange::requests`], in order.
    pub fn handle(&mut self, responses: Vec<Response>, keyring: &mut KeyRing) {
        let mut responses = responses.into_iter();
        let answered: Vec<(InFlight, Vec<Response>)> = std::mem::take(&mut self.in_flight)
            .into_iter()
            .map(|flight| {
                let n = match flight {
                    InFlight::Placement(n) | InFlight::Walk(_, n) => n,
                    _ => 1,
                };
                (flight, responses.by_ref().take(n).collect())
            })
            .collect();
        let ahead = self.open_ahead(&answered);
        for ((flight, batch), ahead) in answered.into_iter().zip(ahead) {
            match flight {
                InFlight::Placement(_) => self.placement.handle(batch),
                InFlight::Walk(i, _) => self.walks[i].handle(batch, keyring),
                other => {
                    let response = batch.into_iter().next().unwrap_or(Response::Got(None));
                    self.handle_one(other, response, ahead, keyring);
                }
            }
        }
    }

    /// Verifies the round's fetched segments and manifests all at once, through the host's
    /// [`Decompressor::open_all`], which may use every core (a first sync relays ~21 000 of
    /// them); what each came to is kept (a segment's messages are not). A segment this run
    /// sealed is only hashed. Without a host decoder each is verified in turn by
    /// [`Exchange::handle_one`].
    ///
    /// [`Decompressor::open_all`]: crate::frame::Decompressor::open_all
    fn open_ahead(&self, answered: &[(InFlight, Vec<Response>)]) -> Vec<Option<OpenedAhead>> {
        let mut slots: Vec<Option<OpenedAhead>> = answered.iter().map(|_| None).collect();
        let Some(decoder) = self.decoder.as_deref() else {
            return slots;
        };
        let mut jobs: Vec<crate::frame::OpenJob<'_>> = Vec::new();
        for ((flight, batch), slot) in answered.iter().zip(slots.iter_mut()) {
            let [Response::Got(Some(bytes))] = batch.as_slice() else {
                continue;
            };
            match flight {
                InFlight::Segment(key) => match self.sealed.get(key) {
                    Some(hash) => jobs.push(Box::new(move || {
                        *slot = Some(OpenedAhead::Sealed(blake3::hash(bytes) == *hash));
                    })),
                    None => jobs.push(Box::new(move || {
                        let opened = Artifact::open_with(key, bytes, Some(decoder));
                        *slot = Some(OpenedAhead::Segment(
                            opened.map(|a| matches!(a, Artifact::Segment(_))),
                        ));
                    })),
                },
                InFlight::Manifest(i) => {
                    let key = &self.manifests[*i].key;
                    jobs.push(Box::new(move || {
                        let opened = Artifact::open_with(key, bytes, Some(decoder));
                        *slot = Some(OpenedAhead::Manifest(opened.map(|a| match a {
                            Artifact::Manifest(m) => Some(m.segments),
                            _ => None,
                        })));
                    }));
                }
                _ => {}
            }
        }
        decoder.open_all(jobs);
        slots
    }

    fn handle_one(
        &mut self,
        flight: InFlight,
        response: Response,
        ahead: Option<OpenedAhead>,
        keyring: &mut KeyRing,
    ) {
        match flight {
            InFlight::Job(i) => {
                let job = &mut self.jobs[i];
                let page = match response {
                    Response::Listed(page) => page,
                    Response::Failed(e) => {
                        self.report.problems.push(Problem::store(&e));
                        job.failed = true;
                        ListPage::default()
                    }
                    _ => {
                        job.failed = true;
                        ListPage::default()
                    }
                };
                let last = page.entries.last().map(|l| l.key.clone());
                job.keys.extend(page.entries.into_iter().map(|l| l.key));
                if page.truncated && last.is_some() {
                    job.after = last;
                } else {
                    job.done = true;
                }
            }
            InFlight::OldBucket(relay, key) => match self.open_quietly(&key, response) {
                Some(Artifact::Bucket(bucket)) => {
                    let origin = self.relays[relay].origin.clone();
                    if let Some(trust) = &mut self.relays[relay].trust {
                        for e in bucket.entries {
                            let key = ArtifactKey::Manifest {
                                origin: origin.clone(),
                                id: e.manifest,
                            };
                            trust.known.insert(key.to_string());
                            trust.old_manifests.insert(e.session, e.manifest);
                        }
                    }
                }
                // The destination lacks what its own root reaches: it is listed instead.
                _ => self.relays[relay].trust = None,
            },
            InFlight::OldManifest(relay, key) => {
                if let Some(Artifact::Manifest(manifest)) = self.open_quietly(&key, response) {
                    let origin = self.relays[relay].origin.clone();
                    if let Some(trust) = &mut self.relays[relay].trust {
                        trust.known.extend(manifest.segments.iter().map(|s| {
                            ArtifactKey::Segment {
                                origin: origin.clone(),
                                id: s.id,
                            }
                            .to_string()
                        }));
                    }
                }
                // Otherwise the session's segments are all placed: put-if-absent keeps the
                // ones there.
            }
            InFlight::Bucket(i) => {
                let relay = self.buckets[i].relay;
                let key = self.buckets[i].key.clone();
                match self.open(&key, response) {
                    Some((bytes, Artifact::Bucket(bucket))) => {
                        self.buckets[i].bytes = bytes;
                        let origin = self.relays[relay].origin.clone();
                        if self.list_ahead && self.relays[relay].dst == StoreId::Mirror {
                            self.listed
                                .extend(bucket.listed().map(|e| (origin.clone(), e.clone())));
                        }
                        let needed: Vec<(NativeId, ArtifactKey)> = bucket
                            .entries
                            .into_iter()
                            .map(|e| {
                                let key = ArtifactKey::Manifest {
                                    origin: origin.clone(),
                                    id: e.manifest,
                                };
                                (e.session, key)
                            })
                            .filter(|(_, k)| !self.dst_has(relay, &k.to_string()))
                            .collect();
                        for (session, key) in needed {
                            let old = self.relays[relay]
                                .trust
                                .as_ref()
                                .and_then(|t| t.old_manifests.get(&session));
                            if let Some(old) = old {
                                let old = ArtifactKey::Manifest {
                                    origin: origin.clone(),
                                    id: *old,
                                };
                                self.old_manifests.push((relay, old));
                            }
                            self.manifests.push(Item {
                                relay,
                                key,
                                bytes: Vec::new(),
                                parent: Some(i),
                                ok: true,
                                segments: Vec::new(),
                            });
                        }
                    }
                    _ => {
                        self.buckets[i].ok = false;
                        self.relays[relay].complete = false;
                    }
                }
            }
            InFlight::Manifest(i) => {
                let key = self.manifests[i].key.clone();
                let opened = match (response, ahead) {
                    (Response::Got(Some(bytes)), Some(OpenedAhead::Manifest(opened))) => self
                        .accepted(&key, opened)
                        .flatten()
                        .map(|segments| (bytes, segments)),
                    (response, _) => match self.open(&key, response) {
                        Some((bytes, Artifact::Manifest(manifest))) => {
                            Some((bytes, manifest.segments))
                        }
                        _ => None,
                    },
                };
                match opened {
                    Some((bytes, segments)) => {
                        self.manifests[i].bytes = bytes;
                        self.manifests[i].segments = segments;
                    }
                    None => self.fail_manifest(i),
                }
            }
            InFlight::Segment(key) => {
                let opened = match (response, self.sealed.get(&key), ahead) {
                    (Response::Got(Some(bytes)), _, Some(OpenedAhead::Sealed(true))) => {
                        Some((bytes, true))
                    }
                    (Response::Got(Some(bytes)), Some(hash), None)
                        if blake3::hash(&bytes) == *hash =>
                    {
                        Some((bytes, true))
                    }
                    (Response::Got(Some(bytes)), _, Some(OpenedAhead::Segment(ahead))) => self
                        .accepted(&key, ahead)
                        .map(|is_segment| (bytes, is_segment)),
                    // Not verified ahead, or not the bytes this run sealed: verified here.
                    (response, _, _) => self
                        .open(&key, response)
                        .map(|(bytes, artifact)| (bytes, matches!(artifact, Artifact::Segment(_)))),
                };
                let Some((relay, _, needed_by)) = self.segments.get(&key).cloned() else {
                    return;
                };
                match opened {
                    Some((bytes, true)) => {
                        self.placement
                            .put(self.relays[relay].dst, key.to_string(), bytes);
                    }
                    _ => {
                        for m in needed_by {
                            self.fail_manifest(m);
                        }
                    }
                }
            }
            InFlight::Events { key, dst } => match self.open(&key, response) {
                Some((bytes, Artifact::Events(batch))) => {
                    match keyring.check(key.origin(), &batch.signer) {
                        Ok(_) => self.placement.put(dst, key.to_string(), bytes),
                        Err(e) => {
                            self.report
                                .problems
                                .push(Problem::rejected(&key.to_string(), &e));
                            self.events_failed(key.origin(), dst);
                        }
                    }
                }
                _ => self.events_failed(key.origin(), dst),
            },
            InFlight::Placement(_) | InFlight::Walk(..) => {}
        }
    }

    /// A fetched artifact a relay reads only to skip work: when it is missing or bad, the
    /// relay does the work, and nothing is reported.
    fn open_quietly(&self, key: &ArtifactKey, response: Response) -> Option<Artifact> {
        match response {
            Response::Got(Some(bytes)) => self.open_bytes(key, &bytes).ok(),
            _ => None,
        }
    }

    /// Verifies fetched bytes as the artifact `key` names, with the host's decoder if any.
    fn open_bytes(&self, key: &ArtifactKey, bytes: &[u8]) -> crate::error::Result<Artifact> {
        Artifact::open_with(key, bytes, self.decoder.as_deref().map(|d| d as _))
    }

    /// Whether the destination of `relay` holds `key`, by its listing or by its root.
    fn dst_has(&self, relay: usize, key: &str) -> bool {
        let relay = &self.relays[relay];
        if self.present[relay.dst as usize].contains(key) {
            return true;
        }
        match (&relay.trust, relay.dst_listing) {
            (Some(trust), _) => trust.known.contains(key),
            (None, Some(job)) => self.jobs[job].keys.contains(key),
            (None, None) => false,
        }
    }

    /// Verifies a fetched artifact; `None` (reported) if missing or bad.
    fn open(&mut self, key: &ArtifactKey, response: Response) -> Option<(Vec<u8>, Artifact)> {
        let text = key.to_string();
        let bytes = match response {
            Response::Got(Some(b)) => b,
            Response::Got(None) => {
                self.report.problems.push(Problem::missing(&text));
                return None;
            }
            Response::Failed(e) => {
                self.report.problems.push(Problem::store(&e));
                return None;
            }
            Response::TooLarge(size) => {
                let error = crate::error::Error::SizeLimit {
                    kind: "artifact (as referenced)",
                    limit: self
                        .segments
                        .get(key)
                        .map_or(key.kind().limits().max_stored as u64, |(_, d, _)| {
                            crate::limits::stored_bound(*d)
                        }),
                    actual: size,
                };
                self.report.problems.push(Problem::rejected(&text, &error));
                return None;
            }
            other => {
                self.report.problems.push(Problem::malformed(
                    &text,
                    &format!("unexpected answer from the store: {other:?}"),
                ));
                return None;
            }
        };
        let opened = self.open_bytes(key, &bytes);
        self.accepted(key, opened).map(|artifact| (bytes, artifact))
    }

    /// What verifying `key` came to: its value, or `None` with the rejection in the problems.
    fn accepted<T>(&mut self, key: &ArtifactKey, verified: crate::error::Result<T>) -> Option<T> {
        verified
            .map_err(|e| {
                let problem = Problem::rejected(&key.to_string(), &e);
                self.report.problems.push(problem);
            })
            .ok()
    }

    /// A batch of `origin` did not reach `dst`: a root relayed there would name batches the
    /// store lacks, so it waits for the next run.
    fn events_failed(&mut self, origin: &OriginId, dst: StoreId) {
        for relay in &mut self.relays {
            if relay.origin == *origin && relay.dst == dst {
                relay.complete = false;
            }
        }
    }

    fn fail_manifest(&mut self, i: usize) {
        let m = &mut self.manifests[i];
        m.ok = false;
        if let Some(b) = m.parent {
            self.buckets[b].ok = false;
        }
        self.relays[m.relay].complete = false;
    }

    /// Listing done: only origins whose greatest root names differ between the stores need
    /// their roots fetched and verified.
    fn restrict_walks(&mut self) {
        let (m, t) = (&self.walks[0].greatest, &self.walks[1].greatest);
        let differ: BTreeSet<OriginId> = m
            .keys()
            .chain(t.keys())
            .filter(|o| m.get(*o) != t.get(*o))
            .cloned()
            .collect();
        for w in &mut self.walks {
            w.restrict(&differ);
        }
    }

    /// Decides the relays and the listings they need.
    fn plan(&mut self) {
        let origins: BTreeSet<OriginId> = self.walks[0]
            .greatest
            .keys()
            .chain(self.walks[1].greatest.keys())
            .cloned()
            .collect();
        for origin in origins {
            let newest = |w: &RootWalk| match w.found.get(&origin) {
                Some(Newest::Verified(v)) => Some(v.clone()),
                _ => None,
            };
            let (m, t) = (newest(&self.walks[0]), newest(&self.walks[1]));
            let relay = match (m, t) {
                (Some(m), t) if t.as_ref().is_none_or(|t| t.key < m.key) => {
                    Some((StoreId::Mirror, StoreId::Target, m))
                }
                (m, Some(t)) if m.as_ref().is_none_or(|m| m.key < t.key) => {
                    Some((StoreId::Target, StoreId::Mirror, t))
                }
                _ => None,
            };
            let (greatest_m, greatest_t) = (
                self.walks[0].greatest.get(&origin),
                self.walks[1].greatest.get(&origin),
            );
            if relay.is_none()
                && greatest_m.is_some()
                && greatest_m == greatest_t
                && self.settled.get(&origin) == greatest_m
            {
                continue;
            }
            let mut job = |store: StoreId, prefix: String| {
                self.jobs.push(ListJob::new(store, prefix));
                self.jobs.len() - 1
            };
            let trust = relay
                .as_ref()
                .and_then(|(_, dst, root)| trust(&self.walks[*dst as usize], &origin, root));
            let events = ArtifactKey::events_prefix(&origin);
            let whole = format!("{origin}/");
            let (mirror_job, target_job) = match (&relay, &trust) {
                (Some((_, StoreId::Target, _)), None) => {
                    (job(StoreId::Mirror, events), job(StoreId::Target, whole))
                }
                (Some((_, StoreId::Mirror, _)), None) => {
                    (job(StoreId::Mirror, whole), job(StoreId::Target, events))
                }
                _ => (
                    job(StoreId::Mirror, events.clone()),
                    job(StoreId::Target, events),
                ),
            };
            self.event_jobs
                .insert(origin.clone(), (mirror_job, target_job));
            if let Some((src, dst, root)) = relay {
                let dst_listing = if dst == StoreId::Mirror {
                    mirror_job
                } else {
                    target_job
                };
                self.relays.push(Relay {
                    origin,
                    src,
                    dst,
                    root,
                    dst_listing: trust.is_none().then_some(dst_listing),
                    trust,
                    complete: true,
                });
            }
        }
    }

    /// A relay whose destination turned out to lack part of what its root reaches lists the
    /// destination after all.
    fn list_untrusted(&mut self) {
        for relay in &mut self.relays {
            if relay.trust.is_none() && relay.dst_listing.is_none() {
                self.jobs
                    .push(ListJob::new(relay.dst, format!("{}/", relay.origin)));
                relay.dst_listing = Some(self.jobs.len() - 1);
            }
        }
    }

    fn plan_buckets(&mut self) {
        // A relay whose origin's batches could not be listed in full cannot know that the
        // destination has them all.
        for relay in &mut self.relays {
            if let Some((m, t)) = self.event_jobs.get(&relay.origin)
                && (self.jobs[*m].failed || self.jobs[*t].failed)
            {
                relay.complete = false;
            }
        }
        for (i, relay) in self.relays.iter().enumerate() {
            for b in &relay.root.root.buckets {
                let key = ArtifactKey::Bucket {
                    origin: relay.origin.clone(),
                    id: b.id,
                };
                if !self.dst_has(i, &key.to_string()) {
                    self.buckets.push(Item {
                        relay: i,
                        key,
                        bytes: Vec::new(),
                        parent: None,
                        ok: true,
                        segments: Vec::new(),
                    });
                }
            }
        }
    }

    /// Event batches one store has and the other lacks, with the store that lacks them.
    fn missing_events(&self) -> Vec<(ArtifactKey, StoreId)> {
        let mut out = Vec::new();
        for (origin, (m, t)) in &self.event_jobs {
            let prefix = ArtifactKey::events_prefix(origin);
            let keys = |job: usize| -> BTreeSet<&String> {
                self.jobs[job]
                    .keys
                    .iter()
                    .filter(|k| k.starts_with(&prefix))
                    .collect()
            };
            let (in_m, in_t) = (keys(*m), keys(*t));
            for (have, lack, dst) in [
                (&in_m, &in_t, StoreId::Target),
                (&in_t, &in_m, StoreId::Mirror),
            ] {
                for k in have.difference(lack) {
                    if let Ok(key @ ArtifactKey::Events { .. }) = k.parse::<ArtifactKey>() {
                        out.push((key, dst));
                    }
                }
            }
        }
        out
    }

    fn plan_segments(&mut self) {
        for (i, m) in self.manifests.iter().enumerate() {
            if !m.ok {
                continue;
            }
            let relay = &self.relays[m.relay];
            for seg in &m.segments {
                let key = ArtifactKey::Segment {
                    origin: relay.origin.clone(),
                    id: seg.id,
                };
                if self.dst_has(m.relay, &key.to_string()) {
                    continue;
                }
                let entry = self
                    .segments
                    .entry(key)
                    .or_insert((m.relay, seg.bytes, Vec::new()));
                entry.2.push(i);
            }
        }
        // Popped from the back: fetch in key order.
        self.segments_queue = self.segments.keys().rev().cloned().collect();
    }

    fn settle_segments(&mut self) {
        let segments = std::mem::take(&mut self.segments);
        for (key, (relay, _, needed_by)) in segments {
            let dst = self.relays[relay].dst;
            match self.placement.take(dst, &key.to_string()) {
                Some(placed) if placed.is_ok() => self.note(dst, &key, &placed),
                Some(Placed::Failed(p)) => {
                    self.report.problems.push(p);
                    for m in needed_by {
                        self.fail_manifest(m);
                    }
                }
                // Fetch failed (already failed its manifests).
                _ => {}
            }
        }
    }

    fn note(&mut self, dst: StoreId, key: &ArtifactKey, placed: &Placed) {
        if placed.wrote() {
            self.report.copied.push((dst, key.to_string()));
        }
        if *placed == Placed::Healed {
            self.report.healed += 1;
        }
    }

    /// Queues the manifests (or buckets) whose dependencies all landed.
    fn place_items(&mut self, manifests: bool) {
        let items = if manifests {
            &self.manifests
        } else {
            &self.buckets
        };
        for item in items {
            if item.ok && !item.bytes.is_empty() {
                let dst = self.relays[item.relay].dst;
                self.placement
                    .put(dst, item.key.to_string(), item.bytes.clone());
            }
        }
    }

    fn settle_items(&mut self, manifests: bool) {
        let count = if manifests {
            self.manifests.len()
        } else {
            self.buckets.len()
        };
        for i in 0..count {
            let item = if manifests {
                &self.manifests[i]
            } else {
                &self.buckets[i]
            };
            if !item.ok || item.bytes.is_empty() {
                continue;
            }
            let dst = self.relays[item.relay].dst;
            let key = item.key.clone();
            match self.placement.take(dst, &key.to_string()) {
                Some(placed) if placed.is_ok() => self.note(dst, &key, &placed),
                other => {
                    if let Some(Placed::Failed(p)) = other {
                        self.report.problems.push(p);
                    }
                    if manifests {
                        self.fail_manifest(i);
                    } else {
                        self.buckets[i].ok = false;
                        let relay = self.buckets[i].relay;
                        self.relays[relay].complete = false;
                    }
                }
            }
        }
        if !manifests {
            // Event batches were placed alongside; note them now.
            self.settle_rest();
        }
    }

    fn place_roots(&mut self) {
        for relay in &self.relays {
            if relay.complete {
                self.placement.put(
                    relay.dst,
                    relay.root.key.to_string(),
                    relay.root.bytes.clone(),
                );
            } else {
                self.report
                    .problems
                    .push(Problem::incomplete(&relay.root.key.to_string()));
            }
        }
    }

    /// Notes every placement not settled yet (event batches, roots).
    fn settle_rest(&mut self) {
        for ((store, key), placed) in self.placement.take_all() {
            match placed {
                Placed::Failed(p) => {
                    self.report.problems.push(p);
                    if let Ok(key @ ArtifactKey::Events { .. }) = key.parse::<ArtifactKey>() {
                        self.events_failed(key.origin(), store);
                    }
                }
                placed => {
                    if let Ok(key) = key.parse::<ArtifactKey>() {
                        self.note(store, &key, &placed);
                    }
                }
            }
        }
    }
}

/// The [`Trust`] a relay of `origin`'s `new` root may place in its destination, whose walk is
/// `dst`: none when the destination has no verified root of the origin, a root of another
/// bucket layout, or too many sessions in the buckets the roots do not share.
fn trust(dst: &RootWalk, origin: &OriginId, new: &VerifiedRoot) -> Option<Trust> {
    let Some(Newest::Verified(old)) = dst.found.get(origin) else {
        return None;
    };
    if old.root.bits != new.root.bits {
        return None;
    }
    let old_buckets: BTreeMap<u32, ArtifactId> =
        old.root.buckets.iter().map(|b| (b.index, b.id)).collect();
    let differing: u64 = new
        .root
        .buckets
        .iter()
        .filter(|b| old_buckets.get(&b.index) != Some(&b.id))
        .map(|b| u64::from(b.sessions))
        .sum();
    if differing > OLD_MANIFESTS_MAX {
        return None;
    }
    let known = old
        .root
        .buckets
        .iter()
        .map(|b| {
            ArtifactKey::Bucket {
                origin: origin.clone(),
                id: b.id,
            }
            .to_string()
        })
        .collect();
    Some(Trust {
        old_buckets,
        old_manifests: BTreeMap::new(),
        known,
    })
}

/// Runs an exchange to the end against two synchronous stores.
pub fn run(
    mirror: &mut dyn Store,
    target: &mut dyn Store,
    keyring: &mut KeyRing,
) -> ExchangeReport {
    run_exchange(Exchange::new(), mirror, target, keyring)
}

/// [`run`] for an exchange set up by the caller (a host decoder, sealed segments, ...).
pub fn run_exchange(
    mut exchange: Exchange,
    mirror: &mut dyn Store,
    target: &mut dyn Store,
    keyring: &mut KeyRing,
) -> ExchangeReport {
    loop {
        let requests = exchange.requests();
        if requests.is_empty() {
            return exchange.into_report();
        }
        let responses = requests
            .iter()
            .map(|r| match r.store {
                StoreId::Mirror => answer_one(mirror, &r.request),
                StoreId::Target => answer_one(target, &r.request),
            })
            .collect();
        exchange.handle(responses, keyring);
    }
}
