//! One sync run (DESIGN §6): ingest → export → exchange → import → replay → report.
//!
//! The machine's artifacts live in its local mirror (`<data>/store`): export writes there,
//! exchange relays between the mirror and the target, import reads the mirror. Every step
//! resumes after a crash: artifacts are write-once (rewriting one is a no-op), engine states
//! are saved only after what they describe landed, and applying an import unit is idempotent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use agentsync_archive::{Archive, ProblemRow, SyncRun};
use agentsync_core::ledger::SignedEvent;
use agentsync_core::names::ROOTS_PREFIX;
use agentsync_core::sync::exchange::ExchangeReport;
use agentsync_core::sync::export::{ExportState, SessionExport, newest_root_seq};
use agentsync_core::sync::import::{ApplyUnit, Import, ImportReport, ImportState, Problem, Step};
use agentsync_core::sync::store::{ListPage, PutOutcome, Store, StoreError, answer, list_all};
use agentsync_core::{
    ArtifactKey, Encoded, EventBatch, HlcClock, KeyRing, LedgerState, Op, OriginId, OriginKey,
    Replay, SessionGid,
};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::compress::ZstdCompressor;
use crate::ingest::pass::{self, IngestSummary, LogFormat};
use crate::progress::Progress;
use crate::store::FolderStore;

/// Sessions encoded before their artifacts are written out (bounds export's memory).
const EXPORT_BATCH: usize = 64;

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
    pub target: Option<&'a Path>,
    /// Logs to ingest first (`None`: no ingest).
    pub ingest: Option<&'a [(PathBuf, LogFormat)]>,
    pub engine: EngineKind,
    pub component: Option<&'a Path>,
    pub now_ms: u64,
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
        target: options.target.map(|t| t.display().to_string()),
        ..SyncReport::default()
    };
    if let Some(logs) = options.ingest {
        let summary: IngestSummary = pass::run(archive, origin, logs, progress)?;
        report.ingest = Some(serde_json::to_value(summary)?);
    }
    let mut mirror = FolderStore::new(mirror_dir);
    let mut target = options.target.map(FolderStore::new);
    let (exported, published) = export(
        archive,
        origin,
        key,
        &mut mirror,
        target.as_mut(),
        options.now_ms,
        progress,
    )
    .context("export")?;
    report.exported = exported;
    report.events_published = published;

    let mut engine = Engine::new(options.engine, options.component)?;
    let mut import_state: ImportState = archive.state("import")?.unwrap_or_default();
    let mut problems = Problems::default();
    let mut exchange_incomplete = false;
    if let Some(target) = &target {
        let bar = progress.bar("exchange", 1);
        let (exchange, keyring) = engine.exchange(&mirror, target, import_state.keyring.clone())?;
        bar.finish();
        import_state.keyring = keyring;
        report.exchanged = exchange.copied.len();
        report.sent = exchange
            .copied
            .iter()
            .filter(|k| k.parse::<ArtifactKey>().is_ok_and(|k| k.origin() == origin))
            .count();
        exchange_incomplete = !exchange.quarantined.is_empty() || !exchange.deferred.is_empty();
        let copied: BTreeSet<String> = exchange.copied.into_iter().collect();
        let since = archive
            .last_sync()?
            .map_or(0, |run| u64::try_from(run.finished_ms).unwrap_or(0))
            .saturating_sub(HEAL_MARGIN_MS);
        let healed = heal_own(&mirror, target, origin, since, &copied);
        report.sent += healed;
        report.exchanged += healed;
        problems.add(exchange.quarantined, exchange.deferred);
    }

    let mut purged: BTreeSet<SessionGid> = archive.ledger()?.purged().cloned().collect();
    let mut events = import_into(
        archive,
        &mut engine,
        &mirror,
        (origin, import_state, purged.clone()),
        &mut report,
        &mut problems,
        progress,
    )?;
    // The exchange relays an origin's root only with everything it references, so one corrupt
    // or missing artifact in the target keeps the whole origin out of the mirror. Import what
    // can be imported of those origins straight from the target (DESIGN edge case 13: only
    // what depends on the bad artifact waits); the rest follows once a good copy arrives.
    if let Some(target) = &target
        && exchange_incomplete
    {
        let lagging = lagging_origins(&mirror, target, origin);
        if !lagging.is_empty() {
            purged.extend(
                events
                    .iter()
                    .filter(|e| e.event.op == Op::Purge)
                    .map(|e| e.event.session.clone()),
            );
            let view = RootsOf {
                store: target.clone(),
                origins: lagging,
            };
            let state: ImportState = archive.state("import")?.unwrap_or_default();
            events.extend(import_into(
                archive,
                &mut engine,
                &view,
                (origin, state, purged),
                &mut report,
                &mut problems,
                progress,
            )?);
        }
    }

    // Whatever data was written after the last root is made durable before we report.
    mirror.flush()?;
    if let Some(target) = &target {
        target.flush()?;
    }
    let replay = replay(archive, &mut engine, events, options.now_ms)?;
    report.events_applied = replay.applied;

    let now = i64::try_from(options.now_ms).unwrap_or(i64::MAX);
    archive.set_problems(&problems.quarantined, &problems.deferred, now)?;
    for row in archive.problems()? {
        if row.state == "quarantined" {
            report.quarantined.push(row);
        } else {
            report.deferred.push(row);
        }
    }
    report.events_deferred = archive.count_deferred_events()?;
    report.conflicts = archive.count_conflicts()?;
    let mut recorded = serde_json::to_value(&report)?;
    if let Some(obj) = recorded.as_object_mut() {
        obj.remove("ingest");
    }
    archive.record_sync(&SyncRun {
        target: report.target.clone().unwrap_or_default(),
        finished_ms: now,
        report: recorded,
    })?;
    Ok(report)
}

