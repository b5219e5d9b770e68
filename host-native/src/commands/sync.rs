//! `sync` (once, or `--watch`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use notify::{RecursiveMode, Watcher};

use super::{Context, Output, now_ms};
use crate::sync::{self, EngineKind, SyncOptions, SyncReport};
use crate::target::TargetSpec;

pub struct SyncArgs {
    pub target: Option<PathBuf>,
    pub no_ingest: bool,
    /// Self-heal checks every own key this run.
    pub heal: bool,
    pub init: bool,
    pub engine: EngineKind,
    pub component: Option<PathBuf>,
}

fn once(ctx: &mut Context, args: &SyncArgs) -> Result<SyncReport> {
    let target = ctx.target(args.target.as_deref())?;
    if let Some(spec) = &target {
        if args.init {
            // `--init` makes this target the default (creating it); curation needs no baseline
            // of its own here (every edit is a ledger event from the first one), so the first
            // export publishes it.
            let absolute = super::absolute_target(spec)?;
            if ctx.config.target.as_deref() != Some(absolute.as_str()) {
                ctx.config.target = Some(absolute);
                ctx.config.save(&ctx.home.config_file)?;
            }
        } else if let TargetSpec::Folder(t) = spec
            && !t.is_dir()
        {
            // An unmounted share must not turn into a fresh local folder.
            bail!(
                "the sync target {} is not a folder (not mounted?); create it, or pass --init \
                 to create it and make it the default",
                t.display()
            );
        }
    }
    let _write_lock = crate::lock::acquire(&ctx.home.data_dir, "sync")?;
    let mut archive = ctx.archive()?;
    let identity = ctx.identity(&archive)?;
    let (logs, states_ahead) = if args.no_ingest {
        (None, None)
    } else {
        let ahead = sync::StatesAhead::start(&ctx.home.archive_path());
        (Some(super::setup::logs(ctx, &[], None)?), Some(ahead))
    };
    let mut report = sync::run(
        &mut archive,
        &identity,
        &ctx.home.mirror_dir(),
        &SyncOptions {
            target: target.as_ref(),
            http_token: ctx.config.http.token.as_deref(),
            ingest: logs.as_deref(),
            engine: args.engine,
            component: args.component.as_deref(),
            now_ms: now_ms(),
            heal_every_ms: if args.heal {
                0
            } else {
                ctx.config.heal.every_ms()?
            },
            states_ahead: states_ahead.as_ref(),
        },
        &ctx.progress,
    )?;
    // GC on the schedule of the config; it deletes only what two GCs a grace window apart saw
    // unreachable, so running it often is safe. The schedule starts at a machine's first sync:
    // a first GC deletes nothing (it only records what it saw), and on a first sync, which
    // just wrote every key it would list, it would only add a listing of both stores.
    if let Some(every) = ctx.config.gc.every_ms()? {
        let now = now_ms();
        let last: u64 = match archive.state("gc_ran")? {
            Some(last) => last,
            None => {
                archive.set_state("gc_ran", &now)?;
                now
            }
        };
        if now.saturating_sub(last) >= every {
            drop(archive);
            let gc = super::maintain::gc(ctx, args.target.as_deref(), None, false)?;
            report.gc = Some(gc.value);
        }
    }
    Ok(report)
}

pub fn render(report: &SyncReport) -> String {
    let mut text = String::new();
    if let Some(ingest) = &report.ingest {
        let n = |field: &serde_json::Value| field.as_u64().unwrap_or_default() as usize;
        text.push_str(&format!(
            "ingest: {}, {} changed, {}\n",
            super::count(n(&ingest["files"]), "file"),
            super::count(n(&ingest["sessions_changed"]), "session"),
            super::count(n(&ingest["messages"]), "message"),
        ));
        for log in ingest["malformed_files"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "ingest: {}: {} skipped (first: {})\n",
                log["path"].as_str().unwrap_or_default(),
                super::count(n(&log["lines"]), "malformed line"),
                log["first"].as_str().unwrap_or_default()
            ));
        }
        for failed in ingest["failed"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "ingest failed: {}\n",
                failed.as_str().unwrap_or_default()
            ));
        }
    }
    text.push_str(&format!(
        "sync {} ↔ {}: exported {}, sent {}, exchanged {}, fetched {}, imported {} ({}), \
         {} published, {} applied, {}",
        report.origin,
        report.target.as_deref().unwrap_or("(no target)"),
        report.exported,
        report.sent,
        report.exchanged,
        report.fetched,
        super::count(report.imported_sessions, "session"),
        super::count(report.imported_messages, "message"),
        super::count(report.events_published, "edit"),
        report.events_applied,
        super::count(report.conflicts as usize, "conflict"),
    ));
    for p in report.quarantined.iter().chain(&report.deferred) {
        text.push_str(&format!(
            "\n{} {} {}: {}{}",
            p.state.name(),
            p.class,
            p.key,
            p.reason,
            remedy(p, &report.origin)
        ));
    }
    if report.events_deferred > 0 {
        text.push_str(&format!("\n{} edits deferred", report.events_deferred));
    }
    text
}

