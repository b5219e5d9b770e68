//! The agents whose logs are read: one [`Agent`] entry each, saying where its logs live, how to
//! tell one of its files, and how to read it. Adding an agent is one module with its `AGENT`
//! entry, a line in [`ALL`], and fixtures (`docs/ingest.md`).
//!
//! Agents keep their sessions in three shapes, one [`Reader`] each:
//! - an append-only log of JSON lines (Claude Code, Codex, Copilot CLI): read on from where the
//!   last pass stopped, with a resume state the host keeps;
//! - a document the agent rewrites as the session grows (Gemini CLI's chat JSON, Amp's thread,
//!   Cursor's transcript, Aider's Markdown history): read whole whenever it changes;
//! - a collection of many sessions in one file (OpenCode's database, Aider's chat history of a
//!   project): every session with a version that changes when it does.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use agentsync_core::{Message, Session, UsageEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::session::SessionDraft;
use crate::transcript::{Abandoned, LateResult, Transcript};
use crate::{Format, ParseReport, ResumeState, fit, lines};

/// One agent.
pub struct Agent {
    /// The name used on the command line (`--agent gemini`) and as every session's `agent`.
    pub name: &'static str,
    /// The product, for messages and docs (`Gemini CLI`).
    pub product: &'static str,
    /// Where the agent keeps its sessions when nothing else is said, on this OS.
    pub default_roots: fn(&Places) -> Vec<PathBuf>,
    /// Every log under `root`, a folder laid out like one of the default roots (or a folder
    /// holding such folders, as `--from` gets). A missing folder has none.
    pub discover: fn(&Path) -> io::Result<Vec<PathBuf>>,
    /// Whether a file named on the command line is one of this agent's logs, from its path and
    /// its first bytes (up to [`HEAD_BYTES`]).
    pub recognizes: fn(&Path, &[u8]) -> bool,
    pub reader: Reader,
}

/// How much of a file [`Agent::recognizes`] sees.
pub const HEAD_BYTES: usize = 64 * 1024;

/// How an agent's logs are read.
pub enum Reader {
    /// An append-only log of JSON lines, read on from where the last pass stopped.
    Lines(ReadLines),
    /// One session per file, rewritten by the agent as the session grows: read whole when the
    /// file changes. `Err` says why the file is no session of this agent.
    Document(fn(&Path, &[u8]) -> Result<Document, String>),
    /// A file holding many sessions: see [`ReadCollection`].
    Collection(ReadCollection),
}

/// Reads the sessions of a collection. For each session found it calls `changed(key,
/// version)` (`key`: the session's name within the file, stable across reads; `version`: a
/// number that changes whenever the session does, such as OpenCode's `time_updated` or the
/// length of an Aider chat) and reads, and returns, only the sessions for which that says
/// `true`. `Err` only when the file cannot be read at all; one session that cannot be read is
/// returned with its reason.
pub type ReadCollection =
    fn(&Path, &mut dyn FnMut(&str, i64) -> bool) -> io::Result<Vec<CollectionSession>>;

/// Reads a line log from where `resume` (the JSON a previous pass returned) stopped.
pub type ReadLines = fn(&Path, File, Option<&str>, &LinesOptions) -> io::Result<LinesPass>;

/// Standard folders of this user on this OS, which agents put their data under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    /// `$HOME` (`%USERPROFILE%` on Windows).
    pub home: PathBuf,
    /// Application data as XDG says: `$XDG_DATA_HOME`, or `~/.local/share`. Many CLI agents use
    /// it on macOS too.
    pub xdg_data: PathBuf,
    /// The OS's own application data folder: `~/Library/Application Support` on macOS,
    /// `%APPDATA%` on Windows, `$XDG_CONFIG_HOME` (or `~/.config`) elsewhere.
    pub app_data: PathBuf,
    /// `std::env::consts::OS` (`linux`, `macos`, `windows`).
    pub os: &'static str,
}

impl Places {
    /// The folders of the user running this process.
    pub fn of_this_user() -> Option<Places> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME").or_else(|| var("USERPROFILE"))?;
        Some(Places::under(
            &home,
            var("XDG_DATA_HOME"),
            var("XDG_CONFIG_HOME"),
            var("APPDATA"),
        ))
    }

    /// The folders under `home`, on this OS (tests and `--home` use it with another home).
    pub fn under(
        home: &Path,
        xdg_data: Option<PathBuf>,
        xdg_config: Option<PathBuf>,
        appdata: Option<PathBuf>,
    ) -> Places {
        let os = std::env::consts::OS;
        let app_data = match os {
            "macos" => home.join("Library/Application Support"),
            "windows" => appdata.unwrap_or_else(|| home.join("AppData/Roaming")),
            _ => xdg_config.unwrap_or_else(|| home.join(".config")),
        };
        Places {
            home: home.to_path_buf(),
            xdg_data: xdg_data.unwrap_or_else(|| home.join(".local/share")),
            app_data,
            os,
        }
    }
}