/// Imports from `store`, applying units as they come; saves the import state, adds to the
/// report and problems, and returns the events to replay.
fn import_into<S: Store + Clone + Send + 'static>(
    archive: &mut Archive,
    engine: &mut Engine,
    store: &S,
    (origin, state, purged): (&OriginId, ImportState, BTreeSet<SessionGid>),
    report: &mut SyncReport,
    problems: &mut Problems,
    progress: &Progress,
) -> Result<Vec<SignedEvent>> {
    let bar = progress.bar("import", 0);
    let imported = engine.import(store, origin, state, purged, &mut |units| {
        for unit in units {
            archive.transaction(|a| a.apply_unit(&unit))?;
            report.imported_sessions += 1;
            report.imported_messages += unit.messages.len();
            bar.inc(1);
        }
        Ok(())
    })?;
    bar.finish();
    report.fetched += imported.fetched;
    report.requests += imported.requests;
    archive.set_state("import", &imported.state)?;
    problems.add(imported.quarantined, imported.deferred);
    Ok(imported.events)
}

/// Own artifacts in the target modified up to this long before the end of the last sync are
/// checked again: file-time granularity. (A network share whose clock runs behind this
/// machine's by more hides a corruption from the check; `verify TARGET` still finds it.)
const HEAL_MARGIN_MS: u64 = 2_000;

/// Offers the mirror's copy of every own artifact in the target that changed since `since_ms`
/// (this machine writes its keys only while it syncs, so a later change was someone else's),
/// except those just copied. The store replaces a corrupt copy with the good one and leaves a
/// valid one alone (DESIGN edge case 13). Returns how many copies were replaced.
fn heal_own(
    mirror: &FolderStore,
    target: &FolderStore,
    origin: &OriginId,
    since_ms: u64,
    skip: &BTreeSet<String>,
) -> usize {
    let mut listing = Vec::new();
    for prefix in [format!("{origin}/"), ArtifactKey::roots_prefix(origin)] {
        listing.extend(list_all(&mut target.clone(), &prefix, None).unwrap_or_default());
    }
    let mut healed = 0;
    for entry in listing {
        if skip.contains(&entry.key) || entry.modified_ms.is_some_and(|m| m < since_ms) {
            continue;
        }
        if let Ok(Some(good)) = mirror.get(&entry.key)
            && let Ok(crate::store::Put::Written) = target.put_if_absent(&entry.key, &good)
        {
            healed += 1;
        }
    }
    healed
}

/// Foreign origins whose newest root in the target is newer than the mirror's.
fn lagging_origins(
    mirror: &FolderStore,
    target: &FolderStore,
    local: &OriginId,
) -> BTreeSet<OriginId> {
    let newest = |store: &FolderStore| {
        let mut out: BTreeMap<OriginId, ArtifactKey> = BTreeMap::new();
        let listing = list_all(&mut store.clone(), ROOTS_PREFIX, None).unwrap_or_default();
        for key in listing
            .iter()
            .filter_map(|l| l.key.parse::<ArtifactKey>().ok())
        {
            if matches!(key, ArtifactKey::Root { .. })
                && out.get(key.origin()).is_none_or(|k| *k < key)
            {
                out.insert(key.origin().clone(), key);
            }
        }
        out
    };
    let in_mirror = newest(mirror);
    newest(target)
        .into_iter()
        .filter(|(o, key)| o != local && in_mirror.get(o).is_none_or(|k| k < key))
        .map(|(o, _)| o)
        .collect()
}

/// A read-only view of a store that lists only the roots of `origins`, so that an import from
/// it touches nothing else.
#[derive(Clone)]
struct RootsOf {
    store: FolderStore,
    origins: BTreeSet<OriginId>,
}

