//! `agentsync demo`: two machines converging through a shared folder, from bundled samples.
//!
//! Everything runs through the same commands a user types (`init`, `ingest`, `sync`, `rename`,
//! …), each machine in its own data folder, so the demo is the product, not a simulation.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::Value;

use crate::commands::sync::{SyncArgs, sync};
use crate::commands::{Context, Output, browse, curate, setup};
use crate::sync::EngineKind;
use agentsync_archive::SessionFilter;
use agentsync_core::Op;

/// Sample logs: (machine, path under its log folder, contents).
const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "laptop",
        "claude/projects/-home-ana-src-tally/5b0c8e2a-1f3d-4c6e-9a7b-2d4f6a8c0e1b.jsonl",
        include_str!("samples/laptop-tally-csv.jsonl"),
    ),
    (
        "laptop",
        "claude/projects/-home-ana-src-tally/8e1d2c3b-4a5f-4e6d-8c7b-9a0f1e2d3c4b.jsonl",
        include_str!("samples/laptop-tally-rounding.jsonl"),
    ),
    (
        "laptop",
        "codex/sessions/2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl",
        include_str!("samples/laptop-codex-rollout.jsonl"),
    ),
    (
        "desktop",
        "claude/projects/-home-ana-www-blog/c4d5e6f7-0a1b-4c2d-9e3f-5a6b7c8d9e0f.jsonl",
        include_str!("samples/desktop-site-ruby.jsonl"),
    ),
    (
        "desktop",
        "claude/projects/-home-ana-www-blog/f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f.jsonl",
        include_str!("samples/desktop-site-deploy.jsonl"),
    ),
];

const MACHINES: [(&str, &str); 2] = [("laptop", "laptop-0a1b2c"), ("desktop", "desktop-3d4e5f")];

/// The session both machines rename at the same time.
const CONTESTED: &str = "5b0c8e2a";

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub dir: String,
    pub shared: String,
    pub machines: Vec<Machine>,
    pub steps: Vec<Step>,
    /// True when both machines list the same sessions and conflicts.
    pub converged: bool,
    pub sessions: Value,
    pub conflicts: Value,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub name: String,
    pub origin: String,
    pub data_dir: String,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub machine: String,
    pub action: String,
    pub result: String,
}

struct Demo {
    dir: PathBuf,
    shared: PathBuf,
    steps: Vec<Step>,
}

impl Demo {
    fn ctx(&self, machine: &str) -> Result<Context> {
        Context::new(Some(&self.dir.join(machine)), true)
    }

    fn record(&mut self, machine: &str, action: &str, output: Output) -> Output {
        self.steps.push(Step {
            machine: machine.into(),
            action: action.into(),
            result: output.text.lines().last().unwrap_or_default().to_owned(),
        });
        output
    }

    fn sync(&mut self, machine: &str) -> Result<()> {
        let mut ctx = self.ctx(machine)?;
        let out = sync(
            &mut ctx,
            &SyncArgs {
                target: Some(self.shared.clone()),
                no_ingest: true,
                heal: false,
                init: false,
                engine: EngineKind::Native,
                component: None,
            },
        )?;
        self.record(machine, "sync", out);
        Ok(())
    }

    fn edit(&mut self, machine: &str, action: &str, op: Op) -> Result<()> {
        let ctx = self.ctx(machine)?;
        let out = curate::edit(&ctx, &[CONTESTED.to_owned()], |_, _| Ok(vec![op.clone()]))?;
        self.record(machine, action, out);
        Ok(())
    }
}

