//! One ingest pass: find the logs, read what changed since the last pass, store it.
//!
//! An unchanged file (same size, mtime and inode) costs one `stat`. A grown file is read from
//! where the last pass stopped, with the parser's saved resume state. A file that shrank or was
//! replaced is read again from the start and its session's messages are replaced.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use agentsync_archive::{Archive, OwnApplied, SourceRow};
use agentsync_core::sync::export::ExportState;
use agentsync_core::{LedgerState, OriginId, Session, SessionGid};
use anyhow::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::progress::Progress;
use agentsync_logs::{Parsed, ResumeState, claude, codex, discover};

/// Malformed lines and failures listed by name in a summary; the rest are counted.
const LISTED: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Claude,
    Codex,
}

impl LogFormat {
    fn name(self) -> &'static str {
        match self {
            LogFormat::Claude => "claude",
            LogFormat::Codex => "codex",
        }
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    pub files: u64,
    pub unchanged: u64,
    pub bytes_read: u64,
    pub sessions_changed: u64,
    pub messages: u64,
    pub malformed_lines: u64,
    /// `path:line: reason` for the first malformed lines.
    pub malformed: Vec<String>,
    /// Files read this run that have malformed lines, with their totals so far.
    #[serde(default)]
    pub malformed_files: Vec<MalformedLog>,
    /// Files that could not be read at all, `path: reason`. Never fatal for the others.
    pub failed: Vec<String>,
    /// Sessions skipped because they were purged.
    pub purged: u64,
}

/// A log with lines that could not be read, as `sync` and `status` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MalformedLog {
    pub path: String,
    /// Malformed lines in the file so far.
    pub lines: u64,
    /// The first of them: `line N: reason`.
    pub first: String,
}