/// What the user can do about a problem, when there is a command for it.
pub fn remedy(problem: &agentsync_archive::ProblemRow, own_origin: &str) -> String {
    // An own edit no reader accepts (`engine::unpublishable_key`): "edit (op N) of G at HLC".
    match problem
        .key
        .strip_prefix("edit (")
        .and_then(|k| k.rsplit_once(" at "))
    {
        Some((_, hlc)) => format!(" (`agentsync drop-edit {hlc}` drops it)"),
        // Another key for this machine's own origin is no matter of trust: a forgery, or
        // this origin's old key after the folder was set up again.
        None if (problem.class == "KeyMismatch" || problem.class == "Revoked")
            && problem
                .key
                .parse::<agentsync_core::ArtifactKey>()
                .map_or(true, |key| key.origin().as_str() != own_origin) =>
        {
            " (`agentsync trust` shows the keys, and trusts another one)".to_owned()
        }
        None => String::new(),
    }
}

pub fn sync(ctx: &mut Context, args: &SyncArgs) -> Result<Output> {
    let report = once(ctx, args)?;
    let text = render(&report);
    let mut out = Output::new(&report, text)?;
    out.partial = report.is_partial();
    Ok(out)
}

enum Wake {
    Changed,
    Stop,
}

/// Syncs now, then again on changes to the agents' logs or the target's roots (debounced),
/// at least every interval, and once more on Ctrl-C.
pub fn watch(ctx: &mut Context, args: &SyncArgs) -> Result<Output> {
    let (tx, rx) = mpsc::channel();
    let stop = tx.clone();
    ctrlc::set_handler(move || {
        let _ = stop.send(Wake::Stop);
    })
    .context("installing the Ctrl-C handler")?;
    let changed = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = changed.send(Wake::Changed);
        }
    })
    .context("starting the file watcher")?;
    let mut watched: Vec<PathBuf> = agentsync_logs::agent::ALL
        .iter()
        .flat_map(|agent| ctx.config.agent_roots(agent))
        .collect();
    // A remote target is polled at the interval; a folder is watched too.
    if let Some(TargetSpec::Folder(target)) = ctx.target(args.target.as_deref())? {
        watched.push(target.join("roots"));
        watched.push(target);
    }
    for dir in watched.iter().filter(|d| d.is_dir()) {
        // A folder that cannot be watched (inotify limits, network file systems) is still
        // covered by the interval.
        let _ = watcher.watch(Path::new(dir), RecursiveMode::Recursive);
    }
    let interval = Duration::from_secs(ctx.config.watch.interval_secs.max(1));
    let debounce = Duration::from_millis(ctx.config.watch.debounce_ms);
    let mut runs = 0u64;
    loop {
        let report = once(ctx, args)?;
        runs += 1;
        print_run(ctx.json, &report);
        // What the run itself wrote (the mirror, the target's roots) is not a reason to run
        // again.
        let mut stop = false;
        while let Ok(wake) = rx.try_recv() {
            stop |= matches!(wake, Wake::Stop);
        }
        if stop {
            break;
        }
        match rx.recv_timeout(interval) {
            Ok(Wake::Stop) => break,
            Ok(Wake::Changed) => {
                // Debounce: an agent writes many lines in a burst.
                let quiet_until = Instant::now() + debounce;
                let mut stop = false;
                while let Some(left) = quiet_until.checked_duration_since(Instant::now()) {
                    match rx.recv_timeout(left) {
                        Ok(Wake::Stop) => {
                            stop = true;
                            break;
                        }
                        Ok(Wake::Changed) => {}
                        Err(_) => break,
                    }
                }
                if stop {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // The final exchange: what was edited since the last run leaves before we exit.
    let report = once(ctx, args)?;
    runs += 1;
    print_run(ctx.json, &report);
    if !ctx.json {
        eprintln!("stopped after {runs} syncs");
    }
    // Every run was printed as it happened (one JSON object a line under --json).
    Ok(Output {
        value: serde_json::Value::Null,
        text: String::new(),
        partial: report.is_partial(),
        printed: true,
    })
}

fn print_run(json: bool, report: &SyncReport) {
    if json {
        if let Ok(line) = serde_json::to_string(report) {
            println!("{line}");
        }
    } else {
        eprintln!("{}", crate::terminal::safe(&render(report)));
    }
}
