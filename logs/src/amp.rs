//! Amp (Sourcegraph's coding agent) threads: `~/.local/share/amp/threads/T-<uuid>.json`, under
//! `$XDG_DATA_HOME` when it is set. Amp uses the XDG layout on every OS: the same
//! `~/.local/share/amp` on macOS, `%USERPROFILE%\.local\share\amp` on Windows.
//!
//! One thread is one JSON document that Amp rewrites as the thread grows: `{"v", "id",
//! "created" (Unix ms), "title", "messages": [...], "env": {"initial": {"trees": [{"uri",
//! "displayName", "repository"}]}}, "relationships", "meta": {"traces"}, "usageLedger"}`. A
//! message is `{"role": "user" | "assistant" | "info", "messageId", "content": [blocks],
//! "meta": {"sentAt"}, "usage", "state"}`, its blocks shaped like Anthropic's (`text`,
//! `thinking`, `redacted_thinking`, `tool_use`), except that a tool's result is a `tool_result`
//! block `{"toolUseID", "run": {"status", "result" | "error"}}` in a later user message.
//! Assistant messages carry their model and tokens in `usage` (`inputTokens`, `outputTokens`,
//! `cacheCreationInputTokens`, `cacheReadInputTokens`, `timestamp`).

use std::ffi::OsStr;
use std::path::Path;

use agentsync_core::timestamp::parse_rfc3339_ms;
use agentsync_core::{Message, TokenUsage, ToolCall};
use serde_json::{Map, Value};

use super::agent::{Agent, Document, DocumentBuilder, Reader};
use super::discover;
use super::fit::native_id;
use super::session::TitleSource;
use super::transcript::ToolOutcome;
use super::{flag_at, str_at};

pub const NAME: &str = "amp";
pub const PARSER: &str = "amp/1";

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "Amp",
    default_roots: |places| vec![places.xdg_data.join("amp/threads")],
    discover: discover::amp_threads,
    recognizes,
    reader: Reader::Document(read),
};

/// A thread by its name (`T-<id>.json`) whose first bytes are a JSON object with a `T-` id and
/// `messages`; or any `.json` file of that shape (a thread copied under another name).
fn recognizes(path: &Path, head: &[u8]) -> bool {
    let json = path.extension().is_some_and(|e| e == "json");
    (discover::is_amp_thread(path) || json) && looks_like_thread(head)
}

/// The start of an Amp thread document: an object with `"id": "T-…"` and a `"messages"` key.
fn looks_like_thread(head: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(head).or_else(|e| {
        // A head cut inside a multi-byte character.
        std::str::from_utf8(&head[..e.valid_up_to()])
    }) else {
        return false;
    };
    if !text.trim_start().starts_with('{') || !text.contains("\"messages\"") {
        return false;
    }
    text.match_indices("\"id\"").any(|(at, key)| {
        text[at + key.len()..]
            .trim_start()
            .strip_prefix(':')
            .is_some_and(|rest| rest.trim_start().starts_with("\"T-"))
    })
}

/// The coarse class of an Amp tool, for filtering.
pub fn category(tool: &str) -> &'static str {
    match tool {
        "Read" | "look_at" | "read_mcp_resource" => "read",
        "Grep" | "glob" | "finder" | "list_directory" | "codebase_search_agent" => "search",
        "edit_file" | "create_file" | "undo_edit" | "apply_patch" | "format_file" => "edit",
        "Bash" | "shell_command" => "shell",
        "Task" | "oracle" | "librarian" => "task",
        "read_web_page" | "web_search" => "web",
        _ => "other",
    }
}

