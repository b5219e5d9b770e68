//! One ingest pass: read what changed in the logs since the last pass, store it.
//!
//! An unchanged file (same size, mtime and inode) costs one `stat`. A grown line log is read
//! from where the last pass stopped, with the parser's saved resume state; one that shrank or
//! was replaced is read again from the start and compared with what is stored. A document is
//! read whole when it changed, and compared the same way; a collection (many sessions in one
//! file) reads again only the sessions whose version moved.

use std::fs::{File, Metadata};
use std::io::Read as _;
use std::path::Path;
use std::sync::mpsc;

use agentsync_archive::{Archive, OwnApplied, SourceRow, SourceStamp};
use agentsync_core::{LedgerState, Message, OriginId, Session, SessionGid, UsageEvent};
use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use agentsync_logs::agent::{
    Agent, Document, LinesOptions, LinesPass, ReadCollection, ReadLines, Reader,
};
use agentsync_logs::transcript::{Abandoned, LateResult};
use rayon::prelude::*;

use super::find::Log;

/// Malformed lines and failures listed by name in a summary; the rest are counted.
const LISTED: usize = 20;

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

/// Files stored per transaction: one commit per file made the search index merge and flush
/// for every file (most of ingest's time); a batch lets it do that once per batch.
const FILES_PER_TRANSACTION: usize = 256;

/// Files read ahead of the store, as one unit of work for the reading threads: at most this
/// many files, or about this many bytes still to read. Besides the unit being stored, two are
/// in memory at most (one read, one being read), which bounds memory whatever the archive's
/// size.
const FILES_PER_READ: usize = 32;
const BYTES_PER_READ: u64 = 16 << 20;

/// A pass with at least this much to read has the write-ahead log copied into the database on
/// a thread of its own ([`Archive::checkpoint_beside`]): SQLite would copy it, and sync it to
/// disk, on this thread, the pass's critical path, after each batch (on disk, 1 GB of logs
/// ingested ~4 % faster, faster in 9 of 10 alternating runs; on a RAM file system no change).
/// A smaller pass (an append, a no-op sync) starts no thread.
const CHECKPOINT_BESIDE_BYTES: u64 = 64 << 20;

/// Reads every changed log into the archive, in batches of files, each file all-or-nothing.
///
/// Reading and parsing (no archive needed: on every core) run ahead of storing (SQLite and its
/// search index, on this thread), so logs are parsed while the ones before them are stored.
pub fn run(
    archive: &mut Archive,
    origin: &OriginId,
    logs: &[Log],
    progress: &Progress,
) -> Result<IngestSummary> {
    let ledger = archive.ledger()?;
    let seen = look_at(archive, logs)?;
    let to_read: u64 = seen
        .iter()
        .filter_map(|(_, look)| look.as_ref().ok())
        .map(Seen::to_read)
        .sum();
    if to_read >= CHECKPOINT_BESIDE_BYTES {
        archive
            .checkpoint_beside()
            .context("starting the ingest's checkpoint thread")?;
    }
    let mut summary = IngestSummary {
        files: logs.len() as u64,
        ..IngestSummary::default()
    };
    let bar = progress.bar("ingest", logs.len() as u64);
    std::thread::scope(|scope| -> Result<()> {
        let (sender, units) = mpsc::sync_channel::<Vec<Readout>>(1);
        scope.spawn(move || {
            for unit in read_units(seen) {
                let read: Vec<Readout> = unit
                    .into_par_iter()
                    .map(|(log, seen)| Readout::of(log, seen))
                    .collect();
                if sender.send(read).is_err() {
                    return; // The store stopped on an error.
                }
            }
        });
        let mut readouts = units.into_iter().flatten().peekable();
        while readouts.peek().is_some() {
            // Each file all-or-nothing without a savepoint per file (the search index writes
            // itself out at every savepoint: most of ingest's time when it had them). A file
            // that fails halfway through its writes rolls the batch back instead, and the
            // batch's files are stored again one savepoint each.
            let mut batch: Vec<&Log> = Vec::new();
            let stored = archive.transaction_with(|a| {
                let mut outcomes = Vec::new();
                for readout in readouts.by_ref().take(FILES_PER_TRANSACTION) {
                    bar.inc(1);
                    batch.push(readout.log);
                    let owner = Owner {
                        archive: a,
                        origin,
                        ledger: &ledger,
                    };
                    let outcome = readout.store(&owner, Atomicity::Batch);
                    match outcome {
                        Err(e) if e.is::<HalfWritten>() => return Err(e),
                        outcome => outcomes.push((batch[batch.len() - 1], outcome)),
                    }
                }
                Ok(outcomes)
            });
            let outcomes = match stored {
                Ok(outcomes) => outcomes,
                Err(e) if e.is::<HalfWritten>() => archive.transaction_with(|a| {
                    let owner = Owner {
                        archive: a,
                        origin,
                        ledger: &ledger,
                    };
                    let mut outcomes = Vec::new();
                    for log in &batch {
                        let (path, agent) = log;
                        let outcome = a
                            .source(&path.to_string_lossy())
                            .map_err(anyhow::Error::from)
                            .and_then(|known| Seen::of_row(known, path, agent))
                            .and_then(|seen| {
                                Readout::of(log, Ok(seen)).store(&owner, Atomicity::File)
                            });
                        outcomes.push((*log, outcome));
                    }
                    anyhow::Ok(outcomes)
                })?,
                Err(e) => return Err(e),
            };
            for (log, outcome) in outcomes {
                summary.add(&log.0, outcome);
            }
            crate::crash_point::passed("ingest.batch");
        }
        Ok(())
    })?;
    bar.finish();
    Ok(summary)
}

