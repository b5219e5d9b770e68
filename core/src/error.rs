//! Every reason the core rejects bytes, names or values, one variant per reason a user can act on.

use crate::id::ArtifactId;

/// A rejection by the core. [`Error::class`] gives a stable name for each variant, used by the
/// conformance vectors so that every runner reports the same class for the same input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes (stored, compressed or decompressed) over the limit for their kind.
    #[error("{kind} is {actual} bytes, over the limit of {limit}")]
    SizeLimit {
        kind: &'static str,
        limit: u64,
        actual: u64,
    },
    /// A declared or actual number of items over the limit.
    #[error("{what} has {actual} items, over the limit of {limit}")]
    CountLimit {
        what: &'static str,
        limit: u64,
        actual: u64,
    },
    /// A string or byte field over its length limit.
    #[error("{what} is {actual} bytes long, over the limit of {limit}")]
    StringLimit {
        what: &'static str,
        limit: u64,
        actual: u64,
    },
    /// JSON nested deeper than the format allows.
    #[error("{what} nests deeper than {limit} levels")]
    NestingLimit { what: &'static str, limit: u32 },
    /// The bytes do not hash to the id they were named or framed with.
    #[error("content id mismatch: expected {expected}, found {actual}")]
    IdMismatch {
        expected: ArtifactId,
        actual: ArtifactId,
    },
    /// The input ends before a field it announces.
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    /// Written by a newer version of the format: keep it and retry after an upgrade.
    #[error("{what} has version {version}, newer than the supported {supported}: deferred")]
    FutureVersion {
        what: &'static str,
        version: u64,
        supported: u64,
    },
    /// Applied with a stage (compression, encryption) this reader cannot undo: deferred.
    #[error("{what} uses stage code {code}, which this reader does not support: deferred")]
    UnsupportedStage { what: &'static str, code: u8 },
    /// Structurally invalid bytes or values.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A name (origin, session id, key) that fails validation.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    /// The artifact is of another kind than its name or caller expects.
    #[error("expected a {expected} artifact, found a {found}")]
    KindMismatch {
        expected: &'static str,
        found: &'static str,
    },
    /// The artifact names an origin other than the one whose namespace holds it.
    #[error("artifact of origin {found:?} stored under origin {expected:?}")]
    OriginMismatch { expected: String, found: String },
    /// A signature that does not verify against the key it carries.
    #[error("bad signature on {what}")]
    BadSignature { what: &'static str },
    /// A signed artifact carries another key than the one pinned for its origin.
    #[error("origin {origin} is pinned to key {pinned}, but the artifact is signed by {found}")]
    KeyMismatch {
        origin: String,
        pinned: String,
        found: String,
    },
    /// A signed artifact of an origin this machine's user revoked.
    #[error("origin {origin} is revoked on this machine: nothing it signs is accepted")]
    Revoked { origin: String },
    /// The zstd payload could not be decoded.
    #[error("zstd payload of {what} does not decode: {reason}")]
    Decompress { what: &'static str, reason: String },
    /// The compressor supplied by the host failed.
    #[error("compression failed: {reason}")]
    Compress { reason: String },
}

impl Error {
    /// A stable, documented name for the variant (see `docs/format.md`, "Error classes").
    pub fn class(&self) -> &'static str {
        match self {
            Error::SizeLimit { .. } => "SizeLimit",
            Error::CountLimit { .. } => "CountLimit",
            Error::StringLimit { .. } => "StringLimit",
            Error::NestingLimit { .. } => "NestingLimit",
            Error::IdMismatch { .. } => "IdMismatch",
            Error::Truncated { .. } => "Truncated",
            Error::FutureVersion { .. } => "FutureVersion",
            Error::UnsupportedStage { .. } => "UnsupportedStage",
            Error::Malformed { .. } => "Malformed",
            Error::InvalidName { .. } => "InvalidName",
            Error::KindMismatch { .. } => "KindMismatch",
            Error::OriginMismatch { .. } => "OriginMismatch",
            Error::BadSignature { .. } => "BadSignature",
            Error::KeyMismatch { .. } => "KeyMismatch",
            Error::Revoked { .. } => "Revoked",
            Error::Decompress { .. } => "Decompress",
            Error::Compress { .. } => "Compress",
        }
    }

    /// True when the artifact is not wrong but newer than this reader: the caller must keep it
    /// and retry later, never mark it corrupt or done.
    pub fn is_deferred(&self) -> bool {
        matches!(
            self,
            Error::FutureVersion { .. } | Error::UnsupportedStage { .. }
        )
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = core::result::Result<T, E>;
