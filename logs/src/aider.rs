//! Aider chat histories: `.aider.chat.history.md` in the root of each project Aider ran in (the
//! git root, or the folder it ran in; `--chat-history-file` names another file). Aider keeps no
//! central folder, so there is no default root: `ingest --agent aider --from ~/src` walks the
//! user's projects for these files.
//!
//! One Markdown file holds every run of Aider in the project, appended to as it goes
//! (aider/io.py): each run starts with `# aider chat started at YYYY-MM-DD HH:MM:SS`; what the user
//! typed is written as `#### ` lines; Aider's own output (announcements, usage, confirmations,
//! errors) as `> ` lines; the model's reply as plain Markdown between blank lines, with its
//! SEARCH/REPLACE edit blocks inside. User and output lines end in two spaces (a Markdown line
//! break); a multi-line output quotes only its first line, and its last line ends in the two
//! spaces. Each run is one session of a collection ([`Reader::Collection`]); there are no tool
//! calls, no per-message times, and usage only as Aider's rounded `> Tokens: …` lines.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use agentsync_core::timestamp::parse_rfc3339_ms;
use agentsync_core::{Message, NativeId, TokenUsage};

use super::agent::{Agent, CollectionSession, Document, DocumentBuilder, Reader};
use super::fit::native_id;

pub const NAME: &str = "aider";
pub const PARSER: &str = "aider/1";

/// The history file's name (Aider's default for `--chat-history-file`).
pub const HISTORY_FILE: &str = ".aider.chat.history.md";

/// The largest history read (it is read whole on every change).
const MAX_HISTORY_BYTES: u64 = 512 * 1024 * 1024;

/// The line each run of Aider starts with, followed by the local time it started.
const CHAT_START: &str = "# aider chat started at ";

/// How deep [`discover`] looks under the folder it is given (`~/src/org/project/sub/…`).
const MAX_DEPTH: usize = 6;

/// Folders [`discover`] never enters, besides hidden ones (`.git`, `.venv`, …).
const SKIPPED_FOLDERS: [&str; 2] = ["node_modules", "target"];

/// Tags a reply's reasoning is wrapped in: Aider's own (for reasoning the API returns apart),
/// and those models write into their text (`<think>`).
const THINKING_TAGS: [&str; 4] = [
    "thinking-content-7bbeb8e1441453ad999a0bbba8a46d4b",
    "think",
    "thinking",
    "reasoning",
];

/// Commands whose argument is a prompt for the model (`/ask why …`), not an instruction to Aider.
const PROMPT_COMMANDS: [&str; 4] = ["/ask", "/code", "/architect", "/context"];

pub static AGENT: Agent = Agent {
    name: NAME,
    product: "Aider",
    // Aider writes its history into each project, never into a folder of its own.
    default_roots: |_| Vec::new(),
    discover,
    recognizes,
    reader: Reader::Collection(read),
};

/// Aider logs no tool calls (its edits are SEARCH/REPLACE blocks in the reply's text), so every
/// tool is `other`.
pub fn category(_tool: &str) -> &'static str {
    "other"
}

/// Every `.aider.chat.history.md` under `root`, sorted: at most [`MAX_DEPTH`] folders deep, never
/// into hidden folders, `node_modules` or `target`, never through a symlinked folder. A missing
/// folder has none; a folder below `root` that cannot be read is passed over.
pub fn discover(root: &Path) -> io::Result<Vec<PathBuf>> {
    if root.file_name().is_some_and(|name| name == HISTORY_FILE) && root.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut folders = vec![(root.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e)
                if depth == 0
                    && !matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
            {
                return Err(e);
            }
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let path = entry.path();
            if name == HISTORY_FILE {
                if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                    found.push(path);
                }
            } else if kind.is_dir()
                && depth < MAX_DEPTH
                && !name.to_string_lossy().starts_with('.')
                && !SKIPPED_FOLDERS.iter().any(|skipped| name == *skipped)
            {
                folders.push((path, depth + 1));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A chat history by its name (blank, or with a run's start line in its first bytes: Aider
/// creates the file with that line), or any file whose first line that is not blank starts a
/// run (a history kept under another name with `--chat-history-file`).
fn recognizes(path: &Path, head: &[u8]) -> bool {
    let mut lines = head
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    if path.file_name().is_some_and(|name| name == HISTORY_FILE) {
        let mut lines = lines.peekable();
        return lines.peek().is_none() || lines.any(|line| line.starts_with(CHAT_START.as_bytes()));
    }
    lines
        .next()
        .is_some_and(|line| line.starts_with(CHAT_START.as_bytes()))
}

/// Every run in the history at `path` that holds a conversation (tests, and hosts that want
/// them all).
pub fn read_history(path: &Path) -> io::Result<Vec<CollectionSession>> {
    read(path, &mut |_, _| true)
}

/// [`super::agent::ReadCollection`] for Aider: reads the history at `path` and returns its runs
/// for which `changed(key, version)` says so.
fn read(
    path: &Path,
    changed: &mut dyn FnMut(&str, i64) -> bool,
) -> io::Result<Vec<CollectionSession>> {
    let size = fs::metadata(path)?.len();
    if size > MAX_HISTORY_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is {size} bytes, more than the {MAX_HISTORY_BYTES} bytes a chat history is read up to",
                path.display()
            ),
        ));
    }
    let bytes = fs::read(path)?;
    read_bytes(path, &bytes, changed)
}

