//! The archive's tables, and the migrations that create them.
//!
//! Two kinds of tables live here. **Sync state** (identity, persisted engine states, the event
//! log, conflicts, problems, sync runs) is what a machine cannot get back from the store: it
//! survives [`rebuild`](crate::Archive::rebuild_derived). **Derived tables** (sessions, messages,
//! their full-text index, the curation projection, ingest progress) are rebuilt from the logs,
//! the local mirror and the ledger.

use rusqlite::Connection;

use crate::error::{ArchiveError, Result};

/// Tables only this machine knows: they survive a rebuild of the derived tables.
const SYNC_STATE: &str = r#"
    CREATE TABLE identity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        origin TEXT NOT NULL,
        secret BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE sync_state (
        name TEXT PRIMARY KEY,
        json TEXT NOT NULL
    );
    CREATE TABLE ledger_events (
        origin TEXT NOT NULL,
        id TEXT NOT NULL,
        hlc TEXT NOT NULL,
        json TEXT NOT NULL,
        published INTEGER NOT NULL,
        deferred TEXT,
        PRIMARY KEY (origin, id)
    );
    CREATE INDEX ledger_events_unpublished ON ledger_events (published) WHERE published = 0;
    CREATE INDEX ledger_events_deferred ON ledger_events (deferred) WHERE deferred IS NOT NULL;
    CREATE TABLE conflicts (
        session TEXT NOT NULL,
        field TEXT NOT NULL,
        loser_hlc TEXT NOT NULL,
        loser_origin TEXT NOT NULL,
        loser_event TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (session, field, loser_hlc, loser_origin, loser_event)
    );
    CREATE TABLE problems (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('quarantined', 'deferred')),
        class TEXT NOT NULL,
        reason TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL
    );
    CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        finished_ms INTEGER NOT NULL,
        report TEXT NOT NULL
    );
"#;

/// The search index over messages: text, thinking, and tool calls (names, inputs, results).
///
/// The index's content is the view `messages_search`, whose `tools` is the SQL function
/// `tool_text` of the stored JSON (`crate::tool_text`): the tool text is not stored a second
/// time (it was a quarter of the database). Every connection registers the function.
///
/// New messages are indexed when their transaction commits (`crate::unindexed`, with the tool
/// text their rows made), not by a trigger: an insert that fires a trigger writing the index
/// runs in a statement savepoint, and FTS5 writes out its in-memory index at every savepoint,
/// so a trigger made every message its own index segment (half of ingest's and import's time).
/// Deletes are rare and keep their trigger.
///
/// Two settings (FTS5 keeps them in `messages_fts_config`) make the index cheaper to build:
/// FTS5 writes what it gathered in memory as a new segment every `hashsize` bytes, and merges
/// segments once a level holds `automerge` of them. At FTS5's defaults (1 MB, 4) the merges
/// were a fifth of an import's writer thread. With 8 MB and 16, the bare insert of a 1 GB
/// corpus takes about 0.6× the time for 8 MB more memory, and queries take as long as before
/// (docs/benchmarks.md, "Issue 14, third round").
pub(crate) const MESSAGES_FTS: &str = r#"
    CREATE VIEW messages_search AS
        SELECT id, content, thinking, tool_text(rest_json) AS tools FROM messages;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, thinking, tools, content = 'messages_search', content_rowid = 'id'
    );
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content, thinking, tools)
        VALUES ('delete', old.id, old.content, old.thinking, tool_text(old.rest_json));
    END;
"#;

/// See [`MESSAGES_FTS`].
const MESSAGES_FTS_SETTINGS: &str = r#"
    INSERT INTO messages_fts (messages_fts, rank) VALUES ('hashsize', 8388608);
    INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 16);
"#;

fn create_messages_fts(conn: &Connection) -> Result<()> {
    conn.execute_batch(MESSAGES_FTS)?;
    conn.execute_batch(MESSAGES_FTS_SETTINGS)?;
    Ok(())
}