/// Every agent read. [`recognize`] asks them in this order, so the most specific tests come
/// first and Claude Code's, the loosest (any record with a `sessionId`; an empty `.jsonl`),
/// last: a Gemini `.jsonl` chat opens with a `sessionId`, a Copilot `events.jsonl` may be empty.
pub static ALL: &[&Agent] = &[
    &crate::gemini::AGENT,
    &crate::copilot::AGENT,
    &crate::cursor::AGENT,
    &crate::amp::AGENT,
    #[cfg(feature = "opencode")]
    &crate::opencode::AGENT,
    &crate::aider::AGENT,
    &crate::codex::AGENT,
    &crate::claude::AGENT,
];

/// The agent called `name`.
pub fn named(name: &str) -> Option<&'static Agent> {
    ALL.iter().copied().find(|a| a.name == name)
}

/// The agent a file named on the command line belongs to, from its path and first bytes.
pub fn recognize(path: &Path, head: &[u8]) -> Option<&'static Agent> {
    ALL.iter().copied().find(|a| (a.recognizes)(path, head))
}

// ---------------------------------------------------------------------------------------------
// Line logs

/// What the host tells a line-log pass.
pub struct LinesOptions {
    /// The log has been left alone long enough that messages still waiting for tool results
    /// are published without them (`ResumeState::finish`).
    pub settled: bool,
}

/// One pass over a line log, whatever its format.
#[derive(Debug, Clone, PartialEq)]
pub struct LinesPass {
    /// Where the pass started: 0 when the log was read from its start (no resume state, or
    /// one that did not fit the file any more).
    pub started_at: u64,
    /// Whether a resume state was given and set aside (the bytes before its offset changed).
    pub restarted: bool,
    pub session: Option<Session>,
    pub messages: Vec<Message>,
    pub usage_events: Vec<UsageEvent>,
    pub late_results: Vec<LateResult>,
    /// Messages an earlier pass handed out that are on a branch the user left: the host flags
    /// them `abandoned`.
    pub abandoned: Vec<Abandoned>,
    pub report: ParseReport,
    /// Bytes of the file read, and malformed lines in it so far with the first of them.
    pub offset: u64,
    pub malformed_total: u64,
    pub first_malformed: String,
    /// Whether messages are still held for tool results after this pass.
    pub holding: bool,
    /// The resume state for the next pass, as JSON.
    pub state_json: String,
}

/// A line format that can start reading a log of its own.
pub(crate) trait LineFormat: Format + Serialize + DeserializeOwned {
    fn start(path: &Path) -> io::Result<ResumeState<Self>>;

    /// Called before every pass over the log at `path`, fresh or resumed, for what a format
    /// takes from the log's place rather than from its lines (not kept in the resume state: a
    /// resumed state starts without it).
    fn reading(&mut self, _path: &Path) {}
}

/// [`ReadLines`] for one line format: resume (when the resume state still fits the file),
/// parse, finish when settled, and hand back the next state.
pub(crate) fn read_lines<F: LineFormat>(
    path: &Path,
    file: File,
    resume: Option<&str>,
    options: &LinesOptions,
) -> io::Result<LinesPass> {
    let given = resume.is_some();
    let resume = resume
        .and_then(|json| serde_json::from_str::<ResumeState<F>>(json).ok())
        .filter(|state| {
            lines::fingerprint(path, state.offset).ok().as_deref() == Some(&state.fingerprint)
        });
    let restarted = given && resume.is_none();
    let started_at = resume.as_ref().map_or(0, |r| r.offset);
    let mut state = match resume {
        Some(state) => state,
        None => F::start(path)?,
    };
    state.format.reading(path);
    let mut parsed = crate::parse_lines(file, state)?;
    if options.settled {
        let released = parsed.state.finish();
        parsed.messages.extend(released);
    }
    let state = &mut parsed.state;
    state.fingerprint = lines::fingerprint(path, state.offset)?;
    state.malformed +=
        parsed.report.malformed_lines.len() as u64 + parsed.report.malformed_unlisted;
    if state.first_malformed.is_empty()
        && let Some((line, reason)) = parsed.report.malformed_lines.first()
    {
        state.first_malformed = format!("line {line}: {reason}");
    }
    Ok(LinesPass {
        started_at,
        restarted,
        session: state.session(),
        offset: state.offset,
        malformed_total: state.malformed,
        first_malformed: state.first_malformed.clone(),
        holding: state.held_messages() > 0,
        state_json: serde_json::to_string(&state).map_err(io::Error::other)?,
        messages: parsed.messages,
        usage_events: parsed.usage_events,
        late_results: parsed.late_results,
        abandoned: parsed.abandoned,
        report: parsed.report,
    })
}

