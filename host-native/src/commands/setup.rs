//! `init` and `ingest`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use super::{Context, Output, now_ms};
use crate::ingest::pass::{self, LogFormat};
use crate::target::TargetSpec;

/// Mints the origin (once) and records the default sync target.
pub fn init(ctx: &mut Context, origin: Option<&str>, target: Option<&Path>) -> Result<Output> {
    let archive = ctx.archive()?;
    let (origin, key) =
        crate::origin::ensure(&archive, &ctx.home.data_dir, origin, now_ms() as i64)?;
    // The token other machines need for this machine's `serve`, made once.
    crate::serve::token(&ctx.home.data_dir)?;
    if let Some(target) = target {
        let spec = TargetSpec::parse(&target.to_string_lossy())?;
        ctx.config.target = Some(super::absolute_target(&spec)?);
        ctx.config.save(&ctx.home.config_file)?;
    }
    let value = json!({
        "origin": origin.as_str(),
        "public_key": key.public().to_hex(),
        "data_dir": ctx.home.data_dir.display().to_string(),
        "config": ctx.home.config_file.display().to_string(),
        "target": ctx.config.target,
    });
    let text = format!(
        "origin   {origin}\nkey      {}\ndata     {}\nconfig   {}\ntarget   {}",
        key.public().to_hex(),
        ctx.home.data_dir.display(),
        ctx.home.config_file.display(),
        ctx.config
            .target
            .as_deref()
            .unwrap_or("(none: pass one to `sync`)"),
    );
    Output::new(value, text)
}

/// The logs to read: the given paths, else the configured agent folders.
pub fn logs(ctx: &Context, paths: &[PathBuf]) -> Result<Vec<(PathBuf, LogFormat)>> {
    Ok(pass::discover_logs(
        paths,
        &ctx.config.claude_projects(),
        &ctx.config.codex_sessions(),
    )?)
}

pub fn ingest(ctx: &Context, paths: &[PathBuf]) -> Result<Output> {
    let mut archive = ctx.archive()?;
    let (origin, _) = ctx.identity(&archive)?;
    let logs = logs(ctx, paths)?;
    let summary = pass::run(&mut archive, &origin, &logs, &ctx.progress)?;
    let mut text = format!(
        "{} ({} unchanged), {} changed, {}, {:.1} MB read",
        super::count(summary.files as usize, "file"),
        summary.unchanged,
        super::count(summary.sessions_changed as usize, "session"),
        super::count(summary.messages as usize, "message"),
        summary.bytes_read as f64 / 1e6
    );
    if summary.malformed_lines > 0 {
        text.push_str(&format!(
            "\n{} skipped:",
            super::count(summary.malformed_lines as usize, "malformed line")
        ));
        for m in &summary.malformed {
            text.push_str(&format!("\n  {m}"));
        }
    }
    for f in &summary.failed {
        text.push_str(&format!("\nfailed: {f}"));
    }
    if summary.files == 0 {
        text.push_str(
            "\nno logs found: pass a Claude Code `projects` folder (~/.claude/projects), a Codex \
             `sessions` folder (~/.codex/sessions), a home holding them, or log files",
        );
    }
    let failed = !summary.failed.is_empty();
    let mut out = Output::new(&summary, text)?;
    out.partial = failed;
    Ok(out)
}
