//! Event batches: the signed, write-once container of an origin's curation events.
//!
//! Body: `str origin, varint n, n × event record`, then the origin's signature.
//!
//! Event record:
//!
//! ```text
//! str      hlc (text form, hlc.rs)
//! str      target session gid
//! u8 0|1   prev present; if 1: record { str hlc, str origin, id [32] }
//! varint   op tag
//! bytes    op payload (length-prefixed, so a reader skips ops it does not know)
//! ```
//!
//! The event id is BLAKE3 of the event record's bytes (without its length prefix). Events of a
//! batch have strictly increasing HLCs (the origin's own clock); the batch is named after the
//! first one, so listing `<origin>/events/` with `start-after` yields new batches in order.
//! What the ops mean (last-writer-wins replay, conflicts) is the curation ledger's business.

use serde::{Deserialize, Serialize};

use crate::artifact::Encoded;
use crate::binary::{Reader, Writer};
use crate::envelope;
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::id::ArtifactId;
use crate::kind::ArtifactKind;
use crate::limits::{self, MAX_EVENTS_PER_BATCH};
use crate::names::{ArtifactKey, OriginId, SessionGid};
use crate::signature::{OriginKey, PublicKey};

/// A message a pin points at: its source uuid, with the ordinal as fallback.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Anchor {
    pub source_uuid: String,
    pub ordinal: Option<u64>,
}

/// Bytes shown as hex in JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueBytes(pub Vec<u8>);

impl Serialize for OpaqueBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for OpaqueBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s)
            .map(OpaqueBytes)
            .map_err(serde::de::Error::custom)
    }
}

/// A curation operation. `Unknown` keeps an op of a newer writer, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// An empty name clears the user's name.
    Rename {
        name: String,
    },
    Star,
    Unstar,
    Trash,
    Restore,
    /// A tombstone: the session is deleted everywhere and never imported again.
    Purge,
    Pin {
        anchor: Anchor,
        note: String,
    },
    Unpin {
        anchor: Anchor,
    },
    TagAdd {
        tag: String,
    },
    TagRemove {
        tag: String,
    },
    /// An empty note clears it.
    SetNote {
        note: String,
    },
    Unknown {
        tag: u64,
        payload: OpaqueBytes,
    },
}

impl Op {
    /// The op as an edit records it: a tag in its one spelling ([`normalize_tag`]). Hosts
    /// compare this form with what is stored ("changes nothing") and the ledger records it.
    pub fn normalized(self) -> Result<Op> {
        Ok(match self {
            Op::TagAdd { tag } => Op::TagAdd {
                tag: normalize_tag(&tag)?,
            },
            Op::TagRemove { tag } => Op::TagRemove {
                tag: normalize_tag(&tag)?,
            },
            other => other,
        })
    }
}

/// The one spelling of a tag typed at an edit, the same on every machine and in every host:
/// lowercase letters and digits, with `-`, `_`, `.`, `/` or `:` after the first character; no
/// spaces, commas or other marks (several tags are several arguments). `Bug` and `bug` are one
/// tag. Readers still accept any tag within the limits, as older versions wrote them.
pub fn normalize_tag(text: &str) -> Result<String> {
    let tag = text.trim().to_lowercase();
    let invalid = |reason: &'static str| Error::InvalidName {
        what: "tag",
        name: text.to_owned(),
        reason,
    };
    let mut chars = tag.chars();
    match chars.next() {
        None => return Err(invalid("a tag cannot be empty")),
        Some(c) if !c.is_alphanumeric() => {
            return Err(invalid("a tag starts with a letter or a digit"));
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':')) {
        return Err(invalid(
            "a tag is letters and digits with - _ . / : inside; no spaces, commas or other \
             marks (give several tags as separate arguments)",
        ));
    }
    limits::check_len("tag", &tag, limits::MAX_NAME)?;
    Ok(tag)
}

