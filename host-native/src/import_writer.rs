//! Import windows stored on a thread and a connection of their own.
//!
//! An import alternates two kinds of work: the engine fetches, verifies and decodes a window
//! of sessions, then SQLite stores it and indexes it for search. Done one after the other,
//! an import into an empty machine took about twice a bare SQLite insert of the same rows.
//! Here the window is handed to a writer thread, and the engine goes on with the next one on
//! the other core. SQLite still has one writer, and memory stays bounded: a window is handed
//! over only once the one two before it is stored, so at most three are held (the one being
//! stored, the next one waiting for it, and the one the engine is building). With one window
//! handed over at a time, the writer waited for the engine between windows (it was busy 87 %
//! of the import); with the next one waiting, the 1 GB import took 0.96× the time.
//!
//! The writer is the import's critical path, so it gets windows made ready to store
//! ([`PreparedUnit`]: messages split into the archive's columns, JSON encoded) on the engine's
//! side. That took the 1 GB import from 19.0–21.4 s to 17.3–18.4 s (alternating runs).
//!
//! Everything else the engine asks of the archive (reads, states, the replay) waits until
//! every window handed over is stored: [`ImportWriter::drain`].
//!
//! Three windows of [`WINDOW_BYTES`] hold less than one engine window of its default size, so
//! the peak memory of an import stays below where it was before the thread (the 1 GB bench
//! measured 133 MB with one 32 MiB window at a time, 186 MB with two). A prepared window is
//! larger than its messages (tool text is held twice: in the JSON and for the search index).
//!
//! A stored window comes back to this side to be freed ([`Archive::apply_prepared_window`]):
//! freeing on the writer's thread what the engine's thread allocated takes the lock of that
//! thread's allocator arena, against it, and the 1 GB import took 0.90× the time once windows
//! were freed here instead.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

use agentsync_archive::{Archive, PreparedUnit};
use agentsync_core::OriginId;
use agentsync_core::sync::import::ApplyUnit;
use anyhow::{Context as _, Result, anyhow};

/// The engine's import window when windows are stored on this thread
/// ([`agentsync_core::sync::engine::SyncEngine::with_import_window`]): an eighth of the
/// default, as three are held at once and a prepared window is larger than its messages (peak
/// RSS of the 1 GB import: 115 MB with half the default and windows prepared on the writer,
/// 148 MB with half prepared ahead, 124 MB with 3/8 prepared ahead; with windows freed where
/// they were made, 121 MB at 3/8 and 100 MB at 1/4; with the next window waiting, 116 MB at
/// 1/4, 104 MB at 3/16 and 88–90 MB at 1/8, all three as fast).
pub const WINDOW_BYTES: u64 = agentsync_core::sync::import::SEGMENT_WINDOW_BYTES / 8;

/// Windows handed over and not yet stored, beyond the one being stored: the writer finds the
/// next one waiting when it is done with one.
const WAITING: usize = 1;

pub struct ImportWriter<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    path: Option<PathBuf>,
    origin: OriginId,
    /// Started at the first window: a sync that imports nothing opens no second connection.
    running: Option<Running<'scope>>,
}

