//! agentsync-logs: agents' session logs read into the synced model (`docs/ingest.md`). The
//! parsers only; the CLI's ingest pass (`host-native/src/ingest/pass.rs`) stores what they
//! hand out, and the fuzz target `logs` feeds them arbitrary bytes.
//!
//! One log file is one session (an OpenCode database holds many). [`agent::ALL`] lists the
//! agents, each with where its logs live and how they are read. Line logs (`claude`, `codex`)
//! are read line by line into a [`ResumeState`], which also says where the next pass starts: a
//! log only grows, so a later pass reads only the lines appended since, and hands out only the
//! messages they completed. Documents are read whole (`agent::Document`).

pub mod agent;
pub mod aider;
pub mod amp;
pub mod claude;
pub mod codex;
pub mod copilot;
pub mod cursor;
pub mod discover;
pub mod fit;
pub mod gemini;
mod lines;
#[cfg(feature = "opencode")]
pub mod opencode;
mod session;
use agentsync_core::timestamp;
pub mod transcript;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod scratch;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use agentsync_core::{Message, Session, UsageEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use lines::{Line, MAX_LINE_BYTES};
use session::SessionDraft;
use transcript::Transcript;

/// Malformed lines listed one by one in a report; past this they are only counted.
const MAX_LISTED_MALFORMED: usize = 1000;

/// What a pass over one or more logs found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParseReport {
    /// Sessions whose id is known (at most one per file).
    pub sessions: u64,
    pub messages: u64,
    pub usage_events: u64,
    /// Lines that are not a JSON object, or a record missing what its type needs:
    /// (line number from 1, reason). Never fatal: the line is skipped.
    pub malformed_lines: Vec<(u64, String)>,
    /// Malformed lines beyond those listed.
    pub malformed_unlisted: u64,
    /// Records skipped on purpose, by kind (`file-history-snapshot`, `event_msg/agent_message`,
    /// a type this parser does not know, ...).
    pub skipped_records: BTreeMap<String, u64>,
    /// Tool results whose call was not found (already given up on, or never logged).
    pub orphan_tool_results: u64,
    /// Tool results that name a file their full output was saved in (Claude Code's
    /// `<persisted-output>`) which was not read: missing, unreadable, or not in the session's
    /// own `tool-results` folder. The result keeps the preview the log holds.
    pub saved_outputs_unread: u64,
}

impl ParseReport {
    pub fn merge(&mut self, other: ParseReport) {
        self.sessions += other.sessions;
        self.messages += other.messages;
        self.usage_events += other.usage_events;
        for (line, reason) in other.malformed_lines {
            self.malformed(line, reason);
        }
        self.malformed_unlisted += other.malformed_unlisted;
        for (kind, n) in other.skipped_records {
            *self.skipped_records.entry(kind).or_default() += n;
        }
        self.orphan_tool_results += other.orphan_tool_results;
        self.saved_outputs_unread += other.saved_outputs_unread;
    }

    fn malformed(&mut self, line: u64, reason: String) {
        if self.malformed_lines.len() < MAX_LISTED_MALFORMED {
            self.malformed_lines.push((line, reason));
        } else {
            self.malformed_unlisted += 1;
        }
    }

    pub(crate) fn skipped(&mut self, kind: &str) {
        *self.skipped_records.entry(kind.to_owned()).or_default() += 1;
    }
}

/// Everything a later pass over the same file needs: where to start, and the state of the
/// records read so far (the session's fields, ordinals, messages waiting for tool results,
/// the format's own bookkeeping). Serializable, so a host can keep it between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState<F> {
    /// Bytes of the file read: the end of the last complete line.
    pub offset: u64,
    /// Lines read (line numbers in reports continue from here).
    pub lines: u64,
    /// What the bytes before `offset` looked like (see `lines::fingerprint`): a file rewritten
    /// in place that has grown must not be resumed mid-line or past changed content.
    #[serde(default)]
    pub fingerprint: String,
    /// Malformed lines in the file so far, and the first of them (`line N: reason`): `sync`
    /// and `status` report them per file.
    #[serde(default)]
    pub malformed: u64,
    #[serde(default)]
    pub first_malformed: String,
    session: SessionDraft,
    transcript: Transcript,
    format: F,
}

impl<F> ResumeState<F> {
    fn new(session: SessionDraft, format: F) -> Self {
        ResumeState {
            offset: 0,
            lines: 0,
            fingerprint: String::new(),
            malformed: 0,
            first_malformed: String::new(),
            session,
            transcript: Transcript::default(),
            format,
        }
    }

    /// The session's record as of the lines read; `None` while the log has not named it.
    pub fn session(&self) -> Option<Session> {
        self.session.session()
    }

    /// The agent's version as last logged (the session record has no field for it).
    pub fn agent_version(&self) -> &str {
        &self.session.agent_version
    }

    /// Messages read but not handed out yet, because they wait for tool results.
    pub fn held_messages(&self) -> usize {
        self.transcript.held()
    }

