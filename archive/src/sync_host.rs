//! The archive's half of a sync run: the engine's state loaded from the archive, and every
//! engine output that concerns the archive (sessions to read, units to apply, states to keep)
//! answered or stored here. What is left for a host is its stores: the CLI answers them from
//! files, sockets and S3; the browser over `fetch`. Every host runs the same small loop:
//!
//! ```text
//! let mut engine = SyncEngine::new(config, archive.sync_state()?);
//! loop {
//!     match archive.take_output(&origin, engine.poll()?)? {
//!         HostStep::Answer(input)   => engine.handle(input)?,
//!         HostStep::Store(requests) => engine.handle(Input::Store(answer(requests)))?,
//!         HostStep::Progress(p)     => show(p),
//!         HostStep::Listed(_)       => refresh_the_list(),
//!         HostStep::Stored          => {}
//!         HostStep::Done(report)    => break archive.finish_sync(&report, now_ms)?,
//!     }
//! }
//! ```

use std::collections::BTreeMap;

use agentsync_core::sync::engine::{self, Input, Output, SessionData, SessionRead, SyncState};
use agentsync_core::sync::export::ExportState;
use agentsync_core::sync::import::{ApplyUnit, ImportState};
use agentsync_core::sync::problem::Disposition;
use agentsync_core::sync::store::StoreRequest;
use agentsync_core::{HlcClock, SessionGid};
use agentsync_core::{NativeId, OriginId};

use crate::Archive;
use crate::PreparedUnit;
use crate::error::Result;
use crate::sync_state::ProblemRow;

/// What the host does after the archive took an engine output.
#[derive(Debug)]
pub enum HostStep {
    /// Hand this to the engine before polling again.
    Answer(Input),
    /// The archive stored what the output carried: poll again.
    Stored,
    /// Requests for the host's stores; answer them all, in order, with `Input::Store`.
    Store(Vec<StoreRequest>),
    /// This many sessions were added to the archive from their origins' listings, ahead of
    /// their messages: a host showing a list refreshes it.
    Listed(usize),
    Progress(engine::Progress),
    Done(Box<engine::SyncReport>),
}

/// What the archive made of a finished run, for the host's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub quarantined: Vec<ProblemRow>,
    pub deferred: Vec<ProblemRow>,
    pub events_deferred: u64,
    pub conflicts: u64,
}

/// The engine's states that grow with the archive (megabytes at 10 k sessions: reading them
/// is most of a sync that finds nothing new). Only a sync run writes them, so a host may read
/// them on a connection of its own while the run ingests, then hand them to
/// [`Archive::sync_state_with`].
#[derive(Debug)]
pub struct EngineStates {
    export: Option<ExportState>,
    import: ImportState,
}

/// Where ingest found a message of an exported session changed after the fact (the
/// `sync_state` row that [`Archive::note_amended`] keeps until the next export).
const AMENDED: &str = "export_amended";

impl Archive {
    /// The engine's persisted state, as the last run left it.
    pub fn sync_state(&self) -> Result<SyncState> {
        self.sync_state_with(self.engine_states()?)
    }

    pub fn engine_states(&self) -> Result<EngineStates> {
        Ok(EngineStates {
            export: self.export_state()?,
            import: self.state::<ImportState>("import")?.unwrap_or_default(),
        })
    }

    /// [`sync_state`](Self::sync_state), with the large states read beforehand.
    pub fn sync_state_with(&self, states: EngineStates) -> Result<SyncState> {
        let mut export = states.export;
        if let Some(export) = &mut export {
            let amended: BTreeMap<NativeId, u64> = self.state(AMENDED)?.unwrap_or_default();
            for (native, ordinal) in &amended {
                export.amended(native, *ordinal);
            }
        }
        Ok(SyncState {
            export,
            import: states.import,
            ledger: self.ledger()?,
            clock: self.clock()?.last(),
            unpublished: self.unpublished_events()?,
            deferred_events: self.deferred_events()?,
            revisions: self
                .own_revisions()?
                .into_iter()
                .map(|(native, revision)| (native, revision.to_string()))
                .collect(),
            heal_mark: self.state("heal")?,
        })
    }

    /// A message of an exported own session changed after the fact (a tool result that
    /// arrived late): the next export re-encodes the session from `ordinal` on. Kept beside
    /// the export state rather than in it, so that ingest never rewrites that state, and a
    /// host may read it ahead while it ingests ([`EngineStates`]).
    pub fn note_amended(&self, native: &NativeId, ordinal: u64) -> Result<()> {
        let mut amended: BTreeMap<NativeId, u64> = self.state(AMENDED)?.unwrap_or_default();
        let first = amended.entry(native.clone()).or_insert(ordinal);
        *first = (*first).min(ordinal);
        self.set_state(AMENDED, &amended)
    }

    /// When the last sync ended (for `SyncConfig::last_sync_ms`).
    pub fn last_sync_ms(&self) -> Result<Option<u64>> {
        Ok(self
            .last_sync()?
            .map(|run| u64::try_from(run.finished_ms).unwrap_or(0)))
    }