/// The derived tables as they are now. A migration that changes them drops and recreates
/// them all ([`Migration::RebuildDerived`]): their content comes back from the logs, the
/// local mirror and the ledger.
const DERIVED: &str = r#"
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        gid TEXT NOT NULL UNIQUE,
        origin TEXT NOT NULL,
        native_id TEXT NOT NULL,
        own INTEGER NOT NULL,
        agent TEXT NOT NULL,
        project TEXT NOT NULL,
        title TEXT NOT NULL,
        first_message TEXT NOT NULL,
        started_ms INTEGER,
        ended_ms INTEGER,
        message_count INTEGER NOT NULL,
        revision INTEGER NOT NULL DEFAULT 0,
        manifest TEXT,
        session_json TEXT NOT NULL,
        usage_json TEXT NOT NULL
    );
    CREATE INDEX sessions_origin ON sessions (origin);
    CREATE INDEX sessions_started ON sessions (started_ms);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        role TEXT NOT NULL,
        timestamp_ms INTEGER,
        content TEXT NOT NULL,
        thinking TEXT NOT NULL,
        rest_json TEXT NOT NULL,
        UNIQUE (session, ordinal)
    );

    CREATE TABLE curation (
        gid TEXT PRIMARY KEY,
        display_name TEXT NOT NULL DEFAULT '',
        starred INTEGER NOT NULL DEFAULT 0,
        trashed INTEGER NOT NULL DEFAULT 0,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE curation_tags (
        gid TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (gid, tag)
    );
    CREATE TABLE curation_pins (
        gid TEXT NOT NULL,
        anchor TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (gid, anchor)
    );

    CREATE TABLE sources (
        path TEXT PRIMARY KEY,
        format TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        native_id TEXT,
        resume_json TEXT NOT NULL,
        holding INTEGER NOT NULL DEFAULT 1
    );
"#;

/// Derived tables, dropped by a rebuild (the index first, then children before parents).
const DERIVED_TABLES: &[&str] = &[
    "messages_fts",
    "messages",
    "sessions",
    "curation",
    "curation_tags",
    "curation_pins",
    "sources",
];

enum Migration {
    Sql(&'static str),
    RebuildDerived,
    Upgrade(fn(&Connection) -> Result<()>),
}

/// Migrations in order; `PRAGMA user_version` counts those applied. Append, never edit.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(SYNC_STATE),
    Migration::RebuildDerived,
    // Issue 19 item 4 made tool calls searchable here; migration 11 does it now.
    Migration::Sql(""),
    Migration::Sql(MIRROR),
    // Issue 14: messages are indexed by the statement after their insert (see MESSAGES_FTS).
    Migration::Sql("DROP TRIGGER IF EXISTS messages_fts_insert;"),
    Migration::Upgrade(stamp_sources_holding),
    Migration::Sql(NO_OP_INDEXES),
    // Issue 14: the index of archives made before is built as cheaply (see MESSAGES_FTS).
    Migration::Sql(MESSAGES_FTS_SETTINGS),
    // Issue 14: the export state is written as what each run changed of it.
    Migration::Upgrade(crate::export_state::split_saved_export_state),
    // Issue 14: search reads a tool call's input as its values, not as escaped JSON; migration
    // 11 does it now.
    Migration::Sql(""),
    // Issue 14: a message's tool text is indexed from its stored JSON, not stored again.
    Migration::Upgrade(index_stored_tool_text),
];

/// Issue 14: what a sync that finds nothing new reads, without reading the rows it skips
/// (resume states, session records: tens of MB at 10 k sessions): every log's stamp, and the
/// revisions of own sessions.
const NO_OP_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS sources_stamp ON sources (path, format, size, mtime_ns, inode, holding);
CREATE INDEX IF NOT EXISTS sessions_own ON sessions (own, native_id, revision);
";

/// The local mirror of hosts that keep it in the database (the browser), not in a folder.
/// Sync state: it is what a rebuild restores from.
const MIRROR: &str = "
CREATE TABLE IF NOT EXISTS mirror (
    key TEXT PRIMARY KEY,
    bytes BLOB NOT NULL,
    modified_ms INTEGER NOT NULL
);
";

/// Issue 14: a log's row says whether messages wait in its resume state, so that a pass tells
/// an unchanged log without reading resume states. Rows written before say it here, from
/// their resume states: a line log's holds nothing when its `held` list is empty, a
/// document's when nothing is `waiting`.
fn stamp_sources_holding(conn: &Connection) -> Result<()> {
    if !has_column(conn, "sources", "holding")? {
        conn.execute_batch(
            r#"ALTER TABLE sources ADD COLUMN holding INTEGER NOT NULL DEFAULT 1;
               UPDATE sources SET holding = CASE
                   WHEN instr(resume_json, '"held":[]') > 0 THEN 0
                   WHEN json_valid(resume_json)
                       AND json_extract(resume_json, '$.waiting') = 0 THEN 0
                   ELSE 1 END;"#,
        )?;
    }
    Ok(())
}

/// A message's tool calls are searched (issue 19 item 4) through its stored JSON
/// (`schema::MESSAGES_FTS`), as search reads them now (`tool_text`). An archive made before
/// kept that text in a `tools` column of its own, or had no tool calls indexed: the column
/// goes and the index is built again.
fn index_stored_tool_text(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS messages_fts_insert;
         DROP TRIGGER IF EXISTS messages_fts_delete;
         DROP TABLE IF EXISTS messages_fts;
         DROP VIEW IF EXISTS messages_search;",
    )?;
    if has_column(conn, "messages", "tools")? {
        conn.execute_batch("ALTER TABLE messages DROP COLUMN tools;")?;
    }
    create_messages_fts(conn)?;
    conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');")?;
    Ok(())
}

