//! A message as the archive stores it: its text in columns of its own (the search index covers
//! them), the rest as JSON; and an imported session made ready to store.
//!
//! Turning messages into rows (JSON, the tool text search covers) needs no database. An import
//! does it before it hands a window to the archive's writer thread, which is the import's
//! critical path ([`PreparedUnit`]); owned messages give up their text to the row without a
//! copy.

use std::borrow::Cow;

use agentsync_core::sync::import::ApplyUnit;
use agentsync_core::{ArtifactId, Message, Session, SessionGid};

use crate::error::{Result, encode};

/// One row of `messages`: its text owned, or borrowed from a message the caller keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow<'a> {
    pub(crate) ordinal: i64,
    pub(crate) role: String,
    pub(crate) timestamp_ms: Option<i64>,
    pub(crate) content: Cow<'a, str>,
    pub(crate) thinking: Cow<'a, str>,
    /// The message with empty `content` and `thinking`, as JSON.
    pub(crate) rest_json: String,
    /// What search finds of the message's tool calls (`tool_text::of`), made with the row so
    /// that indexing need not read it back out of `rest_json` (`unindexed`).
    pub(crate) tools: String,
}

impl MessageRow<'static> {
    /// The row of a message, which gives up its text to it.
    pub fn new(mut message: Message) -> Result<MessageRow<'static>> {
        let content = Cow::Owned(std::mem::take(&mut message.content));
        let thinking = Cow::Owned(std::mem::take(&mut message.thinking));
        MessageRow::with_text(&message, content, thinking)
    }
}

impl<'a> MessageRow<'a> {
    /// The row of a message the caller keeps: its text is borrowed, the rest encoded.
    pub fn of(message: &'a Message) -> Result<MessageRow<'a>> {
        let rest = Message {
            content: String::new(),
            thinking: String::new(),
            ..message.clone()
        };
        let (content, thinking) = (
            Cow::Borrowed(&*message.content),
            Cow::Borrowed(&*message.thinking),
        );
        MessageRow::with_text(&rest, content, thinking)
    }

    /// `rest`: the message without its text.
    fn with_text(rest: &Message, content: Cow<'a, str>, thinking: Cow<'a, str>) -> Result<Self> {
        Ok(MessageRow {
            ordinal: rest.ordinal.min(i64::MAX as u64) as i64,
            role: rest.role.clone(),
            timestamp_ms: rest.timestamp_ms,
            content,
            thinking,
            rest_json: encode("message", rest)?,
            tools: crate::tool_text::of(rest),
        })
    }
}

/// An imported session ([`ApplyUnit`]) with its record, usage and messages encoded as the
/// archive stores them: what is left for the writer is SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedUnit {
    pub(crate) gid: SessionGid,
    pub(crate) session: Session,
    pub(crate) session_json: String,
    pub(crate) usage_json: String,
    pub(crate) from_ordinal: u64,
    pub(crate) message_count: u64,
    pub(crate) manifest: ArtifactId,
    pub(crate) rows: Vec<MessageRow<'static>>,
}

impl PreparedUnit {
    pub fn new(unit: ApplyUnit) -> Result<PreparedUnit> {
        Ok(PreparedUnit {
            session_json: encode("session", &unit.session)?,
            usage_json: encode("usage events", &unit.usage_events)?,
            rows: unit
                .messages
                .into_iter()
                .map(MessageRow::new)
                .collect::<Result<_>>()?,
            gid: unit.gid,
            session: unit.session,
            from_ordinal: unit.from_ordinal,
            message_count: unit.message_count,
            manifest: unit.manifest,
        })
    }

    /// Every unit of a window, in order.
    pub fn window(units: Vec<ApplyUnit>) -> Result<Vec<PreparedUnit>> {
        units.into_iter().map(PreparedUnit::new).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentsync_core::ToolCall;

    fn message() -> Message {
        Message {
            ordinal: 3,
            role: "assistant".into(),
            content: "the answer".into(),
            thinking: "hmm".into(),
            model: "m".into(),
            timestamp_ms: Some(17),
            tool_calls: vec![
                ToolCall {
                    name: "Bash".into(),
                    input: "ls".into(),
                    result: "a b".into(),
                    ..ToolCall::default()
                },
                ToolCall {
                    name: "Read".into(),
                    ..ToolCall::default()
                },
            ],
            ..Message::default()
        }
    }

    #[test]
    fn owned_and_borrowed_messages_make_the_same_row() {
        let m = message();
        let row = MessageRow::of(&m).unwrap();
        assert_eq!(MessageRow::new(m.clone()).unwrap(), row);
        assert_eq!(row.content, "the answer");
        assert_eq!(row.thinking, "hmm");
        assert_eq!(row.tools, "Bash ls a b\nRead");
        assert_eq!(crate::tool_text::of_stored(&row.rest_json), row.tools);
        assert_eq!((row.ordinal, row.timestamp_ms), (3, Some(17)));
        let rest: Message = serde_json::from_str(&row.rest_json).unwrap();
        assert_eq!(
            rest,
            Message {
                content: String::new(),
                thinking: String::new(),
                ..m.clone()
            }
        );
        assert!(!row.rest_json.contains("the answer") && !row.rest_json.contains("hmm"));
    }
}
