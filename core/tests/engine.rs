//! The sync engine's driving contract, and edits that must never wedge a sync (issue 17,
//! item 3).

mod common;

use agentsync_core::conformance::scenario::MemoryStore;
use agentsync_core::events::{Event, Op};
use agentsync_core::ledger::SignedEvent;
use agentsync_core::sync::engine::{
    EngineError, Input, Output, SessionData, Stages, SyncConfig, SyncEngine, SyncReport, SyncState,
};
use agentsync_core::sync::problem::ProblemClass;
use agentsync_core::sync::store::{Request, Response, Store, StoreRequest, answer_one, list_all};
use agentsync_core::{EventsMark, Hlc, Message, OriginKey, limits};

const ORIGIN: &str = "laptop-a1b2c3";

fn config() -> SyncConfig {
    SyncConfig {
        origin: ORIGIN.parse().unwrap(),
        key: OriginKey::from_secret([1; 32]),
        now_ms: 1_764_078_194_000,
        target: false,
        stages: Stages::ALL,
        last_sync_ms: None,
        heal_every_ms: 0,
    }
}

fn edit(n: u64, op: Op) -> SignedEvent {
    let event = Event {
        hlc: Hlc::new(1_764_078_000_000 + n, 0).unwrap(),
        prev: None,
        session: format!("{ORIGIN}~s1").parse().unwrap(),
        op,
    };
    SignedEvent {
        origin: ORIGIN.parse().unwrap(),
        id: event.id(),
        event,
    }
}

/// What the archive holds for session `native`: two messages, the second with an empty role
/// when the name says `bad` (a row an older ingest could have written; no reader accepts it).
fn session_data(native: &str) -> SessionData {
    let message = |ordinal: u64, role: &str| Message {
        ordinal,
        role: role.into(),
        content: format!("{native} {ordinal}"),
        ..Message::default()
    };
    let role = if native.contains("bad") {
        ""
    } else {
        "assistant"
    };
    SessionData {
        session: common::session(native),
        messages: vec![message(0, "user"), message(1, role)],
        usage_events: Vec::new(),
    }
}

/// Runs an engine to the end against one memory store; returns the report and the
/// events the engine said were published.
fn run(engine: SyncEngine, store: &mut MemoryStore) -> (SyncReport, Vec<SignedEvent>) {
    drive(engine, |r| answer_one(store, &r.request))
}

/// Runs an engine to the end, answering every store request with `answer`.
fn drive(
    mut engine: SyncEngine,
    mut answer: impl FnMut(&StoreRequest) -> Response,
) -> (SyncReport, Vec<SignedEvent>) {
    let mut published = Vec::new();
    loop {
        match engine.poll().unwrap() {
            Output::Store(requests) => {
                let responses = requests.iter().map(&mut answer).collect();
                engine.handle(Input::Store(responses)).unwrap();
            }
            Output::ReadSessions(reads) => {
                let data = reads
                    .iter()
                    .map(|r| session_data(r.native.as_str()))
                    .collect();
                engine.handle(Input::Sessions(data)).unwrap();
            }
            Output::CheckPresent(gids) => {
                engine
                    .handle(Input::Present(vec![true; gids.len()]))
                    .unwrap();
            }
            Output::Exported { published: p, .. } => published = p,
            Output::Done(report) => {
                assert_eq!(engine.poll(), Err(EngineError::Finished));
                return (*report, published);
            }
            _ => {}
        }
    }
}

