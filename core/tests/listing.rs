//! Buckets list their sessions (format §8), so a reader shows a machine's sessions before it
//! has fetched their manifests and messages: the browser's first visit (issue 13).

mod common;

use std::collections::BTreeMap;

use agentsync_core::conformance::scenario::MemoryStore;
use agentsync_core::sync::engine::{
    Input, ListedSession, Output, SessionData, Stages, SyncConfig, SyncEngine, SyncState,
};
use agentsync_core::sync::store::{Store, StoreId, answer_one, list_all};
use agentsync_core::{Artifact, ArtifactKey, Bucket, Message, OriginKey, Session, SessionGid};

/// One machine: its sessions (what its archive holds), its persisted sync state, its mirror.
struct Machine {
    origin: &'static str,
    seed: u8,
    sessions: BTreeMap<String, (Session, Vec<Message>)>,
    state: SyncState,
    mirror: MemoryStore,
    /// Shows a list while it syncs (the browser).
    list_ahead: bool,
    /// `SyncEngine::with_import_window`, if set.
    import_window: Option<u64>,
}

/// What one run did, in order.
#[derive(Default)]
struct Trace {
    /// Sessions the engine read from the archive, with the ordinal it read from.
    reads: Vec<(String, u64)>,
    listed: Vec<ListedSession>,
    /// Outputs that changed the archive: "listed" or "apply".
    order: Vec<&'static str>,
    applied: Vec<(SessionGid, Session, u64)>,
    buckets_written: usize,
    /// States the run handed out to persist: "exported", "imported".
    persisted: Vec<&'static str>,
}

fn message(ordinal: u64) -> Message {
    Message {
        ordinal,
        role: if ordinal.is_multiple_of(2) {
            "user"
        } else {
            "assistant"
        }
        .into(),
        content: format!("message {ordinal}"),
        ..Message::default()
    }
}

impl Machine {
    fn new(origin: &'static str, seed: u8, sessions: usize) -> Self {
        let mut machine = Machine {
            origin,
            seed,
            sessions: BTreeMap::new(),
            state: SyncState::default(),
            mirror: MemoryStore::default(),
            list_ahead: true,
            import_window: None,
        };
        for i in 0..sessions {
            let native = format!("s{i:03}");
            let mut session = common::session(&native);
            session.title = format!("session number {i}");
            let messages = (0..(i as u64 % 5 + 1)).map(message).collect();
            machine.sessions.insert(native, (session, messages));
        }
        machine
    }

    fn append(&mut self, native: &str) {
        let (_, messages) = self.sessions.get_mut(native).unwrap();
        messages.push(message(messages.len() as u64));
    }

    fn sync(&mut self, target: &mut MemoryStore) -> Trace {
        self.state.revisions = self
            .sessions
            .iter()
            .map(|(n, (_, m))| (n.parse().unwrap(), m.len().to_string()))
            .collect();
        let config = SyncConfig {
            origin: self.origin.parse().unwrap(),
            key: OriginKey::from_secret([self.seed; 32]),
            now_ms: 1_764_078_194_000,
            target: true,
            stages: Stages::ALL,
            last_sync_ms: None,
            heal_every_ms: 0,
        };
        let mut engine = SyncEngine::new(config, self.state.clone());
        if self.list_ahead {
            engine = engine.listing_ahead();
        }
        if let Some(bytes) = self.import_window {
            engine = engine.with_import_window(bytes);
        }
        let mut trace = Trace::default();
        loop {
            match engine.poll().unwrap() {
                Output::Store(requests) => {
                    let responses = requests
                        .iter()
                        .map(|r| {
                            if r.request.subject().contains("/buckets/")
                                && matches!(
                                    r.request,
                                    agentsync_core::sync::store::Request::Put { .. }
                                )
                                && r.store == StoreId::Mirror
                            {
                                trace.buckets_written += 1;
                            }
                            match r.store {
                                StoreId::Mirror => answer_one(&mut self.mirror, &r.request),
                                StoreId::Target => answer_one(target, &r.request),
                            }
                        })
                        .collect();
                    engine.handle(Input::Store(responses)).unwrap();
                }
                Output::ReadSessions(reads) => {
                    let data = reads
                        .iter()
                        .map(|r| {
                            trace.reads.push((r.native.to_string(), r.from_ordinal));
                            let (session, messages) = &self.sessions[r.native.as_str()];
                            SessionData {
                                session: session.clone(),
                                messages: messages[r.from_ordinal as usize..].to_vec(),
                                usage_events: Vec::new(),
                            }
                        })
                        .collect();
                    engine.handle(Input::Sessions(data)).unwrap();
                }
                Output::CheckPresent(gids) => {
                    engine
                        .handle(Input::Present(vec![true; gids.len()]))
                        .unwrap();
                }
                Output::Listed(listed) => {
                    trace.order.push("listed");
                    trace.listed.extend(listed);
                }
                Output::Apply(units) => {
                    trace.order.push("apply");
                    trace.applied.extend(
                        units
                            .into_iter()
                            .map(|u| (u.gid, u.session, u.message_count)),
                    );
                }
                Output::Exported { change, .. } => {
                    trace.persisted.push("exported");
                    self.state.export = Some(change.applied_to(self.state.export.take()));
                }
                Output::Imported(state) => {
                    trace.persisted.push("imported");
                    self.state.import = *state;
                }
                Output::Replayed(r) => {
                    self.state.ledger = r.ledger;
                    self.state.clock = r.clock;
                }
                Output::Progress(_) => {}
                Output::Done(report) => {
                    assert!(report.problems.is_empty(), "{:?}", report.problems);
                    return trace;
                }
            }
        }
    }
}

