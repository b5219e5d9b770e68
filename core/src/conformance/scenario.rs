//! Multi-origin scenarios: a deterministic simulator of several machines and stores, driven by
//! a script, so every runner (native, wasmtime, browser) can check whole sync runs.
//!
//! Each simulated machine is a minimal host: its own sessions, the export and import states,
//! an archive of foreign sessions, and a curation ledger. Stores are in memory, with a
//! virtual clock for modification times. Steps can drop, restore (late arrival) and corrupt
//! keys, to script the faults real transports have. Nothing here is used by real hosts; it
//! exercises the same engine calls they make.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::error::Error;
use crate::events::Op;
use crate::hlc::HlcClock;
use crate::ledger::Replay;
use crate::ledger::{LedgerState, Projection, SignedEvent};
use crate::model::{Message, Session, UsageEvent};
use crate::names::{ArtifactKey, NativeId, OriginId, SessionGid};
use crate::segment::message_line;
use crate::signature::OriginKey;
use crate::sync::engine::{
    Input, Output, SessionData, Stages, SyncConfig, SyncEngine, SyncReport, SyncState,
};
use crate::sync::exchange;
use crate::sync::export::ExportState;
use crate::sync::gc;
use crate::sync::import::ImportState;
use crate::sync::problem::Problem;
use crate::sync::store::{
    ListPage, Listing, PutOutcome, Request, Response, Store, StoreError, StoreId, answer_one,
    list_all,
};

use super::VectorError;

/// An in-memory store with modification times from the scenario's virtual clock.
#[derive(Default)]
pub struct MemoryStore {
    objects: BTreeMap<String, (Vec<u8>, u64)>,
    dropped: BTreeMap<String, (Vec<u8>, u64)>,
    now_ms: u64,
    page_size: usize,
}

impl Store for MemoryStore {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError> {
        let page = self.page_size.max(1);
        let mut entries: Vec<Listing> = self
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| start_after.is_none_or(|a| k.as_str() > a))
            .filter(|(k, _)| !ArtifactKey::is_temporary(k))
            .map(|(k, (bytes, t))| Listing {
                key: k.clone(),
                modified_ms: Some(*t),
                size: bytes.len() as u64,
            })
            .take(page + 1)
            .collect();
        let truncated = entries.len() > page;
        entries.truncate(page);
        Ok(ListPage { entries, truncated })
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.objects.get(key).map(|(b, _)| b.clone()))
    }

    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        if let Some((existing, _)) = self.objects.get(key) {
            return Ok(if existing == bytes {
                PutOutcome::Exists
            } else {
                PutOutcome::Differs
            });
        }
        self.objects
            .insert(key.to_owned(), (bytes.to_vec(), self.now_ms));
        Ok(PutOutcome::Created)
    }

    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.objects
            .insert(key.to_owned(), (bytes.to_vec(), self.now_ms));
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.objects.remove(key);
        Ok(())
    }
}

struct OwnSession {
    session: Session,
    messages: Vec<Message>,
    usage: Vec<UsageEvent>,
    marker: u64,
}

struct Machine {
    origin: OriginId,
    key: OriginKey,
    own: BTreeMap<NativeId, OwnSession>,
    export: ExportState,
    import: ImportState,
    archive: BTreeMap<SessionGid, (Session, Vec<Message>)>,
    ledger: LedgerState,
    clock: HlcClock,
    unpublished: Vec<SignedEvent>,
    deferred_events: Vec<SignedEvent>,
    last_sync_ms: Option<u64>,
    heal_mark: Option<crate::sync::engine::HealMark>,
    heal_every_ms: u64,
}

/// What one engine run of a machine did.
#[derive(Default)]
struct EngineRun {
    /// `None`: the run was stopped at its crash point.
    report: Option<SyncReport>,
    /// Artifacts created, by kind.
    written: BTreeMap<&'static str, usize>,
    writes: usize,
    units: Vec<Value>,
    events: usize,
}

