//! `agentsync-bench-sqlite`: the bare SQLite + FTS5 baseline of the import benchmark.
//!
//! Copies the sessions and messages of an agentsync archive (`archive.db`, read-only) into a new
//! database holding just those two tables and the FTS5 index over message text, tool calls
//! included, as the archive has it (external-content FTS5 with its `hashsize` and `automerge`,
//! reading a message's tool text out of its stored JSON through the archive's view and SQL
//! function, the archive's page size, WAL, `synchronous = NORMAL`, one
//! transaction per 32 MiB of rows, twice the import's 16 MiB windows), each transaction's rows
//! indexed by one `INSERT … SELECT`. It is what a program
//! that only stores rows it already holds would pay, the practical limit of an import into the
//! same SQLite: no fetching, decompression, verification or sync state. The one piece of JSON
//! it reads is the tool text SQLite needs to index (`agentsync_archive::register_sql_functions`),
//! about half a second of a 1 GB corpus's ~10 s; the archive makes that text beside its
//! writer instead (docs/benchmarks.md, tenth round).
//!
//! ```text
//! agentsync-bench-sqlite --from MACHINE/archive.db --db /tmp/fresh.db [--json]
//! ```
//!
//! Its FTS5 options (`--fts-columns`, `--fts-options`, `--fts-config`, `--no-fts`) measure
//! other ways to build the index on the same rows (docs/benchmarks.md, "Search index").

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde::Serialize;

/// Insert an archive's sessions and messages into a fresh SQLite database with an FTS5 index.
#[derive(Debug, Parser)]
#[command(name = "agentsync-bench-sqlite", version, about)]
struct Cli {
    /// The archive to read (an agentsync `archive.db`); opened read-only.
    #[arg(long)]
    from: PathBuf,
    /// The database to create; must not exist.
    #[arg(long)]
    db: PathBuf,
    /// Commit after this many bytes of row text.
    #[arg(long, default_value_t = 32 << 20)]
    batch_bytes: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// The message columns the index covers (the archive's: content, thinking, tools).
    #[arg(long, value_delimiter = ',', default_value = "content,thinking,tools")]
    fts_columns: Vec<String>,
    /// Options appended to the index's `CREATE VIRTUAL TABLE … USING fts5(…)`, such as
    /// `detail=column` or `tokenize='ascii'`.
    #[arg(long)]
    fts_options: Option<String>,
    /// Index settings, `NAME=VALUE` (`automerge=16`, `crisismerge=64`, `pgsz=8000`), set
    /// before the first row. The default is the archive's (`archive/src/schema.rs`); settings
    /// given replace it.
    #[arg(long, default_values = ["hashsize=8388608", "automerge=16"])]
    fts_config: Vec<String>,
    /// No index at all: what the rows alone cost.
    #[arg(long)]
    no_fts: bool,
    /// The database's page size (the archive's by default).
    #[arg(long, default_value_t = agentsync_archive::PAGE_SIZE)]
    page_size: u32,
}

#[derive(Serialize)]
struct Summary {
    sessions: u64,
    messages: u64,
    /// Bytes of message text (content, thinking, the rest as JSON) inserted.
    bytes: u64,
    transactions: u64,
    seconds: f64,
    /// Bytes of the index's own pages (`messages_fts_data`).
    index_bytes: u64,
}

const SCHEMA: &str = r#"
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        gid TEXT NOT NULL UNIQUE,
        origin TEXT NOT NULL,
        native_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        project TEXT NOT NULL,
        title TEXT NOT NULL,
        first_message TEXT NOT NULL,
        started_ms INTEGER,
        ended_ms INTEGER,
        message_count INTEGER NOT NULL,
        session_json TEXT NOT NULL,
        usage_json TEXT NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session INTEGER NOT NULL REFERENCES sessions (id),
        ordinal INTEGER NOT NULL,
        role TEXT NOT NULL,
        timestamp_ms INTEGER,
        content TEXT NOT NULL,
        thinking TEXT NOT NULL,
        rest_json TEXT NOT NULL,
        UNIQUE (session, ordinal)
    );
    CREATE VIEW messages_search AS
        SELECT id, content, thinking, tool_text(rest_json) AS tools FROM messages;
"#;

const SESSION_COLUMNS: &str = "id, gid, origin, native_id, agent, project, title, first_message, \
     started_ms, ended_ms, message_count, session_json, usage_json";
const MESSAGE_COLUMNS: &str =
    "id, session, ordinal, role, timestamp_ms, content, thinking, rest_json";

/// The search index, as the archive makes it unless the options say otherwise.
fn index_schema(cli: &Cli) -> String {
    let columns = cli.fts_columns.join(", ");
    let options = cli
        .fts_options
        .as_deref()
        .map(|o| format!(", {o}"))
        .unwrap_or_default();
    format!(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(
             {columns}, content = 'messages_search', content_rowid = 'id'{options}
         );"
    )
}

