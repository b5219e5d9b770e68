//! `agentsync`: the native command-line host. This file is the command line (clap) and the
//! exit codes; everything it runs is the `agentsync` library (`lib.rs`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use agentsync_archive::SessionFilter;
use agentsync_core::Op;
use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};

use agentsync::commands::{
    self, Context, Output, UsageError, browse, curate, maintain, setup, trust,
};
use agentsync::{conformance, demo, sync};

/// Keep an archive of AI coding-agent sessions (Claude Code, Codex) on every machine you use,
/// in sync through a shared folder.
#[derive(Debug, Parser)]
#[command(name = "agentsync", version)]
struct Cli {
    /// This machine's data folder (archive, local mirror, config). Default: $AGENTSYNC_HOME,
    /// else the platform's data folder (~/.local/share/agentsync).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON (and no progress bars).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct SessionArgs {
    /// Session ids: the full `<origin>~<id>`, the agent's id, or a unique prefix.
    #[arg(required = true, value_name = "SESSION")]
    sessions: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create this machine's identity (origin id and signing key) and optionally set the
    /// default sync target. Other commands do this on first use.
    Init {
        /// The origin id to use instead of `<host>-<6 hex>` (a-z, 0-9, '-').
        #[arg(long)]
        origin: Option<String>,
        /// The shared folder `sync` and `gc` use by default (created if missing).
        #[arg(long)]
        target: Option<PathBuf>,
    },
    /// Read agent logs into the archive: the given files or folders, else every agent's
    /// folders (~/.claude/projects, ~/.codex/sessions, ..., or what the config names).
    Ingest {
        paths: Vec<PathBuf>,
        /// Only this agent's logs (claude, codex, ...); named files are read as its logs.
        #[arg(long)]
        agent: Option<String>,
        /// Read the agent's logs from this folder instead of where it keeps them.
        #[arg(long, requires = "agent")]
        from: Vec<PathBuf>,
    },
    /// List sessions, newest first (trashed ones only with --trashed).
    Sessions {
        /// Only sessions whose messages or names match these words.
        #[arg(long)]
        search: Option<String>,
        /// Only starred sessions.
        #[arg(long)]
        starred: bool,
        /// Show the trash instead.
        #[arg(long)]
        trashed: bool,
        /// Only sessions with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only sessions from this origin (machine).
        #[arg(long)]
        origin: Option<String>,
        /// At most this many sessions.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Show one session with its messages.
    Show {
        session: String,
        /// Tool inputs and results whole (otherwise long ones are cut with a visible "…").
        #[arg(long)]
        full: bool,
        /// The model's thinking whole (otherwise its first line).
        #[arg(long)]
        thinking: bool,
        /// Messages on branches the user left (an edited prompt's first attempt) too, marked.
        #[arg(long)]
        all: bool,
    },
    /// Full-text search over messages.
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// Give a session a name (an empty name clears it).
    Rename {
        session: String,
        name: String,
    },
    /// Star sessions.
    Star(SessionArgs),
    /// Remove the star from sessions.
    Unstar(SessionArgs),
    /// Move sessions to the trash (hidden from lists, kept, restorable).
    Trash(SessionArgs),
    /// Take sessions out of the trash.
    Restore(SessionArgs),
    /// Delete sessions everywhere, for good: every machine drops them and never imports them
    /// again.
    Purge {
        #[command(flatten)]
        sessions: SessionArgs,
        /// Confirm: purging cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Pin a message of a session (by ordinal, as `show` prints it).
    Pin {
        session: String,
        ordinal: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    Unpin {
        session: String,
        ordinal: u64,
    },
    /// Add (+tag or tag) and remove (-tag) tags.
    Tag {
        session: String,
        #[arg(required = true, allow_hyphen_values = true, value_name = "+TAG|-TAG")]
        changes: Vec<String>,
    },
    /// Set a session's note (an empty note clears it).
    Note {
        session: String,
        text: String,
    },
    /// Ingest, publish, exchange with the target folder, import and apply peers' edits.
    /// Exits 3 when items were deferred or quarantined.
    Sync {
        /// The shared folder (default: the config's `target`).
        target: Option<PathBuf>,
        /// Skip reading the agents' logs; only publish and exchange what the archive holds.
        #[arg(long)]
        no_ingest: bool,
        /// Check every one of this machine's keys in the target now and replace corrupt
        /// copies (otherwise on the `heal.every` schedule; roots are checked on every sync).
        #[arg(long)]
        heal: bool,
        /// Keep running: sync on log changes, on the target's new checkpoints, and at least
        /// every `watch.interval_secs`; a last sync on Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// Make TARGET the default and publish this machine's curation before importing.
        #[arg(long)]
        init: bool,
        /// Which build of the core plans exchange, import and replay.
        #[arg(long, value_enum, default_value = "native")]
        engine: sync::EngineKind,
        /// The component for `--engine wasm`.
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// Delete this machine's unreachable artifacts older than the grace window from the local
    /// mirror and the target.
    Gc {
        /// The shared folder (default: the config's `target`).
        target: Option<PathBuf>,
        /// e.g. 7d, 12h, 30m (default: the config's gc.grace, 7d).
        #[arg(long)]
        grace: Option<String>,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Origins, checkpoints, counts, last sync, conflicts, deferred and quarantined items.
    Status,
    /// Drop one of this machine's unpublished edits, named by the HLC `sync` and `status`
    /// print for it (an edit no reader accepts, written by an older version, is reported on
    /// every sync until it is dropped).
    DropEdit {
        /// The edit's HLC (or event id).
        hlc: String,
    },
    /// The key each origin signs with, as this machine pinned it on first sight; trust another
    /// key for an origin (a machine that lost its key and kept its origin), or revoke one.
    Trust {
        /// One origin (default: every origin this machine knows).
        origin: Option<String>,
        /// The key to trust for ORIGIN from now on (64 hex digits, as `trust` prints it).
        key: Option<String>,
        /// Accept nothing more that ORIGIN signs (what was imported stays).
        #[arg(long, requires = "origin", conflicts_with = "key")]
        revoke: bool,
    },
    /// Serve this machine's store over HTTP to machines that sync with
    /// `http://HOST:PORT` (token required; loopback unless --allow-remote).
    Serve {
        /// Address to listen on (port 0: any free port, printed).
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: String,
        /// The token clients must send (default: `$AGENTSYNC_SERVE_TOKEN`, else the data
        /// folder's `serve-token`, made on first use). An option shows in `ps`: prefer those.
        #[arg(long)]
        token: Option<String>,
        /// Allow an address other machines can reach (put TLS in front: docs/cli.md).
        #[arg(long)]
        allow_remote: bool,
    },
    /// Concurrent edits that lost, kept visible.
    Conflicts {
        session: Option<String>,
    },
    /// Print any artifact (a file, or a key in the mirror or target) as JSON.
    Inspect {
        /// A file, or a key such as `roots/<origin>/<seq>-<id>.root`.
        file: String,
        /// The key to check a file against (default: its last path components).
        #[arg(long)]
        key: Option<String>,
    },
    /// Check every artifact of a store (default: the local mirror): ids, signatures, pinned
    /// keys, every reference of each origin's newest checkpoint; and the database. Exits 3
    /// when something is wrong.
    Verify {
        target: Option<PathBuf>,
    },
    /// Make the archive database again from the local store (every machine's sessions, this
    /// one's included, and every edit) and from what the old database still holds (identity,
    /// sync progress, unpublished edits). For a database that is damaged or gone; the old file
    /// is kept aside. Logs are read again by the next ingest or sync.
    Rebuild,
    /// Write the archive database again without its free pages, in this version's page size
    /// (16 KiB: an archive made before has 4 KiB). Needs the archive to itself (close an
    /// `sqlite3` shell first; other commands and `serve`'s requests wait for it) and free disk
    /// for two more copies of it while it runs.
    Compact,
    /// The demo: two machines ("laptop", "desktop") ingest sample sessions, sync through a
    /// folder, edit concurrently, sync again and converge, keeping the conflict visible.
    Demo {
        /// Where to put the two machines and the shared folder (default: a new temp folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the conformance vectors with the native core or the WebAssembly component.
    #[command(hide = true)]
    Conformance {
        #[arg(long, value_enum)]
        engine: conformance::EngineKind,
        #[arg(long)]
        component: Option<PathBuf>,
        #[arg(long)]
        expected_failures: Option<PathBuf>,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Usage errors exit with 2 inside `parse`.
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(output)) if output.printed => exit_code(output.partial),
        Ok(Some(output)) => {
            let text = if json {
                serde_json::to_string_pretty(&output.value).unwrap_or_default()
            } else {
                agentsync::terminal::safe(&output.text)
            };
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{}", text.trim_end()).and_then(|()| stdout.flush()) {
                // The reader went away (`agentsync ... | head`): not an error of ours.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: writing to stdout: {e}");
                    return ExitCode::FAILURE;
                }
                _ => {}
            }
            exit_code(output.partial)
        }
        Err(e) => {
            eprintln!("error: {}", agentsync::terminal::safe(&format!("{e:#}")));
            if is_damaged_database(&e) {
                eprintln!("{}", commands::DAMAGED_HINT);
            }
            if e.is::<UsageError>() || is_refused_edit(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// SQLite found the archive database damaged (when opening it or later, in a query).
fn is_damaged_database(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<agentsync_archive::ArchiveError>()
            .is_some_and(agentsync_archive::ArchiveError::is_damaged)
    })
}

/// Names and tags are shown on every machine: no control characters (exit 2).
fn refuse_control(what: &'static str, text: &str) -> Result<()> {
    if agentsync::terminal::has_control(text) {
        return Err(UsageError(match what {
            "a name" => "a name cannot hold control characters (escape sequences, bidi overrides)",
            _ => "a tag cannot hold control characters (escape sequences, bidi overrides)",
        })
        .into());
    }
    Ok(())
}

/// The name of a command that writes to the data folder (other than `sync`, which locks per
/// run), for the write lock.
fn writer_name(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Init { .. } => "init",
        Command::Ingest { .. } => "ingest",
        Command::Rename { .. } => "rename",
        Command::Star(_) => "star",
        Command::Unstar(_) => "unstar",
        Command::Trash(_) => "trash",
        Command::Restore(_) => "restore",
        Command::Purge { .. } => "purge",
        Command::Pin { .. } => "pin",
        Command::Unpin { .. } => "unpin",
        Command::Tag { .. } => "tag",
        Command::Note { .. } => "note",
        Command::DropEdit { .. } => "drop-edit",
        Command::Trust { key: Some(_), .. } | Command::Trust { revoke: true, .. } => "trust",
        Command::Gc { dry_run: false, .. } => "gc",
        Command::Rebuild => "rebuild",
        Command::Compact => "compact",
        _ => return None,
    })
}

/// An edit over a limit every reader applies, or a tag that is no tag: a usage error (exit 2),
/// and nothing was written.
fn is_refused_edit(e: &anyhow::Error) -> bool {
    use agentsync_core::ledger::EditError;
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<agentsync_archive::ArchiveError>(),
            Some(agentsync_archive::ArchiveError::Edit(EditError::Invalid(_)))
        ) || matches!(
            cause.downcast_ref::<EditError>(),
            Some(EditError::Invalid(_))
        )
    })
}