impl Store for RootsOf {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError> {
        if !prefix.starts_with(ROOTS_PREFIX) {
            return Store::list_keys(&mut self.store, prefix, start_after);
        }
        let mut entries = list_all(&mut self.store, prefix, start_after)?;
        entries.retain(|l| {
            l.key
                .parse::<ArtifactKey>()
                .is_ok_and(|k| self.origins.contains(k.origin()))
        });
        Ok(ListPage {
            entries,
            truncated: false,
        })
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Store::get(&mut self.store, key)
    }

    fn put_if_absent(&mut self, key: &str, _: &[u8]) -> Result<PutOutcome, StoreError> {
        Err(read_only("put", key))
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        Err(read_only("delete", key))
    }
}

fn read_only(op: &str, key: &str) -> StoreError {
    StoreError {
        op: op.into(),
        key: key.into(),
        reason: "read-only view".into(),
        transient: false,
    }
}

#[derive(Default)]
struct Problems {
    quarantined: Vec<Problem>,
    deferred: Vec<Problem>,
}

impl Problems {
    fn add(&mut self, quarantined: Vec<Problem>, deferred: Vec<Problem>) {
        self.quarantined.extend(quarantined);
        self.deferred.extend(deferred);
    }
}

fn write(store: &mut FolderStore, encoded: &Encoded, compressor: &ZstdCompressor) -> Result<bool> {
    let stored = encoded
        .seal(Some(compressor))
        .with_context(|| format!("encoding {}", encoded.key))?;
    Ok(
        match store.put_if_absent(&encoded.key.to_string(), &stored)? {
            PutOutcome::Created => true,
            PutOutcome::Exists => false,
        },
    )
}

/// Writes what changed since the last export into the mirror: segments and manifests as they
/// are encoded, then buckets and the root, then the unpublished events. The export state and
/// the events' published flags are saved only after everything is written.
fn export(
    archive: &mut Archive,
    origin: &OriginId,
    key: &OriginKey,
    mirror: &mut FolderStore,
    target: Option<&mut FolderStore>,
    now_ms: u64,
    progress: &Progress,
) -> Result<(usize, usize)> {
    let compressor = ZstdCompressor;
    let state: ExportState = archive
        .state("export")?
        .unwrap_or_else(|| ExportState::new(origin.clone()));
    let ledger = archive.ledger()?;
    let mut exporter = state.begin();
    let changed: Vec<_> = archive
        .own_revisions()?
        .into_iter()
        .filter_map(|(native, revision)| {
            let marker = revision.to_string();
            state
                .tail_start(&native, &marker)
                .map(|from| (native, marker, from))
        })
        .collect();
    let bar = progress.bar("export", changed.len() as u64);
    let mut written = 0;
    for (i, (native, marker, from)) in changed.into_iter().enumerate() {
        let gid = SessionGid::new(origin.clone(), native);
        let (session, usage_events) = archive.session_record(&gid)?;
        let messages = archive.messages(&gid, from)?;
        exporter
            .session(SessionExport {
                marker,
                session,
                messages: &messages,
                usage_events,
            })
            .with_context(|| format!("encoding session {gid}"))?;
        if (i + 1) % EXPORT_BATCH == 0 {
            for encoded in exporter.take_data() {
                written += usize::from(write(mirror, &encoded, &compressor)?);
            }
        }
        bar.inc(1);
    }
    bar.finish();
    // Only purges remove a session from the checkpoint: a log the agent deleted (Claude Code
    // prunes old ones) must not take the session out of the archive.
    for native in state.sessions.keys() {
        if ledger.is_purged(&SessionGid::new(origin.clone(), native.clone())) {
            exporter.remove(native);
        }
    }
    let mut newest_seen = newest_root_seq(mirror, origin);
    if let Some(target) = target {
        newest_seen = newest_seen.max(newest_root_seq(target, origin));
    }
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let (plan, next) = exporter.commit(now, newest_seen, key)?;
    for encoded in plan.in_write_order() {
        written += usize::from(write(mirror, encoded, &compressor)?);
    }
    let events = archive.unpublished_events()?;
    if !events.is_empty() {
        let batch = EventBatch {
            origin: origin.clone(),
            events: events.iter().map(|e| e.event.clone()).collect(),
        };
        written += usize::from(write(mirror, &batch.seal(key)?, &compressor)?);
    }
    if next != state || !events.is_empty() {
        archive.transaction(|a| {
            a.set_state("export", &next)?;
            a.mark_published(&events)
        })?;
    }
    Ok((written, events.len()))
}