/// Reads the thread at `path` whole. `Err` when the bytes are not an Amp thread at all.
pub fn read(path: &Path, bytes: &[u8]) -> Result<Document, String> {
    let thread = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(thread)) => thread,
        Ok(_) => return Err("not an Amp thread: the document is not a JSON object".to_owned()),
        Err(e) => return Err(format!("not an Amp thread: invalid JSON: {e}")),
    };
    let messages = match thread.get("messages") {
        Some(Value::Array(messages)) => messages.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err("not an Amp thread: `messages` is not a list".to_owned()),
    };
    // The thread's own id; the file name (which Amp makes from it) when the id is missing.
    let own_id = str_at(&thread, "id");
    let stem = path.file_stem().and_then(OsStr::to_str).unwrap_or_default();
    let id = [own_id, stem]
        .into_iter()
        .find(|id| discover::is_amp_thread_id(id))
        .ok_or("not an Amp thread: no `T-…` thread id in the document or its name")?;

    let mut doc = DocumentBuilder::new(NAME, PARSER);
    doc.session.native_id = native_id(id);
    thread_fields(&thread, &mut doc);
    for (index, message) in messages.iter().enumerate() {
        let position = index as u64 + 1;
        let Value::Object(message) = message else {
            doc.malformed(position, "a message that is not a JSON object".to_owned());
            continue;
        };
        match str_at(message, "role") {
            "user" => user(message, &mut doc),
            "assistant" => assistant(message, &mut doc),
            "info" => info(message, &mut doc),
            "" => doc.malformed(position, "a message without a role".to_owned()),
            other => doc.report.skipped(&format!("role/{other}")),
        }
    }
    doc.finish()
}

/// The session's fields from the thread's own: times, title, working tree, parent thread.
fn thread_fields(thread: &Map<String, Value>, doc: &mut DocumentBuilder) {
    if let Some(ms) = thread.get("created").and_then(epoch_ms) {
        doc.session.note_time(ms);
    }
    doc.session
        .note_title(str_at(thread, "title"), TitleSource::Generated);
    let tree = thread
        .get("env")
        .and_then(|env| env.pointer("/initial/trees/0"))
        .and_then(Value::as_object);
    if let Some(tree) = tree {
        doc.session.project_fallback = str_at(tree, "displayName").to_owned();
        if let Some(cwd) = path_of_uri(str_at(tree, "uri")) {
            doc.session.note_cwd(&cwd);
        }
        if let Some(repository) = tree.get("repository").and_then(Value::as_object) {
            let git_ref = str_at(repository, "ref");
            doc.session
                .note_git_branch(git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref));
        }
    }
    // A thread made by a handoff or fork from another names it, as the child.
    let parent = thread
        .get("relationships")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find(|r| str_at(r, "role") == "child" && matches!(str_at(r, "type"), "handoff" | "fork"));
    if let Some(relationship) = parent
        && let Some(parent_id) = native_id(str_at(relationship, "threadID"))
    {
        doc.session
            .set_parent(&parent_id, str_at(relationship, "type"));
    }
    // Amp's traces of the agent's work (`startTime`, `endTime`) widen the session's span.
    let traces = thread
        .get("meta")
        .and_then(|meta| meta.get("traces"))
        .and_then(Value::as_array);
    for trace in traces.into_iter().flatten().filter_map(Value::as_object) {
        for key in ["startTime", "endTime"] {
            if let Some(ms) = parse_rfc3339_ms(str_at(trace, key)) {
                doc.session.note_time(ms);
            }
        }
    }
}

/// A user message: typed text (a prompt), and the results of earlier tool calls, which attach
/// to their calls and make no message of their own.
fn user(message: &Map<String, Value>, doc: &mut DocumentBuilder) {
    let mut pieces: Vec<String> = plain_text(message).map(str::to_owned).into_iter().collect();
    let mut has_results = false;
    for block in blocks(message) {
        match str_at(block, "type") {
            "text" => pieces.push(str_at(block, "text").to_owned()),
            "image" => pieces.push(image_placeholder(block)),
            "tool_result" => {
                has_results = true;
                tool_result(block, doc);
            }
            other => doc.report.skipped(&format!("user/{other}")),
        }
    }
    pieces.retain(|piece| !piece.trim().is_empty());
    if pieces.is_empty() {
        if !has_results {
            doc.report.skipped("user/no-content");
        }
        return;
    }
    let content = pieces.join("\n");
    let time = message_time(message);
    if let Some(ms) = time {
        doc.session.note_time(ms);
    }
    if !has_results {
        // A new prompt: results of the previous turn's calls will not come any more.
        doc.transcript.give_up_all();
    }
    doc.session.note_user_message(&content, true);
    doc.push(Message {
        role: "user".to_owned(),
        content,
        timestamp_ms: time,
        ..Message::default()
    });
}

