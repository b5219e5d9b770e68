//! Claude Code session logs: `~/.claude/projects/<project>/<session-uuid>.jsonl`, and subagent
//! logs beside them (`agent-<id>.jsonl`, before 2.0.60 or so) or under the session
//! (`<session-uuid>/subagents/agent-<id>.jsonl`).
//!
//! Each line is one record. `user` and `assistant` records carry an Anthropic API message (one
//! content block per record in recent versions); `system` records carry notices and compaction
//! boundaries; `summary`, `ai-title` and `custom-title` name the session. The rest
//! (`file-history-snapshot`, `queue-operation`, `progress`, `attachment`, ...) is skipped.
//!
//! A tool output too large for the log (Claude Code ≥ 2.1.2) is saved beside it, in
//! `<project>/<session-uuid>/tool-results/`, and the log holds a preview that names the file:
//! the result is read from that file, when it is there (`saved_output_reference`).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use agentsync_core::limits::MAX_TEXT;
use agentsync_core::{Message, TokenUsage, ToolCall};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::agent::{Agent, LineFormat, Reader, read_lines};
use super::discover;
use super::fit::{self, native_id};
use super::session::{SessionDraft, TitleSource};
use super::transcript::{Abandoned, ToolOutcome};
use super::{Format, Sink, flag_at, str_at, timestamp_at};

pub const NAME: &str = "claude";
pub const PARSER: &str = "claude-code/1";

/// API messages whose usage is remembered: the records of one message are written together,
/// so a few suffice even when subagents' records interleave.
const RECENT_API_MESSAGES: usize = 16;

/// What a tool result too large for the log starts with; the log holds, in place of the output,
/// `<persisted-output>\nOutput too large (48.2KB). Full output saved to: <path>\n\nPreview
/// (first 2KB):\n<the first lines>\n...\n</persisted-output>`.
const PERSISTED_OUTPUT_TAG: &str = "<persisted-output>";
/// What comes before the saved file's path in that header.
const SAVED_TO: &str = "Full output saved to:";
/// The folder of a session's folder that large outputs are saved in.
const TOOL_RESULTS_FOLDER: &str = "tool-results";
/// Typed prompts whose parent is remembered, for an edited prompt that branches off at the
/// same point (see [`State::branch_point`]).
pub const MAX_PROMPT_PARENTS: usize = 4096;

pub type ResumeState = super::ResumeState<State>;
pub type Parsed = super::Parsed<State>;

/// What the Claude Code format remembers between records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// A subagent log: its prompts count as the session's user messages.
    subagent_log: bool,
    /// File stem of a subagent log that sits beside its parent: its id is only known from
    /// the `sessionId` (the parent's) of its first record.
    stem_awaiting_parent: Option<String>,
    /// Usage already counted per API message id. Claude Code writes one record per content
    /// block of a message and repeats the message's usage on each (with a growing output
    /// count while streaming), so each record counts only what earlier ones did not.
    counted_usage: VecDeque<(String, TokenUsage)>,
    /// Typed prompts of the log's own conversation: the `parentUuid` each was written under,
    /// and its ordinal (the most recent [`MAX_PROMPT_PARENTS`], the latest prompt per parent).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    prompt_parents: VecDeque<(String, u64)>,
    /// Where the session's saved outputs are: taken from the log's path before every pass,
    /// never kept in the resume state.
    #[serde(skip)]
    saved_outputs: SavedOutputs,
}

/// The folder Claude Code saves a session's large tool outputs in is
/// `<project>/<session-uuid>/tool-results/`, beside the session's log
/// `<project>/<session-uuid>.jsonl`. Its subagents' outputs go there too: they run under the
/// session's id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SavedOutputs {
    /// The project folder, which holds the session's folder.
    project: Option<PathBuf>,
    /// The session folder's name, when the log's path says it (a subagent log beside the
    /// sessions names its session only in its records: the parent's `sessionId`).
    session: Option<String>,
}

impl SavedOutputs {
    fn of_log(path: &Path) -> SavedOutputs {
        let name_of = |p: &Path| p.file_name().and_then(OsStr::to_str).map(str::to_owned);
        let dir = path.parent();
        if dir.and_then(Path::file_name) == Some(OsStr::new("subagents")) {
            let session_dir = dir.and_then(Path::parent);
            return SavedOutputs {
                project: session_dir.and_then(Path::parent).map(Path::to_path_buf),
                session: session_dir.and_then(name_of),
            };
        }
        let stem = path.file_stem().and_then(OsStr::to_str).unwrap_or_default();
        SavedOutputs {
            project: dir.map(Path::to_path_buf),
            session: (!stem.is_empty() && !stem.starts_with("agent-")).then(|| stem.to_owned()),
        }
    }

    /// The full output of a result whose log text names the file it was saved in
    /// (`reference`). `None` when the file is not in this session's `tool-results` folder, is
    /// missing, or cannot be read.
    fn read(&self, reference: &str, session: &SessionDraft) -> Option<String> {
        let project = self.project.as_deref()?;
        let folder = match &self.session {
            Some(folder) => folder.as_str(),
            None => session.parent_session.as_str(),
        };
        if folder.is_empty() {
            return None;
        }
        let name = saved_output_name(reference, folder)?;
        let path = project.join(folder).join(TOOL_RESULTS_FOLDER).join(name);
        read_saved_output(&path, MAX_TEXT).ok()
    }
}

/// The state to parse the log at `path` from its start. The path names the session: its file
/// stem, and for a subagent log also its parent session.
pub fn start(path: &Path) -> io::Result<ResumeState> {
    let name_of = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .and_then(OsStr::to_str)
            .unwrap_or_default()
            .to_owned()
    };
    let stem = path.file_stem().and_then(OsStr::to_str).unwrap_or_default();
    let dir = path.parent();
    let mut session = SessionDraft::new(NAME, PARSER);
    let mut state = State::default();

    let in_subagents_dir = name_of(dir) == "subagents";
    if in_subagents_dir {
        let session_dir = dir.and_then(Path::parent);
        let parent = name_of(session_dir);
        session.project_fallback = name_of(session_dir.and_then(Path::parent));
        session.native_id = native_id(&format!("{parent}.{stem}"));
        if let Some(parent) = native_id(&parent) {
            session.set_parent(&parent, "subagent");
        }
        state.subagent_log = true;
    } else {
        session.project_fallback = name_of(dir);
        if stem.starts_with("agent-") {
            state.stem_awaiting_parent = Some(stem.to_owned());
            state.subagent_log = true;
        } else {
            session.native_id = native_id(stem);
        }
    }
    if session.native_id.is_none() && state.stem_awaiting_parent.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a session", path.display()),
        ));
    }
    Ok(ResumeState::new(session, state))
}

