//! One writer per data folder. Two `sync` runs at once (a `--watch` and a manual one, a cron
//! job) would both publish, and the target would hold two different roots with one sequence
//! number. Every command that writes takes an exclusive lock on `<data>/write.lock` (the
//! operating system's file lock: released when the process ends, however it ends); a second
//! writer waits a bounded time, then fails with a message naming the holder. Readers
//! (`sessions`, `show`, `search`, `status`, ...) never take it, so they never wait.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a writer waits for another one by default; `$AGENTSYNC_LOCK_WAIT_MS` overrides it.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Held while a command writes; dropping it releases the lock.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

fn wait_from_env() -> Duration {
    std::env::var("AGENTSYNC_LOCK_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_WAIT, Duration::from_millis)
}

/// Takes the data folder's write lock for `command`, waiting for another writer at most the
/// default time (or `$AGENTSYNC_LOCK_WAIT_MS`).
pub fn acquire(data_dir: &Path, command: &str) -> Result<WriteLock> {
    let path = data_dir.join("write.lock");
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let wait = wait_from_env();
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                bail!(
                    "another agentsync is writing to {} ({}); waited {} s. Try again when it \
                     is done",
                    data_dir.display(),
                    if holder.is_empty() {
                        "unknown holder"
                    } else {
                        holder
                    },
                    wait.as_secs_f32()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
    }
    // Who holds it, for a writer that has to wait.
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = write!(
        file,
        "held by `agentsync {command}`, process {}",
        std::process::id()
    );
    let _ = file.flush();
    Ok(WriteLock { _file: file })
}