/// Reads a history's `bytes` as the file at `path` (which names its sessions).
pub fn read_bytes(
    path: &Path,
    bytes: &[u8],
    changed: &mut dyn FnMut(&str, i64) -> bool,
) -> io::Result<Vec<CollectionSession>> {
    let chats = split_chats(bytes);
    if chats.iter().all(|chat| chat.header.is_none()) && !is_blank(bytes) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} has no `{}` line: not an Aider chat history",
                path.display(),
                CHAT_START.trim_end()
            ),
        ));
    }
    let file = HistoryFile::of(path);
    let mut sessions = Vec::new();
    for chat in chats {
        if !changed(&chat.key, chat.version) {
            continue;
        }
        if let Some(document) = read_chat(&file, &chat) {
            sessions.push(CollectionSession {
                key: chat.key,
                version: chat.version,
                document,
            });
        }
    }
    Ok(sessions)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// What every session of one history file shares.
struct HistoryFile {
    /// A stable hash of the file's absolute path: ids of two projects' runs never collide.
    path_hash: String,
    /// The folder holding the file: the project Aider ran in.
    folder: String,
}

impl HistoryFile {
    fn of(path: &Path) -> HistoryFile {
        let absolute = fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        let hash = blake3::hash(absolute.to_string_lossy().as_bytes());
        HistoryFile {
            path_hash: hash.to_hex()[..16].to_owned(),
            folder: absolute
                .parent()
                .map(|folder| folder.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    fn session_id(&self, key: &str) -> Option<NativeId> {
        native_id(&format!("{}-{key}", self.path_hash))
    }
}

/// One run of Aider: its part of the file.
struct Chat<'a> {
    /// `<start time as written>/<n>` (`n`: 1, or more for runs started in the same second), or
    /// `preamble` for text before the first run.
    key: String,
    /// The length of the run, without the blank lines that end it (the next run's start line
    /// begins with one): a run that grows gets a new version.
    version: i64,
    /// The time text of its start line; `None` for the preamble.
    header: Option<String>,
    /// The line of the file it starts on, from 1.
    first_line: u64,
    bytes: &'a [u8],
}

/// The file cut into runs at their start lines.
fn split_chats(bytes: &[u8]) -> Vec<Chat<'_>> {
    // (byte offset, line number) of every start line.
    let mut starts = Vec::new();
    let mut offset = 0;
    for (line_number, line) in (1u64..).zip(bytes.split_inclusive(|&b| b == b'\n')) {
        if line.starts_with(CHAT_START.as_bytes()) {
            starts.push((offset, line_number));
        }
        offset += line.len();
    }
    let mut chats = Vec::new();
    let first = starts.first().map_or(bytes.len(), |&(offset, _)| offset);
    if !is_blank(&bytes[..first]) {
        chats.push(Chat {
            key: "preamble".to_owned(),
            version: version_of(&bytes[..first]),
            header: None,
            first_line: 1,
            bytes: &bytes[..first],
        });
    }
    // Runs started in the same second, so far (a map: a history may hold many runs).
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for (i, &(start, first_line)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(bytes.len(), |&(next, _)| next);
        let chat = &bytes[start..end];
        let header_line = chat.split(|&b| b == b'\n').next().unwrap_or_default();
        let time = String::from_utf8_lossy(&header_line[CHAT_START.len()..])
            .trim()
            .to_owned();
        let n = {
            let n = seen.entry(time.clone()).or_insert(0);
            *n += 1;
            *n
        };
        chats.push(Chat {
            key: format!("{time}/{n}"),
            version: version_of(chat),
            header: Some(time),
            first_line,
            bytes: chat,
        });
    }
    chats
}

fn version_of(chat: &[u8]) -> i64 {
    let len = chat
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |last| last + 1);
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// `2025-03-02 09:14:07` (Aider's local time, without a zone) read as UTC, in Unix ms.
fn start_time(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(' ')?;
    if date.len() != 10 || time.len() != 8 {
        return None;
    }
    parse_rfc3339_ms(&format!("{date}T{time}Z"))
}

// ---------------------------------------------------------------------------------------------
// One run

/// What a run's lines are, record by record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `#### ` lines: what the user typed.
    User,
    /// `> ` lines (and the unquoted rest of a multi-line output): Aider's own output.
    Output,
    /// Plain Markdown: the model's reply.
    Reply,
}

struct Block<'a> {
    kind: Kind,
    /// (line number in the file, text without the marker and the line-break spaces).
    lines: Vec<(u64, &'a str)>,
}

