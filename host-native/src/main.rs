//! `agentsync`: the native command-line host.

mod compress;
mod conformance;
mod demo;
#[allow(dead_code)]
mod ingest;
mod inspect;
mod store;
mod wasm;

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
    /// Run the conformance vectors with the native core or the core's WebAssembly component:
    /// one result line per vector on stdout, then each is checked against its `expect`.
    Conformance {
        /// Which build of the core runs the vectors.
        #[arg(long, value_enum)]
        engine: conformance::EngineKind,
        /// The component for `--engine wasm` (default: $AGENTSYNC_COMPONENT, else
        /// `<target>/wasm32-wasip2/release/agentsync_component.wasm` beside this executable).
        #[arg(long)]
        component: Option<PathBuf>,
        /// Vectors allowed to fail, one name a line (default: `expected-failures.txt` in the
        /// first folder, if present). A listed vector that passes fails the run.
        #[arg(long)]
        expected_failures: Option<PathBuf>,
        /// Folders searched recursively for `*.json` vector files (sorted by path), or files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
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
        Command::Conformance {
            engine,
            component,
            expected_failures,
            paths,
        } => {
            let options = conformance::Options {
                engine,
                component: component.as_deref(),
                expected_failures: expected_failures.as_deref(),
                paths: &paths,
            };
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            return conformance::run(&options, &mut stdout);
        }
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