// ---------------------------------------------------------------------------------------------
// Documents

/// A session read whole from one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub session: Session,
    /// Every message, ordinals from 0, fitted to the wire limits.
    pub messages: Vec<Message>,
    /// How many of the last messages still wait for tool results (the agent is mid-turn):
    /// the host publishes them once the document has been left alone for a while.
    pub waiting: usize,
    pub usage_events: Vec<UsageEvent>,
    pub report: ParseReport,
}

impl Document {
    /// How many of the messages to publish now (the first ones). A document is rewritten while
    /// its session goes on: the agent still fills in results of calls that wait, and may still
    /// add to its last message (token counts, more tool calls, streamed text). A published
    /// message that changes later would read as a rewritten log. So until the file has been
    /// left alone for a while (`settled`), the waiting messages and the last message are held.
    pub fn publishable(&self, settled: bool) -> usize {
        if settled {
            self.messages.len()
        } else {
            self.messages.len().saturating_sub(self.waiting.max(1))
        }
    }
}

/// A session of a collection, read because its version changed.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSession {
    pub key: String,
    pub version: i64,
    pub document: Result<Document, String>,
}

/// What a document parser fills in: the session record, the messages in order (a call's
/// result attached through [`Transcript::attach`] when it sits in a later message, or set on
/// the call before [`DocumentBuilder::push`] when the document keeps them together), usage
/// events and what was skipped.
pub struct DocumentBuilder {
    pub session: SessionDraft,
    pub transcript: Transcript,
    pub usage_events: Vec<UsageEvent>,
    pub report: ParseReport,
}

impl DocumentBuilder {
    pub fn new(agent: &str, parser: &str) -> Self {
        DocumentBuilder {
            session: SessionDraft::new(agent, parser),
            transcript: Transcript::default(),
            usage_events: Vec::new(),
            report: ParseReport::default(),
        }
    }

    /// Appends a message (its ordinal is set here). Calls with an id and no result yet wait
    /// for one; a call that already has its result, or no id, waits for nothing.
    pub fn push(&mut self, message: Message) -> u64 {
        let waiting: Vec<String> = message
            .tool_calls
            .iter()
            .filter(|c| !c.id.is_empty() && !c.result.is_empty())
            .map(|c| c.id.clone())
            .collect();
        let ordinal = self.transcript.push(message);
        for id in waiting {
            // Already answered: the result is set, so attaching it again changes nothing.
            self.transcript.stop_awaiting(&id);
        }
        ordinal
    }

    /// A part of the document that could not be read (`line`: its line, or its position in
    /// the document's list of messages, from 1), kept in the report; never fatal.
    pub fn malformed(&mut self, line: u64, reason: String) {
        self.report.malformed(line, reason);
    }

    /// The document as read. `Err` when it never named its session.
    pub fn finish(mut self) -> Result<Document, String> {
        let session = self
            .session
            .session()
            .ok_or_else(|| "the document names no session".to_owned())?;
        let mut messages = Vec::new();
        self.transcript.release(&mut messages);
        let mut waiting_messages = Vec::new();
        let waiting = self.transcript.held();
        self.transcript.give_up_all();
        self.transcript.release(&mut waiting_messages);
        messages.extend(waiting_messages);
        for late in self.transcript.take_late() {
            if let Some(m) = messages.iter_mut().find(|m| m.ordinal == late.ordinal)
                && late.apply_to(m)
            {
                fit::fit_message(m);
            }
        }
        for event in &mut self.usage_events {
            fit::fit_usage_event(event);
        }
        self.report.sessions = 1;
        self.report.messages = messages.len() as u64;
        self.report.usage_events = self.usage_events.len() as u64;
        Ok(Document {
            session,
            messages,
            waiting,
            usage_events: self.usage_events,
            report: self.report,
        })
    }
}
