//! The curation ledger: per-field last-writer-wins replay of curation events, with conflicts
//! defined by causality (DESIGN.md §5).
//!
//! Each op writes one *field* of one session (`display_name`, `starred`, `trashed`, `purged`,
//! `pin:<anchor>`, `tag:<name>`, `note`). A field's *register* holds every event that wrote it:
//! the winner (greatest order key: HLC, origin, event id) and the losers. A loser is a
//! *conflict* when the winner's writer had not seen it (`winner.prev < loser.key`, or no `prev`)
//! and its value differs. Both the register and the conflict set are functions of the *set* of
//! events, so every permutation and duplication of the same events gives the same state, and
//! every machine shows the same conflicts.
//!
//! Purge is a tombstone that dominates: a purged session keeps only its purge, every other event
//! for it is ignored, and hosts never import it again.
//!
//! Local edits go through the same register as remote events ([`LedgerState::edit`]), so an
//! older remote event arriving later cannot overwrite them; every remote HLC is observed by the
//! clock before its event is applied, and one that is too far ahead is deferred instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::{Anchor, DecodedBatch, Event, Op, OrderKey};
use crate::hlc::{Hlc, HlcClock};
use crate::id::ArtifactId;
use crate::names::{OriginId, SessionGid};

/// A curated field of a session.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    DisplayName,
    Starred,
    Trashed,
    Purged,
    /// A pin on one message, keyed by its anchor (`uuid:<source uuid>` or `ord:<ordinal>`).
    Pin(String),
    Tag(String),
    Note,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::DisplayName => f.write_str("display_name"),
            Field::Starred => f.write_str("starred"),
            Field::Trashed => f.write_str("trashed"),
            Field::Purged => f.write_str("purged"),
            Field::Pin(anchor) => write!(f, "pin:{anchor}"),
            Field::Tag(tag) => write!(f, "tag:{tag}"),
            Field::Note => f.write_str("note"),
        }
    }
}

impl std::str::FromStr for Field {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "display_name" => Field::DisplayName,
            "starred" => Field::Starred,
            "trashed" => Field::Trashed,
            "purged" => Field::Purged,
            "note" => Field::Note,
            _ => match s.split_once(':') {
                Some(("pin", anchor)) => Field::Pin(anchor.to_owned()),
                Some(("tag", tag)) => Field::Tag(tag.to_owned()),
                _ => {
                    return Err(Error::InvalidName {
                        what: "ledger field",
                        name: s.chars().take(80).collect(),
                        reason: "unknown field",
                    });
                }
            },
        })
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The key of the pin field an anchor designates.
pub fn anchor_key(anchor: &Anchor) -> Option<String> {
    if !anchor.source_uuid.is_empty() {
        Some(format!("uuid:{}", anchor.source_uuid))
    } else {
        anchor.ordinal.map(|o| format!("ord:{o}"))
    }
}

/// What an event writes into its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A display name or note; empty clears it.
    Text(String),
    /// Starred, trashed, purged, a tag's presence.
    Flag(bool),
    /// A pin with its note, or `None` when unpinned.
    Pin(Option<PinValue>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinValue {
    pub anchor: Anchor,
    pub note: String,
}

/// The field and value of an op; `None` for an op this build does not know.
pub fn field_value(op: &Op) -> Option<(Field, Value)> {
    Some(match op {
        Op::Rename { name } => (Field::DisplayName, Value::Text(name.clone())),
        Op::Star => (Field::Starred, Value::Flag(true)),
        Op::Unstar => (Field::Starred, Value::Flag(false)),
        Op::Trash => (Field::Trashed, Value::Flag(true)),
        Op::Restore => (Field::Trashed, Value::Flag(false)),
        Op::Purge => (Field::Purged, Value::Flag(true)),
        Op::Pin { anchor, note } => (
            Field::Pin(anchor_key(anchor)?),
            Value::Pin(Some(PinValue {
                anchor: anchor.clone(),
                note: note.clone(),
            })),
        ),
        Op::Unpin { anchor } => (Field::Pin(anchor_key(anchor)?), Value::Pin(None)),
        Op::TagAdd { tag } => (Field::Tag(tag.clone()), Value::Flag(true)),
        Op::TagRemove { tag } => (Field::Tag(tag.clone()), Value::Flag(false)),
        Op::SetNote { note } => (Field::Note, Value::Text(note.clone())),
        Op::Unknown { .. } => return None,
    })
}

/// One event as a register keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: OrderKey,
    pub prev: Option<OrderKey>,
    pub value: Value,
}