fn problem_lists(problems: &[Problem]) -> (Vec<String>, Vec<String>) {
    let line = |p: &Problem| format!("{} {}", p.class, p.key);
    (
        problems
            .iter()
            .filter(|p| p.is_quarantined())
            .map(line)
            .collect(),
        problems
            .iter()
            .filter(|p| !p.is_quarantined())
            .map(line)
            .collect(),
    )
}

impl Machine {
    fn has(&self, gid: &SessionGid) -> bool {
        if gid.origin == self.origin {
            self.own.contains_key(&gid.native)
        } else {
            self.archive.contains_key(gid)
        }
    }

    /// The simulator's host loop: the same loop every host runs.
    fn run(
        &mut self,
        mirror: &mut MemoryStore,
        mut target: Option<&mut MemoryStore>,
        stages: Stages,
        now: u64,
        crash_after_writes: Option<usize>,
    ) -> Result<EngineRun, VectorError> {
        let config = SyncConfig {
            origin: self.origin.clone(),
            key: OriginKey::from_secret(self.key.secret()),
            now_ms: now,
            target: target.is_some(),
            stages,
            last_sync_ms: self.last_sync_ms,
            heal_every_ms: self.heal_every_ms,
        };
        let state = SyncState {
            export: Some(self.export.clone()),
            import: self.import.clone(),
            ledger: self.ledger.clone(),
            clock: self.clock.last(),
            unpublished: self.unpublished.clone(),
            deferred_events: self.deferred_events.clone(),
            revisions: self
                .own
                .iter()
                .map(|(n, own)| (n.clone(), own.marker.to_string()))
                .collect(),
            heal_mark: self.heal_mark.clone(),
        };
        let mut engine = SyncEngine::new(config, state);
        let mut run = EngineRun::default();
        let engine_error = |e: crate::sync::engine::EngineError| invalid("engine", e.to_string());
        loop {
            match engine.poll().map_err(engine_error)? {
                Output::Store(requests) => {
                    let mut responses = Vec::with_capacity(requests.len());
                    for r in &requests {
                        if crash_after_writes.is_some_and(|n| run.writes >= n)
                            && matches!(r.request, Request::Put { .. } | Request::Replace { .. })
                        {
                            return Ok(run);
                        }
                        let store: &mut MemoryStore = match (r.store, target.as_deref_mut()) {
                            (StoreId::Target, Some(t)) => t,
                            _ => &mut *mirror,
                        };
                        let response = answer_one(store, &r.request);
                        if matches!(
                            response,
                            Response::Put(PutOutcome::Created) | Response::Done
                        ) && let Ok(key) = r.request.subject().parse::<ArtifactKey>()
                        {
                            *run.written.entry(key.kind().name()).or_default() += 1;
                        }
                        if matches!(r.request, Request::Put { .. } | Request::Replace { .. }) {
                            run.writes += 1;
                        }
                        responses.push(response);
                    }
                    engine
                        .handle(Input::Store(responses))
                        .map_err(engine_error)?;
                }
                Output::ReadSessions(reads) => {
                    let data = reads
                        .iter()
                        .map(|r| {
                            let own = self.own.get(&r.native).ok_or_else(|| {
                                invalid("engine", format!("no session {}", r.native))
                            })?;
                            let from = usize::try_from(r.from_ordinal)
                                .unwrap_or(usize::MAX)
                                .min(own.messages.len());
                            Ok(SessionData {
                                session: own.session.clone(),
                                messages: own.messages[from..].to_vec(),
                                usage_events: own.usage.clone(),
                            })
                        })
                        .collect::<Result<Vec<_>, VectorError>>()?;
                    engine.handle(Input::Sessions(data)).map_err(engine_error)?;
                }
                Output::CheckPresent(gids) => {
                    let answers = gids.iter().map(|g| self.has(g)).collect();
                    engine
                        .handle(Input::Present(answers))
                        .map_err(engine_error)?;
                }
                Output::Apply(units) => {
                    for unit in units {
                        run.units.push(json!([
                            unit.gid.to_string(),
                            unit.from_ordinal,
                            unit.messages.len()
                        ]));
                        let entry = self
                            .archive
                            .entry(unit.gid.clone())
                            .or_insert_with(|| (unit.session.clone(), Vec::new()));
                        entry.0 = unit.session;
                        entry
                            .1
                            .truncate(usize::try_from(unit.from_ordinal).unwrap_or(usize::MAX));
                        entry.1.extend(unit.messages);
                    }
                }
                Output::Exported { change, published } => {
                    self.export.apply(*change);
                    let done: BTreeSet<_> = published.iter().map(|e| e.key()).collect();
                    self.unpublished.retain(|e| !done.contains(&e.key()));
                }
                Output::Imported(state) => self.import = *state,
                Output::Replayed(r) => {
                    run.events = r.imported.len();
                    self.ledger = r.ledger;
                    self.clock = HlcClock::resume(r.clock);
                    self.deferred_events = r.deferred;
                    self.apply_purges(&r.replay);
                }
                // The simulated archive holds imported sessions only; listings are for show.
                Output::Progress(_) | Output::Listed(_) => {}
                Output::Done(report) => {
                    self.last_sync_ms = Some(now);
                    if report.heal_mark.is_some() {
                        self.heal_mark = report.heal_mark.clone();
                    }
                    run.report = Some(*report);
                    return Ok(run);
                }
            }
        }
    }

