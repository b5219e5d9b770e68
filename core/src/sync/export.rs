//! Export planning: the artifacts an origin must write for what changed, in write order.
//!
//! The host keeps an [`ExportState`] (persisted after the root is written) and a change marker
//! per session (anything that changes when the session does: a parse generation, a hash). For
//! each session [`ExportState::tail_start`] says whether it changed and from which ordinal the
//! host must supply messages: only the last, open segment is ever re-encoded, so appending to a
//! long session reads and writes a few kilobytes. [`ExportState::commit`] then yields the
//! changed buckets and the new root.
//!
//! Resuming: the state advances in memory only. If the host stops before the root is written
//! it reloads the old state and runs again; every artifact comes out the same and writing an
//! existing name is a no-op.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::artifact::Encoded;
use crate::checkpoint::{Checkpoint, EventsMark, Listing};
use crate::error::{Error, Result};
use crate::id::ArtifactId;
use crate::manifest::Manifest;
use crate::model::{Message, Session, UsageEvent};
use crate::names::{ArtifactKey, NativeId, OriginId};
use crate::segment::{EncodedSegment, SegmentRef, segment_messages};
use crate::signature::OriginKey;

/// What was last exported of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedSession {
    pub marker: String,
    pub manifest: ArtifactId,
    pub segments: Vec<SegmentRef>,
}

/// An origin's export progress. Persist it after each successful commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportState {
    pub origin: OriginId,
    /// Sequence of the last root written (0: none yet).
    pub seq: u64,
    /// Key of the last root written.
    pub root: Option<ArtifactKey>,
    pub checkpoint: Checkpoint,
    pub sessions: BTreeMap<NativeId, ExportedSession>,
    /// The newest event batch published, as the next root states it. A state saved before
    /// roots had the mark reads as `Unstated`: the engine then lists the origin's batches once.
    #[serde(default)]
    pub events: EventsMark,
}

/// What one export run changed of an [`ExportState`]: its head, and the sessions it exported
/// or removed. At 10 k sessions the state is megabytes, and a run that appends one message to
/// one session changes a few hundred bytes of it: a host that keeps the state's sessions one
/// row each writes just this ([`ExportState::head`], [`ExportState::from_parts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportChange {
    /// The new state without its sessions ([`ExportState::head`]).
    pub head: ExportState,
    /// Each session the run exported (its new entry) or removed (`None`), in order.
    pub sessions: Vec<(NativeId, Option<ExportedSession>)>,
}

impl ExportChange {
    /// The state the run left, from the one it started with (`None`: it was the first).
    pub fn applied_to(self, state: Option<ExportState>) -> ExportState {
        let mut sessions = state.map(|s| s.sessions).unwrap_or_default();
        for (native, exported) in self.sessions {
            match exported {
                Some(exported) => sessions.insert(native, exported),
                None => sessions.remove(&native),
            };
        }
        ExportState::from_parts(self.head, sessions)
    }
}

/// A session the host supplies because [`ExportState::tail_start`] asked for it.
#[derive(Debug, Clone)]
pub struct SessionExport<'a> {
    pub marker: String,
    pub session: Session,
    /// Messages from the ordinal `tail_start` returned (or from 0) to the end.
    pub messages: &'a [Message],
    pub usage_events: Vec<UsageEvent>,
}

/// The artifacts of one commit, in write order: data before references.
#[derive(Debug, Clone, Default)]
pub struct ExportPlan {
    pub segments: Vec<Encoded>,
    pub manifests: Vec<Encoded>,
    pub buckets: Vec<Encoded>,
    pub root: Option<Encoded>,
}

impl ExportPlan {
    /// Everything to write, in the order it must be written.
    pub fn in_write_order(&self) -> impl Iterator<Item = &Encoded> {
        self.segments
            .iter()
            .chain(&self.manifests)
            .chain(&self.buckets)
            .chain(&self.root)
    }
}

impl ExportState {
    pub fn new(origin: OriginId) -> Self {
        ExportState {
            checkpoint: Checkpoint::new(origin.clone()),
            origin,
            seq: 0,
            root: None,
            sessions: BTreeMap::new(),
            events: EventsMark::NoBatch,
        }
    }

    /// The state without its sessions (nor the checkpoint's session map, which repeats their
    /// manifests): small, whatever the archive's size. [`ExportState::from_parts`] joins it
    /// with the sessions again.
    pub fn head(&self) -> ExportState {
        ExportState {
            origin: self.origin.clone(),
            seq: self.seq,
            root: self.root.clone(),
            checkpoint: self.checkpoint.without_sessions(),
            sessions: BTreeMap::new(),
            events: self.events,
        }
    }

