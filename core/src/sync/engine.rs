//! The sync engine: one whole sync run (export → import of what the target holds ahead →
//! exchange → self-heal → import from the mirror → replay) as a sans-IO state machine, so
//! every host (the CLI with the native core or the WebAssembly component, the simulator, the
//! browser) runs the same protocol with the same small loop.
//!
//! # Driving it
//!
//! ```text
//! let mut engine = SyncEngine::new(config, inputs);
//! loop {
//!     match engine.poll()? {
//!         Output::Store(requests)     => engine.handle(Input::Store(run_them(requests)))?,
//!         Output::ReadSessions(reads) => engine.handle(Input::Sessions(read_them(reads)))?,
//!         Output::CheckPresent(gids)  => engine.handle(Input::Present(look_up(gids)))?,
//!         Output::Apply(units)        => apply_to_archive(units),
//!         Output::Exported { .. } | Output::Imported(_) | Output::Replayed(_) => persist(..),
//!         Output::Progress(p)         => show(p),
//!         Output::Done(report)        => break report,
//!     }
//! }
//! ```
//!
//! An output that asks (`Store`, `ReadSessions`, `CheckPresent`) must be answered with the
//! matching input, one answer per item, in order, before the next `poll`; the others need no
//! answer. Store requests of one `Store` output are independent: a host may run them in
//! parallel. After `Done`, `poll` returns [`EngineError::Finished`]; an input that does not
//! match what was asked is an error, never a silent default.
//!
//! Persisting: a host saves what `Exported`, `Imported` and `Replayed` carry when it sees them
//! (each describes work that has landed), and applies `Apply` units as they come. `Imported`
//! comes after `Replayed`: the import state it carries marks event batches handled, which is
//! true only once the replay's events are stored. A run that
//! stops anywhere resumes on the next run: artifacts are write-once, units are idempotent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::artifact::{Artifact, Encoded};
use crate::checkpoint::{BucketEntry, EventsMark, Listing};
use crate::error::Error;
use crate::events::{EventBatch, Op};
use crate::frame::{Compressor, SharedDecompressor};
use crate::hlc::HlcClock;
use crate::id::ArtifactId;
use crate::kind::ArtifactKind;
use crate::ledger::{LedgerState, Replay, SignedEvent};
use crate::limits;
use crate::model::{Message, Session, UsageEvent};
use crate::names::{ArtifactKey, NativeId, OriginId, SessionGid};
use crate::segment::{EncodedSegment, segment_messages};
use crate::signature::OriginKey;
use crate::sync::exchange::Exchange;
use crate::sync::export::{ExportChange, ExportState, Exporter, SessionExport};
use crate::sync::import::{
    ApplyUnit, Import, ImportReport, ImportState, SEGMENT_WINDOW_BYTES, Step, Verified,
};
use crate::sync::placement::{Placed, Placement};
use crate::sync::problem::Problem;
use crate::sync::roots::{Newest, RootWalk, RootsListing};
use crate::sync::store::{ListPage, Request, Response, StoreId, StoreRequest};

/// Sessions read from the host's archive per `ReadSessions` (bounds export's memory).
pub const EXPORT_BATCH: usize = 64;

/// Which stages run. The CLI runs them all; the simulator's steps run subsets of the same
/// stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stages {
    pub export: bool,
    /// Exchange and self-heal (only with a target).
    pub exchange: bool,
    /// Import and ledger replay.
    pub import: bool,
}

impl Stages {
    pub const ALL: Stages = Stages {
        export: true,
        exchange: true,
        import: true,
    };
}

/// What the host tells the engine about the run.
pub struct SyncConfig {
    pub origin: OriginId,
    pub key: OriginKey,
    pub now_ms: u64,
    /// Whether the host has a target store (else only the mirror).
    pub target: bool,
    pub stages: Stages,
    /// When the last sync ended, by the host's clock after its last write (self-heal rechecks
    /// own keys in the target modified after it).
    pub last_sync_ms: Option<u64>,
    /// How often self-heal lists all of this machine's keys in the target (0: every run).
    /// Own roots are checked on every run from the one `roots/` listing; the full listing
    /// costs a request per thousand keys, so a no-op sync skips it until it is due.
    pub heal_every_ms: u64,
}

/// The host's persisted sync state, loaded before the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    pub export: Option<ExportState>,
    pub import: ImportState,
    pub ledger: LedgerState,
    /// The ledger clock's last timestamp ([`HlcClock::last`]).
    pub clock: crate::hlc::Hlc,
    /// Local curation events not yet published.
    pub unpublished: Vec<SignedEvent>,
    /// Events an earlier replay deferred.
    pub deferred_events: Vec<SignedEvent>,
    /// Every own session with its change marker (anything that changes when it does).
    pub revisions: Vec<(NativeId, String)>,
    /// What the last self-heal saw of this machine's keys in the target.
    #[serde(default)]
    pub heal_mark: Option<HealMark>,
}

/// What self-heal last saw of this machine's keys in the target: data keys as of the last
/// full listing, roots as of the last run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealMark {
    /// Every own key but roots (and roots too, in a mark saved before roots had their own).
    #[serde(flatten)]
    pub data: TimeMark,
    #[serde(default)]
    pub roots: Option<TimeMark>,
    /// When the last full listing ran (the engine's `now_ms`).
    #[serde(default)]
    pub listed_ms: Option<u64>,
}

/// The newest modification time among keys when self-heal listed them, and the keys that had
/// it. A key is checked again only when it was modified later (or at that time and was not
/// among them): this compares the store's times only with each other, never with this
/// machine's clock, so a share whose clock differs or whose times are coarse cannot hide a
/// corruption.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeMark {
    pub modified_ms: u64,
    pub keys: Vec<String>,
}

impl TimeMark {
    fn saw(&mut self, key: &str, modified_ms: u64) {
        if modified_ms > self.modified_ms {
            self.modified_ms = modified_ms;
            self.keys.clear();
        }
        if modified_ms == self.modified_ms {
            self.keys.push(key.to_owned());
        }
    }

    fn is_newer(&self, key: &str, modified_ms: u64) -> bool {
        modified_ms > self.modified_ms
            || (modified_ms == self.modified_ms && !self.keys.iter().any(|k| k == key))
    }
}

/// Without a mark (a first heal), own keys modified up to this long before the last sync
/// ended are checked: file-time granularity.
pub const HEAL_MARGIN_MS: u64 = 2_000;

/// A session export needs from the archive: its record and messages from `from_ordinal` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRead {
    pub native: NativeId,
    pub from_ordinal: u64,
}

/// The archive's answer to one [`SessionRead`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub session: Session,
    pub messages: Vec<Message>,
    pub usage_events: Vec<UsageEvent>,
}

/// The stage a [`Progress`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    Export,
    Exchange,
    Heal,
    Import,
    /// Kept for hosts built against it: the engine no longer runs a fallback import after
    /// the exchange (origins the target holds ahead are imported from it before the relay).
    FallbackImport,
    Replay,
}