#[test]
fn answers_must_match_what_was_asked() {
    let mut engine = SyncEngine::new(config(), SyncState::default());
    let Output::Progress(_) = engine.poll().unwrap() else {
        panic!("a run starts with progress");
    };
    let Output::Store(requests) = engine.poll().unwrap() else {
        panic!("then lists the roots");
    };
    assert!(matches!(requests[0].request, Request::List { .. }));
    // Polling again before answering is an error, as is any answer of the wrong kind or size.
    assert_eq!(engine.poll(), Err(EngineError::Unanswered));
    assert!(matches!(
        engine.handle(Input::Present(vec![])),
        Err(EngineError::UnexpectedInput { .. })
    ));
    assert_eq!(
        engine.handle(Input::Store(vec![])),
        Err(EngineError::ResponseCount {
            expected: requests.len(),
            got: 0
        })
    );
    let mut store = MemoryStore::default();
    let responses: Vec<Response> = requests
        .iter()
        .map(|r| answer_one(&mut store, &r.request))
        .collect();
    engine.handle(Input::Store(responses)).unwrap();
    let (report, _) = run(engine, &mut store);
    assert!(
        report.exported >= 1,
        "an empty archive still gets a root: {report:?}"
    );
}

#[test]
fn issue_17_item_3_an_edit_over_the_reader_limit_never_wedges_sync() {
    let too_long = edit(
        1,
        Op::SetNote {
            note: "x".repeat(limits::MAX_NOTE + 1),
        },
    );
    let fine = edit(2, Op::Star);
    let state = SyncState {
        unpublished: vec![too_long.clone(), fine.clone()],
        ..SyncState::default()
    };
    let mut store = MemoryStore::default();
    let (report, published) = run(SyncEngine::new(config(), state), &mut store);
    assert_eq!(published, vec![fine], "the valid edit goes out");
    let problem = report
        .problems
        .iter()
        .find(|p| p.key.contains("op 11"))
        .expect("the oversized edit is reported");
    assert_eq!(problem.class, ProblemClass::StringLimit);
    assert_eq!(report.events_published, 1);
}

