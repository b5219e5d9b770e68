//! Gemini CLI chats: `~/.gemini/tmp/<project>/chats/session-<YYYY-MM-DDTHH-MM>-<id8>.jsonl`
//! (every OS: Gemini CLI keeps its data under the home folder, or `$GEMINI_CLI_HOME`), and the
//! subagents a session ran under `chats/<parent session id>/<session id>.jsonl`. `<project>` is
//! a short name of the project folder (`myapp`, `myapp-1`; its `.project_root` file holds the
//! project's path), or, before 0.29, the SHA-256 of that path in hex.
//!
//! One file is one session, which Gemini CLI rewrites or extends as it grows, so it is read
//! whole. Two shapes:
//! - up to 0.38 (`.json`): one JSON document `{sessionId, projectHash, startTime, lastUpdated,
//!   summary?, kind?, directories?, messages: [...]}`, rewritten whole on every change;
//! - since 0.39 (`.jsonl`): a first line with the same fields but `messages`, then one line per
//!   message written (a message written again, with its tool calls or tokens, repeats its `id`
//!   and replaces the earlier line), `{"$set": {...}}` lines updating the fields, and
//!   `{"$rewindTo": id}` lines marking a rewind. Resuming a `.json` session migrates it to a
//!   `.jsonl` beside it, and the `.json` stays.
//!
//! A message is `{id, timestamp, type, content, displayContent?}`: `type` is `user`, `gemini`,
//! `info`, `warning` or `error`; `content` is text or Gemini API parts. A `gemini` message also
//! has `thoughts` (`{subject, description, timestamp}`), `tokens` (`{input, output, cached,
//! thoughts, tool, total}`), `model`, and `toolCalls`, each with its `result` (the
//! `functionResponse` parts sent back to the model) and `status`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use agentsync_core::limits::MAX_PATH;
use agentsync_core::{Message, TokenUsage, ToolCall};
use serde_json::{Map, Value};

use super::agent::{Agent, Document, DocumentBuilder, Reader};
use super::discover::{paths as entries, subdirectories};
use super::fit::{clip, native_id};
use super::session::TitleSource;
use super::transcript::ToolOutcome;
use super::{str_at, timestamp_at};

pub const NAME: &str = "gemini";
pub const PARSER: &str = "gemini/1";

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "Gemini CLI",
    default_roots: |places| vec![places.home.join(".gemini/tmp")],
    discover,
    recognizes,
    reader: Reader::Document(read),
};

/// The file in a project's folder naming the project's path (Gemini CLI ≥ 0.29).
const PROJECT_ROOT_FILE: &str = ".project_root";

/// Folders walked below a root to find `chats` folders: `tmp/<project>/chats` is 2 deep, and
/// `--from` may name a folder holding `.gemini` folders of other machines.
const MAX_DEPTH: usize = 6;

/// Reads the chat at `path`, with the project path its project folder names.
fn read(path: &Path, bytes: &[u8]) -> Result<Document, String> {
    parse(path, bytes, project_root_of(path).as_deref())
}

/// The session's file, as Gemini CLI wrote it. `project_root`: the project's path when known
/// (from `.project_root`), the session's `cwd`.
pub fn parse(path: &Path, bytes: &[u8], project_root: Option<&str>) -> Result<Document, String> {
    let chat = Chat::read(bytes)?;
    let mut builder = DocumentBuilder::new(NAME, PARSER);
    builder.report.merge(chat.report.clone());
    chat.build(path, project_root, &mut builder);
    builder.finish()
}

// ---------------------------------------------------------------------------------------------
// Files

