//! The synced data model (DESIGN.md §3): sessions, messages with tool calls and tool-result
//! events, and usage events.
//!
//! These types hold only what every machine must agree on. Local-only state (source file path,
//! size, mtime, inode, hash, secret-scan results, database row ids) lives in the hosts and never
//! reaches hashed bytes, so it cannot churn ids across peers.
//!
//! Field order in every struct is alphabetical: serialized with serde_json and with
//! default-valued fields omitted, that order *is* the canonical JSON of segment lines.

use serde::{Deserialize, Serialize};

use crate::binary::{Reader, Writer};
use crate::error::{Error, Result};
use crate::limits;
use crate::names::NativeId;

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Token counts of one model call, counted as Anthropic does whatever the agent: each token in
/// one of `input`, `cache_read`, `cache_creation`, `output` (which `pricing` prices apart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenUsage {
    /// Prompt tokens written to the prompt cache.
    #[serde(skip_serializing_if = "is_default")]
    pub cache_creation: u64,
    /// Prompt tokens read from the prompt cache.
    #[serde(skip_serializing_if = "is_default")]
    pub cache_read: u64,
    /// Prompt tokens neither read from nor written to the cache.
    #[serde(skip_serializing_if = "is_default")]
    pub input: u64,
    /// Generated tokens, reasoning included.
    #[serde(skip_serializing_if = "is_default")]
    pub output: u64,
    /// The part of `output` that was reasoning.
    #[serde(skip_serializing_if = "is_default")]
    pub reasoning: u64,
}

/// A later event about a tool call's result: progress, a subagent's answer, a late result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolResultEvent {
    #[serde(skip_serializing_if = "is_default")]
    pub content: String,
    #[serde(skip_serializing_if = "is_default")]
    pub source: String,
    #[serde(skip_serializing_if = "is_default")]
    pub status: String,
    #[serde(skip_serializing_if = "is_default")]
    pub subagent_session: String,
    #[serde(skip_serializing_if = "is_default")]
    pub timestamp_ms: Option<i64>,
}

/// One tool call made in a message, with its result attached.
/// `name` is required on decode; every other key may be omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Coarse class for filtering (read, edit, shell, search, task, ...).
    #[serde(default, skip_serializing_if = "is_default")]
    pub category: String,
    /// The file the call reads or edits, when it names one (for per-file filters).
    #[serde(default, skip_serializing_if = "is_default")]
    pub file_path: String,
    /// The agent's tool-use id.
    #[serde(default, skip_serializing_if = "is_default")]
    pub id: String,
    /// The call's input as the agent wrote it (JSON text, kept verbatim).
    #[serde(default, skip_serializing_if = "is_default")]
    pub input: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub is_error: bool,
    pub name: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub result: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub result_events: Vec<ToolResultEvent>,
    /// Native id (same origin) of the subagent session this call started.
    #[serde(default, skip_serializing_if = "is_default")]
    pub subagent_session: String,
}

/// One message of a session, at a position (`ordinal`) that never changes.
/// `ordinal` and `role` are required on decode (issue 17 item 10); every other key may be
/// omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// On a branch the user left: the turn of a prompt the user then edited or retried (the
    /// agent kept it in its log). Kept, but not part of the transcript as it went on.
    #[serde(default, skip_serializing_if = "is_default")]
    pub abandoned: bool,
    /// The model API's id of the response this message is part of (Claude `message.id`):
    /// several records of one response share it.
    #[serde(default, skip_serializing_if = "is_default")]
    pub api_message_id: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub compact_boundary: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub content: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub model: String,
    pub ordinal: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub parent_uuid: String,
    /// The API request id (Claude `requestId`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub request_id: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub sidechain: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub source_uuid: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub system: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub thinking: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub timestamp_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub usage: TokenUsage,
}

/// A session's record as its origin publishes it. Links (`parent_session`, tool calls'
/// `subagent_session`) hold native ids of the same origin; importers rewrite them to gids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub native_id: NativeId,
    /// `claude`, `codex`, ...
    pub agent: String,
    /// The parser (and its version) that produced the record, e.g. `claude-code/1`.
    pub parser: String,
    pub project: String,
    pub cwd: String,
    pub git_branch: String,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// A name the agent itself gave the session (not the user's rename, which is curation).
    pub title: String,
    pub first_message: String,
    pub parent_session: String,
    /// How this session relates to its parent (`subagent`, `continuation`, `fork`, ...).
    pub relationship: String,
    /// Messages the user typed (the manifest holds the total).
    pub user_message_count: u64,
}

