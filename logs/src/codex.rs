//! Codex CLI rollouts: `~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl`.
//!
//! Each line is `{"timestamp", "type", "payload"}`: `session_meta` names the session,
//! `turn_context` sets the model of the turn, `response_item` carries what the model saw and
//! said (messages, reasoning, tool calls and their outputs), `event_msg` carries UI events, of
//! which only `token_count` (usage) and `turn_aborted` matter here: the others repeat response
//! items. `compacted` marks a compaction. Rollouts from before the envelope (spring 2025) hold a
//! bare metadata object and bare response items, which are read too.
//!
//! A fork (`forked_from_id`) or a subagent started with its parent's context opens with a copy of
//! the parent's rollout (its `session_meta`, turns and `token_count`s, re-stamped with the time
//! of the copy) before its own lines: the copy is skipped, up to the first turn of its own.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use agentsync_core::{Message, TokenUsage, ToolCall, UsageEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::agent::{Agent, LineFormat, Reader, read_lines};
use super::discover;
use super::fit::native_id;
use super::session::SessionDraft;
use super::transcript::ToolOutcome;
use super::{Format, Sink, flag_at, str_at, timestamp_at};

pub const NAME: &str = "codex";
pub const PARSER: &str = "codex/1";
/// `UsageEvent::source` of the usage Codex reports in `token_count` events.
pub const USAGE_SOURCE: &str = "codex/token_count";

pub type ResumeState = super::ResumeState<State>;
pub type Parsed = super::Parsed<State>;

/// What the Codex format remembers between records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The session id in the file name: the session's id when the log does not open with a
    /// `session_meta` of its own.
    file_id: String,
    /// Whether a first record has named the session.
    named: bool,
    meta_seen: bool,
    /// The model of the current turn.
    model: String,
    /// Cumulative totals of the last usage event: Codex often repeats a `token_count`.
    last_usage_key: String,
    /// Those totals, for an event that has only totals (its call's usage is the difference).
    #[serde(default)]
    last_totals: TokenUsage,
    /// Whether the session names a parent (a fork, or a subagent): only such a session opens
    /// with a copy of another session's rollout.
    #[serde(default)]
    has_parent: bool,
    /// When the session was created (Unix ms): a turn minted before it is the parent's.
    #[serde(default)]
    created_ms: Option<i64>,
    /// Whether a record of the session's own, other than its `session_meta`, was read: the copy
    /// of the parent comes before any.
    #[serde(default)]
    own_records: bool,
    /// Inside the copy of the parent's rollout at the top of a fork.
    #[serde(default)]
    replaying: bool,
    /// The time of the last line read, which dates a turn that carries no time of its own.
    #[serde(default)]
    last_line_ms: Option<i64>,
}

/// A turn that carries no time of its own is the fork's when it was written at least this long
/// after the line before it: the copy of the parent is written in one burst.
const REPLAY_BURST_GAP_MS: i64 = 1000;

/// The state to parse the rollout at `path` from its start.
pub fn start(path: &Path) -> ResumeState {
    let stem = path.file_stem().and_then(OsStr::to_str).unwrap_or_default();
    let state = State {
        file_id: id_in_file_name(stem).to_owned(),
        ..State::default()
    };
    ResumeState::new(SessionDraft::new(NAME, PARSER), state)
}

/// `rollout-2025-09-14T10-02-11-<uuid>` → `<uuid>`; any other stem as it is.
fn id_in_file_name(stem: &str) -> &str {
    const UUID_LEN: usize = 36;
    let Some(tail) = stem.len().checked_sub(UUID_LEN).and_then(|i| stem.get(i..)) else {
        return stem;
    };
    let looks_like_uuid = tail.bytes().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    if looks_like_uuid { tail } else { stem }
}

/// Parses the rollout at `path` (read through `reader`) from where `resume` stopped, or from
/// the start.
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

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "Codex CLI",
    default_roots: |places| vec![places.home.join(".codex/sessions")],
    discover: discover::codex_rollouts,
    recognizes,
    reader: Reader::Lines(read_lines::<State>),
};

impl LineFormat for State {
    fn start(path: &Path) -> io::Result<ResumeState> {
        Ok(start(path))
    }
}

