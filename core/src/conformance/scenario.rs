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
use crate::events::{EventBatch, Op};
use crate::hlc::HlcClock;
use crate::ledger::{LedgerState, Projection, SignedEvent};
use crate::model::{Message, Session, UsageEvent};
use crate::names::{ArtifactKey, NativeId, OriginId, SessionGid};
use crate::segment::message_line;
use crate::signature::OriginKey;
use crate::sync::exchange;
use crate::sync::export::{ExportState, SessionExport};
use crate::sync::gc;
use crate::sync::import::{self, Import, ImportState};
use crate::sync::store::{ListPage, Listing, PutOutcome, Store, StoreError, list_all};

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
        if self.objects.contains_key(key) {
            return Ok(PutOutcome::Exists);
        }
        self.objects
            .insert(key.to_owned(), (bytes.to_vec(), self.now_ms));
        Ok(PutOutcome::Created)
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
        interrupt_after: Option<usize>,
    ) -> Result<Value, VectorError> {
        let store_name = text(step, "store")?.to_owned();
        let machine = self.machine(step)?;
        let origin = machine.origin.clone();
        let mut exporter = machine.export.begin();
        for (native, own) in &machine.own {
            let marker = own.marker.to_string();
            if let Some(start) = machine.export.tail_start(native, &marker) {
                let from = usize::try_from(start)
                    .unwrap_or(usize::MAX)
                    .min(own.messages.len());
                exporter
                    .session(SessionExport {
                        marker,
                        session: own.session.clone(),
                        messages: &own.messages[from..],
                        usage_events: own.usage.clone(),
                    })
                    .map_err(|e| invalid("export", e.to_string()))?;
            }
        }
        let gone: Vec<NativeId> = machine
            .export
            .sessions
            .keys()
            .filter(|n| !machine.own.contains_key(*n))
            .cloned()
            .collect();
        for native in &gone {
            exporter.remove(native);
        }
        let events = std::mem::take(&mut machine.unpublished);
        let batch = if events.is_empty() {
            None
        } else {
            let batch = EventBatch {
                origin: origin.clone(),
                events: events.iter().map(|e| e.event.clone()).collect(),
            };
            Some(
                batch
                    .seal(&machine.key)
                    .map_err(|e| invalid("export", e.to_string()))?,
            )
        };
        let store = self
            .stores
            .get_mut(&store_name)
            .ok_or_else(|| invalid("store", "no such store"))?;
        let newest_seen = crate::sync::export::newest_root_seq(store, &origin);
        let machine = self
            .machines
            .get_mut(&origin)
            .ok_or(VectorError::Field("origin"))?;
        let (plan, next) = exporter
            .commit(now as i64, newest_seen, &machine.key)
            .map_err(|e| invalid("export", e.to_string()))?;
        let store = self
            .stores
            .get_mut(&store_name)
            .ok_or(VectorError::Field("store"))?;
        let mut written = Vec::new();
        for (i, encoded) in plan.in_write_order().chain(batch.as_ref()).enumerate() {
            if interrupt_after.is_some_and(|n| i >= n) {
                machine.unpublished = events;
                return Ok(json!({"interrupted_after": written.len()}));
            }
            let stored = encoded
                .seal(None)
                .map_err(|e| invalid("export", e.to_string()))?;
            if let Ok(PutOutcome::Created) = store.put_if_absent(&encoded.key.to_string(), &stored)
            {
                written.push(encoded.key.kind().name());
            }
        }
        machine.export = next;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for k in written {
            *kinds.entry(k).or_default() += 1;
        }
        Ok(json!({"written": kinds}))
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
        let report = exchange::exchange(&mut sa, &mut sb, &mut keyring);
        self.stores.insert(a, sa);
        self.stores.insert(b, sb);
        Ok(json!({
            "copied": report.copied.len(),
            "quarantined": report.quarantined.iter().map(|p| format!("{} {}", p.class, p.key)).collect::<Vec<_>>(),
            "deferred": report.deferred.iter().map(|p| format!("{} {}", p.class, p.key)).collect::<Vec<_>>(),
        }))
    }

    fn import(&mut self, step: &Value, now: u64) -> Result<Value, VectorError> {
        let store_name = text(step, "store")?.to_owned();
        let origin: OriginId = parse(step, "origin")?;
        let machine = self
            .machines
            .get_mut(&origin)
            .ok_or(VectorError::Field("origin"))?;
        let purged: BTreeSet<SessionGid> = machine.ledger.purged().cloned().collect();
        let store = self
            .stores
            .get_mut(&store_name)
            .ok_or(VectorError::Field("store"))?;
        let report = import::run(
            Import::new(origin.clone(), machine.import.clone(), purged),
            store,
        );
        for unit in &report.units {
            let entry = machine
                .archive
                .entry(unit.gid.clone())
                .or_insert_with(|| (unit.session.clone(), Vec::new()));
            entry.0 = unit.session.clone();
            entry
                .1
                .truncate(usize::try_from(unit.from_ordinal).unwrap_or(usize::MAX));
            entry.1.extend(unit.messages.iter().cloned());
        }
        machine.import = report.state.clone();
        let mut events = std::mem::take(&mut machine.deferred_events);
        events.extend(report.events.iter().cloned());
        let present: BTreeSet<SessionGid> = machine
            .archive
            .keys()
            .cloned()
            .chain(
                machine
                    .own
                    .keys()
                    .map(|n| SessionGid::new(origin.clone(), n.clone())),
            )
            .collect();
        let replay = machine
            .ledger
            .replay(&mut machine.clock, now, events.clone(), &|g| {
                present.contains(g)
            });
        let deferred_keys: BTreeSet<_> = replay.deferred.iter().map(|d| d.key.clone()).collect();
        machine.deferred_events = events
            .into_iter()
            .filter(|e| deferred_keys.contains(&e.key()))
            .collect();
        for p in &replay.projections {
            if let Projection::Purge { session } = p {
                machine.archive.remove(session);
                if session.origin == origin {
                    machine.own.remove(&session.native);
                }
            }
        }
        Ok(json!({
            "units": report.units.iter().map(|u| json!([u.gid.to_string(), u.from_ordinal, u.messages.len()])).collect::<Vec<_>>(),
            "events": report.events.len(),
            "requests": report.requests,
            "quarantined": report.quarantined.iter().map(|p| format!("{} {}", p.class, p.key)).collect::<Vec<_>>(),
            "deferred": report.deferred.iter().map(|p| format!("{} {}", p.class, p.key)).collect::<Vec<_>>(),
            "events_deferred": replay.deferred.len(),
        }))
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
        let event = machine
            .ledger
            .edit(&mut machine.clock, now, &origin, gid.clone(), op.clone())
            .map_err(|e| invalid("op", e.to_string()))?;
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
                let target = store.objects.iter_mut().find(|(k, _)| k.contains(&pattern));
                if let Some(last) = target.and_then(|(_, (bytes, _))| bytes.last_mut()) {
                    *last ^= 0x55;
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
        let plan = gc::plan(&origin, root.as_ref(), &reachable, &listing, now, grace);
        for key in &plan.delete {
            let _ = store.delete(key);
        }
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
