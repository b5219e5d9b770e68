//! `rebuild`: a new archive database, made from what the old one's sync state still holds and
//! from the local store. The new database is made beside the old one and takes its place only
//! once it is complete; the old file is kept aside, never deleted.

use std::path::{Path, PathBuf};

use agentsync_archive::{Archive, SalvagedTable};
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
    let data = &ctx.home.data_dir;
    let path = ctx.home.archive_path();
    let fresh = data.join("archive.rebuild.db");
    // What an interrupted rebuild left: it was never in use.
    remove_database(&fresh)?;
    let now = now_ms();
    let mut archive = Archive::open(&fresh)
        .with_context(|| format!("creating the new archive {}", fresh.display()))?;
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
                remove_database(&fresh)?;
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
    archive.adopt_export_markers()?;
    let ledger = archive.transaction(|a| {
        let ledger = a.replay_from_scratch(now)?;
        a.reproject(&ledger)?;
        Ok(ledger)
    })?;
    let counts = archive.origin_counts()?;
    let (own_sessions, other_sessions) = counts.iter().fold((0, 0), |(own, other), c| {
        if c.origin == identity.0.as_str() {
            (own + c.sessions, other)
        } else {
            (own, other + c.sessions)
        }
    });
    let report = RebuildReport {
        origin: identity.0.to_string(),
        kept_aside: None,
        salvaged,
        identity_from,
        own_sessions,
        other_sessions,
        events: archive.all_events()?.len() as u64,
        conflicts: ledger.conflicts().len() as u64,
        quarantined: restored.outcome.quarantined.len(),
        deferred: restored.outcome.deferred.len(),
    };
    drop(archive);
    // A write-ahead log left beside a deleted database would be replayed into the new one.
    let leftovers = ["", "-wal", "-shm"]
        .iter()
        .any(|suffix| with_suffix(&path, suffix).exists());
    let kept_aside = if leftovers {
        Some(move_aside(&path, now)?)
    } else {
        None
    };
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(&fresh, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&path, suffix))
                .with_context(|| format!("moving {} into place", from.display()))?;
        }
    }
    let report = RebuildReport {
        kept_aside: kept_aside.map(|p| p.display().to_string()),
        ..report
    };
    let text = text_of(&report);
    let mut out = Output::new(&report, text)?;
    out.partial = report.quarantined + report.deferred > 0
        || report.salvaged.iter().any(|t| t.lost.is_some());
    Ok(out)
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

/// Moves the database (with its WAL and shared-memory files, which belong to it) to
/// `archive.damaged-<ms>.db`.
fn move_aside(path: &Path, now_ms: u64) -> Result<PathBuf> {
    let aside = path.with_file_name(format!("archive.damaged-{now_ms}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(path, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&aside, suffix))
                .with_context(|| format!("moving {} aside", from.display()))?;
        }
    }
    Ok(aside)
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
