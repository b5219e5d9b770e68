//! Cursor agent transcripts: `~/.cursor/projects/<project>/agent-transcripts/`, on every OS
//! (`%USERPROFILE%\.cursor\projects` on Windows). `<project>` is the workspace path with every
//! run of characters other than letters and digits turned into `-` (`home-u-src-app`): lossy, so
//! it is kept as the session's project name and never decoded into a working directory.
//!
//! Two layouts, both read whole as documents (Cursor rewrites and appends them as the chat goes
//! on):
//! - `<id>/<id>.jsonl` (Cursor 2.x, "Composer 2", and the `cursor-agent` CLI, since early 2026),
//!   with subagent runs in `<id>/subagents/<sub>.jsonl`. One JSON object a line:
//!   `{"role": "user"|"assistant", "message": {"content": ...}}` with Anthropic-style content
//!   (a string, or `text` / `tool_use {name, input}` blocks), and `{"type": "turn_ended",
//!   "status": ...}` closing a turn. No ids, no timestamps, no model, no tokens, and in the
//!   versions seen no tool results.
//! - `<id>.txt` (older versions): plain text. A line `user:` or `assistant:` (`A:` in some
//!   builds) opens a message. The user's words sit in `<user_query>…</user_query>` beside other
//!   injected context; an assistant message holds prose and markers at the left margin:
//!   `[Thinking] …`, `[Tool call] Name` followed by indented `key: value` arguments, and
//!   `[Tool result] Name` followed by the indented output.
//!
//! When both `<id>.jsonl` and `<id>.txt` exist, discovery keeps the JSONL one. Cursor's IDE chat
//! database (`state.vscdb`) and the CLI's `~/.cursor/chats/*/store.db` are not read.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use agentsync_core::{Message, ToolCall};
use serde_json::{Map, Value};

use super::agent::{Agent, Document, DocumentBuilder, Places, Reader};
use super::discover::{paths as entries, subdirectories};
use super::fit::native_id;
use super::str_at;
use super::transcript::ToolOutcome;

pub const NAME: &str = "cursor";
pub const PARSER: &str = "cursor/1";

/// Largest transcript read (agentsview stops at 10 MiB; transcripts are typically far below
/// 1 MiB). A larger file is refused whole rather than read in part.
pub const MAX_TRANSCRIPT_BYTES: usize = 32 << 20;

/// The folder every transcript sits under.
const TRANSCRIPTS_DIR: &str = "agent-transcripts";

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "Cursor",
    default_roots,
    discover,
    recognizes,
    reader: Reader::Document(read),
};

/// `~/.cursor/projects` on every OS (`%USERPROFILE%\.cursor\projects` on Windows).
fn default_roots(places: &Places) -> Vec<PathBuf> {
    vec![places.home.join(".cursor").join("projects")]
}

// ---------------------------------------------------------------------------------------------
// Where transcripts are