/// Every bucket of `origin` in `store`, decoded.
fn buckets(store: &mut MemoryStore, origin: &str) -> Vec<Bucket> {
    list_all(store, &format!("{origin}/buckets/"), None)
        .unwrap()
        .into_iter()
        .map(|l| {
            let key: ArtifactKey = l.key.parse().unwrap();
            let bytes = store.get(&l.key).unwrap().unwrap();
            match Artifact::open(&key, &bytes).unwrap() {
                Artifact::Bucket(b) => b,
                other => panic!("{} is a {:?}", l.key, other.kind()),
            }
        })
        .collect()
}

/// The newest root's buckets only (older buckets stay in the store until GC).
fn current_buckets(store: &mut MemoryStore, origin: &str) -> Vec<Bucket> {
    let roots = list_all(store, &format!("roots/{origin}/"), None).unwrap();
    let newest = roots.last().unwrap().key.clone();
    let key: ArtifactKey = newest.parse().unwrap();
    let Artifact::Root { root, .. } =
        Artifact::open(&key, &store.get(&newest).unwrap().unwrap()).unwrap()
    else {
        panic!("not a root");
    };
    let ids: Vec<_> = root.buckets.iter().map(|b| b.id).collect();
    buckets(store, origin)
        .into_iter()
        .filter(|b| {
            let canonical = b.encode().unwrap();
            ids.contains(&agentsync_core::ArtifactId::of(&canonical))
        })
        .collect()
}

#[test]
fn every_bucket_entry_lists_its_session_as_the_manifest_states_it() {
    let mut target = MemoryStore::default();
    let mut laptop = Machine::new("laptop-a1b2c3", 1, 300);
    laptop.sync(&mut target);

    let buckets = current_buckets(&mut target, "laptop-a1b2c3");
    assert_eq!(buckets.len(), 4, "300 sessions: 2 bits");
    let mut seen = 0;
    for bucket in &buckets {
        for entry in &bucket.entries {
            let listing = entry.listing.as_ref().expect("every entry is listed");
            let (session, messages) = &laptop.sessions[entry.session.as_str()];
            assert_eq!(&listing.session, session);
            assert_eq!(listing.message_count, messages.len() as u64);
            seen += 1;
        }
    }
    assert_eq!(seen, 300);
}

#[test]
fn a_reader_lists_a_machines_sessions_before_it_imports_them() {
    let mut target = MemoryStore::default();
    let mut laptop = Machine::new("laptop-a1b2c3", 1, 300);
    laptop.sync(&mut target);

    let mut reader = Machine::new("reader-0d0e0f", 2, 0);
    let trace = reader.sync(&mut target);
    assert_eq!(trace.order.first(), Some(&"listed"), "{:?}", trace.order);
    let first_apply = trace.order.iter().position(|o| *o == "apply").unwrap();
    assert!(
        trace.order[first_apply..].iter().all(|o| *o == "apply"),
        "every listing comes before the first import: {:?}",
        trace.order
    );
    assert_eq!(trace.listed.len(), 300);
    assert!(
        trace.persisted.contains(&"imported"),
        "{:?}",
        trace.persisted
    );
    // What was listed is what the import then applies.
    let listed: BTreeMap<_, _> = trace
        .listed
        .iter()
        .map(|l| (l.gid.clone(), (&l.listing.session, l.listing.message_count)))
        .collect();
    assert_eq!(trace.applied.len(), 300);
    for (gid, session, count) in &trace.applied {
        assert_eq!(listed[gid], (session, *count), "{gid}");
    }

    // The laptop appends to one session: the reader lists that session only (the others of
    // its bucket are imported at the manifest the bucket names), then imports it.
    laptop.append("s007");
    laptop.sync(&mut target);
    let trace = reader.sync(&mut target);
    let listed: Vec<String> = trace.listed.iter().map(|l| l.gid.to_string()).collect();
    assert_eq!(listed, ["laptop-a1b2c3~s007"]);
    assert_eq!(trace.listed[0].listing.message_count, 4);
    assert_eq!(trace.applied.len(), 1);

    // Nothing new: nothing listed, and no state to write (at 10 k sessions the import state
    // is megabytes: writing it made most of a no-op sync's time, issue 14).
    let trace = reader.sync(&mut target);
    assert!(trace.listed.is_empty());
    assert!(trace.persisted.is_empty(), "{:?}", trace.persisted);
    assert!(laptop.sync(&mut target).persisted.is_empty());

    // A host that shows no list while it syncs (the CLI) is handed none, and imports as before.
    let mut cli = Machine::new("desktop-778899", 3, 0);
    cli.list_ahead = false;
    let trace = cli.sync(&mut target);
    assert!(trace.listed.is_empty());
    assert_eq!(trace.applied.len(), 300);
}

