//! OpenCode sessions: one SQLite database for every project, `~/.local/share/opencode/opencode.db`
//! (`$XDG_DATA_HOME/opencode`; OpenCode uses the XDG folders on macOS and Windows too), and
//! `opencode-<channel>.db` beside it for builds of other channels.
//!
//! The `session` table has a row per session (`id`, `parent_id` for a subagent's session,
//! `directory`, `title`, `version`, `time_created`, `time_updated`); `message` a row per message
//! (`session_id`, `time_created`, `data`: the message's info as JSON, `role` `user` or `assistant`
//! with its time, model and tokens); `part` a row per part of a message (`message_id`,
//! `session_id`, `data`: JSON with a `type`: `text`, `reasoning`, `tool` with the call's state
//! and result, `file`, `step-start`, `step-finish` with a step's tokens, `patch`, ...). The
//! database is a [`Reader::Collection`]: each session is read whole when its `time_updated`
//! changed, its messages in the order of their `time_created` and parts in the order of their ids
//! (OpenCode's ids grow with time).
//!
//! Versions before 1.2.0 (February 2026) kept the same records as JSON files under
//! `storage/` beside it (`session/<project>/<id>.json`, `message/<session>/<id>.json`,
//! `part/<message>/<id>.json`). Those files are not read here: the first start of a version with
//! the database copies every one of them into it (and leaves them in place), so reading both
//! would read each of those sessions twice.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::Path;

use agentsync_core::{Message, TokenUsage, ToolCall};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};

use super::agent::{Agent, CollectionSession, Document, DocumentBuilder, Reader};
use super::discover;
use super::fit::native_id;
use super::session::TitleSource;
use super::str_at;

pub const NAME: &str = "opencode";
pub const PARSER: &str = "opencode/1";

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "OpenCode",
    // `xdg-basedir` on every OS: `~/.local/share` on macOS and Windows too, unless
    // `XDG_DATA_HOME` says otherwise.
    default_roots: |places| vec![places.xdg_data.join("opencode")],
    discover: discover::opencode_databases,
    recognizes,
    reader: Reader::Collection(read),
};

/// The first bytes of every SQLite database.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// A SQLite database named like OpenCode's (`opencode.db`, `opencode-<channel>.db`), or any
/// SQLite database whose schema (on its first pages) creates OpenCode's `session`, `message` and
/// `part` tables with their `data` columns.
fn recognizes(path: &Path, head: &[u8]) -> bool {
    if !head.starts_with(SQLITE_MAGIC) {
        return false;
    }
    if discover::is_opencode_database(path) {
        return true;
    }
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    has(b"CREATE TABLE `session`")
        && has(b"CREATE TABLE `message`")
        && has(b"CREATE TABLE `part`")
        && has(b"`data` text")
}

/// The coarse class of an OpenCode tool, for filtering.
pub fn category(tool: &str) -> &'static str {
    match tool {
        "read" => "read",
        "glob" | "grep" | "list" => "search",
        "edit" | "write" | "patch" | "multiedit" | "apply_patch" => "edit",
        "bash" => "shell",
        "task" => "task",
        "webfetch" | "websearch" | "codesearch" => "web",
        _ => "other",
    }
}

/// Titles OpenCode gives a session before it has one (`New session - <ISO time>`, `Child
/// session - <ISO time>`): not a title.
fn is_default_title(title: &str) -> bool {
    ["New session - ", "Child session - "]
        .iter()
        .filter_map(|prefix| title.strip_prefix(prefix))
        .any(|time| agentsync_core::timestamp::parse_rfc3339_ms(time).is_some())
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// [`ReadCollection`](super::agent::ReadCollection) for an OpenCode database. The database is
/// opened read-only (OpenCode may be writing it: its WAL is read too) and read in one read
/// transaction, so the sessions come from one state of the database.
pub fn read(
    path: &Path,
    changed: &mut dyn FnMut(&str, i64) -> bool,
) -> io::Result<Vec<CollectionSession>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = Connection::open_with_flags(path, flags).map_err(|e| invalid(path, e))?;
    db.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| invalid(path, e))?;
    let tx = db.unchecked_transaction().map_err(|e| invalid(path, e))?;
    let tables = Tables::of(&tx).map_err(|e| invalid(path, e))?;
    if !tables.session.contains("id") {
        return Err(invalid(
            path,
            "no session table with an id column: not an OpenCode database",
        ));
    }
    let worktrees = worktrees(&tx, &tables);
    let mut sessions = Vec::new();
    for row in session_rows(&tx, &tables).map_err(|e| invalid(path, e))? {
        let version = content_version(&tx, &tables, &row);
        if !changed(&row.id, version) {
            continue;
        }
        let worktree = worktrees.get(&row.project_id).map_or("", String::as_str);
        sessions.push(CollectionSession {
            key: row.id.clone(),
            version,
            document: read_session(&tx, &tables, &row, worktree),
        });
    }
    Ok(sessions)
}

/// The columns of the tables read (an empty set for a missing table): older and newer versions
/// of OpenCode differ in their columns, and a column missing is read as empty.
/// A number that changes whenever the session does. `time_updated` alone does not: OpenCode
/// writes message and part rows (streamed text, tool results, token counts) without touching
/// the session row. So the count and total size of the session's message and part rows are
/// folded in too (a table without `session_id` adds nothing).
fn content_version(db: &Connection, tables: &Tables, row: &SessionRow) -> i64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&row.version.to_le_bytes());
    for (table, columns) in [("message", &tables.message), ("part", &tables.part)] {
        if !(columns.contains("session_id") && columns.contains("data")) {
            continue;
        }
        let sql =
            format!("SELECT count(*), total(length(data)) FROM {table} WHERE session_id = ?1");
        let counts = db.query_row(&sql, [&row.id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
        });
        if let Ok((count, bytes)) = counts {
            hasher.update(&count.to_le_bytes());
            hasher.update(&bytes.to_le_bytes());
        }
    }
    let hash = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_le_bytes(first)
}

