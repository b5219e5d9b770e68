//! Compacting an archive: its database file written again without free pages, in pages of
//! [`PAGE_SIZE`].
//!
//! An archive keeps the page size it was made with, and the pages an upgrade freed (migration
//! 11 dropped a column a quarter of the file held): SQLite reuses free pages, but never gives
//! them back, and changes the page size only by writing the whole file again (`VACUUM`), which
//! it cannot do in WAL mode. So this leaves WAL for the time of the `VACUUM`, which needs the
//! database to itself and as much free disk again, and is done only when the user asks.
//!
//! The connection holds the file's lock from before it leaves WAL until it is back: in
//! SQLite's exclusive locking mode nothing else can read the file meanwhile, and so nothing
//! can switch it back to WAL half-way (another program's open would, and the `VACUUM` would
//! then keep the old page size).

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
    /// Writes the database again, without its free pages and in pages of [`PAGE_SIZE`], and
    /// closes it. Needs the archive to itself ([`ArchiveError::InUse`] while another
    /// connection has it open, and nothing changed) and free disk for two more copies while it
    /// runs (SQLite's temporary copy, in `$SQLITE_TMPDIR` or the system's, and the rollback
    /// journal beside it). The file is in WAL mode again afterwards, or from its next open.
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    pub fn compact(mut self) -> Result<Compacted> {
        self.unindexed.index(&self.conn)?;
        // The checkpoint thread's connection would hold the file too.
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.checkpointer = None;
        }
        let (bytes_before, page_size_before) = self.file_size()?;
        let vacuumed = self.take_alone().and_then(|()| {
            self.conn.pragma_update(None, "page_size", PAGE_SIZE)?;
            // Out of WAL, `NORMAL` risks the file on a power cut; the connection ends here.
            self.conn.pragma_update(None, "synchronous", "FULL")?;
            Ok(self.conn.execute_batch("VACUUM")?)
        });
        // Back to WAL whatever happened, lock released. If this fails, the next open does it.
        let _ = self
            .conn
            .query_row("PRAGMA locking_mode = NORMAL", [], |_| Ok(()));
        let _ = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()));
        vacuumed?;
        let (bytes_after, page_size_after) = self.file_size()?;
        if page_size_after != PAGE_SIZE && self.path().is_some() {
            return Err(ArchiveError::InUse(format!(
                "its pages stayed {page_size_after} bytes: compact again"
            )));
        }
        Ok(Compacted {
            bytes_before,
            bytes_after,
            page_size_before,
            page_size_after,
        })
    }

    /// Takes the file for this connection alone and out of WAL mode, which only a connection
    /// alone with the database may leave: SQLite refuses (busy) while another has it open, or
    /// answers with the mode it kept.
    pub(crate) fn take_alone(&self) -> Result<()> {
        let busy = || {
            ArchiveError::InUse(
                "another program has the archive open (an `sqlite3` shell, a `sessions` or \
                 `search` still running, a request to `serve`): close it and compact again"
                    .into(),
            )
        };
        let left = self
            .conn
            .query_row("PRAGMA locking_mode = EXCLUSIVE", [], |_| Ok(()))
            // Copy the log into the file first: a log that is not empty cannot be left.
            .and_then(|()| {
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            })
            .and_then(|()| {
                self.conn
                    .query_row("PRAGMA journal_mode = DELETE", [], |r| {
                        r.get::<_, String>(0)
                    })
            });
        match left {
            Ok(mode)
                if ["delete", "memory"]
                    .iter()
                    .any(|m| mode.eq_ignore_ascii_case(m)) =>
            {
                Ok(())
            }
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
