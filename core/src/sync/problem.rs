//! Artifacts a sync could not use, and why. One bad artifact affects only what depends on it:
//! it becomes a problem in the report, never an error that stops the run.

use serde::{Deserialize, Serialize};

use crate::error::Error;
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

/// An artifact that could not be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub key: String,
    /// The core's error class (`Error::class`), or `Missing`, `StoreError`, `Incomplete`.
    pub class: String,
    pub reason: String,
    pub disposition: Disposition,
}

impl Problem {
    /// An artifact that failed verification: quarantined, unless it is merely newer than
    /// this build (deferred).
    pub fn rejected(key: &str, error: &Error) -> Self {
        Problem {
            key: key.to_owned(),
            class: error.class().to_owned(),
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
            class: "StoreError".into(),
            reason: error.to_string(),
            disposition: Disposition::Deferred,
        }
    }

    pub fn missing(key: &str) -> Self {
        Problem {
            key: key.to_owned(),
            class: "Missing".into(),
            reason: "referenced but not in the store yet".into(),
            disposition: Disposition::Deferred,
        }
    }

    pub fn incomplete(key: &str) -> Self {
        Problem {
            key: key.to_owned(),
            class: "Incomplete".into(),
            reason: "not relayed: an artifact it references is missing or corrupt".into(),
            disposition: Disposition::Deferred,
        }
    }

    pub fn malformed(key: &str, reason: &str) -> Self {
        Problem {
            key: key.to_owned(),
            class: "Malformed".into(),
            reason: reason.to_owned(),
            disposition: Disposition::Quarantined,
        }
    }

    pub fn is_quarantined(&self) -> bool {
        self.disposition == Disposition::Quarantined
    }
}