struct Tables {
    project: BTreeSet<String>,
    session: BTreeSet<String>,
    message: BTreeSet<String>,
    part: BTreeSet<String>,
}

impl Tables {
    fn of(db: &Connection) -> rusqlite::Result<Tables> {
        let columns = |table: &str| -> rusqlite::Result<BTreeSet<String>> {
            let mut statement = db.prepare(&format!("PRAGMA table_info(`{table}`)"))?;
            let names = statement.query_map([], |row| row.get::<_, String>(1))?;
            names.collect()
        };
        Ok(Tables {
            project: columns("project")?,
            session: columns("session")?,
            message: columns("message")?,
            part: columns("part")?,
        })
    }
}

/// `column` when `table` has it, else `NULL`.
fn column_or_null<'a>(columns: &BTreeSet<String>, column: &'a str) -> &'a str {
    if columns.contains(column) {
        column
    } else {
        "NULL"
    }
}

/// Text of a value stored with any type (SQLite does not enforce column types).
fn text_of(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

fn int_of(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(i) => Some(i),
        // Saturating: a float out of range is clamped, NaN becomes 0.
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok()?.trim().parse().ok(),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

/// Project id → worktree (the session's folder when the session row names none).
fn worktrees(db: &Connection, tables: &Tables) -> HashMap<String, String> {
    let mut worktrees = HashMap::new();
    if !(tables.project.contains("id") && tables.project.contains("worktree")) {
        return worktrees;
    }
    let Ok(mut statement) = db.prepare("SELECT id, worktree FROM project") else {
        return worktrees;
    };
    let Ok(mut rows) = statement.query([]) else {
        return worktrees;
    };
    while let Ok(Some(row)) = rows.next() {
        let value = |i| row.get_ref(i).ok().and_then(text_of);
        if let (Some(id), Some(worktree)) = (value(0), value(1)) {
            worktrees.insert(id, worktree);
        }
    }
    worktrees
}

struct SessionRow {
    id: String,
    version: i64,
    created: Option<i64>,
    parent: String,
    title: String,
    directory: String,
    agent_version: String,
    project_id: String,
}

/// Every session row with an id, oldest first.
fn session_rows(db: &Connection, tables: &Tables) -> rusqlite::Result<Vec<SessionRow>> {
    let c = |column| column_or_null(&tables.session, column);
    let order = if tables.session.contains("time_created") {
        "time_created, id"
    } else {
        "id"
    };
    let sql = format!(
        "SELECT id, {}, {}, {}, {}, {}, {}, {} FROM session ORDER BY {order}",
        c("time_updated"),
        c("time_created"),
        c("parent_id"),
        c("title"),
        c("directory"),
        c("version"),
        c("project_id"),
    );
    let mut statement = db.prepare(&sql)?;
    let mut rows = statement.query([])?;
    let mut sessions = Vec::new();
    while let Some(row) = rows.next()? {
        let text = |i| row.get_ref(i).ok().and_then(text_of).unwrap_or_default();
        let int = |i| row.get_ref(i).ok().and_then(int_of);
        let id = text(0);
        if id.is_empty() {
            // Nothing to key it by: not a session anyone can refer to.
            continue;
        }
        sessions.push(SessionRow {
            id,
            version: int(1).unwrap_or(0),
            created: int(2),
            parent: text(3),
            title: text(4),
            directory: text(5),
            agent_version: text(6),
            project_id: text(7),
        });
    }
    Ok(sessions)
}

/// One row of `message` or `part`: its id, time and JSON data (not decoded yet).
struct Row {
    id: String,
    owner: String,
    created: Option<i64>,
    data: Option<String>,
}

fn rows(db: &Connection, sql: &str, session: &str) -> Result<Vec<Row>, String> {
    let mut statement = db.prepare(sql).map_err(|e| e.to_string())?;
    let mut query = statement.query([session]).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    while let Some(row) = query.next().map_err(|e| e.to_string())? {
        let value = |i| row.get_ref(i).ok();
        rows.push(Row {
            id: value(0).and_then(text_of).unwrap_or_default(),
            owner: value(1).and_then(text_of).unwrap_or_default(),
            created: value(2).and_then(int_of),
            data: value(3).and_then(text_of),
        });
    }
    Ok(rows)
}

/// One session, read whole. `Err` when its messages cannot be read at all (a table missing).
fn read_session(
    db: &Connection,
    tables: &Tables,
    row: &SessionRow,
    worktree: &str,
) -> Result<Document, String> {
    let mut doc = DocumentBuilder::new(NAME, PARSER);
    let session = &mut doc.session;
    session.native_id = native_id(&row.id);
    session.note_agent_version(&row.agent_version);
    if let Some(parent) = native_id(&row.parent) {
        session.set_parent(&parent, "subagent");
    }
    session.note_cwd(&row.directory);
    session.note_cwd(worktree);
    if !is_default_title(&row.title) {
        session.note_title(&row.title, TitleSource::Generated);
    }
    for ms in [row.created, Some(row.version).filter(|v| *v > 0)]
        .into_iter()
        .flatten()
    {
        session.note_time(ms);
    }

    for (table, columns) in [("message", &tables.message), ("part", &tables.part)] {
        let needed: &[&str] = match table {
            "message" => &["id", "session_id", "data"],
            _ => &["id", "message_id", "session_id", "data"],
        };
        if let Some(missing) = needed.iter().find(|c| !columns.contains(**c)) {
            return Err(if columns.is_empty() {
                format!("the database has no {table} table")
            } else {
                format!("the {table} table has no {missing} column")
            });
        }
    }
    let created = |columns: &BTreeSet<String>| column_or_null(columns, "time_created");
    let messages = rows(
        db,
        &format!(
            "SELECT id, session_id, {created}, data FROM message WHERE session_id = ?1 \
             ORDER BY {created}, id",
            created = created(&tables.message)
        ),
        &row.id,
    )
    .map_err(|e| format!("reading messages: {e}"))?;
    let parts = rows(
        db,
        &format!(
            "SELECT id, message_id, {}, data FROM part WHERE session_id = ?1 ORDER BY message_id, id",
            created(&tables.part)
        ),
        &row.id,
    )
    .map_err(|e| format!("reading parts: {e}"))?;
    let mut parts_of: HashMap<&str, Vec<&Row>> = HashMap::new();
    for part in &parts {
        parts_of.entry(part.owner.as_str()).or_default().push(part);
    }

    for (index, message) in messages.iter().enumerate() {
        let position = index as u64 + 1;
        let parts = parts_of.remove(message.id.as_str()).unwrap_or_default();
        if let Err(reason) = read_message(&mut doc, message, &parts, position) {
            doc.malformed(position, format!("message {}: {reason}", message.id));
        }
    }
    // Parts of no message of this session: nothing to show them in.
    for orphans in parts_of.values() {
        for _ in orphans {
            doc.report.skipped("part/without-message");
        }
    }
    doc.finish()
}

/// The JSON object in a row's `data`.
fn object_of(data: Option<&str>) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(data.unwrap_or_default()) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("data that is not a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// A count OpenCode stored (a JSON number, possibly a float).
fn count(object: Option<&Map<String, Value>>, key: &str) -> u64 {
    let Some(value) = object.and_then(|o| o.get(key)) else {
        return 0;
    };
    value.as_u64().unwrap_or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f > 0.0)
            .map_or(0, |f| f as u64)
    })
}