/// Chats under `root` (`~/.gemini/tmp`, or a folder above it): in every `chats` folder, the
/// `session-*.json` and `session-*.jsonl` files, and the subagents' `*.json`/`*.jsonl` in its
/// subfolders. A `.json` chat with a `.jsonl` beside it was migrated there and is left out.
pub fn discover(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut chats = Vec::new();
    let mut folders = vec![(root.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        for sub in subdirectories(&folder)? {
            if sub.file_name() == Some(OsStr::new("chats")) {
                chats.extend(chat_files(&sub, true)?);
                for parent in subdirectories(&sub)? {
                    chats.extend(chat_files(&parent, false)?);
                }
            } else if depth + 1 < MAX_DEPTH {
                folders.push((sub, depth + 1));
            }
        }
    }
    chats.sort();
    Ok(chats)
}

/// `session-*.json(l)` in a `chats` folder (`sessions`), any `*.json(l)` in a subagents' one.
fn chat_files(folder: &Path, sessions: bool) -> io::Result<Vec<PathBuf>> {
    let files: Vec<PathBuf> = entries(folder)?
        .into_iter()
        .filter(|p| p.is_file() && is_chat_name(p, sessions))
        .collect();
    Ok(files
        .iter()
        .filter(|p| !(p.extension() == Some(OsStr::new("json")) && files.contains(&jsonl_of(p))))
        .cloned()
        .collect())
}

fn jsonl_of(json: &Path) -> PathBuf {
    json.with_extension("jsonl")
}

fn is_chat_name(path: &Path, session_prefix: bool) -> bool {
    let Some(name) = path.file_name().and_then(OsStr::to_str) else {
        return false;
    };
    let json = name.ends_with(".json") || name.ends_with(".jsonl");
    json && (!session_prefix || name.starts_with("session-"))
}

/// A `.json`/`.jsonl` file named like a chat (`session-*`, or inside a `chats` folder) whose
/// first bytes are a chat's fields: an object with `sessionId` and `projectHash` (Claude Code
/// records have a `sessionId`, never a `projectHash`).
fn recognizes(path: &Path, head: &[u8]) -> bool {
    let in_chats = path
        .ancestors()
        .skip(1)
        .take(2)
        .any(|dir| dir.file_name() == Some(OsStr::new("chats")));
    if !is_chat_name(path, !in_chats) {
        return false;
    }
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start();
    if !text.starts_with('{') {
        return false;
    }
    // The fields a chat opens with: the first line of a `.jsonl`, the first lines of a `.json`.
    let opening: String = text.chars().take(1024).collect();
    opening.contains("\"sessionId\"") && opening.contains("\"projectHash\"")
}

/// The project path in `.project_root` of the project folder holding the chat (`<project>/
/// chats/<file>`, or `<project>/chats/<parent>/<file>` for a subagent).
fn project_root_of(path: &Path) -> Option<String> {
    let chats = path
        .ancestors()
        .skip(1)
        .take(2)
        .find(|dir| dir.file_name() == Some(OsStr::new("chats")))?;
    // Only a regular file: a FIFO or a device there (in a `--from` tree) would block the read.
    let name = chats.parent()?.join(PROJECT_ROOT_FILE);
    if !fs::symlink_metadata(&name).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let file = fs::File::open(name).ok()?;
    let mut text = String::new();
    file.take(MAX_PATH as u64).read_to_string(&mut text).ok()?;
    let root = text.trim();
    (!root.is_empty()).then(|| root.to_owned())
}

/// The project folder's name when it is a short name, not the hash of the path.
fn project_folder_name(path: &Path) -> String {
    let chats = path
        .ancestors()
        .skip(1)
        .take(2)
        .find(|dir| dir.file_name() == Some(OsStr::new("chats")));
    let name = chats
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(OsStr::to_str)
        .unwrap_or_default();
    let is_hash = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash {
        String::new()
    } else {
        name.to_owned()
    }
}

/// The parent session of a subagent's chat: the folder it sits in, below `chats`.
fn parent_folder(path: &Path) -> Option<&str> {
    let dir = path.parent()?;
    if dir.parent()?.file_name() != Some(OsStr::new("chats")) {
        return None;
    }
    dir.file_name()?.to_str()
}

// ---------------------------------------------------------------------------------------------
// The chat as Gemini CLI keeps it

/// The chat's fields and messages once every line is applied.
#[derive(Default)]
struct Chat {
    fields: Map<String, Value>,
    /// The session id the file opened with (a later `$set` may repeat it).
    session_id: String,
    /// Messages in the order first written; a message written again replaces its earlier
    /// version in place. Each with its line (or position in `messages`, from 1).
    messages: Vec<(u64, Value)>,
    report: crate::ParseReport,
}

impl Chat {
    fn read(bytes: &[u8]) -> Result<Chat, String> {
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("an empty file is no Gemini CLI chat".to_owned());
        }
        // A `.json` chat, or a `.jsonl` of its first line only.
        if let Ok(whole) = serde_json::from_str::<Value>(trimmed) {
            return match whole {
                Value::Object(fields) => Chat::document(fields),
                _ => Err("not a Gemini CLI chat: the file is no JSON object".to_owned()),
            };
        }
        let mut chat = Chat::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        let lines: Vec<&str> = text.split('\n').collect();
        let last = lines.len();
        for (n, line) in lines.iter().enumerate() {
            let number = n as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let record = match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(record)) => record,
                Ok(_) => {
                    chat.report
                        .malformed(number, "not a JSON object".to_owned());
                    continue;
                }
                // A last line without its newline: Gemini CLI caught writing it.
                Err(_) if n + 1 == last => {
                    chat.report.skipped("incomplete-last-line");
                    continue;
                }
                Err(e) => {
                    chat.report.malformed(number, format!("invalid JSON: {e}"));
                    continue;
                }
            };
            chat.line(number, record, &mut index);
        }
        if chat.session_id.is_empty() {
            return Err("not a Gemini CLI chat: no line names a sessionId".to_owned());
        }
        Ok(chat)
    }

    /// A whole `.json` chat.
    fn document(mut fields: Map<String, Value>) -> Result<Chat, String> {
        let session_id = str_at(&fields, "sessionId").to_owned();
        if session_id.is_empty() || !fields.contains_key("projectHash") {
            return Err("not a Gemini CLI chat: no sessionId and projectHash".to_owned());
        }
        let mut chat = Chat {
            session_id,
            ..Chat::default()
        };
        match fields.remove("messages") {
            Some(Value::Array(messages)) => {
                chat.messages = (1..).zip(messages).collect();
            }
            None | Some(Value::Null) => {}
            Some(_) => chat
                .report
                .malformed(0, "`messages` is not a list".to_owned()),
        }
        chat.fields = fields;
        Ok(chat)
    }

    /// One line of a `.jsonl` chat.
    fn line(
        &mut self,
        number: u64,
        mut record: Map<String, Value>,
        index: &mut HashMap<String, usize>,
    ) {
        if record.contains_key("$rewindTo") {
            // The messages after that point stay: they were the session too (kept in file
            // order, like Claude Code's abandoned branches).
            self.report.skipped("$rewindTo");
        } else if record.get("id").is_some_and(Value::is_string) {
            let id = str_at(&record, "id").to_owned();
            match index.get(&id) {
                Some(&at) => self.messages[at] = (number, Value::Object(record)),
                None => {
                    index.insert(id, self.messages.len());
                    self.messages.push((number, Value::Object(record)));
                }
            }
        } else if let Some(set) = record.get_mut("$set").and_then(Value::as_object_mut) {
            if let Some(messages) = set.remove("messages") {
                // A checkpoint of the history the model holds (after masking tool outputs or
                // compressing): messages already read keep their fuller version, new ones are
                // added.
                self.report.skipped("$set/messages");
                for message in messages.as_array().into_iter().flatten() {
                    let id = message
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !id.is_empty() && !index.contains_key(id) {
                        index.insert(id.to_owned(), self.messages.len());
                        self.messages.push((number, message.clone()));
                    }
                }
            }
            let set = std::mem::take(set);
            self.fields.extend(set);
            self.note_session_id();
        } else if record.get("sessionId").is_some_and(Value::is_string)
            && record.contains_key("projectHash")
        {
            let messages = record.remove("messages");
            self.fields.extend(record);
            self.note_session_id();
            // A whole legacy record on one line.
            for message in messages
                .as_ref()
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = message
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if id.is_empty() {
                    self.messages.push((number, message.clone()));
                } else if !index.contains_key(id) {
                    index.insert(id.to_owned(), self.messages.len());
                    self.messages.push((number, message.clone()));
                }
            }
        } else {
            self.report.malformed(
                number,
                "a line that is no message, metadata, $set or $rewindTo".to_owned(),
            );
        }
    }

    fn note_session_id(&mut self) {
        if self.session_id.is_empty() {
            self.session_id = str_at(&self.fields, "sessionId").to_owned();
        }
    }

    fn build(self, path: &Path, project_root: Option<&str>, builder: &mut DocumentBuilder) {
        let session = &mut builder.session;
        session.native_id = native_id(&self.session_id);
        session.project_fallback = project_folder_name(path);
        if let Some(root) = project_root {
            session.note_cwd(root);
        }
        // Workspace folders (a subagent's, or those added with `/dir add`): the first is the
        // project's.
        if let Some(Value::Array(dirs)) = self.fields.get("directories")
            && let Some(first) = dirs.first().and_then(Value::as_str)
        {
            session.note_cwd(first);
        }
        for key in ["startTime", "lastUpdated"] {
            if let Some(ms) = timestamp_at(&self.fields, key) {
                session.note_time(ms);
            }
        }
        session.note_title(str_at(&self.fields, "summary"), TitleSource::Generated);
        let subagent = str_at(&self.fields, "kind") == "subagent";
        if let Some(parent) = parent_folder(path).filter(|_| subagent).and_then(native_id) {
            session.set_parent(&parent, "subagent");
        }
        for (number, message) in self.messages {
            match message {
                Value::Object(message) => self::message(&message, number, builder),
                _ => builder.malformed(number, "a message that is not an object".to_owned()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

fn message(record: &Map<String, Value>, number: u64, builder: &mut DocumentBuilder) {
    let time = timestamp_at(record, "timestamp");
    if let Some(ms) = time {
        builder.session.note_time(ms);
    }
    match str_at(record, "type") {
        "user" => user(record, time, builder),
        "gemini" => gemini(record, time, builder),
        kind @ ("info" | "warning" | "error") => {
            let content = parts(record.get("content")).text();
            if content.is_empty() {
                builder.report.skipped(&format!("{kind}/no-content"));
                return;
            }
            builder.push(Message {
                role: "system".to_owned(),
                content,
                system: true,
                timestamp_ms: time,
                source_uuid: str_at(record, "id").to_owned(),
                ..Message::default()
            });
        }
        "" => builder.malformed(number, "a message without a type".to_owned()),
        other => builder.report.skipped(other),
    }
}

fn user(record: &Map<String, Value>, time: Option<i64>, builder: &mut DocumentBuilder) {
    let content = parts(record.get("content"));
    if !content.responses.is_empty() && content.text.is_empty() {
        // Tool results sent back to the model, which newer versions also keep as a message of
        // their own: their calls already carry them.
        for response in &content.responses {
            let (result, is_error) = response_text(response);
            let id = str_at(response, "id");
            if !id.is_empty() && !result.is_empty() {
                builder.transcript.attach(
                    id,
                    ToolOutcome {
                        result,
                        is_error,
                        subagent_session: String::new(),
                    },
                );
            }
        }
        builder.report.skipped("user/function-response");
        return;
    }
    // What the user typed, when the model was sent more (the files an `@path` names).
    let shown = parts(record.get("displayContent")).text();
    let text = if shown.is_empty() {
        content.text()
    } else {
        shown
    };
    if text.trim().is_empty() {
        builder.report.skipped("user/no-content");
        return;
    }
    let trimmed = text.trim_start();
    let injected = ["<session_context>", "<hook_context>"]
        .iter()
        .any(|p| trimmed.starts_with(p));
    if !injected {
        // A new prompt: results of the previous turn's calls will not come any more.
        builder.transcript.give_up_all();
        let command = trimmed.starts_with('/') || trimmed.starts_with('?');
        builder.session.note_user_message(&text, !command);
    }
    builder.push(Message {
        role: "user".to_owned(),
        content: text,
        system: injected,
        timestamp_ms: time,
        source_uuid: str_at(record, "id").to_owned(),
        ..Message::default()
    });
}

fn gemini(record: &Map<String, Value>, time: Option<i64>, builder: &mut DocumentBuilder) {
    let content = parts(record.get("content"));
    let mut thinking: Vec<String> = record
        .get("thoughts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|thought| {
            if let Some(ms) = timestamp_at(thought, "timestamp") {
                builder.session.note_time(ms);
            }
            let subject = str_at(thought, "subject").trim();
            let description = str_at(thought, "description").trim();
            match (subject.is_empty(), description.is_empty()) {
                (true, true) => None,
                (false, false) => Some(format!("{subject}\n{description}")),
                (false, true) => Some(subject.to_owned()),
                (true, false) => Some(description.to_owned()),
            }
        })
        .collect();
    thinking.extend(content.thinking.iter().cloned());

    let mut calls = Vec::new();
    let mut finished = Vec::new();
    for call in record
        .get("toolCalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(call) = call.as_object() else {
            builder.report.skipped("toolCall/not-an-object");
            continue;
        };
        if let Some(ms) = timestamp_at(call, "timestamp") {
            builder.session.note_time(ms);
        }
        let (tool_call, done) = recorded_call(call);
        if done && !tool_call.id.is_empty() {
            finished.push(tool_call.id.clone());
        }
        calls.push(tool_call);
    }
    // Calls the model asked for that are not recorded yet: their results are still to come.
    for (i, requested) in content.calls.iter().enumerate() {
        let id = str_at(requested, "id");
        let known = if id.is_empty() {
            !calls.is_empty()
        } else {
            calls.iter().any(|c| c.id == id)
        };
        if known {
            continue;
        }
        let name = str_at(requested, "name");
        let id = if id.is_empty() {
            format!("{}#{i}", str_at(record, "id"))
        } else {
            id.to_owned()
        };
        calls.push(tool_call(id, name, requested.get("args"), false));
    }

    let text = content.text();
    if text.is_empty() && thinking.is_empty() && calls.is_empty() {
        builder.report.skipped("gemini/no-content");
        return;
    }
    builder.push(Message {
        role: "assistant".to_owned(),
        content: text,
        thinking: thinking.join("\n\n"),
        model: str_at(record, "model").to_owned(),
        usage: record
            .get("tokens")
            .and_then(Value::as_object)
            .map(usage_of)
            .unwrap_or_default(),
        tool_calls: calls,
        timestamp_ms: time,
        source_uuid: str_at(record, "id").to_owned(),
        ..Message::default()
    });
    // A finished call with an empty result has nothing more to wait for.
    for id in finished {
        builder.transcript.stop_awaiting(&id);
    }
}

/// A recorded call and whether it finished (`success`, `error`, `cancelled`, or a result
/// without a status).
fn recorded_call(call: &Map<String, Value>) -> (ToolCall, bool) {
    let status = str_at(call, "status");
    let has_result = call.get("result").is_some_and(|r| !r.is_null());
    let done =
        matches!(status, "success" | "error" | "cancelled") || (status.is_empty() && has_result);
    let agent = str_at(call, "agentId");
    let mut tool_call = tool_call(
        str_at(call, "id").to_owned(),
        str_at(call, "name"),
        call.get("args"),
        !agent.is_empty(),
    );
    if done {
        let (mut text, failed) = result_text(call.get("result"));
        if text.is_empty()
            && let Some(Value::String(display)) = call.get("resultDisplay")
        {
            text.clone_from(display);
        }
        tool_call.result = text;
        tool_call.is_error = failed || matches!(status, "error" | "cancelled");
    }
    tool_call.subagent_session = native_id(agent)
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    (tool_call, done)
}

fn tool_call(id: String, name: &str, args: Option<&Value>, runs_agent: bool) -> ToolCall {
    let category = if runs_agent { "task" } else { category(name) };
    let file_path = match category {
        "read" | "edit" => file_path_of(args),
        _ => "",
    };
    ToolCall {
        id,
        name: name.to_owned(),
        category: category.to_owned(),
        // Compact JSON with sorted keys: the same input always gives the same text.
        input: args.map(Value::to_string).unwrap_or_default(),
        file_path: clip(file_path, MAX_PATH).to_owned(),
        ..ToolCall::default()
    }
}

/// The file a read or edit tool names (`file_path`; `absolute_path` in 2025's `read_file`).
fn file_path_of(args: Option<&Value>) -> &str {
    let args = args.and_then(Value::as_object);
    ["file_path", "absolute_path", "path"]
        .iter()
        .find_map(|k| args.and_then(|a| a.get(*k)).and_then(Value::as_str))
        .unwrap_or("")
}

/// The coarse class of a Gemini CLI tool, for filtering.
pub fn category(tool: &str) -> &'static str {
    match tool {
        "read_file" | "read_many_files" | "read_mcp_resource" | "get_internal_docs" => "read",
        "glob"
        | "grep_search"
        | "search_file_content"
        | "list_directory"
        | "grep"
        | "list_mcp_resources" => "search",
        "replace" | "write_file" | "edit" | "edit_file" => "edit",
        "run_shell_command" | "shell" => "shell",
        "google_web_search" | "web_fetch" | "web_search" => "web",
        "invoke_agent" | "codebase_investigator" | "delegate_to_agent" | "complete_task" => "task",
        _ => "other",
    }
}

/// Gemini counts cached tokens inside `input` (its `promptTokenCount`) and thinking apart from
/// `output` (`candidatesTokenCount`); the model counts cache reads apart from input, and
/// reasoning as part of the output. `tool` (tool-use prompt tokens) is input too.
fn usage_of(tokens: &Map<String, Value>) -> TokenUsage {
    let count = |key| tokens.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cached = count("cached");
    TokenUsage {
        input: count("input")
            .saturating_sub(cached)
            .saturating_add(count("tool")),
        cache_read: cached,
        cache_creation: 0,
        output: count("output").saturating_add(count("thoughts")),
        reasoning: count("thoughts"),
    }
}

// ---------------------------------------------------------------------------------------------
// Parts

/// Gemini API content (`PartListUnion`: a string, a part, or a list of them) sorted out.
#[derive(Default)]
struct Parts<'a> {
    text: Vec<String>,
    thinking: Vec<String>,
    calls: Vec<&'a Map<String, Value>>,
    responses: Vec<&'a Map<String, Value>>,
}

