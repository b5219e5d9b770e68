//! `agentsync-bench`: writes benchmark corpora of agent session logs.

use std::path::PathBuf;
use std::time::Instant;

use agentsync_bench::{CorpusSpec, CorpusSummary, append, generate, parse_size};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;

/// Deterministic corpora of Claude Code and Codex session logs, for benchmarks.
#[derive(Debug, Parser)]
#[command(name = "agentsync-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a corpus: OUT/claude/projects/... and OUT/codex/sessions/... (both must be absent
    /// or empty). The same seed and size always write the same bytes.
    Corpus {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Total size of the logs: bytes, or with a unit (10MB, 100MB, 1GB, 512MiB).
        #[arg(long, value_parser = parse_size)]
        size: u64,
        #[arg(long)]
        out: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Append whole messages to one Claude Code session of a corpus (chosen by the seed), as a
    /// running agent would.
    Append {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1)]
        messages: usize,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The summary, and how long writing took (the one thing in it that is not deterministic).
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    summary: &'a CorpusSummary,
    seconds: f64,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Corpus {
            seed,
            size,
            out,
            json,
        } => {
            let started = Instant::now();
            let summary = generate(
                &out,
                &CorpusSpec {
                    seed,
                    target_bytes: size,
                },
            )
            .with_context(|| format!("writing a corpus into {}", out.display()))?;
            let seconds = started.elapsed().as_secs_f64();
            if json {
                let report = Report {
                    summary: &summary,
                    seconds,
                };
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: {} bytes in {} files: {} sessions ({} Claude Code, {} Codex) + {} subagent \
                     sessions; {} messages, {} tool calls; messages per session: median {}, max {}; \
                     {:.2} s ({:.0} MB/s)",
                    out.display(),
                    summary.bytes,
                    summary.files,
                    summary.sessions,
                    summary.claude_sessions,
                    summary.codex_sessions,
                    summary.subagent_sessions,
                    summary.messages,
                    summary.tool_calls,
                    summary.median_session_messages,
                    summary.max_session_messages,
                    seconds,
                    summary.bytes as f64 / 1e6 / seconds.max(1e-9)
                );
            }
        }
        Command::Append {
            out,
            seed,
            messages,
            json,
        } => {
            let summary = append(&out, seed, messages)
                .with_context(|| format!("appending to a session under {}", out.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "{}: appended {} messages ({} bytes)",
                    summary.path.display(),
                    summary.messages,
                    summary.bytes
                );
            }
        }
    }
    Ok(())
}
