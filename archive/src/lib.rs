//! agentsync-archive: the local archive every host keeps, in SQLite.
//!
//! One schema and one set of queries for the native CLI and the browser viewer (rusqlite runs
//! on `sqlite-wasm-rs` there). The archive stores what the core hands out (sessions, messages,
//! ledger events and state, engine states) and answers the questions the hosts ask (lists,
//! search, conflicts, status). It decides nothing about the wire format: bytes and artifacts
//! are the core's business, files and sockets the host's.
//!
//! Wall-clock times are parameters, never read here: the browser has no `SystemTime`.

#[cfg(not(target_arch = "wasm32"))]
mod checkpointer;
mod compact;
mod curation;
mod error;
mod export_state;
mod message_row;
mod mirror_table;
mod rebuild;
mod schema;
mod search;
mod sessions;
mod sources;
mod sync_host;
mod sync_state;
mod tool_text;
mod unindexed;

use std::path::Path;

use rusqlite::Connection;

pub use compact::Compacted;
pub use curation::ConflictRow;
pub use error::{ArchiveError, Result};
pub use message_row::{MessageRow, PreparedUnit};
pub use mirror_table::MirrorTable;
pub use rebuild::{SalvagedSessions, SalvagedTable};
pub use schema::PAGE_SIZE;
pub use search::SearchHit;
pub use sessions::{
    ModelUsage, OriginCount, OwnApplied, SessionDetail, SessionFilter, SessionSummary,
};
pub use sources::{SourceRow, SourceStamp};
pub use sync_host::{EngineStates, HostStep, SyncOutcome};
pub use sync_state::{ProblemRow, SyncRun};

/// Registers on `conn` the SQL functions the archive's tables use (`tool_text`, which the
/// search index reads a message's tool text through), for a program that builds or changes
/// such tables on a connection of its own (the bench's bare SQLite baseline).
pub fn register_sql_functions(conn: &Connection) -> Result<()> {
    Ok(tool_text::register(conn)?)
}

/// An open archive.
pub struct Archive {
    conn: Connection,
    unindexed: unindexed::Unindexed,
    #[cfg(not(target_arch = "wasm32"))]
    checkpointer: Option<checkpointer::Checkpointer>,
}

impl Archive {
    /// Opens (creating if needed) the archive at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        Self::prepare(Connection::open(path)?)
    }

    /// Whether opening the archive at `path` will first bring its schema up to date, which can
    /// take a while on a large archive (a host shows that it is working). `false` for no file.
    ///
    /// Asks SQLite, not the file system: in a browser the file lives in SQLite's own VFS.
    pub fn upgrade_pending(path: &Path) -> Result<bool> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(conn) => conn,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::CannotOpen =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(applied > 0 && applied < schema::SCHEMA_VERSION)
    }

    /// An archive that lives in memory (tests, the browser before persistence).
    pub fn open_in_memory() -> Result<Self> {
        Self::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> Result<Self> {
        schema::prepare(&mut conn)?;
        Ok(Archive {
            unindexed: unindexed::Unindexed::new(&conn)?,
            conn,
            #[cfg(not(target_arch = "wasm32"))]
            checkpointer: None,
        })
    }

    /// For a writer with much to write in transactions of tens of MB (an import's windows):
    /// from now on the write-ahead log is copied into the database by a thread of its own,
    /// beside this connection's work (`checkpointer.rs`). Nothing for an archive in memory.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn checkpoint_beside(&mut self) -> Result<()> {
        self.checkpoint_beside_up_to(checkpointer::LOG_LIMIT_BYTES)
    }

    /// [`checkpoint_beside`](Self::checkpoint_beside), the log kept under `log_limit_bytes`.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn checkpoint_beside_up_to(&mut self, log_limit_bytes: i64) -> Result<()> {
        let Some(path) = self.path().map(Path::to_owned) else {
            return Ok(());
        };
        if self.checkpointer.is_none() {
            let started =
                checkpointer::Checkpointer::start(&mut self.conn, &path, log_limit_bytes)?;
            self.checkpointer = Some(started);
        }
        Ok(())
    }

    fn before_transaction(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(c) = &self.checkpointer {
            c.before_transaction();
        }
    }

    /// The database file, for another connection to it; `None` for an archive in memory.
    pub fn path(&self) -> Option<&Path> {
        self.conn.path().filter(|p| !p.is_empty()).map(Path::new)
    }

    /// Runs `f` in one transaction: all of it lands, or none.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Archive) -> Result<T>) -> Result<T> {
        self.transaction_with(f)
    }

    /// [`transaction`](Self::transaction) for a body that fails with the caller's own error.
    pub fn transaction_with<T, E: From<ArchiveError>>(
        &mut self,
        f: impl FnOnce(&Archive) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.before_transaction();
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(ArchiveError::from)?;
        let done = f(self).and_then(|value| {
            self.unindexed.index(&self.conn)?;
            self.conn
                .execute_batch("COMMIT")
                .map_err(ArchiveError::from)?;
            Ok(value)
        });
        if done.is_err() {
            // The error that matters is the body's; a failed rollback leaves SQLite's own.
            let _ = self.conn.execute_batch("ROLLBACK");
            self.unindexed.forget();
        }
        done
    }

    /// Runs `f` all-or-nothing inside whatever transaction is open (a savepoint), so a
    /// failure of one item rolls back only that item of a larger batch.
    ///
    /// Not free: the search index writes out what it holds in memory at every savepoint, so
    /// one per item of a large batch costs as much as a transaction per item.
    pub fn atomically<T>(&self, f: impl FnOnce(&Archive) -> Result<T>) -> Result<T> {
        // Outside a transaction, the savepoint is the transaction, and its release commits.
        let outermost = self.conn.is_autocommit();
        if outermost {
            self.before_transaction();
        }
        let unindexed = self.unindexed.snapshot();
        self.conn.execute_batch("SAVEPOINT item")?;
        let done = f(self).and_then(|value| {
            if outermost {
                self.unindexed.index(&self.conn)?;
            }
            self.conn.execute_batch("RELEASE item")?;
            Ok(value)
        });
        if done.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK TO item; RELEASE item");
            self.unindexed.restore(unindexed);
        }
        done
    }

    /// SQLite's own consistency check, and the search index's against the messages: `ok`, or
    /// what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        let database: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if database != "ok" {
            return Ok(database);
        }
        match self.conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        ) {
            Ok(_) => Ok(database),
            Err(rusqlite::Error::SqliteFailure(e, message))
                if e.code == rusqlite::ErrorCode::DatabaseCorrupt =>
            {
                Ok(format!(
                    "search index: {}",
                    message.unwrap_or_else(|| e.to_string())
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drops and recreates the derived tables (sessions, messages, search index, curation
    /// projection, ingest progress). Sync state stays; the host then re-ingests and re-imports.
    pub fn rebuild_derived(&mut self) -> Result<()> {
        self.transaction(|a| schema::recreate_derived(&a.conn))
    }
}

#[cfg(test)]
mod tests;
