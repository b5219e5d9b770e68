//! The write-ahead log copied into the database on a thread of its own, while the writer goes on.
//!
//! SQLite copies the log into the database (a checkpoint) on the connection that commits, once
//! the log holds 1 000 pages: about a twelfth of an import's writer thread, its critical path,
//! while the other core is partly idle. A [`Checkpointer`] takes that over
//! from the writer's connection (its log hook) and checkpoints from a connection of its own
//! after each commit.
//!
//! A checkpoint running beside the writer never catches up with it, and the log only starts
//! over when the writer begins a transaction with every page of it copied; so once the log
//! passes [`LOG_LIMIT_BYTES`] the writer waits, before its next transaction, for the
//! checkpoint of all it committed. The log stays bounded, and most of the copying overlaps
//! the writer's own work.

use std::ffi::c_int;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use crate::error::Result;

/// What the log may hold before the writer waits for it to be copied (converted to pages of
/// the database's page size: 16 KiB in a new archive, 4 KiB in one made before). A transaction of an
/// import's window writes tens of MiB, one of an ingest's up to ~100 MiB: with a limit below one
/// transaction the writer would wait after each, and nothing would overlap.
/// At 16 MiB the import gained nothing; at 64 MiB it takes 4-8 % less time, and its log
/// peaks at ~130 MB (~80 MB with SQLite's own checkpoints). Ingest's transactions mostly
/// pass the limit alone: on a RAM file system it gained nothing, but on disk, where a
/// checkpoint also syncs the database file, a large pass takes ~4 % less time with it.
pub(crate) const LOG_LIMIT_BYTES: i64 = 64 << 20;

#[derive(Default)]
struct Shared {
    /// Commits made by the writer.
    committed: u64,
    /// Commits the last checkpoint started after.
    copied: u64,
    /// Pages in the log after the writer's last commit.
    log_pages: i64,
    stop: bool,
}

pub(crate) struct Checkpointer {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    /// In pages.
    log_limit: i64,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Checkpointer {
    /// Starts the thread, with its own connection to the database at `path`, and takes over
    /// the checkpoints of `writer` (SQLite's own stop: a connection has one log hook). The
    /// writer waits for the log to be copied once it holds `log_limit_bytes`.
    pub(crate) fn start(
        writer: &mut Connection,
        path: &Path,
        log_limit_bytes: i64,
    ) -> Result<Checkpointer> {
        let page_size: i64 = writer.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let log_limit = log_limit_bytes / page_size.max(512);
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("archive-checkpoint".into())
            .spawn(move || run(&conn, &theirs))
            .map_err(crate::error::ArchiveError::Thread)?;
        // Made before the hook, so that a hook that cannot be set stops the thread (`Drop`).
        let checkpointer = Checkpointer {
            shared,
            thread: Some(thread),
            log_limit,
        };
        let hook = Arc::clone(&checkpointer.shared);
        writer.wal_hook(Some(move |_: &mut Wal, pages: c_int| {
            let (state, wake) = &*hook;
            let mut state = lock(state);
            state.committed += 1;
            state.log_pages = i64::from(pages);
            wake.notify_all();
            Ok(())
        }))?;
        Ok(checkpointer)
    }

    /// Before the writer's next transaction: returns at once unless the log is over its limit,
    /// else once everything committed is copied (the transaction then starts the log over).
    pub(crate) fn before_transaction(&self) {
        let (state, wake) = &*self.shared;
        let mut state = lock(state);
        if state.log_pages <= self.log_limit {
            return;
        }
        while state.copied < state.committed && !state.stop {
            state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.log_pages = 0;
    }
}

fn run(conn: &Connection, shared: &(Mutex<Shared>, Condvar)) {
    let (state, wake) = shared;
    loop {
        let target = {
            let mut state = lock(state);
            while state.copied == state.committed && !state.stop {
                state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
            state.committed
        };
        // A checkpoint that fails (another process checkpointing) is left to the next
        // commit's, or to the last connection's close.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        lock(state).copied = target;
        wake.notify_all();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let (state, wake) = &*self.shared;
            lock(state).stop = true;
            wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