pub fn run(dir: Option<&Path>, json: bool) -> Result<Output> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => new_temp_dir(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut demo = Demo {
        shared: dir.join("shared"),
        dir: dir.clone(),
        steps: Vec::new(),
    };
    let mut machines = Vec::new();
    for (name, origin) in MACHINES {
        let logs = dir.join(format!("{name}-logs"));
        for (machine, path, text) in SAMPLES.iter().filter(|s| s.0 == name) {
            let file = logs.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file, text).with_context(|| format!("writing {machine}'s {path}"))?;
        }
        let mut ctx = demo.ctx(name)?;
        // The demo machines read only their sample logs, never the user's ~/.claude or any
        // other agent's folders.
        ctx.config.claude_projects = Some(vec![logs.join("claude/projects").display().to_string()]);
        ctx.config.codex_sessions = Some(vec![logs.join("codex/sessions").display().to_string()]);
        for agent in agentsync_logs::agent::ALL {
            if !matches!(agent.name, "claude" | "codex") {
                ctx.config.agents.insert(agent.name.to_owned(), Vec::new());
            }
        }
        let out = setup::init(&mut ctx, Some(origin), Some(&demo.shared))?;
        demo.record(name, "init", out);
        let out = setup::ingest(&ctx, &[logs], None)?;
        demo.record(name, "ingest", out);
        machines.push(Machine {
            name: name.into(),
            origin: origin.into(),
            data_dir: ctx.home.data_dir.display().to_string(),
        });
    }
    // First contact: each publishes, then the laptop picks up what the desktop sent.
    demo.sync("laptop")?;
    demo.sync("desktop")?;
    demo.sync("laptop")?;
    // Offline edits on both machines, to the same session.
    demo.edit(
        "laptop",
        "rename",
        Op::Rename {
            name: "CSV export (laptop's name)".into(),
        },
    )?;
    demo.edit(
        "laptop",
        "tag +feature",
        Op::TagAdd {
            tag: "feature".into(),
        },
    )?;
    demo.edit(
        "desktop",
        "rename",
        Op::Rename {
            name: "CSV export, shipped in 1.4".into(),
        },
    )?;
    demo.edit("desktop", "star", Op::Star)?;
    demo.sync("laptop")?;
    demo.sync("desktop")?;
    demo.sync("laptop")?;

    let listing = |machine: &str| -> Result<(Value, Value)> {
        let ctx = demo.ctx(machine)?;
        Ok((
            browse::sessions(&ctx, &SessionFilter::default())?.value,
            browse::conflicts(&ctx, None)?.value,
        ))
    };
    let (laptop_sessions, laptop_conflicts) = listing("laptop")?;
    let (desktop_sessions, desktop_conflicts) = listing("desktop")?;
    let converged = laptop_sessions == desktop_sessions && laptop_conflicts == desktop_conflicts;
    let laptop_text = browse::sessions(&demo.ctx("laptop")?, &SessionFilter::default())?.text;
    let conflicts_text = browse::conflicts(&demo.ctx("laptop")?, None)?.text;
    let report = DemoReport {
        dir: dir.display().to_string(),
        shared: demo.shared.display().to_string(),
        machines,
        steps: demo.steps,
        converged,
        sessions: laptop_sessions,
        conflicts: laptop_conflicts,
    };
    let text = render(&report, &laptop_text, &conflicts_text, json);
    let mut out = Output::new(&report, text)?;
    out.partial = !converged;
    Ok(out)
}

fn render(report: &DemoReport, sessions: &str, conflicts: &str, _json: bool) -> String {
    let mut text = format!("agentsync demo in {}\n\n", report.dir);
    for step in &report.steps {
        text.push_str(&format!(
            "{:<8} {:<13} {}\n",
            step.machine, step.action, step.result
        ));
    }
    text.push_str(&format!(
        "\nBoth machines now hold the same {} sessions{}:\n{}\n",
        report.sessions.as_array().map_or(0, Vec::len),
        if report.converged {
            ""
        } else {
            " (NOT converged: a bug)"
        },
        sessions.trim_end(),
    ));
    text.push_str(&format!(
        "\nThe concurrent rename is kept as a conflict on both:\n{}\n",
        conflicts.trim_end()
    ));
    let laptop = report
        .machines
        .first()
        .map(|m| m.data_dir.as_str())
        .unwrap_or_default();
    text.push_str(&format!(
        "\nLook around:\n  agentsync --data-dir {laptop} sessions\n  agentsync --data-dir {laptop} show {CONTESTED}\n  agentsync --data-dir {laptop} search csv\n  agentsync --data-dir {laptop} status\n(scripts/demo goes on to show this archive in the browser viewer, from an S3 bucket.)\n"
    ));
    text
}

fn new_temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("agentsync-demo-{}-{nanos:08x}", std::process::id()))
}