/// Parses the log at `path` (read through `reader`) from where `resume` stopped, or from the
/// start.
pub fn parse_from<R: Read + Seek>(
    path: &Path,
    reader: R,
    resume: Option<ResumeState>,
) -> io::Result<Parsed> {
    let mut state = match resume {
        Some(state) => state,
        None => start(path)?,
    };
    state.format.reading(path);
    super::parse_lines(reader, state)
}

pub fn parse_file(path: &Path) -> io::Result<Parsed> {
    parse_from(path, File::open(path)?, None)
}

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "Claude Code",
    default_roots: |places| vec![places.home.join(".claude/projects")],
    discover: discover::claude_logs,
    recognizes,
    reader: Reader::Lines(read_lines::<State>),
};

impl LineFormat for State {
    fn start(path: &Path) -> io::Result<ResumeState> {
        start(path)
    }

    fn reading(&mut self, path: &Path) {
        self.saved_outputs = SavedOutputs::of_log(path);
    }
}

/// A file (not a Codex rollout) whose first record has Claude Code's shape: a `sessionId`, or
/// a `type` with a `uuid`, `leafUuid` or `message`. An empty `.jsonl` file too: Claude Code
/// creates the log before its first record.
fn recognizes(path: &Path, head: &[u8]) -> bool {
    if discover::is_rollout(path) {
        return false;
    }
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    if first.iter().all(u8::is_ascii_whitespace) {
        return path.extension().is_some_and(|e| e == "jsonl");
    }
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(first) else {
        return false;
    };
    let has = |k: &str| record.contains_key(k);
    has("sessionId") || (has("type") && (has("uuid") || has("leafUuid") || has("message")))
}

/// The coarse class of a Claude Code tool, for filtering.
pub fn category(tool: &str) -> &'static str {
    match tool {
        "Read" | "NotebookRead" => "read",
        "Glob" | "Grep" | "LS" => "search",
        "Edit" | "MultiEdit" | "Write" | "NotebookEdit" => "edit",
        "Bash" | "BashOutput" | "KillShell" | "KillBash" => "shell",
        "Task" | "Agent" => "task",
        "WebFetch" | "WebSearch" | "web_search" | "web_fetch" => "web",
        _ => "other",
    }
}

impl Format for State {
    fn record(&mut self, record: &Map<String, Value>, sink: &mut Sink<'_>) -> Result<(), String> {
        let kind = str_at(record, "type");
        match kind {
            "user" | "assistant" | "system" => {
                self.note_context(record, sink);
                match kind {
                    "user" => self.user(record, sink),
                    "assistant" => self.assistant(record, sink),
                    _ => system(record, sink),
                }
            }
            "summary" => {
                sink.session
                    .note_title(str_at(record, "summary"), TitleSource::Summary);
                Ok(())
            }
            "ai-title" => {
                sink.session
                    .note_title(str_at(record, "aiTitle"), TitleSource::Generated);
                Ok(())
            }
            "custom-title" => {
                sink.session
                    .note_title(str_at(record, "customTitle"), TitleSource::Custom);
                Ok(())
            }
            "attachment" => {
                let attachment = record.get("attachment").and_then(Value::as_object);
                match attachment.map(|a| str_at(a, "type")) {
                    Some("queued_command") => {
                        self.note_context(record, sink);
                        queued_prompt(record, attachment, sink);
                        Ok(())
                    }
                    other => {
                        sink.report
                            .skipped(&format!("attachment/{}", other.unwrap_or("?")));
                        Ok(())
                    }
                }
            }
            "" => Err("a record without a type".to_owned()),
            other => {
                sink.report.skipped(other);
                Ok(())
            }
        }
    }
}

impl State {
    /// Session fields every conversation record repeats.
    fn note_context(&mut self, record: &Map<String, Value>, sink: &mut Sink<'_>) {
        let session_id = str_at(record, "sessionId");
        if !session_id.is_empty()
            && let Some(stem) = self.stem_awaiting_parent.take()
        {
            sink.session.native_id = native_id(&format!("{session_id}.{stem}"));
            if let Some(parent) = native_id(session_id) {
                sink.session.set_parent(&parent, "subagent");
            }
        }
        sink.session.note_cwd(str_at(record, "cwd"));
        sink.session.note_git_branch(str_at(record, "gitBranch"));
        sink.session.note_agent_version(str_at(record, "version"));
        if let Some(ms) = timestamp_at(record, "timestamp") {
            sink.session.note_time(ms);
        }
    }

    fn user(&mut self, record: &Map<String, Value>, sink: &mut Sink<'_>) -> Result<(), String> {
        let message = api_message(record)?;
        let mut pieces = Vec::new();
        let mut has_results = false;
        match message.get("content") {
            Some(Value::String(text)) => pieces.push(text.clone()),
            Some(Value::Array(blocks)) => {
                for block in blocks.iter().filter_map(Value::as_object) {
                    match str_at(block, "type") {
                        "text" => pieces.push(str_at(block, "text").to_owned()),
                        "tool_result" => {
                            has_results = true;
                            self.attach_result(record, block, sink);
                        }
                        _ => pieces.extend(placeholder(block)),
                    }
                }
            }
            _ => return Err("a user message without content".to_owned()),
        }
        pieces.retain(|piece| !piece.is_empty());
        if pieces.is_empty() {
            // Tool results are now attached to their calls: no message of their own.
            if !has_results {
                sink.report.skipped("user/no-content");
            }
            return Ok(());
        }
        let content = pieces.join("\n");
        let sidechain = flag_at(record, "isSidechain");
        let compact_summary = flag_at(record, "isCompactSummary");
        let generated = flag_at(record, "isMeta") || compact_summary || is_generated(&content);
        if !generated {
            if !has_results {
                // A new prompt on this chain: results of its earlier calls will not come any
                // more. (Text riding along with results may arrive while parallel calls run.)
                sink.transcript
                    .give_up_where(|held| held.sidechain == sidechain);
                self.branch_point(record, sidechain, sink);
            }
            if !sidechain || self.subagent_log {
                sink.session
                    .note_user_message(&content, !is_wrapped_command(&content));
            }
        }
        sink.transcript.push(Message {
            content,
            system: generated,
            compact_boundary: compact_summary,
            ..message_base(record, "user")
        });
        Ok(())
    }