/// A rollout by its name (`rollout-*`), or a file whose first record is a Codex envelope
/// (`type` and `payload`).
fn recognizes(path: &Path, head: &[u8]) -> bool {
    if discover::is_rollout(path) {
        return true;
    }
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    matches!(serde_json::from_slice::<Value>(first), Ok(Value::Object(r)) if r.contains_key("type") && r.contains_key("payload"))
}

/// The coarse class of a Codex tool, for filtering.
pub fn category(tool: &str) -> &'static str {
    match tool {
        "shell" | "shell_command" | "local_shell" | "container.exec" | "exec_command"
        | "write_stdin" | "unified_exec" => "shell",
        "apply_patch" => "edit",
        "read_file" | "view_image" => "read",
        "grep_files" | "list_dir" => "search",
        "web_search" => "web",
        "spawn_agent" => "task",
        _ => "other",
    }
}

/// Response item types, which rollouts from before the envelope write bare.
const RESPONSE_ITEMS: [&str; 9] = [
    "message",
    "reasoning",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "local_shell_call",
    "web_search_call",
    "ghost_snapshot",
];

/// The record's kind and payload.
fn envelope(record: &Map<String, Value>) -> Result<(&str, &Map<String, Value>), String> {
    match record.get("payload") {
        Some(Value::Object(payload)) => Ok((str_at(record, "type"), payload)),
        Some(_) => Err("a payload that is not an object".to_owned()),
        None if record.contains_key("record_type") => Ok(("state", record)),
        None if RESPONSE_ITEMS.contains(&str_at(record, "type")) => Ok(("response_item", record)),
        None if !record.contains_key("type") && record.contains_key("id") => {
            Ok(("session_meta", record))
        }
        None => Err(format!(
            "a {:?} record without a payload",
            str_at(record, "type")
        )),
    }
}

impl Format for State {
    fn record(&mut self, record: &Map<String, Value>, sink: &mut Sink<'_>) -> Result<(), String> {
        let (kind, payload) = envelope(record)?;
        if !self.named {
            self.named = true;
            let own_id = match kind {
                "session_meta" => native_id(str_at(payload, "id")),
                _ => None,
            };
            sink.session.native_id = own_id.or_else(|| native_id(&self.file_id));
        }
        let time = timestamp_at(record, "timestamp");
        if let Some(ms) = time {
            sink.session.note_time(ms);
        }
        let previous_line_ms = std::mem::replace(&mut self.last_line_ms, time);
        if self.replaying {
            if kind == "turn_context" && self.is_own_turn(payload, time, previous_line_ms) {
                self.replaying = false;
            } else {
                self.replayed(kind, payload, sink);
                return Ok(());
            }
        }
        if kind != "session_meta" {
            self.own_records = true;
        }
        match kind {
            "session_meta" => self.session_meta(payload, time, sink),
            "turn_context" => {
                let model = str_at(payload, "model");
                if !model.is_empty() {
                    self.model = model.to_owned();
                }
                sink.session.note_cwd(str_at(payload, "cwd"));
            }
            "response_item" => self.response_item(payload, time, sink),
            "event_msg" => self.event(payload, time, sink),
            "compacted" => {
                sink.transcript.push(Message {
                    role: "system".to_owned(),
                    content: str_at(payload, "message").to_owned(),
                    system: true,
                    compact_boundary: true,
                    timestamp_ms: time,
                    ..Message::default()
                });
            }
            other => sink.report.skipped(other),
        }
        Ok(())
    }
}

