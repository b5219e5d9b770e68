//! The engine imports an origin the target holds ahead of the mirror straight from the
//! target, before the relay, and writes what it verified through to the mirror: the host's
//! archive writer gets the first window at once, every artifact is read from the target once,
//! and the mirror still ends with all the origin's newest root reaches, and nothing a failed
//! artifact would leave incomplete.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use agentsync_core::OriginKey;
use agentsync_core::conformance::scenario::MemoryStore;
use agentsync_core::sync::engine::{Input, Output, Stages, SyncConfig, SyncEngine, SyncReport};
use agentsync_core::sync::export::ExportState;
use agentsync_core::sync::store::{Request, Store, StoreId, StoreRequest, answer_one, list_all};

const WRITER: &str = "laptop-0a1b2c";
const READER: &str = "desktop-d4e5f6";

fn keys(store: &mut MemoryStore, prefix: &str) -> BTreeSet<String> {
    list_all(store, prefix, None)
        .expect("a memory store lists")
        .into_iter()
        .map(|l| l.key)
        .collect()
}

/// What one sync of the reader did, as its host saw it.
struct Run {
    report: SyncReport,
    /// Sessions handed out, in order.
    applied: Vec<String>,
    /// Reads of each key from the target.
    target_reads: BTreeMap<String, usize>,
    /// How many sessions had been handed out when the writer's root reached the mirror.
    applied_before_root: Option<usize>,
    state: agentsync_core::sync::engine::SyncState,
}

/// One full sync of the reader, with small import windows (so there are many).
fn sync(
    state: agentsync_core::sync::engine::SyncState,
    mirror: &mut MemoryStore,
    target: &mut MemoryStore,
) -> Run {
    let config = SyncConfig {
        origin: READER.parse().expect("origin"),
        key: OriginKey::from_secret([1; 32]),
        now_ms: 1_764_078_194_000,
        target: true,
        stages: Stages::ALL,
        last_sync_ms: None,
        heal_every_ms: 0,
    };
    let mut engine = SyncEngine::new(config, state.clone()).with_import_window(64 << 10);
    let mut run = Run {
        report: SyncReport::default(),
        applied: Vec::new(),
        target_reads: BTreeMap::new(),
        applied_before_root: None,
        state,
    };
    let root_prefix = format!("roots/{WRITER}/");
    loop {
        match engine.poll().expect("poll") {
            Output::Store(requests) => {
                let responses = requests
                    .iter()
                    .map(|r: &StoreRequest| {
                        match (&r.store, &r.request) {
                            (StoreId::Target, Request::Get { key, .. }) => {
                                *run.target_reads.entry(key.clone()).or_default() += 1;
                            }
                            (StoreId::Mirror, Request::Put { key, .. })
                                if key.starts_with(&root_prefix) =>
                            {
                                run.applied_before_root.get_or_insert(run.applied.len());
                            }
                            _ => {}
                        }
                        match r.store {
                            StoreId::Mirror => answer_one(mirror, &r.request),
                            StoreId::Target => answer_one(target, &r.request),
                        }
                    })
                    .collect();
                engine.handle(Input::Store(responses)).expect("handle");
            }
            Output::ReadSessions(reads) => {
                assert!(reads.is_empty(), "the reader has no sessions of its own");
                engine.handle(Input::Sessions(Vec::new())).expect("handle");
            }
            Output::CheckPresent(gids) => engine
                .handle(Input::Present(vec![true; gids.len()]))
                .expect("handle"),
            Output::Apply(units) => run
                .applied
                .extend(units.into_iter().map(|u| u.gid.to_string())),
            Output::Imported(state) => run.state.import = *state,
            Output::Replayed(replayed) => {
                run.state.ledger = replayed.ledger;
                run.state.clock = replayed.clock;
            }
            Output::Exported { change, .. } => {
                run.state.export = Some(change.applied_to(run.state.export.take()));
            }
            Output::Done(report) => {
                run.report = *report;
                return run;
            }
            _ => {}
        }
    }
}

/// 300 sessions of the writer (one to forty messages of 3 KB) in the target.
fn writer_published(target: &mut MemoryStore) -> ExportState {
    let all: Vec<(usize, usize)> = (0..300).map(|n| (n, 1 + n % 40)).collect();
    common::publish(
        &ExportState::new(WRITER.parse().expect("origin")),
        &all,
        target,
    )
}

