//! The sync engine's driving contract, and edits that must never wedge a sync (issue 17,
//! item 3).

use agentsync_core::conformance::scenario::MemoryStore;
use agentsync_core::events::{Event, Op};
use agentsync_core::ledger::SignedEvent;
use agentsync_core::sync::engine::{
    EngineError, Input, Output, Stages, SyncConfig, SyncEngine, SyncReport, SyncState,
};
use agentsync_core::sync::problem::ProblemClass;
use agentsync_core::sync::store::{Request, Response, Store, answer_one, list_all};
use agentsync_core::{Hlc, OriginKey, limits};

const ORIGIN: &str = "laptop-a1b2c3";

fn config() -> SyncConfig {
    SyncConfig {
        origin: ORIGIN.parse().unwrap(),
        key: OriginKey::from_secret([1; 32]),
        now_ms: 1_764_078_194_000,
        target: false,
        stages: Stages::ALL,
        last_sync_ms: None,
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

/// Runs an engine to the end against one memory store; returns the report and the
/// events the engine said were published.
fn run(mut engine: SyncEngine, store: &mut MemoryStore) -> (SyncReport, Vec<SignedEvent>) {
    let mut published = Vec::new();
    loop {
        match engine.poll().unwrap() {
            Output::Store(requests) => {
                let responses = requests
                    .iter()
                    .map(|r| answer_one(store, &r.request))
                    .collect();
                engine.handle(Input::Store(responses)).unwrap();
            }
            Output::ReadSessions(reads) => panic!("no sessions to read: {reads:?}"),
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
        panic!("then lists its own roots");
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