impl State {
    fn session_meta(&mut self, meta: &Map<String, Value>, time: Option<i64>, sink: &mut Sink<'_>) {
        if self.meta_seen {
            let copied = native_id(str_at(meta, "id"))
                .is_some_and(|id| sink.session.native_id.as_ref() != Some(&id));
            if copied && self.has_parent && !self.own_records && self.created_ms.is_some() {
                // A fork's copy of its parent opens with the parent's `session_meta`.
                self.replaying = true;
                sink.report.skipped("replayed/session_meta");
            } else {
                sink.report.skipped("session_meta/repeated");
            }
            return;
        }
        self.meta_seen = true;
        sink.session.note_cwd(str_at(meta, "cwd"));
        sink.session.note_agent_version(str_at(meta, "cli_version"));
        if let Some(git) = meta.get("git").and_then(Value::as_object) {
            sink.session.note_git_branch(str_at(git, "branch"));
        }
        let meta_time = timestamp_at(meta, "timestamp");
        if let Some(ms) = meta_time {
            sink.session.note_time(ms);
        }
        // Thread ids are UUIDv7: the id itself says when the session was created.
        self.created_ms = uuid_v7_ms(str_at(meta, "id")).or(meta_time).or(time);
        let spawned_by = meta
            .get("source")
            .and_then(|source| source.pointer("/subagent/thread_spawn/parent_thread_id"))
            .and_then(Value::as_str)
            .and_then(native_id);
        let forked_from = native_id(str_at(meta, "forked_from_id"));
        if let Some(parent) = spawned_by {
            sink.session.set_parent(&parent, "subagent");
            self.has_parent = true;
        } else if let Some(parent) = forked_from {
            sink.session.set_parent(&parent, "fork");
            self.has_parent = true;
        }
    }

    /// Whether the `turn_context` that arrived inside the copy of the parent opens a turn of the
    /// fork's own. Its `turn_id` is a UUIDv7 minted when the turn started: the parent's turns
    /// were minted before the fork was created. A turn without such an id (older versions, or
    /// ids that carry no time) is the fork's when a pause of a second or more came before it.
    fn is_own_turn(
        &self,
        turn: &Map<String, Value>,
        time: Option<i64>,
        previous_line_ms: Option<i64>,
    ) -> bool {
        if let (Some(minted), Some(created)) =
            (uuid_v7_ms(str_at(turn, "turn_id")), self.created_ms)
        {
            return minted >= created;
        }
        match (time, previous_line_ms) {
            (Some(now), Some(before)) => now.saturating_sub(before) >= REPLAY_BURST_GAP_MS,
            // Without times nothing tells the copy from the fork: read the rest as the fork's.
            _ => true,
        }
    }

    /// A line of the parent's rollout copied into a fork: no message, no usage. Its cumulative
    /// token totals are where the fork's own totals continue from.
    fn replayed(&mut self, kind: &str, payload: &Map<String, Value>, sink: &mut Sink<'_>) {
        if kind == "event_msg"
            && str_at(payload, "type") == "token_count"
            && let Some(total) = payload
                .get("info")
                .and_then(|info| info.get("total_token_usage"))
                .and_then(Value::as_object)
        {
            self.last_totals = usage_of(total);
            self.last_usage_key = format!("total:{}", totals_key(total));
        }
        sink.report.skipped(&format!("replayed/{kind}"));
    }

    fn response_item(&mut self, item: &Map<String, Value>, time: Option<i64>, sink: &mut Sink<'_>) {
        let kind = str_at(item, "type");
        match kind {
            "message" => self.message(item, time, sink),
            "reasoning" => self.reasoning(item, time, sink),
            "function_call" => self.call(item, "arguments", time, sink),
            "custom_tool_call" => self.call(item, "input", time, sink),
            "local_shell_call" | "web_search_call" => self.call(item, "action", time, sink),
            "function_call_output" | "custom_tool_call_output" => {
                if !sink
                    .transcript
                    .attach(str_at(item, "call_id"), tool_outcome(item))
                {
                    sink.report.orphan_tool_results += 1;
                }
            }
            other => sink.report.skipped(&format!("response_item/{other}")),
        }
    }

    fn message(&mut self, item: &Map<String, Value>, time: Option<i64>, sink: &mut Sink<'_>) {
        let role = str_at(item, "role");
        let content = match item.get("content") {
            Some(Value::Array(parts)) => content_text(parts),
            Some(Value::String(text)) => text.clone(),
            _ => String::new(),
        };
        if content.is_empty() {
            sink.report.skipped("response_item/message-without-text");
            return;
        }
        let mut message = Message {
            role: role.to_owned(),
            content,
            timestamp_ms: time,
            ..Message::default()
        };
        match role {
            "assistant" => message.model = self.model.clone(),
            "user" if is_injected_context(&message.content) => message.system = true,
            "user" => {
                // A new prompt: results of the previous turn's calls will not come any more.
                sink.transcript.give_up_all();
                let is_prompt = !message
                    .content
                    .trim_start()
                    .starts_with("<user_shell_command>");
                sink.session.note_user_message(&message.content, is_prompt);
            }
            // `developer` and `system`: instructions the harness gave the model.
            _ => message.system = true,
        }
        sink.transcript.push(message);
    }

