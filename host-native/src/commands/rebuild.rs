//! `rebuild`: a new archive database, made from what the old one's sync state still holds and
//! from the local store. The new database is made beside the old one and takes its place only
//! once it is complete; the old file is kept aside, never deleted.

use std::path::{Path, PathBuf};

use agentsync_archive::{Archive, SalvagedSessions, SalvagedTable};
use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::{Context, Output, count, now_ms};

#[derive(Serialize)]
struct RebuildReport {
    origin: String,
    /// Where the old database was moved (absent when there was none).
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_aside: Option<String>,
    /// What was carried over from the old database, table by table.
    salvaged: Vec<SalvagedTable>,
    /// Sessions of the old database the store did not bring back, copied from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_from_old: Option<SalvagedSessions>,
    /// Where the identity came from: `database` or `recovery copy`.
    identity_from: &'static str,
    own_sessions: u64,
    other_sessions: u64,
    events: u64,
    conflicts: u64,
    quarantined: usize,
    deferred: usize,
}

pub fn rebuild(ctx: &Context) -> Result<Output> {
    ctx.home.create()?;
    let files = Files::of(ctx);
    let now = now_ms();
    if files.built.exists() {
        // A rebuild stopped while its database was taking the old one's place: finish that.
        let aside = files.swap(now)?;
        let mut text = "finished the rebuild an earlier run stopped before its database took the \
                        old one's place"
            .to_owned();
        if let Some(aside) = &aside {
            text.push_str(&format!(
                "\nthe old database is kept as {}",
                aside.display()
            ));
        }
        return Output::new(
            serde_json::json!({
                "finished_interrupted": true,
                "kept_aside": aside.map(|p| p.display().to_string()),
            }),
            text,
        );
    }
    let data = &ctx.home.data_dir;
    let path = ctx.home.archive_path();
    // What an interrupted rebuild left before it was complete: never in use.
    remove_database(&files.building)?;
    let mut archive = Archive::open(&files.building)
        .with_context(|| format!("creating the new archive {}", files.building.display()))?;
    let salvaged = if path.exists() {
        archive.salvage_sync_state(&path)?
    } else {
        Vec::new()
    };
    let identity_from = match archive.identity() {
        Ok(Some(_)) => "database",
        _ => match crate::origin::read_recovery_copy(data)? {
            Some((origin, key)) => {
                archive.create_identity(&origin, &key, now as i64)?;
                "recovery copy"
            }
            None => {
                drop(archive);
                remove_database(&files.building)?;
                bail!(
                    "neither {} nor {} holds this machine's identity, so its sessions cannot be \
                     restored under its origin; nothing was changed",
                    path.display(),
                    crate::origin::recovery_copy_path(data).display()
                );
            }
        },
    };
    let identity = crate::origin::ensure(&archive, data, None, now as i64)?;
    let restored = crate::sync::restore(
        &mut archive,
        &identity,
        &ctx.home.mirror_dir(),
        now,
        &ctx.progress,
    )?;
    // What the store could not bring back, from the old tables as far as they read.
    let mut ledger = archive.transaction(|a| a.replay_from_scratch(now))?;
    let kept = if path.exists() {
        Some(archive.salvage_missing_sessions(&path, &|gid| ledger.is_purged(gid))?)
    } else {
        None
    };
    if kept.as_ref().is_some_and(|k| k.sessions > 0) {
        // Edits waiting for those sessions apply now.
        ledger = archive.transaction(|a| a.replay_from_scratch(now))?;
    }
    archive.transaction(|a| a.reproject(&ledger))?;
    archive.adopt_export_markers()?;
    let counts = archive.origin_counts()?;
    let (own_sessions, other_sessions) = counts.iter().fold((0, 0), |(own, other), c| {
        if c.origin == identity.0.as_str() {
            (own + c.sessions, other)
        } else {
            (own, other + c.sessions)
        }
    });
    let mut report = RebuildReport {
        origin: identity.0.to_string(),
        kept_aside: None,
        salvaged,
        kept_from_old: kept,
        identity_from,
        own_sessions,
        other_sessions,
        events: archive.all_events()?.len() as u64,
        conflicts: ledger.conflicts().len() as u64,
        quarantined: restored.outcome.quarantined.len(),
        deferred: restored.outcome.deferred.len(),
    };
    drop(archive);
    rename_database(&files.building, &files.built)?;
    sync_folder(data)?;
    crate::crash_point::passed("rebuild.built");
    report.kept_aside = files.swap(now)?.map(|p| p.display().to_string());
    let text = text_of(&report);
    let mut out = Output::new(&report, text)?;
    out.partial = report.quarantined + report.deferred > 0
        || report.salvaged.iter().any(|t| t.lost.is_some())
        || report
            .kept_from_old
            .as_ref()
            .is_some_and(|k| k.lost.is_some());
    Ok(out)
}