/// 3 when the work is done except for some items, else 0.
fn exit_code(partial: bool) -> ExitCode {
    if partial {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(cli: Cli) -> Result<Option<Output>> {
    if let Command::Conformance {
        engine,
        component,
        expected_failures,
        paths,
    } = &cli.command
    {
        let options = conformance::Options {
            engine: *engine,
            component: component.as_deref(),
            expected_failures: expected_failures.as_deref(),
            paths,
        };
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        conformance::run(&options, &mut stdout)?;
        return Ok(None);
    }
    if let Command::Demo { dir } = &cli.command {
        return demo::run(dir.as_deref(), cli.json).map(Some);
    }
    let mut ctx = Context::new(cli.data_dir.as_deref(), cli.json)?;
    // One writer per data folder; `sync` locks per run itself (so `--watch` holds it only
    // while a run writes), readers never lock.
    let _write_lock = match writer_name(&cli.command) {
        Some(name) => Some(agentsync::lock::acquire(&ctx.home.data_dir, name)?),
        None => None,
    };
    let ops = |op: Op| move |_: &_, _: &_| Ok(vec![op.clone()]);
    let output = match cli.command {
        Command::Init { origin, target } => {
            setup::init(&mut ctx, origin.as_deref(), target.as_deref())?
        }
        Command::Ingest {
            mut paths,
            agent,
            from,
        } => {
            paths.extend(from);
            setup::ingest(&ctx, &paths, agent.as_deref())?
        }
        Command::Sessions {
            search,
            starred,
            trashed,
            tag,
            origin,
            limit,
        } => browse::sessions(
            &ctx,
            &SessionFilter {
                search,
                starred,
                trashed,
                tag,
                origin,
                limit,
            },
        )?,
        Command::Show {
            session,
            full,
            thinking,
            all,
        } => browse::show(
            &ctx,
            &session,
            browse::ShowOptions {
                full,
                thinking,
                all,
            },
        )?,
        Command::Search { query, limit } => browse::search(&ctx, &query, limit)?,
        Command::Rename { session, name } => {
            refuse_control("a name", &name)?;
            curate::edit(&ctx, &[session], ops(Op::Rename { name }))?
        }
        Command::Star(a) => curate::edit(&ctx, &a.sessions, ops(Op::Star))?,
        Command::Unstar(a) => curate::edit(&ctx, &a.sessions, ops(Op::Unstar))?,
        Command::Trash(a) => curate::edit(&ctx, &a.sessions, ops(Op::Trash))?,
        Command::Restore(a) => curate::edit(&ctx, &a.sessions, ops(Op::Restore))?,
        Command::Purge { sessions, yes } => {
            if !yes {
                return Err(UsageError(
                    "purge deletes the sessions on every machine, for good; add --yes to confirm",
                )
                .into());
            }
            curate::edit(&ctx, &sessions.sessions, ops(Op::Purge))?
        }
        Command::Pin {
            session,
            ordinal,
            note,
        } => curate::edit(&ctx, &[session], |archive, gid| {
            Ok(vec![Op::Pin {
                anchor: archive.pin_anchor(gid, ordinal)?,
                note: note.clone(),
            }])
        })?,
        Command::Unpin { session, ordinal } => curate::edit(&ctx, &[session], |archive, gid| {
            Ok(vec![Op::Unpin {
                anchor: archive.pin_anchor(gid, ordinal)?,
            }])
        })?,
        Command::Tag { session, changes } => {
            for change in &changes {
                refuse_control("a tag", change)?;
            }
            let tag_ops = curate::tag_ops(&changes)?;
            curate::edit(&ctx, &[session], move |_, _| Ok(tag_ops.clone()))?
        }
        Command::Note { session, text } => {
            curate::edit(&ctx, &[session], ops(Op::SetNote { note: text }))?
        }
        Command::Sync {
            target,
            no_ingest,
            heal,
            watch,
            init,
            engine,
            component,
        } => {
            let args = commands::sync::SyncArgs {
                target,
                no_ingest,
                heal,
                init,
                engine,
                component,
            };
            if watch {
                commands::sync::watch(&mut ctx, &args)?
            } else {
                commands::sync::sync(&mut ctx, &args)?
            }
        }
        Command::Gc {
            target,
            grace,
            dry_run,
        } => maintain::gc(&ctx, target.as_deref(), grace.as_deref(), dry_run)?,
        Command::Status => browse::status(&ctx)?,
        Command::DropEdit { hlc } => curate::drop_edit(&ctx, &hlc)?,
        Command::Trust {
            origin,
            key,
            revoke,
        } => {
            let decision = match (key, revoke) {
                (Some(key), _) => trust::Decision::Trust(key),
                (None, true) => trust::Decision::Revoke,
                (None, false) => trust::Decision::Show,
            };
            trust::trust(&ctx, origin.as_deref(), decision)?
        }
        Command::Serve {
            listen,
            token,
            allow_remote,
        } => {
            let listen = agentsync::serve::listen_address(&listen, allow_remote)?;
            let from_env = std::env::var("AGENTSYNC_SERVE_TOKEN").ok();
            let token = match token.or(from_env) {
                Some(t) if !t.is_empty() => t,
                _ => agentsync::serve::token(&ctx.home.data_dir)?,
            };
            agentsync::serve::serve(&ctx, agentsync::serve::ServeOptions { listen, token })?;
            return Ok(None);
        }
        Command::Conflicts { session } => browse::conflicts(&ctx, session.as_deref())?,
        Command::Inspect { file, key } => maintain::inspect(&ctx, &file, key.as_deref())?,
        Command::Verify { target } => maintain::verify(&ctx, target.as_deref())?,
        Command::Rebuild => commands::rebuild::rebuild(&ctx)?,
        Command::Compact => maintain::compact(&ctx)?,
        Command::Demo { .. } | Command::Conformance { .. } => {
            return Err(anyhow::anyhow!("handled above")).context("dispatch");
        }
    };
    Ok(Some(output))
}
