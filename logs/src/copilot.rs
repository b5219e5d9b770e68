//! GitHub Copilot CLI session logs: `~/.copilot/session-state/<session-id>/events.jsonl`
//! (since 0.0.342, October 2025, flat `session-state/<session-id>.jsonl` in its first
//! versions). The session folder also holds `workspace.yaml` (the title as `summary`),
//! checkpoints and plans, which are not read.
//!
//! Each line is one event `{"type", "data", "id", "parentId", "timestamp"}`, with `agentId`
//! on the events of a subagent (which run in the same log). `session.start` names the session
//! (`sessionId`, `context.cwd`, `copilotVersion`); `user.message` and `assistant.message` are
//! the conversation, an assistant message carrying its tool calls as `toolRequests`;
//! `tool.execution_complete` carries a call's result by `toolCallId`; `assistant.reasoning`
//! the model's thinking; `session.model_change` the model; `session.compaction_complete` a
//! compaction's summary. Transient events (streaming deltas, `assistant.usage`, ...) are never
//! written to the file. The legacy JSON documents of `~/.copilot/history-session-state` (before
//! 0.0.342, migrated by the CLI when resumed) are not read.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use agentsync_core::{Message, TokenUsage, ToolCall};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::agent::{Agent, LineFormat, Reader, read_lines};
use super::discover::{entries, subdirectories};
use super::fit::native_id;
use super::session::{SessionDraft, TitleSource};
use super::transcript::ToolOutcome;
use super::{Format, Sink, flag_at, str_at, timestamp_at};

pub const NAME: &str = "copilot";
pub const PARSER: &str = "copilot/1";

/// Thinking texts remembered to drop a repeat: Copilot logs a model's reasoning both as an
/// `assistant.reasoning` event and as the `reasoningText` of its message.
const RECENT_THINKING: usize = 8;

pub type ResumeState = super::ResumeState<State>;
pub type Parsed = super::Parsed<State>;

/// What the Copilot CLI format remembers between events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The session id the path gives (the session folder, or the stem of a flat log): the
    /// session's id when the log does not open with a `session.start` of its own.
    file_id: String,
    /// Whether a first event has named the session.
    named: bool,
    /// The model selected last (`session.start`, `session.model_change`, a turn's model).
    model: String,
    /// Hashes of the last thinking texts kept (see [`RECENT_THINKING`]).
    recent_thinking: Vec<String>,
}

/// The session id a log's path gives: the folder of `<id>/events.jsonl`, the stem of
/// `<id>.jsonl`.
fn id_in_path(path: &Path) -> &str {
    fn name(p: Option<&Path>) -> Option<&str> {
        p.and_then(Path::file_name).and_then(OsStr::to_str)
    }
    if name(Some(path)) == Some(EVENTS) {
        return name(path.parent()).unwrap_or_default();
    }
    path.file_stem().and_then(OsStr::to_str).unwrap_or_default()
}

/// The state to parse the log at `path` from its start.
pub fn start(path: &Path) -> ResumeState {
    let state = State {
        file_id: id_in_path(path).to_owned(),
        ..State::default()
    };
    ResumeState::new(SessionDraft::new(NAME, PARSER), state)
}

/// Parses the log at `path` (read through `reader`) from where `resume` stopped, or from the
/// start.
pub fn parse_from<R: Read + Seek>(
    path: &Path,
    reader: R,
    resume: Option<ResumeState>,
) -> io::Result<Parsed> {
    let state = resume.unwrap_or_else(|| start(path));
    super::parse_lines(reader, state)
}

pub fn parse_file(path: &Path) -> io::Result<Parsed> {
    parse_from(path, File::open(path)?, None)
}

/// `~/.copilot/session-state` on every OS (`%USERPROFILE%\.copilot` on Windows). The CLI
/// moves it to `$COPILOT_HOME/session-state` when `COPILOT_HOME` is set (and `--config-dir`
/// did, before it was deprecated); `Places` does not carry that variable, so such a folder is
/// read with `--from`. Versions up to early 2026 put it under `$XDG_STATE_HOME/.copilot` when
/// that was set; later versions move it back to `~/.copilot` at startup.
fn default_roots(places: &super::agent::Places) -> Vec<PathBuf> {
    vec![places.home.join(".copilot").join("session-state")]
}

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "GitHub Copilot CLI",
    default_roots,
    discover,
    recognizes,
    reader: Reader::Lines(read_lines::<State>),
};

impl LineFormat for State {
    fn start(path: &Path) -> io::Result<ResumeState> {
        Ok(start(path))
    }
}

/// The folder sessions live in, by name.
const SESSION_STATE: &str = "session-state";
/// The log in a session folder.
const EVENTS: &str = "events.jsonl";