pub(crate) fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?)
}

pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The size of a database page, for archives created from now on. A file keeps the size it was
/// made with: SQLite changes it only by rewriting the file (`VACUUM`), and not in WAL mode.
///
/// Most of an archive is long text (messages, and the search index's segments), which SQLite's
/// default 4 KiB pages hold in chains of overflow pages, each page a frame of its own in the
/// log. At 16 KiB, the 1 GB bench corpus ingests in 0.93× the time and imports in 0.88×, into
/// a file 0.92× the size; searches, lists and exports took as long or less (docs/benchmarks.md,
/// eleventh round). 32 KiB measured the same as 16, 64 KiB less well.
pub const PAGE_SIZE: u32 = 16 << 10;

/// Sets the connection options and applies the migrations not applied yet.
pub(crate) fn prepare(conn: &mut Connection) -> Result<()> {
    crate::tool_text::register(conn)?;
    // First, so that opening waits out another connection's lock (`compact` holds the file
    // for its whole run) instead of failing at the first statement that reads.
    conn.pragma_update(None, "busy_timeout", 10_000)?;
    // Before anything is written: a new file takes it, one that exists keeps its own.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // WAL: readers (the viewer, `sessions` while a sync runs) never block the writer.
    // The browser's memory VFS refuses WAL and answers "memory"; that is fine.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if applied > SCHEMA_VERSION {
        return Err(ArchiveError::NewerSchema {
            found: applied,
            known: SCHEMA_VERSION,
        });
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction()?;
        match migration {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::RebuildDerived => recreate_derived(&tx)?,
            Migration::Upgrade(upgrade) => upgrade(&tx)?,
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Drops the derived tables (if present) and creates them empty.
pub(crate) fn recreate_derived(conn: &Connection) -> Result<()> {
    conn.execute_batch("DROP VIEW IF EXISTS messages_search;")?;
    for table in DERIVED_TABLES {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {table};"))?;
    }
    conn.execute_batch(DERIVED)?;
    conn.execute_batch(NO_OP_INDEXES)?;
    create_messages_fts(conn)?;
    forget_imported_sessions(conn)
}

/// The import state says which foreign sessions the derived tables hold; once they are dropped,
/// it must forget them, or the next sync would never import them again from the local mirror
/// (issue 17 item 11). Pinned keys and the event batches handled stay: the ledger that holds
/// those events is sync state and survives.
pub(crate) fn forget_imported_sessions(conn: &Connection) -> Result<()> {
    use agentsync_core::sync::import::{ImportState, OriginProgress};
    let json: Option<String> = conn
        .query_row(
            "SELECT json FROM sync_state WHERE name = 'import'",
            [],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    let Some(json) = json else { return Ok(()) };
    let mut state: ImportState = crate::error::decode("import state", &json)?;
    for progress in state.origins.values_mut() {
        *progress = OriginProgress {
            events_seen: std::mem::take(&mut progress.events_seen),
            ..OriginProgress::default()
        };
    }
    let json = crate::error::encode("import state", &state)?;
    conn.execute(
        "UPDATE sync_state SET json = ?1 WHERE name = 'import'",
        [json],
    )?;
    Ok(())
}
