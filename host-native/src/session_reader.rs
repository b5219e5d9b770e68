//! The export's reads of this machine's sessions, on every core.
//!
//! A first sync reads every session back from SQLite (1 GB of logs: ~2 s of CPU), and on one
//! connection that was the main thread's largest share while the other cores waited for the
//! batch. Each worker reads with a connection of its own; SQLite lets readers run side by side.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use agentsync_archive::Archive;
use agentsync_core::OriginId;
use agentsync_core::sync::engine::{SessionData, SessionRead};
use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;

pub struct SessionReader {
    /// `None` for an archive in memory, which no second connection can reach.
    path: Option<PathBuf>,
    /// Connections opened for earlier batches, free for the next.
    spare: Mutex<Vec<Archive>>,
}

impl SessionReader {
    pub fn new(path: Option<&Path>) -> Self {
        SessionReader {
            path: path.map(Path::to_path_buf),
            spare: Mutex::new(Vec::new()),
        }
    }

    /// Answers `Output::ReadSessions`: every read, in order.
    pub fn read(
        &self,
        archive: &Archive,
        origin: &OriginId,
        reads: &[SessionRead],
    ) -> Result<Vec<SessionData>> {
        let Some(path) = self.path.as_deref().filter(|_| reads.len() > 1) else {
            return reads
                .iter()
                .map(|read| Ok(archive.session_data(origin, read)?))
                .collect();
        };
        reads
            .par_iter()
            .map_init(
                || self.connection(path),
                |connection, read| {
                    let archive = connection.archive.as_ref().map_err(|e| anyhow!("{e:#}"))?;
                    Ok(archive.session_data(origin, read)?)
                },
            )
            .collect()
    }

    fn connection(&self, path: &Path) -> Connection<'_> {
        let spare = self.spare.lock().ok().and_then(|mut spare| spare.pop());
        let archive = match spare {
            Some(archive) => Ok(archive),
            None => Archive::open(path)
                .with_context(|| format!("opening {} to read sessions", path.display())),
        };
        Connection {
            archive,
            reader: self,
        }
    }
}

/// A connection lent to one worker, back among the spares when it is done.
struct Connection<'a> {
    archive: Result<Archive>,
    reader: &'a SessionReader,
}

impl Drop for Connection<'_> {
    fn drop(&mut self) {
        let archive = std::mem::replace(&mut self.archive, Err(anyhow!("returned")));
        if let (Ok(archive), Ok(mut spare)) = (archive, self.reader.spare.lock()) {
            spare.push(archive);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentsync_core::{Message, Session};

    fn session(native: &str) -> Session {
        Session {
            native_id: native.parse().unwrap(),
            agent: "claude-code".into(),
            parser: "claude".into(),
            project: "demo".into(),
            title: format!("title of {native}"),
            first_message: String::new(),
            cwd: String::new(),
            git_branch: String::new(),
            started_ms: Some(1_700_000_000_000),
            ended_ms: None,
            parent_session: String::new(),
            relationship: String::new(),
            user_message_count: 0,
        }
    }

    fn message(ordinal: u64, native: &str) -> Message {
        Message {
            ordinal,
            role: "user".into(),
            content: format!("message {ordinal} of {native}"),
            ..Message::default()
        }
    }

    /// Sessions read on several connections come back in the order asked for, the same as
    /// one connection reads them, from each read's first ordinal on.
    #[test]
    fn a_batch_read_on_every_core_is_the_batch_read_on_one() {
        let dir = std::env::temp_dir().join(format!("agentsync-reader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let archive = Archive::open(&dir.join("archive.db")).unwrap();
        let origin: OriginId = "laptop-0a1b2c".parse().unwrap();
        let natives: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
        for (i, native) in natives.iter().enumerate() {
            let messages: Vec<Message> = (0..(i as u64 % 7 + 1))
                .map(|o| message(o, native))
                .collect();
            archive
                .apply_own(&origin, &session(native), &messages, &[], false)
                .unwrap();
        }
        let reads: Vec<SessionRead> = natives
            .iter()
            .rev()
            .enumerate()
            .map(|(i, native)| SessionRead {
                native: native.parse().unwrap(),
                from_ordinal: i as u64 % 3,
            })
            .collect();
        let one: Vec<SessionData> = reads
            .iter()
            .map(|r| archive.session_data(&origin, r).unwrap())
            .collect();
        let reader = SessionReader::new(archive.path());
        for _ in 0..2 {
            // The second batch reuses the connections the first opened.
            assert_eq!(reader.read(&archive, &origin, &reads).unwrap(), one);
        }
        assert!(!reader.spare.lock().unwrap().is_empty());
        let natives_read: Vec<String> = one
            .iter()
            .map(|d| d.session.native_id.to_string())
            .collect();
        let expected: Vec<String> = natives.iter().rev().cloned().collect();
        assert_eq!(natives_read, expected);
        assert!(
            one.iter()
                .any(|d| d.messages.first().is_some_and(|m| m.ordinal > 0))
        );
        let in_memory = SessionReader::new(None);
        assert_eq!(in_memory.read(&archive, &origin, &reads).unwrap(), one);
        let missing = SessionRead {
            native: "absent".parse().unwrap(),
            from_ordinal: 0,
        };
        assert!(
            reader
                .read(&archive, &origin, &[reads[0].clone(), missing])
                .is_err()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
