//! Artifacts a sync could not use, and why. One bad artifact affects only what depends on it:
//! it becomes a problem in the report, never an error that stops the run.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::names::ArtifactKey;
use crate::sync::store::StoreError;

/// What is wrong with an artifact, and what to expect of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Corrupt, forged or invalid: never used until a good copy arrives.
    Quarantined,
    /// Not usable yet (missing, unreachable store, newer format): retried on every run.
    Deferred,
}

impl Disposition {
    pub fn name(self) -> &'static str {
        match self {
            Disposition::Quarantined => "quarantined",
            Disposition::Deferred => "deferred",
        }
    }
}

impl std::str::FromStr for Disposition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quarantined" => Ok(Disposition::Quarantined),
            "deferred" => Ok(Disposition::Deferred),
            other => Err(format!("not a disposition: {other:?}")),
        }
    }
}

/// Why an artifact could not be used: one of the core's error classes (docs/format.md §13),
/// or a reason of the sync itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProblemClass {
    SizeLimit,
    CountLimit,
    StringLimit,
    NestingLimit,
    IdMismatch,
    Truncated,
    FutureVersion,
    UnsupportedStage,
    Malformed,
    InvalidName,
    KindMismatch,
    OriginMismatch,
    BadSignature,
    KeyMismatch,
    Revoked,
    Decompress,
    Compress,
    /// Referenced but not in the store (yet).
    Missing,
    /// The store could not be read or written.
    StoreError,
    /// Not relayed: something it references is missing or corrupt.
    Incomplete,
    /// A validly signed root whose sequence number another validly signed root of the same
    /// origin has: two machines write as one origin (a copied data folder).
    DuplicateSequence,
}

impl ProblemClass {
    pub fn of(error: &Error) -> Self {
        match error {
            Error::SizeLimit { .. } => ProblemClass::SizeLimit,
            Error::CountLimit { .. } => ProblemClass::CountLimit,
            Error::StringLimit { .. } => ProblemClass::StringLimit,
            Error::NestingLimit { .. } => ProblemClass::NestingLimit,
            Error::IdMismatch { .. } => ProblemClass::IdMismatch,
            Error::Truncated { .. } => ProblemClass::Truncated,
            Error::FutureVersion { .. } => ProblemClass::FutureVersion,
            Error::UnsupportedStage { .. } => ProblemClass::UnsupportedStage,
            Error::Malformed { .. } => ProblemClass::Malformed,
            Error::InvalidName { .. } => ProblemClass::InvalidName,
            Error::KindMismatch { .. } => ProblemClass::KindMismatch,
            Error::OriginMismatch { .. } => ProblemClass::OriginMismatch,
            Error::BadSignature { .. } => ProblemClass::BadSignature,
            Error::KeyMismatch { .. } => ProblemClass::KeyMismatch,
            Error::Revoked { .. } => ProblemClass::Revoked,
            Error::Decompress { .. } => ProblemClass::Decompress,
            Error::Compress { .. } => ProblemClass::Compress,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ProblemClass::SizeLimit => "SizeLimit",
            ProblemClass::CountLimit => "CountLimit",
            ProblemClass::StringLimit => "StringLimit",
            ProblemClass::NestingLimit => "NestingLimit",
            ProblemClass::IdMismatch => "IdMismatch",
            ProblemClass::Truncated => "Truncated",
            ProblemClass::FutureVersion => "FutureVersion",
            ProblemClass::UnsupportedStage => "UnsupportedStage",
            ProblemClass::Malformed => "Malformed",
            ProblemClass::InvalidName => "InvalidName",
            ProblemClass::KindMismatch => "KindMismatch",
            ProblemClass::OriginMismatch => "OriginMismatch",
            ProblemClass::BadSignature => "BadSignature",
            ProblemClass::KeyMismatch => "KeyMismatch",
            ProblemClass::Revoked => "Revoked",
            ProblemClass::Decompress => "Decompress",
            ProblemClass::Compress => "Compress",
            ProblemClass::Missing => "Missing",
            ProblemClass::StoreError => "StoreError",
            ProblemClass::Incomplete => "Incomplete",
            ProblemClass::DuplicateSequence => "DuplicateSequence",
        }
    }
}

impl std::fmt::Display for ProblemClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An artifact that could not be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub key: String,
    pub class: ProblemClass,
    pub reason: String,
    pub disposition: Disposition,
}

impl Problem {
    /// An artifact that failed verification: quarantined, unless it is merely newer than
    /// this build (deferred).
    pub fn rejected(key: &str, error: &Error) -> Self {
        Problem {
            key: key.to_owned(),
            class: ProblemClass::of(error),
            reason: error.to_string(),
            disposition: if error.is_deferred() {
                Disposition::Deferred
            } else {
                Disposition::Quarantined
            },
        }
    }

    pub fn store(error: &StoreError) -> Self {
        Problem {
            key: error.key.clone(),
            class: ProblemClass::StoreError,
            reason: error.to_string(),
            disposition: Disposition::Deferred,
        }
    }

    pub fn missing(key: &str) -> Self {
        Problem {
            key: key.to_owned(),
            class: ProblemClass::Missing,
            reason: "referenced but not in the store yet".into(),
            disposition: Disposition::Deferred,
        }
    }

    pub fn incomplete(key: &str) -> Self {
        Problem {
            key: key.to_owned(),
            class: ProblemClass::Incomplete,
            reason: "not relayed: an artifact it references is missing or corrupt".into(),
            disposition: Disposition::Deferred,
        }
    }

    pub fn malformed(key: &str, reason: &str) -> Self {
        Problem {
            key: key.to_owned(),
            class: ProblemClass::Malformed,
            reason: reason.to_owned(),
            disposition: Disposition::Quarantined,
        }
    }

    /// `key`, a validly signed root, has the sequence number of `other`, another validly
    /// signed root of its origin: the walk passes over the smaller and reports it.
    pub fn duplicate_sequence(key: &ArtifactKey, other: &ArtifactKey) -> Self {
        let origin = key.origin();
        Problem {
            key: key.to_string(),
            class: ProblemClass::DuplicateSequence,
            reason: format!(
                "{origin} signed two different checkpoints with one number (this one and \
                 {other}): two machines write as {origin}, most likely from a copied data \
                 folder; each may be missing what the other published, and gc leaves {origin} \
                 alone while this is reported. Give one of them its own data folder \
                 (`agentsync init` in a new one)"
            ),
            disposition: Disposition::Quarantined,
        }
    }

    pub fn is_quarantined(&self) -> bool {
        self.disposition == Disposition::Quarantined
    }
}