    fn assistant(
        &mut self,
        record: &Map<String, Value>,
        sink: &mut Sink<'_>,
    ) -> Result<(), String> {
        let message = api_message(record)?;
        let mut text = Vec::new();
        let mut thinking = Vec::new();
        let mut tool_calls = Vec::new();
        let mut server_results = Vec::new();
        match message.get("content") {
            Some(Value::String(t)) => text.push(t.as_str()),
            Some(Value::Array(blocks)) => {
                for block in blocks.iter().filter_map(Value::as_object) {
                    match str_at(block, "type") {
                        "text" => text.push(str_at(block, "text")),
                        "thinking" => thinking.push(str_at(block, "thinking")),
                        "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                            tool_calls.push(tool_call(block));
                        }
                        // Results of tools the API ran itself (web search) come in the same
                        // assistant message as their call.
                        kind if kind.ends_with("_tool_result") => server_results.push(block),
                        _ => {}
                    }
                }
            }
            _ => return Err("an assistant message without content".to_owned()),
        }
        if text.is_empty() && thinking.is_empty() && tool_calls.is_empty() {
            for block in server_results {
                self.attach_result(record, block, sink);
            }
            sink.report.skipped("assistant/no-content");
            return Ok(());
        }
        let api_id = str_at(message, "id");
        let reported = message
            .get("usage")
            .and_then(Value::as_object)
            .map(usage_of)
            .unwrap_or_default();
        let usage = self.uncounted_usage(api_id, &reported);
        sink.transcript.push(Message {
            content: text.join("\n"),
            thinking: thinking.join("\n"),
            tool_calls,
            model: str_at(message, "model").to_owned(),
            api_message_id: api_id.to_owned(),
            usage,
            ..message_base(record, "assistant")
        });
        for block in server_results {
            self.attach_result(record, block, sink);
        }
        Ok(())
    }

    /// A typed prompt written under the same parent as an earlier one starts a new branch
    /// from that point: the user edited that prompt (rewind) or sent it again, and Claude Code
    /// left the first attempt in the log. Its messages, from the earlier prompt up to this
    /// one, are flagged abandoned. Only prompts of the log's own conversation count: the
    /// subagents an old main log holds run side by side, each from a prompt without parent.
    fn branch_point(&mut self, record: &Map<String, Value>, sidechain: bool, sink: &mut Sink<'_>) {
        if sidechain != self.subagent_log {
            return;
        }
        // A rewind to the first prompt writes a new root: a null parent, like the first. A
        // record without the key is not part of a chain.
        let parent = match record.get("parentUuid") {
            Some(Value::String(parent)) => parent.as_str(),
            Some(Value::Null) => "",
            _ => return,
        };
        let ordinal = sink.transcript.next_ordinal();
        if let Some(i) = self.prompt_parents.iter().position(|(p, _)| p == parent)
            && let Some((_, earlier)) = self.prompt_parents.remove(i)
        {
            sink.transcript.abandon(Abandoned {
                first: earlier,
                end: ordinal,
                sidechain,
            });
        }
        if self.prompt_parents.len() == MAX_PROMPT_PARENTS {
            self.prompt_parents.pop_front();
        }
        self.prompt_parents.push_back((parent.to_owned(), ordinal));
    }

    /// The part of `reported` not already counted for API message `api_id`, which is then
    /// counted.
    fn uncounted_usage(&mut self, api_id: &str, reported: &TokenUsage) -> TokenUsage {
        if api_id.is_empty() {
            return reported.clone();
        }
        let counted = match self.counted_usage.iter_mut().find(|(id, _)| id == api_id) {
            Some((_, counted)) => counted,
            None => {
                if self.counted_usage.len() == RECENT_API_MESSAGES {
                    self.counted_usage.pop_front();
                }
                self.counted_usage
                    .push_back((api_id.to_owned(), TokenUsage::default()));
                match self.counted_usage.back_mut() {
                    Some((_, counted)) => counted,
                    None => return reported.clone(),
                }
            }
        };
        let uncounted = TokenUsage {
            input: reported.input.saturating_sub(counted.input),
            output: reported.output.saturating_sub(counted.output),
            cache_creation: reported
                .cache_creation
                .saturating_sub(counted.cache_creation),
            cache_read: reported.cache_read.saturating_sub(counted.cache_read),
            reasoning: reported.reasoning.saturating_sub(counted.reasoning),
        };
        *counted = TokenUsage {
            input: counted.input.max(reported.input),
            output: counted.output.max(reported.output),
            cache_creation: counted.cache_creation.max(reported.cache_creation),
            cache_read: counted.cache_read.max(reported.cache_read),
            reasoning: counted.reasoning.max(reported.reasoning),
        };
        uncounted
    }
}

fn system(record: &Map<String, Value>, sink: &mut Sink<'_>) -> Result<(), String> {
    let subtype = str_at(record, "subtype");
    let compact_boundary = subtype == "compact_boundary";
    let content = str_at(record, "content");
    if content.is_empty() && !compact_boundary {
        sink.report.skipped(&format!("system/{subtype}"));
        return Ok(());
    }
    sink.transcript.push(Message {
        content: content.to_owned(),
        system: true,
        compact_boundary,
        ..message_base(record, "system")
    });
    Ok(())
}