/// What every log looks like now against what the last pass saw: one `stat` each, and the
/// resume state only of those that changed.
fn look_at<'a>(archive: &Archive, logs: &'a [Log]) -> Result<Vec<(&'a Log, Result<Seen>)>> {
    let mut stamps = archive.source_stamps()?;
    let stamped: Vec<(&Log, Option<SourceStamp>)> = logs
        .iter()
        .map(|log| (log, stamps.remove(&*log.0.to_string_lossy())))
        .collect();
    // The `stat`s on every core: at 10 k logs they are a good part of a no-op sync.
    let mut seen: Vec<(&Log, Result<Seen>)> = stamped
        .into_par_iter()
        .map(|(log, stamp)| (log, Seen::of(stamp, &log.0, log.1)))
        .collect();
    for (_, look) in &mut seen {
        if let Ok(look) = look
            && !look.unchanged()
            && look.stamp.is_some()
        {
            look.known = archive.source(&look.key)?;
        }
    }
    Ok(seen)
}

/// The logs in units for the reading threads.
fn read_units<'a>(
    seen: Vec<(&'a Log, Result<Seen>)>,
) -> impl Iterator<Item = Vec<(&'a Log, Result<Seen>)>> + 'a {
    let mut seen = seen.into_iter().peekable();
    std::iter::from_fn(move || {
        seen.peek()?;
        let mut unit = Vec::new();
        let mut bytes = 0u64;
        while unit.len() < FILES_PER_READ && bytes < BYTES_PER_READ {
            let Some((log, look)) = seen.next() else {
                break;
            };
            if let Ok(look) = &look {
                bytes += look.to_read();
            }
            unit.push((log, look));
        }
        Some(unit)
    })
}

/// How a file's writes are made all-or-nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atomicity {
    /// By the batch's transaction: a failure halfway through a file's writes is returned as
    /// [`HalfWritten`], for the caller to roll the batch back.
    Batch,
    /// By a savepoint around the file's writes: a failure rolls back that file alone.
    File,
}

/// A file's writes failed after some of them were made: only rolling back the transaction
/// undoes them.
#[derive(Debug)]
struct HalfWritten(agentsync_archive::ArchiveError);

impl std::fmt::Display for HalfWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for HalfWritten {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Atomicity {
    /// Runs a file's writes all-or-nothing.
    fn write<T>(
        self,
        archive: &Archive,
        writes: impl FnOnce(&Archive) -> agentsync_archive::Result<T>,
    ) -> Result<T> {
        match self {
            Atomicity::File => Ok(archive.atomically(writes)?),
            Atomicity::Batch => writes(archive).map_err(|e| HalfWritten(e).into()),
        }
    }
}

/// What reading one log found, before anything is stored: made on any thread, without the
/// archive.
struct Readout<'a> {
    log: &'a Log,
    read: Result<Read>,
}

enum Read {
    Unchanged,
    Lines(Seen, LinesRead),
    Document(Seen, DocumentRead),
    /// Many sessions in one file: read while storing, since which of its sessions to read
    /// again depends on what the archive holds.
    Collection(Seen),
}