    /// Answers or stores one engine output. Each stored output describes work that has
    /// landed, so a run stopped anywhere resumes on the next run.
    pub fn take_output(&mut self, origin: &OriginId, output: Output) -> Result<HostStep> {
        Ok(match output {
            Output::Store(requests) => HostStep::Store(requests),
            Output::ReadSessions(reads) => HostStep::Answer(Input::Sessions(
                reads
                    .iter()
                    .map(|read| self.session_data(origin, read))
                    .collect::<Result<_>>()?,
            )),
            Output::CheckPresent(gids) => HostStep::Answer(Input::Present(
                gids.iter()
                    .map(|g| self.has_session(g))
                    .collect::<Result<Vec<bool>>>()?,
            )),
            Output::Apply(units) => {
                self.apply_window(origin, units)?;
                HostStep::Stored
            }
            Output::Exported { change, published } => {
                self.transaction(|a| {
                    a.store_export_change(&change)?;
                    // The sessions it exported again were read with these applied; a session
                    // that failed to export keeps its note for the next run.
                    let mut amended: BTreeMap<NativeId, u64> =
                        a.state(AMENDED)?.unwrap_or_default();
                    if !amended.is_empty() {
                        for (native, _) in &change.sessions {
                            amended.remove(native);
                        }
                        if amended.is_empty() {
                            a.clear_state(AMENDED)?;
                        } else {
                            a.set_state(AMENDED, &amended)?;
                        }
                    }
                    a.mark_published(&published)
                })?;
                HostStep::Stored
            }
            Output::Imported(state) => {
                self.set_state("import", &*state)?;
                HostStep::Stored
            }
            Output::Replayed(r) => {
                let clock = HlcClock::resume(r.clock);
                self.transaction(|a| {
                    a.insert_events(&r.imported, true)?;
                    a.record_replay(&r.ledger, &clock, &r.replay, &r.offered)
                })?;
                HostStep::Stored
            }
            Output::Listed(sessions) => {
                HostStep::Listed(self.transaction(|a| a.add_listed(&sessions))?)
            }
            Output::Progress(p) => HostStep::Progress(p),
            Output::Done(report) => HostStep::Done(report),
        })
    }

    /// One of this machine's sessions as the export reads it (an item of
    /// [`Output::ReadSessions`]): a host with several connections to the archive may read a
    /// batch on all of them.
    pub fn session_data(&self, origin: &OriginId, read: &SessionRead) -> Result<SessionData> {
        let gid = SessionGid::new(origin.clone(), read.native.clone());
        let (session, usage_events) = self.session_record(&gid)?;
        let messages = self.messages(&gid, read.from_ordinal)?;
        Ok(SessionData {
            session,
            messages,
            usage_events,
        })
    }

    /// Stores one window of imported sessions ([`Output::Apply`]). One transaction for the
    /// window: a commit is a sync to disk (OPFS in a browser), and units are idempotent, so a
    /// window cut short is redone whole. Units of `origin` (this machine) come only from a
    /// rebuild restoring own sessions.
    pub fn apply_window(&mut self, origin: &OriginId, units: Vec<ApplyUnit>) -> Result<()> {
        // Each unit made ready just before it is stored: a whole window made ready at once
        // holds its tool text twice more (the wasm host's 1 GB import: 128 MB → 160 MB).
        self.transaction(|a| {
            units.into_iter().try_for_each(|unit| {
                let own = unit.gid.origin == *origin;
                a.apply_prepared(&mut PreparedUnit::new(unit)?, own)
            })
        })
    }

    /// [`apply_window`](Self::apply_window) for units made ready beforehand, on another
    /// thread than the one that stores them.
    ///
    /// The units are left spent, their rows' text still in them, for the thread that made
    /// them to free: freeing on this thread what another thread allocated takes the lock of
    /// that thread's allocator arena, against it, on what is the import's critical path.
    pub fn apply_prepared_window(
        &mut self,
        origin: &OriginId,
        units: &mut [PreparedUnit],
    ) -> Result<()> {
        self.transaction(|a| {
            units.iter_mut().try_for_each(|unit| {
                let own = unit.gid.origin == *origin;
                a.apply_prepared(unit, own)
            })
        })
    }

    /// Keeps what a finished run leaves for the next one (self-heal's mark, the artifacts it
    /// could not use) and sums up what the user should know.
    pub fn finish_sync(&mut self, report: &engine::SyncReport, now_ms: u64) -> Result<SyncOutcome> {
        if let Some(mark) = &report.heal_mark {
            self.set_state("heal", mark)?;
        }
        self.set_problems(&report.problems, i64::try_from(now_ms).unwrap_or(i64::MAX))?;
        let mut outcome = SyncOutcome {
            events_deferred: self.count_deferred_events()?,
            conflicts: self.count_conflicts()?,
            ..SyncOutcome::default()
        };
        for row in self.problems()? {
            if row.state == Disposition::Quarantined {
                outcome.quarantined.push(row);
            } else {
                outcome.deferred.push(row);
            }
        }
        Ok(outcome)
    }
}