/// Every log under `root`, sorted: `<id>/events.jsonl` in a `session-state` folder, and the
/// flat `<id>.jsonl` of early versions (unless a folder of the same id holds the session now).
/// `root` may be `session-state` itself, `~/.copilot`, or a folder holding such folders (up
/// to 4 levels down). A missing folder has none.
pub fn discover(root: &Path) -> io::Result<Vec<PathBuf>> {
    const MAX_DEPTH: usize = 4;
    let mut logs = Vec::new();
    let mut folders = vec![(root.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        if folder.file_name().and_then(OsStr::to_str) == Some(SESSION_STATE) {
            logs.extend(session_state_logs(&folder)?);
            continue;
        }
        if depth < MAX_DEPTH {
            for sub in subdirectories(&folder)? {
                folders.push((sub, depth + 1));
            }
        }
    }
    logs.sort();
    Ok(logs)
}

/// The logs of one `session-state` folder.
fn session_state_logs(folder: &Path) -> io::Result<Vec<PathBuf>> {
    let mut logs = Vec::new();
    let mut flat = Vec::new();
    for entry in entries(folder)? {
        let path = entry.path();
        if path.is_dir() {
            let events = path.join(EVENTS);
            if events.is_file() {
                logs.push(events);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "jsonl") {
            flat.push(path);
        }
    }
    for path in flat {
        let migrated = path
            .file_stem()
            .is_some_and(|stem| folder.join(stem).join(EVENTS).is_file());
        if !migrated {
            logs.push(path);
        }
    }
    Ok(logs)
}

/// Event type prefixes of Copilot CLI's session events.
const EVENT_PREFIXES: [&str; 9] = [
    "session.",
    "user.",
    "assistant.",
    "tool.",
    "subagent.",
    "system.",
    "hook.",
    "skill.",
    "permission.",
];

/// Whether `record` has the shape of a Copilot CLI event: a dotted `type` of a known family
/// (or `abort`) and a `data` object.
fn is_event(record: &Map<String, Value>) -> bool {
    let kind = str_at(record, "type");
    let known = kind == "abort" || EVENT_PREFIXES.iter().any(|p| kind.starts_with(p));
    known && record.get("data").is_some_and(Value::is_object)
}

/// A file whose first line is a Copilot CLI event (`{"type": "session.start", "data": {...}}`
/// and the like); or an empty `events.jsonl` in a session folder (the CLI creates it before
/// the first event).
fn recognizes(path: &Path, head: &[u8]) -> bool {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    if first.iter().all(u8::is_ascii_whitespace) {
        let session_folder = path.parent();
        let in_session_state = session_folder
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|name| name == SESSION_STATE);
        return path.file_name().is_some_and(|name| name == EVENTS) && in_session_state;
    }
    matches!(serde_json::from_slice::<Value>(first), Ok(Value::Object(r)) if is_event(&r))
}

/// The coarse class of a Copilot CLI tool, for filtering.
pub fn category(tool: &str) -> &'static str {
    match tool {
        "bash" | "read_bash" | "write_bash" | "stop_bash" | "list_bash" | "powershell"
        | "read_powershell" | "write_powershell" | "stop_powershell" | "list_powershell"
        | "shell" => "shell",
        "view" | "show_file" => "read",
        "create" | "edit" | "str_replace_editor" | "apply_patch" => "edit",
        "grep" | "glob" | "rg" => "search",
        "task" | "read_agent" | "list_agents" | "write_agent" => "task",
        "web_fetch" | "web_search" => "web",
        _ => "other",
    }
}

/// The file a read or edit call names (`path` in its arguments).
fn file_path_of(tool: &str, arguments: Option<&Value>) -> String {
    if !matches!(category(tool), "read" | "edit") {
        return String::new();
    }
    arguments
        .and_then(|a| a.get("path"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_default()
}

impl Format for State {
    fn record(&mut self, record: &Map<String, Value>, sink: &mut Sink<'_>) -> Result<(), String> {
        let kind = str_at(record, "type");
        if kind.is_empty() {
            return Err("an event without a type".to_owned());
        }
        let Some(data) = record.get("data").and_then(Value::as_object) else {
            return Err(format!("a {kind:?} event without data"));
        };
        if !self.named {
            let own_id = match kind {
                "session.start" => native_id(str_at(data, "sessionId")),
                _ => None,
            };
            sink.session.native_id = own_id.or_else(|| native_id(&self.file_id));
            // Named once an id is found: a log whose path names nothing waits for a
            // `session.start` instead of staying unnamed for good.
            self.named = sink.session.native_id.is_some();
        }
        if flag_at(record, "ephemeral") {
            // Never written to disk by the CLI; a log that has one anyway repeats nothing new.
            sink.report.skipped(&format!("{kind}/ephemeral"));
            return Ok(());
        }
        let time = timestamp_at(record, "timestamp");
        if let Some(ms) = time {
            sink.session.note_time(ms);
        }
        let event = Event {
            record,
            data,
            time,
            // A subagent's events carry its `agentId` (older versions: `parentToolCallId`).
            sidechain: !str_at(record, "agentId").is_empty()
                || !str_at(data, "parentToolCallId").is_empty(),
        };
        match kind {
            "session.start" => self.session_start(data, sink),
            "session.resume" => note_context(data, sink),
            "session.model_change" => self.note_model(str_at(data, "newModel")),
            "assistant.turn_start" if !str_at(data, "model").is_empty() => {
                self.note_model(str_at(data, "model"));
            }
            "session.title_changed" => sink
                .session
                .note_title(str_at(data, "title"), TitleSource::Generated),
            "user.message" => self.user_message(&event, sink),
            "assistant.message" => self.assistant_message(&event, sink),
            "assistant.reasoning" => self.reasoning(&event, sink),
            "tool.execution_complete" => tool_complete(data, sink),
            "abort" => sink.transcript.give_up_all(),
            "session.compaction_complete" => compaction(&event, sink),
            "session.error" => notice(&event, "message", sink),
            "system.notification" => notice(&event, "content", sink),
            // tool.execution_start repeats the assistant's tool request; the rest is the
            // CLI's bookkeeping (turns, hooks, permissions, subagent lifecycle, metrics).
            other => sink.report.skipped(other),
        }
        Ok(())
    }
}

/// One event being read.
struct Event<'a> {
    record: &'a Map<String, Value>,
    data: &'a Map<String, Value>,
    time: Option<i64>,
    sidechain: bool,
}

impl Event<'_> {
    /// A message with the event's time, ids and side.
    fn message(&self, role: &str) -> Message {
        Message {
            role: role.to_owned(),
            timestamp_ms: self.time,
            source_uuid: str_at(self.record, "id").to_owned(),
            parent_uuid: str_at(self.record, "parentId").to_owned(),
            sidechain: self.sidechain,
            ..Message::default()
        }
    }
}