/// Token use and cost reported by an agent outside any message (Codex `token_count` events,
/// totals of sessions that have usage but no messages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    pub message_ordinal: Option<u64>,
    pub source: String,
    pub model: String,
    pub usage: TokenUsage,
    pub cost_micro_usd: Option<u64>,
    pub occurred_ms: Option<i64>,
    pub dedup_key: String,
}

impl Message {
    /// Checks string lengths and counts against the v1 limits (writers and readers both call it).
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        check_len("message.content", &self.content, MAX_TEXT)?;
        check_len("message.thinking", &self.thinking, MAX_TEXT)?;
        check_len("message.model", &self.model, MAX_LABEL)?;
        check_len("message.role", &self.role, MAX_LABEL)?;
        if self.role.is_empty() {
            return Err(Error::malformed("message", "empty role"));
        }
        check_len("message.source_uuid", &self.source_uuid, MAX_PATH)?;
        check_len("message.parent_uuid", &self.parent_uuid, MAX_PATH)?;
        check_len("message.api_message_id", &self.api_message_id, MAX_PATH)?;
        check_len("message.request_id", &self.request_id, MAX_PATH)?;
        check_count("message.tool_calls", self.tool_calls.len(), MAX_TOOL_CALLS)?;
        for call in &self.tool_calls {
            check_len("tool_call.name", &call.name, MAX_LABEL)?;
            check_len("tool_call.category", &call.category, MAX_LABEL)?;
            check_len("tool_call.id", &call.id, MAX_PATH)?;
            check_len("tool_call.file_path", &call.file_path, MAX_PATH)?;
            check_len("tool_call.input", &call.input, MAX_TEXT)?;
            check_len("tool_call.result", &call.result, MAX_TEXT)?;
            check_len(
                "tool_call.subagent_session",
                &call.subagent_session,
                MAX_PATH,
            )?;
            check_count(
                "tool_call.result_events",
                call.result_events.len(),
                MAX_RESULT_EVENTS,
            )?;
            for ev in &call.result_events {
                check_len("result_event.content", &ev.content, MAX_TEXT)?;
                check_len("result_event.source", &ev.source, MAX_LABEL)?;
                check_len("result_event.status", &ev.status, MAX_LABEL)?;
                check_len(
                    "result_event.subagent_session",
                    &ev.subagent_session,
                    MAX_PATH,
                )?;
            }
        }
        Ok(())
    }
}

impl TokenUsage {
    pub(crate) fn write(&self, w: &mut Writer) {
        w.record(|w| {
            w.varint(self.input);
            w.varint(self.output);
            w.varint(self.cache_creation);
            w.varint(self.cache_read);
            w.varint(self.reasoning);
        });
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.record("usage", limits::MAX_RECORD, |r| {
            Ok(TokenUsage {
                input: r.varint("usage.input")?,
                output: r.varint("usage.output")?,
                cache_creation: r.varint("usage.cache_creation")?,
                cache_read: r.varint("usage.cache_read")?,
                reasoning: r.varint("usage.reasoning")?,
            })
        })
    }
}

impl Session {
    pub(crate) fn write(&self, w: &mut Writer) {
        w.record(|w| {
            w.str(self.native_id.as_str());
            w.str(&self.agent);
            w.str(&self.parser);
            w.str(&self.project);
            w.str(&self.cwd);
            w.str(&self.git_branch);
            w.opt_signed(self.started_ms);
            w.opt_signed(self.ended_ms);
            w.str(&self.title);
            w.str(&self.first_message);
            w.str(&self.parent_session);
            w.str(&self.relationship);
            w.varint(self.user_message_count);
        });
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        use limits::*;
        r.record("session", MAX_RECORD, |r| {
            let native = r.str("session.native_id", MAX_NATIVE_ID)?;
            Ok(Session {
                native_id: native.parse()?,
                agent: r.str("session.agent", MAX_LABEL)?,
                parser: r.str("session.parser", MAX_LABEL)?,
                project: r.str("session.project", MAX_PATH)?,
                cwd: r.str("session.cwd", MAX_PATH)?,
                git_branch: r.str("session.git_branch", MAX_PATH)?,
                started_ms: r.opt_signed("session.started_ms")?,
                ended_ms: r.opt_signed("session.ended_ms")?,
                title: r.str("session.title", MAX_NAME)?,
                first_message: r.str("session.first_message", MAX_NOTE)?,
                parent_session: r.str("session.parent_session", MAX_PATH)?,
                relationship: r.str("session.relationship", MAX_LABEL)?,
                user_message_count: r.varint("session.user_message_count")?,
            })
        })
    }