#[test]
fn a_change_reads_the_records_of_its_buckets_other_sessions_only() {
    let mut target = MemoryStore::default();
    let mut laptop = Machine::new("laptop-a1b2c3", 1, 300);
    let first = laptop.sync(&mut target);
    assert!(
        first.reads.iter().all(|(_, from)| *from == 0),
        "a first export reads every session once, from the start"
    );
    assert_eq!(first.reads.len(), 300);

    laptop.append("s007");
    let trace = laptop.sync(&mut target);
    let bits = 2;
    let bucket = agentsync_core::checkpoint::bucket_of(&"s007".parse().unwrap(), bits);
    let neighbours: Vec<String> = laptop
        .sessions
        .keys()
        .filter(|n| {
            *n != "s007"
                && agentsync_core::checkpoint::bucket_of(&n.parse().unwrap(), bits) == bucket
        })
        .cloned()
        .collect();
    let (changed, rest) = trace.reads.split_first().unwrap();
    assert_eq!(changed.0, "s007");
    let read: Vec<String> = rest.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        read, neighbours,
        "only the changed bucket's other sessions are read"
    );
    for (native, from) in rest {
        assert_eq!(
            *from,
            laptop.sessions[native].1.len() as u64,
            "{native}: its record only (from its message count), no messages"
        );
    }
    assert_eq!(trace.buckets_written, 1);
    assert!(
        current_buckets(&mut target, "laptop-a1b2c3")
            .iter()
            .flat_map(|b| &b.entries)
            .all(|e| e.listing.is_some())
    );
}

#[test]
fn a_state_saved_before_listings_lists_every_bucket_once() {
    let mut target = MemoryStore::default();
    let mut laptop = Machine::new("laptop-a1b2c3", 1, 300);
    laptop.sync(&mut target);

    // The state an older version saved: its checkpoint has no `listed` flag.
    let mut json = serde_json::to_value(laptop.state.export.as_ref().unwrap()).unwrap();
    json["checkpoint"]
        .as_object_mut()
        .unwrap()
        .remove("listed")
        .expect("the checkpoint says whether its buckets are listed");
    laptop.state.export = Some(serde_json::from_value(json).unwrap());

    let trace = laptop.sync(&mut target);
    assert_eq!(trace.reads.len(), 300, "every record read once");
    assert_eq!(trace.buckets_written, 4, "every bucket rewritten");
    let trace = laptop.sync(&mut target);
    assert!(trace.reads.is_empty());
    assert_eq!(trace.buckets_written, 0);
}

#[test]
fn a_session_the_archive_lost_keeps_its_entry_unlisted_and_is_never_read() {
    let mut target = MemoryStore::default();
    let mut laptop = Machine::new("laptop-a1b2c3", 1, 300);
    laptop.sync(&mut target);
    // A rebuild could not restore s005 (the store lost it): the archive no longer holds it,
    // but the checkpoint still names it. s006 changes, so s005's bucket may be rewritten.
    laptop.sessions.remove("s005");
    laptop.append("s006");
    let mut json = serde_json::to_value(laptop.state.export.as_ref().unwrap()).unwrap();
    json["checkpoint"].as_object_mut().unwrap().remove("listed");
    laptop.state.export = Some(serde_json::from_value(json).unwrap());

    let trace = laptop.sync(&mut target);
    assert!(trace.reads.iter().all(|(n, _)| n != "s005"), "never read");
    let entries: Vec<_> = current_buckets(&mut target, "laptop-a1b2c3")
        .into_iter()
        .flat_map(|b| b.entries)
        .collect();
    assert_eq!(entries.len(), 300, "still in the checkpoint");
    for e in &entries {
        assert_eq!(
            e.listing.is_some(),
            e.session.as_str() != "s005",
            "{}",
            e.session
        );
    }
}

#[test]
fn the_import_window_bounds_what_one_apply_holds() {
    let mut target = MemoryStore::default();
    let mut laptop = Machine::new("laptop-a1b2c3", 1, 40);
    laptop.sync(&mut target);

    let mut whole = Machine::new("desktop-778899", 3, 0);
    let trace = whole.sync(&mut target);
    let applies = |t: &Trace| t.order.iter().filter(|o| **o == "apply").count();
    assert_eq!(applies(&trace), 1, "{:?}", trace.order);
    assert_eq!(trace.applied.len(), 40);

    // A window smaller than any segment: one session per round, and still every session.
    let mut narrow = Machine::new("reader-0d0e0f", 2, 0);
    narrow.import_window = Some(1);
    let trace = narrow.sync(&mut target);
    assert_eq!(applies(&trace), 40, "{:?}", trace.order);
    let mut gids: Vec<_> = trace.applied.iter().map(|(g, ..)| g.to_string()).collect();
    gids.dedup();
    assert_eq!(gids.len(), 40);
}