/// The working directory and branch of a `session.start` or `session.resume`.
fn note_context(data: &Map<String, Value>, sink: &mut Sink<'_>) {
    if let Some(context) = data.get("context").and_then(Value::as_object) {
        sink.session.note_cwd(str_at(context, "cwd"));
        sink.session.note_git_branch(str_at(context, "branch"));
    }
}

impl State {
    fn note_model(&mut self, model: &str) {
        if !model.is_empty() {
            model.clone_into(&mut self.model);
        }
    }

    fn session_start(&mut self, data: &Map<String, Value>, sink: &mut Sink<'_>) {
        note_context(data, sink);
        sink.session
            .note_agent_version(str_at(data, "copilotVersion"));
        if let Some(ms) = timestamp_at(data, "startTime") {
            sink.session.note_time(ms);
        }
        self.note_model(str_at(data, "selectedModel"));
        // A detached run that continues another session's context.
        if let Some(parent) = native_id(str_at(data, "detachedFromSpawningParentSessionId")) {
            sink.session.set_parent(&parent, "continuation");
        }
    }

    fn user_message(&mut self, event: &Event<'_>, sink: &mut Sink<'_>) {
        let data = event.data;
        let mut content = str_at(data, "content").to_owned();
        for label in attachment_labels(data) {
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(&label);
        }
        if content.trim().is_empty() {
            sink.report.skipped("user.message/empty");
            return;
        }
        // Not typed by the user: a subagent's prompt, autopilot's "continue", a skill or
        // another agent injecting text (`source` `skill-*`, `agent-*`).
        let source = str_at(data, "source");
        let generated = event.sidechain
            || flag_at(data, "isAutopilotContinuation")
            || source.starts_with("skill-")
            || source.starts_with("agent-");
        let mut message = event.message("user");
        if generated {
            message.system = true;
        } else {
            // A new prompt: the previous turn's calls will not get results any more. A prompt
            // steered into a running turn leaves that turn's calls running.
            if str_at(data, "delivery") != "steering" {
                sink.transcript.give_up_all();
            }
            sink.session
                .note_user_message(str_at(data, "content"), true);
        }
        message.content = content;
        sink.transcript.push(message);
    }

    fn assistant_message(&mut self, event: &Event<'_>, sink: &mut Sink<'_>) {
        let data = event.data;
        let content = str_at(data, "content").to_owned();
        let thinking = self.new_thinking(str_at(data, "reasoningText"));
        let tool_calls: Vec<ToolCall> = match data.get("toolRequests") {
            Some(Value::Array(requests)) => requests
                .iter()
                .filter_map(Value::as_object)
                .filter_map(tool_call)
                .collect(),
            _ => Vec::new(),
        };
        if content.trim().is_empty() && thinking.is_empty() && tool_calls.is_empty() {
            sink.report.skipped("assistant.message/empty");
            return;
        }
        let model = match str_at(data, "model") {
            "" => self.model.clone(),
            model => model.to_owned(),
        };
        let output = data
            .get("outputTokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let mut message = event.message("assistant");
        message.content = content;
        message.thinking = thinking;
        message.tool_calls = tool_calls;
        message.model = model;
        message.usage = TokenUsage {
            output,
            ..TokenUsage::default()
        };
        message.api_message_id = str_at(data, "apiCallId").to_owned();
        message.request_id = str_at(data, "requestId").to_owned();
        sink.transcript.push(message);
    }

    fn reasoning(&mut self, event: &Event<'_>, sink: &mut Sink<'_>) {
        let text = str_at(event.data, "content");
        if text.trim().is_empty() {
            sink.report.skipped("assistant.reasoning/empty");
            return;
        }
        let thinking = self.new_thinking(text);
        if thinking.is_empty() {
            sink.report.skipped("assistant.reasoning/repeated");
            return;
        }
        let mut message = event.message("assistant");
        message.thinking = thinking;
        message.model = self.model.clone();
        sink.transcript.push(message);
    }

    /// `text` unless it is empty or one of the last thinking texts kept.
    fn new_thinking(&mut self, text: &str) -> String {
        if text.trim().is_empty() {
            return String::new();
        }
        let hash = blake3::hash(text.as_bytes()).to_hex()[..32].to_owned();
        if self.recent_thinking.contains(&hash) {
            return String::new();
        }
        if self.recent_thinking.len() >= RECENT_THINKING {
            self.recent_thinking.remove(0);
        }
        self.recent_thinking.push(hash);
        text.to_owned()
    }
}

/// A tool request of an assistant message. `arguments` is an object (a JSON string in some
/// versions), kept as JSON text.
fn tool_call(request: &Map<String, Value>) -> Option<ToolCall> {
    let name = str_at(request, "name");
    if name.is_empty() {
        return None;
    }
    let arguments = request.get("arguments");
    let parsed;
    let (input, fields) = match arguments {
        Some(Value::String(text)) => {
            parsed = serde_json::from_str::<Value>(text).ok();
            (text.clone(), parsed.as_ref())
        }
        Some(Value::Null) | None => (String::new(), None),
        Some(other) => (other.to_string(), Some(other)),
    };
    Some(ToolCall {
        id: str_at(request, "toolCallId").to_owned(),
        name: name.to_owned(),
        category: category(name).to_owned(),
        file_path: file_path_of(name, fields),
        input,
        ..ToolCall::default()
    })
}

/// `[file: /path]`-like lines for what a prompt attached (files, folders, selections, GitHub
/// references): their names, never their content.
fn attachment_labels(data: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(attachments)) = data.get("attachments") else {
        return Vec::new();
    };
    attachments
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|a| {
            let label = ["path", "displayName", "url", "filePath"]
                .iter()
                .map(|key| str_at(a, key))
                .find(|s| !s.is_empty())?;
            let kind = match str_at(a, "type") {
                "" => "attachment",
                kind => kind,
            };
            Some(format!("[{kind}: {label}]"))
        })
        .collect()
}