impl StageName {
    /// The stage as progress bars name it.
    pub fn label(self) -> &'static str {
        match self {
            StageName::Export => "export",
            StageName::Exchange => "exchange",
            StageName::Heal => "heal",
            StageName::Import => "import",
            StageName::FallbackImport => "import (target)",
            StageName::Replay => "replay",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: StageName,
    pub done: u64,
    /// 0 when unknown.
    pub total: u64,
}

/// The outcome of the ledger replay, for the host to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    pub ledger: LedgerState,
    pub clock: crate::hlc::Hlc,
    pub replay: Replay,
    /// Events imported this run (to store as received).
    pub imported: Vec<SignedEvent>,
    /// Every event offered to the replay (imported and previously deferred).
    pub offered: Vec<SignedEvent>,
    /// Those of `offered` the replay deferred: offer them again next run.
    pub deferred: Vec<SignedEvent>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Artifacts export created in the mirror.
    pub exported: usize,
    pub events_published: usize,
    /// Own artifacts written to the target (relayed or healed).
    pub sent: usize,
    /// Artifacts written between the mirror and the target in either direction.
    pub exchanged: usize,
    pub healed: usize,
    pub fetched: usize,
    pub imported_sessions: usize,
    pub imported_messages: usize,
    pub events_applied: usize,
    pub events_deferred: usize,
    /// Root names that did not verify and were passed over for an older root.
    pub shadowed_roots: Vec<String>,
    /// For the host to keep and hand back in the next run's [`SyncState::heal_mark`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal_mark: Option<HealMark>,
    pub older_roots: Vec<String>,
    pub problems: Vec<Problem>,
    /// Store requests made.
    pub requests: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    Store(Vec<StoreRequest>),
    ReadSessions(Vec<SessionRead>),
    CheckPresent(Vec<SessionGid>),
    Apply(Vec<ApplyUnit>),
    /// Export landed: persist what changed of the export state ([`ExportState::apply`], or
    /// the head and the sessions' entries on their own) and mark `published` events as
    /// published.
    Exported {
        change: Box<ExportChange>,
        published: Vec<SignedEvent>,
    },
    /// Import's new state; only when the run changed it.
    Imported(Box<ImportState>),
    Replayed(Box<Replayed>),
    /// Foreign sessions known from their origins' buckets before their manifests and
    /// messages are imported: a host may list them now (no answer). Import replaces them.
    Listed(Vec<ListedSession>),
    Progress(Progress),
    Done(Box<SyncReport>),
}