/// Every event that wrote one field: the winner and the losers (by order key, unique).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    pub winner: Entry,
    pub losers: Vec<Entry>,
}

impl Register {
    fn contains(&self, key: &OrderKey) -> bool {
        self.winner.key == *key || self.losers.binary_search_by(|l| l.key.cmp(key)).is_ok()
    }

    fn insert(&mut self, entry: Entry) {
        let loser = if entry.key > self.winner.key {
            std::mem::replace(&mut self.winner, entry)
        } else {
            entry
        };
        if let Err(at) = self.losers.binary_search_by(|l| l.key.cmp(&loser.key)) {
            self.losers.insert(at, loser);
        }
    }

    /// Losers the winner's writer had not seen and whose value differs.
    pub fn conflicts(&self) -> impl Iterator<Item = &Entry> {
        self.losers.iter().filter(move |l| {
            self.winner.prev.as_ref().is_none_or(|p| *p < l.key) && l.value != self.winner.value
        })
    }
}

/// A conflict: a concurrent value that lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub session: SessionGid,
    pub field: Field,
    pub winner: Entry,
    pub loser: Entry,
}

/// What a host must do to its rows after a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "apply", rename_all = "snake_case")]
pub enum Projection {
    /// Set a field to the winning value.
    Set {
        session: SessionGid,
        field: Field,
        value: Value,
    },
    /// Delete the session and block its import for good.
    Purge { session: SessionGid },
}

/// Why an event was not applied yet. The host keeps it and offers it again later; a deferred
/// event never blocks the events behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DeferReason {
    /// Its HLC is more than the max drift ahead of the local wall clock.
    TooFarAhead { wall_ms: u64 },
    /// Its session is not in the local archive yet.
    TargetMissing,
    /// An op of a newer format version.
    UnknownOp { tag: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    pub key: OrderKey,
    pub session: SessionGid,
    #[serde(flatten)]
    pub reason: DeferReason,
}

/// An event together with the origin that signed its batch and its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEvent {
    pub origin: OriginId,
    pub id: ArtifactId,
    #[serde(flatten)]
    pub event: Event,
}

impl SignedEvent {
    pub fn key(&self) -> OrderKey {
        OrderKey {
            hlc: self.event.hlc,
            origin: self.origin.clone(),
            event: self.id,
        }
    }
}

impl DecodedBatch {
    /// The batch's events with their origin and ids, ready for replay.
    pub fn signed_events(&self) -> Vec<SignedEvent> {
        self.batch
            .events
            .iter()
            .zip(&self.event_ids)
            .map(|(event, id)| SignedEvent {
                origin: self.batch.origin.clone(),
                id: *id,
                event: event.clone(),
            })
            .collect()
    }
}

/// The outcome of one replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// Changes the host applies to its rows, in session and field order.
    pub projections: Vec<Projection>,
    /// The complete conflict set of every field this replay touched (replacing what the host
    /// stored for those fields).
    pub conflicts: Vec<Conflict>,
    /// Fields whose conflicts are listed above, including those left with none.
    pub touched: Vec<(SessionGid, Field)>,
    pub deferred: Vec<Deferred>,
    /// Events applied (not duplicates, not ignored).
    pub applied: usize,
    pub duplicates: usize,
    /// Events for sessions already purged.
    pub ignored: usize,
}

/// Curation that existed before sync was enabled, for [`LedgerState::baseline`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Curation {
    pub display_name: String,
    pub starred: bool,
    pub trashed: bool,
    pub pins: Vec<PinValue>,
    pub tags: Vec<String>,
    pub note: String,
}

/// Errors of local edits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    #[error("session {0} was purged; it cannot be edited")]
    Purged(SessionGid),
    #[error("op {0} is not a known curation op")]
    UnknownOp(u64),
    #[error("a pin needs a source uuid or an ordinal")]
    AnchorMissing,
    /// Over a limit every reader applies (a name, a tag, a note): refused at the edit, so it
    /// never reaches a batch that readers would refuse.
    #[error("{0}")]
    Invalid(crate::error::Error),
}

/// The registers of every curated field, and the purged sessions. Serializes canonically
/// (maps in key order), so equal states have equal bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    registers: BTreeMap<SessionGid, BTreeMap<Field, Register>>,
    /// Purged sessions, with the least purge key seen.
    purged: BTreeMap<SessionGid, OrderKey>,
}

enum Applied {
    New,
    Duplicate,
    Ignored,
}