/// A `tool.execution_complete`: the result of the call with its `toolCallId`.
fn tool_complete(data: &Map<String, Value>, sink: &mut Sink<'_>) {
    let call_id = str_at(data, "toolCallId");
    if call_id.is_empty() {
        sink.report.skipped("tool.execution_complete/without-id");
        return;
    }
    let outcome = tool_outcome(data);
    if !sink.transcript.attach(call_id, outcome) {
        if flag_at(data, "isUserRequested") {
            // A tool the user ran (`tool.user_requested`): no assistant call to attach to.
            sink.report
                .skipped("tool.execution_complete/user-requested");
        } else {
            sink.report.orphan_tool_results += 1;
        }
    }
}

/// A call's result and whether it failed. `result` is `{content, detailedContent}` (a plain
/// string in some versions); a failed call has `success: false` and `error.message`. A shell
/// command's result ends with `<exited with exit code N>`: not 0 is a failure too.
fn tool_outcome(data: &Map<String, Value>) -> ToolOutcome {
    let mut result = match data.get("result") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Object(result)) => {
            let content = str_at(result, "content");
            if content.is_empty() {
                str_at(result, "detailedContent").to_owned()
            } else {
                content.to_owned()
            }
        }
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let error = match data.get("error") {
        Some(Value::Object(error)) => str_at(error, "message"),
        Some(Value::String(message)) => message.as_str(),
        _ => "",
    };
    if result.is_empty() {
        result = error.to_owned();
    }
    let failed = data.get("success").and_then(Value::as_bool) == Some(false)
        || !error.is_empty()
        || exit_code(&result).is_some_and(|code| code != 0);
    ToolOutcome {
        result,
        is_error: failed,
        subagent_session: String::new(),
    }
}

/// The exit code a shell result ends with (`<exited with exit code N>`).
fn exit_code(result: &str) -> Option<i64> {
    let last = result.trim_end().lines().last()?;
    last.trim()
        .strip_prefix("<exited with exit code ")?
        .strip_suffix('>')?
        .trim()
        .parse()
        .ok()
}

/// A successful compaction: its summary, as a compaction boundary.
fn compaction(event: &Event<'_>, sink: &mut Sink<'_>) {
    let summary = str_at(event.data, "summaryContent");
    if event.data.get("success").and_then(Value::as_bool) == Some(false) || summary.is_empty() {
        sink.report
            .skipped("session.compaction_complete/without-summary");
        return;
    }
    let mut message = event.message("system");
    message.content = summary.to_owned();
    message.system = true;
    message.compact_boundary = true;
    sink.transcript.push(message);
}