    fn apply_purges(&mut self, replay: &Replay) {
        for p in &replay.projections {
            if let Projection::Purge { session } = p {
                self.archive.remove(session);
                if session.origin == self.origin {
                    self.own.remove(&session.native);
                }
            }
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> VectorError {
    VectorError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn get<'a>(step: &'a Value, field: &'static str) -> Result<&'a Value, VectorError> {
    step.get(field).ok_or(VectorError::Field(field))
}

fn text<'a>(step: &'a Value, field: &'static str) -> Result<&'a str, VectorError> {
    get(step, field)?.as_str().ok_or(VectorError::Field(field))
}

fn number(step: &Value, field: &'static str) -> Result<u64, VectorError> {
    get(step, field)?.as_u64().ok_or(VectorError::Field(field))
}

fn parse<T: std::str::FromStr<Err = Error>>(
    step: &Value,
    field: &'static str,
) -> Result<T, VectorError> {
    text(step, field)?
        .parse()
        .map_err(|e: Error| invalid(field, e.to_string()))
}

fn generated_messages(first: u64, count: u64, label: &str, size: u64) -> Vec<Message> {
    (first..first + count)
        .map(|ordinal| Message {
            ordinal,
            role: if ordinal % 2 == 0 {
                "user"
            } else {
                "assistant"
            }
            .into(),
            content: format!("{label} message {ordinal} {}", "x".repeat(size as usize)),
            ..Message::default()
        })
        .collect()
}

fn digest(messages: &[Message]) -> String {
    let mut hasher = blake3::Hasher::new();
    for m in messages {
        if let Ok(line) = message_line(m) {
            hasher.update(&line);
        }
    }
    hasher.finalize().to_hex()[..16].to_owned()
}

struct World {
    machines: BTreeMap<OriginId, Machine>,
    stores: BTreeMap<String, MemoryStore>,
    /// What each machine's GC saw unreachable in each store, and since when.
    gc_observed: BTreeMap<(OriginId, String), BTreeMap<String, u64>>,
    log: Vec<Value>,
}

impl World {
    fn machine(&mut self, step: &Value) -> Result<&mut Machine, VectorError> {
        let origin: OriginId = parse(step, "origin")?;
        self.machines
            .get_mut(&origin)
            .ok_or_else(|| invalid("origin", format!("no machine {origin}")))
    }

    fn store(
        &mut self,
        step: &Value,
        field: &'static str,
    ) -> Result<&mut MemoryStore, VectorError> {
        let name = text(step, field)?.to_owned();
        self.stores
            .get_mut(&name)
            .ok_or_else(|| invalid(field, format!("no store {name}")))
    }

    fn step(&mut self, step: &Value) -> Result<Value, VectorError> {
        let now = step.get("now_ms").and_then(Value::as_u64).unwrap_or(0);
        for store in self.stores.values_mut() {
            store.now_ms = now;
        }
        match text(step, "do")? {
            "session" | "append" => self.session(step),
            "export" => self.export(step, now, None),
            "export_interrupted" => {
                let writes = number(step, "writes")? as usize;
                self.export(step, now, Some(writes))
            }
            "exchange" => self.exchange(step),
            "import" => self.import(step, now),
            "sync" => self.sync(step, now),
            "edit" => self.edit(step, now),
            "drop" | "restore" | "corrupt" => self.fault(step),
            "gc" => self.gc(step, now),
            "put_raw" => {
                let key = text(step, "key")?.to_owned();
                let bytes =
                    hex::decode(text(step, "hex")?).map_err(|e| invalid("hex", e.to_string()))?;
                let store = self.store(step, "store")?;
                let outcome = store
                    .put_if_absent(&key, &bytes)
                    .map_err(|e| invalid("put_raw", e.to_string()))?;
                Ok(json!({"put": outcome}))
            }
            other => Err(invalid("do", format!("unknown step {other:?}"))),
        }
    }

    fn session(&mut self, step: &Value) -> Result<Value, VectorError> {
        let native: NativeId = parse(step, "native")?;
        let count = step.get("messages").and_then(Value::as_u64).unwrap_or(0);
        let size = step.get("size").and_then(Value::as_u64).unwrap_or(0);
        let append = text(step, "do")? == "append";
        let machine = self.machine(step)?;
        // Ingest skips a purged session's log: a purge is for good.
        if machine
            .ledger
            .is_purged(&SessionGid::new(machine.origin.clone(), native.clone()))
        {
            return Ok(json!({"skipped": "purged"}));
        }
        let label = format!("{}/{}", machine.origin, native);
        let entry = machine.own.entry(native.clone());
        let own = match entry {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) if !append => v.insert(OwnSession {
                session: Session {
                    native_id: native.clone(),
                    agent: "claude".into(),
                    parser: "scenario/1".into(),
                    project: "demo".into(),
                    cwd: String::new(),
                    git_branch: String::new(),
                    started_ms: None,
                    ended_ms: None,
                    title: String::new(),
                    first_message: String::new(),
                    parent_session: String::new(),
                    relationship: String::new(),
                    user_message_count: 0,
                },
                messages: Vec::new(),
                usage: Vec::new(),
                marker: 0,
            }),
            std::collections::btree_map::Entry::Vacant(_) => {
                return Err(invalid("native", "append to a session that does not exist"));
            }
        };
        if let Some(title) = step.get("title").and_then(Value::as_str) {
            own.session.title = title.to_owned();
        }
        if let Some(usage) = step.get("usage_tokens").and_then(Value::as_u64) {
            own.usage.push(UsageEvent {
                source: "scenario".into(),
                dedup_key: format!("u{}", own.usage.len()),
                usage: crate::model::TokenUsage {
                    input: usage,
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        let first = own.messages.len() as u64;
        own.messages
            .extend(generated_messages(first, count, &label, size));
        own.marker += 1;
        Ok(json!({"messages": own.messages.len()}))
    }

    fn export(
        &mut self,
        step: &Value,
        now: u64,
        crash_after_writes: Option<usize>,
    ) -> Result<Value, VectorError> {
        let stages = Stages {
            export: true,
            exchange: false,
            import: false,
        };
        let run = self.run_engine(step, "store", None, stages, now, crash_after_writes)?;
        Ok(match run.report {
            Some(_) => json!({"written": run.written}),
            None => json!({"interrupted_after": run.writes}),
        })
    }

    fn exchange(&mut self, step: &Value) -> Result<Value, VectorError> {
        let a = text(step, "a")?.to_owned();
        let b = text(step, "b")?.to_owned();
        let (mut sa, mut sb) = (
            self.stores
                .remove(&a)
                .ok_or_else(|| invalid("a", "no such store"))?,
            self.stores
                .remove(&b)
                .ok_or_else(|| invalid("b", "no such store"))?,
        );
        // Relays pin keys like importers do; a scenario's relay keeps its own ring.
        let mut keyring = crate::keyring::KeyRing::default();
        let report = exchange::run(&mut sa, &mut sb, &mut keyring);
        self.stores.insert(a, sa);
        self.stores.insert(b, sb);
        let (quarantined, deferred) = problem_lists(&report.problems);
        Ok(json!({
            "copied": report.copied.len(),
            "healed": report.healed,
            "quarantined": quarantined,
            "deferred": deferred,
        }))
    }

    fn import(&mut self, step: &Value, now: u64) -> Result<Value, VectorError> {
        let stages = Stages {
            export: false,
            exchange: false,
            import: true,
        };
        let run = self.run_engine(step, "store", None, stages, now, None)?;
        let report = run.report.unwrap_or_default();
        let (quarantined, deferred) = problem_lists(&report.problems);
        Ok(json!({
            "units": run.units,
            "events": run.events,
            "requests": report.requests,
            "quarantined": quarantined,
            "deferred": deferred,
            "events_deferred": report.events_deferred,
            "older_roots": report.older_roots,
        }))
    }

    /// A whole sync run of one machine: its own mirror and the shared target.
    fn sync(&mut self, step: &Value, now: u64) -> Result<Value, VectorError> {
        if step.get("heal").and_then(Value::as_bool) == Some(true) {
            // `sync --heal`: every own key in the target is read back, whatever its file time.
            let machine = self.machine(step)?;
            machine.heal_mark = None;
            machine.last_sync_ms = None;
        }
        let crash = step
            .get("crash_after_writes")
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let run = self.run_engine(step, "mirror", Some("target"), Stages::ALL, now, crash)?;
        let Some(report) = run.report else {
            return Ok(json!({"interrupted_after": run.writes}));
        };
        let (quarantined, deferred) = problem_lists(&report.problems);
        Ok(json!({
            "written": run.written,
            "units": run.units,
            "events": run.events,
            "sent": report.sent,
            "exchanged": report.exchanged,
            "healed": report.healed,
            "requests": report.requests,
            "quarantined": quarantined,
            "deferred": deferred,
            "shadowed_roots": report.shadowed_roots,
            "older_roots": report.older_roots,
            "events_deferred": report.events_deferred,
        }))
    }

    /// Drives the core's sync engine for one machine, answering its requests from the named
    /// stores. `crash_after_writes` stops the run (as a killed process would) once that many
    /// writes landed: a deterministic crash point.
    fn run_engine(
        &mut self,
        step: &Value,
        mirror_field: &'static str,
        target_field: Option<&'static str>,
        stages: Stages,
        now: u64,
        crash_after_writes: Option<usize>,
    ) -> Result<EngineRun, VectorError> {
        let origin: OriginId = parse(step, "origin")?;
        let mirror_name = text(step, mirror_field)?.to_owned();
        let target_name = match target_field {
            Some(f) => Some(text(step, f)?.to_owned()),
            None => None,
        };
        let mut mirror = self
            .stores
            .remove(&mirror_name)
            .ok_or_else(|| invalid(mirror_field, "no such store"))?;
        let mut target = match &target_name {
            Some(name) => match self.stores.remove(name) {
                Some(t) => Some(t),
                None => {
                    self.stores.insert(mirror_name, mirror);
                    return Err(invalid("target", "no such store"));
                }
            },
            None => None,
        };
        let result = match self.machines.get_mut(&origin) {
            Some(machine) => machine.run(
                &mut mirror,
                target.as_mut(),
                stages,
                now,
                crash_after_writes,
            ),
            None => Err(invalid("origin", format!("no machine {origin}"))),
        };
        self.stores.insert(mirror_name, mirror);
        if let (Some(name), Some(t)) = (target_name, target) {
            self.stores.insert(name, t);
        }
        result
    }

    fn edit(&mut self, step: &Value, now: u64) -> Result<Value, VectorError> {
        let gid: SessionGid = parse(step, "session")?;
        let op: Op = serde_json::from_value(get(step, "op")?.clone())
            .map_err(|e| invalid("op", e.to_string()))?;
        let machine = self.machine(step)?;
        let origin = machine.origin.clone();
        let present = if gid.origin == origin {
            machine.own.contains_key(&gid.native)
        } else {
            machine.archive.contains_key(&gid)
        };
        if !present {
            // A host only curates sessions it has.
            return Ok(json!({"skipped": "no such session"}));
        }
        let event =
            match machine
                .ledger
                .edit(&mut machine.clock, now, &origin, gid.clone(), op.clone())
            {
                Ok(event) => event,
                // A host refuses the edit with this message and records nothing.
                Err(e @ crate::ledger::EditError::Purged(_)) => {
                    return Ok(json!({"skipped": e.to_string()}));
                }
                Err(e) => return Err(invalid("op", e.to_string())),
            };
        machine.unpublished.push(event);
        if op == Op::Purge {
            machine.archive.remove(&gid);
            if gid.origin == origin {
                machine.own.remove(&gid.native);
            }
        }
        Ok(json!({"ok": true}))
    }

    fn fault(&mut self, step: &Value) -> Result<Value, VectorError> {
        let kind = text(step, "do")?.to_owned();
        let pattern = step
            .get("key_contains")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let store = self.store(step, "store")?;
        let mut touched = 0;
        match kind.as_str() {
            "drop" => {
                let keys: Vec<String> = store
                    .objects
                    .keys()
                    .filter(|k| k.contains(&pattern))
                    .cloned()
                    .collect();
                for k in keys {
                    if let Some(v) = store.objects.remove(&k) {
                        store.dropped.insert(k, v);
                        touched += 1;
                    }
                }
            }
            "restore" => {
                touched = store.dropped.len();
                let dropped = std::mem::take(&mut store.dropped);
                store.objects.extend(dropped);
            }
            _ => {
                // A corrupted file is a written file: its modification time moves.
                let now = store.now_ms;
                let target = store.objects.iter_mut().find(|(k, _)| k.contains(&pattern));
                if let Some((_, (bytes, modified))) = target
                    && let Some(last) = bytes.last_mut()
                {
                    *last ^= 0x55;
                    *modified = now;
                    touched = 1;
                }
            }
        }
        Ok(json!({"touched": touched}))
    }

    fn gc(&mut self, step: &Value, now: u64) -> Result<Value, VectorError> {
        let grace = step
            .get("grace_ms")
            .and_then(Value::as_u64)
            .unwrap_or(gc::DEFAULT_GRACE_MS);
        let store_name = text(step, "store")?.to_owned();
        let origin: OriginId = parse(step, "origin")?;
        let machine = self
            .machines
            .get(&origin)
            .ok_or(VectorError::Field("origin"))?;
        let reachable = machine.export.reachable();
        let root = machine.export.root.clone();
        let store = self
            .stores
            .get_mut(&store_name)
            .ok_or(VectorError::Field("store"))?;
        let mut listing = list_all(store, &format!("{origin}/"), None).unwrap_or_default();
        listing
            .extend(list_all(store, &ArtifactKey::roots_prefix(&origin), None).unwrap_or_default());
        let observed = self
            .gc_observed
            .get(&(origin.clone(), store_name.clone()))
            .cloned()
            .unwrap_or_default();
        let plan = gc::plan(
            &origin,
            root.as_ref(),
            &reachable,
            &listing,
            &observed,
            now,
            grace,
        );
        for key in &plan.delete {
            let _ = store.delete(key);
        }
        self.gc_observed
            .insert((origin, store_name), plan.observed.clone());
        Ok(
            json!({"deleted": plan.delete.iter().map(|k| k.split('/').nth(1).unwrap_or("")).collect::<Vec<_>>(), "kept_young": plan.kept_young}),
        )
    }

    fn summary(&self) -> Value {
        let mut machines = serde_json::Map::new();
        for (origin, m) in &self.machines {
            let mut sessions = serde_json::Map::new();
            for (native, own) in &m.own {
                sessions.insert(
                    format!("{origin}~{native}"),
                    json!({"messages": own.messages.len(), "digest": digest(&own.messages), "title": own.session.title}),
                );
            }
            for (gid, (session, messages)) in &m.archive {
                sessions.insert(
                    gid.to_string(),
                    json!({"messages": messages.len(), "digest": digest(messages), "title": session.title}),
                );
            }
            let curation: Vec<String> = m
                .ledger
                .registers()
                .map(|(s, f, r)| {
                    format!(
                        "{s} {f} {}",
                        serde_json::to_string(&r.winner.value).unwrap_or_default()
                    )
                })
                .collect();
            machines.insert(
                origin.to_string(),
                json!({
                    "sessions": sessions,
                    "curation": curation,
                    "conflicts": m.ledger.conflicts().len(),
                    "purged": m.ledger.purged().map(|g| g.to_string()).collect::<Vec<_>>(),
                }),
            );
        }
        let stores: BTreeMap<&String, usize> = self
            .stores
            .iter()
            .map(|(n, s)| (n, s.objects.len()))
            .collect();
        json!({"machines": machines, "stores": stores})
    }
}

/// Runs a scenario vector: `origins` (name → `seed` hex), `stores` (names; optional
/// `page_size`), `steps`. Returns per-step reports and the final state of every machine.
pub fn run(v: &Value) -> Result<Value, VectorError> {
    let origins = get(v, "origins")?
        .as_object()
        .ok_or(VectorError::Field("origins"))?;
    // Self-heal lists every own key on every run unless the vector spaces it out.
    let heal_every_ms = v.get("heal_every_ms").and_then(Value::as_u64).unwrap_or(0);
    let mut machines = BTreeMap::new();
    for (name, spec) in origins {
        let origin: OriginId = name
            .parse()
            .map_err(|e: Error| invalid("origins", e.to_string()))?;
        let seed = hex::decode(text(spec, "seed")?).map_err(|e| invalid("seed", e.to_string()))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| invalid("seed", "32 bytes"))?;
        machines.insert(
            origin.clone(),
            Machine {
                key: OriginKey::from_secret(seed),
                export: ExportState::new(origin.clone()),
                origin,
                own: BTreeMap::new(),
                import: ImportState::default(),
                archive: BTreeMap::new(),
                ledger: LedgerState::default(),
                clock: HlcClock::default(),
                unpublished: Vec::new(),
                deferred_events: Vec::new(),
                last_sync_ms: None,
                heal_mark: None,
                heal_every_ms,
            },
        );
    }
    let page_size = v.get("page_size").and_then(Value::as_u64).unwrap_or(1000) as usize;
    let stores = get(v, "stores")?
        .as_array()
        .ok_or(VectorError::Field("stores"))?
        .iter()
        .filter_map(Value::as_str)
        .map(|n| {
            (
                n.to_owned(),
                MemoryStore {
                    page_size,
                    ..MemoryStore::default()
                },
            )
        })
        .collect();
    let mut world = World {
        machines,
        stores,
        gc_observed: BTreeMap::new(),
        log: Vec::new(),
    };
    for step in get(v, "steps")?
        .as_array()
        .ok_or(VectorError::Field("steps"))?
    {
        let report = world.step(step)?;
        world.log.push(report);
    }
    Ok(json!({"steps": world.log, "final": world.summary()}))
}