impl Parts<'_> {
    fn text(&self) -> String {
        self.text.join("\n")
    }
}

fn parts(content: Option<&Value>) -> Parts<'_> {
    let mut parts = Parts::default();
    let list: Vec<&Value> = match content {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    for part in list {
        match part {
            Value::String(text) if !text.is_empty() => parts.text.push(text.clone()),
            Value::Object(part) => {
                if let Some(call) = part.get("functionCall").and_then(Value::as_object) {
                    parts.calls.push(call);
                } else if let Some(r) = part.get("functionResponse").and_then(Value::as_object) {
                    parts.responses.push(r);
                } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                    if text.is_empty() {
                        continue;
                    }
                    if part.get("thought").and_then(Value::as_bool) == Some(true) {
                        parts.thinking.push(text.to_owned());
                    } else {
                        parts.text.push(text.to_owned());
                    }
                } else if let Some(placeholder) = placeholder(part) {
                    parts.text.push(placeholder);
                }
            }
            _ => {}
        }
    }
    parts
}

/// What stands in for inline data or a file reference (never the bytes).
fn placeholder(part: &Map<String, Value>) -> Option<String> {
    if let Some(data) = part.get("inlineData").and_then(Value::as_object) {
        let mime = str_at(data, "mimeType");
        return Some(if mime.is_empty() {
            "[inline data]".to_owned()
        } else {
            format!("[inline data: {mime}]")
        });
    }
    let file = part.get("fileData").and_then(Value::as_object)?;
    Some(format!("[file: {}]", str_at(file, "fileUri")))
}