/// Every transcript under `root` (`~/.cursor/projects`, a project folder, an `agent-transcripts`
/// folder, or a folder holding such folders, a few levels down), sorted. A missing folder has
/// none.
pub fn discover(root: &Path) -> io::Result<Vec<PathBuf>> {
    // Deep enough for `<backup>/.cursor/projects/<project>/agent-transcripts`; bounded so a
    // symlink loop cannot recurse forever.
    const MAX_DEPTH: usize = 5;
    let mut found = Vec::new();
    let mut folders = vec![(root.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        if folder.file_name() == Some(OsStr::new(TRANSCRIPTS_DIR)) {
            found.extend(transcripts_in(&folder)?);
            continue;
        }
        if depth < MAX_DEPTH {
            folders.extend(subdirectories(&folder)?.into_iter().map(|d| (d, depth + 1)));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The transcripts of one `agent-transcripts` folder: `<id>.txt|jsonl`, `<id>/<name>.txt|jsonl`
/// and `<id>/subagents/<name>.txt|jsonl`. Of two files with one stem in one folder (`<id>.txt`
/// and `<id>.jsonl`), or a flat `<id>.txt` and a `<id>/<id>.jsonl`, only the JSONL one.
fn transcripts_in(folder: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut by_stem: BTreeMap<String, PathBuf> = BTreeMap::new();
    let keep = |path: PathBuf, by_stem: &mut BTreeMap<String, PathBuf>| {
        let stem = path
            .file_stem()
            .and_then(OsStr::to_str)
            .unwrap_or_default()
            .to_owned();
        match by_stem.get(&stem) {
            Some(kept) if is_jsonl(kept) || !is_jsonl(&path) => {}
            _ => {
                by_stem.insert(stem, path);
            }
        }
    };
    for path in transcript_files(folder)? {
        keep(path, &mut by_stem);
    }
    for session in subdirectories(folder)? {
        for path in transcript_files(&session)? {
            keep(path, &mut by_stem);
        }
        let mut subagents = BTreeMap::new();
        for path in transcript_files(&session.join("subagents"))? {
            keep(path, &mut subagents);
        }
        files.extend(subagents.into_values());
    }
    files.extend(by_stem.into_values());
    Ok(files)
}

fn is_jsonl(path: &Path) -> bool {
    path.extension() == Some(OsStr::new("jsonl"))
}

fn is_transcript_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(OsStr::to_str),
        Some("jsonl" | "txt")
    )
}

fn transcript_files(folder: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(entries(folder)?
        .into_iter()
        .filter(|p| p.is_file() && is_transcript_name(p))
        .collect())
}

/// Where a transcript sits: its session id, its parent's for a subagent, its project folder.
struct Place {
    id: String,
    parent: Option<String>,
    project: String,
}

fn name_of(path: Option<&Path>) -> &str {
    path.and_then(Path::file_name)
        .and_then(OsStr::to_str)
        .unwrap_or_default()
}

/// The place of a transcript from its path; `None` when it is under no `agent-transcripts`.
fn place_of(path: &Path) -> Option<Place> {
    let stem = path.file_stem().and_then(OsStr::to_str)?.to_owned();
    let dir = path.parent();
    if name_of(dir) == TRANSCRIPTS_DIR {
        return Some(Place {
            id: stem,
            parent: None,
            project: name_of(dir.and_then(Path::parent)).to_owned(),
        });
    }
    let session_dir = dir?;
    if name_of(Some(session_dir)) == "subagents" {
        let parent_dir = session_dir.parent()?;
        let transcripts = parent_dir.parent();
        if name_of(transcripts) != TRANSCRIPTS_DIR {
            return None;
        }
        let parent = name_of(Some(parent_dir)).to_owned();
        return Some(Place {
            id: format!("{parent}.{stem}"),
            parent: Some(parent),
            project: name_of(transcripts.and_then(Path::parent)).to_owned(),
        });
    }
    let transcripts = session_dir.parent();
    if name_of(transcripts) != TRANSCRIPTS_DIR {
        return None;
    }
    Some(Place {
        id: stem,
        parent: None,
        project: name_of(transcripts.and_then(Path::parent)).to_owned(),
    })
}

/// A `.txt` or `.jsonl` file under an `agent-transcripts` folder whose first line has the shape
/// of a Cursor transcript: `user:` / `assistant:` / `A:`, or a JSON object with a `role` and a
/// `message` but no `type` (Claude Code's records all have one), or a `turn_ended` record. An
/// empty file there too (Cursor creates it before it writes).
fn recognizes(path: &Path, head: &[u8]) -> bool {
    if !is_transcript_name(path) || place_of(path).is_none() {
        return false;
    }
    let Some(first) = head
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|line| !line.is_empty())
    else {
        return true;
    };
    if is_jsonl(path) {
        return serde_json::from_slice::<Value>(first)
            .ok()
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(is_jsonl_record);
    }
    matches!(first, b"user:" | b"assistant:" | b"A:")
}

/// A Cursor JSONL record: a message (`role` + `message`, no `type`) or a `turn_ended`.
fn is_jsonl_record(record: &Map<String, Value>) -> bool {
    let message = record.contains_key("role")
        && record.get("message").is_some_and(Value::is_object)
        && !record.contains_key("type");
    message || str_at(record, "type") == "turn_ended"
}

/// The coarse class of a Cursor tool. Cursor names tools in two styles (`Shell`, `StrReplace`
/// in the agent and CLI; `run_terminal_cmd`, `edit_file` in older IDE builds): both are
/// compared without case and underscores.
pub fn category(tool: &str) -> &'static str {
    let key: String = tool
        .chars()
        .filter(|c| *c != '_' && *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match key.as_str() {
        "read" | "readfile" | "readnotebook" => "read",
        "grep" | "grepsearch" | "glob" | "globfilesearch" | "filesearch" | "codebasesearch"
        | "semanticsearch" | "ls" | "listdir" | "listdirectory" => "search",
        "write" | "writefile" | "edit" | "editfile" | "strreplace" | "searchreplace"
        | "multiedit" | "applypatch" | "delete" | "deletefile" | "editnotebook" => "edit",
        "shell" | "bash" | "terminal" | "runterminalcmd" | "runterminalcommand" => "shell",
        "task" | "subagent" => "task",
        "websearch" | "webfetch" | "fetch" | "fetchurl" => "web",
        _ => "other",
    }
}

/// The file a read or edit call names.
fn file_path_of(category: &str, input: &Map<String, Value>) -> String {
    if !matches!(category, "read" | "edit") {
        return String::new();
    }
    [
        "path",
        "file_path",
        "filePath",
        "target_file",
        "targetFile",
        "target_notebook",
    ]
    .iter()
    .find_map(|k| input.get(*k).and_then(Value::as_str))
    .unwrap_or_default()
    .to_owned()
}

fn tool_call(id: String, name: &str, input: &Value) -> ToolCall {
    let category = category(name);
    let file_path = input
        .as_object()
        .map(|i| file_path_of(category, i))
        .unwrap_or_default();
    ToolCall {
        id,
        name: name.to_owned(),
        category: category.to_owned(),
        // Compact JSON with sorted keys: the same input always gives the same text.
        input: input.to_string(),
        file_path,
        ..ToolCall::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads one transcript whole. `Err` when the file is no Cursor transcript (binary, too large,
/// JSON without any Cursor record, text without any role marker) or its path names no session.
pub fn read(path: &Path, bytes: &[u8]) -> Result<Document, String> {
    if bytes.len() > MAX_TRANSCRIPT_BYTES {
        return Err(format!(
            "the transcript is {} bytes, more than the {MAX_TRANSCRIPT_BYTES} read",
            bytes.len()
        ));
    }
    if bytes.contains(&0) {
        return Err("a binary file (NUL bytes), not a Cursor transcript".to_owned());
    }
    let text = String::from_utf8_lossy(bytes);
    let mut doc = DocumentBuilder::new(NAME, PARSER);
    let (id, parent, project) = match place_of(path) {
        Some(place) => (place.id, place.parent, place.project),
        // A file named on its own: its stem is its id.
        None => (
            path.file_stem()
                .and_then(OsStr::to_str)
                .unwrap_or_default()
                .to_owned(),
            None,
            String::new(),
        ),
    };
    doc.session.native_id = native_id(&id);
    if doc.session.native_id.is_none() {
        return Err(format!("{} names no session", path.display()));
    }
    if let Some(parent) = parent.as_deref().and_then(native_id) {
        doc.session.set_parent(&parent, "subagent");
    }
    doc.session.project_fallback = project;
    note_file_times(path, &mut doc);

    let mut state = State::default();
    let first = text.trim_start();
    if first.starts_with('{') || (is_jsonl(path) && !first.is_empty()) {
        read_jsonl(&text, &mut doc, &mut state)?;
    } else if !first.is_empty() {
        read_text(&text, &mut doc, &mut state)?;
    }
    doc.finish()
}

/// The transcript holds no times: the session ends when the file was last written, and
/// started when it was created, where the file system says.
fn note_file_times(path: &Path, doc: &mut DocumentBuilder) {
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    let ms = |t: io::Result<std::time::SystemTime>| {
        t.ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
    };
    let modified = ms(meta.modified());
    if let Some(modified) = modified {
        doc.session.ended_ms = Some(modified);
        if let Some(created) = ms(meta.created()).filter(|c| *c <= modified) {
            doc.session.started_ms = Some(created);
        }
    }
}

/// What a reading remembers: tool calls still without a result, oldest first, and how many
/// calls were numbered.
#[derive(Default)]
struct State {
    pending: Vec<(String, String)>,
    calls: u64,
}

impl State {
    /// An id for a call the transcript gives none: its position among the document's calls,
    /// stable as long as Cursor only appends.
    fn next_id(&mut self) -> String {
        self.calls += 1;
        format!("call-{}", self.calls)
    }

    /// The pending call a result named `name` answers: the oldest of that name, or the oldest
    /// of any name when the result names none (or none matches).
    fn take_pending(&mut self, name: &str) -> Option<String> {
        let index = self
            .pending
            .iter()
            .position(|(_, n)| !name.is_empty() && n == name)
            .or_else(|| (!self.pending.is_empty()).then_some(0))?;
        Some(self.pending.remove(index).0)
    }

    /// A new prompt or the end of a turn: calls unanswered so far will not be answered.
    fn end_turn(&mut self, doc: &mut DocumentBuilder) {
        self.pending.clear();
        doc.transcript.give_up_all();
    }
}

/// A result for a call of an earlier message.
fn attach_late(doc: &mut DocumentBuilder, state: &mut State, name: &str, outcome: ToolOutcome) {
    match state.take_pending(name) {
        Some(id) if doc.transcript.attach(&id, outcome) => {}
        _ => doc.report.orphan_tool_results += 1,
    }
}

/// A user message's text: the `<user_query>` parts when there are any (the context Cursor puts
/// around them is dropped and counted), or the whole text. Text that is only tags Cursor wrote
/// (`<system_reminder>…`, `<attached_files>…`) is kept as a system message.
fn push_user(doc: &mut DocumentBuilder, state: &mut State, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        doc.report.skipped("user/empty");
        return;
    }
    let (queries, rest) = user_queries(text);
    if !queries.is_empty() {
        if !rest.trim().is_empty() {
            doc.report.skipped("user/context");
        }
        let content = queries.join("\n\n");
        state.end_turn(doc);
        doc.session.note_user_message(&content, true);
        doc.push(Message {
            role: "user".into(),
            content,
            ..Message::default()
        });
    } else if text.starts_with('<') && text.ends_with('>') {
        doc.push(Message {
            role: "user".into(),
            content: text.to_owned(),
            system: true,
            ..Message::default()
        });
    } else {
        state.end_turn(doc);
        doc.session.note_user_message(text, true);
        doc.push(Message {
            role: "user".into(),
            content: text.to_owned(),
            ..Message::default()
        });
    }
}

/// The trimmed texts inside `<user_query>` tags (an unclosed tag runs to the end), and the text
/// outside them.
fn user_queries(text: &str) -> (Vec<String>, String) {
    const OPEN: &str = "<user_query>";
    const CLOSE: &str = "</user_query>";
    let mut queries = Vec::new();
    let mut rest = String::new();
    let mut tail = text;
    while let Some(start) = tail.find(OPEN) {
        rest.push_str(&tail[..start]);
        let inner = &tail[start + OPEN.len()..];
        let (query, after) = match inner.find(CLOSE) {
            Some(end) => (&inner[..end], &inner[end + CLOSE.len()..]),
            None => (inner, ""),
        };
        let query = query.trim();
        if !query.is_empty() {
            queries.push(query.to_owned());
        }
        tail = after;
    }
    rest.push_str(tail);
    (queries, rest)
}

// ---------------------------------------------------------------------------------------------
// JSONL transcripts

fn read_jsonl(text: &str, doc: &mut DocumentBuilder, state: &mut State) -> Result<(), String> {
    let mut records = 0;
    let mut lines = 0;
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let record = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(record)) => record,
            Ok(_) => {
                doc.malformed(line_no, "not a JSON object".to_owned());
                continue;
            }
            Err(e) => {
                doc.malformed(line_no, format!("invalid JSON: {e}"));
                continue;
            }
        };
        if is_jsonl_record(&record) {
            records += 1;
        }
        if let Err(reason) = jsonl_record(&record, doc, state) {
            doc.malformed(line_no, reason);
        }
    }
    if records == 0 && lines > 0 {
        return Err("no line is a Cursor transcript record (role and message)".to_owned());
    }
    Ok(())
}