    fn reasoning(&mut self, item: &Map<String, Value>, time: Option<i64>, sink: &mut Sink<'_>) {
        let texts = |key| match item.get(key) {
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(Value::as_object)
                .map(|part| str_at(part, "text"))
                .filter(|text| !text.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n"),
            _ => String::new(),
        };
        // Summaries are what Codex shows; raw reasoning is logged only by some models. The
        // encrypted form is opaque and never kept.
        let mut thinking = texts("summary");
        if thinking.is_empty() {
            thinking = texts("content");
        }
        if thinking.is_empty() {
            sink.report.skipped("response_item/reasoning-without-text");
            return;
        }
        sink.transcript.push(Message {
            role: "assistant".to_owned(),
            thinking,
            model: self.model.clone(),
            timestamp_ms: time,
            ..Message::default()
        });
    }

    /// A tool call, with its input at `input_key` (a JSON string for function calls, free text
    /// for custom tools, an object for built-in actions).
    fn call(
        &mut self,
        item: &Map<String, Value>,
        input_key: &str,
        time: Option<i64>,
        sink: &mut Sink<'_>,
    ) {
        let name = match str_at(item, "type") {
            "local_shell_call" => "local_shell",
            "web_search_call" => "web_search",
            _ => str_at(item, "name"),
        };
        let input = match item.get(input_key) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let call = ToolCall {
            // A web search has no call id: the provider ran it, there is no output to await.
            id: str_at(item, "call_id").to_owned(),
            name: name.to_owned(),
            category: category(name).to_owned(),
            input,
            ..ToolCall::default()
        };
        sink.transcript.push(Message {
            role: "assistant".to_owned(),
            tool_calls: vec![call],
            model: self.model.clone(),
            timestamp_ms: time,
            ..Message::default()
        });
    }

    fn event(&mut self, event: &Map<String, Value>, time: Option<i64>, sink: &mut Sink<'_>) {
        match str_at(event, "type") {
            "token_count" => self.token_count(event, time, sink),
            "turn_aborted" => sink.transcript.give_up_all(),
            // user_message, agent_message, agent_reasoning, ...: copies of response items.
            other => sink.report.skipped(&format!("event_msg/{other}")),
        }
    }

    fn token_count(&mut self, event: &Map<String, Value>, time: Option<i64>, sink: &mut Sink<'_>) {
        let (usage, key) = match event.get("info").and_then(Value::as_object) {
            Some(info) => {
                let Some(total) = info.get("total_token_usage").and_then(Value::as_object) else {
                    sink.report.skipped("event_msg/token_count-without-usage");
                    return;
                };
                let totals = usage_of(total);
                // Only totals: this call's usage is what they grew by, never the running sum.
                let usage = match info.get("last_token_usage").and_then(Value::as_object) {
                    Some(last) => usage_of(last),
                    None => difference(&totals, &self.last_totals),
                };
                self.last_totals = totals;
                (usage, format!("total:{}", totals_key(total)))
            }
            // Early versions put the last call's counts in the event itself.
            None if event.contains_key("total_tokens") => (
                usage_of(event),
                format!("call:{}:{}", time.unwrap_or_default(), totals_key(event)),
            ),
            None => {
                sink.report.skipped("event_msg/token_count-without-usage");
                return;
            }
        };
        if key == self.last_usage_key {
            sink.report.skipped("event_msg/token_count-repeated");
            return;
        }
        self.last_usage_key.clone_from(&key);
        if usage == TokenUsage::default() {
            // The zero totals a session starts with: nothing was used.
            sink.report.skipped("event_msg/token_count-zero");
            return;
        }
        let mut event = UsageEvent {
            message_ordinal: sink.transcript.last_ordinal(),
            source: USAGE_SOURCE.to_owned(),
            model: self.model.clone(),
            usage,
            cost_micro_usd: None,
            occurred_ms: time,
            dedup_key: key,
        };
        // A model name longer than the manifest allows made the session unpublishable
        // (found by the `logs` fuzz target).
        super::fit::fit_usage_event(&mut event);
        sink.usage_events.push(event);
    }
}

const USAGE_FIELDS: [&str; 5] = [
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
];

fn count(usage: &Map<String, Value>, key: &str) -> u64 {
    usage.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Cumulative totals only grow, so they name one model call.
fn totals_key(usage: &Map<String, Value>) -> String {
    USAGE_FIELDS
        .iter()
        .map(|key| count(usage, key).to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn difference(now: &TokenUsage, before: &TokenUsage) -> TokenUsage {
    TokenUsage {
        input: now.input.saturating_sub(before.input),
        cache_read: now.cache_read.saturating_sub(before.cache_read),
        cache_creation: now.cache_creation.saturating_sub(before.cache_creation),
        output: now.output.saturating_sub(before.output),
        reasoning: now.reasoning.saturating_sub(before.reasoning),
    }
}

/// OpenAI counts cached tokens inside `input_tokens` and reasoning inside `output_tokens`;
/// the model counts cache reads apart from input (as Anthropic does), and reasoning as the part
/// of the output it was.
fn usage_of(usage: &Map<String, Value>) -> TokenUsage {
    let cached = count(usage, "cached_input_tokens");
    TokenUsage {
        input: count(usage, "input_tokens").saturating_sub(cached),
        cache_read: cached,
        cache_creation: 0,
        output: count(usage, "output_tokens"),
        reasoning: count(usage, "reasoning_output_tokens"),
    }
}

/// The creation time (Unix ms) a UUIDv7 carries in its first 48 bits; `None` for any other id.
fn uuid_v7_ms(id: &str) -> Option<i64> {
    let hex: String = id.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        || hex.get(12..13) != Some("7")
    {
        return None;
    }
    i64::from_str_radix(hex.get(..12)?, 16).ok()
}

/// The text of message content parts (`input_text`, `output_text`); images as placeholders.
fn content_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|part| match str_at(part, "type") {
            "input_image" | "image" => Some("[image]"),
            _ => Some(str_at(part, "text")).filter(|text| !text.is_empty()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Context Codex adds to the conversation as user messages: environment, instructions,
/// skills, subagent notifications. Never a typed prompt (nor a session's first message).
fn is_injected_context(text: &str) -> bool {
    const PREFIXES: [&str; 11] = [
        "<environment_context>",
        "<user_instructions>",
        "<developer_instructions>",
        "<permissions instructions>",
        "# AGENTS.md instructions",
        "<turn_aborted>",
        "<INSTRUCTIONS>",
        "<skill>",
        "<subagent_notification>",
        "<goal_context>",
        "<codex_internal_context>",
    ];
    let text = text.trim_start();
    PREFIXES.iter().any(|p| text.starts_with(p))
}

fn tool_outcome(item: &Map<String, Value>) -> ToolOutcome {
    let (result, is_error) = match item.get("output") {
        Some(Value::String(text)) => command_output(text),
        Some(Value::Array(parts)) => command_output(&content_text(parts)),
        // `{"content": ..., "success": false}`, as some versions write failed calls.
        Some(Value::Object(payload)) => (
            str_at(payload, "content").to_owned(),
            payload.get("success").and_then(Value::as_bool) == Some(false),
        ),
        _ => (String::new(), false),
    };
    ToolOutcome {
        result,
        is_error: is_error || flag_at(item, "is_error"),
        subagent_session: String::new(),
    }
}

/// A command's output and whether it failed. Shell tools wrap their output as
/// `{"output": ..., "metadata": {"exit_code": N}}` (until late 2025) or head it with an
/// `Exit code: N` / `Process exited with code N` line (since); other tools return plain text.
fn command_output(text: &str) -> (String, bool) {
    if text.starts_with('{')
        && let Ok(Value::Object(wrapped)) = serde_json::from_str::<Value>(text)
        && let Some(output) = wrapped.get("output").and_then(Value::as_str)
    {
        let exit_code = wrapped
            .get("metadata")
            .and_then(|metadata| metadata.get("exit_code"))
            .and_then(Value::as_i64);
        return (output.to_owned(), exit_code.is_some_and(|code| code != 0));
    }
    let exit_code = text.lines().take(8).find_map(|line| {
        line.strip_prefix("Exit code: ")
            .or_else(|| line.strip_prefix("Process exited with code "))
            .and_then(|code| code.trim().parse::<i64>().ok())
    });
    (text.to_owned(), exit_code.is_some_and(|code| code != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/home/u/.codex/sessions/2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl";

    fn parse(lines: &[&str]) -> Parsed {
        let mut log = lines.join("\n");
        log.push('\n');
        parse_from(Path::new(PATH), io::Cursor::new(log), None).unwrap()
    }

    #[test]
    fn the_file_name_names_a_rollout_without_metadata() {
        assert_eq!(
            id_in_file_name("rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f"),
            "0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f"
        );
        assert_eq!(id_in_file_name("rollout-short"), "rollout-short");
        let parsed = parse(&[
            r#"{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}"#,
            r#"{"type":"session_meta","payload":{"id":"other"}}"#,
        ]);
        let session = parsed.state.session().unwrap();
        assert_eq!(
            session.native_id.as_str(),
            "0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f"
        );
        assert_eq!(session.first_message, "hi");
    }

    #[test]
    fn command_outputs_and_exit_codes() {
        assert_eq!(
            command_output(
                r#"{"output":"boom\n","metadata":{"exit_code":2,"duration_seconds":0.1}}"#
            ),
            ("boom\n".to_owned(), true)
        );
        assert_eq!(
            command_output(r#"{"output":"ok","metadata":{"exit_code":0}}"#),
            ("ok".to_owned(), false)
        );
        let text =
            "Chunk ID: 1\nWall time: 0.2 seconds\nProcess exited with code 101\nOutput:\nfail";
        assert_eq!(command_output(text), (text.to_owned(), true));
        assert_eq!(
            command_output("Exit code: 0\nOutput:\n"),
            ("Exit code: 0\nOutput:\n".to_owned(), false)
        );
        assert_eq!(command_output("{not json"), ("{not json".to_owned(), false));
    }

    #[test]
    fn repeated_token_counts_make_one_usage_event() {
        let count = |total: u64| {
            format!(
                r#"{{"timestamp":"2025-09-14T10:02:20.000Z","type":"event_msg","payload":{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{total},"cached_input_tokens":100,"output_tokens":50,"reasoning_output_tokens":20,"total_tokens":{}}},"last_token_usage":{{"input_tokens":1000,"cached_input_tokens":100,"output_tokens":50,"reasoning_output_tokens":20,"total_tokens":1050}}}}}}}}"#,
                total + 50
            )
        };
        let lines = [
            r#"{"type":"session_meta","payload":{"id":"s"}}"#.to_owned(),
            r#"{"type":"turn_context","payload":{"model":"gpt-5-codex"}}"#.to_owned(),
            r#"{"type":"event_msg","payload":{"type":"token_count","info":null}}"#.to_owned(),
            count(1000),
            count(1000),
            count(2000),
        ];
        let parsed = parse(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(parsed.usage_events.len(), 2);
        let event = &parsed.usage_events[0];
        assert_eq!(
            (
                event.usage.input,
                event.usage.cache_read,
                event.usage.output,
                event.usage.reasoning
            ),
            (900, 100, 50, 20)
        );
        assert_eq!(event.model, "gpt-5-codex");
        assert_eq!(event.dedup_key, "total:1000:100:50:20:1050");
        assert_eq!(event.message_ordinal, None);
        assert_eq!(event.occurred_ms, Some(1_757_844_140_000));
        assert_eq!(
            parsed.report.skipped_records["event_msg/token_count-repeated"],
            1
        );
    }

    /// Issue 11: a `token_count` with only totals counts what they grew by (not the running
    /// sum again), and the zero totals a session starts with make no usage event.
    #[test]
    fn token_counts_with_only_totals_count_their_growth() {
        let totals = |input: u64, output: u64| {
            format!(
                r#"{{"timestamp":"2025-09-14T10:02:20.000Z","type":"event_msg","payload":{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{input},"cached_input_tokens":0,"output_tokens":{output},"reasoning_output_tokens":0,"total_tokens":{}}}}}}}}}"#,
                input + output
            )
        };
        let lines = [
            r#"{"type":"session_meta","payload":{"id":"s"}}"#.to_owned(),
            totals(0, 0),
            totals(1000, 100),
            totals(1500, 130),
        ];
        let parsed = parse(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        let used: Vec<(u64, u64)> = parsed
            .usage_events
            .iter()
            .map(|e| (e.usage.input, e.usage.output))
            .collect();
        assert_eq!(used, [(1000, 100), (500, 30)]);
    }
}

#[cfg(test)]
mod fork_tests {
    use super::*;

    const PATH: &str = "/home/u/.codex/sessions/2026/03/02/rollout-2026-03-02T14-31-47-019caef6-5fbe-7c03-8d1f-2e4a6b8c0d2e.jsonl";
    const FORK: &str = "019caef6-5fbe-7c03-8d1f-2e4a6b8c0d2e";
    const PARENT: &str = "019caedd-fecc-7a41-9c2e-5b7d8e9f0a1b";

    fn parse(lines: &[String]) -> Parsed {
        let mut log = lines.join("\n");
        log.push('\n');
        parse_from(Path::new(PATH), io::Cursor::new(log), None).unwrap()
    }

    fn line(time: &str, kind: &str, payload: &str) -> String {
        format!(r#"{{"timestamp":"2026-03-02T14:{time}Z","type":"{kind}","payload":{payload}}}"#)
    }

    fn prompt(time: &str, text: &str) -> String {
        line(
            time,
            "response_item",
            &format!(
                r#"{{"type":"message","role":"user","content":[{{"type":"input_text","text":"{text}"}}]}}"#
            ),
        )
    }

    fn totals(time: &str, input: u64) -> String {
        line(
            time,
            "event_msg",
            &format!(
                r#"{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{input},"cached_input_tokens":0,"output_tokens":10,"reasoning_output_tokens":0,"total_tokens":{}}}}}}}"#,
                input + 10
            ),
        )
    }

    /// The fork's own `session_meta`, the parent's copied one, and one copied turn.
    fn copied_head(source: &str) -> Vec<String> {
        vec![
            line(
                "31:47.915",
                "session_meta",
                &format!(
                    r#"{{"id":"{FORK}",{source},"timestamp":"2026-03-02T14:31:47.903Z","cwd":"/w"}}"#
                ),
            ),
            line(
                "31:47.917",
                "session_meta",
                &format!(
                    r#"{{"id":"{PARENT}","timestamp":"2026-03-02T14:05:10.220Z","cwd":"/w"}}"#
                ),
            ),
            line("31:47.917", "turn_context", r#"{"model":"gpt-5.3-codex"}"#),
            prompt("31:47.917", "parent prompt"),
            totals("31:47.918", 1000),
        ]
    }

    #[test]
    fn uuid_v7_times() {
        assert_eq!(uuid_v7_ms(FORK), Some(1_772_461_907_902));
        assert_eq!(
            uuid_v7_ms("0199473a-6c1f-4d52-9a3e-4f1b2c3d4e5f"),
            None,
            "a v4"
        );
        assert_eq!(uuid_v7_ms("turn-1"), None);
        assert_eq!(uuid_v7_ms(""), None);
    }

    /// A turn without a turn id (older versions) after the burst of the copy is the fork's: a
    /// pause of a second or more came before it. One inside the burst is the parent's.
    #[test]
    fn a_turn_without_an_id_after_a_pause_ends_the_copy() {
        let mut lines = copied_head(&format!(r#""forked_from_id":"{PARENT}""#));
        lines.extend([
            line("31:47.918", "turn_context", r#"{"model":"gpt-5.3-codex"}"#),
            prompt("31:47.918", "second parent prompt"),
            line("32:20.116", "turn_context", r#"{"model":"gpt-5.4"}"#),
            prompt("32:20.117", "fork prompt"),
            totals("32:24.000", 1500),
        ]);
        let parsed = parse(&lines);
        let session = parsed.state.session().unwrap();
        assert_eq!(
            (
                session.parent_session.as_str(),
                session.relationship.as_str()
            ),
            (PARENT, "fork")
        );
        assert_eq!(session.first_message, "fork prompt");
        let texts: Vec<&str> = parsed.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["fork prompt"]);
        let used: Vec<u64> = parsed.usage_events.iter().map(|e| e.usage.input).collect();
        assert_eq!(used, [500], "the fork's growth over the copied totals");
        assert_eq!(parsed.usage_events[0].model, "gpt-5.4");
    }

    /// A subagent started with its parent's context keeps `subagent`, and its copy is skipped
    /// the same way; a turn id minted before the thread was created is the parent's.
    #[test]
    fn a_subagent_with_its_parents_context() {
        let mut lines = copied_head(&format!(
            r#""forked_from_id":"{PARENT}","source":{{"subagent":{{"thread_spawn":{{"parent_thread_id":"{PARENT}","depth":1}}}}}}"#
        ));
        lines.extend([
            // Minted 14:12:04, before the thread (14:31:47.902), though written after a pause.
            line(
                "31:49.000",
                "turn_context",
                r#"{"turn_id":"019caee4-5099-72c3-9d4e-5f6a7b8c9d0e","model":"gpt-5.3-codex"}"#,
            ),
            prompt("31:49.001", "second parent prompt"),
            // Minted 14:31:47.994, after it, though written right away.
            line(
                "31:49.002",
                "turn_context",
                r#"{"turn_id":"019caef6-601a-73d4-ae5f-6a7b8c9d0e1f","model":"gpt-5.3-codex"}"#,
            ),
            prompt("31:49.003", "review the parser"),
        ]);
        let parsed = parse(&lines);
        let session = parsed.state.session().unwrap();
        assert_eq!(
            (
                session.parent_session.as_str(),
                session.relationship.as_str()
            ),
            (PARENT, "subagent")
        );
        let texts: Vec<&str> = parsed.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["review the parser"]);
        assert!(parsed.usage_events.is_empty());
    }

    /// A session that names no parent never skips: a second `session_meta` is only repeated.
    /// And a fork whose second line is its own work has copied nothing.
    #[test]
    fn without_a_parent_or_a_copy_nothing_is_skipped() {
        let mut lines = copied_head(r#""originator":"codex_cli_rs""#);
        lines.push(prompt("31:47.919", "next"));
        let parsed = parse(&lines);
        assert_eq!(parsed.messages.len(), 2);
        assert_eq!(parsed.usage_events.len(), 1);
        assert_eq!(parsed.report.skipped_records["session_meta/repeated"], 1);

        let mut lines = copied_head(&format!(r#""forked_from_id":"{PARENT}""#));
        lines.remove(1);
        let parsed = parse(&lines);
        assert_eq!(parsed.messages.len(), 1);
        assert_eq!(parsed.usage_events.len(), 1);
        assert_eq!(parsed.state.session().unwrap().relationship, "fork");
    }
}

#[cfg(test)]
mod injected_tests {
    use super::is_injected_context;

    /// Issue 11: what Codex injects as user messages is not the user's prompt.
    #[test]
    fn injected_context_is_recognised() {
        for text in [
            "<INSTRUCTIONS>\nfollow the repo rules\n</INSTRUCTIONS>",
            "  <skill>\nname: deploy\n</skill>",
            "<subagent_notification>{\"agent\": \"a1\"}</subagent_notification>",
            "<goal_context>ship 1.4</goal_context>",
            "<codex_internal_context>x</codex_internal_context>",
            "<environment_context><cwd>/w</cwd></environment_context>",
        ] {
            assert!(is_injected_context(text), "{text}");
        }
        for text in [
            "fix the <skill> parser",
            "please add INSTRUCTIONS to the README",
        ] {
            assert!(!is_injected_context(text), "{text}");
        }
    }
}