impl Block<'_> {
    /// The block's lines joined.
    fn text(&self) -> String {
        let lines: Vec<&str> = self.lines.iter().map(|(_, line)| *line).collect();
        lines.join("\n")
    }
}

/// A `#### ` line's text.
fn user_text(line: &str) -> Option<&str> {
    match line.strip_prefix("#### ") {
        Some(text) => Some(text),
        None if line.trim_end() == "####" => Some(""),
        None => None,
    }
}

/// A `> ` line's text.
fn output_text(line: &str) -> Option<&str> {
    match line.strip_prefix("> ") {
        Some(text) => Some(text),
        None if line.trim_end() == ">" => Some(""),
        None => None,
    }
}

/// Whether a line ends the way Aider ends what it writes for the user and for itself: text
/// followed by two spaces (a reply's own lines seldom do).
fn ends_record(line: &str) -> bool {
    line.ends_with("  ") && !line.trim().is_empty()
}

/// The run's lines after its start line, grouped into records.
fn blocks(text: &str, first_line: u64) -> Vec<Block<'_>> {
    let mut blocks: Vec<Block<'_>> = Vec::new();
    let mut current: Option<Block<'_>> = None;
    // Inside a multi-line output whose last line (the one ending in two spaces) is still to come.
    let mut output_open = false;
    let mut blank_before = true;
    for (i, line) in text.split('\n').enumerate() {
        let number = first_line + i as u64;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(block) = current.as_mut() {
            if block.kind == Kind::Output && output_open {
                block.lines.push((number, line.trim_end()));
                output_open = !ends_record(line);
                continue;
            }
            // A reply runs on, blank lines and all, until a blank line followed by a line
            // Aider wrote for the user or for itself, or by its usage line (which, split in
            // two when it names both cache counts, does not end its first line in spaces).
            let reply_ends = blank_before
                && ((ends_record(line)
                    && (user_text(line).is_some() || output_text(line).is_some()))
                    || line.starts_with("> Tokens: "));
            if block.kind == Kind::Reply && !reply_ends {
                block.lines.push((number, line));
                blank_before = line.trim().is_empty();
                continue;
            }
        }
        if line.trim().is_empty() {
            blocks.extend(current.take());
            blank_before = true;
            continue;
        }
        let continues =
            |kind| !blank_before && current.as_ref().is_some_and(|b: &Block<'_>| b.kind == kind);
        let (kind, text) = if let Some(text) = user_text(line) {
            (Kind::User, text)
        } else if let Some(text) = output_text(line) {
            output_open = !ends_record(line) && !text.trim().is_empty();
            (Kind::Output, text)
        } else if continues(Kind::Output) {
            // An output's unquoted next line: a reply always starts after a blank line.
            output_open = !ends_record(line);
            (Kind::Output, line)
        } else {
            (Kind::Reply, line)
        };
        let text = if kind == Kind::Reply {
            text
        } else {
            text.trim_end()
        };
        if !continues(kind) || kind == Kind::Reply {
            blocks.extend(current.take());
            current = Some(Block {
                kind,
                lines: Vec::new(),
            });
        }
        if let Some(block) = current.as_mut() {
            block.lines.push((number, text));
        }
        blank_before = false;
    }
    blocks.extend(current);
    blocks
}

/// Reads one run; `None` when it holds no conversation (no prompt and no reply: Aider started
/// and left, or ran only commands).
fn read_chat(file: &HistoryFile, chat: &Chat<'_>) -> Option<Result<Document, String>> {
    let mut run = Run {
        builder: DocumentBuilder::new(NAME, PARSER),
        messages: Vec::new(),
        model: String::new(),
        conversation: false,
    };
    run.builder.session.native_id = file.session_id(&chat.key);
    run.builder.session.note_cwd(&file.folder);
    let text = match std::str::from_utf8(chat.bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(e) => {
            run.builder.malformed(
                chat.first_line,
                format!("not UTF-8 ({e}): the unreadable bytes are replaced by U+FFFD"),
            );
            String::from_utf8_lossy(chat.bytes)
        }
    };
    let (body, body_line) = match &chat.header {
        Some(time) => {
            match start_time(time) {
                Some(ms) => run.builder.session.note_time(ms),
                None => run.builder.malformed(
                    chat.first_line,
                    format!("an unreadable start time {time:?}"),
                ),
            }
            let body = text.split_once('\n').map_or("", |(_, rest)| rest);
            (body, chat.first_line + 1)
        }
        None => (&*text, chat.first_line),
    };
    for (i, block) in blocks(body, body_line).iter().enumerate() {
        match block.kind {
            Kind::User => run.user(block),
            // The first output of a run is Aider's announcements: read, then skipped.
            Kind::Output => run.output(block, i == 0),
            Kind::Reply => run.reply(block),
        }
    }
    if !run.conversation {
        return None;
    }
    for message in run.messages {
        run.builder.push(message);
    }
    Some(run.builder.finish())
}