impl LedgerState {
    pub fn register(&self, session: &SessionGid, field: &Field) -> Option<&Register> {
        self.registers.get(session)?.get(field)
    }

    pub fn registers(&self) -> impl Iterator<Item = (&SessionGid, &Field, &Register)> {
        self.registers
            .iter()
            .flat_map(|(s, fields)| fields.iter().map(move |(f, r)| (s, f, r)))
    }

    pub fn is_purged(&self, session: &SessionGid) -> bool {
        self.purged.contains_key(session)
    }

    pub fn purged(&self) -> impl Iterator<Item = &SessionGid> {
        self.purged.keys()
    }

    /// The winning value of a field.
    pub fn value(&self, session: &SessionGid, field: &Field) -> Option<&Value> {
        self.register(session, field).map(|r| &r.winner.value)
    }

    /// Every conflict, in session and field order.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut out = Vec::new();
        for (session, field, register) in self.registers() {
            push_conflicts(&mut out, session, field, register);
        }
        out
    }

    fn apply(&mut self, key: OrderKey, event: &Event, field: Field, value: Value) -> Applied {
        if let Some(purge) = self.purged.get_mut(&event.session) {
            if field == Field::Purged {
                if key < *purge {
                    *purge = key;
                }
                return Applied::Duplicate;
            }
            return Applied::Ignored;
        }
        if field == Field::Purged {
            self.registers.remove(&event.session);
            self.purged.insert(event.session.clone(), key);
            return Applied::New;
        }
        let entry = Entry {
            key,
            prev: event.prev.clone(),
            value,
        };
        let fields = self.registers.entry(event.session.clone()).or_default();
        match fields.get_mut(&field) {
            None => {
                fields.insert(
                    field,
                    Register {
                        winner: entry,
                        losers: Vec::new(),
                    },
                );
                Applied::New
            }
            Some(register) if register.contains(&entry.key) => Applied::Duplicate,
            Some(register) => {
                register.insert(entry);
                Applied::New
            }
        }
    }

    /// Replays events (any order, duplicates allowed) into the registers.
    ///
    /// Each event's HLC is observed by `clock` before the event is applied; an event more than
    /// the clock's max drift ahead of `wall_ms` is deferred without moving the clock. Events
    /// whose session `is_present` denies are deferred (purges excepted: a tombstone needs no
    /// target). Unknown ops are deferred for a newer build.
    pub fn replay(
        &mut self,
        clock: &mut HlcClock,
        wall_ms: u64,
        events: impl IntoIterator<Item = SignedEvent>,
        is_present: &dyn Fn(&SessionGid) -> bool,
    ) -> Replay {
        let mut events: Vec<SignedEvent> = events.into_iter().collect();
        events.sort_by_cached_key(SignedEvent::key);
        events.dedup_by(|a, b| a.origin == b.origin && a.id == b.id);
        let mut out = Replay::default();
        let mut before: BTreeMap<SessionGid, BTreeMap<Field, Option<Value>>> = BTreeMap::new();
        let mut newly_purged = BTreeSet::new();
        for signed in events {
            let key = signed.key();
            let event = &signed.event;
            let Some((field, value)) = field_value(&event.op) else {
                out.deferred.push(Deferred {
                    key,
                    session: event.session.clone(),
                    reason: DeferReason::UnknownOp {
                        tag: event.op.tag(),
                    },
                });
                continue;
            };
            if field != Field::Purged
                && !self.is_purged(&event.session)
                && !is_present(&event.session)
            {
                out.deferred.push(Deferred {
                    key,
                    session: event.session.clone(),
                    reason: DeferReason::TargetMissing,
                });
                continue;
            }
            if clock.observe(event.hlc, wall_ms).is_err() {
                out.deferred.push(Deferred {
                    key,
                    session: event.session.clone(),
                    reason: DeferReason::TooFarAhead { wall_ms },
                });
                continue;
            }
            if self
                .register(&event.session, &field)
                .is_some_and(|r| r.contains(&key))
            {
                out.duplicates += 1;
                continue;
            }
            let seen = match before.get_mut(&event.session) {
                Some(fields) => fields,
                None => before.entry(event.session.clone()).or_default(),
            };
            if !seen.contains_key(&field) {
                let old = self.value(&event.session, &field).cloned();
                seen.insert(field.clone(), old);
            }
            let is_purge = field == Field::Purged;
            match self.apply(key, event, field, value) {
                Applied::New => {
                    out.applied += 1;
                    if is_purge {
                        newly_purged.insert(event.session.clone());
                    }
                }
                Applied::Duplicate => out.duplicates += 1,
                Applied::Ignored => out.ignored += 1,
            }
        }
        self.finish(before, newly_purged, &mut out);
        out
    }

    fn finish(
        &self,
        before: BTreeMap<SessionGid, BTreeMap<Field, Option<Value>>>,
        newly_purged: BTreeSet<SessionGid>,
        out: &mut Replay,
    ) {
        let touched = before
            .into_iter()
            .flat_map(|(s, fields)| fields.into_iter().map(move |(f, old)| (s.clone(), f, old)));
        for (session, field, old) in touched {
            if let Some(register) = self.register(&session, &field) {
                if old.as_ref() != Some(&register.winner.value) {
                    out.projections.push(Projection::Set {
                        session: session.clone(),
                        field: field.clone(),
                        value: register.winner.value.clone(),
                    });
                }
                push_conflicts(&mut out.conflicts, &session, &field, register);
            }
            out.touched.push((session, field));
        }
        for session in newly_purged {
            out.projections.push(Projection::Purge { session });
        }
    }

    /// Records a local edit: stamps it with `clock`, sets `prev` to the field's current winner,
    /// and applies it through the same register as remote events. Returns the event to publish.
    pub fn edit(
        &mut self,
        clock: &mut HlcClock,
        wall_ms: u64,
        origin: &OriginId,
        session: SessionGid,
        op: Op,
    ) -> Result<SignedEvent, EditError> {
        if self.is_purged(&session) {
            return Err(EditError::Purged(session));
        }
        let op = op.normalized().map_err(EditError::Invalid)?;
        op.validate().map_err(EditError::Invalid)?;
        let (field, value) = match field_value(&op) {
            Some(fv) => fv,
            None if matches!(op, Op::Pin { .. } | Op::Unpin { .. }) => {
                return Err(EditError::AnchorMissing);
            }
            None => return Err(EditError::UnknownOp(op.tag())),
        };
        let event = Event {
            hlc: clock.now(wall_ms),
            prev: self
                .register(&session, &field)
                .map(|r| r.winner.key.clone()),
            session,
            op,
        };
        let signed = SignedEvent {
            origin: origin.clone(),
            id: event.id(),
            event,
        };
        self.apply(signed.key(), &signed.event, field, value);
        Ok(signed)
    }

    /// Turns curation that predates sync into events, skipping every field a register already
    /// covers (so a second run emits nothing) and default values (nothing to publish).
    /// Take it before importing peers, and publish what it returns before anything else.
    pub fn baseline(
        &mut self,
        clock: &mut HlcClock,
        wall_ms: u64,
        origin: &OriginId,
        sessions: &BTreeMap<SessionGid, Curation>,
    ) -> Vec<SignedEvent> {
        let mut out = Vec::new();
        for (session, curation) in sessions {
            if self.is_purged(session) {
                continue;
            }
            let mut ops = Vec::new();
            if !curation.display_name.is_empty() {
                ops.push(Op::Rename {
                    name: curation.display_name.clone(),
                });
            }
            if curation.starred {
                ops.push(Op::Star);
            }
            if curation.trashed {
                ops.push(Op::Trash);
            }
            for pin in &curation.pins {
                ops.push(Op::Pin {
                    anchor: pin.anchor.clone(),
                    note: pin.note.clone(),
                });
            }
            for tag in &curation.tags {
                ops.push(Op::TagAdd { tag: tag.clone() });
            }
            if !curation.note.is_empty() {
                ops.push(Op::SetNote {
                    note: curation.note.clone(),
                });
            }
            for op in ops {
                let Some((field, _)) = field_value(&op) else {
                    continue;
                };
                if self.register(session, &field).is_some() {
                    continue;
                }
                if let Ok(event) = self.edit(clock, wall_ms, origin, session.clone(), op) {
                    out.push(event);
                }
            }
        }
        out
    }
}

fn push_conflicts(
    out: &mut Vec<Conflict>,
    session: &SessionGid,
    field: &Field,
    register: &Register,
) {
    for loser in register.conflicts() {
        out.push(Conflict {
            session: session.clone(),
            field: field.clone(),
            winner: register.winner.clone(),
            loser: loser.clone(),
        });
    }
}

/// The greatest HLC among events, for resuming a clock after a rebuild.
pub fn max_hlc<'a>(events: impl IntoIterator<Item = &'a SignedEvent>) -> Option<Hlc> {
    events.into_iter().map(|e| e.event.hlc).max()
}