impl<'a> Readout<'a> {
    fn of(log: &'a Log, seen: Result<Seen>) -> Readout<'a> {
        Readout {
            log,
            read: seen.and_then(|seen| Read::of(&log.0, log.1, seen)),
        }
    }

    /// Stores what was read. A log whose `sources` row changed since it was read is read
    /// again, against the row as it is now: reads run ahead of the store against the rows as
    /// the pass began, so a log listed twice in one pass would otherwise be stored twice from
    /// the same starting point. (No other process writes meanwhile: `lock::WriteLock`.)
    fn store(self, owner: &Owner<'_>, atomicity: Atomicity) -> Result<FileOutcome> {
        let archive = owner.archive;
        let (path, agent) = self.log;
        let mut read = self.read?;
        if let Some(seen) = read.seen() {
            let now = archive.source(&seen.key)?;
            if now != seen.known {
                read = Read::of(path, agent, Seen::of_row(now, path, agent)?)?;
            }
        }
        match read {
            Read::Unchanged => Ok(FileOutcome::Unchanged),
            Read::Lines(seen, lines) => store_lines(owner, &seen, lines, atomicity),
            Read::Document(seen, document) => store_document(owner, &seen, document, atomicity),
            Read::Collection(seen) => {
                let Reader::Collection(read) = agent.reader else {
                    bail!("{} is not read as a collection", agent.name);
                };
                ingest_collection(owner, path, &seen, read, atomicity)
            }
        }
    }
}

/// Opens a changed file to read it, and looks at it again: what is read is the file as it is
/// once open, even if it was replaced or grew since the `stat`.
fn open(path: &Path, agent: &Agent, seen: Seen) -> Result<(File, Seen)> {
    let file = File::open(path)?;
    let seen = Seen::with(seen.stamp, seen.known, path, agent, &file.metadata()?);
    Ok((file, seen))
}

impl Read {
    fn of(path: &Path, agent: &Agent, seen: Seen) -> Result<Read> {
        if seen.unchanged() {
            return Ok(Read::Unchanged);
        }
        let read = match &agent.reader {
            Reader::Lines(read) => *read,
            Reader::Document(read) => {
                let (file, seen) = open(path, agent, seen)?;
                let document = read_document(path, file, &seen, *read)?;
                return Ok(Read::Document(seen, document));
            }
            Reader::Collection(_) => return Ok(Read::Collection(seen)),
        };
        let (file, seen) = open(path, agent, seen)?;
        let lines = read_lines(path, file, &seen, read)?;
        Ok(Read::Lines(seen, lines))
    }