struct Run {
    builder: DocumentBuilder,
    /// The run's messages, pushed once read: a usage line amends the reply before it.
    messages: Vec<Message>,
    /// The main model, from the announcements.
    model: String,
    /// Whether the user prompted or the model replied.
    conversation: bool,
}

impl Run {
    fn user(&mut self, block: &Block<'_>) {
        let text = block.text();
        let text = text.trim();
        // Enter on an empty prompt.
        if text.is_empty() || text == "<blank>" {
            self.builder.report.skipped("blank-input");
            return;
        }
        let mut message = Message {
            role: "user".to_owned(),
            content: text.to_owned(),
            ..Message::default()
        };
        if text.contains(" (Y)es/(N)o") {
            // A question answered for the user by an earlier "(A)ll" (Aider logs it as input).
            message.system = true;
        } else if text.starts_with(['/', '!']) {
            let command = text.split_whitespace().next().unwrap_or_default();
            let argument = text[command.len()..].trim();
            let is_prompt = PROMPT_COMMANDS.contains(&command) && !argument.is_empty();
            message.system = !is_prompt;
            self.conversation |= is_prompt;
            self.builder.session.note_user_message(text, is_prompt);
        } else {
            self.conversation = true;
            self.builder.session.note_user_message(text, true);
        }
        self.messages.push(message);
    }

    fn reply(&mut self, block: &Block<'_>) {
        let text = block.text();
        let (thinking, content) = split_thinking(text.trim());
        if thinking.is_empty() && content.is_empty() {
            return;
        }
        self.conversation = true;
        self.messages.push(Message {
            role: "assistant".to_owned(),
            content: content.to_owned(),
            thinking: thinking.to_owned(),
            model: self.model.clone(),
            ..Message::default()
        });
    }

    fn output(&mut self, block: &Block<'_>, announcements: bool) {
        let mut kept = Vec::new();
        let mut lines = block.lines.iter().peekable();
        while let Some(&(number, line)) = lines.next() {
            if let Some(report) = line.strip_prefix("Tokens: ") {
                // With both cache counts Aider puts the cost on a line of its own.
                if lines
                    .peek()
                    .is_some_and(|(_, next)| next.starts_with("Cost: "))
                {
                    lines.next();
                }
                match parse_tokens(report) {
                    Some(usage) => self.usage(usage),
                    None => self
                        .builder
                        .malformed(number, format!("an unreadable usage line {line:?}")),
                }
                continue;
            }
            if let Some(model) = model_in(line) {
                model.clone_into(&mut self.model);
            }
            if let Some(version) = line.strip_prefix("Aider v") {
                self.builder.session.note_agent_version(version.trim());
            }
            kept.push(line);
        }
        if announcements {
            self.builder.report.skipped("announcements");
            return;
        }
        let content = kept.join("\n");
        let content = content.trim();
        if !content.is_empty() {
            self.messages.push(Message {
                role: "system".to_owned(),
                content: content.to_owned(),
                system: true,
                ..Message::default()
            });
        }
    }

    /// A usage line is written right after the reply it paid for.
    fn usage(&mut self, usage: TokenUsage) {
        match self.messages.last_mut() {
            Some(reply) if reply.role == "assistant" && reply.usage == TokenUsage::default() => {
                reply.usage = usage;
            }
            _ => self.builder.report.skipped("usage-without-reply"),
        }
    }
}

/// The main model an announcement names: `Model: <name> with …`, `Main model: <name> with …`,
/// or (before 0.50 or so) `Models: <name> with …, weak model …`.
fn model_in(line: &str) -> Option<&str> {
    let rest = ["Main model: ", "Model: ", "Models: "]
        .iter()
        .find_map(|prefix| line.strip_prefix(prefix))?;
    let name = rest.split(" with ").next().unwrap_or_default().trim();
    (!name.is_empty()).then_some(name)
}

/// A reply's reasoning (between [`THINKING_TAGS`] at its start) and its text. A reply cut off
/// while reasoning is all reasoning.
fn split_thinking(text: &str) -> (&str, &str) {
    for tag in THINKING_TAGS {
        let Some(rest) = text
            .strip_prefix('<')
            .and_then(|t| t.strip_prefix(tag))
            .and_then(|t| t.strip_prefix('>'))
        else {
            continue;
        };
        // Aider opens with its own tag and may close with the model's.
        let close = THINKING_TAGS
            .iter()
            .filter_map(|tag| {
                let closing = format!("</{tag}>");
                rest.find(&closing).map(|at| (at, closing.len()))
            })
            .min();
        return match close {
            Some((at, len)) => (rest[..at].trim(), rest[at + len..].trim()),
            None => (rest.trim(), ""),
        };
    }
    ("", text)
}

