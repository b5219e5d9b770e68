//! The archive's errors.

use agentsync_core::SessionGid;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored {what} does not decode: {source}")]
    Stored {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error(
        "the archive has schema version {found}; this build knows up to {known}: upgrade agentsync"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("no session matches {0:?}")]
    NoSuchSession(String),
    #[error("{query:?} matches {count} sessions; give more of the id (for example {example})")]
    AmbiguousSession {
        query: String,
        count: usize,
        example: String,
    },
    #[error("the stored signing key is not 32 bytes: the identity table was edited by hand")]
    BadIdentity,
    #[error("session {session} has no message #{ordinal}")]
    NoSuchMessage { session: SessionGid, ordinal: u64 },
    #[error("session {0} was purged")]
    Purged(SessionGid),
    #[error("no unpublished edit of this machine at {0} (see `status`, or `sync` output)")]
    NoSuchEdit(String),
    #[error(
        "the edit at {0} was published already: other machines have it; make a new edit instead"
    )]
    EditPublished(String),
    #[error("the archive cannot be compacted now: {0}")]
    InUse(String),
    #[error("starting the archive's checkpoint thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Core(#[from] agentsync_core::Error),
    #[error(transparent)]
    Edit(#[from] agentsync_core::ledger::EditError),
}

impl ArchiveError {
    /// SQLite found the file is no database, or its pages do not add up.
    pub fn is_damaged(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        matches!(
            self,
            ArchiveError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, DatabaseCorrupt | NotADatabase)
        )
    }
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Decodes a JSON column, naming what it held when it does not decode.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(what: &'static str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|source| ArchiveError::Stored { what, source })
}

pub(crate) fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| ArchiveError::Stored { what, source })
}