/// A time in milliseconds at `key` of `object`.
fn ms_at(object: Option<&Map<String, Value>>, key: &str) -> Option<i64> {
    let value = object?.get(key)?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// OpenCode's `tokens` object: `input` (without cached tokens: OpenCode subtracts them),
/// `output`, `reasoning`, `cache.read`, `cache.write`.
fn usage_of(tokens: Option<&Map<String, Value>>) -> TokenUsage {
    let cache = tokens
        .and_then(|t| t.get("cache"))
        .and_then(Value::as_object);
    TokenUsage {
        input: count(tokens, "input"),
        output: count(tokens, "output"),
        reasoning: count(tokens, "reasoning"),
        cache_read: count(cache, "read"),
        cache_creation: count(cache, "write"),
    }
}

fn add(total: &mut TokenUsage, usage: &TokenUsage) {
    total.input = total.input.saturating_add(usage.input);
    total.output = total.output.saturating_add(usage.output);
    total.reasoning = total.reasoning.saturating_add(usage.reasoning);
    total.cache_read = total.cache_read.saturating_add(usage.cache_read);
    total.cache_creation = total.cache_creation.saturating_add(usage.cache_creation);
}

/// A message and its parts into the document. `Err` when the message's own data cannot be read;
/// a part that cannot be read is reported and left out.
fn read_message(
    doc: &mut DocumentBuilder,
    message: &Row,
    parts: &[&Row],
    position: u64,
) -> Result<(), String> {
    let info = object_of(message.data.as_deref())?;
    let time = info.get("time").and_then(Value::as_object);
    let created = ms_at(time, "created").or(message.created);
    for ms in [created, ms_at(time, "completed")].into_iter().flatten() {
        doc.session.note_time(ms);
    }
    let mut decoded = Vec::new();
    for part in parts {
        match object_of(part.data.as_deref()) {
            Ok(object) => decoded.push(object),
            Err(reason) => doc.malformed(position, format!("part {}: {reason}", part.id)),
        }
    }
    match str_at(&info, "role") {
        "user" => user(doc, &decoded, created),
        "assistant" => assistant(doc, &info, &decoded, created),
        "" => return Err("a message without a role".to_owned()),
        other => doc.report.skipped(&format!("message/{other}")),
    }
    Ok(())
}

/// What stands in for an attached file (its bytes, often a `data:` URL, are never kept).
fn file_placeholder(part: &Map<String, Value>) -> String {
    let mime = str_at(part, "mime");
    let name = match str_at(part, "filename") {
        "" => part
            .get("source")
            .and_then(Value::as_object)
            .map(|source| str_at(source, "path"))
            .unwrap_or_default(),
        name => name,
    };
    match (name, mime) {
        ("", "") => "[file]".to_owned(),
        ("", mime) => format!("[file: {mime}]"),
        (name, "") => format!("[file: {name}]"),
        (name, mime) => format!("[file: {name} ({mime})]"),
    }
}

/// A user message: what the user typed (text parts, attached files) is one message; text
/// OpenCode added itself (`synthetic`: the contents of an attached file, a command's
/// expansion) is another, `system`; a compaction request is a compaction boundary.
fn user(doc: &mut DocumentBuilder, parts: &[Map<String, Value>], time: Option<i64>) {
    let mut typed = Vec::new();
    let mut synthetic = Vec::new();
    let mut compaction = false;
    for part in parts {
        match str_at(part, "type") {
            "text" if part.get("ignored").and_then(Value::as_bool) == Some(true) => {
                doc.report.skipped("part/text-ignored");
            }
            "text" => {
                let text = str_at(part, "text");
                if text.trim().is_empty() {
                    continue;
                }
                if part.get("synthetic").and_then(Value::as_bool) == Some(true) {
                    synthetic.push(text.to_owned());
                } else {
                    typed.push(text.to_owned());
                }
            }
            "file" => typed.push(file_placeholder(part)),
            "compaction" => compaction = true,
            "" => doc.report.skipped("part/without-type"),
            other => doc.report.skipped(&format!("part/{other}")),
        }
    }
    if compaction {
        doc.push(Message {
            role: "system".to_owned(),
            system: true,
            compact_boundary: true,
            timestamp_ms: time,
            ..Message::default()
        });
    }
    if !typed.is_empty() {
        let content = typed.join("\n");
        doc.session.note_user_message(&content, true);
        doc.push(Message {
            role: "user".to_owned(),
            content,
            timestamp_ms: time,
            ..Message::default()
        });
    }
    if !synthetic.is_empty() {
        doc.push(Message {
            role: "user".to_owned(),
            content: synthetic.join("\n"),
            system: true,
            timestamp_ms: time,
            ..Message::default()
        });
    }
    if !compaction && typed.is_empty() && synthetic.is_empty() {
        doc.report.skipped("message/user-without-text");
    }
}

/// An assistant message: its text parts are the content, reasoning parts the thinking, tool
/// parts the calls (with their results: OpenCode keeps a call and its result in one part), and
/// the step-finish parts (one per model call) the usage.
fn assistant(
    doc: &mut DocumentBuilder,
    info: &Map<String, Value>,
    parts: &[Map<String, Value>],
    time: Option<i64>,
) {
    let mut texts = Vec::new();
    let mut thoughts = Vec::new();
    let mut calls = Vec::new();
    let mut settled = Vec::new();
    let mut steps = TokenUsage::default();
    let mut stepped = false;
    for part in parts {
        match str_at(part, "type") {
            "text" if part.get("ignored").and_then(Value::as_bool) == Some(true) => {
                doc.report.skipped("part/text-ignored");
            }
            "text" => texts.push(str_at(part, "text")),
            "reasoning" => thoughts.push(str_at(part, "text")),
            "tool" => {
                let (call, done) = tool_call(part);
                if done {
                    settled.push(call.id.clone());
                }
                calls.push(call);
            }
            "step-finish" => {
                stepped = true;
                add(
                    &mut steps,
                    &usage_of(part.get("tokens").and_then(Value::as_object)),
                );
            }
            "" => doc.report.skipped("part/without-type"),
            other => doc.report.skipped(&format!("part/{other}")),
        }
    }
    let join = |pieces: Vec<&str>| {
        pieces
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let content = join(texts);
    let thinking = join(thoughts);
    if content.is_empty() && thinking.is_empty() && calls.is_empty() {
        // An answer cut off before it said anything (an error, an abort), or still starting.
        doc.report.skipped(if info.contains_key("error") {
            "message/assistant-error"
        } else {
            "message/assistant-without-content"
        });
        return;
    }
    // The message's own `tokens` are its last step's: the steps add up to the whole message.
    let usage = if stepped {
        steps
    } else {
        usage_of(info.get("tokens").and_then(Value::as_object))
    };
    doc.push(Message {
        role: "assistant".to_owned(),
        content,
        thinking,
        model: str_at(info, "modelID").to_owned(),
        timestamp_ms: time,
        usage,
        // The summary a compaction wrote: generated, not part of the conversation.
        system: info.get("summary").and_then(Value::as_bool) == Some(true),
        tool_calls: calls,
        ..Message::default()
    });
    // A finished call whose output is empty waits for nothing either.
    for id in settled {
        doc.transcript.stop_awaiting(&id);
    }
}

/// A tool part as a call, and whether it is finished (`completed` or `error`); a `pending` or
/// `running` call has no result yet.
fn tool_call(part: &Map<String, Value>) -> (ToolCall, bool) {
    let name = str_at(part, "tool");
    let state = part.get("state").and_then(Value::as_object);
    let field = |key: &str| state.and_then(|s| s.get(key));
    let input = field("input");
    let file_path = match category(name) {
        "read" | "edit" => input
            .and_then(|i| i.get("filePath"))
            .and_then(Value::as_str)
            .unwrap_or_default(),
        _ => "",
    };
    let text = |value: Option<&Value>| match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let status = state.map(|s| str_at(s, "status")).unwrap_or_default();
    let (result, is_error, done) = match status {
        "completed" => (text(field("output")), false, true),
        "error" => (text(field("error")), true, true),
        _ => (String::new(), false, false),
    };
    // The task tool names the session its subagent ran in.
    let subagent_session = field("metadata")
        .and_then(|m| m.get("sessionId"))
        .and_then(Value::as_str)
        .filter(|_| name == "task")
        .and_then(native_id)
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let call = ToolCall {
        id: str_at(part, "callID").to_owned(),
        name: name.to_owned(),
        category: category(name).to_owned(),
        input: match input {
            None | Some(Value::Null) => String::new(),
            Some(input) => input.to_string(),
        },
        file_path: file_path.to_owned(),
        result,
        is_error,
        subagent_session,
        ..ToolCall::default()
    };
    (call, done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::TempDir;
    use std::fs;
    use std::path::PathBuf;

    use crate::agent;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/opencode");
    const MAIN: &str = "ses_3f8a2b7c1ffeKq2mVt7LpN4aZx";
    const CHILD: &str = "ses_3f8a1d02bffeR8wYc3NnQ5tHb2";
    const MID_TURN: &str = "ses_3f7c40e5effeH2jK4lM6nP8qR1";
    const CWD: &str = "/home/dev/src/inventory";

    fn fixture(name: &str) -> PathBuf {
        Path::new(FIXTURES).join(name)
    }

    /// A database built from `sql` at `dir/name`.
    fn database(dir: &TempDir, name: &str, sql: &str) -> PathBuf {
        let path = dir.0.join(name);
        let db = Connection::open(&path).unwrap();
        db.execute_batch(sql).unwrap();
        path
    }

    /// The fixture database built from its script.
    fn built(dir: &TempDir, script: &str) -> PathBuf {
        let sql = fs::read_to_string(fixture(script)).unwrap();
        database(dir, &script.replace(".sql", ".db"), &sql)
    }

    fn read_all(path: &Path) -> Vec<CollectionSession> {
        read(path, &mut |_, _| true).unwrap()
    }

    fn document<'a>(sessions: &'a [CollectionSession], key: &str) -> &'a Document {
        let session = sessions.iter().find(|s| s.key == key).unwrap();
        session.document.as_ref().unwrap()
    }

    #[test]
    fn the_main_session_and_its_messages() {
        let dir = TempDir::new("opencode-main");
        let sessions = read_all(&built(&dir, "opencode.sql"));
        let keys: Vec<&str> = sessions.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, [MAIN, CHILD]);

        let doc = document(&sessions, MAIN);
        let session = &doc.session;
        assert_eq!(session.native_id.as_str(), MAIN);
        assert_eq!(
            (session.agent.as_str(), session.parser.as_str()),
            (NAME, PARSER)
        );
        assert_eq!(
            (session.cwd.as_str(), session.project.as_str()),
            (CWD, "inventory")
        );
        assert_eq!(session.title, "Fix failing stock report test");
        assert_eq!(
            session.first_message,
            "The stock report test fails since yesterday's refactor. Can you fix it?\n\
             [file: failure.png (image/png)]"
        );
        assert_eq!(session.user_message_count, 2);
        assert_eq!(session.started_ms, Some(1_768_903_199_500));
        assert_eq!(session.ended_ms, Some(1_768_903_371_000));
        assert_eq!(session.parent_session, "");
        assert_eq!(doc.waiting, 0);

        let roles: Vec<&str> = doc.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            ["user", "assistant", "assistant", "user", "assistant"]
        );
        let ordinals: Vec<u64> = doc.messages.iter().map(|m| m.ordinal).collect();
        assert_eq!(ordinals, [0, 1, 2, 3, 4]);
        assert!(doc.messages.iter().all(|m| !m.system));
        assert_eq!(doc.messages[0].timestamp_ms, Some(1_768_903_200_000));

        // One step: reasoning, a read and a read that fails.
        let first = &doc.messages[1];
        assert_eq!(first.content, "");
        assert_eq!(
            first.thinking,
            "The test fails after a refactor. Read the test and the report module first."
        );
        assert_eq!(first.model, "claude-sonnet-4-5");
        assert_eq!(first.timestamp_ms, Some(1_768_903_202_000));
        assert_eq!(
            first.usage,
            TokenUsage {
                input: 2100,
                output: 180,
                reasoning: 0,
                cache_read: 0,
                cache_creation: 11800,
            }
        );
        let read_ok = &first.tool_calls[0];
        assert_eq!(
            (
                read_ok.id.as_str(),
                read_ok.name.as_str(),
                read_ok.category.as_str()
            ),
            ("toolu_01ReadTest", "read", "read")
        );
        assert_eq!(
            read_ok.input,
            r#"{"filePath":"/home/dev/src/inventory/tests/test_report.py"}"#
        );
        assert_eq!(
            read_ok.file_path,
            "/home/dev/src/inventory/tests/test_report.py"
        );
        assert!(
            read_ok
                .result
                .starts_with("<file>\n00001| from inventory.report import")
        );
        assert!(!read_ok.is_error);
        let read_failed = &first.tool_calls[1];
        assert!(read_failed.is_error);
        assert!(
            read_failed
                .result
                .starts_with("Error: File not found: /home/dev/src/inventory/inventory/reports.py")
        );

        // Two steps: their text joined, their tokens added (the message keeps the last only).
        let second = &doc.messages[2];
        assert_eq!(
            second.content,
            "The test still imports `format_qty`, which the refactor renamed to \
             `format_quantity`. Fixing the import.\n\nFixed: the test imported the old name \
             `format_qty`; both report tests pass now."
        );
        assert_eq!(
            second.usage,
            TokenUsage {
                input: 1560,
                output: 255,
                reasoning: 0,
                cache_read: 25900,
                cache_creation: 0,
            }
        );
        let calls: Vec<(&str, &str, &str)> = second
            .tool_calls
            .iter()
            .map(|c| (c.name.as_str(), c.category.as_str(), c.file_path.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                (
                    "edit",
                    "edit",
                    "/home/dev/src/inventory/tests/test_report.py"
                ),
                ("bash", "shell", "")
            ]
        );
        assert_eq!(second.tool_calls[0].result, "Edit applied successfully.");
        assert!(second.tool_calls[1].result.contains("2 passed in 0.04s"));
        assert_eq!(
            second.tool_calls[1].input,
            r#"{"command":"python -m pytest tests/test_report.py -q","description":"Run the report tests"}"#
        );

        assert_eq!(
            doc.messages[3].content,
            "Thanks. Also add a test for an empty stock list, @general can write it."
        );

        // A task naming its subagent's session, a grep; the cut-off text part is left out.
        let third = &doc.messages[4];
        assert_eq!(
            third.content,
            "The subagent added `test_empty_stock`; all three report tests pass."
        );
        let task = &third.tool_calls[0];
        assert_eq!(
            (task.name.as_str(), task.category.as_str()),
            ("task", "task")
        );
        assert_eq!(task.subagent_session, CHILD);
        assert!(
            task.result
                .starts_with("Added `tests/test_report_empty.py`")
        );
        assert_eq!(third.tool_calls[1].category, "search");
        assert_eq!(third.usage.reasoning, 64);
        assert_eq!(third.usage.cache_creation, 600);

        let report = &doc.report;
        assert_eq!((report.sessions, report.messages), (1, 5));
        assert_eq!(report.malformed_lines.len(), 1);
        let (position, reason) = &report.malformed_lines[0];
        assert_eq!(*position, 5);
        assert!(
            reason.contains("prt_c0757f1b5105Gg9hH0iI1jJ2kK") && reason.contains("invalid JSON"),
            "{reason}"
        );
        let skipped: Vec<(&str, u64)> = report
            .skipped_records
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            skipped,
            [
                ("part/agent", 1),
                ("part/patch", 1),
                ("part/snapshot", 1),
                ("part/step-start", 4)
            ]
        );
    }

    #[test]
    fn the_subagent_session_names_its_parent() {
        let dir = TempDir::new("opencode-child");
        let sessions = read_all(&built(&dir, "opencode.sql"));
        let doc = document(&sessions, CHILD);
        let session = &doc.session;
        assert_eq!(
            (
                session.parent_session.as_str(),
                session.relationship.as_str()
            ),
            (MAIN, "subagent")
        );
        assert_eq!(session.title, "Write empty stock test (@general subagent)");
        assert_eq!(session.user_message_count, 1);
        assert!(
            session
                .first_message
                .starts_with("Add a test to tests/test_report_empty.py")
        );
        assert_eq!(doc.messages.len(), 2);
        let write = &doc.messages[1].tool_calls[0];
        assert_eq!(
            (write.name.as_str(), write.category.as_str()),
            ("write", "edit")
        );
        assert_eq!(
            write.file_path,
            "/home/dev/src/inventory/tests/test_report_empty.py"
        );
        assert_eq!(write.result, "Wrote file successfully.");
        assert_eq!(doc.messages[1].usage.cache_creation, 3100);
    }

    #[test]
    fn a_session_caught_mid_turn_waits_for_its_call() {
        let dir = TempDir::new("opencode-midturn");
        let sessions = read_all(&built(&dir, "opencode-local.sql"));
        assert_eq!(sessions.len(), 1);
        let doc = document(&sessions, MID_TURN);
        assert_eq!(
            doc.session.title, "",
            "OpenCode's default title is no title"
        );
        assert_eq!(
            doc.session.first_message,
            "Run the whole test suite and tell me what fails."
        );
        assert_eq!(doc.messages.len(), 2);
        assert_eq!(doc.waiting, 1);
        let last = &doc.messages[1];
        assert_eq!(
            (last.content.as_str(), last.model.as_str()),
            ("Running the full suite.", "gpt-5")
        );
        assert_eq!(last.usage, TokenUsage::default());
        let call = &last.tool_calls[0];
        assert_eq!(
            (call.id.as_str(), call.name.as_str(), call.category.as_str()),
            ("call_Kq3vX9mP2wL7", "bash", "shell")
        );
        assert_eq!(call.result, "");
        assert!(!call.is_error);
    }

    #[test]
    fn committed_databases_are_their_scripts() {
        let dir = TempDir::new("opencode-committed");
        for script in ["opencode.sql", "opencode-local.sql"] {
            let committed = fixture(&script.replace(".sql", ".db"));
            assert_eq!(
                read_all(&committed),
                read_all(&built(&dir, script)),
                "{script}"
            );
        }
    }

    #[test]
    fn only_changed_sessions_are_read() {
        let mut seen = Vec::new();
        let sessions = read(&fixture("opencode.db"), &mut |key, _| {
            seen.push(key.to_owned());
            key == CHILD
        })
        .unwrap();
        assert_eq!(seen, [MAIN, CHILD]);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].key, CHILD);
    }

    /// OpenCode writes message and part rows (streamed text, results, tokens) without touching
    /// the session row's `time_updated` (found by review): the version changes with them.
    #[test]
    fn a_new_part_changes_its_session_version_only() {
        let dir = TempDir::new("opencode-version");
        let path = built(&dir, "opencode.sql");
        let versions = |path: &Path| -> Vec<(String, i64)> {
            let mut seen = Vec::new();
            read(path, &mut |key, version| {
                seen.push((key.to_owned(), version));
                false
            })
            .unwrap();
            seen
        };
        let before = versions(&path);
        assert_eq!(before, versions(&path), "the same rows, the same versions");
        let db = Connection::open(&path).unwrap();
        let message: String = db
            .query_row(
                "SELECT id FROM message WHERE session_id = ?1 LIMIT 1",
                [MAIN],
                |r| r.get(0),
            )
            .unwrap();
        db.execute(
            "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data)
             VALUES ('prt_new', ?1, ?2, 1, 1, '{\"type\":\"text\",\"text\":\"more\"}')",
            [message.as_str(), MAIN],
        )
        .unwrap();
        drop(db);
        let after = versions(&path);
        assert_ne!(after[0], before[0], "{MAIN} changed");
        assert_eq!(after[1], before[1], "{CHILD} did not");
    }

    #[test]
    fn recognizes_opencode_databases_only() {
        let head = |path: &Path| {
            let mut bytes = fs::read(path).unwrap();
            bytes.truncate(agent::HEAD_BYTES);
            bytes
        };
        for name in ["opencode.db", "opencode-local.db"] {
            let path = fixture(name);
            assert!(recognizes(&path, &head(&path)), "{name}");
            let found = agent::recognize(&path, &head(&path)).map(|a| a.name);
            assert_eq!(found, Some(NAME), "{name}");
            // Renamed: recognised by the tables its schema creates.
            assert!(recognizes(Path::new("/tmp/copy.sqlite"), &head(&path)));
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for other in [
            "claude-code/user/user.jsonl",
            "claude-code/assistant/thinking.jsonl",
            "codex/2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl",
        ] {
            let path = root.join(other);
            assert!(!recognizes(&path, &head(&path)), "{other}");
        }
        // Named like OpenCode's but no SQLite database; a SQLite database of something else.
        assert!(!recognizes(
            Path::new("/x/opencode.db"),
            b"{\"type\":\"user\"}\n"
        ));
        let dir = TempDir::new("opencode-recognize");
        let other = database(
            &dir,
            "notes.db",
            "CREATE TABLE note (id INTEGER, body TEXT);",
        );
        assert!(!recognizes(&other, &head(&other)));
    }

    #[test]
    fn discover_finds_every_database_under_a_root() {
        let dir = TempDir::new("opencode-discover");
        let share = dir.0.join("share/opencode");
        fs::create_dir_all(share.join("storage/session/global")).unwrap();
        fs::create_dir_all(dir.0.join("other-home/.local/share/opencode")).unwrap();
        for name in ["opencode.db", "opencode-local.db"] {
            fs::copy(fixture(name), share.join(name)).unwrap();
        }
        for extra in [
            "share/opencode/opencode.db-wal",
            "share/opencode/opencode-.db",
            "share/opencode/notes.db",
            "share/opencode/storage/opencode.db",
            "other-home/.local/share/opencode/opencode.db",
        ] {
            fs::write(dir.0.join(extra), "").unwrap();
        }
        let relative = |root: &Path| -> Vec<String> {
            (AGENT.discover)(root)
                .unwrap()
                .iter()
                .map(|p| {
                    let p = p.strip_prefix(&dir.0).unwrap();
                    p.to_string_lossy().replace('\\', "/")
                })
                .collect()
        };
        assert_eq!(
            relative(&share),
            [
                "share/opencode/opencode-local.db",
                "share/opencode/opencode.db"
            ]
        );
        assert_eq!(
            relative(&dir.0.join("share")),
            [
                "share/opencode/opencode-local.db",
                "share/opencode/opencode.db"
            ]
        );
        assert_eq!(
            relative(&dir.0.join("other-home")),
            ["other-home/.local/share/opencode/opencode.db"]
        );
        assert!(relative(&dir.0.join("missing")).is_empty());

        let places = agent::Places::under(Path::new("/home/u"), None, None, None);
        assert_eq!(
            (AGENT.default_roots)(&places),
            [Path::new("/home/u/.local/share/opencode")]
        );
        let places = agent::Places::under(Path::new("/home/u"), Some("/data".into()), None, None);
        assert_eq!(
            (AGENT.default_roots)(&places),
            [Path::new("/data/opencode")]
        );
    }

    #[test]
    fn damaged_databases_are_errors_or_reports() {
        let dir = TempDir::new("opencode-damaged");
        let garbage = dir.0.join("opencode.db");
        fs::write(&garbage, b"this is not a database\n".repeat(300)).unwrap();
        assert!(read(&garbage, &mut |_, _| true).is_err());

        let empty = dir.0.join("opencode-empty.db");
        fs::write(&empty, b"").unwrap();
        let error = read(&empty, &mut |_, _| true).unwrap_err();
        assert!(
            error.to_string().contains("not an OpenCode database"),
            "{error}"
        );

        // A database cut short: an error, or sessions with what could be read. Never a panic.
        let whole = fs::read(fixture("opencode.db")).unwrap();
        for cut in [100, 4096, 8192, 20_000, 40_000, 60_000] {
            let truncated = dir.0.join(format!("opencode-cut{cut}.db"));
            fs::write(&truncated, &whole[..cut]).unwrap();
            let _ = read(&truncated, &mut |_, _| true);
        }

        // Sessions without a message table: each session says why it was not read.
        let no_messages = database(
            &dir,
            "opencode-nomsg.db",
            "CREATE TABLE session (id TEXT, time_updated INTEGER);
             INSERT INTO session VALUES ('ses_a', 5);",
        );
        let sessions = read_all(&no_messages);
        assert_eq!(sessions.len(), 1);
        assert_eq!(
            sessions[0].document,
            Err("the database has no message table".to_owned())
        );

        // Rows that do not decode: reported, the rest of the session read.
        let broken = database(
            &dir,
            "opencode-broken.db",
            "CREATE TABLE session (id TEXT, time_updated INTEGER);
             CREATE TABLE message (id TEXT, session_id TEXT, time_created INTEGER, data TEXT);
             CREATE TABLE part (id TEXT, message_id TEXT, session_id TEXT, data BLOB);
             INSERT INTO session VALUES ('ses_a', 'soon'), (NULL, 1), (7, 2);
             INSERT INTO message VALUES ('m1', 'ses_a', 1, '[1,2]'), ('m2', 'ses_a', 2, '{}'),
               ('m3', 'ses_a', 3, '{\"role\":\"user\"}'), ('m4', 'ses_a', 4, NULL),
               ('m5', 'ses_a', 5, '{\"role\":\"user\",\"time\":\"late\"}');
             INSERT INTO part VALUES ('p1', 'm3', 'ses_a', x'7b2274797065223a2274657874222c2274657874223a226869227d'),
               ('p2', 'm5', 'ses_a', '{\"type\":\"tool\",\"state\":7}'),
               ('p3', 'gone', 'ses_a', '{\"type\":\"text\",\"text\":\"lost\"}');",
        );
        let sessions = read_all(&broken);
        let keys: Vec<&str> = sessions.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["7", "ses_a"]);
        let doc = document(&sessions, "ses_a");
        assert_eq!(doc.messages.len(), 1);
        assert_eq!(doc.messages[0].content, "hi");
        assert_eq!(doc.messages[0].timestamp_ms, Some(3));
        let positions: Vec<u64> = doc.report.malformed_lines.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, [1, 2, 4]);
        assert_eq!(doc.report.skipped_records["message/user-without-text"], 1);
        assert_eq!(doc.report.skipped_records["part/tool"], 1);
        assert_eq!(doc.report.skipped_records["part/without-message"], 1);
    }

    /// Parts the fixtures do not hold, on a database of an older shape (no `directory`,
    /// `version` or `parent_id` column: the project's worktree is the folder).
    #[test]
    fn synthetic_text_compaction_and_older_columns() {
        let dir = TempDir::new("opencode-shapes");
        let path = database(
            &dir,
            "opencode.db",
            r#"CREATE TABLE project (id TEXT, worktree TEXT);
            CREATE TABLE session (id TEXT, project_id TEXT, title TEXT, time_created INTEGER, time_updated INTEGER);
            CREATE TABLE message (id TEXT, session_id TEXT, time_created INTEGER, data TEXT);
            CREATE TABLE part (id TEXT, message_id TEXT, session_id TEXT, data TEXT);
            INSERT INTO project VALUES ('p', '/w/app');
            INSERT INTO session VALUES ('ses_x', 'p', 'Child session - 2025-11-02T10:00:00.000Z', 10, 90);
            INSERT INTO message VALUES
              ('m1', 'ses_x', 20, '{"role":"user","time":{"created":20}}'),
              ('m2', 'ses_x', 30, '{"role":"assistant","time":{"created":30},"modelID":"m","error":{"name":"MessageAbortedError","data":{"message":"aborted"}}}'),
              ('m3', 'ses_x', 40, '{"role":"user","time":{"created":40}}'),
              ('m4', 'ses_x', 50, '{"role":"assistant","time":{"created":50,"completed":95},"modelID":"m","summary":true,"tokens":{"input":7,"output":3,"reasoning":0,"cache":{"read":1.0,"write":0}}}'),
              ('m5', 'ses_x', 60, '{"role":"assistant","time":{"created":60},"modelID":"m"}');
            INSERT INTO part VALUES
              ('a1', 'm1', 'ses_x', '{"type":"text","text":"look at @notes.md"}'),
              ('a2', 'm1', 'ses_x', '{"type":"text","synthetic":true,"text":"Called the Read tool with the following input: {\"filePath\":\"/w/app/notes.md\"}"}'),
              ('a3', 'm1', 'ses_x', '{"type":"file","mime":"text/plain","url":"file:///w/app/notes.md","source":{"type":"file","path":"notes.md","text":{"value":"@notes.md","start":8,"end":17}}}'),
              ('a4', 'm1', 'ses_x', '{"type":"text","ignored":true,"text":"hidden"}'),
              ('c1', 'm3', 'ses_x', '{"type":"compaction","auto":true}'),
              ('s1', 'm4', 'ses_x', '{"type":"text","text":"Summary of the work so far."}'),
              ('t1', 'm5', 'ses_x', '{"type":"tool","callID":"c-1","tool":"todowrite","state":{"status":"completed","input":{"todos":[]},"output":"","title":"0 todos","metadata":{},"time":{"start":61,"end":62}}}');"#,
        );
        let sessions = read_all(&path);
        let doc = document(&sessions, "ses_x");
        assert_eq!(doc.session.cwd, "/w/app");
        assert_eq!(doc.session.title, "");
        assert_eq!(doc.session.user_message_count, 1);
        assert_eq!(
            doc.session.first_message,
            "look at @notes.md\n[file: notes.md (text/plain)]"
        );
        assert_eq!(
            (doc.session.started_ms, doc.session.ended_ms),
            (Some(10), Some(95))
        );
        let shape: Vec<(&str, bool, bool)> = doc
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.system, m.compact_boundary))
            .collect();
        assert_eq!(
            shape,
            [
                ("user", false, false),
                ("user", true, false),
                ("system", true, true),
                ("assistant", true, false),
                ("assistant", false, false),
            ]
        );
        assert!(doc.messages[1].content.starts_with("Called the Read tool"));
        // No step-finish: the message's own tokens.
        assert_eq!(
            (
                doc.messages[3].usage.input,
                doc.messages[3].usage.cache_read
            ),
            (7, 1)
        );
        // A finished call with an empty output waits for nothing.
        assert_eq!(doc.waiting, 0);
        assert_eq!(doc.messages[4].tool_calls[0].category, "other");
        assert_eq!(doc.report.skipped_records["message/assistant-error"], 1);
        assert_eq!(doc.report.skipped_records["part/text-ignored"], 1);
    }

    #[test]
    fn categories() {
        let of = |names: &[&str]| names.iter().map(|n| category(n)).collect::<Vec<_>>();
        assert_eq!(
            of(&["read", "glob", "grep", "list"]),
            ["read", "search", "search", "search"]
        );
        assert_eq!(
            of(&["edit", "write", "patch", "multiedit", "apply_patch"]),
            ["edit"; 5]
        );
        assert_eq!(of(&["bash", "task"]), ["shell", "task"]);
        assert_eq!(of(&["webfetch", "websearch", "codesearch"]), ["web"; 3]);
        assert_eq!(of(&["todowrite", "skill", "Read"]), ["other"; 3]);
    }

    #[test]
    fn default_titles() {
        assert!(is_default_title("New session - 2026-01-21T08:15:00.000Z"));
        assert!(is_default_title("Child session - 2026-01-21T08:15:00.000Z"));
        assert!(!is_default_title("New session - planning"));
        assert!(!is_default_title("Fix the build"));
    }
}