/// An assistant message: text, thinking, tool calls, model and tokens.
fn assistant(message: &Map<String, Value>, doc: &mut DocumentBuilder) {
    // A message still streaming (`state.type = "streaming"`) is read like any other: as the
    // document's last message it is not published before the thread has settled
    // (`Document::publishable`), and if Amp died mid-stream what it wrote is kept.
    let mut text: Vec<&str> = plain_text(message).into_iter().collect();
    let mut thinking = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks(message) {
        match str_at(block, "type") {
            "text" => text.push(str_at(block, "text")),
            "thinking" => thinking.push(str_at(block, "thinking")),
            "tool_use" => tool_calls.push(tool_call(block)),
            // Encrypted reasoning is opaque; anything else is unknown here.
            other => doc.report.skipped(&format!("assistant/{other}")),
        }
    }
    text.retain(|t| !t.is_empty());
    thinking.retain(|t| !t.is_empty());
    if text.is_empty() && thinking.is_empty() && tool_calls.is_empty() {
        doc.report.skipped("assistant/no-content");
        return;
    }
    let usage = message.get("usage").and_then(Value::as_object);
    let time = usage
        .and_then(|usage| parse_rfc3339_ms(str_at(usage, "timestamp")))
        .or_else(|| message_time(message));
    if let Some(ms) = time {
        doc.session.note_time(ms);
    }
    doc.push(Message {
        role: "assistant".to_owned(),
        content: text.join("\n"),
        thinking: thinking.join("\n"),
        tool_calls,
        model: usage
            .map(|usage| str_at(usage, "model"))
            .unwrap_or_default()
            .to_owned(),
        usage: usage.map(usage_of).unwrap_or_default(),
        timestamp_ms: time,
        ..Message::default()
    });
}

/// An `info` message: what Amp itself adds to the thread. A `summary` (of the thread so far)
/// or text becomes a system message; other blocks are skipped.
fn info(message: &Map<String, Value>, doc: &mut DocumentBuilder) {
    let mut pieces: Vec<String> = plain_text(message).map(str::to_owned).into_iter().collect();
    for block in blocks(message) {
        match str_at(block, "type") {
            "text" => pieces.push(str_at(block, "text").to_owned()),
            "summary" => match block.get("summary") {
                Some(Value::Object(summary)) if str_at(summary, "type") == "thread" => {
                    pieces.push(format!("[summary in thread {}]", str_at(summary, "thread")));
                }
                Some(Value::Object(summary)) => {
                    pieces.push(str_at(summary, "summary").to_owned());
                }
                Some(Value::String(summary)) => pieces.push(summary.clone()),
                _ => doc.report.skipped("info/summary-without-text"),
            },
            other => doc.report.skipped(&format!("info/{other}")),
        }
    }
    pieces.retain(|piece| !piece.trim().is_empty());
    if pieces.is_empty() {
        doc.report.skipped("info/no-content");
        return;
    }
    let time = message_time(message);
    if let Some(ms) = time {
        doc.session.note_time(ms);
    }
    doc.push(Message {
        role: "system".to_owned(),
        content: pieces.join("\n"),
        system: true,
        timestamp_ms: time,
        ..Message::default()
    });
}

/// The message's content blocks that are objects.
fn blocks(message: &Map<String, Value>) -> Vec<&Map<String, Value>> {
    match message.get("content") {
        Some(Value::Array(blocks)) => blocks.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    }
}

/// A content that is a plain string (Amp writes blocks; a string is read as one text block).
fn plain_text(message: &Map<String, Value>) -> Option<&str> {
    message.get("content").and_then(Value::as_str)
}

/// `meta.sentAt`, in Unix milliseconds (or an RFC 3339 time).
fn message_time(message: &Map<String, Value>) -> Option<i64> {
    message
        .get("meta")
        .and_then(|meta| meta.get("sentAt"))
        .and_then(epoch_ms)
}

/// Unix milliseconds, as a positive number or an RFC 3339 string.
fn epoch_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().filter(|ms| *ms > 0),
        Value::String(text) => parse_rfc3339_ms(text),
        _ => None,
    }
}

