//! The artifact kinds of format v1.

use core::fmt;

use crate::error::{Error, Result};
use crate::limits::{self, KindLimits};

/// What an artifact is. The code is the byte that names the kind in frame headers and in the
/// binary envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArtifactKind {
    /// A contiguous run of one session's messages, NDJSON.
    Segment,
    /// A session's record, its ordered segment ids and its usage events.
    Manifest,
    /// One hash bucket of an origin's checkpoint: native session id → manifest id.
    Bucket,
    /// An origin's signed checkpoint root: its non-empty buckets.
    Root,
    /// A signed batch of curation events.
    Events,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 5] = [
        ArtifactKind::Segment,
        ArtifactKind::Manifest,
        ArtifactKind::Bucket,
        ArtifactKind::Root,
        ArtifactKind::Events,
    ];

    pub const fn code(self) -> u8 {
        match self {
            ArtifactKind::Segment => 1,
            ArtifactKind::Manifest => 2,
            ArtifactKind::Bucket => 3,
            ArtifactKind::Root => 4,
            ArtifactKind::Events => 5,
        }
    }

    pub fn from_code(code: u8) -> Result<Self> {
        ArtifactKind::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .ok_or_else(|| Error::malformed("artifact kind", format!("unknown kind code {code}")))
    }

    pub const fn name(self) -> &'static str {
        match self {
            ArtifactKind::Segment => "segment",
            ArtifactKind::Manifest => "manifest",
            ArtifactKind::Bucket => "bucket",
            ArtifactKind::Root => "root",
            ArtifactKind::Events => "events",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        ArtifactKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| Error::malformed("artifact kind", format!("unknown kind {name:?}")))
    }

    /// The version of this kind's canonical encoding that this build writes and reads.
    pub const fn version(self) -> u64 {
        1
    }

    pub const fn limits(self) -> KindLimits {
        match self {
            ArtifactKind::Segment => limits::SEGMENT,
            ArtifactKind::Manifest => limits::MANIFEST,
            ArtifactKind::Bucket => limits::BUCKET,
            ArtifactKind::Root => limits::ROOT,
            ArtifactKind::Events => limits::EVENTS,
        }
    }

    /// The file-name suffix of this kind's keys.
    pub const fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Segment => ".ndjson.zst",
            ArtifactKind::Manifest => ".manifest",
            ArtifactKind::Bucket => ".bucket",
            ArtifactKind::Root => ".root",
            ArtifactKind::Events => ".events",
        }
    }

    /// Roots and event batches carry their origin's signature.
    pub const fn is_signed(self) -> bool {
        matches!(self, ArtifactKind::Root | ArtifactKind::Events)
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