    /// A state persisted as its [`head`](ExportState::head) and one entry per session. A head
    /// that still holds sessions (a state saved whole) keeps them; `sessions` go over them.
    pub fn from_parts(
        head: ExportState,
        sessions: impl IntoIterator<Item = (NativeId, ExportedSession)>,
    ) -> ExportState {
        let mut state = head;
        for (native, exported) in sessions {
            state.checkpoint.restore(native.clone(), exported.manifest);
            state.sessions.insert(native, exported);
        }
        state
    }

    /// What a run that left this state, and exported or removed the sessions `touched`,
    /// changed: this head, and those sessions' entries.
    pub fn change<'a>(&self, touched: impl IntoIterator<Item = &'a NativeId>) -> ExportChange {
        ExportChange {
            head: self.head(),
            sessions: touched
                .into_iter()
                .map(|native| (native.clone(), self.sessions.get(native).cloned()))
                .collect(),
        }
    }

    /// Applies what a run changed ([`ExportChange`]): for a host that keeps the state whole.
    pub fn apply(&mut self, change: ExportChange) {
        let origin = self.origin.clone();
        let state = std::mem::replace(self, ExportState::new(origin));
        *self = change.applied_to(Some(state));
    }

    /// `None` when the session is unchanged; otherwise the first ordinal whose messages the
    /// host must pass to [`Exporter::session`] (the start of the open segment, or 0).
    pub fn tail_start(&self, native: &NativeId, marker: &str) -> Option<u64> {
        match self.sessions.get(native) {
            Some(s) if s.marker == marker => None,
            Some(s) => Some(s.segments.last().map_or(0, |seg| seg.first_ordinal)),
            None => Some(0),
        }
    }

    /// A message of an exported session changed after the fact (a tool result that arrived
    /// late): the next export re-encodes the session from the segment holding `ordinal` on,
    /// not only its open tail. The host calls it along with changing the session's marker.
    pub fn amended(&mut self, native: &NativeId, ordinal: u64) {
        if let Some(session) = self.sessions.get_mut(native) {
            // Keep the segments wholly before `ordinal`, and the one holding it as the new
            // open tail, which `tail_start` re-encodes from its first ordinal.
            let keep = session
                .segments
                .iter()
                .take_while(|s| s.first_ordinal <= ordinal)
                .count();
            session.segments.truncate(keep);
        }
    }

    /// Every segment, manifest and bucket id the newest root reaches (for GC).
    pub fn reachable(&self) -> BTreeSet<ArtifactId> {
        let mut out: BTreeSet<ArtifactId> = self.checkpoint.bucket_ids().collect();
        for s in self.sessions.values() {
            out.insert(s.manifest);
            out.extend(s.segments.iter().map(|seg| seg.id));
        }
        out
    }

    /// Starts an export run over this state.
    pub fn begin(&self) -> Exporter {
        self.clone().into_exporter()
    }

    /// [`begin`](ExportState::begin) without a copy of the state, for a caller that keeps
    /// its [`head`](ExportState::head) at most.
    pub fn into_exporter(self) -> Exporter {
        Exporter {
            next: self,
            plan: ExportPlan::default(),
            listings: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }
}

/// One export run: feed it changed sessions, then commit.
#[derive(Debug)]
pub struct Exporter {
    next: ExportState,
    plan: ExportPlan,
    /// The listings the commit's buckets need: of the sessions encoded in this run, and of the
    /// unchanged sessions sharing a bucket with them ([`Exporter::unlisted`]).
    listings: BTreeMap<NativeId, Listing>,
    /// Sessions exported or removed in this run ([`ExportState::change`]).
    touched: BTreeSet<NativeId>,
}

impl Exporter {
    /// Encodes a changed session: new segments from the open tail on, and its manifest. On an
    /// error nothing of the session is planned and the state keeps its previous export.
    pub fn session(&mut self, change: SessionExport<'_>) -> Result<()> {
        let fresh = segment_messages(change.messages);
        self.session_encoded(change, fresh)
    }

