//! Compacting an archive: its database file written again without free pages, in pages of
//! [`PAGE_SIZE`].
//!
//! An archive keeps the page size it was made with, and the pages an upgrade freed (migration
//! 11 dropped a column a quarter of the file held): SQLite reuses free pages, but never gives
//! them back, and changes the page size only by writing the whole file again (`VACUUM`), which
//! it cannot do in WAL mode. So this leaves WAL for the time of the `VACUUM`, which needs the
//! database to itself and as much free disk again, and is done only when the user asks.

use serde::Serialize;

use crate::Archive;
use crate::error::{ArchiveError, Result};
use crate::schema::PAGE_SIZE;

/// What compacting changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compacted {
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub page_size_before: u32,
    pub page_size_after: u32,
}

impl Archive {
    /// Writes the database again, without its free pages and in pages of [`PAGE_SIZE`]. Needs
    /// the archive to itself ([`ArchiveError::InUse`] while another connection has it open,
    /// and nothing changed) and free disk for a second copy while it runs. The archive is in
    /// WAL mode again afterwards, whatever happened.
    pub fn compact(&mut self) -> Result<Compacted> {
        self.unindexed.index(&self.conn)?;
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.checkpointer = None;
        }
        let (bytes_before, page_size_before) = self.file_size()?;
        // Copy the log into the file first: a log that is not empty cannot be left.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let left = self.leave_wal();
        let vacuumed = left.and_then(|()| {
            self.conn.pragma_update(None, "page_size", PAGE_SIZE)?;
            Ok(self.conn.execute_batch("VACUUM")?)
        });
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        vacuumed?;
        if !mode.eq_ignore_ascii_case("wal") && self.path().is_some() {
            return Err(ArchiveError::InUse(format!(
                "the database stayed in {mode} mode instead of WAL"
            )));
        }
        let (bytes_after, page_size_after) = self.file_size()?;
        Ok(Compacted {
            bytes_before,
            bytes_after,
            page_size_before,
            page_size_after,
        })
    }

    /// Out of WAL mode, which only a connection alone with the database may do: SQLite either
    /// refuses (busy) or answers with the mode it kept.
    fn leave_wal(&self) -> Result<()> {
        let busy = || {
            ArchiveError::InUse(
                "another program has the archive open (a viewer, `serve`, `watch`, or the \
                 `sqlite3` shell): close it and compact again"
                    .into(),
            )
        };
        match self
            .conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| {
                r.get::<_, String>(0)
            }) {
            Ok(mode) if mode.eq_ignore_ascii_case("delete") || mode == "memory" => Ok(()),
            Ok(_) => Err(busy()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    || e.code == rusqlite::ErrorCode::DatabaseLocked =>
            {
                Err(busy())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The database's size in bytes (without its log), and its page size.
    fn file_size(&self) -> Result<(u64, u32)> {
        let pages: u64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: u32 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * u64::from(page_size), page_size))
    }
}