    /// What the log looked like when it was read; none when it was unchanged.
    fn seen(&self) -> Option<&Seen> {
        match self {
            Read::Unchanged => None,
            Read::Lines(seen, _) | Read::Document(seen, _) | Read::Collection(seen) => Some(seen),
        }
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
                for failed in read.failed {
                    if summary.failed.len() < LISTED {
                        summary.failed.push(format!("{}: {failed}", path.display()));
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

#[derive(Default)]
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
    /// Sessions of a collection that could not be read, `session KEY: reason`.
    failed: Vec<String>,
}

#[cfg(unix)]
fn stat(meta: &std::fs::Metadata) -> (i64, u64) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        meta.ino(),
    )
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

/// What a log file looks like now, and what the last pass saw of it.
struct Seen {
    /// The path as text: the key of the file's `sources` row.
    key: String,
    agent: &'static str,
    size: u64,
    mtime_ns: i64,
    inode: u64,
    /// What the last pass saw of it, if it read it.
    stamp: Option<SourceStamp>,
    /// Its `sources` row with the resume state: looked up only when the file changed.
    known: Option<SourceRow>,
    /// Untouched for [`SETTLED_NS`]: the agent is done with it, and messages still waiting for
    /// tool results are published with the results they have (issue 11).
    settled: bool,
}

impl Seen {
    /// One `stat`: all an unchanged file costs.
    fn of(stamp: Option<SourceStamp>, path: &Path, agent: &Agent) -> Result<Seen> {
        Ok(Seen::with(
            stamp,
            None,
            path,
            agent,
            &std::fs::metadata(path)?,
        ))
    }

    /// With the file's whole `sources` row.
    fn of_row(known: Option<SourceRow>, path: &Path, agent: &Agent) -> Result<Seen> {
        let stamp = known.as_ref().map(SourceRow::stamp);
        Ok(Seen::with(
            stamp,
            known,
            path,
            agent,
            &std::fs::metadata(path)?,
        ))
    }

    fn with(
        stamp: Option<SourceStamp>,
        known: Option<SourceRow>,
        path: &Path,
        agent: &Agent,
        meta: &Metadata,
    ) -> Seen {
        let (mut mtime_ns, inode) = stat(meta);
        let mut size = meta.len();
        // A SQLite database (OpenCode's) is written to its write-ahead log first; the main
        // file changes only at a checkpoint. The log's size and time count as the file's.
        if matches!(agent.reader, Reader::Collection(_)) {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            if let Ok(wal) = std::fs::metadata(Path::new(&wal)) {
                size = size.saturating_add(wal.len());
                mtime_ns = mtime_ns.max(stat(&wal).0);
            }
        }
        Seen {
            stamp,
            known,
            key: path.to_string_lossy().into_owned(),
            agent: agent.name,
            size,
            mtime_ns,
            inode,
            settled: now_ns().saturating_sub(mtime_ns) > SETTLED_NS,
        }
    }

    /// About how many bytes reading the file will take: what it grew by, when it only grew.
    fn to_read(&self) -> u64 {
        if self.unchanged() {
            return 0;
        }
        match &self.stamp {
            Some(was) if was.inode == self.inode && was.size <= self.size => self.size - was.size,
            _ => self.size,
        }
    }

    /// Nothing to read: the same file, read as the same agent's, untouched, with no message
    /// waiting to be published once it settles.
    fn unchanged(&self) -> bool {
        self.stamp.as_ref().is_some_and(|was| {
            was.format == self.agent
                && was.size == self.size
                && was.mtime_ns == self.mtime_ns
                && was.inode == self.inode
                && (!self.settled || !was.holding)
        })
    }

    /// The row the next pass compares with; `holding`: messages wait in `resume_json`.
    fn row(&self, resume_json: String, holding: bool) -> SourceRow {
        SourceRow {
            path: self.key.clone(),
            format: self.agent.to_owned(),
            size: self.size,
            mtime_ns: self.mtime_ns,
            inode: self.inode,
            native_id: None,
            resume_json,
            holding,
        }
    }
}

/// How long a log must be untouched before messages still waiting for tool results are
/// published without them.
const SETTLED_NS: i64 = 3_600 * 1_000_000_000;

/// What the `sources` row of a document (or of one session of a collection) keeps: it is
/// read whole every time, so only what the next pass compares.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DocumentState {
    /// Messages left unpublished until the file settles (they wait for tool results, or are the
    /// last one, which the agent may still add to).
    waiting: u64,
    malformed: u64,
    first_malformed: String,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A session's content as one read found it, to store.
struct Content {
    session: Option<Session>,
    messages: Vec<Message>,
    usage_events: Vec<UsageEvent>,
    late_results: Vec<LateResult>,
    /// Stored messages found to be on a branch the user left (an edited prompt's first try).
    abandoned: Vec<Abandoned>,
    /// `messages` are the whole session (a document, or a log read again from the start), to
    /// compare with what is stored, not a continuation of it.
    whole: bool,
    /// The read got somewhere (bytes, or messages): the session record is stored again.
    progressed: bool,
}

/// A line log read from where the last pass stopped (or from its start).
struct LinesRead {
    pass: LinesPass,
    resumed: bool,
}

fn read_lines(path: &Path, file: File, seen: &Seen, read_lines: ReadLines) -> Result<LinesRead> {
    // Resume only the same file grown (or untouched, to publish what waited): a replaced or
    // shrunk one is read from the start, and so is one whose bytes before the resume point
    // changed (rewritten in place, then grown: the parser's fingerprint), and one changed
    // without growing (rewritten in place at the same size: no append does that).
    let resume = seen
        .known
        .as_ref()
        .filter(|row| {
            row.inode == seen.inode
                && row.format == seen.agent
                && (row.size < seen.size
                    || (row.size == seen.size && row.mtime_ns == seen.mtime_ns))
        })
        .map(|row| row.resume_json.as_str());
    let pass = read_lines(
        path,
        file,
        resume,
        &LinesOptions {
            settled: seen.settled,
        },
    )?;
    Ok(LinesRead {
        pass,
        resumed: resume.is_some(),
    })
}

fn store_lines(
    owner: &Owner<'_>,
    seen: &Seen,
    LinesRead { pass, resumed }: LinesRead,
    atomicity: Atomicity,
) -> Result<FileOutcome> {
    let bytes = pass.offset.saturating_sub(pass.started_at);
    let mut read = FileRead {
        malformed_total: pass.malformed_total,
        first_malformed: pass.first_malformed,
        bytes,
        messages: pass.messages.len() as u64,
        malformed: pass.report.malformed_lines,
        malformed_unlisted: pass.report.malformed_unlisted,
        ..FileRead::default()
    };
    let content = Content {
        session: pass.session,
        whole: seen.known.is_some() && (!resumed || pass.restarted),
        progressed: bytes > 0 || !pass.messages.is_empty(),
        messages: pass.messages,
        usage_events: pass.usage_events,
        late_results: pass.late_results,
        abandoned: pass.abandoned,
    };
    store(
        owner,
        seen.known.as_ref(),
        content,
        seen.row(pass.state_json, pass.holding),
        &mut read,
        atomicity,
    )?;
    Ok(FileOutcome::Read(read))
}

/// The largest document read whole; a larger one is refused with its size.
const MAX_DOCUMENT_BYTES: u64 = 512 * 1024 * 1024;

/// A document read whole.
struct DocumentRead {
    document: Document,
    bytes: u64,
}

fn read_document(
    path: &Path,
    mut file: File,
    seen: &Seen,
    read_document: fn(&Path, &[u8]) -> std::result::Result<Document, String>,
) -> Result<DocumentRead> {
    if seen.size > MAX_DOCUMENT_BYTES {
        bail!(
            "{} bytes, more than the {MAX_DOCUMENT_BYTES} bytes a session document is read up to",
            seen.size
        );
    }
    let mut bytes = Vec::with_capacity(usize::try_from(seen.size).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    let document = read_document(path, &bytes).map_err(|reason| anyhow!(reason))?;
    Ok(DocumentRead {
        document,
        bytes: bytes.len() as u64,
    })
}

fn store_document(
    owner: &Owner<'_>,
    seen: &Seen,
    DocumentRead { document, bytes }: DocumentRead,
    atomicity: Atomicity,
) -> Result<FileOutcome> {
    let mut read = FileRead {
        bytes,
        ..FileRead::default()
    };
    let (content, state) = document_content(document, seen.settled, seen.known.as_ref(), &mut read);
    store(
        owner,
        seen.known.as_ref(),
        content,
        seen.row(serde_json::to_string(&state)?, state.waiting > 0),
        &mut read,
        atomicity,
    )?;
    Ok(FileOutcome::Read(read))
}

/// What of a document is published now (`Document::publishable`: what waits, and the last
/// message, once the log has settled), and the state its row keeps. Malformed parts are reported when their
/// count changed since the last read, not again on every read of the same document.
fn document_content(
    document: Document,
    settled: bool,
    known: Option<&SourceRow>,
    read: &mut FileRead,
) -> (Content, DocumentState) {
    let publishable = document.publishable(settled);
    let Document {
        session,
        mut messages,
        usage_events,
        report,
        ..
    } = document;
    let waiting = messages.len() - publishable;
    messages.truncate(publishable);
    let malformed = report.malformed_lines.len() as u64 + report.malformed_unlisted;
    let before = known
        .and_then(|row| serde_json::from_str::<DocumentState>(&row.resume_json).ok())
        .map_or(0, |s| s.malformed);
    let state = DocumentState {
        waiting: waiting as u64,
        malformed,
        first_malformed: report
            .malformed_lines
            .first()
            .map(|(line, reason)| format!("item {line}: {reason}"))
            .unwrap_or_default(),
    };
    read.malformed_total = malformed;
    read.first_malformed.clone_from(&state.first_malformed);
    if malformed != before {
        read.malformed = report.malformed_lines;
        read.malformed_unlisted = report.malformed_unlisted;
    }
    let content = Content {
        session: Some(session),
        messages,
        usage_events,
        late_results: Vec::new(),
        abandoned: Vec::new(),
        whole: true,
        progressed: true,
    };
    (content, state)
}

fn ingest_collection(
    owner: &Owner<'_>,
    path: &Path,
    seen: &Seen,
    read_collection: ReadCollection,
    atomicity: Atomicity,
) -> Result<FileOutcome> {
    let archive = owner.archive;
    let session_key = |key: &str| format!("{}#{key}", seen.key);
    let sessions = read_collection(
        path,
        &mut |key, version| match archive.source(&session_key(key)) {
            Ok(Some(row)) => row.mtime_ns != version || (seen.settled && row.holding),
            _ => true,
        },
    )?;
    let mut read = FileRead {
        bytes: seen.size,
        ..FileRead::default()
    };
    let mut waiting = 0;
    for one in sessions {
        let key = session_key(&one.key);
        let document = match one.document {
            Ok(document) => document,
            Err(reason) => {
                read.failed.push(format!("session {}: {reason}", one.key));
                continue;
            }
        };
        let known = archive.source(&key)?;
        let (content, state) = document_content(document, seen.settled, known.as_ref(), &mut read);
        waiting += state.waiting;
        let row = SourceRow {
            path: key,
            format: seen.agent.to_owned(),
            size: 0,
            mtime_ns: one.version,
            inode: 0,
            native_id: None,
            resume_json: serde_json::to_string(&state)?,
            holding: state.waiting > 0,
        };
        store(owner, known.as_ref(), content, row, &mut read, atomicity)?;
    }
    // The file's own row: what it looked like, and whether any session still waits.
    let state = DocumentState {
        waiting,
        ..DocumentState::default()
    };
    let row = seen.row(serde_json::to_string(&state)?, waiting > 0);
    atomicity.write(archive, |a| a.set_source(&row))?;
    Ok(FileOutcome::Read(read))
}

/// Stores what one read found of a session, with its `sources` row, all-or-nothing.
/// The archive a pass stores into, as the origin whose logs it reads (with its ledger, for
/// purged sessions).
struct Owner<'a> {
    archive: &'a Archive,
    origin: &'a OriginId,
    ledger: &'a LedgerState,
}

fn store(
    owner: &Owner<'_>,
    known: Option<&SourceRow>,
    content: Content,
    mut row: SourceRow,
    read: &mut FileRead,
    atomicity: Atomicity,
) -> Result<()> {
    let Owner {
        archive,
        origin,
        ledger,
    } = *owner;
    let Content {
        mut session,
        messages,
        usage_events,
        late_results,
        abandoned,
        whole,
        progressed,
    } = content;
    let mut whole = whole;
    // A log read for the first time whose session the archive holds already (`rebuild`
    // restored it from the store, with no ingest progress) is compared like a rewritten one:
    // stored messages the log no longer has are kept, never replaced.
    if known.is_none()
        && let Some(s) = &session
        && archive.has_session(&SessionGid::new(origin.clone(), s.native_id.clone()))?
    {
        whole = true;
    }
    // A file whose earlier content changed was given a session of its own (see below): what
    // is appended to it later goes there too, and a document read whole is compared with it.
    let continues_alias = !whole || is_document(&row);
    if continues_alias
        && let (Some(s), Some(known)) = (session.as_mut(), known)
        && let Some(alias) = known.native_id.as_deref()
        && alias != s.native_id.as_str()
        && let Ok(alias) = alias.parse()
    {
        s.parent_session = s.native_id.to_string();
        s.relationship = "rewrite".into();
        s.native_id = alias;
    }
    row.native_id = session.as_ref().map(|s| s.native_id.to_string());
    atomicity.write(archive, |a| {
        if let Some(session) = &session {
            let gid = SessionGid::new(origin.clone(), session.native_id.clone());
            if ledger.is_purged(&gid) {
                read.purged = true;
            } else if whole || progressed || known.is_none() {
                let document = is_document(&row);
                let stored = if document {
                    // A document rewritten by its agent may fill in a result of a call it
                    // already held: that amends the stored message instead of diverging.
                    read.changed |= amend_answered(a, &gid, &messages)?;
                    a.message_count(&gid)?
                } else {
                    0
                };
                if whole {
                    // Read again from the start, a log flags its abandoned branches at once:
                    // stored messages that lack only the flag are amended, not diverged from.
                    read.changed |= amend_flagged_abandoned(a, &gid, &messages)?;
                }
                let applied = a.apply_own(origin, session, &messages, &usage_events, whole)?;
                if document {
                    // A document is read whole: what is new is what the archive did not hold.
                    read.messages += a.message_count(&gid)?.saturating_sub(stored);
                }
                read.changed |= applied != OwnApplied::KeptStored;
                if !late_results.is_empty() && applied != OwnApplied::Diverged {
                    read.changed |= amend_late_results(a, &gid, &late_results)?;
                }
                if !abandoned.is_empty() && applied != OwnApplied::Diverged {
                    read.changed |= amend_abandoned(a, &gid, &abandoned)?;
                }
                if applied == OwnApplied::Diverged {
                    // The archive keeps what it had; the rewritten file is a new session,
                    // linked to the one it replaced, never mixed into it (issue 19 item 3).
                    let original = SessionGid::new(
                        origin.clone(),
                        session
                            .parent_session
                            .parse()
                            .ok()
                            .filter(|_| session.relationship == "rewrite")
                            .unwrap_or_else(|| session.native_id.clone()),
                    );
                    let base = Session {
                        native_id: original.native,
                        ..session.clone()
                    };
                    let rewrite = rewrite_of(a, origin, &base)?;
                    a.apply_own(origin, &rewrite, &messages, &usage_events, false)?;
                    row.native_id = Some(rewrite.native_id.to_string());
                    read.changed = true;
                }
            }
        }
        a.set_source(&row)
    })?;
    // The messages were allocated by the reading threads: freed here, each free would take
    // the allocator lock of the arena they came from, against those threads, on the writer's
    // thread (the ingest's critical path). Freed on the reading threads' pool, 1 GB ingests
    // ~3 % faster.
    rayon::spawn(move || drop(messages));
    Ok(())
}

/// Whether a `sources` row is a document's (or a collection session's) rather than a line
/// log's resume state.
fn is_document(row: &SourceRow) -> bool {
    serde_json::from_str::<DocumentState>(&row.resume_json).is_ok()
}

/// Stored messages that `messages` (the whole session, read again) repeats with tool results
/// filled in or changed, and nothing else changed: amended in place.
fn amend_answered(
    archive: &Archive,
    gid: &SessionGid,
    messages: &[Message],
) -> agentsync_archive::Result<bool> {
    let without_results = |m: &Message| {
        let mut m = m.clone();
        for call in &mut m.tool_calls {
            call.result.clear();
            call.is_error = false;
            call.result_events.clear();
            call.subagent_session.clear();
        }
        m
    };
    let stored = archive.messages(gid, 0)?;
    let amended: Vec<Message> = stored
        .iter()
        .zip(messages)
        .filter(|(old, new)| old != new && without_results(old) == without_results(new))
        .map(|(_, new)| new.clone())
        .collect();
    amend(archive, gid, amended)
}

/// Results that arrived after their calls' messages were stored (the user interrupted, a
/// parallel subagent finished later): each message is amended in the archive (issue 11).
fn amend_late_results(
    archive: &Archive,
    gid: &SessionGid,
    late: &[LateResult],
) -> agentsync_archive::Result<bool> {
    let mut amended = Vec::new();
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
            amended.push(message);
        }
    }
    amend(archive, gid, amended)
}

/// Stored messages on a branch the user left, found after they were stored (the edited prompt
/// came in a later pass): each is flagged `abandoned` in the archive (issue 11).
fn amend_abandoned(
    archive: &Archive,
    gid: &SessionGid,
    ranges: &[Abandoned],
) -> agentsync_archive::Result<bool> {
    let mut amended = Vec::new();
    for range in ranges {
        for mut message in archive.messages(gid, range.first)? {
            if message.ordinal >= range.end {
                break;
            }
            if range.apply_to(&mut message) {
                amended.push(message);
            }
        }
    }
    amend(archive, gid, amended)
}

/// Stored messages that `messages` (the whole session, read again) repeats flagged
/// `abandoned`, and nothing else changed: amended in place.
fn amend_flagged_abandoned(
    archive: &Archive,
    gid: &SessionGid,
    messages: &[Message],
) -> agentsync_archive::Result<bool> {
    if !messages.iter().any(|m| m.abandoned) {
        return Ok(false);
    }
    let stored = archive.messages(gid, 0)?;
    let amended: Vec<Message> = stored
        .iter()
        .zip(messages)
        .filter(|(old, new)| {
            !old.abandoned
                && new.abandoned
                && Message {
                    abandoned: true,
                    ..(*old).clone()
                } == **new
        })
        .map(|(_, new)| new.clone())
        .collect();
    amend(archive, gid, amended)
}

/// Replaces stored messages of an own session, and tells export to re-encode the session
/// from the first amended message on, so every machine gets them. Whether any was replaced.
fn amend(
    archive: &Archive,
    gid: &SessionGid,
    messages: Vec<Message>,
) -> agentsync_archive::Result<bool> {
    let mut first_amended: Option<u64> = None;
    for message in messages {
        if archive.amend_own_message(gid, &message)? {
            first_amended = Some(first_amended.map_or(message.ordinal, |o| o.min(message.ordinal)));
        }
    }
    if let Some(ordinal) = first_amended {
        archive.note_amended(&gid.native, ordinal)?;
    }
    Ok(first_amended.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../logs/tests/fixtures/claude-code/-home-dev-src-ledger/3f0b7d2e-9c41-4e8a-b6d5-1a2c3e4f5a6b.jsonl"
    );

    fn claude() -> &'static Agent {
        agentsync_logs::agent::named("claude").expect("the claude agent")
    }