    /// [`session`](Self::session) with the messages already cut into segments
    /// ([`segment_messages`] of `change.messages`), which needs nothing of the exporter: a
    /// batch's sessions are encoded at once, on every core the host lends
    /// ([`Compressor::encode_all`](crate::frame::Compressor::encode_all)).
    pub fn session_encoded(
        &mut self,
        change: SessionExport<'_>,
        fresh: Result<Vec<EncodedSegment>>,
    ) -> Result<()> {
        let native = change.session.native_id.clone();
        let start = self.next.tail_start(&native, &change.marker).unwrap_or(0);
        let first = change.messages.first().map_or(start, |m| m.ordinal);
        let kept: Vec<SegmentRef> = match self.next.sessions.get(&native) {
            Some(prev) if first > 0 => prev
                .segments
                .iter()
                .filter(|s| s.first_ordinal < first)
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        let kept_end = end_ordinal(&kept);
        if first != kept_end {
            return Err(Error::malformed(
                "export",
                format!(
                    "session {native}: messages start at ordinal {first}, expected {kept_end} \
                     (pass messages from the ordinal tail_start returned, or from 0)"
                ),
            ));
        }
        let fresh = fresh?;
        let mut segments = kept;
        segments.extend(fresh.iter().map(|seg| seg.reference.clone()));
        let message_count = end_ordinal(&segments);
        let manifest = Manifest {
            origin: self.next.origin.clone(),
            session: change.session,
            message_count,
            segments: segments.clone(),
            usage_events: change.usage_events,
        };
        let encoded = Encoded::manifest(&manifest)?;
        // Nothing of a session that fails to encode is planned: it is all or nothing.
        for seg in fresh {
            self.plan
                .segments
                .push(Encoded::segment(&self.next.origin, seg));
        }
        let manifest_id = encoded.id();
        self.next.checkpoint.insert(native.clone(), manifest_id);
        self.listings.insert(
            native.clone(),
            Listing {
                session: manifest.session,
                message_count,
            },
        );
        self.plan.manifests.push(encoded);
        self.touched.insert(native.clone());
        self.next.sessions.insert(
            native,
            ExportedSession {
                marker: change.marker,
                manifest: manifest_id,
                segments,
            },
        );
        Ok(())
    }

    /// Hands out the segments and manifests encoded so far, so a host writes them before it
    /// encodes more: memory stays bounded by one batch instead of the whole archive. Buckets
    /// and the root still come from [`Exporter::commit`], after all data, so the write order
    /// (data before references) holds.
    pub fn take_data(&mut self) -> Vec<Encoded> {
        let mut out = std::mem::take(&mut self.plan.segments);
        out.append(&mut self.plan.manifests);
        out
    }

    /// Removes a purged session from the checkpoint.
    pub fn remove(&mut self, native: &NativeId) {
        self.next.checkpoint.remove(native);
        if self.next.sessions.remove(native).is_some() {
            self.touched.insert(native.clone());
        }
        self.listings.remove(native);
    }

    /// The exported sessions, as this run leaves them so far.
    pub fn sessions(&self) -> &BTreeMap<NativeId, ExportedSession> {
        &self.next.sessions
    }

    /// Sessions this run exported or removed: with the state [`commit`](Exporter::commit)
    /// returns, what a host persists ([`ExportState::change`]).
    pub fn touched(&self) -> &BTreeSet<NativeId> {
        &self.touched
    }

    /// Unchanged sessions whose bucket the commit rewrites, with the message count they were
    /// exported with: the host reads their records ([`Exporter::listed`]), so every entry of a
    /// rewritten bucket carries its listing. The export state keeps no records: it would grow
    /// by every session's title and first prompt, and it is read on every sync.
    pub fn unlisted(&self) -> Vec<(NativeId, u64)> {
        self.next
            .checkpoint
            .sessions_to_list()
            .filter(|s| !self.listings.contains_key(*s))
            .filter_map(|s| {
                let exported = self.next.sessions.get(s)?;
                Some((s.clone(), end_ordinal(&exported.segments)))
            })
            .collect()
    }

    /// The record of an unchanged session ([`Exporter::unlisted`]), as the archive holds it.
    pub fn listed(&mut self, session: Session, message_count: u64) {
        self.listings.insert(
            session.native_id.clone(),
            Listing {
                session,
                message_count,
            },
        );
    }

    /// Ends the run: the artifacts to write, and the state to persist once they are written.
    /// Writes no root when nothing changed. `seq` continues after the greater of the state's
    /// and `newest_seen` (the origin's newest root in the store, for a host that lost its state).
    /// `events` is the origin's newest event batch once this run's batches are written (they
    /// must be written before the root): a new mark is a change, so publishing curation alone
    /// writes a root.
    pub fn commit(
        mut self,
        created_ms: i64,
        newest_seen: u64,
        events: EventsMark,
        key: &OriginKey,
    ) -> Result<(ExportPlan, ExportState)> {
        // The first export writes a root even for an empty archive: readers find an origin,
        // and its event batches, through its roots.
        if self.next.checkpoint.has_changes()
            || !self.next.checkpoint.is_listed()
            || self.next.root.is_none()
            || self.next.events != events
        {
            let seq = self.next.seq.max(newest_seen) + 1;
            let committed =
                self.next
                    .checkpoint
                    .commit_listed(seq, created_ms, events, key, &self.listings)?;
            self.next.events = events;
            self.plan.buckets = committed.buckets;
            self.next.root = Some(committed.root.key.clone());
            self.plan.root = Some(committed.root);
            self.next.seq = seq;
        }
        // Dedupe segments shared by sessions (forks) and manifests written twice in a run.
        let mut seen = BTreeSet::new();
        self.plan.segments.retain(|e| seen.insert(e.key.clone()));
        Ok((self.plan, self.next))
    }
}

/// The ordinal after the last message of contiguous `segments`: their message count.
fn end_ordinal(segments: &[SegmentRef]) -> u64 {
    segments
        .last()
        .map_or(0, |s| s.first_ordinal + u64::from(s.count))
}