    /// Gives up on every tool result still awaited and hands out the messages that waited for
    /// them: for a session known to be over. Parsing may still continue afterwards.
    pub fn finish(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        if self.session.native_id.is_some() {
            self.transcript.give_up_all();
            self.transcript.release(&mut out);
        }
        out
    }
}

/// What one pass produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<F> {
    /// Messages completed by this pass, with contiguous ordinals that continue the previous
    /// pass's.
    pub messages: Vec<Message>,
    pub usage_events: Vec<UsageEvent>,
    /// Results for calls of messages an earlier pass handed out (the host amends them).
    pub late_results: Vec<transcript::LateResult>,
    /// Messages an earlier pass handed out that turned out to be on a branch the user left
    /// (the host flags them `abandoned`). Messages of this pass carry the flag already.
    pub abandoned: Vec<transcript::Abandoned>,
    pub report: ParseReport,
    pub state: ResumeState<F>,
}

/// A log format: how one record changes the session.
pub(crate) trait Format {
    /// Handles one record (a JSON object from one line). `Err` reports the line as malformed.
    fn record(&mut self, record: &Map<String, Value>, sink: &mut Sink<'_>) -> Result<(), String>;
}

/// Where a format puts what it reads from a record.
pub(crate) struct Sink<'a> {
    pub session: &'a mut SessionDraft,
    pub transcript: &'a mut Transcript,
    pub usage_events: &'a mut Vec<UsageEvent>,
    pub report: &'a mut ParseReport,
}

/// Reads the complete lines of `reader` from `state.offset` on.
fn parse_lines<F: Format, R: Read + Seek>(
    mut reader: R,
    mut state: ResumeState<F>,
) -> io::Result<Parsed<F>> {
    let len = reader.seek(SeekFrom::End(0))?;
    if len < state.offset {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the log is {len} bytes, shorter than the {} bytes already read: it was \
                 rewritten, parse it again from the start",
                state.offset
            ),
        ));
    }
    reader.seek(SeekFrom::Start(state.offset))?;
    let mut reader = BufReader::with_capacity(256 * 1024, reader);

    let mut messages = Vec::new();
    let mut usage_events = Vec::new();
    let mut report = ParseReport::default();
    let ResumeState {
        offset,
        lines,
        session,
        transcript,
        format,
        ..
    } = &mut state;
    let consumed = lines::for_each_complete_line(&mut reader, MAX_LINE_BYTES, |line| {
        *lines += 1;
        let mut sink = Sink {
            session,
            transcript,
            usage_events: &mut usage_events,
            report: &mut report,
        };
        let outcome = match line {
            Line::TooLong { bytes } => Err(format!(
                "a line of {bytes} bytes is longer than the {MAX_LINE_BYTES} bytes read"
            )),
            Line::Text(text) => match record_of(text) {
                Ok(Some(record)) => format.record(&record, &mut sink),
                Ok(None) => Ok(()),
                Err(reason) => Err(reason),
            },
        };
        if let Err(reason) = outcome {
            report.malformed(*lines, reason);
        }
        if session.native_id.is_some() {
            transcript.release(&mut messages);
        }
    })?;
    *offset += consumed;
    // A late result for a message of this very pass is simply part of it.
    let mut late_results = Vec::new();
    for late in transcript.take_late() {
        let first = messages.first().map_or(u64::MAX, |m| m.ordinal);
        let index = late
            .ordinal
            .checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < messages.len());
        match index {
            Some(i) if late.apply_to(&mut messages[i]) => fit::fit_message(&mut messages[i]),
            _ => late_results.push(late),
        }
    }
    // The same for abandoned branches: what this pass handed out is flagged here, only what
    // earlier passes did goes to the host.
    let mut abandoned = Vec::new();
    let first = messages.first().map_or(u64::MAX, |m| m.ordinal);
    for range in transcript.take_abandoned() {
        for message in &mut messages {
            range.apply_to(message);
        }
        let earlier = transcript::Abandoned {
            end: range.end.min(first),
            ..range
        };
        if earlier.first < earlier.end {
            abandoned.push(earlier);
        }
    }

    report.sessions = u64::from(session.native_id.is_some());
    report.messages = messages.len() as u64;
    report.usage_events = usage_events.len() as u64;
    Ok(Parsed {
        messages,
        usage_events,
        late_results,
        abandoned,
        report,
        state,
    })
}

/// The JSON object on a line; `None` for a blank line.
fn record_of(line: &[u8]) -> Result<Option<Map<String, Value>>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice(line) {
        Ok(Value::Object(record)) => Ok(Some(record)),
        Ok(_) => Err("not a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// The string at `key`, or `""` when it is missing or not a string.
fn str_at<'a>(record: &'a Map<String, Value>, key: &str) -> &'a str {
    record.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `true` only when `key` holds `true`.
fn flag_at(record: &Map<String, Value>, key: &str) -> bool {
    record.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The RFC 3339 time at `key`, in Unix milliseconds.
fn timestamp_at(record: &Map<String, Value>, key: &str) -> Option<i64> {
    timestamp::parse_rfc3339_ms(str_at(record, key))
}