/// The usage in `4.2k sent, 1.1k cache write, 2.0k cache hit, 312 received. Cost: …` (Aider
/// rounds: below 1000 exact, below 10k to 100, above to 1000; before 0.52 exact with thousands
/// separators). `sent` counts the whole prompt, cache included: `input` is what is left of it.
fn parse_tokens(report: &str) -> Option<TokenUsage> {
    let end = report.find(" received")? + " received".len();
    let (mut sent, mut write, mut hit, mut received) = (None, 0, 0, None);
    for part in report[..end].split(", ") {
        let (count, label) = part.trim().split_once(' ')?;
        let count = token_count(count)?;
        match label {
            "sent" => sent = Some(count),
            "cache write" => write = count,
            // `cached`: the cache hits, as Aider 0.51 wrote them.
            "cache hit" | "cached" => hit = count,
            "received" => received = Some(count),
            _ => return None,
        }
    }
    let sent = sent?;
    Some(TokenUsage {
        input: sent.saturating_sub(write).saturating_sub(hit),
        cache_read: hit,
        cache_creation: write,
        output: received?,
        reasoning: 0,
    })
}

/// `312`, `5,244`, `4.2k`, `12k`, `1.5M`.
fn token_count(text: &str) -> Option<u64> {
    let text = text.replace(',', "");
    let (number, scale) = match text.strip_suffix(['k', 'K']) {
        Some(number) => (number, 1e3),
        None => match text.strip_suffix('M') {
            Some(number) => (number, 1e6),
            None => (text.as_str(), 1.0),
        },
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let value = number.parse::<f64>().ok()? * scale;
    // Bounded far below u64::MAX, so the cast is exact.
    (value.is_finite() && value < 1e15).then(|| value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::TempDir;

    /// Runs of the fixtures: the message counts below were read off the files by hand.
    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aider")
    }

    fn tally() -> PathBuf {
        fixtures().join("src/tally").join(HISTORY_FILE)
    }

    fn notes() -> PathBuf {
        fixtures().join("src/notes").join(HISTORY_FILE)
    }

    fn documents(path: &Path) -> Vec<(String, Document)> {
        read_history(path)
            .unwrap()
            .into_iter()
            .map(|s| (s.key, s.document.unwrap()))
            .collect()
    }

    #[test]
    fn runs_with_a_conversation_are_sessions() {
        let docs = documents(&tally());
        let keys: Vec<&str> = docs.iter().map(|(k, _)| k.as_str()).collect();
        // The third run (announcements and `/exit`) holds no conversation.
        assert_eq!(keys, ["2025-03-02 09:14:07/1", "2025-03-02 09:40:55/1"]);

        let session = &docs[0].1.session;
        let folder = fs::canonicalize(fixtures().join("src/tally")).unwrap();
        assert_eq!(session.agent, NAME);
        assert_eq!(session.parser, PARSER);
        assert_eq!(session.cwd, folder.to_string_lossy());
        assert_eq!(session.project, "tally");
        assert_eq!(session.started_ms, Some(1_740_906_847_000));
        assert_eq!(session.ended_ms, Some(1_740_906_847_000));
        assert_eq!(session.title, "");
        assert_eq!(
            session.first_message,
            "summarize() returns a total of 1 for an empty list, it should be 0. Fix it and add a test."
        );
        // Four prompts, `/add` and `/exit`, less the blank input.
        assert_eq!(session.user_message_count, 5);
        let id = session.native_id.as_str();
        assert!(id.ends_with("-2025-03-02_09_14_07_1"), "{id}");
        assert_eq!(id.len(), 16 + "-2025-03-02_09_14_07_1".len());
        assert_eq!(session.parent_session, "");

        let second = &docs[1].1.session;
        assert_eq!(second.first_message, "/ask how is the report cached?");
        assert_eq!(second.user_message_count, 2);
        assert_eq!(second.started_ms, Some(1_740_908_455_000));
        assert_ne!(second.native_id, session.native_id);
        assert_eq!(
            id[..16],
            second.native_id.as_str()[..16],
            "one file, one hash"
        );
    }

    #[test]
    fn messages_of_a_run() {
        let docs = documents(&tally());
        let doc = &docs[0].1;
        let roles: Vec<(&str, bool)> = doc
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.system))
            .collect();
        assert_eq!(
            roles,
            [
                ("user", true), // /add
                ("system", true),
                ("user", false),
                ("assistant", false),
                ("system", true),
                ("user", false),
                ("assistant", false),
                ("system", true),
                ("user", false),
                ("assistant", false),
                ("system", true),
                ("assistant", false), // the answer to the reflected edit error
                ("system", true),
                ("user", true), // /exit
            ]
        );
        let ordinals: Vec<u64> = doc.messages.iter().map(|m| m.ordinal).collect();
        assert_eq!(ordinals, (0..14).collect::<Vec<u64>>());
        assert_eq!(doc.waiting, 0);
        assert!(doc.messages.iter().all(|m| m.tool_calls.is_empty()));
        assert!(doc.messages.iter().all(|m| m.timestamp_ms.is_none()));

        assert_eq!(doc.messages[0].content, "/add tests/test_report.py");
        assert_eq!(
            doc.messages[1].content,
            "Added tests/test_report.py to the chat"
        );

        let reply = &doc.messages[3];
        assert_eq!(
            reply.thinking,
            "The loop starts `total` at 1 instead of 0. The test file has no case for an empty list."
        );
        assert!(reply.content.starts_with("The running total starts at 1"));
        assert!(
            reply
                .content
                .contains("<<<<<<< SEARCH\n    total = 1\n=======\n")
        );
        // A heading and a quote of the reply's own stay in it.
        assert!(
            reply
                .content
                .contains("\n\n#### Test\n\n> Note: an empty list now sums to 0.\n\n")
        );
        assert!(reply.content.ends_with(">>>>>>> REPLACE\n```"));
        assert_eq!(reply.model, "anthropic/claude-3-7-sonnet-20250219");
        assert_eq!(
            reply.usage,
            TokenUsage {
                input: 1100,
                cache_read: 2000,
                cache_creation: 1100,
                output: 312,
                reasoning: 0,
            }
        );
        // The usage and its cost line (unquoted) are not part of the output kept.
        assert_eq!(
            doc.messages[4].content,
            "Applied edit to tests/test_report.py\nApplied edit to src/report.py\n\
             Commit 3b1f2c4 fix: Start the summarize() total at 0\n\
             You can use /undo to undo and discard each aider commit."
        );
        assert_eq!(
            (
                doc.messages[6].usage.input,
                doc.messages[6].usage.cache_read,
                doc.messages[6].usage.output
            ),
            (3100, 2000, 48)
        );
        // A multi-line output whose next lines are not quoted.
        assert!(
            doc.messages[7]
                .content
                .starts_with("pytest -q\nruff check .\nRun shell commands?")
        );
        assert!(
            doc.messages[7]
                .content
                .ends_with("Added 9 lines of output to the chat.")
        );
        let error = &doc.messages[10].content;
        assert!(error.starts_with("The LLM did not conform to the edit format."));
        assert!(error.contains("\n\n## SearchReplaceNoExactMatch"));
        assert!(
            error.ends_with("including all white space, comments, indentation, docstrings, etc")
        );
        assert_eq!(doc.messages[11].usage.input, 5000);
        assert!(doc.messages[11].content.contains("round(total / count, 2)"));
        assert_eq!(doc.messages[13].content, "/exit");

        assert_eq!(doc.report.skipped_records["announcements"], 1);
        assert_eq!(doc.report.skipped_records["blank-input"], 1);
        assert!(doc.report.malformed_lines.is_empty());
        assert_eq!(doc.report.messages, 14);
        assert_eq!(doc.report.sessions, 1);
    }

    #[test]
    fn a_run_killed_mid_write_reports_its_usage_line() {
        let docs = documents(&tally());
        let doc = &docs[1].1;
        let contents: Vec<(&str, &str)> = doc
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        assert_eq!(
            contents,
            [
                ("user", "/ask how is the report cached?"),
                (
                    "assistant",
                    "`load_report()` keeps the last report in `_CACHE`, keyed by the input file's path and modification time, so a changed file is read again."
                ),
                (
                    "user",
                    "list the callers of load_report\nand say which ones pass a path"
                ),
                (
                    "assistant",
                    "`cli.main()` and `web.report_view()` call it; both pass a path."
                ),
            ]
        );
        assert!(!doc.messages[0].system, "/ask with a question is a prompt");
        assert_eq!(doc.messages[1].model, "ollama_chat/qwen2.5-coder:14b");
        assert_eq!(
            doc.messages[1].usage,
            TokenUsage {
                input: 12_000,
                output: 96,
                ..TokenUsage::default()
            }
        );
        assert_eq!(doc.messages[3].usage, TokenUsage::default());
        assert_eq!(doc.report.malformed_lines.len(), 1);
        let (line, reason) = &doc.report.malformed_lines[0];
        assert_eq!(*line, 139);
        assert!(reason.contains("Tokens: 13k sent, 2"), "{reason}");
    }

    #[test]
    fn a_run_caught_mid_turn() {
        let docs = documents(&notes());
        assert_eq!(docs.len(), 1);
        let (key, doc) = &docs[0];
        assert_eq!(key, "2025-03-03 18:20:41/1");
        assert_eq!(doc.session.project, "notes");
        assert_eq!(
            doc.session.first_message,
            "add a --since flag to the list command"
        );
        assert_eq!(doc.messages.len(), 1);
        assert_eq!(doc.messages[0].role, "user");
        // Aider logs a reply only once it is complete, and logs no tool calls: nothing waits.
        assert_eq!(doc.waiting, 0);
    }

    #[test]
    fn versions_change_only_for_runs_that_grew() {
        let dir = TempDir::new("aider-versions");
        let path = dir.0.join(HISTORY_FILE);
        let mut text = fs::read_to_string(tally()).unwrap();
        fs::write(&path, &text).unwrap();
        let versions = |path: &Path| {
            let mut seen = Vec::new();
            read(path, &mut |key, version| {
                seen.push((key.to_owned(), version));
                false
            })
            .unwrap();
            seen
        };
        let before = versions(&path);
        // The third run is seen (and has a version) even though it is no session.
        assert_eq!(before.len(), 3);

        // Aider appends the next run's start line, then a conversation.
        text.push_str("\n# aider chat started at 2025-03-02 10:02:13\n\n#### hi  \n\nHello!\n\n");
        fs::write(&path, &text).unwrap();
        let after = versions(&path);
        assert_eq!(after.len(), 4);
        assert_eq!(
            &after[..3],
            &before[..3],
            "the blank line a new run starts with changes none"
        );
        assert_eq!(after[3].0, "2025-03-02 10:02:13/2");

        // Only the runs `changed` asks for are read.
        let sessions = read(&path, &mut |key, _| key.ends_with("10:02:13/2")).unwrap();
        assert_eq!(sessions.len(), 1);
        let doc = sessions[0].document.as_ref().unwrap();
        assert_eq!(doc.messages.len(), 2);
        assert_eq!(doc.session.started_ms, Some(1_740_909_733_000));

        // The same file read again names the same sessions.
        let again = read_history(&path).unwrap();
        let ids = |s: &[CollectionSession]| -> Vec<String> {
            s.iter()
                .map(|s| {
                    s.document
                        .as_ref()
                        .unwrap()
                        .session
                        .native_id
                        .as_str()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(ids(&again), ids(&read_history(&path).unwrap()));
        let other = dir.0.join("other");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join(HISTORY_FILE), &text).unwrap();
        let elsewhere = ids(&read_history(&other.join(HISTORY_FILE)).unwrap());
        assert!(
            ids(&again).iter().all(|id| !elsewhere.contains(id)),
            "two projects never collide"
        );
    }

    #[test]
    fn crlf_histories_read_alike() {
        let text = fs::read_to_string(tally()).unwrap();
        let crlf = text.replace('\n', "\r\n");
        let lf = read_bytes(&tally(), text.as_bytes(), &mut |_, _| true).unwrap();
        let crlf = read_bytes(&tally(), crlf.as_bytes(), &mut |_, _| true).unwrap();
        assert_eq!(lf.len(), crlf.len());
        for (a, b) in lf.iter().zip(&crlf) {
            assert_eq!(
                a.document.as_ref().unwrap().messages,
                b.document.as_ref().unwrap().messages
            );
        }
    }

    #[test]
    fn recognizes_histories_only() {
        let head = |path: &Path| fs::read(path).unwrap();
        assert!(recognizes(&tally(), &head(&tally())));
        assert!(recognizes(&notes(), &head(&notes())));
        assert!(recognizes(Path::new("/p/.aider.chat.history.md"), b""));
        assert!(recognizes(
            Path::new("/p/chat.md"),
            b"\n# aider chat started at 2025-03-02 09:14:07\n\n"
        ));
        assert!(!recognizes(
            Path::new("/p/README.md"),
            b"# Tally\n\nA report tool.\n"
        ));
        assert!(!recognizes(
            Path::new("/p/.aider.chat.history.md"),
            b"{\"type\":\"user\"}\n"
        ));
        assert!(std::ptr::eq(
            crate::agent::recognize(&tally(), &head(&tally())).unwrap(),
            &AGENT
        ));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut others = Vec::new();
        let mut folders = vec![root.join("claude-code"), root.join("codex")];
        while let Some(folder) = folders.pop() {
            for entry in fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "jsonl") {
                    others.push(path);
                }
            }
        }
        assert!(others.len() > 10);
        for path in others {
            let bytes = head(&path);
            let bytes = &bytes[..bytes.len().min(crate::agent::HEAD_BYTES)];
            assert!(!recognizes(&path, bytes), "{}", path.display());
        }
    }

    #[test]
    fn discovers_histories_in_projects() {
        let dir = TempDir::new("aider-discover");
        let copy = |from: &Path, to: &str| {
            let to = dir.0.join(to);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(from, to).unwrap();
        };
        copy(&tally(), "src/tally/.aider.chat.history.md");
        copy(&notes(), "src/notes/.aider.chat.history.md");
        copy(&notes(), "src/app/node_modules/pkg/.aider.chat.history.md");
        copy(&notes(), "src/app/target/.aider.chat.history.md");
        copy(&notes(), "src/app/.git/.aider.chat.history.md");
        copy(&notes(), "src/.venv/.aider.chat.history.md");
        copy(&notes(), "a/b/c/d/e/f/g/.aider.chat.history.md");
        copy(&notes(), "src/tally/notes.md");
        let found: Vec<String> = discover(&dir.0)
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(&dir.0)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(
            found,
            [
                "src/notes/.aider.chat.history.md",
                "src/tally/.aider.chat.history.md"
            ]
        );
        assert!(discover(&dir.0.join("missing")).unwrap().is_empty());
        assert_eq!(
            discover(&dir.0.join("src/notes/.aider.chat.history.md"))
                .unwrap()
                .len(),
            1
        );
        let places = crate::agent::Places::under(Path::new("/home/u"), None, None, None);
        assert!((AGENT.default_roots)(&places).is_empty());
    }

    #[test]
    fn garbage_and_truncated_histories_never_panic() {
        let path = Path::new("/p/.aider.chat.history.md");
        let all = |bytes: &[u8]| read_bytes(path, bytes, &mut |_, _| true);
        assert!(all(b"").unwrap().is_empty());
        assert!(all(b"\n\n").unwrap().is_empty());
        let err = all(b"\x00\x01 not a history\n").unwrap_err();
        assert!(
            err.to_string().contains("not an Aider chat history"),
            "{err}"
        );

        let mut broken = b"# aider chat started at yesterday\n\n#### hi \xff\xfe  \n\n".to_vec();
        broken.extend_from_slice(b"\xe9t\xe9\n\n> Tokens: many sent, 1 received.  \n");
        let sessions = all(&broken).unwrap();
        let doc = sessions[0].document.as_ref().unwrap();
        assert_eq!(sessions[0].key, "yesterday/1");
        assert_eq!(doc.session.started_ms, None);
        assert_eq!(
            doc.report.malformed_lines.len(),
            3,
            "{:?}",
            doc.report.malformed_lines
        );
        assert_eq!(doc.messages.len(), 2);

        // Cut at every byte: whatever is left reads without a panic.
        let text = fs::read(tally()).unwrap();
        for cut in 0..=text.len() {
            let _ = all(&text[..cut]);
        }
        // Text before the first run (not written by Aider) is read as a run of its own.
        let sessions =
            all(b"#### hi  \n\nHello.\n\n# aider chat started at 2025-03-02 09:14:07\n").unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].key, "preamble");
        assert_eq!(
            sessions[0].document.as_ref().unwrap().session.started_ms,
            None
        );
    }

    #[test]
    fn commands_answers_and_thinking() {
        let history = "\n# aider chat started at 2025-03-02 09:14:07\n\n\
            #### /run pytest  \n\
            > Add 0.3k tokens of command output to the chat? (Y)es/(N)o [Yes]: y  \n\
            > Added 9 lines of output to the chat.  \n\n\
            #### !ls  \n\n\
            #### /architect  \n\n\
            #### Create new file? (Y)es/(N)o/(A)ll/(S)kip all/(D)on't ask again [Yes]: a  \n\n\
            <think>\nweigh it\n\nreply\n\n";
        let sessions =
            read_bytes(Path::new("/p/h.md"), history.as_bytes(), &mut |_, _| true).unwrap();
        let doc = sessions[0].document.as_ref().unwrap();
        let users: Vec<(bool, &str)> = doc
            .messages
            .iter()
            .filter(|m| m.role == "user")
            .map(|m| (m.system, m.content.as_str()))
            .collect();
        assert_eq!(users.len(), 4);
        assert!(users.iter().all(|(system, _)| *system));
        assert_eq!(
            doc.session.user_message_count, 3,
            "an answer given for the user is not typed"
        );
        assert_eq!(doc.session.first_message, "");
        // The first output of this run follows a command: it is kept, not announcements.
        assert_eq!(doc.messages[1].role, "system");
        // A reply cut off while reasoning is all reasoning.
        let reply = doc.messages.last().unwrap();
        assert_eq!(
            (reply.thinking.as_str(), reply.content.as_str()),
            ("weigh it\n\nreply", "")
        );
    }

    #[test]
    fn token_counts() {
        let usage =
            |s: &str| parse_tokens(s).map(|u| (u.input, u.cache_creation, u.cache_read, u.output));
        assert_eq!(
            usage("5,244 sent, 604 received. Cost: $0.02 request, $0.02 session."),
            Some((5244, 0, 0, 604))
        );
        assert_eq!(usage("12k sent, 96 received."), Some((12_000, 0, 0, 96)));
        assert_eq!(
            usage("1,770 sent, 1,278 cached, 72 received. Cost: $0.0026 message."),
            Some((492, 0, 1278, 72))
        );
        assert_eq!(
            usage("4.2k sent, 1.1k cache write, 2.0k cache hit, 312 received."),
            Some((1100, 1100, 2000, 312))
        );
        assert_eq!(
            usage("1.5M sent, 2.3k received."),
            Some((1_500_000, 0, 0, 2300))
        );
        assert_eq!(usage("13k sent, 2"), None);
        assert_eq!(usage("many sent, 1 received."), None);
        assert_eq!(usage("1e400 sent, 1 received."), None);
        assert_eq!(usage("1 sent, 2 frobs, 3 received."), None);
        assert_eq!(token_count("9".repeat(400).as_str()), None);
    }
}
