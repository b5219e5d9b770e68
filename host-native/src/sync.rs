//! One sync run (DESIGN §6): ingest → export → exchange → import → replay → report.
//!
//! The machine's artifacts live in its local mirror (`<data>/store`): export writes there,
//! exchange relays between the mirror and the target, import reads the mirror. Every step
//! resumes after a crash: artifacts are write-once (rewriting one is a no-op), engine states
//! are saved only after what they describe landed, and applying an import unit is idempotent.

use std::path::Path;
use std::sync::mpsc;

use agentsync_archive::{Archive, EngineStates, HostStep, ProblemRow, SyncRun};
use agentsync_core::sync::engine::{Input, Output, StageName, Stages, SyncConfig, SyncEngine};
use agentsync_core::sync::store::{
    Response, StoreId, StoreRequest, merge_answers, requests_for, target_requests,
};
use agentsync_core::{OriginId, OriginKey};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::compress::{ZstdCompressor, ZstdDecompressor};
use crate::import_writer::ImportWriter;
use crate::ingest::find::Log;
use crate::ingest::pass::{self, IngestSummary};
use crate::progress::{Bar, Progress};
use crate::session_reader::SessionReader;
use crate::store::FolderStore;
use crate::target::{Target, TargetSpec};

/// Which build of the core plans import, exchange and replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Native,
    Wasm,
}

/// What a sync did. The same shape with either engine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncReport {
    pub origin: String,
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest: Option<serde_json::Value>,
    /// Artifacts export created in the local mirror.
    pub exported: usize,
    pub events_published: usize,
    /// Own artifacts copied to the target.
    pub sent: usize,
    /// Artifacts copied between the mirror and the target in either direction.
    pub exchanged: usize,
    pub fetched: usize,
    pub imported_sessions: usize,
    pub imported_messages: usize,
    pub events_applied: usize,
    pub events_deferred: u64,
    pub conflicts: u64,
    pub quarantined: Vec<ProblemRow>,
    pub deferred: Vec<ProblemRow>,
    /// Root keys that did not verify and were passed over for an older root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadowed_roots: Vec<String>,
    /// What the scheduled GC did, when it ran after this sync (`gc --json`'s shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<serde_json::Value>,
    pub requests: usize,
}

impl SyncReport {
    /// Exit code 3: something was deferred or quarantined, or a log could not be read.
    pub fn is_partial(&self) -> bool {
        let ingest_failed = self
            .ingest
            .as_ref()
            .and_then(|i| i["failed"].as_array())
            .is_some_and(|f| !f.is_empty());
        !self.quarantined.is_empty()
            || !self.deferred.is_empty()
            || self.events_deferred > 0
            || ingest_failed
    }
}

pub struct SyncOptions<'a> {
    pub target: Option<&'a TargetSpec>,
    /// The config's token for an HTTP peer target.
    pub http_token: Option<&'a str>,
    /// Logs to ingest first (`None`: no ingest).
    pub ingest: Option<&'a [Log]>,
    pub engine: EngineKind,
    pub component: Option<&'a Path>,
    pub now_ms: u64,
    /// How often self-heal lists all own keys in the target (0: every run).
    pub heal_every_ms: u64,
    /// The engine's large states, read while logs were found and ingested.
    pub states_ahead: Option<&'a StatesAhead>,
}

/// The engine's large states ([`EngineStates`]), read on a connection and a core of their
/// own while the run finds and ingests logs: at 10 k sessions they are megabytes of JSON, and
/// a sync that finds nothing new otherwise spends a third of its time reading them after the
/// ingest. Only a sync run writes them, and it holds the write lock.
pub struct StatesAhead(mpsc::Receiver<agentsync_archive::Result<EngineStates>>);

impl StatesAhead {
    pub fn start(archive_path: &Path) -> Self {
        let (sender, states) = mpsc::sync_channel(1);
        let path = archive_path.to_path_buf();
        std::thread::spawn(move || {
            // The run may have stopped on an error and dropped the receiver.
            let _ = sender.send(Archive::open(&path).and_then(|a| a.engine_states()));
        });
        StatesAhead(states)
    }

    /// The states read, or `None` if they could not be (the run reads them again on its own
    /// connection, and reports what fails there).
    fn take(&self) -> Option<EngineStates> {
        self.0.recv().ok()?.ok()
    }
}