/// The files a rebuild moves, in order: the new database is made under `building`, renamed
/// to `built` once complete, then the old one goes aside and `built` takes its place. A run
/// that stops anywhere leaves either no `built` (start again: the old database is untouched)
/// or a `built` (the next run only finishes the swap).
struct Files {
    data: PathBuf,
    archive: PathBuf,
    building: PathBuf,
    built: PathBuf,
    /// Holds the name the old files go to, chosen once, so that a swap stopped halfway moves
    /// the rest of them (the WAL belongs with its database) to the same name.
    aside_note: PathBuf,
}

impl Files {
    fn of(ctx: &Context) -> Files {
        let data = ctx.home.data_dir.clone();
        Files {
            archive: ctx.home.archive_path(),
            building: data.join("archive.rebuild.db"),
            built: data.join("archive.rebuilt.db"),
            aside_note: data.join("archive.rebuilt.aside"),
            data,
        }
    }

    /// Moves the old database (with its WAL and shared-memory files; a WAL left beside a
    /// deleted database would be replayed into the new one) aside, and `built` into place.
    fn swap(&self, now_ms: u64) -> Result<Option<PathBuf>> {
        let leftovers = ["", "-wal", "-shm"]
            .iter()
            .any(|suffix| with_suffix(&self.archive, suffix).exists());
        let noted = std::fs::read_to_string(&self.aside_note)
            .ok()
            .map(|name| self.data.join(name.trim()));
        let aside = match noted {
            Some(aside) => Some(aside),
            None if leftovers => {
                let name = format!("archive.damaged-{now_ms}.db");
                std::fs::write(&self.aside_note, &name)
                    .with_context(|| format!("writing {}", self.aside_note.display()))?;
                sync_folder(&self.data)?;
                Some(self.data.join(name))
            }
            None => None,
        };
        if let Some(aside) = &aside {
            rename_database(&self.archive, aside)?;
            crate::crash_point::passed("rebuild.aside");
        }
        rename_database(&self.built, &self.archive)?;
        sync_folder(&self.data)?;
        match std::fs::remove_file(&self.aside_note) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing {}", self.aside_note.display()));
            }
        }
        Ok(aside)
    }
}

fn text_of(r: &RebuildReport) -> String {
    let mut text = format!(
        "rebuilt the archive of {} from the local store: {} ({} of this machine), {}, {}",
        r.origin,
        count((r.own_sessions + r.other_sessions) as usize, "session"),
        r.own_sessions,
        count(r.events as usize, "edit"),
        count(r.conflicts as usize, "conflict"),
    );
    if r.identity_from == "recovery copy" {
        text.push_str("\nidentity: from the recovery copy identity.json");
    }
    for table in &r.salvaged {
        if let Some(lost) = &table.lost {
            text.push_str(&format!(
                "\nold {}: {} rows carried over, the rest unreadable ({lost})",
                table.table, table.rows
            ));
        }
    }
    if let Some(kept) = &r.kept_from_old {
        if kept.sessions > 0 {
            text.push_str(&format!(
                "\n{} the store does not hold kept from the old database ({})",
                count(kept.sessions as usize, "session"),
                count(kept.messages as usize, "message")
            ));
        }
        if let Some(lost) = &kept.lost {
            text.push_str(&format!("\nold sessions: some could not be read ({lost})"));
        }
    }
    if r.quarantined + r.deferred > 0 {
        text.push_str(&format!(
            "\n{} quarantined, {} deferred: see `agentsync status`",
            r.quarantined, r.deferred
        ));
    }
    if let Some(aside) = &r.kept_aside {
        text.push_str(&format!("\nthe old database is kept as {aside}"));
    }
    text.push_str("\nsessions whose logs still exist are read again by the next ingest or sync");
    text
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Renames a database and whichever of its WAL and shared-memory files exist.
fn rename_database(from: &Path, to: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let source = with_suffix(from, suffix);
        if source.exists() {
            std::fs::rename(&source, with_suffix(to, suffix))
                .with_context(|| format!("moving {} to {}", source.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Makes the renames in `dir` durable before the next step relies on them.
fn sync_folder(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn remove_database(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let file = with_suffix(path, suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", file.display())),
        }
    }
    Ok(())
}