fn api_message(record: &Map<String, Value>) -> Result<&Map<String, Value>, String> {
    record
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("a {} record without a message", str_at(record, "type")))
}

/// The fields every message takes from its record.
/// A prompt the user typed while the agent worked (Claude Code ≥ 2.1.101 writes it as a
/// `queued_command` attachment, in the conversation's chain; older versions only as a
/// `queue-operation`): a user message like any other. Its `prompt` is a string, or content
/// blocks when it carried an image. It does not end the turn, so no call is given up on.
fn queued_prompt(
    record: &Map<String, Value>,
    attachment: Option<&Map<String, Value>>,
    sink: &mut Sink<'_>,
) {
    let content = result_text(attachment.and_then(|a| a.get("prompt")));
    if content.trim().is_empty() {
        sink.report
            .skipped("attachment/queued_command-without-text");
        return;
    }
    sink.session.note_user_message(&content, true);
    sink.transcript.push(Message {
        content,
        ..message_base(record, "user")
    });
}

fn message_base(record: &Map<String, Value>, role: &str) -> Message {
    // A compaction boundary starts a new chain (no parent) but names the message it follows.
    let parent = match str_at(record, "parentUuid") {
        "" => str_at(record, "logicalParentUuid"),
        parent => parent,
    };
    Message {
        role: role.to_owned(),
        source_uuid: str_at(record, "uuid").to_owned(),
        parent_uuid: parent.to_owned(),
        sidechain: flag_at(record, "isSidechain"),
        timestamp_ms: timestamp_at(record, "timestamp"),
        request_id: str_at(record, "requestId").to_owned(),
        ..Message::default()
    }
}

/// The file a tool call reads or edits (Read, Edit, Write, MultiEdit, NotebookEdit).
fn file_path_of(input: Option<&Value>) -> &str {
    let input = input.and_then(Value::as_object);
    ["file_path", "notebook_path"]
        .iter()
        .find_map(|k| input.and_then(|i| i.get(*k)).and_then(Value::as_str))
        .unwrap_or("")
}

fn tool_call(block: &Map<String, Value>) -> ToolCall {
    let name = str_at(block, "name");
    ToolCall {
        id: str_at(block, "id").to_owned(),
        name: name.to_owned(),
        category: category(name).to_owned(),
        // Compact JSON with sorted keys: the same input always gives the same text.
        input: block.get("input").map(Value::to_string).unwrap_or_default(),
        file_path: file_path_of(block.get("input")).to_owned(),
        ..ToolCall::default()
    }
}

impl State {
    /// Attaches a result to its call. A result saved beside the log is read from its file when
    /// the record is read, so every pass that reads the record gets the same text.
    fn attach_result(
        &self,
        record: &Map<String, Value>,
        block: &Map<String, Value>,
        sink: &mut Sink<'_>,
    ) {
        let mut result = result_text(block.get("content"));
        let saved = saved_output_reference(&result)
            .map(|reference| self.saved_outputs.read(reference, sink.session));
        match saved {
            Some(Some(full)) => result = full,
            Some(None) => sink.report.saved_outputs_unread += 1,
            None => {}
        }
        let outcome = ToolOutcome {
            result,
            is_error: flag_at(block, "is_error"),
            subagent_session: spawned_subagent(record),
        };
        if !sink
            .transcript
            .attach(str_at(block, "tool_use_id"), outcome)
        {
            sink.report.orphan_tool_results += 1;
        }
    }
}

/// The path a result names as where its full output was saved: the result is Claude Code's
/// `<persisted-output>` preview, whose header line ends with `Full output saved to: <path>`
/// (an absolute path on the machine that wrote the log, `\`-separated on Windows).
fn saved_output_reference(result: &str) -> Option<&str> {
    let rest = result.trim_start().strip_prefix(PERSISTED_OUTPUT_TAG)?;
    rest.lines()
        .take_while(|line| !line.starts_with("Preview"))
        .find_map(|line| line.split_once(SAVED_TO))
        .map(|(_, path)| path.trim())
        .filter(|path| !path.is_empty())
}

/// The file name of a saved output's path, when the path ends in `<session>/tool-results/<name>`
/// for this session's folder. Only that name is used, joined to the log's own session folder:
/// a log is untrusted input, and no path it holds is followed anywhere else.
fn saved_output_name<'a>(reference: &'a str, session: &str) -> Option<&'a str> {
    let mut parts = reference.rsplit(['/', '\\']);
    let name = parts.next()?;
    let folder = parts.next()?;
    let session_folder = parts.next()?;
    let plain_name = !matches!(name, "" | "." | "..") && !name.contains(['\0', ':']);
    (plain_name && folder == TOOL_RESULTS_FOLDER && session_folder == session).then_some(name)
}

/// A saved output's text, at most `limit` bytes of it. Only a regular file is read (not a link
/// to elsewhere). Array results are saved as JSON (`<id>.json`, their content blocks): their
/// text is read as the log's blocks would be.
fn read_saved_output(path: &Path, limit: usize) -> io::Result<String> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let text = fit::read_text(File::open(path)?, metadata.len(), limit)?;
    if path.extension().is_some_and(|ext| ext == "json")
        && metadata.len() <= limit as u64
        && let Ok(blocks @ Value::Array(_)) = serde_json::from_str::<Value>(&text)
    {
        return Ok(result_text(Some(&blocks)));
    }
    Ok(text)
}

/// The native id of the subagent a `Task`/`Agent` result names (`toolUseResult.agentId`, in
/// versions that keep subagents in their own logs): `<session>.agent-<id>`, as [`start`]
/// names that log.
fn spawned_subagent(record: &Map<String, Value>) -> String {
    let agent_id = record
        .get("toolUseResult")
        .and_then(Value::as_object)
        .map(|result| str_at(result, "agentId"))
        .unwrap_or_default();
    let session_id = str_at(record, "sessionId");
    if agent_id.is_empty() || session_id.is_empty() {
        return String::new();
    }
    native_id(&format!("{session_id}.agent-{agent_id}"))
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default()
}