impl Op {
    /// The op's name, as its JSON form spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Rename { .. } => "rename",
            Op::Star => "star",
            Op::Unstar => "unstar",
            Op::Trash => "trash",
            Op::Restore => "restore",
            Op::Purge => "purge",
            Op::Pin { .. } => "pin",
            Op::Unpin { .. } => "unpin",
            Op::TagAdd { .. } => "tag_add",
            Op::TagRemove { .. } => "tag_remove",
            Op::SetNote { .. } => "set_note",
            Op::Unknown { .. } => "unknown",
        }
    }

    pub fn tag(&self) -> u64 {
        match self {
            Op::Rename { .. } => 1,
            Op::Star => 2,
            Op::Unstar => 3,
            Op::Trash => 4,
            Op::Restore => 5,
            Op::Purge => 6,
            Op::Pin { .. } => 7,
            Op::Unpin { .. } => 8,
            Op::TagAdd { .. } => 9,
            Op::TagRemove { .. } => 10,
            Op::SetNote { .. } => 11,
            Op::Unknown { tag, .. } => *tag,
        }
    }

    fn write_payload(&self, w: &mut Writer) {
        match self {
            Op::Rename { name } => w.str(name),
            Op::Star | Op::Unstar | Op::Trash | Op::Restore | Op::Purge => {}
            Op::Pin { anchor, note } => {
                write_anchor(w, anchor);
                w.str(note);
            }
            Op::Unpin { anchor } => write_anchor(w, anchor),
            Op::TagAdd { tag } | Op::TagRemove { tag } => w.str(tag),
            Op::SetNote { note } => w.str(note),
            Op::Unknown { payload, .. } => w.raw(&payload.0),
        }
    }

    fn read(tag: u64, payload: &[u8]) -> Result<Op> {
        let mut r = Reader::new(payload);
        let r = &mut r;
        Ok(match tag {
            1 => Op::Rename {
                name: r.str("rename name", limits::MAX_NAME)?,
            },
            2 => Op::Star,
            3 => Op::Unstar,
            4 => Op::Trash,
            5 => Op::Restore,
            6 => Op::Purge,
            7 => Op::Pin {
                anchor: read_anchor(r)?,
                note: r.str("pin note", limits::MAX_NOTE)?,
            },
            8 => Op::Unpin {
                anchor: read_anchor(r)?,
            },
            9 => Op::TagAdd {
                tag: r.str("tag", limits::MAX_NAME)?,
            },
            10 => Op::TagRemove {
                tag: r.str("tag", limits::MAX_NAME)?,
            },
            11 => Op::SetNote {
                note: r.str("note", limits::MAX_NOTE)?,
            },
            0 => return Err(Error::malformed("event", "op tag 0")),
            _ => Op::Unknown {
                tag,
                payload: OpaqueBytes(payload.to_vec()),
            },
        })
    }

    /// Checks the op against the limits every reader applies: a writer checks the same, so no
    /// reader ever refuses what a writer published.
    pub fn validate(&self) -> Result<()> {
        let check = limits::check_len;
        match self {
            Op::Rename { name } => check("rename name", name, limits::MAX_NAME),
            Op::Pin { anchor, note } => {
                check("anchor source_uuid", &anchor.source_uuid, limits::MAX_PATH)?;
                check_anchor(anchor)?;
                check("pin note", note, limits::MAX_NOTE)
            }
            Op::Unpin { anchor } => {
                check("anchor source_uuid", &anchor.source_uuid, limits::MAX_PATH)?;
                check_anchor(anchor)
            }
            Op::TagAdd { tag } | Op::TagRemove { tag } => check("tag", tag, limits::MAX_NAME),
            Op::SetNote { note } => check("note", note, limits::MAX_NOTE),
            Op::Unknown { tag: 0, .. } => Err(Error::malformed("event", "op tag 0")),
            Op::Unknown { payload, .. } if payload.0.len() > limits::MAX_OP_PAYLOAD => {
                Err(Error::StringLimit {
                    what: "op payload",
                    limit: limits::MAX_OP_PAYLOAD as u64,
                    actual: payload.0.len() as u64,
                })
            }
            _ => Ok(()),
        }
    }
}

fn check_anchor(anchor: &Anchor) -> Result<()> {
    if anchor.source_uuid.is_empty() && anchor.ordinal.is_none() {
        return Err(Error::malformed(
            "event",
            "a pin anchor needs a source uuid or an ordinal",
        ));
    }
    Ok(())
}

fn write_anchor(w: &mut Writer, anchor: &Anchor) {
    w.record(|w| {
        w.str(&anchor.source_uuid);
        w.opt_varint(anchor.ordinal);
    });
}

fn read_anchor(r: &mut Reader<'_>) -> Result<Anchor> {
    r.record("anchor", limits::MAX_RECORD, |r| {
        Ok(Anchor {
            source_uuid: r.str("anchor source_uuid", limits::MAX_PATH)?,
            ordinal: r.opt_varint("anchor ordinal")?,
        })
    })
}

/// The total order of events: HLC, then origin, then event id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderKey {
    pub hlc: Hlc,
    pub origin: OriginId,
    pub event: ArtifactId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub hlc: Hlc,
    pub session: SessionGid,
    /// The order key of the field value the writer had seen when it made this edit.
    pub prev: Option<OrderKey>,
    #[serde(flatten)]
    pub op: Op,
}