/// A foreign session as its origin's bucket lists it (see [`Output::Listed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedSession {
    pub gid: SessionGid,
    pub listing: Listing,
    pub manifest: ArtifactId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    Store(Vec<Response>),
    Sessions(Vec<SessionData>),
    Present(Vec<bool>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the sync run is finished: poll after done")]
    Finished,
    #[error("expected {expected} answer(s) to the last output, got {got}")]
    ResponseCount { expected: usize, got: usize },
    #[error("expected {expected}, got {got}")]
    UnexpectedInput {
        expected: &'static str,
        got: &'static str,
    },
    #[error("polled again before answering the last output")]
    Unanswered,
    #[error("export: {0}")]
    Export(Error),
    /// This machine's own artifacts could not be written to its mirror.
    #[error("writing {key} to the mirror: {reason}")]
    Mirror { key: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Store(usize),
    Sessions(usize),
    Present(usize),
}

enum Phase {
    Start,
    ListRoots,
    OwnRoots(Vec<RootWalk>),
    /// A state saved before roots stated their events mark: list own batches once.
    OwnEvents(Option<String>),
    ReadSessions,
    Commit,
    PlaceBuckets,
    PlaceRoot,
    PlaceEvents,
    Exchange(Box<Exchange>),
    HealList(Vec<(StoreId, String, Option<String>)>, Vec<String>),
    HealCheck(Vec<String>),
    HealFetchGood(Vec<String>),
    /// Origins the target holds ahead of the mirror, imported from the target before the
    /// relay, with what the import verified written through to the mirror.
    ImportAhead(Box<Import>),
    /// The import ahead is done: what it wrote through lands in the mirror.
    AheadLanding,
    Import(Box<Import>),
    Present(Vec<SessionGid>),
    Done,
    Finished,
}

/// Work of an export run in progress.
struct ExportRun {
    exporter: Option<Exporter>,
    /// The state the run started from; once the exporter has it, its head.
    state: ExportState,
    /// Changed sessions still to read: (native, marker, from ordinal).
    pending: VecDeque<(NativeId, String, u64)>,
    in_flight: Vec<(NativeId, String)>,
    newest_seen: u64,
    buckets: Vec<Encoded>,
    root: Option<Encoded>,
    next: Option<ExportState>,
    /// The sessions the commit exported or removed ([`Exporter::touched`]).
    touched: BTreeSet<NativeId>,
    batches: Vec<Encoded>,
    total: u64,
    /// Unchanged sessions whose records the commit's buckets need (computed once the changed
    /// sessions are read), with their exported message counts.
    unlisted: Option<VecDeque<(NativeId, u64)>>,
    listing_in_flight: Vec<u64>,
}

/// The import ahead of the relay ([`Phase::ImportAhead`]) and what it wrote through.
///
/// Importing a new origin used to wait for the relay to copy all of it into the mirror, and
/// the host's archive writer sat idle meanwhile (a third of a first sync's import). Imported
/// straight from the target, the first windows reach the writer at once; writing what the
/// import verified through to the mirror leaves the relay only the buckets and the root, so
/// every artifact still crosses the wire once.
#[derive(Default)]
struct Ahead {
    origins: BTreeSet<OriginId>,
    /// Manifests waiting for their segments to land in the mirror.
    waiting: Vec<Verified>,
    /// Keys that landed in the mirror (written, or found there).
    landed: BTreeSet<String>,
}

/// The sync engine; see the module comment.
pub struct SyncEngine {
    config: SyncConfig,
    state: SyncState,
    clock: HlcClock,
    phase: Phase,
    outputs: VecDeque<Output>,
    awaiting: Awaiting,
    /// Requests in flight for the placement (they come first in a `Store` output).
    placing: usize,
    placement: Placement,
    export: Option<ExportRun>,
    /// Own keys written to the target by the exchange (self-heal skips them).
    sent_keys: BTreeSet<String>,
    /// The heal marks this run's listings make (kept only if the listing was complete).
    heal_seen: TimeMark,
    heal_roots: Option<TimeMark>,
    heal_listed: bool,
    /// Each store's `roots/`, listed once at the start and kept current with what the run
    /// writes (indexed by `StoreId`).
    listings: [RootsListing; 2],
    purged: BTreeSet<SessionGid>,
    imported_events: Vec<SignedEvent>,
    compressor: Option<Box<dyn Compressor + Send>>,
    decoder: Option<SharedDecompressor>,
    /// Import this machine's own sessions too (`rebuild`: the archive lost them).
    restore_own: bool,
    import_window: Option<u64>,
    /// Hand out `Listed` (a host that shows a list while it syncs).
    list_ahead: bool,
    ahead: Option<Ahead>,
    /// Segments this run sealed, with the hash of their stored bytes ([`Exchange::with_sealed`]).
    sealed: BTreeMap<ArtifactKey, blake3::Hash>,
    /// The import state as the host stored it: `Imported` only when the run changed it, so a
    /// sync that finds nothing new writes nothing (it is the size of the archive).
    import_stored: ImportState,
    report: SyncReport,
}

impl SyncEngine {
    /// Compresses own artifacts with `compressor` (default: stored uncompressed). Ids hash the
    /// uncompressed bytes, so the choice never changes a name.
    pub fn with_compressor(mut self, compressor: Box<dyn Compressor + Send>) -> Self {
        self.compressor = Some(compressor);
        self
    }

    /// Decodes what exchange verifies and import reads with `decoder` (default: ruzstd). Every
    /// check stays in the core, and whatever the decoder refuses is decoded again with ruzstd,
    /// so results and errors are the same with any decoder.
    pub fn with_decompressor(mut self, decoder: SharedDecompressor) -> Self {
        self.decoder = Some(decoder);
        self
    }

    /// Imports this machine's own sessions and edit batches from the mirror as well, as if
    /// they were another origin's: how a rebuilt archive gets back what only the store still
    /// holds (a session whose log the agent deleted). The units it hands out for own sessions
    /// carry this origin's gids; the host stores them as own sessions.
    pub fn restoring_own(mut self) -> Self {
        self.restore_own = true;
        self
    }

    /// Fetches and decodes at most about `bytes` of segments (canonical size) per round of
    /// the import, and hands them out as one [`Output::Apply`] (default 32 MiB). A host that
    /// stores a window while the engine decodes the next holds two at once, and halves it.
    pub fn with_import_window(mut self, bytes: u64) -> Self {
        self.import_window = Some(bytes);
        self
    }

    /// Hands out [`Output::Listed`]: foreign sessions as their buckets list them, before their
    /// import, for a host that shows a list while it syncs (the browser's first visit). A host
    /// that shows nothing until the run ends (the CLI) leaves it off, and its archive never
    /// holds a session whose messages failed to arrive.
    pub fn listing_ahead(mut self) -> Self {
        self.list_ahead = true;
        self
    }

    pub fn new(config: SyncConfig, mut state: SyncState) -> Self {
        let purged = state.ledger.purged().cloned().collect();
        let import_stored = state.import.clone();
        // Trust on first use starts with our own key: a forged root for our own origin in
        // the target must never be accepted.
        let mut report = SyncReport::default();
        if let Err(e) = state
            .import
            .keyring
            .pin(config.origin.clone(), config.key.public())
        {
            report
                .problems
                .push(Problem::rejected(&config.origin.to_string(), &e));
        }
        SyncEngine {
            config,
            clock: HlcClock::resume(state.clock),
            state,
            phase: Phase::Start,
            outputs: VecDeque::new(),
            awaiting: Awaiting::Nothing,
            placing: 0,
            placement: Placement::default(),
            export: None,
            sent_keys: BTreeSet::new(),
            heal_seen: TimeMark::default(),
            heal_roots: None,
            heal_listed: true,
            listings: [
                RootsListing::new(StoreId::Mirror),
                RootsListing::new(StoreId::Target),
            ],
            purged,
            imported_events: Vec::new(),
            compressor: None,
            decoder: None,
            restore_own: false,
            import_window: None,
            list_ahead: false,
            ahead: None,
            sealed: BTreeMap::new(),
            import_stored,
            report,
        }
    }

    /// The next output; see the module comment.
    pub fn poll(&mut self) -> Result<Output, EngineError> {
        if self.awaiting != Awaiting::Nothing {
            return Err(EngineError::Unanswered);
        }
        loop {
            if let Some(out) = self.outputs.pop_front() {
                self.awaiting = match &out {
                    Output::Store(r) => Awaiting::Store(r.len()),
                    Output::ReadSessions(r) => Awaiting::Sessions(r.len()),
                    Output::CheckPresent(r) => Awaiting::Present(r.len()),
                    _ => Awaiting::Nothing,
                };
                if let Output::Done(_) = out {
                    self.phase = Phase::Finished;
                }
                return Ok(out);
            }
            if let Phase::Finished = self.phase {
                return Err(EngineError::Finished);
            }
            self.step()?;
        }
    }

    /// Answers the last output that asked for something.
    pub fn handle(&mut self, input: Input) -> Result<(), EngineError> {
        let (expected, got) = match (&self.awaiting, &input) {
            (Awaiting::Store(n), Input::Store(r)) => (*n, r.len()),
            (Awaiting::Sessions(n), Input::Sessions(r)) => (*n, r.len()),
            (Awaiting::Present(n), Input::Present(r)) => (*n, r.len()),
            (awaiting, input) => {
                return Err(EngineError::UnexpectedInput {
                    expected: match awaiting {
                        Awaiting::Nothing => "no input",
                        Awaiting::Store(_) => "store responses",
                        Awaiting::Sessions(_) => "sessions",
                        Awaiting::Present(_) => "presence answers",
                    },
                    got: match input {
                        Input::Store(_) => "store responses",
                        Input::Sessions(_) => "sessions",
                        Input::Present(_) => "presence answers",
                    },
                });
            }
        };
        if expected != got {
            return Err(EngineError::ResponseCount { expected, got });
        }
        self.awaiting = Awaiting::Nothing;
        match input {
            Input::Store(mut responses) => {
                self.report.requests += responses.len();
                let rest = responses.split_off(self.placing.min(responses.len()));
                if self.placing > 0 {
                    self.placement.handle(responses);
                    self.placing = 0;
                }
                self.store_answered(rest)
            }
            Input::Sessions(data) => self.sessions_answered(data),
            Input::Present(answers) => {
                self.present_answered(answers);
                Ok(())
            }
        }
    }

    fn ask_store(&mut self, mut requests: Vec<StoreRequest>) {
        let placing = self.placement.requests();
        self.placing = placing.len();
        let mut all = placing;
        all.append(&mut requests);
        if !all.is_empty() {
            self.outputs.push_back(Output::Store(all));
        }
    }

    /// Hands out a window of imported sessions (none: no output).
    fn apply(&mut self, units: Vec<ApplyUnit>) {
        if units.is_empty() {
            return;
        }
        self.report.imported_sessions += units.len();
        self.report.imported_messages += units.iter().map(|u| u.messages.len()).sum::<usize>();
        let done = self.report.imported_sessions as u64;
        self.outputs.push_back(Output::Apply(units));
        self.progress(StageName::Import, done, 0);
    }

    fn progress(&mut self, stage: StageName, done: u64, total: u64) {
        self.outputs
            .push_back(Output::Progress(Progress { stage, done, total }));
    }

    /// Advances the phase until it has queued at least one output.
    fn step(&mut self) -> Result<(), EngineError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        self.phase = match phase {
            Phase::Start => {
                if self.config.stages.export {
                    self.progress(StageName::Export, 0, 0);
                }
                Phase::ListRoots
            }
            Phase::ListRoots => {
                let mut requests: Vec<StoreRequest> = Vec::new();
                for listing in &self.listings {
                    if listing.store == StoreId::Mirror || self.config.target {
                        requests.extend(listing.request());
                    }
                }
                if requests.is_empty() {
                    self.begin_export()
                } else {
                    self.ask_store(requests);
                    Phase::ListRoots
                }
            }
            Phase::OwnEvents(after) => {
                let origin = self.config.origin.clone();
                self.ask_store(vec![StoreRequest {
                    store: StoreId::Mirror,
                    request: Request::List {
                        prefix: ArtifactKey::events_prefix(&origin),
                        start_after: after.clone(),
                    },
                }]);
                Phase::OwnEvents(after)
            }
            Phase::OwnRoots(mut walks) => {
                let requests: Vec<StoreRequest> =
                    walks.iter_mut().flat_map(RootWalk::requests).collect();
                if requests.is_empty() {
                    self.own_roots_walked(walks);
                    let unstated = self
                        .export
                        .as_ref()
                        .is_some_and(|run| !run.state.events.is_stated());
                    if unstated {
                        Phase::OwnEvents(None)
                    } else {
                        Phase::ReadSessions
                    }
                } else {
                    self.ask_store(requests);
                    Phase::OwnRoots(walks)
                }
            }
            Phase::ReadSessions => self.read_sessions()?,
            Phase::Commit => {
                if !self.placement.is_idle() {
                    self.ask_store(Vec::new());
                    Phase::Commit
                } else {
                    self.check_placed()?;
                    self.commit()?
                }
            }
            // Data, buckets, event batches, then the root that names them all.
            Phase::PlaceBuckets => self.place_next(Phase::PlaceBuckets, |run| {
                (std::mem::take(&mut run.buckets), Phase::PlaceEvents)
            })?,
            Phase::PlaceEvents => self.place_next(Phase::PlaceEvents, |run| {
                (std::mem::take(&mut run.batches), Phase::PlaceRoot)
            })?,
            Phase::PlaceRoot => self.place_next(Phase::PlaceRoot, |run| {
                (run.root.take().into_iter().collect(), Phase::Done)
            })?,
            Phase::Exchange(mut exchange) => {
                let requests = exchange.requests();
                if requests.is_empty() {
                    self.exchanged(*exchange);
                    self.heal_start()
                } else {
                    self.ask_store(requests);
                    Phase::Exchange(exchange)
                }
            }
            Phase::HealList(jobs, found) => self.heal_list(jobs, found),
            Phase::HealCheck(keys) if keys.is_empty() => Phase::HealFetchGood(keys),
            Phase::HealCheck(keys) => {
                self.ask_store(
                    keys.iter()
                        .map(|k| StoreRequest {
                            store: StoreId::Target,
                            request: Request::get(k.clone()),
                        })
                        .collect(),
                );
                Phase::HealCheck(keys)
            }
            Phase::HealFetchGood(keys) => {
                if keys.is_empty() {
                    if self.placement.is_idle() {
                        self.healed();
                        self.import_start()
                    } else {
                        self.ask_store(Vec::new());
                        Phase::HealFetchGood(keys)
                    }
                } else {
                    self.ask_store(
                        keys.iter()
                            .map(|k| StoreRequest {
                                store: StoreId::Mirror,
                                request: Request::get(k.clone()),
                            })
                            .collect(),
                    );
                    Phase::HealFetchGood(keys)
                }
            }
            Phase::ImportAhead(mut import) => match import.poll() {
                Step::Requests(requests) => {
                    self.ask_store(requests);
                    Phase::ImportAhead(import)
                }
                Step::Done(report) => {
                    let (verified, listed) = (import.take_verified(), import.take_listed());
                    self.list(listed);
                    self.imported(*report);
                    self.write_through(verified);
                    Phase::AheadLanding
                }
            },
            Phase::AheadLanding => {
                self.ahead_landed();
                if self.placement.is_idle() {
                    self.exchange_start()
                } else {
                    self.ask_store(Vec::new());
                    Phase::AheadLanding
                }
            }
            Phase::Import(import) => self.drive_import(import),
            Phase::Present(gids) if gids.is_empty() => {
                self.phase = Phase::Present(gids);
                self.present_answered(Vec::new());
                return Ok(());
            }
            Phase::Present(gids) => {
                self.outputs.push_back(Output::CheckPresent(gids.clone()));
                Phase::Present(gids)
            }
            Phase::Done => {
                self.report.events_deferred = self.state.deferred_events.len();
                self.report.shadowed_roots = self
                    .report
                    .problems
                    .iter()
                    .filter(|p| p.is_quarantined() && p.key.starts_with(crate::names::ROOTS_PREFIX))
                    .map(|p| p.key.clone())
                    .collect();
                let report = std::mem::take(&mut self.report);
                self.outputs.push_back(Output::Done(Box::new(report)));
                Phase::Done
            }
            Phase::Finished => Phase::Finished,
        };
        Ok(())
    }

    fn store_answered(&mut self, responses: Vec<Response>) -> Result<(), EngineError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        self.phase = match phase {
            Phase::ListRoots => {
                // Answers come in the order `ListRoots` asked: the listings not done yet.
                let asked: Vec<usize> = (0..self.listings.len())
                    .filter(|&i| {
                        !self.listings[i].is_done()
                            && (self.listings[i].store == StoreId::Mirror || self.config.target)
                    })
                    .collect();
                for (i, response) in asked.into_iter().zip(responses) {
                    if let Some(problem) = self.listings[i].handle(response) {
                        self.report.problems.push(problem);
                    }
                }
                Phase::ListRoots
            }
            Phase::OwnEvents(_) => {
                let page = match responses.into_iter().next() {
                    Some(Response::Listed(page)) => Some(page),
                    Some(Response::Failed(e)) => {
                        self.report.problems.push(Problem::store(&e));
                        None
                    }
                    _ => None,
                };
                let run = self.export.as_mut();
                match (page, run) {
                    (Some(page), Some(run)) => {
                        let mut mark = match run.state.events {
                            EventsMark::Unstated => EventsMark::NoBatch,
                            mark => mark,
                        };
                        for entry in &page.entries {
                            if let Ok(key @ ArtifactKey::Events { .. }) =
                                entry.key.parse::<ArtifactKey>()
                            {
                                mark = mark.with(&key);
                            }
                        }
                        run.state.events = mark;
                        match page.entries.last() {
                            Some(last) if page.truncated => {
                                Phase::OwnEvents(Some(last.key.clone()))
                            }
                            _ => Phase::ReadSessions,
                        }
                    }
                    // The mark stays unstated: the next root is written without it, as
                    // before, and the next run lists again.
                    (_, Some(run)) => {
                        run.state.events = EventsMark::Unstated;
                        Phase::ReadSessions
                    }
                    (_, None) => Phase::ReadSessions,
                }
            }
            Phase::OwnRoots(mut walks) => {
                let mut responses = responses.into_iter();
                for w in &mut walks {
                    // Each walk asked for its own requests, in order; a finished walk asked
                    // for none.
                    let n = w.pending();
                    let batch: Vec<Response> = responses.by_ref().take(n).collect();
                    w.handle(batch, &mut self.state.import.keyring);
                }
                Phase::OwnRoots(walks)
            }
            Phase::Exchange(mut exchange) => {
                exchange.handle(responses, &mut self.state.import.keyring);
                self.list(exchange.take_listed());
                Phase::Exchange(exchange)
            }
            Phase::HealList(jobs, mut found) => {
                let mut next = Vec::new();
                // This machine writes its keys only while it syncs: a key modified after the
                // last heal listed them was changed by someone else.
                let since = self.heal_since();
                let mark = self.state.heal_mark.as_ref().map(|m| &m.data);
                for ((store, prefix, _), response) in jobs.into_iter().zip(responses) {
                    let page = match response {
                        Response::Listed(page) => page,
                        Response::Failed(e) => {
                            self.report.problems.push(Problem::store(&e));
                            self.heal_listed = false;
                            ListPage::default()
                        }
                        _ => ListPage::default(),
                    };
                    let last = page.entries.last().map(|l| l.key.clone());
                    for entry in page.entries {
                        let recent = heal_recent(mark, since, &entry.key, entry.modified_ms);
                        if let Some(m) = entry.modified_ms {
                            self.heal_seen.saw(&entry.key, m);
                        }
                        if recent && !self.sent_keys.contains(&entry.key) {
                            found.push(entry.key);
                        }
                    }
                    if page.truncated && last.is_some() {
                        next.push((store, prefix, last));
                    }
                }
                if next.is_empty() {
                    let old = self.state.heal_mark.as_ref();
                    self.report.heal_mark = Some(if self.heal_listed {
                        HealMark {
                            data: std::mem::take(&mut self.heal_seen),
                            roots: self.heal_roots.take(),
                            listed_ms: Some(self.config.now_ms),
                        }
                    } else {
                        HealMark {
                            data: old.map(|m| m.data.clone()).unwrap_or_default(),
                            roots: self.heal_roots.take(),
                            listed_ms: old.and_then(|m| m.listed_ms),
                        }
                    });
                    Phase::HealCheck(found)
                } else {
                    Phase::HealList(next, found)
                }
            }
            Phase::HealCheck(keys) => {
                let mut bad = Vec::new();
                for (key, response) in keys.into_iter().zip(responses) {
                    let Ok(parsed) = key.parse::<ArtifactKey>() else {
                        continue;
                    };
                    if let Response::Got(Some(bytes)) = response
                        && let Err(e) = Artifact::open(&parsed, &bytes)
                        && !e.is_deferred()
                    {
                        bad.push(key);
                    }
                }
                Phase::HealFetchGood(bad)
            }
            Phase::HealFetchGood(keys) => {
                for (key, response) in keys.into_iter().zip(responses) {
                    let Ok(parsed) = key.parse::<ArtifactKey>() else {
                        continue;
                    };
                    // The target's copy was read and failed verification just before.
                    if let Response::Got(Some(bytes)) = response
                        && Artifact::open(&parsed, &bytes).is_ok()
                    {
                        self.placement.replace(StoreId::Target, key, bytes);
                    }
                }
                Phase::HealFetchGood(Vec::new())
            }
            Phase::ImportAhead(mut import) => {
                import.handle(responses);
                self.apply(import.take_units());
                let listed = import.take_listed();
                self.list(listed);
                let verified = import.take_verified();
                self.write_through(verified);
                Phase::ImportAhead(import)
            }
            Phase::Import(mut import) => {
                import.handle(responses);
                self.apply(import.take_units());
                Phase::Import(import)
            }
            // Placement-only rounds.
            other => other,
        };
        Ok(())
    }

    /// Both stores' roots are listed: export starts with its own roots.
    fn begin_export(&mut self) -> Phase {
        if self.config.stages.export {
            let origin = self.config.origin.clone();
            // The run takes the state, which is megabytes at 10 k sessions; what the rest of the
            // run reads of it (the root, the events mark) is in its head.
            let state = self
                .state
                .export
                .take()
                .unwrap_or_else(|| ExportState::new(origin.clone()));
            self.state.export = Some(state.head());
            let floors: BTreeMap<OriginId, ArtifactKey> = state
                .root
                .clone()
                .map(|r| (origin.clone(), r))
                .into_iter()
                .collect();
            let mut walks = vec![
                RootWalk::new(StoreId::Mirror, Some(&origin))
                    .with_floors(floors.clone())
                    .fed(&self.listings[StoreId::Mirror as usize]),
            ];
            if self.config.target {
                walks.push(
                    RootWalk::new(StoreId::Target, Some(&origin))
                        .with_floors(floors)
                        .fed(&self.listings[StoreId::Target as usize]),
                );
            }
            self.export = Some(ExportRun {
                exporter: None,
                state,
                pending: VecDeque::new(),
                in_flight: Vec::new(),
                newest_seen: 0,
                buckets: Vec::new(),
                root: None,
                next: None,
                touched: BTreeSet::new(),
                batches: Vec::new(),
                total: 0,
                unlisted: None,
                listing_in_flight: Vec::new(),
            });
            Phase::OwnRoots(walks)
        } else {
            self.after_export()
        }
    }

    fn own_roots_walked(&mut self, walks: Vec<RootWalk>) {
        let Some(run) = self.export.as_mut() else {
            return;
        };
        for w in walks {
            self.report.problems.extend(w.problems);
            for newest in w.found.values() {
                if let Newest::Verified(v) = newest {
                    run.newest_seen = run.newest_seen.max(v.root.seq);
                    // A state that never wrote a root, while the store holds ours (a machine
                    // that lost its state): its batches are out there, unknown to the state.
                    if run.state.root.is_none() {
                        run.state.events = EventsMark::Unstated;
                    }
                }
            }
        }
        let ledger = &self.state.ledger;
        let origin = &self.config.origin;
        run.pending = self
            .state
            .revisions
            .iter()
            .filter(|(native, _)| {
                !ledger.is_purged(&SessionGid::new(origin.clone(), native.clone()))
            })
            .filter_map(|(native, marker)| {
                run.state
                    .tail_start(native, marker)
                    .map(|from| (native.clone(), marker.clone(), from))
            })
            .collect();
        run.total = run.pending.len() as u64;
        let head = run.state.head();
        run.exporter = Some(std::mem::replace(&mut run.state, head).into_exporter());
    }

    fn read_sessions(&mut self) -> Result<Phase, EngineError> {
        let Some(run) = self.export.as_mut() else {
            return Ok(self.after_export());
        };
        if run.pending.is_empty() {
            return Ok(self.read_listings());
        }
        let n = run.pending.len().min(EXPORT_BATCH);
        let batch: Vec<(NativeId, String, u64)> = run.pending.drain(..n).collect();
        run.in_flight = batch
            .iter()
            .map(|(n, m, _)| (n.clone(), m.clone()))
            .collect();
        self.outputs.push_back(Output::ReadSessions(
            batch
                .into_iter()
                .map(|(native, _, from_ordinal)| SessionRead {
                    native,
                    from_ordinal,
                })
                .collect(),
        ));
        Ok(Phase::ReadSessions)
    }

    /// Reads the records of unchanged sessions the commit's buckets list
    /// ([`Exporter::unlisted`]), a batch at a time; then commits.
    fn read_listings(&mut self) -> Phase {
        let Some(run) = self.export.as_mut() else {
            return Phase::Commit;
        };
        let Some(exporter) = run.exporter.as_mut() else {
            return Phase::Commit;
        };
        let queue = run.unlisted.get_or_insert_with(|| {
            // Only purges remove a session from the checkpoint: a log the agent deleted must
            // not take the session out of the archive. (Before listing: the archive no longer
            // holds a purged session's record.)
            let origin = &self.config.origin;
            let purged: Vec<NativeId> = exporter
                .sessions()
                .keys()
                .filter(|native| {
                    self.state
                        .ledger
                        .is_purged(&SessionGid::new(origin.clone(), (*native).clone()))
                })
                .cloned()
                .collect();
            for native in &purged {
                exporter.remove(native);
            }
            // Only what the archive holds can be read: a session it lost (a rebuild that could
            // not restore it) keeps its entry, unlisted.
            let held: BTreeSet<&NativeId> = self.state.revisions.iter().map(|(n, _)| n).collect();
            exporter
                .unlisted()
                .into_iter()
                .filter(|(native, _)| held.contains(native))
                .collect()
        });
        if queue.is_empty() {
            return Phase::Commit;
        }
        let n = queue.len().min(EXPORT_BATCH);
        let batch: Vec<(NativeId, u64)> = queue.drain(..n).collect();
        run.listing_in_flight = batch.iter().map(|(_, count)| *count).collect();
        self.outputs.push_back(Output::ReadSessions(
            batch
                .into_iter()
                .map(|(native, from_ordinal)| SessionRead {
                    native,
                    from_ordinal,
                })
                .collect(),
        ));
        Phase::ReadSessions
    }

    fn sessions_answered(&mut self, data: Vec<SessionData>) -> Result<(), EngineError> {
        let Some(run) = self.export.as_mut() else {
            return Ok(());
        };
        let Some(exporter) = run.exporter.as_mut() else {
            return Ok(());
        };
        if !run.listing_in_flight.is_empty() {
            for (count, d) in std::mem::take(&mut run.listing_in_flight)
                .into_iter()
                .zip(data)
            {
                exporter.listed(d.session, count);
            }
            return Ok(());
        }
        let encoded = encode_sessions(&data, self.compressor.as_deref());
        for (((native, marker), d), fresh) in std::mem::take(&mut run.in_flight)
            .into_iter()
            .zip(data)
            .zip(encoded)
        {
            // One session that cannot be published (an archive row no reader would accept)
            // is reported on every run and keeps its previous export; the rest go out.
            let change = SessionExport {
                marker,
                session: d.session,
                messages: &d.messages,
                usage_events: d.usage_events,
            };
            if let Err(e) = exporter.session_encoded(change, fresh) {
                let gid = SessionGid::new(self.config.origin.clone(), native);
                let mut problem = Problem::rejected(&format!("session {gid}"), &e);
                problem.disposition = crate::sync::problem::Disposition::Deferred;
                self.report.problems.push(problem);
            }
        }
        let data = exporter.take_data();
        let done = run.total - run.pending.len() as u64;
        let total = run.total;
        self.place_own(data)?;
        self.progress(StageName::Export, done, total);
        // Write this batch before reading the next: memory holds one batch.
        if !self.placement.is_idle() {
            self.ask_store(Vec::new());
        }
        Ok(())
    }

    fn place_own(&mut self, encoded: Vec<Encoded>) -> Result<(), EngineError> {
        let compressor = self.compressor.as_deref().map(|c| c as &dyn Compressor);
        let sealed = Encoded::seal_all(&encoded, compressor).map_err(EngineError::Export)?;
        for (e, stored) in encoded.into_iter().zip(sealed) {
            if e.key.kind() == ArtifactKind::Segment {
                self.sealed.insert(e.key.clone(), blake3::hash(&stored));
            }
            self.placement
                .put(StoreId::Mirror, e.key.to_string(), stored);
        }
        Ok(())
    }

    /// Every own artifact placed in the mirror landed, or the run stops.
    fn check_placed(&mut self) -> Result<(), EngineError> {
        for ((_, key), placed) in self.placement.take_all() {
            match placed {
                Placed::Failed(p) => {
                    return Err(EngineError::Mirror {
                        key,
                        reason: p.reason,
                    });
                }
                placed => {
                    if placed.wrote() {
                        self.report.exported += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<Phase, EngineError> {
        let Some(run) = self.export.as_mut() else {
            return Ok(self.after_export());
        };
        let Some(exporter) = run.exporter.take() else {
            return Ok(self.after_export());
        };
        let origin = self.config.origin.clone();
        // An edit over a reader's limit (written by an older version) is never published:
        // it is reported on every run, and everything else goes out.
        let mut valid = Vec::with_capacity(self.state.unpublished.len());
        for e in std::mem::take(&mut self.state.unpublished) {
            match e.event.op.validate() {
                Ok(()) => valid.push(e),
                Err(error) => {
                    let mut problem = Problem::rejected(&unpublishable_key(&e), &error);
                    problem.disposition = crate::sync::problem::Disposition::Deferred;
                    self.report.problems.push(problem);
                }
            }
        }
        self.state.unpublished = valid;
        run.batches = event_batches(&origin, &self.state.unpublished, &self.config.key)
            .map_err(EngineError::Export)?;
        let events = run
            .batches
            .iter()
            .fold(run.state.events, |mark, b| mark.with(&b.key));
        let now = i64::try_from(self.config.now_ms).unwrap_or(i64::MAX);
        run.touched = exporter.touched().clone();
        let (plan, next) = exporter
            .commit(now, run.newest_seen, events, &self.config.key)
            .map_err(EngineError::Export)?;
        let mut data: Vec<Encoded> = plan.segments;
        data.extend(plan.manifests);
        run.buckets = plan.buckets;
        if let Some(root) = &plan.root {
            self.listings[StoreId::Mirror as usize].wrote(&root.key.to_string());
        }
        run.root = plan.root;
        run.next = Some(next);
        self.place_own(data)?;
        Ok(Phase::PlaceBuckets)
    }

    /// Waits for the placement, then places the next level of the export.
    fn place_next(
        &mut self,
        current: Phase,
        next: impl FnOnce(&mut ExportRun) -> (Vec<Encoded>, Phase),
    ) -> Result<Phase, EngineError> {
        if !self.placement.is_idle() {
            self.ask_store(Vec::new());
            return Ok(current);
        }
        self.check_placed()?;
        let Some(run) = self.export.as_mut() else {
            return Ok(self.after_export());
        };
        let (encoded, phase) = next(run);
        if let Phase::Done = phase
            && encoded.is_empty()
        {
            return Ok(self.export_landed());
        }
        self.place_own(encoded)?;
        if let Phase::Done = phase {
            // The root was the last level: wait for it, then report.
            self.ask_store(Vec::new());
            return Ok(Phase::PlaceRoot);
        }
        Ok(phase)
    }

    fn export_landed(&mut self) -> Phase {
        if let Some(run) = self.export.take()
            && let Some(next) = run.next
        {
            let published = std::mem::take(&mut self.state.unpublished);
            self.report.events_published = published.len();
            let change = next.change(&run.touched);
            // `run.state` is the head the run started from.
            if !change.sessions.is_empty() || change.head != run.state || !published.is_empty() {
                self.outputs.push_back(Output::Exported {
                    change: Box::new(change),
                    published,
                });
            }
            self.state.export = Some(next);
        }
        self.after_export()
    }

    fn after_export(&mut self) -> Phase {
        if !(self.config.target && self.config.stages.exchange) {
            return self.import_start();
        }
        let origins = self.ahead_of_mirror();
        if !self.config.stages.import || self.restore_own || origins.is_empty() {
            return self.exchange_start();
        }
        self.progress(StageName::Import, 0, 0);
        let import = Import::new(
            self.config.origin.clone(),
            self.state.import.clone(),
            self.purged.clone(),
        )
        .only(origins.clone())
        .with_roots(&self.listings[StoreId::Target as usize])
        .with_decompressor(self.decoder.clone())
        .listing_ahead(self.list_ahead)
        .writing_through();
        self.ahead = Some(Ahead {
            origins,
            ..Ahead::default()
        });
        // Beside a window's messages it holds their stored bytes until they land (twice while
        // they are put), and every manifest's until its turn: windows of three quarters keep
        // what an import holds where it was (the 1 GB bench: 127 MB → 144 MB at full windows).
        let window = self.import_window.unwrap_or(SEGMENT_WINDOW_BYTES);
        Phase::ImportAhead(Box::new(import.with_segment_window(window / 4 * 3)))
    }

    fn exchange_start(&mut self) -> Phase {
        self.progress(StageName::Exchange, 0, 0);
        let landed = self
            .ahead
            .as_mut()
            .map(|a| std::mem::take(&mut a.landed))
            .unwrap_or_default();
        let exchange = Exchange::with_listings(
            &self.listings[StoreId::Mirror as usize],
            &self.listings[StoreId::Target as usize],
        )
        .with_present(StoreId::Mirror, landed)
        .with_settled(self.settled_events())
        .with_sealed(std::mem::take(&mut self.sealed))
        .with_decompressor(self.decoder.clone())
        .listing_ahead(self.list_ahead);
        Phase::Exchange(Box::new(exchange))
    }

    /// Foreign origins whose greatest root in the target's listing sorts above the mirror's:
    /// what the relay would bring into the mirror and the import then read.
    fn ahead_of_mirror(&self) -> BTreeSet<OriginId> {
        let greatest = |store: StoreId| {
            RootWalk::new(store, None)
                .fed(&self.listings[store as usize])
                .greatest
        };
        let mirror = greatest(StoreId::Mirror);
        greatest(StoreId::Target)
            .into_iter()
            .filter(|(o, key)| *o != self.config.origin && mirror.get(o).is_none_or(|m| m < key))
            .map(|(o, _)| o)
            .collect()
    }

    /// Queues what the import ahead verified for the mirror: segments and batches at once,
    /// each manifest once its segments landed.
    fn write_through(&mut self, verified: Vec<Verified>) {
        let Some(ahead) = self.ahead.as_mut() else {
            return;
        };
        for v in verified {
            if v.after.is_empty() {
                self.placement
                    .put(StoreId::Mirror, v.key.to_string(), v.bytes);
            } else {
                ahead.waiting.push(v);
            }
        }
        self.ahead_landed();
    }

    /// Notes what landed in the mirror and queues the manifests whose segments all did. A
    /// manifest whose segment failed to land waits for ever: the relay copies it, from the
    /// target, with what it lacks.
    fn ahead_landed(&mut self) {
        let Some(ahead) = self.ahead.as_mut() else {
            return;
        };
        for ((_, key), placed) in self.placement.take_all() {
            match placed {
                Placed::Failed(p) => self.report.problems.push(p),
                placed => {
                    if placed.wrote() {
                        self.report.exchanged += 1;
                    }
                    if placed == Placed::Healed {
                        self.report.healed += 1;
                    }
                    ahead.landed.insert(key);
                }
            }
        }
        let landed = &mut ahead.landed;
        let (ready, waiting): (Vec<Verified>, Vec<Verified>) = std::mem::take(&mut ahead.waiting)
            .into_iter()
            .partition(|v| v.after.iter().all(|k| landed.contains(&k.to_string())));
        ahead.waiting = waiting;
        for v in ready {
            // A relay never looks past a manifest the mirror holds: its segments need not
            // be remembered (a first import would keep every key of the origin).
            for k in &v.after {
                landed.remove(&k.to_string());
            }
            self.placement
                .put(StoreId::Mirror, v.key.to_string(), v.bytes);
        }
    }

    /// Per origin, the root whose batches this machine knows a store holding it holds: own
    /// roots this version wrote, and foreign roots whose batches the import handled.
    fn settled_events(&self) -> BTreeMap<OriginId, ArtifactKey> {
        let mut settled: BTreeMap<OriginId, ArtifactKey> = self
            .state
            .import
            .origins
            .iter()
            .filter_map(|(o, p)| p.events_root.clone().map(|k| (o.clone(), k)))
            .collect();
        if let Some(export) = &self.state.export
            && export.events.is_stated()
            && let Some(root) = &export.root
        {
            settled.insert(self.config.origin.clone(), root.clone());
        }
        settled
    }

    /// Hands out the foreign sessions the exchange's buckets list and the archive lacks at
    /// that manifest: a host shows them while their messages are on the way.
    fn list(&mut self, entries: Vec<(OriginId, BucketEntry)>) {
        let imported = &self.state.import.origins;
        let listed: Vec<ListedSession> = entries
            .into_iter()
            // Own sessions come back only in a rebuild, which lists nothing ahead.
            .filter(|(origin, _)| *origin != self.config.origin)
            .filter(|(origin, e)| {
                imported
                    .get(origin)
                    .and_then(|p| p.sessions.get(&e.session))
                    .is_none_or(|s| s.manifest != e.manifest)
            })
            .filter_map(|(origin, e)| {
                let gid = SessionGid::new(origin, e.session);
                let listing = e.listing?;
                (!self.purged.contains(&gid)).then_some(ListedSession {
                    gid,
                    listing,
                    manifest: e.manifest,
                })
            })
            .collect();
        if !listed.is_empty() {
            self.outputs.push_back(Output::Listed(listed));
        }
    }

    fn exchanged(&mut self, exchange: Exchange) {
        let report = exchange.into_report();
        let origin = &self.config.origin;
        for (store, key) in &report.copied {
            self.report.exchanged += 1;
            if key.starts_with(crate::names::ROOTS_PREFIX) {
                self.listings[*store as usize].wrote(key);
            }
            let own = key
                .parse::<ArtifactKey>()
                .is_ok_and(|k| k.origin() == origin);
            if *store == StoreId::Target && own {
                self.report.sent += 1;
                self.sent_keys.insert(key.clone());
            }
        }
        self.report.healed += report.healed;
        self.report.problems.extend(report.problems);
    }

    /// Own roots are checked from the run's `roots/` listing; every other own key only when
    /// a full listing is due ([`SyncConfig::heal_every_ms`]).
    fn heal_start(&mut self) -> Phase {
        self.progress(StageName::Heal, 0, 0);
        let origin = &self.config.origin;
        let listing = &self.listings[StoreId::Target as usize];
        let prefix = ArtifactKey::roots_prefix(origin);
        let old = self.state.heal_mark.as_ref();
        let mark = old.map(|m| m.roots.as_ref().unwrap_or(&m.data));
        let since = self.heal_since();
        let mut roots = TimeMark::default();
        let mut found = Vec::new();
        for entry in listing
            .entries
            .iter()
            .filter(|e| e.key.starts_with(&prefix))
        {
            if heal_recent(mark, since, &entry.key, entry.modified_ms)
                && !self.sent_keys.contains(&entry.key)
            {
                found.push(entry.key.clone());
            }
            if let Some(m) = entry.modified_ms {
                roots.saw(&entry.key, m);
            }
        }
        let roots = if listing.failed {
            old.and_then(|m| m.roots.clone())
        } else {
            Some(roots)
        };
        let now = self.config.now_ms;
        let due = old
            .and_then(|m| m.listed_ms)
            .is_none_or(|t| now.saturating_sub(t) >= self.config.heal_every_ms);
        if due {
            self.heal_roots = roots;
            return Phase::HealList(vec![(StoreId::Target, format!("{origin}/"), None)], found);
        }
        self.report.heal_mark = Some(HealMark {
            data: old.map(|m| m.data.clone()).unwrap_or_default(),
            roots,
            listed_ms: old.and_then(|m| m.listed_ms),
        });
        Phase::HealCheck(found)
    }

    /// Without a mark (a first heal), own keys modified since shortly before the last sync
    /// ended are checked: this machine writes its keys only while it syncs.
    fn heal_since(&self) -> u64 {
        self.config
            .last_sync_ms
            .map_or(0, |t| t.saturating_sub(HEAL_MARGIN_MS))
    }

    fn heal_list(
        &mut self,
        jobs: Vec<(StoreId, String, Option<String>)>,
        found: Vec<String>,
    ) -> Phase {
        self.ask_store(
            jobs.iter()
                .map(|(store, prefix, after)| StoreRequest {
                    store: *store,
                    request: Request::List {
                        prefix: prefix.clone(),
                        start_after: after.clone(),
                    },
                })
                .collect(),
        );
        Phase::HealList(jobs, found)
    }

    fn healed(&mut self) {
        for ((_, _), placed) in self.placement.take_all() {
            match placed {
                Placed::Failed(p) => self.report.problems.push(p),
                placed if placed.wrote() => {
                    self.report.healed += 1;
                    self.report.sent += 1;
                    self.report.exchanged += 1;
                }
                _ => {}
            }
        }
    }

    fn import_start(&mut self) -> Phase {
        if !self.config.stages.import {
            return Phase::Done;
        }
        self.progress(StageName::Import, 0, 0);
        let import = if self.restore_own {
            Import::restoring(self.state.import.clone(), self.purged.clone())
        } else {
            Import::new(
                self.config.origin.clone(),
                self.state.import.clone(),
                self.purged.clone(),
            )
        }
        // Origins imported ahead of the relay came from the target, at a root the mirror
        // holds too or lacks (the relay failed): nothing there is newer.
        .except(self.ahead.take().map(|a| a.origins).unwrap_or_default())
        .with_roots(&self.listings[StoreId::Mirror as usize])
        .with_decompressor(self.decoder.clone());
        Phase::Import(Box::new(self.windowed(import)))
    }

    fn windowed(&self, import: Import) -> Import {
        match self.import_window {
            Some(bytes) => import.with_segment_window(bytes),
            None => import,
        }
    }

    fn drive_import(&mut self, mut import: Box<Import>) -> Phase {
        match import.poll() {
            Step::Requests(requests) => {
                self.ask_store(requests);
                Phase::Import(import)
            }
            Step::Done(report) => {
                self.imported(*report);
                self.replay_start()
            }
        }
    }

    /// Takes in what an import did.
    fn imported(&mut self, mut report: ImportReport) {
        let units = std::mem::take(&mut report.units);
        self.apply(units);
        self.report.fetched += report.fetched;
        self.report.problems.extend(report.problems);
        self.report.older_roots.extend(report.older_roots);
        for e in &report.events {
            if e.event.op == Op::Purge {
                self.purged.insert(e.event.session.clone());
            }
        }
        self.imported_events.extend(report.events);
        // Persisted only after the replay (`Replayed` stores these events): the state
        // marks their batches handled, and a run that stops in between must fetch them
        // again, not skip them (found by the crash matrix, issue 15).
        self.state.import = report.state;
    }

    fn replay_start(&mut self) -> Phase {
        self.progress(StageName::Replay, 0, 0);
        let mut gids: Vec<SessionGid> = self
            .state
            .deferred_events
            .iter()
            .chain(&self.imported_events)
            .filter(|e| e.event.op != Op::Purge)
            .map(|e| e.event.session.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        gids.retain(|g| !self.purged.contains(g));
        Phase::Present(gids)
    }

    fn present_answered(&mut self, answers: Vec<bool>) {
        let Phase::Present(gids) = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        let mut present: BTreeSet<SessionGid> = gids
            .into_iter()
            .zip(answers)
            .filter(|(_, here)| *here)
            .map(|(g, _)| g)
            .collect();
        // A session purged by one of these events needs no target either.
        let mut offered = std::mem::take(&mut self.state.deferred_events);
        offered.extend(self.imported_events.iter().cloned());
        for e in &offered {
            if e.event.op == Op::Purge {
                present.insert(e.event.session.clone());
            }
        }
        let replay =
            self.state
                .ledger
                .replay(&mut self.clock, self.config.now_ms, offered.clone(), &|g| {
                    present.contains(g)
                });
        self.report.events_applied = replay.applied;
        let deferred_keys: BTreeSet<_> = replay.deferred.iter().map(|d| d.key.clone()).collect();
        self.state.deferred_events = offered
            .iter()
            .filter(|e| deferred_keys.contains(&e.key()))
            .cloned()
            .collect();
        self.outputs.push_back(Output::Replayed(Box::new(Replayed {
            ledger: self.state.ledger.clone(),
            clock: self.clock.last(),
            replay,
            imported: std::mem::take(&mut self.imported_events),
            offered,
            deferred: self.state.deferred_events.clone(),
        })));
        if self.state.import != self.import_stored {
            self.outputs
                .push_back(Output::Imported(Box::new(self.state.import.clone())));
        }
        self.phase = Phase::Done;
    }
}

/// Whether self-heal checks a key modified at `modified_ms` (unknown: always).
fn heal_recent(mark: Option<&TimeMark>, since: u64, key: &str, modified_ms: Option<u64>) -> bool {
    match (modified_ms, mark) {
        (None, _) => true,
        (Some(m), Some(mark)) => mark.is_newer(key, m),
        (Some(m), None) => m >= since,
    }
}

/// How a local edit that cannot be published is named in problems.
pub fn unpublishable_key(event: &SignedEvent) -> String {
    format!(
        "edit (op {}) of {} at {}",
        event.event.op.tag(),
        event.event.session,
        event.event.hlc
    )
}

/// Seals unpublished events into batches that every reader accepts: split under the reader's
/// own limits ([`limits::MAX_EVENTS_PER_BATCH`] events, [`limits::EVENTS`] bytes), never one
/// batch a reader would refuse.
pub fn event_batches(
    origin: &OriginId,
    events: &[SignedEvent],
    key: &OriginKey,
) -> Result<Vec<Encoded>, Error> {
    let mut out = Vec::new();
    let mut chunk: Vec<crate::events::Event> = Vec::new();
    let mut bytes = 0usize;
    let budget = limits::EVENTS.max_canonical / 2;
    for e in events {
        let size = e.event.record_bytes().len();
        if !chunk.is_empty()
            && (chunk.len() >= limits::MAX_EVENTS_PER_BATCH || bytes + size > budget)
        {
            out.push(
                EventBatch {
                    origin: origin.clone(),
                    events: std::mem::take(&mut chunk),
                }
                .seal(key)?,
            );
            bytes = 0;
        }
        bytes += size;
        chunk.push(e.event.clone());
    }
    if !chunk.is_empty() {
        out.push(
            EventBatch {
                origin: origin.clone(),
                events: chunk,
            }
            .seal(key)?,
        );
    }
    Ok(out)
}

/// Each session's messages cut into segments ([`segment_messages`]), through the host's
/// [`Compressor::encode_all`] when it lends one (sessions are independent), else one by one.
fn encode_sessions(
    data: &[SessionData],
    compressor: Option<&(dyn Compressor + Send)>,
) -> Vec<crate::Result<Vec<EncodedSegment>>> {
    let Some(compressor) = compressor else {
        return data.iter().map(|d| segment_messages(&d.messages)).collect();
    };
    let mut slots: Vec<Option<crate::Result<Vec<EncodedSegment>>>> =
        data.iter().map(|_| None).collect();
    let jobs: Vec<crate::frame::EncodeJob<'_>> = data
        .iter()
        .zip(slots.iter_mut())
        .map(|(d, slot)| -> crate::frame::EncodeJob<'_> {
            Box::new(move || *slot = Some(segment_messages(&d.messages)))
        })
        .collect();
    compressor.encode_all(jobs);
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(crate::Error::Compress {
                    reason: "the host's encode_all left a session unencoded".into(),
                })
            })
        })
        .collect()
}