/// A tool result's text: a string, or text blocks (images and other blocks as placeholders).
fn result_text(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| match block {
                Value::String(text) => Some(text.clone()),
                Value::Object(block) if str_at(block, "type") == "text" => {
                    Some(str_at(block, "text").to_owned())
                }
                Value::Object(block) => placeholder(block),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

/// What stands in for a non-text block (an image's bytes do not belong in a transcript).
fn placeholder(block: &Map<String, Value>) -> Option<String> {
    let kind = str_at(block, "type");
    let media = block
        .get("source")
        .and_then(Value::as_object)
        .map(|source| str_at(source, "media_type"))
        .unwrap_or_default();
    match (kind, media) {
        ("image" | "document", "") => Some(format!("[{kind}]")),
        ("image" | "document", media) => Some(format!("[{kind}: {media}]")),
        _ => None,
    }
}

fn usage_of(usage: &Map<String, Value>) -> TokenUsage {
    let count = |key| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    TokenUsage {
        input: count("input_tokens"),
        output: count("output_tokens"),
        cache_creation: count("cache_creation_input_tokens"),
        cache_read: count("cache_read_input_tokens"),
        reasoning: 0,
    }
}

/// User-role text that Claude Code wrote itself: output of local commands, their caveat,
/// interruption notices.
fn is_generated(text: &str) -> bool {
    const PREFIXES: [&str; 7] = [
        "<local-command-stdout>",
        "<local-command-stderr>",
        "<local-command-caveat>",
        "<bash-stdout>",
        "<bash-stderr>",
        "Caveat: The messages below were generated by the user while running local commands",
        "[Request interrupted by user",
    ];
    let text = text.trim_start();
    PREFIXES.iter().any(|p| text.starts_with(p))
}

/// A slash command or `!` shell command the user typed: a user message, but not a prompt
/// worth showing as the session's first message.
fn is_wrapped_command(text: &str) -> bool {
    let text = text.trim_start();
    ["<command-name>", "<command-message>", "<bash-input>"]
        .iter()
        .any(|p| text.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "/home/u/.claude/projects/-home-u-app/s-1.jsonl";

    fn parse(path: &str, lines: &[&str]) -> Parsed {
        let mut log = lines.join("\n");
        log.push('\n');
        parse_from(Path::new(path), io::Cursor::new(log), None).unwrap()
    }

    #[test]
    fn file_names_name_sessions_and_their_parents() {
        let id = |path: &str| {
            let state = start(Path::new(path)).unwrap();
            state
                .session()
                .map(|s| (s.native_id.as_str().to_owned(), s.parent_session, s.project))
        };
        assert_eq!(
            id(MAIN),
            Some(("s-1".into(), String::new(), "-home-u-app".into()))
        );
        assert_eq!(
            id("/p/-home-u-app/s-1/subagents/agent-a1.jsonl"),
            Some(("s-1.agent-a1".into(), "s-1".into(), "-home-u-app".into()))
        );
        assert_eq!(id("/p/-home-u-app/agent-a1.jsonl"), None);
        let parsed = parse(
            "/p/-home-u-app/agent-a1.jsonl",
            &[
                r#"{"type":"user","sessionId":"s-1","isSidechain":true,"message":{"role":"user","content":"Warmup"}}"#,
            ],
        );
        let session = parsed.state.session().unwrap();
        assert_eq!(session.native_id.as_str(), "s-1.agent-a1");
        assert_eq!(
            (
                session.parent_session.as_str(),
                session.relationship.as_str()
            ),
            ("s-1", "subagent")
        );
        assert_eq!(session.first_message, "Warmup");
        assert_eq!(parsed.messages.len(), 1);
        assert!(start(Path::new("/")).is_err());
    }

    #[test]
    fn split_api_messages_count_usage_once() {
        let record = |block: &str, output: u64| {
            format!(
                r#"{{"type":"assistant","message":{{"id":"msg_1","role":"assistant","model":"m","content":[{block}],"usage":{{"input_tokens":5,"cache_read_input_tokens":100,"output_tokens":{output}}}}}}}"#
            )
        };
        let lines = [
            record(r#"{"type":"thinking","thinking":"hmm"}"#, 2),
            record(r#"{"type":"text","text":"done"}"#, 40),
            record(r#"{"type":"text","text":"again"}"#, 40),
        ];
        let parsed = parse(MAIN, &lines.iter().map(String::as_str).collect::<Vec<_>>());
        let usage: Vec<(u64, u64, u64)> = parsed
            .messages
            .iter()
            .map(|m| (m.usage.input, m.usage.cache_read, m.usage.output))
            .collect();
        assert_eq!(usage, [(5, 100, 2), (0, 0, 38), (0, 0, 0)]);
        assert_eq!(parsed.messages[0].thinking, "hmm");
    }

    #[test]
    fn tool_results_attach_to_their_calls_and_are_not_messages() {
        let parsed = parse(
            MAIN,
            &[
                r#"{"type":"user","uuid":"u1","message":{"role":"user","content":"list files"}}"#,
                r#"{"type":"assistant","uuid":"a1","parentUuid":"u1","message":{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls","description":"List"}}]}}"#,
                r#"{"type":"user","uuid":"r1","parentUuid":"a1","sessionId":"s-1","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"a.txt"},{"type":"image","source":{"media_type":"image/png","data":"AAAA"}}],"is_error":true}]},"toolUseResult":{"agentId":"x9"}}"#,
                r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"unknown","content":"late"}]}}"#,
            ],
        );
        assert_eq!(parsed.messages.len(), 2);
        let call = &parsed.messages[1].tool_calls[0];
        assert_eq!(call.input, r#"{"command":"ls","description":"List"}"#);
        assert_eq!(call.result, "a.txt\n[image: image/png]");
        assert!(call.is_error);
        assert_eq!(call.category, "shell");
        assert_eq!(call.subagent_session, "s-1.agent-x9");
        assert_eq!(parsed.report.orphan_tool_results, 1);
    }

    #[test]
    fn a_new_prompt_gives_up_on_unanswered_calls() {
        let parsed = parse(
            MAIN,
            &[
                r#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Read","input":{}}]}}"#,
                r#"{"type":"user","isMeta":true,"message":{"role":"user","content":"injected context"}}"#,
                r#"{"type":"user","isSidechain":true,"message":{"role":"user","content":"subagent prompt"}}"#,
            ],
        );
        assert!(
            parsed.messages.is_empty(),
            "neither record answers or ends the main chain's turn"
        );
        let parsed = parse(
            MAIN,
            &[
                r#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Read","input":{}}]}}"#,
                r#"{"type":"user","message":{"role":"user","content":"never mind"}}"#,
            ],
        );
        assert_eq!(parsed.messages.len(), 2);
        assert_eq!(parsed.messages[0].tool_calls[0].result, "");
    }

    #[test]
    fn generated_and_command_messages() {
        let parsed = parse(
            MAIN,
            &[
                r#"{"type":"user","message":{"role":"user","content":"<command-name>/model</command-name>"}}"#,
                r#"{"type":"user","message":{"role":"user","content":"<local-command-stdout>Set model</local-command-stdout>"}}"#,
                r#"{"type":"user","isCompactSummary":true,"message":{"role":"user","content":"This session is being continued"}}"#,
                r#"{"type":"system","subtype":"compact_boundary","parentUuid":null,"logicalParentUuid":"p0","content":"Conversation compacted"}"#,
                r#"{"type":"system","subtype":"turn_duration","durationMs":5}"#,
                r#"{"type":"user","message":{"role":"user","content":"real prompt"}}"#,
                r#"{"type":"custom-title","customTitle":"Mine"}"#,
                r#"{"type":"ai-title","aiTitle":"Generated"}"#,
            ],
        );
        let flags: Vec<(&str, bool, bool)> = parsed
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.system, m.compact_boundary))
            .collect();
        assert_eq!(
            flags,
            [
                ("user", false, false),
                ("user", true, false),
                ("user", true, true),
                ("system", true, true),
                ("user", false, false),
            ]
        );
        assert_eq!(parsed.messages[3].parent_uuid, "p0");
        let session = parsed.state.session().unwrap();
        assert_eq!(session.first_message, "real prompt");
        assert_eq!(session.user_message_count, 2);
        assert_eq!(session.title, "Mine");
        assert_eq!(parsed.report.skipped_records["system/turn_duration"], 1);
    }

    /// A project folder under the system temp dir, removed when dropped.
    struct Project(PathBuf);

    impl Project {
        fn new(name: &str) -> Project {
            let dir = std::env::temp_dir().join(format!(
                "agentsync-saved-{name}-{}/projects/-home-u-app",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Project(dir)
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Project {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(self.0.parent().unwrap().parent().unwrap());
        }
    }

    const SESSION: &str = "5e6f7a8b-0000-4000-8000-00000000000a";

    /// A call and its result as Claude Code logs an output it saved: a `<persisted-output>`
    /// preview naming the file at `saved_at`.
    fn log_with_saved_output(saved_at: &str) -> String {
        let preview = format!(
            "<persisted-output>\nOutput too large (41.3KB). Full output saved to: {saved_at}\n\n\
             Preview (first 2KB):\nline 1\nline 2\n...\n</persisted-output>"
        );
        [
            serde_json::json!({"type": "assistant", "sessionId": SESSION, "uuid": "a1",
                "message": {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "seq 9999"}}]}}),
            serde_json::json!({"type": "user", "sessionId": SESSION, "uuid": "u1", "parentUuid": "a1",
                "message": {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": preview}]}}),
        ]
        .iter()
        .map(|record| format!("{record}\n"))
        .collect()
    }

    /// The result the call ends with, and how many saved outputs were not read.
    fn result_of(log_path: &Path, log: &str) -> (String, u64) {
        let mut parsed = parse_from(log_path, io::Cursor::new(log), None).unwrap();
        let mut messages = std::mem::take(&mut parsed.messages);
        messages.extend(parsed.state.finish());
        (
            messages[0].tool_calls[0].result.clone(),
            parsed.report.saved_outputs_unread,
        )
    }

    #[test]
    fn a_saved_output_replaces_its_preview() {
        let project = Project::new("read");
        let full = "line 1\nline 2\n".repeat(3000);
        project.write(&format!("{SESSION}/tool-results/toolu_1.txt"), &full);
        let log = project.0.join(format!("{SESSION}.jsonl"));
        // The path names the folder on the machine that wrote the log; the file is looked
        // for in the log's own session folder.
        let elsewhere = format!(
            "/Users/dev/.claude/projects/-Users-dev-app/{SESSION}/tool-results/toolu_1.txt"
        );
        assert_eq!(
            result_of(&log, &log_with_saved_output(&elsewhere)),
            (full.clone(), 0)
        );
        let windows = format!(
            "C:\\Users\\dev\\.claude\\projects\\C--app\\{SESSION}\\tool-results\\toolu_1.txt"
        );
        assert_eq!(
            result_of(&log, &log_with_saved_output(&windows)),
            (full.clone(), 0)
        );

        // A subagent's outputs are saved in its session's folder.
        let subagent = project
            .0
            .join(format!("{SESSION}/subagents/agent-a1.jsonl"));
        let at = project
            .0
            .join(format!("{SESSION}/tool-results/toolu_1.txt"));
        let log_text = log_with_saved_output(at.to_str().unwrap());
        assert_eq!(result_of(&subagent, &log_text), (full.clone(), 0));
        let beside = project.0.join("agent-a2.jsonl");
        assert_eq!(result_of(&beside, &log_text), (full, 0));

        // Array results are saved as their content blocks in JSON.
        project.write(
            &format!("{SESSION}/tool-results/toolu_2.json"),
            r#"[{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]"#,
        );
        let at = format!("/h/.claude/projects/p/{SESSION}/tool-results/toolu_2.json");
        assert_eq!(
            result_of(&log, &log_with_saved_output(&at)),
            ("first\nsecond".to_owned(), 0)
        );
    }

    #[test]
    fn a_path_outside_the_sessions_tool_results_is_not_followed() {
        let project = Project::new("escape");
        let log = project.0.join(format!("{SESSION}.jsonl"));
        let secret = project.write("secret.txt", "not for the archive");
        project.write(
            "other-session/tool-results/toolu_1.txt",
            "another session's output",
        );
        project.write(&format!("{SESSION}/secret.txt"), "not a saved output");
        let escaping = [
            format!(
                "{}/{SESSION}/tool-results/../../secret.txt",
                project.0.display()
            ),
            format!("{SESSION}/tool-results/../secret.txt"),
            secret.display().to_string(),
            "/etc/passwd".to_owned(),
            format!(
                "{}/other-session/tool-results/toolu_1.txt",
                project.0.display()
            ),
            format!("{SESSION}/tool-results/.."),
            format!("{SESSION}/tool-results/"),
            "toolu_1.txt".to_owned(),
        ];
        for reference in escaping {
            let (result, unread) = result_of(&log, &log_with_saved_output(&reference));
            assert!(
                result.starts_with("<persisted-output>"),
                "{reference}: {result}"
            );
            assert!(result.contains("Preview (first 2KB)"), "{reference}");
            assert_eq!(unread, 1, "{reference}");
        }
    }

    #[test]
    fn a_missing_saved_output_keeps_the_preview() {
        let project = Project::new("missing");
        let log = project.0.join(format!("{SESSION}.jsonl"));
        let at = format!("/h/.claude/projects/p/{SESSION}/tool-results/toolu_1.txt");
        let text = log_with_saved_output(&at);
        let (result, unread) = result_of(&log, &text);
        assert!(
            result.starts_with("<persisted-output>\nOutput too large"),
            "{result}"
        );
        assert!(
            result.ends_with("line 2\n...\n</persisted-output>"),
            "{result}"
        );
        assert_eq!(unread, 1);

        // A folder where the file should be is no output either.
        fs::create_dir_all(
            project
                .0
                .join(format!("{SESSION}/tool-results/toolu_1.txt")),
        )
        .unwrap();
        assert_eq!(result_of(&log, &text).1, 1);

        // Text that only mentions the tag is a result like any other.
        let plain = text.replace("<persisted-output>\\n", "grep found: <persisted-output>\\n");
        assert_eq!(result_of(&log, &plain).1, 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_saved_output_that_links_elsewhere_is_not_read() {
        let project = Project::new("link");
        let secret = project.write("secret.txt", "not for the archive");
        let tool_results = project.0.join(format!("{SESSION}/tool-results"));
        fs::create_dir_all(&tool_results).unwrap();
        std::os::unix::fs::symlink(&secret, tool_results.join("toolu_1.txt")).unwrap();
        let log = project.0.join(format!("{SESSION}.jsonl"));
        let at = format!("/h/.claude/projects/p/{SESSION}/tool-results/toolu_1.txt");
        let (result, unread) = result_of(&log, &log_with_saved_output(&at));
        assert!(result.starts_with("<persisted-output>"), "{result}");
        assert_eq!(unread, 1);
    }

    #[test]
    fn a_saved_output_is_read_up_to_the_text_limit() {
        let project = Project::new("limit");
        let path = project.write("big.txt", &"x".repeat(5000));
        let text = read_saved_output(&path, 1000).unwrap();
        assert!(text.len() <= 1000);
        assert!(
            text.ends_with(&format!("[agentsync: {} bytes cut]", 5000 - 936)),
            "{text}"
        );
        assert_eq!(read_saved_output(&path, 5000).unwrap().len(), 5000);
    }

    /// A record of a main log's chain: `uuid`, `parentUuid` (`None`: null), and the rest.
    fn chained(uuid: &str, parent: Option<&str>, rest: &str) -> String {
        let parent = parent.map_or("null".to_owned(), |p| format!("\"{p}\""));
        format!(r#"{{"uuid":"{uuid}","parentUuid":{parent},{rest}}}"#)
    }

    fn typed(text: &str) -> String {
        format!(r#""type":"user","message":{{"role":"user","content":"{text}"}}"#)
    }

    fn said(text: &str) -> String {
        format!(
            r#""type":"assistant","message":{{"role":"assistant","content":[{{"type":"text","text":"{text}"}}]}}"#
        )
    }

    fn abandoned(messages: &[Message]) -> Vec<u64> {
        messages
            .iter()
            .filter(|m| m.abandoned)
            .map(|m| m.ordinal)
            .collect()
    }

    /// Parses `lines` in two passes, cut after `cut` lines, and flags what the second pass
    /// reports abandoned, as the host does.
    fn parse_in_two(path: &str, lines: &[String], cut: usize) -> Vec<Message> {
        let text = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let whole = text(lines);
        let first =
            parse_from(Path::new(path), io::Cursor::new(text(&lines[..cut])), None).unwrap();
        let second =
            parse_from(Path::new(path), io::Cursor::new(whole), Some(first.state)).unwrap();
        let mut messages = first.messages;
        for range in &second.abandoned {
            assert!(range.end <= second.messages.first().map_or(u64::MAX, |m| m.ordinal));
            for m in &mut messages {
                range.apply_to(m);
            }
        }
        messages.extend(second.messages);
        messages
    }

    #[test]
    fn an_edited_prompt_abandons_the_first_attempt_only() {
        let sidechain = r#""isSidechain":true,"type":"user","message":{"role":"user","content":"subagent at work"}"#;
        let lines = [
            chained("u1", None, &typed("first prompt")),
            chained("a1", Some("u1"), &said("first answer")),
            chained("u2", Some("a1"), &typed("second prompt")),
            chained("a2", Some("u2"), &said("second answer")),
            // A subagent of an old version, logged in the main log while the turn ran.
            chained("s1", None, sidechain),
            chained("a3", Some("a2"), &said("more of it")),
            // The user rewinds to the second prompt and edits it.
            chained("u3", Some("a1"), &typed("second prompt, edited")),
            chained("a4", Some("u3"), &said("the answer that stays")),
            chained("u4", Some("a4"), &typed("third prompt")),
        ];
        let parsed = parse(MAIN, &lines.iter().map(String::as_str).collect::<Vec<_>>());
        let contents: Vec<&str> = parsed
            .messages
            .iter()
            .filter(|m| m.abandoned)
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(contents, ["second prompt", "second answer", "more of it"]);
        assert_eq!(abandoned(&parsed.messages), [2, 3, 5]);
        assert!(
            !parsed.messages[4].abandoned,
            "the subagent's record is not the branch's"
        );
        assert!(parsed.abandoned.is_empty(), "nothing was handed out before");
        assert_eq!(
            parsed.state.session().unwrap().user_message_count,
            4,
            "the abandoned prompt was typed all the same"
        );
        // Read in two passes, cut at every line: the same flags once the host applied them.
        for cut in 0..=lines.len() {
            assert_eq!(
                parse_in_two(MAIN, &lines, cut),
                parsed.messages,
                "cut after {cut} lines"
            );
        }
    }

    #[test]
    fn messages_held_for_results_are_flagged_before_they_are_handed_out() {
        let lines = [
            chained("u1", None, &typed("list files")),
            chained(
                "a1",
                Some("u1"),
                r#""type":"assistant","message":{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]}"#,
            ),
            // Rewound before the call answered: its result never comes.
            chained("u2", None, &typed("list only the logs")),
        ];
        let first = parse(
            MAIN,
            &lines[..2].iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(first.messages.len(), 1, "the call's message is held");
        let mut log = lines.join("\n");
        log.push('\n');
        let second = parse_from(Path::new(MAIN), io::Cursor::new(log), Some(first.state)).unwrap();
        assert_eq!(
            second.abandoned,
            [Abandoned {
                first: 0,
                end: 1,
                sidechain: false
            }],
            "only the prompt handed out earlier is left to the host"
        );
        assert_eq!(abandoned(&second.messages), [1]);
        assert_eq!(second.messages[0].tool_calls[0].result, "");
    }

    #[test]
    fn rewinds_to_the_same_point_and_to_the_start() {
        let lines = [
            chained("u1", None, &typed("one")),
            chained("a1", Some("u1"), &said("answer one")),
            chained("u2", Some("a1"), &typed("two")),
            chained("a2", Some("u2"), &said("answer two")),
            chained("u3", Some("a1"), &typed("two, again")),
            chained("a3", Some("u3"), &said("answer two again")),
            chained("u4", Some("a1"), &typed("two, a third time")),
            chained("a4", Some("u4"), &said("answer two a third time")),
            // Back to before the first prompt: a new root.
            chained("u5", None, &typed("start over")),
            chained("a5", Some("u5"), &said("fresh answer")),
        ];
        let parsed = parse(MAIN, &lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(abandoned(&parsed.messages), [0, 1, 2, 3, 4, 5, 6, 7]);
        for cut in 0..=lines.len() {
            assert_eq!(
                parse_in_two(MAIN, &lines, cut),
                parsed.messages,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn prompts_after_tool_results_are_no_branch() {
        let call = |id: &str| {
            format!(
                r#""type":"assistant","message":{{"role":"assistant","content":[{{"type":"tool_use","id":"{id}","name":"Read","input":{{}}}}]}}"#
            )
        };
        let answer = |id: &str, text: &str| {
            format!(
                r#""type":"user","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"{id}","content":"ok"}}{text}]}}"#
            )
        };
        let lines = [
            chained("u1", None, &typed("read both")),
            // Parallel calls: each result is a dead-end sibling of the next call.
            chained("a1", Some("u1"), &call("t1")),
            chained("r1", Some("a1"), &answer("t1", "")),
            chained("a2", Some("a1"), &call("t2")),
            // Text typed while the calls ran rides along with a result, under the same parent
            // as the first prompt: not a new branch.
            chained(
                "r2",
                None,
                &answer("t2", r#",{"type":"text","text":"and be quick"}"#),
            ),
            chained("a3", Some("r2"), &said("read them")),
            // A prompt under the same parent as a tool result record: no branch either.
            chained("u2", Some("a1"), &typed("thanks")),
        ];
        let parsed = parse(MAIN, &lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(parsed.messages.len(), 6);
        assert_eq!(abandoned(&parsed.messages), Vec::<u64>::new());
    }

    #[test]
    fn sidechain_prompts_branch_only_in_a_subagent_log() {
        let side = |text: &str| {
            format!(
                r#""isSidechain":true,"type":"user","message":{{"role":"user","content":"{text}"}}"#
            )
        };
        // Two subagents of an old version in a main log, each from a prompt without parent.
        let lines = [
            chained("s1", None, &side("first task")),
            chained("s2", None, &side("second task")),
        ];
        let parsed = parse(MAIN, &lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(abandoned(&parsed.messages), Vec::<u64>::new());
        // In a subagent's own log the sidechain is its conversation.
        let lines = [
            chained("s1", None, &side("task")),
            chained("s2", Some("s1"), &side("go on")),
            chained("s3", Some("s1"), &side("go on, edited")),
        ];
        let parsed = parse(
            "/p/-home-u-app/s-1/subagents/agent-a1.jsonl",
            &lines.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(abandoned(&parsed.messages), [1]);
    }

    #[test]
    fn records_without_a_parent_key_make_no_branch() {
        let parsed = parse(
            MAIN,
            &[
                r#"{"type":"user","message":{"role":"user","content":"one"}}"#,
                r#"{"type":"user","message":{"role":"user","content":"two"}}"#,
            ],
        );
        assert_eq!(abandoned(&parsed.messages), Vec::<u64>::new());
    }

    #[test]
    fn categories() {
        let of = |names: &[&str]| names.iter().map(|n| category(n)).collect::<Vec<_>>();
        assert_eq!(of(&["Read", "Glob", "Grep"]), ["read", "search", "search"]);
        assert_eq!(of(&["Edit", "Write", "MultiEdit"]), ["edit"; 3]);
        assert_eq!(of(&["Bash", "Task", "Agent"]), ["shell", "task", "task"]);
        assert_eq!(
            of(&["WebFetch", "WebSearch", "TodoWrite"]),
            ["web", "web", "other"]
        );
    }
}