fn jsonl_record(
    record: &Map<String, Value>,
    doc: &mut DocumentBuilder,
    state: &mut State,
) -> Result<(), String> {
    match (str_at(record, "type"), str_at(record, "role")) {
        ("turn_ended", _) => {
            state.end_turn(doc);
            let status = match str_at(record, "status") {
                "" => "?",
                status => status,
            };
            doc.report.skipped(&format!("turn_ended/{status}"));
            Ok(())
        }
        ("", "user") => {
            let content = jsonl_content(record)?;
            let mut pieces = Vec::new();
            let mut results = false;
            match content {
                Value::String(text) => pieces.push(text.clone()),
                Value::Array(blocks) => {
                    for block in blocks.iter().filter_map(Value::as_object) {
                        match str_at(block, "type") {
                            "text" => pieces.push(str_at(block, "text").to_owned()),
                            "tool_result" => {
                                results = true;
                                jsonl_result(block, doc, state);
                            }
                            "image" => pieces.push("[image]".to_owned()),
                            other => doc.report.skipped(&format!("user/{other}")),
                        }
                    }
                }
                _ => return Err("a user message whose content is not text".to_owned()),
            }
            pieces.retain(|p| !p.trim().is_empty());
            if pieces.is_empty() {
                if !results {
                    doc.report.skipped("user/empty");
                }
                return Ok(());
            }
            push_user(doc, state, &pieces.join("\n"));
            Ok(())
        }
        ("", "assistant") => {
            let content = jsonl_content(record)?;
            let mut text = Vec::new();
            let mut thinking = Vec::new();
            let mut calls = Vec::new();
            let mut results = Vec::new();
            match content {
                Value::String(t) => text.push(t.clone()),
                Value::Array(blocks) => {
                    for block in blocks.iter().filter_map(Value::as_object) {
                        match str_at(block, "type") {
                            "text" => text.push(str_at(block, "text").to_owned()),
                            "thinking" | "reasoning" => {
                                let t = match str_at(block, "thinking") {
                                    "" => str_at(block, "text"),
                                    t => t,
                                };
                                thinking.push(t.to_owned());
                            }
                            "tool_use" | "tool_call" => {
                                let name = str_at(block, "name");
                                let id = str_at(block, "id").to_owned();
                                let input = block.get("input").cloned().unwrap_or(Value::Null);
                                if !id.is_empty() {
                                    state.pending.push((id.clone(), name.to_owned()));
                                }
                                calls.push(tool_call(id, name, &input));
                            }
                            "tool_result" => results.push(block),
                            other => doc.report.skipped(&format!("assistant/{other}")),
                        }
                    }
                }
                _ => return Err("an assistant message whose content is not text".to_owned()),
            }
            text.retain(|t| !t.trim().is_empty());
            thinking.retain(|t| !t.trim().is_empty());
            if text.is_empty() && thinking.is_empty() && calls.is_empty() {
                if results.is_empty() {
                    doc.report.skipped("assistant/empty");
                }
            } else {
                doc.push(Message {
                    role: "assistant".into(),
                    content: text.join("\n"),
                    thinking: thinking.join("\n"),
                    model: str_at(content_owner(record), "model").to_owned(),
                    tool_calls: calls,
                    ..Message::default()
                });
            }
            for block in results {
                jsonl_result(block, doc, state);
            }
            Ok(())
        }
        ("", "") => {
            doc.report.skipped("record-without-role");
            Ok(())
        }
        ("", role) => {
            doc.report.skipped(&format!("role/{role}"));
            Ok(())
        }
        (kind, _) => {
            doc.report.skipped(kind);
            Ok(())
        }
    }
}