/// Replays the imported events with those deferred earlier, and stores the outcome.
fn replay(
    archive: &mut Archive,
    engine: &mut Engine,
    imported: Vec<SignedEvent>,
    now_ms: u64,
) -> Result<Replay> {
    let mut offered = archive.deferred_events()?;
    offered.extend(imported.iter().cloned());
    let mut present = BTreeSet::new();
    for e in &offered {
        // A session purged by one of these events needs no target either: otherwise the
        // edits that came before its purge wait (and the sync exits 3) until the next run.
        if e.event.op == Op::Purge || archive.has_session(&e.event.session)? {
            present.insert(e.event.session.clone());
        }
    }
    let (ledger, clock, replay) = engine.replay(
        archive.ledger()?,
        archive.clock()?,
        now_ms,
        offered.clone(),
        present,
    )?;
    archive.transaction(|a| {
        a.insert_events(&imported, true)?;
        a.record_replay(&ledger, &clock, &replay, &offered)
    })?;
    Ok(replay)
}

/// The core, natively or as a WebAssembly component: same inputs, same results.
enum Engine {
    Native,
    Wasm(Box<crate::wasm::CoreComponent>),
}

#[derive(Deserialize)]
struct Exchanged {
    report: ExchangeReport,
    keyring: KeyRing,
}

#[derive(Deserialize)]
struct Replayed {
    clock: agentsync_core::Hlc,
    replay: Replay,
    state: LedgerState,
}

impl Engine {
    fn new(kind: EngineKind, component: Option<&Path>) -> Result<Self> {
        Ok(match kind {
            EngineKind::Native => Engine::Native,
            EngineKind::Wasm => {
                let path = match component {
                    Some(p) => p.to_path_buf(),
                    None => crate::wasm::default_component_path()?,
                };
                Engine::Wasm(Box::new(crate::wasm::CoreComponent::load(&path)?))
            }
        })
    }

    fn exchange(
        &mut self,
        mirror: &FolderStore,
        target: &FolderStore,
        mut keyring: KeyRing,
    ) -> Result<(ExchangeReport, KeyRing)> {
        match self {
            Engine::Native => {
                let (mut a, mut b) = (mirror.clone(), target.clone());
                let report = agentsync_core::sync::exchange::exchange(&mut a, &mut b, &mut keyring);
                Ok((report, keyring))
            }
            Engine::Wasm(core) => {
                let a = core.add_store(Box::new(mirror.clone()));
                let b = core.add_store(Box::new(target.clone()));
                let json = core.exchange(a, b, &serde_json::to_string(&keyring)?)?;
                let out: Exchanged = serde_json::from_str(&json)?;
                Ok((out.report, out.keyring))
            }
        }
    }

    /// Runs an import, handing units to `apply` as they come (natively after every window of
    /// segments, so memory holds one window; the component hands them all at the end).
    fn import<S: Store + Clone + Send + 'static>(
        &mut self,
        mirror: &S,
        origin: &OriginId,
        state: ImportState,
        purged: BTreeSet<SessionGid>,
        apply: &mut dyn FnMut(Vec<ApplyUnit>) -> Result<()>,
    ) -> Result<ImportReport> {
        match self {
            Engine::Native => {
                let mut store = mirror.clone();
                let mut import = Import::new(origin.clone(), state, purged);
                loop {
                    match import.poll() {
                        Step::Requests(requests) => {
                            let responses = answer(&mut store, &requests);
                            import.handle(responses);
                            apply(import.take_units())?;
                        }
                        Step::Done(mut report) => {
                            apply(std::mem::take(&mut report.units))?;
                            return Ok(*report);
                        }
                    }
                }
            }
            Engine::Wasm(core) => {
                let id = core.add_store(Box::new(mirror.clone()));
                let json = core.import_from(
                    id,
                    origin.as_str(),
                    &serde_json::to_string(&state)?,
                    &serde_json::to_string(&purged)?,
                )?;
                let mut report: ImportReport = serde_json::from_str(&json)?;
                apply(std::mem::take(&mut report.units))?;
                Ok(report)
            }
        }
    }

    fn replay(
        &mut self,
        mut ledger: LedgerState,
        mut clock: HlcClock,
        now_ms: u64,
        events: Vec<SignedEvent>,
        present: BTreeSet<SessionGid>,
    ) -> Result<(LedgerState, HlcClock, Replay)> {
        match self {
            Engine::Native => {
                let replay = ledger.replay(&mut clock, now_ms, events, &|g| present.contains(g));
                Ok((ledger, clock, replay))
            }
            Engine::Wasm(core) => {
                let json = core.replay(
                    &serde_json::to_string(&ledger)?,
                    &clock.last().to_string(),
                    now_ms,
                    &serde_json::to_string(&events)?,
                    &serde_json::to_string(&present)?,
                )?;
                let out: Replayed = serde_json::from_str(&json)?;
                Ok((out.state, HlcClock::resume(out.clock), out.replay))
            }
        }
    }
}