    fn origin() -> OriginId {
        "test-a00001".parse().expect("origin")
    }

    /// Copies of the fixture, each a session of its own (the file name is the session id).
    fn logs(dir: &Path, n: usize) -> Vec<Log> {
        let text = std::fs::read_to_string(FIXTURE).expect("fixture");
        (0..n)
            .map(|i| {
                let path = dir.join(format!("0000000{i}-9c41-4e8a-b6d5-1a2c3e4f5a6b.jsonl"));
                std::fs::write(&path, &text).expect("write log");
                (path, claude())
            })
            .collect()
    }

    fn archive_messages(archive: &Archive) -> u64 {
        let sessions = archive
            .sessions(&agentsync_archive::SessionFilter::default())
            .expect("sessions");
        sessions.iter().map(|s| s.message_count).sum()
    }

    /// A fresh folder, removed at the end of the test.
    struct Folder(std::path::PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let path =
                std::env::temp_dir().join(format!("agentsync-pass-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("folder");
            Folder(path)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_pass_over_more_files_than_a_read_unit_stores_every_file_once() {
        let dir = Folder::new("units");
        let logs = logs(&dir.0, FILES_PER_READ * 2 + 3);
        let mut archive = Archive::open_in_memory().expect("archive");
        let summary = run(&mut archive, &origin(), &logs, &Progress::new(true)).expect("ingest");
        assert_eq!(summary.files, logs.len() as u64);
        assert_eq!(summary.unchanged, 0);
        assert_eq!(summary.sessions_changed, logs.len() as u64);
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        let stored = archive_messages(&archive);
        assert_eq!(stored, summary.messages);
        assert!(stored >= logs.len() as u64);
        let mut paths: Vec<String> = archive
            .sources()
            .expect("sources")
            .into_iter()
            .map(|r| r.path)
            .collect();
        let mut expected: Vec<String> = logs.iter().map(|l| l.0.display().to_string()).collect();
        paths.sort();
        expected.sort();
        assert_eq!(paths, expected);

        let again = run(&mut archive, &origin(), &logs, &Progress::new(true)).expect("ingest");
        assert_eq!(again.unchanged, logs.len() as u64);
        assert_eq!(archive_messages(&archive), stored);
    }

    #[test]
    fn a_log_listed_twice_in_one_pass_is_stored_once_and_then_found_unchanged() {
        let dir = Folder::new("twice");
        let once = logs(&dir.0, 1);
        let twice = vec![once[0].clone(), once[0].clone()];
        let mut archive = Archive::open_in_memory().expect("archive");
        let summary = run(&mut archive, &origin(), &twice, &Progress::new(true)).expect("ingest");
        assert_eq!((summary.sessions_changed, summary.unchanged), (1, 1));
        assert_eq!(archive_messages(&archive), summary.messages);
        assert!(summary.messages > 0);
    }

    #[test]
    fn a_file_that_fails_halfway_through_its_writes_is_stored_not_at_all_and_the_rest_are() {
        let dir = Folder::new("halfway");
        let logs = logs(&dir.0, 3);
        let db = dir.0.join("archive.db");
        let mut archive = Archive::open(&db).expect("archive");
        // The file's `sources` row is its last write: messages and session are in by then.
        let sql = rusqlite::Connection::open(&db).expect("second connection");
        sql.execute_batch(
            "CREATE TRIGGER injected BEFORE INSERT ON sources WHEN new.path LIKE '%/00000001-%'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .expect("trigger");
        let summary = run(&mut archive, &origin(), &logs, &Progress::new(true)).expect("ingest");
        assert_eq!(summary.failed.len(), 1, "{:?}", summary.failed);
        assert!(
            summary.failed[0].contains("00000001-"),
            "{:?}",
            summary.failed
        );
        assert!(
            summary.failed[0].contains("injected failure"),
            "{:?}",
            summary.failed
        );
        let sessions = archive
            .sessions(&agentsync_archive::SessionFilter::default())
            .expect("sessions");
        assert_eq!(sessions.len(), 2, "the failed file left a session behind");
        let one = sessions[0].message_count;
        assert_eq!(archive_messages(&archive), 2 * one);
        assert_eq!(summary.messages, 2 * one);

        sql.execute_batch("DROP TRIGGER injected")
            .expect("drop trigger");
        let again = run(&mut archive, &origin(), &logs, &Progress::new(true)).expect("ingest");
        assert_eq!((again.unchanged, again.sessions_changed), (2, 1));
        assert_eq!(archive_messages(&archive), 3 * one);
    }
}