fn content_owner(record: &Map<String, Value>) -> &Map<String, Value> {
    record
        .get("message")
        .and_then(Value::as_object)
        .unwrap_or(record)
}

fn jsonl_content(record: &Map<String, Value>) -> Result<&Value, String> {
    record
        .get("message")
        .and_then(Value::as_object)
        .and_then(|m| m.get("content"))
        .ok_or_else(|| {
            format!(
                "a {} record without message.content",
                str_at(record, "role")
            )
        })
}

/// A `tool_result` block (not written by the Cursor versions seen; read when one is): to the
/// call its `tool_use_id` names, or to the oldest call still without a result.
fn jsonl_result(block: &Map<String, Value>, doc: &mut DocumentBuilder, state: &mut State) {
    let result = match block.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(t) => Some(t.clone()),
                Value::Object(o) => o.get("text").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Null) | None => str_at(block, "text").to_owned(),
        Some(other) => other.to_string(),
    };
    let outcome = ToolOutcome {
        result,
        is_error: block.get("is_error").and_then(Value::as_bool) == Some(true),
        subagent_session: String::new(),
    };
    let id = str_at(block, "tool_use_id");
    if !id.is_empty() {
        state.pending.retain(|(p, _)| p != id);
        if !doc.transcript.attach(id, outcome) {
            doc.report.orphan_tool_results += 1;
        }
        return;
    }
    attach_late(doc, state, "", outcome);
}

// ---------------------------------------------------------------------------------------------
// Text transcripts

/// A role marker: a line that is only `user:`, `assistant:` or `A:`.
fn role_marker(line: &str) -> Option<&'static str> {
    match line.trim() {
        "user:" => Some("user"),
        "assistant:" | "A:" => Some("assistant"),
        _ => None,
    }
}

const THINKING: &str = "[Thinking]";
const TOOL_CALL: &str = "[Tool call]";
const TOOL_RESULT: &str = "[Tool result]";

fn is_marker(line: &str) -> bool {
    let line = line.trim_start();
    [THINKING, TOOL_CALL, TOOL_RESULT]
        .iter()
        .any(|m| line.starts_with(m))
}

/// Whether `line` ends the indented body of a marker: another marker, or text at the left
/// margin.
fn ends_body(line: &str) -> bool {
    is_marker(line) || (!line.trim().is_empty() && !line.starts_with([' ', '\t']))
}

fn read_text(text: &str, doc: &mut DocumentBuilder, state: &mut State) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks: Vec<(&'static str, usize, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(role) = role_marker(line) {
            if let Some(last) = blocks.last_mut() {
                last.2 = i;
            }
            blocks.push((role, i + 1, lines.len()));
        }
    }
    let Some(&(_, first_body, _)) = blocks.first() else {
        return Err("no `user:` or `assistant:` line: not a Cursor transcript".to_owned());
    };
    let preamble = &lines[..first_body - 1];
    if preamble.iter().any(|l| !l.trim().is_empty()) {
        doc.malformed(
            1,
            "text before the first `user:` or `assistant:` line".to_owned(),
        );
    }
    for (role, start, end) in blocks {
        let body = &lines[start..end];
        match role {
            "user" => push_user(doc, state, &body.join("\n")),
            _ => text_assistant(body, doc, state),
        }
    }
    Ok(())
}

/// The indented lines from `lines[i]` on, up to the end of the body, without their common
/// indentation; and where the body ends.
fn body(lines: &[&str], mut i: usize) -> (Vec<String>, usize) {
    let start = i;
    while i < lines.len() && !ends_body(lines[i]) {
        i += 1;
    }
    let mut taken = &lines[start..i];
    while let Some((last, rest)) = taken.split_last() {
        if last.trim().is_empty() {
            taken = rest;
        } else {
            break;
        }
    }
    // The margin in ASCII spaces and tabs: `trim_start` also takes Unicode spaces, several
    // bytes long, and a cut by its length could fall inside a character.
    let margin = |l: &str| l.bytes().take_while(|b| *b == b' ' || *b == b'\t').count();
    let indent = taken
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| margin(l))
        .min()
        .unwrap_or(0);
    let out = taken
        .iter()
        .map(|l| {
            let cut = margin(l).min(indent);
            l.get(cut..).unwrap_or_default().trim_end().to_owned()
        })
        .collect();
    (out, i)
}

