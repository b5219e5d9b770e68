//! `init` and `ingest`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{Context, Output, now_ms};
use crate::ingest::find::{self, Log};
use crate::ingest::pass;
use crate::target::TargetSpec;
use agentsync_logs::agent::{self, Agent};

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

/// The logs to read: the given paths (read as `only`'s logs when an agent is named), else the
/// folders of every agent (or of `only`), configured or where the agent keeps them.
pub fn logs(ctx: &Context, paths: &[PathBuf], only: Option<&str>) -> Result<Vec<Log>> {
    let only = only.map(agent_named).transpose()?;
    for name in ctx.config.agents.keys() {
        agent_named(name).context("in the config's [agents] table")?;
    }
    if !paths.is_empty() {
        return Ok(find::named_logs(paths, only)?);
    }
    let agents: Vec<&'static Agent> = match only {
        Some(agent) => vec![agent],
        None => agent::ALL.to_vec(),
    };
    Ok(find::configured_logs(&agents, |a| {
        ctx.config.agent_roots(a)
    })?)
}

fn agent_named(name: &str) -> Result<&'static Agent> {
    agent::named(name).ok_or_else(|| {
        let names: Vec<&str> = agent::ALL.iter().map(|a| a.name).collect();
        anyhow::anyhow!("no agent is called {name:?} (agents: {})", names.join(", "))
    })
}

pub fn ingest(ctx: &Context, paths: &[PathBuf], only: Option<&str>) -> Result<Output> {
    let mut archive = ctx.archive()?;
    let (origin, _) = ctx.identity(&archive)?;
    let logs = logs(ctx, paths, only)?;
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
            "\nno logs found: pass log files, an agent's folder (~/.claude/projects, \
             ~/.codex/sessions, ...) or a home holding them; `--agent NAME --from DIR` for an \
             agent's logs in another place",
        );
    }
    let failed = !summary.failed.is_empty();
    let mut out = Output::new(&summary, text)?;
    out.partial = failed;
    Ok(out)
}
