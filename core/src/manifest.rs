//! Session manifests: a session's record, its ordered segments and its usage events.
//!
//! Body (inside the binary envelope, see `envelope.rs`):
//!
//! ```text
//! str        origin
//! record     session (model.rs)
//! varint     message_count (= the sum of the segment counts)
//! varint n, n × record { id [32], first_ordinal varint, count varint, bytes varint }
//! varint m, m × record usage event
//! ```
//!
//! Segments are contiguous from ordinal 0. A session with usage but no messages has no
//! segments and is still published (DESIGN.md §5, edge case 7).

use serde::{Deserialize, Serialize};

use crate::binary::{Reader, Writer};
use crate::envelope;
use crate::error::{Error, Result};
use crate::kind::ArtifactKind;
use crate::limits;
use crate::model::{Session, UsageEvent};
use crate::names::{OriginId, SessionGid};
use crate::segment::SegmentRef;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub origin: OriginId,
    pub session: Session,
    pub message_count: u64,
    pub segments: Vec<SegmentRef>,
    pub usage_events: Vec<UsageEvent>,
}

impl Manifest {
    pub fn gid(&self) -> SessionGid {
        SessionGid::new(self.origin.clone(), self.session.native_id.clone())
    }

    fn validate(&self) -> Result<()> {
        self.session.validate()?;
        limits::check_count(
            "manifest segments",
            self.segments.len(),
            limits::MAX_SEGMENTS_PER_SESSION,
        )?;
        limits::check_count(
            "manifest usage events",
            self.usage_events.len(),
            limits::MAX_USAGE_EVENTS,
        )?;
        let mut next = 0u64;
        for seg in &self.segments {
            if seg.first_ordinal != next {
                return Err(Error::malformed(
                    "manifest",
                    format!(
                        "segment {} starts at ordinal {}, expected {next}",
                        seg.id, seg.first_ordinal
                    ),
                ));
            }
            if seg.count == 0 || seg.count as usize > limits::SEGMENT_MAX_MESSAGES {
                return Err(Error::malformed(
                    "manifest",
                    format!("segment {} has count {}", seg.id, seg.count),
                ));
            }
            if seg.bytes > limits::SEGMENT.max_canonical as u64 {
                return Err(Error::SizeLimit {
                    kind: "segment",
                    limit: limits::SEGMENT.max_canonical as u64,
                    actual: seg.bytes,
                });
            }
            next += u64::from(seg.count);
        }
        if next != self.message_count {
            return Err(Error::malformed(
                "manifest",
                format!(
                    "message_count {} differs from the {next} messages its segments hold",
                    self.message_count
                ),
            ));
        }
        for ev in &self.usage_events {
            ev.validate()?;
        }
        Ok(())
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        Ok(envelope::encode(ArtifactKind::Manifest, None, |w| {
            w.str(self.origin.as_str());
            self.session.write(w);
            w.varint(self.message_count);
            w.varint(self.segments.len() as u64);
            for seg in &self.segments {
                write_segment_ref(w, seg);
            }
            w.varint(self.usage_events.len() as u64);
            for ev in &self.usage_events {
                ev.write(w);
            }
        }))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (manifest, _) = envelope::decode(ArtifactKind::Manifest, bytes, |r| {
            let origin: OriginId = r.str("manifest.origin", limits::MAX_ORIGIN)?.parse()?;
            let session = Session::read(r)?;
            let message_count = r.varint("manifest.message_count")?;
            let n = r.count("manifest segments", limits::MAX_SEGMENTS_PER_SESSION, 36)?;
            let mut segments = Vec::with_capacity(n);
            for _ in 0..n {
                segments.push(read_segment_ref(r)?);
            }
            let m = r.count("manifest usage events", limits::MAX_USAGE_EVENTS, 1)?;
            let mut usage_events = Vec::with_capacity(m);
            for _ in 0..m {
                usage_events.push(UsageEvent::read(r)?);
            }
            Ok(Manifest {
                origin,
                session,
                message_count,
                segments,
                usage_events,
            })
        })?;
        manifest.validate()?;
        Ok(manifest)
    }
}

fn write_segment_ref(w: &mut Writer, seg: &SegmentRef) {
    w.record(|w| {
        w.id(&seg.id);
        w.varint(seg.first_ordinal);
        w.varint(u64::from(seg.count));
        w.varint(seg.bytes);
    });
}

fn read_segment_ref(r: &mut Reader<'_>) -> Result<SegmentRef> {
    r.record("segment ref", limits::MAX_RECORD, |r| {
        Ok(SegmentRef {
            id: r.id("segment ref id")?,
            first_ordinal: r.varint("segment ref first_ordinal")?,
            count: r.u32("segment ref count")?,
            bytes: r.varint("segment ref bytes")?,
        })
    })
}