/// A call's arguments: `key: value` (or `key=value`) lines at the body's margin, deeper lines
/// continuing the value above. A body with no key is kept as one string.
fn arguments(lines: &[String]) -> Value {
    let mut args = Map::new();
    let mut current: Option<String> = None;
    let mut loose = Vec::new();
    for line in lines {
        let at_margin = !line.starts_with([' ', '\t']);
        let key_value = line
            .split_once(": ")
            .or_else(|| line.split_once('='))
            .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            .filter(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            });
        match key_value {
            Some((key, value)) if at_margin => {
                args.insert(key.to_owned(), Value::String(value.trim().to_owned()));
                current = Some(key.to_owned());
            }
            _ => match current
                .as_ref()
                .and_then(|k| args.get_mut(k))
                .and_then(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                }) {
                Some(value) => {
                    if !value.is_empty() {
                        value.push('\n');
                    }
                    value.push_str(line.strip_prefix("  ").unwrap_or(line));
                }
                None => loose.push(line.as_str()),
            },
        }
    }
    let loose = loose.join("\n");
    if args.is_empty() {
        if loose.trim().is_empty() {
            return Value::Object(args);
        }
        return Value::String(loose);
    }
    if !loose.trim().is_empty() {
        args.insert("_text".to_owned(), Value::String(loose));
    }
    Value::Object(args)
}

/// Whether a text transcript's result reads as a failure: Cursor writes no flag, so a result
/// whose first line starts with `Error` counts as one.
fn looks_failed(result: &str) -> bool {
    let first = result.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let first = first.trim_start();
    first.starts_with("Error") || first.starts_with("error:")
}