    /// Checks string lengths against the limits a reader applies, so a writer never produces
    /// a manifest its peers would reject.
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        check_len("session.agent", &self.agent, MAX_LABEL)?;
        check_len("session.parser", &self.parser, MAX_LABEL)?;
        check_len("session.project", &self.project, MAX_PATH)?;
        check_len("session.cwd", &self.cwd, MAX_PATH)?;
        check_len("session.git_branch", &self.git_branch, MAX_PATH)?;
        check_len("session.title", &self.title, MAX_NAME)?;
        check_len("session.first_message", &self.first_message, MAX_NOTE)?;
        check_len("session.parent_session", &self.parent_session, MAX_PATH)?;
        check_len("session.relationship", &self.relationship, MAX_LABEL)
    }
}

impl UsageEvent {
    pub(crate) fn write(&self, w: &mut Writer) {
        w.record(|w| {
            w.opt_varint(self.message_ordinal);
            w.str(&self.source);
            w.str(&self.model);
            self.usage.write(w);
            w.opt_varint(self.cost_micro_usd);
            w.opt_signed(self.occurred_ms);
            w.str(&self.dedup_key);
        });
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        use limits::*;
        r.record("usage_event", MAX_RECORD, |r| {
            Ok(UsageEvent {
                message_ordinal: r.opt_varint("usage_event.message_ordinal")?,
                source: r.str("usage_event.source", MAX_LABEL)?,
                model: r.str("usage_event.model", MAX_LABEL)?,
                usage: TokenUsage::read(r)?,
                cost_micro_usd: r.opt_varint("usage_event.cost_micro_usd")?,
                occurred_ms: r.opt_signed("usage_event.occurred_ms")?,
                dedup_key: r.str("usage_event.dedup_key", MAX_PATH)?,
            })
        })
    }

    pub fn validate(&self) -> Result<()> {
        use limits::*;
        check_len("usage_event.source", &self.source, MAX_LABEL)?;
        check_len("usage_event.model", &self.model, MAX_LABEL)?;
        check_len("usage_event.dedup_key", &self.dedup_key, MAX_PATH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical line of a message writes keys in byte order: the struct fields are
    /// declared alphabetically, and this fails if a new field is not.
    #[test]
    fn canonical_message_keys_are_in_byte_order() {
        let message = Message {
            abandoned: true,
            api_message_id: "msg".into(),
            compact_boundary: true,
            content: "c".into(),
            model: "m".into(),
            ordinal: 1,
            parent_uuid: "p".into(),
            request_id: "r".into(),
            role: "assistant".into(),
            sidechain: true,
            source_uuid: "s".into(),
            system: true,
            thinking: "t".into(),
            timestamp_ms: Some(1),
            tool_calls: vec![ToolCall {
                category: "read".into(),
                file_path: "/f".into(),
                id: "t1".into(),
                input: "{}".into(),
                is_error: true,
                name: "Read".into(),
                result: "r".into(),
                result_events: vec![ToolResultEvent {
                    content: "c".into(),
                    source: "s".into(),
                    status: "ok".into(),
                    subagent_session: "a".into(),
                    timestamp_ms: Some(2),
                }],
                subagent_session: "a".into(),
            }],
            usage: TokenUsage {
                cache_creation: 1,
                cache_read: 2,
                input: 3,
                output: 4,
                reasoning: 5,
            },
        };
        let text = serde_json::to_string(&message).unwrap();
        // serde_json's own map keeps keys sorted: re-serialising the parsed value gives the
        // same bytes only if the struct wrote every object's keys in byte order.
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
        assert!(text.starts_with(
            "{\"abandoned\":true,\"api_message_id\":\"msg\",\"compact_boundary\":true,"
        ));
    }
}