#[test]
fn a_new_origin_is_imported_while_it_is_relayed_and_read_once() {
    let (mut mirror, mut target) = (MemoryStore::default(), MemoryStore::default());
    writer_published(&mut target);
    let run = sync(Default::default(), &mut mirror, &mut target);
    assert!(run.report.problems.is_empty(), "{:?}", run.report.problems);
    assert_eq!(run.applied.len(), 300);
    // The archive had every session before the relay finished (it puts the root last).
    assert_eq!(run.applied_before_root, Some(300));
    // Every manifest and segment crossed once; buckets twice (the import and the relay
    // each read the new root's).
    for (key, reads) in &run.target_reads {
        let most = if key.contains("/buckets/") || key.starts_with("roots/") {
            2
        } else {
            1
        };
        assert!(*reads <= most, "{key} read {reads} times from the target");
    }
    let prefix = format!("{WRITER}/");
    assert_eq!(keys(&mut mirror, &prefix), keys(&mut target, &prefix));
    assert_eq!(
        keys(&mut mirror, &format!("roots/{WRITER}/")),
        keys(&mut target, &format!("roots/{WRITER}/"))
    );
}

#[test]
fn a_segment_that_fails_in_the_target_keeps_its_manifest_and_the_root_out_of_the_mirror() {
    let (mut mirror, mut target) = (MemoryStore::default(), MemoryStore::default());
    writer_published(&mut target);
    let segments = keys(&mut target, &format!("{WRITER}/segments/"));
    let bad = segments
        .iter()
        .nth(segments.len() / 2)
        .expect("a segment")
        .clone();
    let mut bytes = target.get(&bad).expect("read").expect("present");
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x55;
    }
    target.replace(&bad, &bytes).expect("damage");

    let run = sync(Default::default(), &mut mirror, &mut target);
    assert!(
        run.report.problems.iter().any(|p| p.key == bad),
        "{:?}",
        run.report.problems
    );
    // The sessions that need it wait; every other one is in.
    assert!(
        run.applied.len() < 300 && run.applied.len() >= 290,
        "{}",
        run.applied.len()
    );
    let in_mirror = keys(&mut mirror, "");
    assert!(!in_mirror.contains(&bad), "the damaged segment stays out");
    assert!(
        !in_mirror
            .iter()
            .any(|k| k.starts_with(&format!("roots/{WRITER}/"))),
        "no root of an origin the mirror does not hold in full"
    );
    // Each manifest in the mirror has every segment it names there too.
    let mut manifests_in_mirror = 0;
    for key in in_mirror.iter().filter(|k| k.contains("/manifests/")) {
        manifests_in_mirror += 1;
        let bytes = mirror.get(key).expect("read").expect("present");
        let Ok(agentsync_core::Artifact::Manifest(manifest)) =
            agentsync_core::Artifact::open(&key.parse().expect("key"), &bytes)
        else {
            panic!("{key} opens as a manifest");
        };
        for seg in &manifest.segments {
            let seg_key = format!("{WRITER}/segments/{}.ndjson.zst", seg.id);
            assert!(in_mirror.contains(&seg_key), "{key} lacks {seg_key}");
        }
    }
    assert!(manifests_in_mirror >= 290, "{manifests_in_mirror}");

    // Repaired in the target, the next sync brings the rest, and the mirror catches up.
    let good = {
        let mut b = bytes;
        if let Some(last) = b.last_mut() {
            *last ^= 0x55;
        }
        b
    };
    target.replace(&bad, &good).expect("repair");
    let next = sync(run.state, &mut mirror, &mut target);
    assert!(
        next.report.problems.is_empty(),
        "{:?}",
        next.report.problems
    );
    let before: BTreeSet<String> = run.applied.into_iter().collect();
    let after: BTreeSet<String> = next.applied.into_iter().collect();
    assert_eq!(before.union(&after).count(), 300);
    let prefix = format!("{WRITER}/");
    assert_eq!(keys(&mut mirror, &prefix), keys(&mut target, &prefix));
}

#[test]
fn an_append_is_read_from_the_target_once() {
    let (mut mirror, mut target) = (MemoryStore::default(), MemoryStore::default());
    let state = writer_published(&mut target);
    let first = sync(Default::default(), &mut mirror, &mut target);
    assert!(
        first.report.problems.is_empty(),
        "{:?}",
        first.report.problems
    );
    let before = keys(&mut target, &format!("{WRITER}/segments/"));
    // Session 7 had 8 messages: three more.
    common::publish(&state, &[(7, 8 + 3)], &mut target);
    let new: Vec<String> = keys(&mut target, &format!("{WRITER}/segments/"))
        .difference(&before)
        .cloned()
        .collect();
    assert!(!new.is_empty());

    let second = sync(first.state, &mut mirror, &mut target);
    assert!(
        second.report.problems.is_empty(),
        "{:?}",
        second.report.problems
    );
    assert_eq!(second.applied, vec![format!("{WRITER}~s7")]);
    for key in &new {
        assert_eq!(second.target_reads.get(key), Some(&1), "{key}");
    }
    let prefix = format!("{WRITER}/");
    assert_eq!(keys(&mut mirror, &prefix), keys(&mut target, &prefix));
}
