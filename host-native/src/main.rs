//! `agentsync`: the native command-line host.

mod compress;
mod demo;
mod inspect;
mod store;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Keep an archive of AI coding-agent sessions in sync across machines.
#[derive(Debug, Parser)]
#[command(name = "agentsync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a stored artifact (segment, manifest, bucket, root, events) as JSON.
    Inspect {
        /// The artifact file, e.g. `<store>/<origin>/segments/<id>.ndjson.zst`.
        file: PathBuf,
        /// The artifact's key, e.g. `roots/<origin>/<seq>-<id>.root`. Defaults to the file's
        /// last three path components when they form a key; otherwise only the frame's own
        /// header is checked.
        #[arg(long)]
        key: Option<String>,
    },
    /// Format-level demo: two simulated machines write sample sessions as artifacts into one
    /// folder and read each other's back, verifying every artifact.
    Demo {
        /// The shared folder (default: a new folder under the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // Usage errors exit with 2 inside `parse`.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let output = match cli.command {
        Command::Inspect { file, key } => inspect::inspect(&file, key.as_deref())?,
        Command::Demo { dir, json } => {
            let report = demo::run(dir.as_deref())?;
            if json {
                serde_json::to_string_pretty(&report).context("rendering the report")?
            } else {
                demo::render_text(&report)
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{}", output.trim_end()).and_then(|()| stdout.flush()) {
        // The reader went away (`agentsync ... | head`): not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