/// Indexes the rows inserted since the last call, in one statement: the cheapest way to fill
/// FTS5 (one in-memory index written out per transaction).
fn index_new_rows(dst: &Connection, cli: &Cli, indexed: &mut i64) -> Result<()> {
    if cli.no_fts {
        return Ok(());
    }
    let columns = cli.fts_columns.join(", ");
    dst.execute(
        &format!(
            "INSERT INTO messages_fts (rowid, {columns})
             SELECT id, {columns} FROM messages_search WHERE id > ?1 ORDER BY id"
        ),
        [*indexed],
    )?;
    *indexed = dst.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.db.exists() {
        bail!(
            "{} exists; the baseline writes a fresh database",
            cli.db.display()
        );
    }
    let started = Instant::now();
    let src = Connection::open_with_flags(&cli.from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", cli.from.display()))?;
    let dst =
        Connection::open(&cli.db).with_context(|| format!("creating {}", cli.db.display()))?;
    dst.pragma_update(None, "page_size", cli.page_size)?;
    let _mode: String = dst.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    dst.execute_batch("PRAGMA synchronous = NORMAL;")?;
    agentsync_archive::register_sql_functions(&dst)?;
    dst.execute_batch(SCHEMA)?;
    if !cli.no_fts {
        dst.execute_batch(&index_schema(&cli))?;
        for setting in &cli.fts_config {
            let (name, value) = setting
                .split_once('=')
                .with_context(|| format!("--fts-config {setting}: not NAME=VALUE"))?;
            let value: i64 = value
                .parse()
                .with_context(|| format!("--fts-config {setting}: not a number"))?;
            dst.execute(
                "INSERT INTO messages_fts (messages_fts, rank) VALUES (?1, ?2)",
                rusqlite::params![name, value],
            )?;
        }
    }

    dst.execute_batch("BEGIN")?;
    let sessions = copy(
        &src,
        &dst,
        &format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id"),
        &format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({})",
            marks(13)
        ),
        13,
        None,
    )?;
    let (mut bytes, mut transactions, mut batch) = (0u64, 1u64, 0usize);
    let mut indexed = 0i64;
    let mut on_row = |row_bytes: usize| -> Result<()> {
        bytes += row_bytes as u64;
        batch += row_bytes;
        if batch >= cli.batch_bytes {
            index_new_rows(&dst, &cli, &mut indexed)?;
            dst.execute_batch("COMMIT; BEGIN")?;
            transactions += 1;
            batch = 0;
        }
        Ok(())
    };
    let messages = copy(
        &src,
        &dst,
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY id"),
        &format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({})",
            marks(8)
        ),
        8,
        Some(&mut on_row),
    )?;
    index_new_rows(&dst, &cli, &mut indexed)?;
    dst.execute_batch("COMMIT")?;
    let index_bytes: i64 = if cli.no_fts {
        0
    } else {
        dst.query_row(
            "SELECT coalesce(sum(length(block)), 0) FROM messages_fts_data",
            [],
            |r| r.get(0),
        )?
    };
    dst.close().map_err(|(_, e)| e)?;
    let summary = Summary {
        sessions,
        messages,
        bytes,
        transactions,
        seconds: started.elapsed().as_secs_f64(),
        index_bytes: u64::try_from(index_bytes).unwrap_or(0),
    };

    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: {} sessions, {} messages ({:.1} MB of text) in {} transactions, {:.2} s; \
             index {:.1} MB",
            cli.db.display(),
            summary.sessions,
            summary.messages,
            summary.bytes as f64 / 1e6,
            summary.transactions,
            summary.seconds,
            summary.index_bytes as f64 / 1e6
        );
    }
    Ok(())
}

/// `?1, ?2, …, ?n`.
fn marks(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Copies the rows of `select` into `insert` (both with `columns` columns), calling `on_row`
/// with the bytes of each row's text and blobs. Returns the number of rows.
fn copy(
    src: &Connection,
    dst: &Connection,
    select: &str,
    insert: &str,
    columns: usize,
    mut on_row: Option<&mut dyn FnMut(usize) -> Result<()>>,
) -> Result<u64> {
    let mut read = src.prepare(select)?;
    let mut write = dst.prepare(insert)?;
    let mut rows = read.query([])?;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        let mut values: Vec<ToSqlOutput<'_>> = Vec::with_capacity(columns);
        let mut bytes = 0usize;
        for i in 0..columns {
            let value = row.get_ref(i)?;
            if let ValueRef::Text(b) | ValueRef::Blob(b) = value {
                bytes += b.len();
            }
            values.push(ToSqlOutput::Borrowed(value));
        }
        write.execute(params_from_iter(values.iter()))?;
        count += 1;
        if let Some(f) = on_row.as_mut() {
            f(bytes)?;
        }
    }
    Ok(count)
}