struct Running<'scope> {
    windows: Option<mpsc::SyncSender<Vec<PreparedUnit>>>,
    /// Each window's outcome, and the window itself, spent: freed by this side, which
    /// allocated it ([`Archive::apply_prepared_window`]).
    stored: mpsc::Receiver<(Result<()>, Vec<PreparedUnit>)>,
    /// Windows handed over and not yet reported stored.
    pending: usize,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope, 'env> ImportWriter<'scope, 'env> {
    /// A writer for the archive at `path` (`None`, an archive in memory: the caller stores
    /// windows itself, [`ImportWriter::is_off`]).
    pub fn new(scope: &'scope Scope<'scope, 'env>, path: Option<&Path>, origin: &OriginId) -> Self {
        ImportWriter {
            scope,
            path: path.map(Path::to_path_buf),
            origin: origin.clone(),
            running: None,
        }
    }

    pub fn is_off(&self) -> bool {
        self.path.is_none()
    }

    /// Hands a window over, once at most [`WAITING`] others wait for the writer. Its rows are
    /// made here, while the writer stores the ones before.
    pub fn store(&mut self, units: Vec<ApplyUnit>) -> Result<()> {
        let units = PreparedUnit::window(units).context("storing imported sessions")?;
        self.drain_to(WAITING)?;
        if self.running.is_none() {
            self.running = Some(self.start()?);
        }
        let running = self
            .running
            .as_mut()
            .ok_or_else(|| anyhow!("the import writer did not start"))?;
        running
            .windows
            .as_ref()
            .ok_or_else(|| anyhow!("the import writer has stopped"))?
            .send(units)
            .map_err(|_| anyhow!("the import writer stopped"))?;
        running.pending += 1;
        Ok(())
    }

    /// Waits until every window handed over is stored; the first failure, if any.
    pub fn drain(&mut self) -> Result<()> {
        self.drain_to(0)
    }

    /// Waits until at most `left` windows handed over are not yet stored.
    fn drain_to(&mut self, left: usize) -> Result<()> {
        let Some(running) = self.running.as_mut() else {
            return Ok(());
        };
        while running.pending > left {
            running.pending -= 1;
            let (stored, spent) = running
                .stored
                .recv()
                .map_err(|_| anyhow!("the import writer stopped"))?;
            drop(spent);
            stored?;
        }
        Ok(())
    }

    /// Stores what is pending and ends the thread.
    pub fn finish(mut self) -> Result<()> {
        let drained = self.drain();
        if let Some(mut running) = self.running.take() {
            running.windows = None;
            if let Some(thread) = running.thread.take() {
                thread
                    .join()
                    .map_err(|_| anyhow!("the import writer panicked"))?;
            }
        }
        drained
    }

    fn start(&self) -> Result<Running<'scope>> {
        let path = self
            .path
            .as_deref()
            .ok_or_else(|| anyhow!("an archive in memory has no import writer"))?;
        let mut archive = Archive::open(path)
            .with_context(|| format!("opening {} for the import", path.display()))?;
        archive
            .checkpoint_beside()
            .context("starting the import's checkpoint thread")?;
        let origin = self.origin.clone();
        let (windows, to_store) = mpsc::sync_channel::<Vec<PreparedUnit>>(1);
        let (report, stored) = mpsc::channel();
        let thread = self.scope.spawn(move || {
            // Windows already handed over when one fails are not stored: a session split
            // over two windows would keep the second part without the first.
            let mut failed = false;
            for mut units in to_store {
                let done = if failed {
                    Err(anyhow!("not stored: a window before it failed"))
                } else {
                    archive
                        .apply_prepared_window(&origin, &mut units)
                        .context("storing imported sessions")
                };
                failed |= done.is_err();
                if done.is_ok() {
                    crate::crash_point::passed("sync.apply");
                }
                if report.send((done, units)).is_err() {
                    return;
                }
            }
        });
        Ok(Running {
            windows: Some(windows),
            stored,
            pending: 0,
            thread: Some(thread),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentsync_core::{ArtifactId, Message, Session, SessionGid};

    fn unit(peer: &OriginId, native: &str, from: u64, texts: &[String]) -> ApplyUnit {
        ApplyUnit {
            gid: SessionGid::new(peer.clone(), native.parse().expect("native")),
            session: Session {
                native_id: native.parse().expect("native"),
                agent: "claude".into(),
                parser: "claude-code/1".into(),
                project: "p".into(),
                cwd: String::new(),
                git_branch: String::new(),
                started_ms: None,
                ended_ms: None,
                title: String::new(),
                first_message: String::new(),
                parent_session: String::new(),
                relationship: String::new(),
                user_message_count: 0,
            },
            from_ordinal: from,
            messages: texts
                .iter()
                .enumerate()
                .map(|(i, text)| Message {
                    ordinal: from + i as u64,
                    role: "user".into(),
                    content: text.clone(),
                    ..Message::default()
                })
                .collect(),
            message_count: from + texts.len() as u64,
            usage_events: Vec::new(),
            manifest: ArtifactId::of(native.as_bytes()),
        }
    }

    /// Windows are handed over while the ones before are still being stored: each must still
    /// land whole and in order (each window here replaces the tail the one before stored, so
    /// one stored out of order would leave another tail).
    #[test]
    fn windows_handed_over_ahead_of_the_writer_land_in_order() {
        let dir =
            std::env::temp_dir().join(format!("agentsync-import-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("archive.db");
        drop(Archive::open(&path).expect("create"));
        let me: OriginId = "laptop-0a1b2c".parse().expect("origin");
        let peer: OriginId = "desktop-3d4e5f".parse().expect("origin");
        let windows = 12u64;
        std::thread::scope(|scope| {
            let mut writer = ImportWriter::new(scope, Some(&path), &me);
            for i in 0..windows {
                let tail = [format!("kept{i}"), format!("tail{i}")];
                let own = [format!("only{i} ").repeat(2_000)];
                writer
                    .store(vec![
                        unit(&peer, "s0", i, &tail),
                        unit(&peer, &format!("s{}", i + 1), 0, &own),
                    ])
                    .expect("handed over");
            }
            writer.finish().expect("stored");
        });
        let archive = Archive::open(&path).expect("reopen");
        let gid = |native: &str| SessionGid::new(peer.clone(), native.parse().expect("native"));
        let texts: Vec<String> = archive
            .messages(&gid("s0"), 0)
            .expect("read")
            .into_iter()
            .map(|m| m.content)
            .collect();
        let mut expected: Vec<String> = (0..windows).map(|i| format!("kept{i}")).collect();
        expected.push(format!("tail{}", windows - 1));
        assert_eq!(texts, expected);
        for i in 0..windows {
            let stored = archive
                .messages(&gid(&format!("s{}", i + 1)), 0)
                .expect("read");
            assert_eq!(stored.len(), 1, "window {i}");
        }
        assert_eq!(archive.search("tail3", 10).expect("search").len(), 0);
        assert_eq!(archive.search("only7", 10).expect("search").len(), 1);
        assert_eq!(archive.integrity_check().expect("check"), "ok");
        drop(archive);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A window that fails stops the import there: the window handed over behind it, which
    /// the writer already holds, is not stored (it would hold the second part of a session
    /// whose first part failed), and its failure is the first one reported.
    #[test]
    fn no_window_is_stored_after_one_that_failed() {
        let dir = std::env::temp_dir().join(format!(
            "agentsync-import-writer-failed-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("archive.db");
        drop(Archive::open(&path).expect("create"));
        rusqlite::Connection::open(&path)
            .expect("open")
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.content = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned message'); END;",
            )
            .expect("trigger");
        let me: OriginId = "laptop-0a1b2c".parse().expect("origin");
        let peer: OriginId = "desktop-3d4e5f".parse().expect("origin");
        let text = |i: usize| {
            if i == 2 {
                "poison".to_owned()
            } else {
                format!("window{i}")
            }
        };
        let mut handed_over = 0;
        let failure = std::thread::scope(|scope| {
            let mut writer = ImportWriter::new(scope, Some(&path), &me);
            for i in 0..6 {
                if let Err(e) = writer.store(vec![unit(&peer, &format!("s{i}"), 0, &[text(i)])]) {
                    let finished = writer.finish();
                    return (e, finished);
                }
                handed_over += 1;
            }
            panic!("every window stored: {:?}", writer.finish());
        });
        let (first, finished) = failure;
        assert!(
            format!("{first:#}").contains("poisoned message"),
            "{first:#}"
        );
        let later = finished.expect_err("the window behind it is reported unstored");
        assert!(
            format!("{later:#}").contains("a window before it failed"),
            "{later:#}"
        );
        // Windows 0–3 were handed over before window 2's failure came back.
        assert_eq!(handed_over, 4);
        let archive = Archive::open(&path).expect("reopen");
        let stored = |i: usize| {
            let gid = SessionGid::new(peer.clone(), format!("s{i}").parse().expect("native"));
            archive.has_session(&gid).expect("read")
        };
        assert_eq!(
            (0..6).map(stored).collect::<Vec<_>>(),
            [true, true, false, false, false, false]
        );
        drop(archive);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
