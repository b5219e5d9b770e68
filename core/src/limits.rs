//! The v1 decoding limits. Every decoder checks these before allocating, so a hostile artifact
//! costs at most its bounded size. They are part of the wire spec (`docs/format.md`, "Limits"):
//! a writer must never produce an artifact over them.

use crate::error::{Error, Result};

/// A string over `limit` bytes is a [`Error::StringLimit`].
pub(crate) fn check_len(what: &'static str, value: &str, limit: usize) -> Result<()> {
    if value.len() > limit {
        return Err(Error::StringLimit {
            what,
            limit: limit as u64,
            actual: value.len() as u64,
        });
    }
    Ok(())
}

/// More than `limit` items is a [`Error::CountLimit`].
pub(crate) fn check_count(what: &'static str, n: usize, limit: usize) -> Result<()> {
    if n > limit {
        return Err(Error::CountLimit {
            what,
            limit: limit as u64,
            actual: n as u64,
        });
    }
    Ok(())
}

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * KIB;

/// Limits of one artifact kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindLimits {
    /// Largest stored object (frame header + payload as written to a store).
    pub max_stored: usize,
    /// Largest canonical (decompressed) content.
    pub max_canonical: usize,
}

pub const SEGMENT: KindLimits = KindLimits {
    max_stored: 40 * MIB,
    max_canonical: 40 * MIB,
};
pub const MANIFEST: KindLimits = KindLimits {
    max_stored: 8 * MIB,
    max_canonical: 8 * MIB,
};
pub const BUCKET: KindLimits = KindLimits {
    max_stored: 8 * MIB,
    max_canonical: 8 * MIB,
};
pub const ROOT: KindLimits = KindLimits {
    max_stored: 4 * MIB,
    max_canonical: 4 * MIB,
};
pub const EVENTS: KindLimits = KindLimits {
    max_stored: 4 * MIB,
    max_canonical: 4 * MIB,
};

/// Largest stored object of any kind: what a host may read before it knows the kind.
pub const MAX_STORED_ANY: usize = 40 * MIB;

/// The most stored bytes an artifact whose canonical size is declared as `canonical` can take:
/// its frame header plus zstd's worst-case expansion. A reader asks for no more than this, so
/// a reference that understates a size cannot make it hold more (issue 17 item 6).
pub fn stored_bound(canonical: u64) -> u64 {
    (MAX_FRAME_HEADER as u64)
        .saturating_add(canonical)
        .saturating_add(canonical / 64)
        .saturating_add(1024)
        .min(MAX_STORED_ANY as u64)
}

/// Frame header body bytes a reader accepts (v1 writes 48; newer writers may append).
pub const MAX_FRAME_HEADER: usize = 1024;

// Segments.
/// Writers close a segment before it would pass this many canonical bytes...
pub const SEGMENT_TARGET_BYTES: usize = 256 * KIB;
/// ...or this many messages.
pub const SEGMENT_TARGET_MESSAGES: usize = 128;
/// Readers accept up to this many messages per segment.
pub const SEGMENT_MAX_MESSAGES: usize = 4096;
/// One canonical message line, including its newline.
pub const MAX_MESSAGE_BYTES: usize = 32 * MIB;
/// JSON nesting depth of one segment line (the v1 schema needs 5).
pub const MAX_JSON_DEPTH: u32 = 16;
pub const MAX_TOOL_CALLS: usize = 4096;
pub const MAX_RESULT_EVENTS: usize = 4096;

// Manifests.
pub const MAX_SEGMENTS_PER_SESSION: usize = 65_536;
pub const MAX_USAGE_EVENTS: usize = 100_000;

// Checkpoints.
pub const MAX_BUCKET_BITS: u8 = 16;
pub const MAX_BUCKET_ENTRIES: usize = 65_536;
/// Writers pick the smallest bucket count that keeps this many sessions or fewer per bucket on
/// average.
pub const BUCKET_TARGET_ENTRIES: usize = 128;

// Event batches.
pub const MAX_EVENTS_PER_BATCH: usize = 10_000;

// Strings.
pub const MAX_NATIVE_ID: usize = 128;
pub const MAX_ORIGIN: usize = 63;
/// Short labels: agent, parser, role, model, category, status, source.
pub const MAX_LABEL: usize = 256;
/// Paths, project names, branches, uuids, dedup keys.
pub const MAX_PATH: usize = 4 * KIB;
/// Display names, tags.
pub const MAX_NAME: usize = 1024;
/// Notes, first-message excerpts.
pub const MAX_NOTE: usize = 64 * KIB;
/// Message content, thinking, tool input and results.
pub const MAX_TEXT: usize = 16 * MIB;
/// HLC text (fixed width in v1; a little slack for a newer writer is not accepted).
pub const MAX_HLC: usize = 64;
/// Opaque payload of an event op this reader does not know.
pub const MAX_OP_PAYLOAD: usize = 64 * KIB;
/// Any record wrapper (its fields are bounded on their own).
pub const MAX_RECORD: usize = 40 * MIB;