pub fn run(
    archive: &mut Archive,
    identity: &(OriginId, OriginKey),
    mirror_dir: &Path,
    options: &SyncOptions<'_>,
    progress: &Progress,
) -> Result<SyncReport> {
    let (origin, key) = identity;
    let mut report = SyncReport {
        origin: origin.to_string(),
        target: options.target.map(ToString::to_string),
        ..SyncReport::default()
    };
    if let Some(logs) = options.ingest {
        let summary: IngestSummary = pass::run(archive, origin, logs, progress)?;
        report.ingest = Some(serde_json::to_value(summary)?);
    }
    let mut stores = Stores {
        mirror: FolderStore::new(mirror_dir),
        target: options
            .target
            .map(|spec| crate::target::open(spec, options.http_token))
            .transpose()?,
    };
    let config = SyncConfig {
        origin: origin.clone(),
        key: OriginKey::from_secret(key.secret()),
        now_ms: options.now_ms,
        target: stores.target.is_some(),
        stages: Stages::ALL,
        last_sync_ms: archive.last_sync_ms()?,
        heal_every_ms: options.heal_every_ms,
    };
    let state = match options.states_ahead.and_then(StatesAhead::take) {
        Some(states) => archive.sync_state_with(states)?,
        None => archive.sync_state()?,
    };
    let mut engine: Box<dyn Driver> = match options.engine {
        EngineKind::Native => Box::new(
            SyncEngine::new(config, state)
                .with_compressor(Box::new(ZstdCompressor))
                .with_decompressor(std::sync::Arc::new(ZstdDecompressor))
                .with_import_window(crate::import_writer::WINDOW_BYTES),
        ),
        EngineKind::Wasm => {
            let path = match options.component {
                Some(p) => p.to_path_buf(),
                None => crate::wasm::default_component_path()?,
            };
            Box::new(crate::wasm::ComponentEngine::start(&path, &config, &state)?)
        }
    };
    let core = drive(engine.as_mut(), archive, &mut stores, origin, progress)?;

    // Whatever data was written after the last root is made durable before we report.
    stores.mirror.flush()?;
    // A target that refused this machine or could not be reached answered every request
    // after that at once with a failure: the local work (export, import from the mirror) is
    // done; the run is not a partial success but a failure, with its cause.
    if let Some(reason) = stores.target.as_ref().and_then(|t| t.refused()) {
        bail!("{reason} (nothing is lost: the next sync goes on from here)");
    }
    if let Some(target) = &stores.target {
        target.flush()?;
    }
    report.exported = core.exported;
    report.events_published = core.events_published;
    report.sent = core.sent;
    report.exchanged = core.exchanged;
    report.fetched = core.fetched;
    report.imported_sessions = core.imported_sessions;
    report.imported_messages = core.imported_messages;
    report.events_applied = core.events_applied;
    report.requests = core.requests;
    report.shadowed_roots = core.shadowed_roots.clone();
    let outcome = archive.finish_sync(&core, options.now_ms)?;
    crate::crash_point::passed("sync.finished");
    report.quarantined = outcome.quarantined;
    report.deferred = outcome.deferred;
    report.events_deferred = outcome.events_deferred;
    report.conflicts = outcome.conflicts;
    let mut recorded = serde_json::to_value(&report)?;
    if let Some(obj) = recorded.as_object_mut() {
        obj.remove("ingest");
    }
    archive.record_sync(&SyncRun {
        target: report.target.clone().unwrap_or_default(),
        // After the last write of the run: self-heal next time rechecks only keys modified
        // after this.
        finished_ms: i64::try_from(crate::commands::now_ms()).unwrap_or(i64::MAX),
        report: recorded,
    })?;
    Ok(report)
}

/// What a restore from the local mirror brought back (`agentsync rebuild`).
pub struct Restored {
    pub core: agentsync_core::sync::engine::SyncReport,
    pub outcome: agentsync_archive::SyncOutcome,
}

/// Imports every origin's sessions and edits from the local mirror, this machine's own
/// included, into an archive that lost them: the engine's import and replay stages only,
/// with no target, recorded as no sync run (self-heal's marks stay as they were).
pub fn restore(
    archive: &mut Archive,
    identity: &(OriginId, OriginKey),
    mirror_dir: &Path,
    now_ms: u64,
    progress: &Progress,
) -> Result<Restored> {
    let (origin, key) = identity;
    let config = SyncConfig {
        origin: origin.clone(),
        key: OriginKey::from_secret(key.secret()),
        now_ms,
        target: false,
        stages: Stages {
            export: false,
            exchange: false,
            import: true,
        },
        last_sync_ms: archive.last_sync_ms()?,
        heal_every_ms: 0,
    };
    let mut engine = SyncEngine::new(config, archive.sync_state()?)
        .with_decompressor(std::sync::Arc::new(ZstdDecompressor))
        .with_import_window(crate::import_writer::WINDOW_BYTES)
        .restoring_own();
    let mut stores = Stores {
        mirror: FolderStore::new(mirror_dir),
        target: None,
    };
    let core = drive(&mut engine, archive, &mut stores, origin, progress)?;
    let outcome = archive.finish_sync(&core, now_ms)?;
    Ok(Restored { core, outcome })
}