fn tool_call(block: &Map<String, Value>) -> ToolCall {
    let name = str_at(block, "name");
    let category = category(name);
    let input = block.get("input");
    let file_path = match category {
        "read" | "edit" => input
            .and_then(Value::as_object)
            .and_then(|input| {
                ["path", "file_path"]
                    .iter()
                    .find_map(|key| input.get(*key).and_then(Value::as_str))
            })
            .unwrap_or_default(),
        _ => "",
    };
    ToolCall {
        id: str_at(block, "id").to_owned(),
        name: name.to_owned(),
        category: category.to_owned(),
        // Compact JSON with sorted keys: the same input always gives the same text.
        input: input.map(Value::to_string).unwrap_or_default(),
        file_path: file_path.to_owned(),
        ..ToolCall::default()
    }
}

/// Attaches a `tool_result` block to its call, once the run is over.
fn tool_result(block: &Map<String, Value>, doc: &mut DocumentBuilder) {
    let call_id = match str_at(block, "toolUseID") {
        "" => str_at(block, "tool_use_id"),
        id => id,
    };
    let outcome = match block.get("run") {
        Some(Value::Object(run)) => match run_outcome(run) {
            Some(outcome) => outcome,
            None => {
                // Still running (or waiting for the user's approval): the call keeps waiting.
                doc.report
                    .skipped(&format!("tool_result/{}", str_at(run, "status")));
                return;
            }
        },
        // Anthropic's own shape, `content` and `is_error`, as some readers expect.
        _ => {
            let (result, failed) = result_text(block.get("content"));
            ToolOutcome {
                result,
                is_error: failed || flag_at(block, "is_error"),
                subagent_session: String::new(),
            }
        }
    };
    if !doc.transcript.attach(call_id, outcome) {
        doc.report.orphan_tool_results += 1;
    }
}

/// What a finished run gave back; `None` while it is not finished.
fn run_outcome(run: &Map<String, Value>) -> Option<ToolOutcome> {
    let status = str_at(run, "status");
    let (result, is_error) = match status {
        "done" => result_text(run.get("result")),
        "error" | "cancelled" | "rejected-by-user" => {
            let mut text = error_text(run.get("error"));
            if text.is_empty() {
                text = result_text(run.get("result")).0;
            }
            if text.is_empty() {
                // The call failed without a word: its status is all there is to say.
                text = format!("[{status}]");
            }
            (text, true)
        }
        _ => return None,
    };
    Some(ToolOutcome {
        result,
        is_error,
        subagent_session: String::new(),
    })
}

/// A result's text, and whether it reports a failure. Amp's tools return a string, a list
/// (of file names, of matches), or an object: `{"output", "exitCode"}` from `Bash`, `{"content",
/// "absolutePath"}` from `Read`, `{"diff"}` from the edit tools; other objects are kept as JSON.
fn result_text(result: Option<&Value>) -> (String, bool) {
    match result {
        None | Some(Value::Null) => (String::new(), false),
        Some(Value::String(text)) => (text.clone(), false),
        Some(Value::Array(items)) => {
            let lines: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    Value::Object(block) if block.get("text").is_some_and(Value::is_string) => {
                        str_at(block, "text").to_owned()
                    }
                    Value::Object(block) if str_at(block, "type") == "image" => {
                        image_placeholder(block)
                    }
                    other => other.to_string(),
                })
                .collect();
            (lines.join("\n"), false)
        }
        Some(Value::Object(result)) => {
            let exit_code = result.get("exitCode").and_then(Value::as_i64);
            let text = ["output", "content", "diff"]
                .iter()
                .find_map(|key| result.get(*key).and_then(Value::as_str))
                .map_or_else(|| Value::Object(result.clone()).to_string(), str::to_owned);
            (text, exit_code.is_some_and(|code| code != 0))
        }
        Some(other) => (other.to_string(), false),
    }
}

/// A run's `error`: a string, or an object with a `message`.
fn error_text(error: Option<&Value>) -> String {
    match error {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Object(error)) if error.get("message").is_some_and(Value::is_string) => {
            str_at(error, "message").to_owned()
        }
        Some(other) => other.to_string(),
    }
}