#[test]
fn issue_17_item_3_batches_are_split_under_the_readers_limits() {
    let events: Vec<SignedEvent> = (0..limits::MAX_EVENTS_PER_BATCH as u64 * 2 + 5)
        .map(|n| edit(n, Op::Star))
        .collect();
    let state = SyncState {
        unpublished: events.clone(),
        ..SyncState::default()
    };
    let mut store = MemoryStore::default();
    let (report, published) = run(SyncEngine::new(config(), state), &mut store);
    assert_eq!(published.len(), events.len());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let batches = list_all(&mut store, &format!("{ORIGIN}/events/"), None).unwrap();
    assert_eq!(batches.len(), 3);
    let mut read = 0;
    for b in batches {
        let key = b.key.parse().unwrap();
        let bytes = store.get(&b.key).unwrap().unwrap();
        match agentsync_core::Artifact::open(&key, &bytes).unwrap() {
            agentsync_core::Artifact::Events(batch) => read += batch.batch.events.len(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(read, events.len(), "every event readable by the reader");
}

/// Issue 17 item 6: a manifest that understates its segments' sizes (a buggy or hostile
/// origin) cannot make an import hold more than the declared sizes: each segment is asked for
/// with a bound from its declared size, and one over it is rejected unread.
#[test]
fn issue_17_item_6_declared_sizes_bound_what_is_read() {
    use agentsync_core::sync::export::{ExportState, SessionExport};
    use agentsync_core::sync::import::{Import, run as import_run};
    use agentsync_core::{Artifact, Checkpoint, Encoded, Manifest, Message};

    let origin: agentsync_core::OriginId = ORIGIN.parse().unwrap();
    let key = OriginKey::from_secret([1; 32]);
    let session = common::session("s1");
    let messages: Vec<Message> = (0..300)
        .map(|ordinal| Message {
            ordinal,
            role: "user".into(),
            content: format!("message {ordinal} {}", "x".repeat(200)),
            ..Message::default()
        })
        .collect();
    let mut exporter = ExportState::new(origin.clone()).begin();
    exporter
        .session(SessionExport {
            marker: "1".into(),
            session,
            messages: &messages,
            usage_events: Vec::new(),
        })
        .unwrap();
    let (plan, _) = exporter.commit(0, 0, EventsMark::NoBatch, &key).unwrap();
    let mut store = MemoryStore::default();
    for e in &plan.segments {
        store
            .put_if_absent(&e.key.to_string(), &e.seal(None).unwrap())
            .unwrap();
    }
    // The origin's manifest, re-signed into a root with every segment declared as 10 bytes.
    let Artifact::Manifest(mut manifest) =
        Artifact::decode(plan.manifests[0].key.kind(), &plan.manifests[0].canonical).unwrap()
    else {
        panic!("a manifest")
    };
    let real: Manifest = (*manifest).clone();
    for seg in &mut manifest.segments {
        seg.bytes = 10;
    }
    let forged = Encoded::manifest(&manifest).unwrap();
    let mut checkpoint = Checkpoint::new(origin.clone());
    checkpoint.insert("s1".parse().unwrap(), forged.id());
    let committed = checkpoint.commit(1, 0, EventsMark::NoBatch, &key).unwrap();
    for e in std::iter::once(&forged)
        .chain(&committed.buckets)
        .chain(std::iter::once(&committed.root))
    {
        store
            .put_if_absent(&e.key.to_string(), &e.seal(None).unwrap())
            .unwrap();
    }
    let report = import_run(
        Import::new(
            "desktop-d4e5f6".parse().unwrap(),
            Default::default(),
            Default::default(),
        ),
        &mut store,
    );
    assert!(
        report.units.is_empty(),
        "nothing imported from a lying manifest"
    );
    let size_limits = report
        .problems
        .iter()
        .filter(|p| p.class == ProblemClass::SizeLimit && p.key.contains("/segments/"))
        .count();
    assert_eq!(size_limits, real.segments.len(), "{:?}", report.problems);
}

/// Issue 17 (negative vector "segment missing a role", writer side): a session no reader would
/// accept is reported as deferred on every run and keeps its previous export, and everything
/// else is published: one bad row never wedges export.
#[test]
fn issue_17_a_session_with_an_empty_role_never_wedges_export() {
    let mut store = MemoryStore::default();
    let state = SyncState {
        revisions: vec![
            ("good-1".parse().unwrap(), "1".into()),
            ("bad-1".parse().unwrap(), "1".into()),
            ("good-2".parse().unwrap(), "1".into()),
        ],
        ..SyncState::default()
    };
    let (report, _) = run(SyncEngine::new(config(), state.clone()), &mut store);
    let bad: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.key == format!("session {ORIGIN}~bad-1"))
        .collect();
    assert_eq!(bad.len(), 1, "{:#?}", report.problems);
    assert!(!bad[0].is_quarantined(), "deferred, not quarantined");
    assert!(bad[0].reason.contains("empty role"), "{}", bad[0].reason);
    let manifests = list_all(&mut store, &format!("{ORIGIN}/manifests/"), None).unwrap();
    assert_eq!(manifests.len(), 2, "both good sessions are published");
    let roots = list_all(&mut store, &format!("roots/{ORIGIN}/"), None).unwrap();
    assert_eq!(roots.len(), 1);
    // Every later run reports it again (the bad session is read again, nothing else).
    let (again, _) = run(SyncEngine::new(config(), state), &mut store);
    assert!(
        again
            .problems
            .iter()
            .any(|p| p.key == format!("session {ORIGIN}~bad-1"))
    );
}

/// The exchange relays the segments this run sealed without decoding them again, but only a
/// copy that reads back byte for byte as sealed: a mirror that damaged one on its way to disk
/// must not pass it on to the target.
#[test]
fn a_segment_sealed_this_run_is_relayed_only_as_it_was_sealed() {
    for damage in [false, true] {
        let mut mirror = MemoryStore::default();
        let mut target = MemoryStore::default();
        let engine = SyncEngine::new(
            SyncConfig {
                target: true,
                ..config()
            },
            SyncState {
                revisions: vec![("s1".parse().unwrap(), "1".into())],
                ..SyncState::default()
            },
        );
        let report = run_two(engine, &mut mirror, &mut target, damage);
        let segments = list_all(&mut target, &format!("{ORIGIN}/segments/"), None).unwrap();
        if damage {
            assert!(segments.is_empty(), "{segments:?}");
            assert!(
                report.problems.iter().any(|p| p.key.contains("/segments/")
                    && p.disposition == agentsync_core::sync::problem::Disposition::Quarantined),
                "{:?}",
                report.problems
            );
        } else {
            assert_eq!(segments.len(), 1);
            assert!(report.problems.is_empty(), "{:?}", report.problems);
        }
    }
}

/// [`run`] with a mirror and a target; `damage` flips the last byte of every segment the
/// engine puts into the mirror.
fn run_two(
    engine: SyncEngine,
    mirror: &mut MemoryStore,
    target: &mut MemoryStore,
    damage: bool,
) -> SyncReport {
    use agentsync_core::sync::store::StoreId;
    let answer = |r: &StoreRequest| match (&r.store, &r.request) {
        (StoreId::Mirror, Request::Put { key, bytes }) if damage && key.contains("/segments/") => {
            let mut bytes = bytes.clone();
            if let Some(last) = bytes.last_mut() {
                *last ^= 1;
            }
            let request = Request::Put {
                key: key.clone(),
                bytes,
            };
            answer_one(mirror, &request)
        }
        (StoreId::Mirror, request) => answer_one(mirror, request),
        (StoreId::Target, request) => answer_one(target, request),
    };
    drive(engine, answer).0
}

/// A host that encodes a batch's sessions on threads of its own, last first.
struct EncodingThreads;

impl agentsync_core::Compressor for EncodingThreads {
    fn compress(&self, canonical: &[u8]) -> agentsync_core::Result<Vec<u8>> {
        agentsync_core::RuzstdCompressor.compress(canonical)
    }

    fn encode_all(&self, mut jobs: Vec<agentsync_core::frame::EncodeJob<'_>>) {
        std::thread::scope(|scope| {
            while let Some(job) = jobs.pop() {
                scope.spawn(job);
            }
        });
    }
}

/// Sessions encoded at once on a host's threads, in any order, publish the same artifacts and
/// report the same problems as sessions encoded one by one.
#[test]
fn sessions_encoded_on_host_threads_export_as_one_by_one() {
    let revisions: Vec<_> = (0..40)
        .map(|n| {
            let native = if n % 13 == 5 {
                format!("bad-{n}")
            } else {
                format!("s-{n}")
            };
            (native.parse().unwrap(), "1".to_string())
        })
        .collect();
    let mut published = Vec::new();
    for threads in [false, true] {
        let compressor: Box<dyn agentsync_core::Compressor + Send> = if threads {
            Box::new(EncodingThreads)
        } else {
            Box::new(agentsync_core::RuzstdCompressor)
        };
        let engine = SyncEngine::new(
            config(),
            SyncState {
                revisions: revisions.clone(),
                ..SyncState::default()
            },
        )
        .with_compressor(compressor);
        let mut store = MemoryStore::default();
        let (report, _) = run(engine, &mut store);
        let keys = list_all(&mut store, "", None).unwrap();
        let artifacts: Vec<(String, Option<Vec<u8>>)> = keys
            .into_iter()
            .map(|listing| {
                let k = listing.key;
                let bytes = match answer_one(&mut store, &Request::get(k.clone())) {
                    Response::Got(bytes) => bytes,
                    other => panic!("{k}: {other:?}"),
                };
                (k, bytes)
            })
            .collect();
        assert_eq!(report.problems.len(), 3, "{:?}", report.problems);
        published.push((artifacts, report.problems));
    }
    assert!(published[0].0.len() > 70, "{}", published[0].0.len());
    assert_eq!(published[0], published[1]);
}