impl Event {
    /// The event record's bytes (without length prefix), whose BLAKE3 is the event id.
    pub fn record_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let hlc = self.hlc.to_string();
        w.str(&hlc);
        w.str(&self.session.to_string());
        match &self.prev {
            None => w.u8(0),
            Some(prev) => {
                w.u8(1);
                w.record(|w| {
                    w.str(&prev.hlc.to_string());
                    w.str(prev.origin.as_str());
                    w.id(&prev.event);
                });
            }
        }
        w.varint(self.op.tag());
        let mut payload = Writer::new();
        self.op.write_payload(&mut payload);
        w.bytes(&payload.into_bytes());
        w.into_bytes()
    }

    pub fn id(&self) -> ArtifactId {
        ArtifactId::of(&self.record_bytes())
    }

    fn read(r: &mut Reader<'_>) -> Result<(ArtifactId, Event)> {
        let body = r.bytes("event", limits::MAX_RECORD)?;
        let id = ArtifactId::of(body);
        let mut r = Reader::new(body);
        let r = &mut r;
        let hlc: Hlc = r.str("event hlc", limits::MAX_HLC)?.parse()?;
        let session: SessionGid = r.str("event session", limits::MAX_PATH)?.parse()?;
        let prev = match r.u8("event prev")? {
            0 => None,
            1 => Some(r.record("event prev", limits::MAX_RECORD, |r| {
                Ok(OrderKey {
                    hlc: r.str("prev hlc", limits::MAX_HLC)?.parse()?,
                    origin: r.str("prev origin", limits::MAX_ORIGIN)?.parse()?,
                    event: r.id("prev event")?,
                })
            })?),
            _ => return Err(Error::malformed("event", "prev tag is neither 0 nor 1")),
        };
        let tag = r.varint("event op")?;
        let payload = r.bytes("op payload", limits::MAX_OP_PAYLOAD)?;
        let op = Op::read(tag, payload)?;
        Ok((
            id,
            Event {
                hlc,
                session,
                prev,
                op,
            },
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    pub origin: OriginId,
    pub events: Vec<Event>,
}

/// A batch as read from a store: its events with their ids, and the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodedBatch {
    pub batch: EventBatch,
    pub event_ids: Vec<ArtifactId>,
    pub signer: PublicKey,
}

impl EventBatch {
    fn validate(&self) -> Result<()> {
        if self.events.is_empty() {
            return Err(Error::malformed(
                "events",
                "a batch holds at least one event",
            ));
        }
        limits::check_count("batch events", self.events.len(), MAX_EVENTS_PER_BATCH)?;
        for pair in self.events.windows(2) {
            if pair[0].hlc >= pair[1].hlc {
                return Err(Error::malformed(
                    "events",
                    format!(
                        "HLCs must strictly increase within a batch: {} then {}",
                        pair[0].hlc, pair[1].hlc
                    ),
                ));
            }
        }
        for event in &self.events {
            event.op.validate()?;
        }
        Ok(())
    }

    /// The canonical bytes, signed with the origin's key.
    pub fn encode(&self, key: &OriginKey) -> Result<Vec<u8>> {
        self.validate()?;
        Ok(envelope::encode(ArtifactKind::Events, Some(key), |w| {
            w.str(self.origin.as_str());
            w.varint(self.events.len() as u64);
            for event in &self.events {
                w.bytes(&event.record_bytes());
            }
        }))
    }

    /// Encodes and names the batch.
    pub fn seal(&self, key: &OriginKey) -> Result<Encoded> {
        let canonical = self.encode(key)?;
        Ok(Encoded {
            key: ArtifactKey::Events {
                origin: self.origin.clone(),
                hlc: self.events[0].hlc,
                id: ArtifactId::of(&canonical),
            },
            canonical,
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<DecodedBatch> {
        let ((batch, event_ids), signer) = envelope::decode(ArtifactKind::Events, bytes, |r| {
            let origin: OriginId = r.str("events.origin", limits::MAX_ORIGIN)?.parse()?;
            let n = r.count("batch events", MAX_EVENTS_PER_BATCH, 34)?;
            let mut events = Vec::with_capacity(n);
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                let (id, event) = Event::read(r)?;
                ids.push(id);
                events.push(event);
            }
            Ok((EventBatch { origin, events }, ids))
        })?;
        batch.validate()?;
        let signer = signer.ok_or(Error::BadSignature { what: "events" })?;
        Ok(DecodedBatch {
            batch,
            event_ids,
            signer,
        })
    }
}

#[cfg(test)]
mod tag_tests {
    use super::normalize_tag;

    #[test]
    fn tags_have_one_spelling_and_no_separators() {
        assert_eq!(normalize_tag(" Bug ").unwrap(), "bug");
        assert_eq!(normalize_tag("Ünïcode").unwrap(), "ünïcode");
        assert_eq!(
            normalize_tag("v1.4/release:ok-2_b").unwrap(),
            "v1.4/release:ok-2_b"
        );
        for bad in [
            "",
            "a,b",
            "two words",
            "-x",
            "+x",
            ".x",
            "a\u{1b}[2J",
            "tab\there",
            "a;b",
        ] {
            let err = normalize_tag(bad).unwrap_err();
            assert_eq!(err.class(), "InvalidName", "{bad:?}");
        }
        assert_eq!(
            normalize_tag(&"t".repeat(1025)).unwrap_err().class(),
            "StringLimit"
        );
    }
}