/// The core's sync engine, natively or as a WebAssembly component: the same machine behind
/// the same two calls.
pub trait Driver {
    fn poll(&mut self) -> Result<Output>;
    fn handle(&mut self, input: Input) -> Result<()>;
}

impl Driver for SyncEngine {
    fn poll(&mut self) -> Result<Output> {
        Ok(SyncEngine::poll(self)?)
    }

    fn handle(&mut self, input: Input) -> Result<()> {
        Ok(SyncEngine::handle(self, input)?)
    }
}

struct Stores {
    mirror: FolderStore,
    target: Option<Box<dyn Target>>,
}

impl Stores {
    /// Answers a round, each store's requests at once (a folder's on every core, a remote
    /// target's concurrently).
    fn answer(&mut self, requests: &[StoreRequest]) -> Result<Vec<Response>> {
        let to_target = target_requests(requests);
        let from_target = match (&mut self.target, to_target.is_empty()) {
            (_, true) => Vec::new(),
            (Some(t), false) => t.answer_all(&to_target),
            (None, false) => bail!("the engine asked for a target there is none of"),
        };
        let from_mirror = self
            .mirror
            .answer_round(&requests_for(requests, StoreId::Mirror));
        Ok(merge_answers(requests, from_mirror, from_target)?)
    }
}

/// The host loop: answers the engine's requests from the stores and the archive, and writes
/// to the archive what the engine hands out. No protocol decision is made here.
fn drive(
    engine: &mut dyn Driver,
    archive: &mut Archive,
    stores: &mut Stores,
    origin: &OriginId,
    progress: &Progress,
) -> Result<agentsync_core::sync::engine::SyncReport> {
    let path = archive.path().map(Path::to_path_buf);
    std::thread::scope(|scope| {
        let mut writer = ImportWriter::new(scope, path.as_deref(), origin);
        let reader = SessionReader::new(path.as_deref());
        let core = drive_with(
            engine,
            archive,
            stores,
            origin,
            progress,
            &mut writer,
            &reader,
        )?;
        writer.finish()?;
        Ok(core)
    })
}

fn drive_with(
    engine: &mut dyn Driver,
    archive: &mut Archive,
    stores: &mut Stores,
    origin: &OriginId,
    progress: &Progress,
    writer: &mut ImportWriter,
    reader: &SessionReader,
) -> Result<agentsync_core::sync::engine::SyncReport> {
    let mut bar: Option<(StageName, Bar)> = None;
    loop {
        let output = engine.poll()?;
        let output = match output {
            Output::Apply(units) if !writer.is_off() => {
                writer.store(units)?;
                continue;
            }
            // Store requests and progress leave the archive alone; everything else reads
            // or writes it after the imported windows.
            Output::Store(_) | Output::Progress(_) => output,
            output => {
                writer.drain()?;
                output
            }
        };
        if let Output::ReadSessions(reads) = &output {
            let sessions = reader.read(archive, origin, reads)?;
            engine.handle(Input::Sessions(sessions))?;
            continue;
        }
        let stored = match &output {
            Output::Apply(_) => Some("sync.apply"),
            Output::Exported { .. } => Some("sync.exported"),
            Output::Imported(_) => Some("sync.imported"),
            Output::Replayed(_) => Some("sync.replayed"),
            _ => None,
        };
        match archive.take_output(origin, output)? {
            HostStep::Answer(input) => engine.handle(input)?,
            HostStep::Store(requests) => {
                let responses = stores.answer(&requests)?;
                crate::crash_point::passed("sync.store");
                engine.handle(Input::Store(responses))?;
            }
            HostStep::Stored => {
                if let Some(point) = stored {
                    crate::crash_point::passed(point);
                }
            }
            // The CLI shows no list while it syncs; the import follows in this run.
            HostStep::Listed(_) => {}
            HostStep::Progress(p) => {
                if bar.as_ref().is_none_or(|(stage, _)| *stage != p.stage) {
                    if let Some((_, b)) = bar.take() {
                        b.finish();
                    }
                    bar = Some((p.stage, progress.bar(p.stage.label(), p.total)));
                }
                if let Some((_, b)) = &bar {
                    b.set(p.done, p.total);
                }
            }
            HostStep::Done(report) => {
                if let Some((_, b)) = bar.take() {
                    b.finish();
                }
                return Ok(*report);
            }
        }
    }
}