/// A call's `result`: the text of its function responses (their `output`, or `error`), and
/// whether one reported an error.
fn result_text(result: Option<&Value>) -> (String, bool) {
    let parts = parts(result);
    let mut texts = Vec::new();
    let mut error = false;
    for response in &parts.responses {
        let (text, failed) = response_text(response);
        error |= failed;
        if !text.is_empty() {
            texts.push(text);
        }
    }
    texts.extend(parts.text.iter().cloned());
    (texts.join("\n"), error)
}

fn response_text(response: &Map<String, Value>) -> (String, bool) {
    match response.get("response") {
        Some(Value::Object(body)) => match (body.get("output"), body.get("error")) {
            (Some(Value::String(output)), _) => (output.clone(), false),
            (_, Some(Value::String(error))) => (error.clone(), true),
            (_, Some(error)) if !error.is_null() => (error.to_string(), true),
            _ if body.is_empty() => (String::new(), false),
            _ => (Value::Object(body.clone()).to_string(), false),
        },
        Some(Value::String(text)) => (text.clone(), false),
        _ => (String::new(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentsync_core::timestamp::parse_rfc3339_ms;

    const MAIN: &str = "myapp/chats/session-2026-05-12T09-14-3f2a9c1e.jsonl";
    const SUBAGENT: &str = "myapp/chats/3f2a9c1e-5d4b-4c7a-9e21-6b8f0d2a7c55/7d0c4b2e-91a3-4f5e-8c6d-2b1a0e9f8d47.jsonl";
    const MID_TURN: &str = "myapp/chats/session-2026-05-12T11-02-c0ffee12.jsonl";
    const LEGACY: &str = "4f1bd11e9a47758f1cd98e176f05b67e7a1e7c36ec08f3c128a2750e434fee3a/chats/session-2025-10-03T14-22-8b1d0f2a.json";

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemini")
    }

    fn read_fixture(relative: &str) -> Document {
        let path = fixtures().join(relative);
        let bytes = fs::read(&path).unwrap();
        let Reader::Document(read) = AGENT.reader else {
            panic!("Gemini chats are documents");
        };
        read(&path, &bytes).unwrap()
    }

    fn ms(time: &str) -> Option<i64> {
        parse_rfc3339_ms(time)
    }

    #[test]
    fn a_session_in_jsonl() {
        let doc = read_fixture(MAIN);
        let s = &doc.session;
        assert_eq!(s.native_id.as_str(), "3f2a9c1e-5d4b-4c7a-9e21-6b8f0d2a7c55");
        assert_eq!((s.agent.as_str(), s.parser.as_str()), (NAME, PARSER));
        assert_eq!(
            s.cwd, "/home/dev/src/myapp",
            "from the project's .project_root"
        );
        assert_eq!(s.project, "myapp");
        assert_eq!(s.started_ms, ms("2026-05-12T09:14:03.120Z"));
        assert_eq!(s.ended_ms, ms("2026-05-12T09:17:33.100Z"));
        assert_eq!(s.title, "Fix parser underflow and bump version");
        assert_eq!(
            s.first_message,
            "Why does `cargo test` fail in the parser crate? Fix it."
        );
        assert_eq!(s.user_message_count, 5);
        assert_eq!(s.parent_session, "");
        assert_eq!(doc.waiting, 0);

        let roles: Vec<&str> = doc.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "assistant",
                "assistant",
                "system",
                "user",
                "user",
                "assistant",
                "assistant",
                "user",
                "assistant",
                "user",
                "assistant"
            ]
        );
        let ordinals: Vec<u64> = doc.messages.iter().map(|m| m.ordinal).collect();
        assert_eq!(ordinals, (0..13).collect::<Vec<_>>());

        // g1 was written three times: its last version (tokens, then calls) is kept, in place.
        let g1 = &doc.messages[1];
        assert_eq!(g1.content, "I'll look at the failing test first.");
        assert_eq!(
            g1.thinking,
            "Locating the failure\nI should read the test and run it to see the error."
        );
        assert_eq!(g1.model, "gemini-2.5-pro");
        assert_eq!(g1.source_uuid, "g1");
        assert_eq!(g1.timestamp_ms, ms("2026-05-12T09:14:15.000Z"));
        assert_eq!(
            g1.usage,
            TokenUsage {
                input: 6072,
                cache_read: 2048,
                cache_creation: 0,
                output: 352,
                reasoning: 310,
            }
        );
        let [read, shell] = &g1.tool_calls[..] else {
            panic!("two calls: {:?}", g1.tool_calls);
        };
        assert_eq!(read.id, "read_file-1778577256000-a1b2c3");
        assert_eq!(read.name, "read_file");
        assert_eq!(read.category, "read");
        assert_eq!(read.file_path, "/home/dev/src/myapp/src/parser.rs");
        assert_eq!(
            read.input,
            r#"{"file_path":"/home/dev/src/myapp/src/parser.rs"}"#
        );
        assert!(read.result.starts_with("pub fn parse(input: &str)"));
        assert!(!read.is_error);
        assert_eq!(shell.category, "shell");
        assert_eq!(shell.file_path, "");
        assert!(shell.is_error);
        assert_eq!(
            shell.result,
            "Command exited with code 101: test parse_empty ... FAILED"
        );

        let g2 = &doc.messages[2];
        let categories: Vec<&str> = g2.tool_calls.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(categories, ["edit", "search"]);
        assert_eq!(
            g2.tool_calls[0].file_path,
            "/home/dev/src/myapp/src/parser.rs"
        );

        let info = &doc.messages[4];
        assert!(info.system);
        assert_eq!(info.content, "Memory refreshed successfully.");
        let stats = &doc.messages[5];
        assert_eq!((stats.content.as_str(), stats.system), ("/stats", false));
        // What the user typed, not the files `@Cargo.toml` pulled in.
        assert_eq!(
            doc.messages[6].content,
            "Check the serde_json release notes for @Cargo.toml"
        );
        let g4 = &doc.messages[7];
        assert_eq!(g4.content, "");
        assert_eq!(
            g4.thinking,
            "Planning\nSearch the web, and ask an investigator where serde_json is used."
        );
        let categories: Vec<&str> = g4.tool_calls.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(categories, ["web", "task"]);
        assert_eq!(
            g4.tool_calls[1].subagent_session,
            "7d0c4b2e-91a3-4f5e-8c6d-2b1a0e9f8d47"
        );
        // A rewind keeps what came before it: both versions of the bump are there.
        assert_eq!(doc.messages[9].content, "Bump the version to 0.4.0");
        assert_eq!(
            doc.messages[11].content,
            "Bump the version to 0.3.1 instead"
        );

        let report = &doc.report;
        assert_eq!(report.messages, 13);
        assert_eq!(report.sessions, 1);
        assert_eq!(report.malformed_lines.len(), 1, "{report:?}");
        assert_eq!(report.malformed_lines[0].0, 13);
        assert_eq!(report.skipped_records["user/function-response"], 2);
        assert_eq!(report.skipped_records["$rewindTo"], 1);
        assert_eq!(report.orphan_tool_results, 0);
        assert!(doc.usage_events.is_empty());
    }

    #[test]
    fn a_subagent_names_its_parent() {
        let doc = read_fixture(SUBAGENT);
        let s = &doc.session;
        assert_eq!(s.native_id.as_str(), "7d0c4b2e-91a3-4f5e-8c6d-2b1a0e9f8d47");
        assert_eq!(s.parent_session, "3f2a9c1e-5d4b-4c7a-9e21-6b8f0d2a7c55");
        assert_eq!(s.relationship, "subagent");
        assert_eq!(s.cwd, "/home/dev/src/myapp");
        assert_eq!(s.first_message, "Find where serde_json is used");
        assert_eq!(doc.messages.len(), 3);
        let calls: Vec<(&str, &str)> = doc.messages[1]
            .tool_calls
            .iter()
            .map(|c| (c.name.as_str(), c.category.as_str()))
            .collect();
        assert_eq!(calls, [("glob", "search"), ("grep_search", "search")]);
        assert_eq!(doc.messages[1].model, "gemini-2.5-flash");
    }

    #[test]
    fn a_session_caught_mid_turn_waits() {
        let doc = read_fixture(MID_TURN);
        assert_eq!(doc.messages.len(), 2);
        assert_eq!(doc.waiting, 1, "the message with the executing call");
        let call = &doc.messages[1].tool_calls[0];
        assert_eq!(
            (call.name.as_str(), call.result.as_str()),
            ("run_shell_command", "")
        );
        assert!(!call.is_error);

        // Once the call is recorded finished, nothing waits any more.
        let path = fixtures().join(MID_TURN);
        let text = fs::read_to_string(&path).unwrap().replace(
            r#""status":"executing""#,
            r#""result":[{"functionResponse":{"id":"x","name":"run_shell_command","response":{"output":""}}}],"status":"success""#,
        );
        let done = parse(&path, text.as_bytes(), None).unwrap();
        assert_eq!(done.waiting, 0, "a finished call with an empty result");
    }

    #[test]
    fn calls_the_model_asked_for_wait_until_recorded() {
        let chat = concat!(
            r#"{"sessionId":"s","projectHash":"h"}"#,
            "\n",
            r#"{"id":"m1","type":"user","content":"go"}"#,
            "\n",
            r#"{"id":"m2","type":"gemini","content":[{"text":"reading","thought":true},{"functionCall":{"id":"c1","name":"read_file","args":{"file_path":"a.rs"}}}]}"#,
            "\n",
        );
        let doc = parse(Path::new("session-x.jsonl"), chat.as_bytes(), None).unwrap();
        assert_eq!(doc.waiting, 1);
        let m2 = &doc.messages[1];
        assert_eq!((m2.content.as_str(), m2.thinking.as_str()), ("", "reading"));
        assert_eq!(m2.tool_calls[0].id, "c1");
        assert_eq!(m2.tool_calls[0].file_path, "a.rs");
        // Its response, as a message of its own, completes it.
        let answered = format!(
            "{chat}{}\n",
            r#"{"id":"m3","type":"user","content":[{"functionResponse":{"id":"c1","name":"read_file","response":{"output":"fn main() {}"}}}]}"#
        );
        let doc = parse(Path::new("session-x.jsonl"), answered.as_bytes(), None).unwrap();
        assert_eq!(doc.waiting, 0);
        assert_eq!(doc.messages.len(), 2);
        assert_eq!(doc.messages[1].tool_calls[0].result, "fn main() {}");
    }

    #[test]
    fn a_legacy_json_document() {
        let doc = read_fixture(LEGACY);
        let s = &doc.session;
        assert_eq!(s.native_id.as_str(), "8b1d0f2a-7c3e-4a59-b6d2-0e4f1a9c3b77");
        assert_eq!(s.cwd, "", "a hash folder names no path");
        assert_eq!(s.project, "", "nor a project");
        assert_eq!(s.started_ms, ms("2025-10-03T14:22:01.000Z"));
        assert_eq!(s.ended_ms, ms("2025-10-03T14:23:40.000Z"));
        assert_eq!(s.first_message, "List the TODOs in this repo");
        assert_eq!(s.user_message_count, 2);
        assert_eq!(s.title, "");
        assert_eq!(doc.messages.len(), 5);
        let calls = &doc.messages[1].tool_calls;
        assert_eq!(calls[0].category, "search");
        assert_eq!(calls[1].file_path, "/home/dev/src/legacy-app/README.md");
        assert_eq!(calls[1].result, "# legacy-app\nTODO: docs\n");
        let error = &doc.messages[3];
        assert!(error.system);
        assert_eq!(error.role, "system");
        assert_eq!(doc.report.malformed_lines.len(), 1);
        assert_eq!(
            doc.report.malformed_lines[0].0, 4,
            "its place in `messages`"
        );
    }

    #[test]
    fn recognizes_its_chats_only() {
        let head = |path: &Path| {
            let bytes = fs::read(path).unwrap();
            bytes[..bytes.len().min(crate::agent::HEAD_BYTES)].to_vec()
        };
        for relative in [MAIN, SUBAGENT, MID_TURN, LEGACY] {
            let path = fixtures().join(relative);
            assert!(recognizes(&path, &head(&path)), "{relative}");
            assert_eq!(
                crate::agent::recognize(&path, &head(&path)).map(|a| a.name),
                Some(NAME)
            );
        }
        let others = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for relative in [
            "claude-code/user/user.jsonl",
            "claude-code/assistant/assistant.jsonl",
            "claude-code/system/summary.jsonl",
            "codex/2025/09/14",
        ] {
            let path = others.join(relative);
            let files = if path.is_dir() {
                entries(&path).unwrap()
            } else {
                vec![path]
            };
            for file in files {
                assert!(!recognizes(&file, &head(&file)), "{}", file.display());
            }
        }
        // The right shape under another name, or another shape under the right name.
        let chat = br#"{"sessionId":"s","projectHash":"h","startTime":"2026-01-01T00:00:00Z"}"#;
        assert!(!recognizes(Path::new("/x/notes.jsonl"), chat));
        assert!(!recognizes(Path::new("/x/session-1.txt"), chat));
        assert!(!recognizes(
            Path::new("/x/session-1.jsonl"),
            br#"{"sessionId":"s","type":"user","message":{}}"#
        ));
    }

    #[test]
    fn discovers_chats_under_the_root() {
        let root = std::env::temp_dir().join(format!("agentsync-gemini-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let tmp = root.join(".gemini/tmp");
        for relative in [
            MAIN,
            SUBAGENT,
            MID_TURN,
            LEGACY,
            "counts.json",
            "myapp/.project_root",
        ] {
            let to = tmp.join(relative);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(fixtures().join(relative), to).unwrap();
        }
        // A migrated `.json` (its `.jsonl` beside it), a temp file, a log that is no chat.
        let migrated = tmp.join(MAIN).with_extension("json");
        fs::write(&migrated, "{}").unwrap();
        fs::write(tmp.join(format!("{MAIN}.tmp-123")), "").unwrap();
        fs::create_dir_all(tmp.join("myapp/logs")).unwrap();
        fs::write(tmp.join("myapp/logs/logs.json"), "[]").unwrap();

        let mut expected: Vec<PathBuf> = [MAIN, SUBAGENT, MID_TURN, LEGACY]
            .iter()
            .map(|r| tmp.join(r))
            .collect();
        expected.sort();
        assert_eq!(discover(&tmp).unwrap(), expected);
        assert_eq!(discover(&root).unwrap(), expected, "from a folder above");
        assert!(discover(&root.join("missing")).unwrap().is_empty());
        let places = crate::agent::Places::under(&root, None, None, None);
        assert_eq!((AGENT.default_roots)(&places), [tmp]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn garbage_is_an_error_or_a_report() {
        let path = Path::new("/h/.gemini/tmp/p/chats/session-x.jsonl");
        for bytes in [
            &b""[..],
            b"   \n",
            b"not json",
            b"[1, 2]",
            b"{\"type\":\"user\"}\n{\"id\":1}\n",
            br#"{"sessionId":"s","type":"user","message":{}}"#,
            b"\xff\xfe{}",
        ] {
            assert!(parse(path, bytes, None).is_err(), "{bytes:?}");
        }
        // Every prefix of every fixture: a session or an error, never a panic.
        for relative in [MAIN, SUBAGENT, MID_TURN, LEGACY] {
            let bytes = fs::read(fixtures().join(relative)).unwrap();
            for cut in (0..bytes.len()).step_by(37) {
                if let Ok(doc) = parse(path, &bytes[..cut], None) {
                    assert!(doc.messages.len() <= 13);
                }
            }
        }
        // Wrong types where objects or strings belong.
        let odd = br#"{"sessionId":"s","projectHash":"h","summary":3,"messages":[{"id":"a","type":"gemini","content":{"x":1},"thoughts":"no","toolCalls":[7,{"id":5}],"tokens":[]},{"id":"b","type":"user","content":null},{"id":"c"}]}"#;
        let doc = parse(path, odd, None).unwrap();
        assert_eq!(doc.report.malformed_lines.len(), 1, "{:?}", doc.report);
    }

    #[test]
    fn categories() {
        for (tool, category) in [
            ("read_file", "read"),
            ("read_many_files", "read"),
            ("glob", "search"),
            ("grep_search", "search"),
            ("search_file_content", "search"),
            ("list_directory", "search"),
            ("replace", "edit"),
            ("write_file", "edit"),
            ("run_shell_command", "shell"),
            ("google_web_search", "web"),
            ("web_fetch", "web"),
            ("invoke_agent", "task"),
            ("codebase_investigator", "task"),
            ("write_todos", "other"),
            ("save_memory", "other"),
        ] {
            assert_eq!(super::category(tool), category, "{tool}");
        }
    }
}