/// A notice the CLI showed (an error, a background task's notification): a system message.
fn notice(event: &Event<'_>, key: &str, sink: &mut Sink<'_>) {
    let text = str_at(event.data, key);
    if text.trim().is_empty() {
        sink.report
            .skipped(&format!("{}/empty", str_at(event.record, "type")));
        return;
    }
    let mut message = event.message("system");
    message.content = text.to_owned();
    message.system = true;
    sink.transcript.push(message);
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Cursor;

    use agentsync_core::Session;
    use agentsync_core::timestamp::parse_rfc3339_ms;

    use super::*;
    use crate::ParseReport;

    const MAIN: &str = "session-state/4f7c2a1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b/events.jsonl";
    const MID_TURN: &str = "session-state/b8e1d2c3-5a4f-4b6e-9c7d-2e3f4a5b6c7d/events.jsonl";
    const FLAT: &str = "session-state/0d9e8f7a-6b5c-4d3e-a2f1-0e9d8c7b6a59.jsonl";

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    fn fixture(relative: &str) -> PathBuf {
        fixtures().join("copilot").join(relative)
    }

    /// Everything a log gives once its session is over.
    #[derive(Debug, PartialEq)]
    struct Whole {
        messages: Vec<Message>,
        session: Option<Session>,
        report: ParseReport,
        /// Messages still held after the last pass, before the session is finished.
        held: usize,
    }

    /// Parses `bytes` in passes that stop at each of `cuts`, the state going through JSON
    /// between passes as a host keeps it, then finishes the session.
    fn parse_in_passes(path: &Path, bytes: &[u8], cuts: &[usize]) -> Whole {
        let mut messages: Vec<Message> = Vec::new();
        let mut report = ParseReport::default();
        let mut state: Option<ResumeState> = None;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let parsed = parse_from(path, Cursor::new(&bytes[..cut]), state.take()).unwrap();
            messages.extend(parsed.messages);
            for late in &parsed.late_results {
                if let Some(m) = messages.iter_mut().find(|m| m.ordinal == late.ordinal) {
                    late.apply_to(m);
                }
            }
            report.merge(parsed.report);
            let kept = serde_json::to_string(&parsed.state).unwrap();
            state = Some(serde_json::from_str(&kept).unwrap());
        }
        let mut state = state.unwrap();
        let held = state.held_messages();
        messages.extend(state.finish());
        report.sessions = 0;
        report.messages = 0;
        Whole {
            messages,
            session: state.session(),
            report,
            held,
        }
    }

    fn parse_whole(relative: &str) -> Whole {
        let path = fixture(relative);
        parse_in_passes(&path, &fs::read(&path).unwrap(), &[])
    }

    fn parse_lines_of(path: &str, lines: &[&str]) -> Whole {
        let mut log = lines.join("\n");
        log.push('\n');
        parse_in_passes(Path::new(path), log.as_bytes(), &[])
    }

    fn time(text: &str) -> Option<i64> {
        parse_rfc3339_ms(text)
    }

    #[test]
    fn the_main_session() {
        let whole = parse_whole(MAIN);
        let session = whole.session.unwrap();
        assert_eq!(
            session.native_id.as_str(),
            "4f7c2a1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b"
        );
        assert_eq!(
            (session.agent.as_str(), session.parser.as_str()),
            (NAME, PARSER)
        );
        assert_eq!(session.cwd, "/home/dev/src/inkwell");
        assert_eq!(session.project, "inkwell");
        assert_eq!(session.git_branch, "fix-empty-render");
        assert_eq!(session.started_ms, time("2026-03-02T09:14:05.000Z"));
        assert_eq!(session.ended_ms, time("2026-03-02T09:14:57.620Z"));
        assert_eq!(
            session.first_message,
            "Why does `inkwell render` crash on empty files?"
        );
        assert_eq!(session.user_message_count, 3);
        assert_eq!(session.title, "");
        assert_eq!(session.parent_session, "");
        assert_eq!(whole.held, 0);
        assert_eq!(whole.report.orphan_tool_results, 0);
        let ordinals: Vec<u64> = whole.messages.iter().map(|m| m.ordinal).collect();
        assert_eq!(ordinals, (0..17).collect::<Vec<u64>>());
    }

    #[test]
    fn messages_of_the_main_session() {
        let whole = parse_whole(MAIN);
        let m = &whole.messages;
        let shape: Vec<(&str, bool, bool, usize)> = m
            .iter()
            .map(|m| (m.role.as_str(), m.system, m.sidechain, m.tool_calls.len()))
            .collect();
        assert_eq!(
            shape,
            [
                ("user", false, false, 0),
                ("assistant", false, false, 0),
                ("assistant", false, false, 2),
                ("assistant", false, false, 1),
                ("assistant", false, false, 1),
                ("assistant", false, false, 1),
                ("assistant", false, false, 1),
                ("assistant", false, false, 0),
                ("user", false, false, 0),
                ("assistant", false, false, 3),
                ("assistant", false, true, 1),
                ("assistant", false, true, 0),
                ("system", true, false, 0),
                ("assistant", false, false, 0),
                ("system", true, false, 0),
                ("user", false, false, 0),
                ("assistant", false, false, 0),
            ]
        );

        // The prompt as displayed, not the transformed text sent to the model.
        assert_eq!(
            m[0].content,
            "Why does `inkwell render` crash on empty files?"
        );
        assert_eq!(m[0].source_uuid, "ev-0004");
        assert_eq!(m[0].parent_uuid, "ev-0003");
        assert_eq!(m[0].timestamp_ms, time("2026-03-02T09:14:08.870Z"));

        // Thinking logged twice (event and `reasoningText`) is kept once.
        assert!(m[1].thinking.starts_with("The user reports a crash"));
        assert_eq!(m[1].model, "claude-sonnet-4.5");
        assert_eq!(m[2].thinking, "");
        assert_eq!(m[2].content, "");
        assert_eq!(m[2].usage.output, 182);
        assert_eq!(m[2].usage.input, 0);
        assert_eq!(m[2].api_message_id, "msg_vrtx_01");
        assert_eq!(m[2].request_id, "req-01");

        let intent = &m[2].tool_calls[0];
        assert_eq!(
            (
                intent.id.as_str(),
                intent.name.as_str(),
                intent.category.as_str()
            ),
            ("toolu_01A", "report_intent", "other")
        );
        assert_eq!(intent.input, r#"{"intent":"Investigating crash"}"#);
        assert_eq!(intent.result, "Intent logged");
        let view = &m[2].tool_calls[1];
        assert_eq!(
            (view.name.as_str(), view.category.as_str()),
            ("view", "read")
        );
        assert_eq!(view.file_path, "/home/dev/src/inkwell/src/render.rs");
        assert!(view.result.starts_with("1. use std::fs;"));
        assert!(!view.is_error);

        let bash = &m[3].tool_calls[0];
        assert_eq!(
            (bash.name.as_str(), bash.category.as_str()),
            ("bash", "shell")
        );
        assert!(
            bash.input
                .contains(r#""command":"cargo run -q -- render tests/empty.ink""#)
        );
        assert!(bash.result.ends_with("<exited with exit code 101>"));
        assert!(bash.is_error, "a command that exits with 101 failed");
        assert_eq!(bash.file_path, "");

        assert_eq!(
            m[4].content,
            "The crash comes from `lines[0]` on an empty file. I'll guard it."
        );
        let failed = &m[4].tool_calls[0];
        assert_eq!(
            (failed.name.as_str(), failed.category.as_str()),
            ("edit", "edit")
        );
        assert!(failed.is_error);
        assert_eq!(
            failed.result,
            "No match found for old_str in /home/dev/src/inkwell/src/render.rs"
        );

        let grep = &m[5].tool_calls[0];
        assert_eq!(grep.category, "search");
        assert_eq!(grep.result, "src/render.rs:5:    let first = lines[0];");
        // The model-facing `content`, not the UI's `detailedContent`.
        assert_eq!(
            m[6].tool_calls[0].result,
            "File /home/dev/src/inkwell/src/render.rs updated with changes."
        );
        assert_eq!(m[7].usage.output, 31);

        assert_eq!(
            m[8].content,
            "Add a regression test too, and check whether the docs mention empty files.\n\
             [file: /home/dev/src/inkwell/tests/render.rs]"
        );
        let categories: Vec<&str> = m[9]
            .tool_calls
            .iter()
            .map(|c| c.category.as_str())
            .collect();
        assert_eq!(categories, ["edit", "web", "task"]);
        assert_eq!(
            m[9].tool_calls[0].file_path,
            "/home/dev/src/inkwell/tests/empty_input.rs"
        );
        assert!(m[9].tool_calls[2].result.starts_with("Only docs/render.md"));

        // The subagent's messages, in the same log.
        assert_eq!(m[10].model, "claude-haiku-4.5");
        assert_eq!(m[10].tool_calls[0].category, "search");
        assert_eq!(m[10].tool_calls[0].result, "docs/render.md\ndocs/index.md");

        assert!(m[12].compact_boundary);
        assert!(m[12].content.starts_with("<overview>Fixed a crash"));
        assert_eq!(
            m[14].content,
            "Rate limit reached: try again in 30 seconds."
        );
        assert!(!m[14].compact_boundary);
        assert_eq!(
            (m[15].content.as_str(), m[16].content.as_str()),
            ("ok, thanks", "You're welcome!")
        );
    }

    #[test]
    fn skipped_and_malformed_events_are_reported() {
        let report = parse_whole(MAIN).report;
        let skipped: Vec<(&str, u64)> = report
            .skipped_records
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            skipped,
            [
                ("assistant.turn_end", 2),
                ("assistant.turn_start", 1),
                ("session.compaction_start", 1),
                ("session.info", 1),
                ("session.mystery_event", 1),
                ("session.shutdown", 1),
                ("subagent.completed", 1),
                ("subagent.started", 1),
                ("tool.execution_start", 4),
            ]
        );
        let [(line, reason)] = report.malformed_lines.as_slice() else {
            panic!("one malformed line: {:?}", report.malformed_lines)
        };
        assert_eq!(*line, 18);
        assert!(reason.starts_with("invalid JSON"), "{reason}");
    }

    #[test]
    fn categories() {
        for (tool, category) in [
            ("bash", "shell"),
            ("powershell", "shell"),
            ("read_bash", "shell"),
            ("view", "read"),
            ("create", "edit"),
            ("edit", "edit"),
            ("str_replace_editor", "edit"),
            ("apply_patch", "edit"),
            ("grep", "search"),
            ("glob", "search"),
            ("task", "task"),
            ("read_agent", "task"),
            ("web_fetch", "web"),
            ("report_intent", "other"),
            ("github-mcp-server-get_issue", "other"),
        ] {
            assert_eq!(super::category(tool), category, "{tool}");
        }
    }

    #[test]
    fn a_session_caught_mid_turn() {
        let path = fixture(MID_TURN);
        let parsed = parse_file(&path).unwrap();
        assert_eq!(parsed.messages.len(), 1, "the prompt is handed out");
        assert_eq!(
            parsed.state.held_messages(),
            1,
            "the call waits for its result"
        );

        let whole = parse_whole(MID_TURN);
        assert!(whole.held > 0);
        let [prompt, call] = whole.messages.as_slice() else {
            panic!("{:?}", whole.messages)
        };
        assert_eq!(prompt.content, "Run the test suite");
        let call = &call.tool_calls[0];
        assert_eq!(
            (call.id.as_str(), call.category.as_str()),
            ("toolu_M1", "shell")
        );
        assert_eq!(call.result, "");
        assert_eq!(whole.report.skipped_records["tool.execution_start"], 1);
    }

    #[test]
    fn the_flat_log_of_early_versions() {
        let whole = parse_whole(FLAT);
        let session = whole.session.unwrap();
        assert_eq!(
            session.native_id.as_str(),
            "0d9e8f7a-6b5c-4d3e-a2f1-0e9d8c7b6a59"
        );
        assert_eq!((session.cwd.as_str(), session.project.as_str()), ("", ""));
        assert_eq!(session.user_message_count, 1);
        let call = &whole.messages[1].tool_calls[0];
        // String arguments are kept as they are; a string result is the result.
        assert_eq!(call.input, r#"{"path":"config.json"}"#);
        assert_eq!(call.file_path, "config.json");
        assert_eq!(call.result, r#"{"key": "value"}"#);
        assert_eq!(whole.messages[1].model, "gpt-5");
        assert_eq!(
            whole.messages[2].content,
            "The config file maps `key` to `value`."
        );
    }

    /// Parsing in one pass equals parsing the first k lines, then the rest, for every k.
    #[test]
    fn resuming_after_any_line_gives_the_same_session() {
        for relative in [MAIN, MID_TURN, FLAT] {
            let path = fixture(relative);
            let bytes = fs::read(&path).unwrap();
            let one_pass = parse_in_passes(&path, &bytes, &[]);
            let line_ends = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1);
            for cut in std::iter::once(0).chain(line_ends) {
                let two_passes = parse_in_passes(&path, &bytes, &[cut]);
                assert_eq!(
                    two_passes.messages, one_pass.messages,
                    "{relative} cut at {cut}"
                );
                assert_eq!(
                    two_passes.session, one_pass.session,
                    "{relative} cut at {cut}"
                );
                assert_eq!(
                    two_passes.report, one_pass.report,
                    "{relative} cut at {cut}"
                );
            }
            // And mid-line, at every byte of a small log.
            if relative == FLAT {
                for cut in 0..bytes.len() {
                    let two_passes = parse_in_passes(&path, &bytes, &[cut]);
                    assert_eq!(two_passes.messages, one_pass.messages, "cut at byte {cut}");
                }
            }
        }
    }

    #[test]
    fn recognizes_its_own_logs_only() {
        let head = |path: &Path| {
            let mut bytes = fs::read(path).unwrap();
            bytes.truncate(crate::agent::HEAD_BYTES);
            bytes
        };
        for relative in [MAIN, MID_TURN, FLAT] {
            let path = fixture(relative);
            assert!(recognizes(&path, &head(&path)), "{relative}");
            assert_eq!(
                crate::agent::recognize(&path, &head(&path)).map(|a| a.name),
                Some(NAME),
                "{relative}"
            );
        }
        for other in [
            "claude-code/assistant/assistant.jsonl",
            "claude-code/user/user.jsonl",
            "codex/2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl",
            "codex/2025/05/07/rollout-2025-05-07T17-24-21-5973b6c0-94b8-487b-a530-2aeb6098ae0e.jsonl",
        ] {
            let path = fixtures().join(other);
            assert!(!recognizes(&path, &head(&path)), "{other}");
        }
        // An empty log in a session folder: the CLI creates it before its first event.
        let empty = Path::new("/h/.copilot/session-state/s1/events.jsonl");
        assert!(recognizes(empty, b""));
        assert!(!recognizes(Path::new("/h/notes/events.jsonl"), b""));
        assert!(!recognizes(
            Path::new("/h/x.jsonl"),
            br#"{"type":"message","data":{}}"#
        ));
        assert!(!recognizes(
            Path::new("/h/x.jsonl"),
            br#"{"type":"user.message"}"#
        ));
        assert!(!recognizes(Path::new("/h/x.jsonl"), b"\xff\xfe garbage"));
    }

    #[test]
    fn discover_finds_every_log_of_the_layout() {
        let root = std::env::temp_dir().join(format!("agentsync-copilot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let state = root.join(".copilot/session-state");
        for relative in [MAIN, MID_TURN, FLAT] {
            let to = root.join(".copilot").join(relative);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(fixture(relative), &to).unwrap();
        }
        // A flat log the CLI has since moved into a folder of its own, a session folder with
        // no log yet, the folder's other files, and another folder of `~/.copilot`.
        let moved = state.join("4f7c2a1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b.jsonl");
        fs::write(&moved, "").unwrap();
        fs::create_dir_all(state.join("c0ffee00-0000-4000-8000-000000000000/checkpoints")).unwrap();
        fs::write(
            state.join("4f7c2a1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b/workspace.yaml"),
            "",
        )
        .unwrap();
        fs::create_dir_all(root.join(".copilot/logs")).unwrap();
        fs::write(root.join(".copilot/logs/session-x.jsonl"), "").unwrap();

        let relative = |paths: Vec<PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| {
                    p.strip_prefix(&state)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/")
                })
                .collect()
        };
        let expected = [
            "0d9e8f7a-6b5c-4d3e-a2f1-0e9d8c7b6a59.jsonl",
            "4f7c2a1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b/events.jsonl",
            "b8e1d2c3-5a4f-4b6e-9c7d-2e3f4a5b6c7d/events.jsonl",
        ];
        assert_eq!(relative(discover(&state).unwrap()), expected);
        assert_eq!(
            relative(discover(&root.join(".copilot")).unwrap()),
            expected
        );
        assert_eq!(relative(discover(&root).unwrap()), expected);
        assert!(discover(&root.join("missing")).unwrap().is_empty());

        let places = crate::agent::Places::under(&root, None, None, None);
        assert_eq!((AGENT.default_roots)(&places), [state]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn garbage_is_reported_not_fatal() {
        let path = Path::new("/h/.copilot/session-state/s1/events.jsonl");
        let garbage: &[&[u8]] = &[
            b"\xff\xfe\x00garbage\n[1,2]\n{\"no\":\"type\"}\n",
            b"{\"type\":\"user.message\",\"data\":\"text\"}\n{\"type\":\"assistant.message\"}\n",
            br#"{"type":"session.start","data":{"sessionId":7,"context":"x"}}"#,
            br#"{"type":"assistant.message","data":{"toolRequests":[1,{"name":7},{"name":"bash","arguments":null}],"outputTokens":-3}}"#,
            br#"{"type":"tool.execution_complete","data":{"toolCallId":"x","result":[1],"error":3,"success":"no"}}"#,
        ];
        for bytes in garbage {
            let mut log = bytes.to_vec();
            log.push(b'\n');
            let whole = parse_in_passes(path, &log, &[log.len() / 2]);
            assert!(whole.messages.iter().all(|m| !m.role.is_empty()));
        }
        let whole = parse_in_passes(path, garbage[0], &[]);
        assert!(whole.session.is_none(), "no event named a session");
        assert_eq!(whole.report.malformed_lines.len(), 3);
        let reasons: Vec<&str> = whole
            .report
            .malformed_lines
            .iter()
            .map(|(_, r)| r.as_str())
            .collect();
        assert!(reasons[0].starts_with("invalid JSON"), "{reasons:?}");
        assert_eq!(reasons[1], "not a JSON object");
        assert_eq!(reasons[2], "an event without a type");
        let whole = parse_in_passes(path, garbage[1], &[]);
        assert_eq!(
            whole
                .report
                .malformed_lines
                .iter()
                .map(|(_, r)| r.as_str())
                .collect::<Vec<_>>(),
            [
                "a \"user.message\" event without data",
                "a \"assistant.message\" event without data"
            ]
        );
        // Odd values in known events: the session takes its id from the path.
        let whole = parse_in_passes(path, garbage[2], &[]);
        assert!(whole.session.is_none(), "no complete line");
        let mut line = garbage[2].to_vec();
        line.push(b'\n');
        let whole = parse_in_passes(path, &line, &[]);
        assert_eq!(whole.session.unwrap().native_id.as_str(), "s1");
    }

    #[test]
    fn prompts_not_typed_by_the_user() {
        let path = "/h/.copilot/session-state/s2/events.jsonl";
        let whole = parse_lines_of(
            path,
            &[
                r#"{"type":"session.start","data":{"sessionId":"s2"},"timestamp":"2026-01-05T10:00:00Z"}"#,
                r#"{"type":"user.message","data":{"content":"/skills pdf","source":"skill-pdf"}}"#,
                r#"{"type":"user.message","data":{"content":"fix it"}}"#,
                r#"{"type":"assistant.message","data":{"content":"","toolRequests":[{"toolCallId":"t1","name":"bash","arguments":{"command":"make"}}]}}"#,
                r#"{"type":"user.message","data":{"content":"and the docs","delivery":"steering"}}"#,
                r#"{"type":"tool.execution_complete","data":{"toolCallId":"t1","success":true,"result":{"content":"ok\n<exited with exit code 0>"}}}"#,
                r#"{"type":"user.message","data":{"content":"Continue working","isAutopilotContinuation":true}}"#,
                r#"{"type":"user.message","data":{"content":"explore src","source":"agent-a1"}}"#,
                r#"{"type":"user.message","data":{"content":"task prompt"},"agentId":"a1"}"#,
                r#"{"type":"user.message","data":{"content":"  ","attachments":[]}}"#,
                r#"{"type":"assistant.message","data":{"content":"","toolRequests":[{"toolCallId":"t2","name":"bash","arguments":{"command":"make"}}]}}"#,
                r#"{"type":"abort","data":{"reason":"user_initiated"}}"#,
                r#"{"type":"tool.execution_complete","data":{"toolCallId":"t2","success":false,"result":{"content":"interrupted"}}}"#,
                r#"{"type":"tool.execution_complete","data":{"toolCallId":"t9","isUserRequested":true,"success":true,"result":{"content":"x"}}}"#,
                r#"{"type":"tool.execution_complete","data":{"toolCallId":"t8","success":true,"result":{"content":"x"}}}"#,
                r#"{"type":"session.title_changed","data":{"title":"Fixing the build"},"ephemeral":true}"#,
            ],
        );
        let session = whole.session.unwrap();
        assert_eq!(session.user_message_count, 2, "typed: fix it, and the docs");
        assert_eq!(session.first_message, "fix it");
        assert_eq!(session.title, "", "an ephemeral event is not read");
        let flags: Vec<(&str, bool)> = whole
            .messages
            .iter()
            .filter(|m| m.role == "user")
            .map(|m| (m.content.as_str(), m.system))
            .collect();
        assert_eq!(
            flags,
            [
                ("/skills pdf", true),
                ("fix it", false),
                ("and the docs", false),
                ("Continue working", true),
                ("explore src", true),
                ("task prompt", true),
            ]
        );
        // A steered prompt does not end the turn: the result still attaches, and passes.
        let make = &whole.messages[2].tool_calls[0];
        assert_eq!(
            (make.result.as_str(), make.is_error),
            ("ok\n<exited with exit code 0>", false)
        );
        // After an abort a result that comes anyway is still paired (given up, not lost).
        let aborted = &whole.messages[7].tool_calls[0];
        assert_eq!(
            (aborted.result.as_str(), aborted.is_error),
            ("interrupted", true)
        );
        assert_eq!(whole.report.orphan_tool_results, 1);
        assert_eq!(
            whole.report.skipped_records["tool.execution_complete/user-requested"],
            1
        );
        assert_eq!(whole.report.skipped_records["user.message/empty"], 1);
        assert_eq!(
            whole.report.skipped_records["session.title_changed/ephemeral"],
            1
        );
    }

    #[test]
    fn a_detached_run_names_its_parent() {
        let whole = parse_lines_of(
            "/h/.copilot/session-state/d1/events.jsonl",
            &[
                r#"{"type":"session.start","data":{"sessionId":"d1","detachedFromSpawningParentSessionId":"p0","copilotVersion":"1.0.70"}}"#,
            ],
        );
        let session = whole.session.unwrap();
        assert_eq!(
            (
                session.parent_session.as_str(),
                session.relationship.as_str()
            ),
            ("p0", "continuation")
        );
    }
}