/// Every log the archive has read that has malformed lines (from each file's resume state).
pub fn malformed_logs(archive: &Archive) -> Result<Vec<MalformedLog>> {
    let mut out = Vec::new();
    for row in archive.sources()? {
        let Ok(state) = serde_json::from_str::<serde_json::Value>(&row.resume_json) else {
            continue;
        };
        let lines = state["malformed"].as_u64().unwrap_or(0);
        if lines > 0 {
            out.push(MalformedLog {
                path: row.path,
                lines,
                first: state["first_malformed"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
    }
    Ok(out)
}

/// Every log under the agents' folders, or under the given paths (a folder is searched for
/// both formats; a file is Codex when named `rollout-*`, Claude Code otherwise).
/// The format of a log file named on the command line, from its name (Codex rollouts) or its
/// first record: a file that is neither a Claude Code nor a Codex log (a Gemini session, a
/// random JSON file) is refused with its name, never read as a session of malformed lines.
fn format_of(path: &Path) -> io::Result<LogFormat> {
    if discover::is_rollout(path) {
        return Ok(LogFormat::Codex);
    }
    let mut first = Vec::new();
    let file = std::fs::File::open(path)?;
    // The first line, up to 1 MiB (a first record longer than that is not one we know).
    io::BufRead::read_until(
        &mut io::BufReader::new(io::Read::take(file, 1 << 20)),
        b'\n',
        &mut first,
    )?;
    if first.iter().all(u8::is_ascii_whitespace) {
        return Ok(LogFormat::Claude);
    }
    let record: serde_json::Value = serde_json::from_slice(&first).unwrap_or_default();
    let has = |k: &str| record.get(k).is_some();
    if has("payload") && has("type") {
        return Ok(LogFormat::Codex);
    }
    if has("sessionId") || (has("type") && (has("uuid") || has("leafUuid") || has("message"))) {
        return Ok(LogFormat::Claude);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is not a Claude Code or Codex log (its first line is not a record of either)",
            path.display()
        ),
    ))
}

pub fn discover_logs(
    paths: &[PathBuf],
    claude_roots: &[PathBuf],
    codex_roots: &[PathBuf],
) -> io::Result<Vec<(PathBuf, LogFormat)>> {
    let mut out = Vec::new();
    if paths.is_empty() {
        for root in claude_roots {
            out.extend(
                discover::claude_logs(root)?
                    .into_iter()
                    .map(|p| (p, LogFormat::Claude)),
            );
        }
        for root in codex_roots {
            out.extend(
                discover::codex_rollouts(root)?
                    .into_iter()
                    .map(|p| (p, LogFormat::Codex)),
            );
        }
    }
    for path in paths {
        if path.is_file() {
            out.push((path.clone(), format_of(path)?));
        } else if path.is_dir() {
            // A folder may be a Claude `projects` folder, a Codex `sessions` folder, or a home
            // holding both (`.claude/projects`, `.codex/sessions`).
            for (claude, codex) in [
                (path.clone(), path.clone()),
                (path.join("projects"), path.join("sessions")),
                (path.join(".claude/projects"), path.join(".codex/sessions")),
                (path.join("claude/projects"), path.join("codex/sessions")),
            ] {
                out.extend(
                    discover::claude_logs(&claude)?
                        .into_iter()
                        .filter(|p| !discover::is_rollout(p))
                        .map(|p| (p, LogFormat::Claude)),
                );
                out.extend(
                    discover::codex_rollouts(&codex)?
                        .into_iter()
                        .map(|p| (p, LogFormat::Codex)),
                );
            }
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is neither a file nor a folder", path.display()),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Files stored per transaction: one commit per file made the search index merge and flush
/// for every file (most of ingest's time); a batch lets it do that once per batch.
const FILES_PER_TRANSACTION: usize = 256;

/// Reads every changed log into the archive, in batches of files, each file all-or-nothing.
pub fn run(
    archive: &mut Archive,
    origin: &OriginId,
    logs: &[(PathBuf, LogFormat)],
    progress: &Progress,
) -> Result<IngestSummary> {
    let ledger = archive.ledger()?;
    let mut summary = IngestSummary {
        files: logs.len() as u64,
        ..IngestSummary::default()
    };
    let bar = progress.bar("ingest", logs.len() as u64);
    for batch in logs.chunks(FILES_PER_TRANSACTION) {
        archive.transaction(|a| {
            for (path, format) in batch {
                bar.inc(1);
                let outcome = ingest_one(a, origin, &ledger, path, *format);
                summary.add(path, outcome);
            }
            Ok(())
        })?;
        crate::crash_point::passed("ingest.batch");
    }
    bar.finish();
    Ok(summary)
}

fn ingest_one(
    archive: &Archive,
    origin: &OriginId,
    ledger: &LedgerState,
    path: &Path,
    format: LogFormat,
) -> Result<FileOutcome> {
    match format {
        LogFormat::Claude => ingest_file(archive, origin, ledger, path, format, claude::parse_from),
        LogFormat::Codex => ingest_file(archive, origin, ledger, path, format, codex::parse_from),
    }
}

impl IngestSummary {
    fn add(&mut self, path: &Path, outcome: Result<FileOutcome>) {
        let summary = self;
        match outcome {
            Ok(FileOutcome::Unchanged) => summary.unchanged += 1,
            Ok(FileOutcome::Read(read)) => {
                summary.bytes_read += read.bytes;
                summary.messages += read.messages;
                summary.sessions_changed += u64::from(read.changed);
                summary.purged += u64::from(read.purged);
                let new = read.malformed.len() as u64 + read.malformed_unlisted;
                summary.malformed_lines += new;
                if new > 0 && summary.malformed_files.len() < LISTED {
                    summary.malformed_files.push(MalformedLog {
                        path: path.display().to_string(),
                        lines: read.malformed_total,
                        first: read.first_malformed.clone(),
                    });
                }
                for (line, reason) in read.malformed {
                    if summary.malformed.len() < LISTED {
                        summary
                            .malformed
                            .push(format!("{}:{line}: {reason}", path.display()));
                    }
                }
            }
            Err(e) => {
                if summary.failed.len() < LISTED {
                    summary.failed.push(format!("{}: {e:#}", path.display()));
                }
            }
        }
    }
}

enum FileOutcome {
    Unchanged,
    Read(FileRead),
}

struct FileRead {
    /// Malformed lines in the whole file so far, and the first.
    malformed_total: u64,
    first_malformed: String,
    bytes: u64,
    messages: u64,
    changed: bool,
    purged: bool,
    malformed: Vec<(u64, String)>,
    malformed_unlisted: u64,
}

#[cfg(unix)]
fn stat(meta: &std::fs::Metadata) -> (i64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), meta.ino())
}

#[cfg(not(unix))]
fn stat(meta: &std::fs::Metadata) -> (i64, u64) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    (mtime, 0)
}

/// Results that arrived after their calls' messages were stored (the user interrupted, a
/// parallel subagent finished later): each message is amended in the archive, and export is
/// told to re-encode the session from the first amended message on (issue 11).
fn amend_late_results(
    archive: &Archive,
    gid: &SessionGid,
    late: &[agentsync_logs::transcript::LateResult],
) -> agentsync_archive::Result<()> {
    let mut first_amended: Option<u64> = None;
    for result in late {
        let Some(mut message) = archive
            .messages(gid, result.ordinal)?
            .into_iter()
            .next()
            .filter(|m| m.ordinal == result.ordinal)
        else {
            continue;
        };
        if result.apply_to(&mut message) {
            agentsync_logs::fit::fit_message(&mut message);
            if archive.amend_own_message(gid, &message)? {
                first_amended =
                    Some(first_amended.map_or(result.ordinal, |o| o.min(result.ordinal)));
            }
        }
    }
    if let Some(ordinal) = first_amended
        && let Some(mut export) = archive.state::<ExportState>("export")?
    {
        export.amended(&gid.native, ordinal);
        archive.set_state("export", &export)?;
    }
    Ok(())
}

/// The session a rewritten log's new content becomes: `<native id>.rewrite-N` (the first N
/// not taken), linked to the session whose log it replaced.
fn rewrite_of(
    archive: &Archive,
    origin: &OriginId,
    session: &Session,
) -> agentsync_archive::Result<Session> {
    // Room for the suffix within a native id's length limit.
    let base: String = session.native_id.as_str().chars().take(100).collect();
    let mut n = 1u32;
    loop {
        let native = format!("{base}.rewrite-{n}")
            .parse()
            .map_err(agentsync_archive::ArchiveError::Core)?;
        let gid = SessionGid::new(origin.clone(), native);
        if !archive.has_session(&gid)? {
            let mut rewrite = session.clone();
            rewrite.parent_session = session.native_id.to_string();
            rewrite.relationship = "rewrite".into();
            rewrite.native_id = gid.native;
            return Ok(rewrite);
        }
        n += 1;
    }
}

/// How long a log must be untouched before messages still waiting for tool results are
/// published without them.
const SETTLED_NS: i64 = 3_600 * 1_000_000_000;

/// How a resume state with no held message serializes (see `Transcript`).
const NOTHING_HELD: &str = "\"held\":[]";

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Bytes before `offset` a resumed read checks: the first and the last 4 KiB (a whole-file hash
/// would make every incremental read cost the whole file), their length, and that a line
/// ends at `offset`.
fn fingerprint(path: &Path, offset: u64) -> io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 4096;
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&offset.to_le_bytes());
    let mut head = vec![0u8; usize::try_from(offset.min(WINDOW)).unwrap_or(0)];
    file.read_exact(&mut head)?;
    hasher.update(&head);
    let tail_start = offset.saturating_sub(WINDOW);
    file.seek(SeekFrom::Start(tail_start))?;
    let mut tail = vec![0u8; usize::try_from(offset - tail_start).unwrap_or(0)];
    file.read_exact(&mut tail)?;
    hasher.update(&tail);
    if offset > 0 && tail.last() != Some(&b'\n') {
        hasher.update(b"no line end");
    }
    Ok(hasher.finalize().to_hex()[..32].to_owned())
}

/// A format's `parse_from`: reads a log from where a resume state stopped.
type ParseFrom<F> = fn(&Path, File, Option<ResumeState<F>>) -> io::Result<Parsed<F>>;

fn ingest_file<F: Serialize + DeserializeOwned>(
    archive: &Archive,
    origin: &OriginId,
    ledger: &LedgerState,
    path: &Path,
    format: LogFormat,
    parse_from: ParseFrom<F>,
) -> Result<FileOutcome> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let (mtime_ns, inode) = stat(&meta);
    let key = path.to_string_lossy().into_owned();
    let known = archive.source(&key)?;
    // A log untouched for a while whose last messages wait for tool results: the agent is
    // done with it, and those messages are published with the results they have (issue 11).
    let settled = now_ns().saturating_sub(mtime_ns) > SETTLED_NS;
    if let Some(row) = &known
        && row.size == meta.len()
        && row.mtime_ns == mtime_ns
        && row.inode == inode
        && (!settled || row.resume_json.contains(NOTHING_HELD))
    {
        return Ok(FileOutcome::Unchanged);
    }
    // Resume only the same file grown: a replaced or shrunk one is read from the start, and
    // so is one whose bytes before the resume point changed (rewritten in place, then grown).
    let resume: Option<ResumeState<F>> = known
        .as_ref()
        .filter(|row| row.inode == inode && row.size <= meta.len() && row.format == format.name())
        .and_then(|row| serde_json::from_str::<ResumeState<F>>(&row.resume_json).ok())
        .filter(|state| fingerprint(path, state.offset).ok().as_ref() == Some(&state.fingerprint));
    let mut reset = known.is_some() && resume.is_none();
    let start = resume.as_ref().map_or(0, |r| r.offset);
    let mut parsed = parse_from(path, file, resume)?;
    if settled {
        let released = parsed.state.finish();
        parsed.messages.extend(released);
    }
    parsed.state.fingerprint = fingerprint(path, parsed.state.offset)?;
    parsed.state.malformed +=
        parsed.report.malformed_lines.len() as u64 + parsed.report.malformed_unlisted;
    if parsed.state.first_malformed.is_empty()
        && let Some((line, reason)) = parsed.report.malformed_lines.first()
    {
        parsed.state.first_malformed = format!("line {line}: {reason}");
    }
    let mut read = FileRead {
        malformed_total: parsed.state.malformed,
        first_malformed: parsed.state.first_malformed.clone(),
        bytes: parsed.state.offset.saturating_sub(start),
        messages: parsed.messages.len() as u64,
        changed: false,
        purged: false,
        malformed: parsed.report.malformed_lines.clone(),
        malformed_unlisted: parsed.report.malformed_unlisted,
    };
    let mut session = parsed.state.session();
    // A log read for the first time whose session the archive holds already (`rebuild`
    // restored it from the store, with no ingest progress) is compared like a rewritten one:
    // stored messages the log no longer has are kept, never replaced.
    if known.is_none()
        && let Some(s) = &session
        && archive.has_session(&SessionGid::new(origin.clone(), s.native_id.clone()))?
    {
        reset = true;
    }
    // A file whose earlier content changed was given a session of its own (see below): what
    // is appended to it later goes there too.
    if !reset
        && let (Some(s), Some(row)) = (session.as_mut(), known.as_ref())
        && let Some(alias) = row.native_id.as_deref()
        && alias != s.native_id.as_str()
        && let Ok(alias) = alias.parse()
    {
        s.parent_session = s.native_id.to_string();
        s.relationship = "rewrite".into();
        s.native_id = alias;
    }
    let mut row = SourceRow {
        path: key,
        format: format.name().to_owned(),
        size: meta.len(),
        mtime_ns,
        inode,
        native_id: session.as_ref().map(|s| s.native_id.to_string()),
        resume_json: serde_json::to_string(&parsed.state)?,
    };
    archive.atomically(|a| {
        if let Some(session) = &session {
            let gid = SessionGid::new(origin.clone(), session.native_id.clone());
            if ledger.is_purged(&gid) {
                read.purged = true;
            } else if reset || read.bytes > 0 || known.is_none() || !parsed.messages.is_empty() {
                let applied = a.apply_own(
                    origin,
                    session,
                    &parsed.messages,
                    &parsed.usage_events,
                    reset,
                )?;
                read.changed = applied != OwnApplied::KeptStored;
                if !parsed.late_results.is_empty() && applied != OwnApplied::Diverged {
                    amend_late_results(a, &gid, &parsed.late_results)?;
                    read.changed = true;
                }
                if applied == OwnApplied::Diverged {
                    // The archive keeps what it had; the rewritten file is a new session,
                    // linked to the one it replaced, never mixed into it (issue 19 item 3).
                    let rewrite = rewrite_of(a, origin, session)?;
                    a.apply_own(
                        origin,
                        &rewrite,
                        &parsed.messages,
                        &parsed.usage_events,
                        false,
                    )?;
                    row.native_id = Some(rewrite.native_id.to_string());
                }
            }
        }
        a.set_source(&row)
    })?;
    Ok(FileOutcome::Read(read))
}