fn text_assistant(lines: &[&str], doc: &mut DocumentBuilder, state: &mut State) {
    let mut text = Vec::new();
    let mut thinking = Vec::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    // Calls of this message answered with no output: they wait for nothing.
    // Calls answered with an empty output (a set: a transcript may hold many thousands).
    let mut answered_empty: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Calls before this index are all answered: results mostly come in the order of their
    // calls, so the search for an open call starts here instead of at the first call.
    let mut first_open = 0;
    // Results for calls of earlier messages, pushed after this message.
    let mut earlier = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(rest) = trimmed.strip_prefix(THINKING) {
            let (more, next) = body(lines, i + 1);
            let mut part = rest.trim().to_owned();
            for line in more {
                if !part.is_empty() {
                    part.push('\n');
                }
                part.push_str(&line);
            }
            thinking.push(part);
            i = next;
        } else if let Some(name) = trimmed.strip_prefix(TOOL_CALL) {
            let (args, next) = body(lines, i + 1);
            let name = name.trim();
            let id = state.next_id();
            calls.push(tool_call(id, name, &arguments(&args)));
            i = next;
        } else if let Some(name) = trimmed.strip_prefix(TOOL_RESULT) {
            let (output, next) = body(lines, i + 1);
            let name = name.trim();
            let result = output.join("\n");
            let is_error = looks_failed(&result);
            // A call of this message waiting for its result: the oldest of that name first.
            let open = |c: &ToolCall| c.result.is_empty() && !answered_empty.contains(&c.id);
            let unanswered = calls.get(first_open..).unwrap_or_default();
            let here = unanswered
                .iter()
                .position(|c| open(c) && !name.is_empty() && c.name == name)
                .or_else(|| unanswered.iter().position(open))
                .map(|i| i + first_open);
            match here {
                Some(index) if result.is_empty() => {
                    answered_empty.insert(calls[index].id.clone());
                }
                Some(index) => {
                    calls[index].result = result;
                    calls[index].is_error = is_error;
                }
                None => earlier.push((
                    name.to_owned(),
                    ToolOutcome {
                        result,
                        is_error,
                        subagent_session: String::new(),
                    },
                )),
            }
            while calls
                .get(first_open)
                .is_some_and(|c| !c.result.is_empty() || answered_empty.contains(&c.id))
            {
                first_open += 1;
            }
            i = next;
        } else {
            text.push(lines[i]);
            i += 1;
        }
    }
    let content = text.join("\n").trim().to_owned();
    thinking.retain(|t| !t.trim().is_empty());
    if content.is_empty() && thinking.is_empty() && calls.is_empty() {
        if earlier.is_empty() {
            doc.report.skipped("assistant/empty");
        }
    } else {
        state.pending.extend(
            calls
                .iter()
                .filter(|c| c.result.is_empty() && !answered_empty.contains(&c.id))
                .map(|c| (c.id.clone(), c.name.clone())),
        );
        doc.push(Message {
            role: "assistant".into(),
            content,
            thinking: thinking.join("\n"),
            tool_calls: calls,
            ..Message::default()
        });
        for id in &answered_empty {
            doc.transcript.stop_awaiting(id);
        }
    }
    for (name, outcome) in earlier {
        attach_late(doc, state, &name, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "home-dev-src-webapp";
    const TEXT: &str = "3f9a1c2e-5b7d-4e8f-9a01-2b3c4d5e6f70.txt";
    const MID_TURN: &str = "7c1e0b9d-2f4a-4b6c-8d0e-1a2b3c4d5e6f.txt";
    const JSONL_ID: &str = "b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c";
    const SUBAGENT: &str = "d1e2f3a4-5b6c-4d7e-8f90-a1b2c3d4e5f6";

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cursor")
    }

    fn transcripts() -> PathBuf {
        root().join(PROJECT).join(TRANSCRIPTS_DIR)
    }

    fn jsonl_path() -> PathBuf {
        transcripts()
            .join(JSONL_ID)
            .join(format!("{JSONL_ID}.jsonl"))
    }

    fn subagent_path() -> PathBuf {
        transcripts()
            .join(JSONL_ID)
            .join("subagents")
            .join(format!("{SUBAGENT}.jsonl"))
    }

    fn read_fixture(path: &Path) -> Document {
        let bytes = fs::read(path).unwrap();
        read(path, &bytes).unwrap()
    }

    /// Found by review: a body line indented with a Unicode space made the margin cut fall
    /// inside a character (a panic that stopped every ingest).
    #[test]
    fn a_unicode_space_in_a_margin_is_no_panic() {
        let path = transcripts().join("unicode.txt");
        let text = "user:\n<user_query>\nlist\n</user_query>\n\nassistant:\n[Tool call] Shell\n  command: ls\n \u{3000}x\n[Tool result] Shell\n  a\n\u{a0}b\n";
        let doc = read(&path, text.as_bytes()).unwrap();
        let call = &doc.messages[1].tool_calls[0];
        assert_eq!(call.name, "Shell");
        assert_eq!(
            call.result, "a",
            "a line at the margin ends the result: {call:?}"
        );
    }

    /// Many calls and results in one turn are all paired (the pairing once scanned every call
    /// for every result, and every empty answer for every call).
    #[test]
    fn thousands_of_calls_in_one_turn_are_all_answered() {
        let path = transcripts().join("many.txt");
        let mut text = String::from("user:\n<user_query>\ngo\n</user_query>\n\nassistant:\n");
        for i in 0..4_000 {
            text.push_str(&format!(
                "[Tool call] Shell\n  command: echo {i}\n[Tool result] Shell\n"
            ));
            if i % 2 == 0 {
                text.push_str(&format!("  {i}\n"));
            }
        }
        let doc = read(&path, text.as_bytes()).unwrap();
        let calls = &doc.messages[1].tool_calls;
        assert_eq!(calls.len(), 4_000);
        assert_eq!(calls.iter().filter(|c| !c.result.is_empty()).count(), 2_000);
        assert_eq!(calls[3_000].result, "3000");
        assert_eq!(doc.waiting, 0, "empty answers wait for nothing");
    }

    #[test]
    fn text_transcript_session_and_messages() {
        let doc = read_fixture(&transcripts().join(TEXT));
        let s = &doc.session;
        assert_eq!(s.native_id.as_str(), "3f9a1c2e-5b7d-4e8f-9a01-2b3c4d5e6f70");
        assert_eq!((s.agent.as_str(), s.parser.as_str()), (NAME, PARSER));
        assert_eq!(s.project, PROJECT);
        assert_eq!(s.cwd, "", "the folder name is lossy: no working directory");
        assert_eq!(
            s.first_message,
            "The signup form accepts an empty email. Can you find where it is validated and fix it?"
        );
        assert_eq!(s.user_message_count, 3);
        assert!(s.ended_ms.is_some(), "the file's modification time");
        assert!(s.parent_session.is_empty());
        assert_eq!(doc.waiting, 0);

        let roles: Vec<&str> = doc.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "user",
                "assistant",
                "user",
                "assistant"
            ]
        );
        let ordinals: Vec<u64> = doc.messages.iter().map(|m| m.ordinal).collect();
        assert_eq!(ordinals, [0, 1, 2, 3, 4, 5]);

        let first = &doc.messages[1];
        assert_eq!(
            first.thinking,
            "The user wants the signup validation fixed; I should find the validator first."
        );
        assert_eq!(
            first.content,
            "I'll look for the email validation first.\n\
             The validator returns true for an empty string. I'll change that."
        );
        let calls: Vec<(&str, &str, &str)> = first
            .tool_calls
            .iter()
            .map(|c| (c.name.as_str(), c.category.as_str(), c.file_path.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                ("Grep", "search", ""),
                ("Read", "read", "/home/dev/src/webapp/src/lib/validate.ts"),
                (
                    "StrReplace",
                    "edit",
                    "/home/dev/src/webapp/src/lib/validate.ts"
                ),
            ]
        );
        let grep = &first.tool_calls[0];
        assert_eq!(grep.id, "call-1");
        assert_eq!(
            grep.input,
            r#"{"path":"/home/dev/src/webapp/src","pattern":"validateEmail"}"#
        );
        assert!(grep.result.starts_with("src/forms/signup.ts:14:"));
        let read_call = &first.tool_calls[1];
        assert_eq!(
            read_call.result,
            "export function validateEmail(email: string): boolean {\n  \
             return email.length === 0 || EMAIL_RE.test(email);\n}"
        );

        let tests = &doc.messages[3];
        assert_eq!(
            tests.thinking,
            "The test runner is missing; dependencies are probably not installed.\n\
             Installing them should fix it."
        );
        let shell: Vec<(&str, bool)> = tests
            .tool_calls
            .iter()
            .map(|c| (c.category.as_str(), c.is_error))
            .collect();
        assert_eq!(shell, [("shell", true), ("shell", false)]);
        assert_eq!(
            tests.tool_calls[0].result,
            "Error: Cannot find module 'vitest'\nExit code: 1"
        );
        assert_eq!(
            tests.tool_calls[0].input,
            r#"{"command":"npm test -- validate","description":"Run the validation tests"}"#
        );
        assert_eq!(doc.messages[5].tool_calls[0].category, "web");
        assert!(doc.messages.iter().all(|m| m.model.is_empty()
            && m.usage == agentsync_core::TokenUsage::default()
            && m.timestamp_ms.is_none()
            && !m.system));

        let skipped = &doc.report.skipped_records;
        assert_eq!(skipped.get("user/context"), Some(&1));
        assert_eq!(skipped.get("assistant/empty"), Some(&1));
        assert!(doc.report.malformed_lines.is_empty());
        assert_eq!(doc.report.orphan_tool_results, 0);
    }

    #[test]
    fn a_transcript_caught_mid_turn_waits() {
        let doc = read_fixture(&transcripts().join(MID_TURN));
        assert_eq!(doc.messages.len(), 2);
        assert_eq!(doc.waiting, 1, "the Edit call has no result yet");
        let calls = &doc.messages[1].tool_calls;
        assert_eq!(
            calls[0].result,
            "const args = parseArgs(process.argv.slice(2));"
        );
        assert_eq!(
            (calls[1].name.as_str(), calls[1].result.as_str()),
            ("Edit", "")
        );
        assert_eq!(calls[1].file_path, "/home/dev/src/webapp/src/cli.ts");
    }

    #[test]
    fn jsonl_transcript() {
        let doc = read_fixture(&jsonl_path());
        let s = &doc.session;
        assert_eq!(s.native_id.as_str(), JSONL_ID);
        assert_eq!(s.project, PROJECT);
        assert_eq!(s.first_message, "Why does `make build` fail on CI?");
        assert_eq!(s.user_message_count, 3);
        assert_eq!(doc.waiting, 0, "calls without ids wait for nothing");
        assert_eq!(doc.messages.len(), 9);
        let users: Vec<&str> = doc
            .messages
            .iter()
            .filter(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(
            users,
            [
                "Why does `make build` fail on CI?",
                "Fix it and also check the tests folder.",
                "Thanks, that's all."
            ]
        );
        let calls: Vec<(&str, &str)> = doc
            .messages
            .iter()
            .flat_map(|m| &m.tool_calls)
            .map(|c| (c.name.as_str(), c.category.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                ("Shell", "shell"),
                ("Read", "read"),
                ("StrReplace", "edit"),
                ("Glob", "search"),
                ("Task", "task")
            ]
        );
        let shell = &doc.messages[1];
        assert_eq!(shell.content, "Let me run the build locally first.");
        assert_eq!(
            shell.tool_calls[0].input,
            r#"{"command":"make build","description":"Build the project"}"#
        );
        assert_eq!(
            (
                shell.tool_calls[0].id.as_str(),
                shell.tool_calls[0].result.as_str()
            ),
            ("", "")
        );
        assert_eq!(
            doc.messages[2].tool_calls[0].file_path,
            "/home/dev/src/webapp/Makefile"
        );
        let report = &doc.report;
        assert_eq!(report.malformed_lines.len(), 1);
        assert_eq!(report.malformed_lines[0].0, 8);
        assert_eq!(report.skipped_records.get("turn_ended/success"), Some(&2));
        assert_eq!(report.skipped_records.get("turn_ended/aborted"), Some(&1));
        assert_eq!(report.skipped_records.get("user/context"), Some(&1));
    }

    #[test]
    fn subagent_transcripts_name_their_parent() {
        let doc = read_fixture(&subagent_path());
        let s = &doc.session;
        assert_eq!(s.native_id.as_str(), format!("{JSONL_ID}.{SUBAGENT}"));
        assert_eq!(
            (s.parent_session.as_str(), s.relationship.as_str()),
            (JSONL_ID, "subagent")
        );
        assert_eq!(s.project, PROJECT);
        assert_eq!(s.first_message, "Check tests/ for tsconfig assumptions");
        assert_eq!(doc.messages.len(), 3);
    }

    #[test]
    fn recognizes_its_own_files_only() {
        let head = |p: &Path| {
            let mut bytes = fs::read(p).unwrap();
            bytes.truncate(crate::agent::HEAD_BYTES);
            bytes
        };
        for path in discover(&root()).unwrap() {
            assert!(recognizes(&path, &head(&path)), "{}", path.display());
            let agent = crate::agent::recognize(&path, &head(&path)).map(|a| a.name);
            assert_eq!(agent, Some(NAME), "{}", path.display());
        }
        let claude = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code");
        let mut folders = vec![claude];
        let mut checked = 0;
        while let Some(folder) = folders.pop() {
            for path in entries(&folder).unwrap() {
                if path.is_dir() {
                    folders.push(path);
                } else if is_jsonl(&path) {
                    assert!(!recognizes(&path, &head(&path)), "{}", path.display());
                    checked += 1;
                }
            }
        }
        assert!(checked > 10);
        let in_transcripts = Path::new("/h/.cursor/projects/p/agent-transcripts/s.jsonl");
        let claude_line = br#"{"type":"user","uuid":"u","message":{"role":"user","content":"x"}}"#;
        assert!(!recognizes(in_transcripts, claude_line));
        assert!(recognizes(in_transcripts, b""));
        assert!(recognizes(
            in_transcripts,
            br#"{"type":"turn_ended","status":"success"}"#
        ));
        let elsewhere = Path::new("/h/notes/s.jsonl");
        assert!(!recognizes(
            elsewhere,
            br#"{"role":"user","message":{"content":"x"}}"#
        ));
        let txt = Path::new("/h/.cursor/projects/p/agent-transcripts/s.txt");
        assert!(recognizes(txt, b"\nuser:\nhello\n"));
        assert!(!recognizes(txt, b"just some notes\nuser:\n"));
        assert!(!recognizes(
            Path::new("/h/p/agent-transcripts/s.md"),
            b"user:\n"
        ));
    }

    #[test]
    fn codex_fixtures_are_not_recognized() {
        let codex = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codex");
        for path in crate::discover::codex_rollouts(&codex).unwrap() {
            let bytes = fs::read(&path).unwrap();
            assert!(!recognizes(&path, &bytes), "{}", path.display());
        }
    }

    #[test]
    fn discover_finds_both_layouts_and_prefers_jsonl() {
        let dir = std::env::temp_dir().join(format!("agentsync-cursor-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let projects = dir.join("home/.cursor/projects");
        for relative in [
            "home-dev-src-webapp/agent-transcripts/3f9a1c2e-5b7d-4e8f-9a01-2b3c4d5e6f70.txt",
            "home-dev-src-webapp/agent-transcripts/7c1e0b9d-2f4a-4b6c-8d0e-1a2b3c4d5e6f.txt",
            "home-dev-src-webapp/agent-transcripts/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c.jsonl",
            "home-dev-src-webapp/agent-transcripts/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c/subagents/d1e2f3a4-5b6c-4d7e-8f90-a1b2c3d4e5f6.jsonl",
        ] {
            let to = projects.join(relative);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(root().join(relative), &to).unwrap();
        }
        let extra = [
            // The same session as text beside its JSONL, and flat beside its folder.
            "home-dev-src-webapp/agent-transcripts/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c.txt",
            "home-dev-src-webapp/agent-transcripts/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c.txt",
            "home-dev-src-webapp/agent-transcripts/notes.md",
            "home-dev-src-webapp/extension-state.txt",
            "other/agent-transcripts/a1.jsonl",
        ];
        for relative in extra {
            let to = projects.join(relative);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::write(&to, "user:\nhi\n").unwrap();
        }
        let relative = |paths: Vec<PathBuf>, base: &Path| -> Vec<String> {
            paths
                .iter()
                .map(|p| {
                    p.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/")
                })
                .collect()
        };
        let want = [
            "home-dev-src-webapp/agent-transcripts/3f9a1c2e-5b7d-4e8f-9a01-2b3c4d5e6f70.txt",
            "home-dev-src-webapp/agent-transcripts/7c1e0b9d-2f4a-4b6c-8d0e-1a2b3c4d5e6f.txt",
            "home-dev-src-webapp/agent-transcripts/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c.jsonl",
            "home-dev-src-webapp/agent-transcripts/b8e2d4f6-1a3c-4e5f-8b7d-9c0e1f2a3b4c/subagents/d1e2f3a4-5b6c-4d7e-8f90-a1b2c3d4e5f6.jsonl",
            "other/agent-transcripts/a1.jsonl",
        ];
        assert_eq!(relative(discover(&projects).unwrap(), &projects), want);
        // From the home folder or a project folder too, and from the default root.
        assert_eq!(discover(&dir).unwrap().len(), want.len());
        assert_eq!(
            discover(&projects.join("home-dev-src-webapp"))
                .unwrap()
                .len(),
            want.len() - 1
        );
        let places = Places::under(&dir.join("home"), None, None, None);
        assert_eq!(default_roots(&places), vec![projects.clone()]);
        assert!(discover(&dir.join("missing")).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn categories() {
        let of = |names: &[&str]| names.iter().map(|n| category(n)).collect::<Vec<_>>();
        assert_eq!(
            of(&["Read", "read_file", "Grep", "codebase_search", "LS"]),
            ["read", "read", "search", "search", "search"]
        );
        assert_eq!(
            of(&["Write", "StrReplace", "edit_file", "Delete", "ApplyPatch"]),
            ["edit"; 5]
        );
        assert_eq!(
            of(&[
                "Shell",
                "run_terminal_cmd",
                "Task",
                "WebSearch",
                "web_fetch"
            ]),
            ["shell", "shell", "task", "web", "web"]
        );
        assert_eq!(of(&["TodoWrite", "ReadLints", ""]), ["other"; 3]);
    }

    #[test]
    fn garbage_is_refused_or_reported_never_a_panic() {
        let path = transcripts().join("0000.txt");
        assert!(read(&path, b"no markers in this transcript").is_err());
        assert!(read(&path, b"\x00\x01\x02").is_err());
        assert!(read(&path, br#"{"type":"user","uuid":"u"}"#).is_err());
        assert!(read(Path::new(""), b"user:\nhi").is_err(), "no session id");
        let empty = read(&path, b"").unwrap();
        assert!(empty.messages.is_empty());

        // A truncated transcript: cut at every byte of both fixtures.
        for fixture in [transcripts().join(TEXT), jsonl_path()] {
            let bytes = fs::read(&fixture).unwrap();
            for cut in 0..bytes.len() {
                let _ = read(&fixture, &bytes[..cut]);
            }
        }
        let odd: [&[u8]; 9] = [
            b"user:\n<user_query>unclosed",
            b"assistant:\n[Tool result]\n  orphan\n",
            b"assistant:\n[Tool call]\n[Tool call] X\n  a\n    b\n  =\n  : c\n",
            b"A:\n[Thinking]\nuser:\n",
            b"{\"role\":\"user\",\"message\":{\"content\":7}}\n",
            b"{\"role\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"content\":[1,{\"text\":\"x\"}]}]}}",
            b"{\"role\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"Read\",\"input\":7}]}}\n{\"role\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"ok\",\"is_error\":true}]}}",
            b"{\"role\":\"user\",\"message\":{}}\n[1,2]\n\"x\"",
            "user:\n\u{e9}\u{1f600}\n\u{ff}".as_bytes(),
        ];
        for bytes in odd {
            if let Ok(doc) = read(&path, bytes) {
                for m in &doc.messages {
                    assert!(!m.role.is_empty());
                }
            }
        }
        let doc = read(&path, odd[1]).unwrap();
        assert_eq!(doc.report.orphan_tool_results, 1);
        let doc = read(&path, odd[6]).unwrap();
        let call = &doc.messages[0].tool_calls[0];
        assert_eq!((call.result.as_str(), call.is_error), ("ok", true));
        assert_eq!(doc.waiting, 0);
        let doc = read(&path, odd[7]).unwrap();
        assert_eq!(doc.report.malformed_lines.len(), 3);
    }

    #[test]
    fn results_in_a_later_message_attach_to_their_call() {
        let path = transcripts().join("later.txt");
        let text = "user:\nhi\nassistant:\n[Tool call] Shell\n  command: ls\nassistant:\n\
                    [Tool result] Shell\n  a.txt\nDone.\n";
        let doc = read(&path, text.as_bytes()).unwrap();
        assert_eq!(doc.messages.len(), 3);
        assert_eq!(doc.messages[1].tool_calls[0].result, "a.txt");
        assert_eq!(doc.messages[2].content, "Done.");
        assert_eq!(doc.waiting, 0);
        // A new prompt gives up on a call that got no result.
        let text = "user:\nhi\nassistant:\n[Tool call] Shell\n  command: ls\nuser:\nstop\n";
        let doc = read(&path, text.as_bytes()).unwrap();
        assert_eq!((doc.messages.len(), doc.waiting), (3, 0));
        // A call answered with no output waits for nothing.
        let text =
            "user:\nhi\nassistant:\n[Tool call] Shell\n  command: true\n[Tool result] Shell\n";
        assert_eq!(read(&path, text.as_bytes()).unwrap().waiting, 0);
        // Multi-line arguments continue their key.
        let text = "assistant:\n[Tool call] Write\n  path: a.txt\n  contents: line 1\n    line 2\n";
        let doc = read(&path, text.as_bytes()).unwrap();
        assert_eq!(
            doc.messages[0].tool_calls[0].input,
            r#"{"contents":"line 1\nline 2","path":"a.txt"}"#
        );
        assert_eq!(doc.messages[0].tool_calls[0].file_path, "a.txt");
    }
}