/// What stands in for an image (its bytes do not belong in a transcript).
fn image_placeholder(block: &Map<String, Value>) -> String {
    let media = block
        .get("source")
        .and_then(Value::as_object)
        .map(|source| str_at(source, "media_type"))
        .unwrap_or_default();
    if media.is_empty() {
        "[image]".to_owned()
    } else {
        format!("[image: {media}]")
    }
}

/// Amp counts as Anthropic does: `inputTokens` without the cached tokens, which are counted
/// apart (`totalInputTokens` is their sum).
fn usage_of(usage: &Map<String, Value>) -> TokenUsage {
    let count = |key| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    TokenUsage {
        input: count("inputTokens"),
        cache_read: count("cacheReadInputTokens"),
        cache_creation: count("cacheCreationInputTokens"),
        output: count("outputTokens"),
        reasoning: 0,
    }
}

/// The local path a workspace tree's `file://` URI names (`file:///home/u/app` →
/// `/home/u/app`, `file:///c%3A/Users/u/app` → `c:/Users/u/app`); `None` for other URIs.
fn path_of_uri(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let path = percent_decode(rest);
    // A Windows drive (`/c:/...`) loses the slash before it.
    let bytes = path.as_bytes();
    if bytes.len() >= 3 && bytes[0] == b'/' && bytes[1].is_ascii_alphabetic() && bytes[2] == b':' {
        return Some(path[1..].to_owned());
    }
    (!path.is_empty()).then_some(path)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::agent::{HEAD_BYTES, Places, recognize};

    const MAIN: &str = "T-019a1c5e-7b21-7d4e-9f3a-2c8e4b1d6a70.json";
    const MID_TURN: &str = "T-019a1c71-3d0e-7f52-8b64-5e1a9c2f4d83.json";

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/amp")
    }

    fn parse_fixture(name: &str) -> Document {
        let path = fixtures().join(name);
        read(&path, &fs::read(&path).unwrap()).unwrap()
    }

    fn parse_text(name: &str, json: &str) -> Result<Document, String> {
        read(Path::new(name), json.as_bytes())
    }

    fn head(path: &Path) -> Vec<u8> {
        let mut bytes = fs::read(path).unwrap();
        bytes.truncate(HEAD_BYTES);
        bytes
    }

    #[test]
    fn a_thread_becomes_a_session() {
        let doc = parse_fixture(MAIN);
        let s = &doc.session;
        assert_eq!(
            s.native_id.as_str(),
            "T-019a1c5e-7b21-7d4e-9f3a-2c8e4b1d6a70"
        );
        assert_eq!((s.agent.as_str(), s.parser.as_str()), ("amp", "amp/1"));
        assert_eq!(s.cwd, "/home/dev/src/tally");
        assert_eq!(s.project, "tally");
        assert_eq!(s.git_branch, "main");
        assert_eq!(s.title, "Fix crash on empty CSV");
        assert_eq!(
            s.first_message,
            "tally crashes on an empty CSV file. Find out why and fix it."
        );
        assert_eq!(s.user_message_count, 3);
        // `created`, and the info message's `sentAt` (after every trace and usage time).
        assert_eq!(s.started_ms, Some(1_761_300_000_000));
        assert_eq!(s.ended_ms, Some(1_761_300_170_000));
        assert!(s.parent_session.is_empty() && s.relationship.is_empty());
        assert_eq!(doc.waiting, 0);
        assert!(doc.usage_events.is_empty());
    }

    #[test]
    fn messages_calls_and_results() {
        let doc = parse_fixture(MAIN);
        let roles: Vec<&str> = doc.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "assistant",
                "assistant",
                "assistant",
                "assistant",
                "user",
                "assistant",
                "assistant",
                "user",
                "assistant",
                "system"
            ]
        );
        let ordinals: Vec<u64> = doc.messages.iter().map(|m| m.ordinal).collect();
        assert_eq!(ordinals, (0..12).collect::<Vec<u64>>());

        let first = &doc.messages[0];
        assert_eq!(first.timestamp_ms, Some(1_761_300_005_000));
        assert!(!first.system);

        let reply = &doc.messages[1];
        assert_eq!(reply.content, "Let me look at the CSV parser first.");
        assert!(
            reply
                .thinking
                .starts_with("An empty file has no header row.")
        );
        assert_eq!(reply.model, "claude-sonnet-4-5-20250929");
        assert_eq!(reply.timestamp_ms, Some(1_761_300_012_400));
        assert_eq!(
            reply.usage,
            TokenUsage {
                input: 12,
                cache_read: 9600,
                cache_creation: 4800,
                output: 210,
                reasoning: 0,
            }
        );
        let [read_call, grep] = &reply.tool_calls[..] else {
            panic!("two calls: {:?}", reply.tool_calls);
        };
        assert_eq!(read_call.id, "toolu_01AmpRead0000000000000001");
        assert_eq!(read_call.name, "Read");
        assert_eq!(read_call.category, "read");
        assert_eq!(read_call.file_path, "/home/dev/src/tally/src/parse.rs");
        assert_eq!(
            read_call.input,
            r#"{"path":"/home/dev/src/tally/src/parse.rs"}"#
        );
        assert!(read_call.result.starts_with("1: use std::io::Read;"));
        assert!(!read_call.is_error);
        assert_eq!(
            (grep.category.as_str(), grep.file_path.as_str()),
            ("search", "")
        );
        assert_eq!(
            grep.result,
            "/home/dev/src/tally/src/parse.rs:14:    let header = rows.next().unwrap();"
        );

        let edit = &doc.messages[2].tool_calls[0];
        assert_eq!(
            (edit.name.as_str(), edit.category.as_str()),
            ("edit_file", "edit")
        );
        assert_eq!(edit.file_path, "/home/dev/src/tally/src/parse.rs");
        assert!(edit.result.starts_with("```diff"));

        let failed = &doc.messages[3].tool_calls[0];
        assert_eq!(
            (failed.name.as_str(), failed.category.as_str()),
            ("Bash", "shell")
        );
        assert_eq!(
            failed.input,
            r#"{"cmd":"cargo test","cwd":"/home/dev/src/tally"}"#
        );
        assert!(failed.is_error, "exit code 101");
        assert!(failed.result.starts_with("error[E0599]"));
        assert!(doc.messages[3].content.is_empty());
        let passed = &doc.messages[4].tool_calls[0];
        assert!(!passed.is_error);
        assert!(passed.result.contains("12 passed"));

        let glob = &doc.messages[7].tool_calls[0];
        assert_eq!(
            (glob.category.as_str(), glob.result.as_str()),
            ("search", "/home/dev/src/tally/README.md")
        );
        let rejected = &doc.messages[8].tool_calls[0];
        assert_eq!(rejected.file_path, "/home/dev/src/tally/README.md");
        assert!(rejected.is_error);
        assert_eq!(rejected.result, "[rejected-by-user]");

        let prompt = &doc.messages[9];
        assert_eq!(
            prompt.content,
            "Leave the README alone. Just summarise what you changed."
        );
        let summary = &doc.messages[11];
        assert!(summary.system);
        assert!(
            summary
                .content
                .starts_with("The user asked why tally crashed")
        );
        assert_eq!(summary.timestamp_ms, Some(1_761_300_170_000));
    }

    #[test]
    fn skipped_and_malformed_parts_are_reported() {
        let report = parse_fixture(MAIN).report;
        assert_eq!(report.sessions, 1);
        assert_eq!(report.messages, 12);
        assert_eq!(
            report.malformed_lines,
            [(11, "a message that is not a JSON object".to_owned())]
        );
        assert_eq!(
            report.skipped_records.into_iter().collect::<Vec<_>>(),
            [("assistant/redacted_thinking".to_owned(), 1)]
        );
        assert_eq!(report.orphan_tool_results, 0);
    }

    #[test]
    fn a_thread_caught_mid_turn_waits_for_its_call() {
        let doc = parse_fixture(MID_TURN);
        assert_eq!(doc.waiting, 1);
        assert_eq!(doc.messages.len(), 3);
        let s = &doc.session;
        assert_eq!(s.parent_session, "T-019a1c5e-7b21-7d4e-9f3a-2c8e4b1d6a70");
        assert_eq!(s.relationship, "handoff");
        assert_eq!(s.user_message_count, 1);
        let created = &doc.messages[1].tool_calls[0];
        assert_eq!(created.category, "edit");
        assert_eq!(
            created.file_path,
            "/home/dev/src/tally/tests/header_only.rs"
        );
        assert!(created.result.starts_with("Successfully created"));
        assert_eq!(doc.messages[1].usage.input, 3210);
        let running = &doc.messages[2].tool_calls[0];
        assert_eq!(running.name, "Bash");
        assert!(running.result.is_empty());
        assert_eq!(doc.report.skipped_records["tool_result/in-progress"], 1);
    }

    #[test]
    fn recognizes_threads_and_only_threads() {
        for name in [MAIN, MID_TURN] {
            let path = fixtures().join(name);
            assert!(recognizes(&path, &head(&path)), "{name}");
            assert_eq!(recognize(&path, &head(&path)).map(|a| a.name), Some(NAME));
        }
        let others = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for other in [
            others.join("claude-code/assistant/assistant.jsonl"),
            others.join("claude-code/user/user.jsonl"),
            others.join("codex/2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl"),
        ] {
            assert!(!recognizes(&other, &head(&other)), "{}", other.display());
        }
        // Neither do the other agents take a thread for theirs.
        let main = fixtures().join(MAIN);
        assert!(!(crate::claude::AGENT.recognizes)(&main, &head(&main)));
        assert!(!(crate::codex::AGENT.recognizes)(&main, &head(&main)));
        // A one-line thread too.
        let compact = br#"{"v":1,"id":"T-1a2b","created":1,"messages":[]}"#;
        assert!(recognizes(Path::new("T-1a2b.json"), compact));
        assert!(!(crate::claude::AGENT.recognizes)(
            Path::new("T-1a2b.json"),
            compact
        ));
        assert!(!recognizes(
            Path::new("T-1a2b.json"),
            b"{\"id\":\"x\",\"messages\":[]}"
        ));
        assert!(!recognizes(
            Path::new("settings.json"),
            b"{\"amp.url\":\"T-\"}"
        ));
        assert!(!recognizes(Path::new("T-1a2b.jsonl"), compact));
    }

    #[test]
    fn discover_finds_threads_under_a_root() {
        let root = std::env::temp_dir().join(format!("agentsync-amp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let copies = [
            ("threads", MAIN),
            ("threads", MID_TURN),
            ("other-machine/threads", MAIN),
        ];
        for (folder, name) in copies {
            fs::create_dir_all(root.join(folder)).unwrap();
            fs::copy(fixtures().join(name), root.join(folder).join(name)).unwrap();
        }
        for stray in [
            "threads/counts.json",
            "threads/T-.json",
            "threads/notes.txt",
        ] {
            fs::write(root.join(stray), "{}").unwrap();
        }
        let found: Vec<String> = (AGENT.discover)(&root)
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(
            found,
            [
                format!("other-machine/threads/{MAIN}"),
                format!("threads/{MAIN}"),
                format!("threads/{MID_TURN}"),
            ]
        );
        assert!((AGENT.discover)(&root.join("missing")).unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();

        let found = (AGENT.discover)(&fixtures()).unwrap();
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn default_root_is_the_xdg_data_folder_on_every_os() {
        let places = Places::under(Path::new("/home/u"), None, None, None);
        assert_eq!(
            (AGENT.default_roots)(&places),
            [PathBuf::from("/home/u/.local/share/amp/threads")]
        );
        let places = Places::under(Path::new("/home/u"), Some("/data".into()), None, None);
        assert_eq!(
            (AGENT.default_roots)(&places),
            [PathBuf::from("/data/amp/threads")]
        );
    }

    #[test]
    fn what_is_no_thread_is_an_error_and_nothing_panics() {
        let bytes = fs::read(fixtures().join(MAIN)).unwrap();
        for cut in (0..bytes.len()).step_by(37) {
            // Truncated JSON is no thread; it must never panic.
            assert!(read(Path::new(MAIN), &bytes[..cut]).is_err(), "{cut}");
        }
        assert!(parse_text(MAIN, "[1, 2]").is_err());
        assert!(parse_text(MAIN, "\u{0}\u{1}garbage").is_err());
        assert!(parse_text("x.json", r#"{"id":"not-a-thread","messages":[]}"#).is_err());
        assert!(parse_text(MAIN, r#"{"id":"T-1","messages":{"a":1}}"#).is_err());
        // The file name names the thread when the document does not.
        let doc = parse_text("T-from-name.json", r#"{"messages":[]}"#).unwrap();
        assert_eq!(doc.session.native_id.as_str(), "T-from-name");
        assert!(doc.messages.is_empty());
        // Odd shapes inside a thread are reported or skipped, never fatal.
        let doc = parse_text(
            MAIN,
            r#"{"id":"T-1","created":"soon","title":7,"env":{"initial":{"trees":[{"uri":5}]}},
               "relationships":[{"type":"fork"}, 3],"meta":{"traces":[{"endTime":1}]},
               "messages":[{"role":"user","content":"plain"},{"content":[]},{"role":"user","content":[]},
               {"role":"assistant","content":[{"type":"tool_use"}],"usage":{"inputTokens":-4}},
               {"role":"user","content":[{"type":"tool_result","toolUseID":"gone","run":{"status":"done","result":{"x":1}}}]},
               {"role":"tool"}]}"#,
        )
        .unwrap();
        assert_eq!(doc.report.malformed_lines.len(), 1);
        assert_eq!(doc.report.orphan_tool_results, 1);
        assert_eq!(doc.report.skipped_records["user/no-content"], 1);
        assert_eq!(doc.report.skipped_records["role/tool"], 1);
        assert_eq!(
            doc.messages.len(),
            2,
            "the call without an id waits for nothing"
        );
        assert_eq!(doc.messages[0].content, "plain");
        assert_eq!(doc.waiting, 0);
    }

    #[test]
    fn a_new_prompt_gives_up_on_unanswered_calls() {
        let doc = parse_text(
            "T-2.json",
            r#"{"id":"T-2","messages":[
              {"role":"user","content":[{"type":"text","text":"run it"}]},
              {"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"Bash","input":{"cmd":"sleep 99"}}]},
              {"role":"user","content":[{"type":"text","text":"never mind"}]},
              {"role":"user","content":[{"type":"tool_result","toolUseID":"c1","run":{"status":"cancelled","error":{"message":"interrupted"}}}]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(doc.waiting, 0);
        assert_eq!(doc.messages.len(), 3);
        let call = &doc.messages[1].tool_calls[0];
        assert!(call.is_error);
        assert_eq!(
            call.result, "interrupted",
            "a result after giving up still attaches"
        );
    }

    #[test]
    fn a_message_still_streaming_at_the_end_is_held_until_the_thread_settles() {
        let thread = |state: &str, after: &str| {
            format!(
                r#"{{"id":"T-3","messages":[
                  {{"role":"user","content":[{{"type":"text","text":"hi"}}]}},
                  {{"role":"assistant","content":[{{"type":"text","text":"Hel"}}],"state":{{"type":"{state}"}}}}{after}
                ]}}"#
            )
        };
        let doc = parse_text("T-3.json", &thread("streaming", "")).unwrap();
        assert_eq!(
            doc.messages.len(),
            2,
            "kept: if Amp died mid-stream, this is all there is"
        );
        assert_eq!(
            doc.publishable(false),
            1,
            "the last message waits while the thread is live"
        );
        assert_eq!(doc.publishable(true), 2);
        let doc = parse_text("T-3.json", &thread("complete", "")).unwrap();
        assert_eq!(doc.messages.len(), 2);
        let later = r#",{"role":"user","content":[{"type":"text","text":"again"}]}"#;
        let doc = parse_text("T-3.json", &thread("streaming", later)).unwrap();
        assert_eq!(
            doc.messages[1].content, "Hel",
            "not the last message: kept as it is"
        );
    }

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(
            path_of_uri("file:///home/u/my%20app").as_deref(),
            Some("/home/u/my app")
        );
        assert_eq!(
            path_of_uri("file:///c%3A/Users/u/app").as_deref(),
            Some("c:/Users/u/app")
        );
        assert_eq!(
            path_of_uri("file://localhost/srv/x").as_deref(),
            Some("/srv/x")
        );
        assert_eq!(path_of_uri("https://github.com/x"), None);
        assert_eq!(path_of_uri("file://"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
