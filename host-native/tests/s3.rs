//! S3 targets against a real S3 server (moto, started on a free loopback port by
//! `scripts/moto`): convergence of three machines, concurrent syncs into one bucket, a race of
//! sixteen writers on one key, and refused credentials.

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};

use agentsync::store::FolderStore;
use agentsync::target::{Remote, S3Bucket, S3Settings, Target, aws::Credentials, http_client};
use agentsync_core::events::{Event, Op};
use agentsync_core::ledger::SignedEvent;
use agentsync_core::sync::engine::{
    Input, Output, Stages, SyncConfig, SyncEngine, SyncReport as EngineReport, SyncState,
};
use agentsync_core::sync::store::{
    PutOutcome, Request, Store, StoreId, merge_answers, requests_for, target_requests,
};
use agentsync_core::{OriginId, OriginKey};
use common::converge::convergence_case;
use common::{ClaudeLog, Machine, Moto, Scratch, assert_converged, settle};

fn settings(moto: &Moto) -> S3Settings {
    S3Settings {
        endpoint: Some(moto.endpoint.clone()),
        region: "us-east-1".into(),
        credentials: Some(Credentials {
            access_key: "test".into(),
            secret_key: "test".into(),
            session_token: None,
        }),
        path_style: true,
    }
}

#[test]
fn three_machines_converge_through_an_s3_bucket() {
    let scratch = Scratch::new("s3-converge");
    let moto = Moto::start(&scratch.join("moto"), false);
    moto.create_bucket("archive");
    convergence_case(
        7,
        Some(Path::new("s3://archive/team/agentsync")),
        &moto.env(),
    );
}

#[test]
fn sixteen_racing_writers_of_one_key_have_exactly_one_winner() {
    let scratch = Scratch::new("s3-race");
    let moto = Moto::start(&scratch.join("moto"), false);
    moto.create_bucket("race");
    let key = "laptop-0a1b2c/segments/0000000000000000000000000000000000000000000000000000000000000000.ndjson.zst";
    let barrier = Arc::new(Barrier::new(16));
    let writers: Vec<_> = (0..16u8)
        .map(|i| {
            let barrier = barrier.clone();
            let settings = settings(&moto);
            std::thread::spawn(move || {
                let mut store =
                    Remote::new(S3Bucket::new("race", "p", settings, http_client().unwrap()))
                        .unwrap();
                barrier.wait();
                (i, store.put_if_absent(key, &[i; 100]).unwrap())
            })
        })
        .collect();
    let outcomes: Vec<(u8, PutOutcome)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let winners: Vec<u8> = outcomes
        .iter()
        .filter(|(_, o)| *o == PutOutcome::Created)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(i, o)| *i == winners[0] || *o == PutOutcome::Differs),
        "every loser is told the key holds other bytes: {outcomes:?}"
    );
    let mut store = Remote::new(S3Bucket::new(
        "race",
        "p",
        settings(&moto),
        http_client().unwrap(),
    ))
    .unwrap();
    assert_eq!(
        store.get(key).unwrap(),
        Some(vec![winners[0]; 100]),
        "the winner's bytes, never overwritten"
    );
    // Writing the same bytes again is a duplicate, not a conflict.
    assert_eq!(
        store.put_if_absent(key, &[winners[0]; 100]).unwrap(),
        PutOutcome::Exists
    );
}

#[test]
fn four_concurrent_syncs_into_one_bucket_lose_and_overwrite_nothing() {
    let scratch = Scratch::new("s3-concurrent");
    let moto = Moto::start(&scratch.join("moto"), false);
    moto.create_bucket("shared");
    let target = Path::new("s3://shared");
    let machines: Vec<Machine> = ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let m = Machine::new(&scratch.path, name).with_env(&moto.env());
            for s in 0..3u64 {
                ClaudeLog::write(
                    &m.projects(),
                    "proj",
                    &format!("{i:08x}-0000-4000-8000-{s:012x}"),
                    3600 * s,
                    4 + s,
                );
            }
            m
        })
        .collect();
    let children: Vec<_> = machines.iter().map(|m| m.spawn_sync(target)).collect();
    for (m, mut child) in machines.iter().zip(children) {
        let status = child.wait().unwrap();
        assert!(
            matches!(status.code(), Some(0 | 3)),
            "{}'s concurrent sync: {status}",
            m.name
        );
    }
    let refs: Vec<&Machine> = machines.iter().collect();
    settle(&refs, target, 6);
    let snapshot = assert_converged(&refs);
    assert_eq!(
        snapshot["sessions"].as_array().unwrap().len(),
        12,
        "every machine's three sessions everywhere"
    );
    for m in &machines {
        m.verify_ok(Some(target));
    }
}

#[test]
fn refused_credentials_stop_the_sync_with_a_clear_message() {
    let scratch = Scratch::new("s3-auth");
    let moto = Moto::start(&scratch.join("moto"), true);
    let mut env = moto.env();
    for (k, v) in &mut env {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "not-the-secret".into();
        }
    }
    let m = Machine::new(&scratch.path, "a").with_env(&env);
    let run = m.run(&["sync", "s3://guarded", "--no-ingest"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("the target refused this machine")
            && run.stderr.contains("HTTP 403")
            && run.stderr.contains("AWS_ACCESS_KEY_ID"),
        "{}",
        run.stderr
    );
    // Nothing of the run is lost: the export landed in the mirror, the next run resumes.
    let status = m.json(&["status"]);
    assert_eq!(status["origin"], m.origin.as_str());
}

/// Between the machines and the bucket, a proxy injects 503 bursts, writes that land but
/// answer 500, bodies cut mid-way, slow answers and listings missing their newest key. Every
/// sync completes or exits 3 naming what it deferred; nothing is lost or corrupted, and once
/// the faults stop the machines converge and the bucket verifies.
#[test]
fn faults_between_sync_and_bucket_never_lose_or_corrupt_anything() {
    let scratch = Scratch::new("s3-faults");
    let moto = Moto::start(&scratch.join("moto"), false);
    moto.create_bucket("flaky");
    let proxy = common::faulty_proxy::FaultyProxy::start(&moto.endpoint);
    let mut env = moto.env();
    for (k, v) in &mut env {
        if k == "AWS_ENDPOINT_URL" {
            v.clone_from(&proxy.url);
        }
    }
    let target = Path::new("s3://flaky/p");
    let machines: Vec<Machine> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let m = Machine::new(&scratch.path, name).with_env(&env);
            for s in 0..2u64 {
                ClaudeLog::write(
                    &m.projects(),
                    "proj",
                    &format!("{i:08x}-0000-4000-8000-{s:012x}"),
                    3600 * s,
                    150 + 40 * s,
                );
            }
            m.ingest();
            m
        })
        .collect();
    let mut partial = 0;
    for round in 0..3 {
        for m in &machines {
            if let Some(id) = m.sessions()[0]["id"].as_str() {
                m.json(&["rename", id, &format!("round {round} on {}", m.name)]);
            }
            let (code, report) = m.sync(target);
            if code == 3 {
                partial += 1;
                let named = report["deferred"].as_array().unwrap().len()
                    + report["quarantined"].as_array().unwrap().len();
                assert!(named > 0, "exit 3 names what it deferred: {report:#}");
            }
        }
    }
    let counts = proxy.counts();
    for (fault, n) in [
        ("503", &counts.unavailable),
        ("lost answers", &counts.lost_answers),
        ("cut bodies", &counts.cut_bodies),
        ("slow", &counts.slow),
        ("lagging listings", &counts.lagging_listings),
    ] {
        assert!(
            n.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "no {fault} injected"
        );
    }
    eprintln!("{partial} partial syncs under faults; {counts:?}");
    proxy.calm();
    let refs: Vec<&Machine> = machines.iter().collect();
    settle(&refs, target, 8);
    let snapshot = assert_converged(&refs);
    assert_eq!(snapshot["sessions"].as_array().unwrap().len(), 6);
    for m in &machines {
        m.verify_ok(Some(target));
        m.verify_ok(None);
    }
}

/// Runs one engine to the end: `mirror` answers the mirror's requests, `target` the target's;
/// the state is kept as a host would persist it.
fn drive(
    config: SyncConfig,
    state: &mut SyncState,
    mirror: &mut dyn Target,
    mut target: Option<&mut dyn Target>,
) -> EngineReport {
    let mut engine = SyncEngine::new(config, state.clone());
    loop {
        match engine.poll().unwrap() {
            Output::Store(requests) => {
                let mirror_requests: Vec<Request> = requests_for(&requests, StoreId::Mirror)
                    .into_iter()
                    .cloned()
                    .collect();
                let to_target = target_requests(&requests);
                let from_mirror = mirror.answer_all(&mirror_requests);
                let from_target = match target.as_deref_mut() {
                    Some(t) if !to_target.is_empty() => t.answer_all(&to_target),
                    _ => Vec::new(),
                };
                let responses = merge_answers(&requests, from_mirror, from_target).unwrap();
                engine.handle(Input::Store(responses)).unwrap();
            }
            Output::ReadSessions(reads) => panic!("no sessions to read: {reads:?}"),
            Output::CheckPresent(gids) => engine
                .handle(Input::Present(vec![true; gids.len()]))
                .unwrap(),
            Output::Exported { change, published } => {
                state.export = Some(change.applied_to(state.export.take()));
                let done: Vec<_> = published.iter().map(SignedEvent::key).collect();
                state.unpublished.retain(|e| !done.contains(&e.key()));
            }
            Output::Imported(s) => state.import = *s,
            Output::Replayed(r) => {
                state.ledger = r.ledger;
                state.clock = r.clock;
                state.deferred_events = r.deferred;
            }
            Output::Apply(_) | Output::Listed(_) | Output::Progress(_) => {}
            Output::Done(report) => {
                if report.heal_mark.is_some() {
                    state.heal_mark.clone_from(&report.heal_mark);
                }
                return *report;
            }
        }
    }
}

fn star(origin: &OriginId, now_ms: u64) -> SignedEvent {
    let event = Event {
        hlc: agentsync_core::Hlc::new(now_ms, 0).unwrap(),
        session: format!("{origin}~s1").parse().unwrap(),
        prev: None,
        op: Op::Star,
    };
    SignedEvent {
        origin: origin.clone(),
        id: event.id(),
        event,
    }
}

/// Issue 12 / issue 17 item 8 on a real S3 server: origins publish (a root and a curation edit
/// each) straight into the bucket, one machine catches up, then syncs with nothing new. That
/// no-op costs the same few requests at 5 and at 1 000 origins (one page of `roots/` in the
/// mirror and in the bucket, plus self-heal's listing when due).
#[test]
fn a_no_op_sync_costs_the_same_at_5_and_1000_origins_on_a_real_s3_server() {
    const T: u64 = 1_764_078_194_000;
    let scratch = Scratch::new("s3-noop");
    let moto = Moto::start(&scratch.join("moto"), false);
    let mut rows = Vec::new();
    for origins in [5usize, 1000] {
        let bucket = format!("noop{origins}");
        moto.create_bucket(&bucket);
        let publishers = 8;
        let workers: Vec<_> = (0..publishers)
            .map(|w| {
                let settings = settings(&moto);
                let bucket = bucket.clone();
                std::thread::spawn(move || {
                    let mut store: Box<dyn Target> = Box::new(
                        Remote::new(S3Bucket::new(&bucket, "", settings, http_client().unwrap()))
                            .unwrap(),
                    );
                    for i in (1..origins).filter(|i| i % publishers == w) {
                        let origin: OriginId = format!("host{i:04}-a1").parse().unwrap();
                        let mut seed = [0u8; 32];
                        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        let mut state = SyncState {
                            unpublished: vec![star(&origin, T + i as u64)],
                            ..SyncState::default()
                        };
                        let config = SyncConfig {
                            origin,
                            key: OriginKey::from_secret(seed),
                            now_ms: T + i as u64,
                            target: false,
                            stages: Stages {
                                export: true,
                                exchange: false,
                                import: false,
                            },
                            last_sync_ms: None,
                            heal_every_ms: 0,
                        };
                        drive(config, &mut state, &mut *store, None);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let me: OriginId = "host0000-a1".parse().unwrap();
        let config = |now: u64| SyncConfig {
            origin: me.clone(),
            key: OriginKey::from_secret([9; 32]),
            now_ms: now,
            target: true,
            stages: Stages::ALL,
            last_sync_ms: Some(now - 1),
            heal_every_ms: 3_600_000,
        };
        let mut state = SyncState::default();
        let mut mirror = FolderStore::new(scratch.join(&format!("mirror{origins}")));
        let mut target = Remote::new(S3Bucket::new(
            &bucket,
            "",
            settings(&moto),
            http_client().unwrap(),
        ))
        .unwrap();
        let catch_up = drive(
            config(T + 10_000),
            &mut state,
            &mut mirror,
            Some(&mut target),
        );
        assert!(catch_up.problems.is_empty(), "{:#?}", catch_up.problems);
        assert_eq!(
            catch_up.events_applied,
            origins - 1,
            "every origin's edit came in"
        );
        let settle = drive(
            config(T + 20_000),
            &mut state,
            &mut mirror,
            Some(&mut target),
        );
        let no_op = drive(
            config(T + 30_000),
            &mut state,
            &mut mirror,
            Some(&mut target),
        );
        let heal_due = drive(
            config(T + 30_000 + 3_600_000),
            &mut state,
            &mut mirror,
            Some(&mut target),
        );
        for r in [&no_op, &heal_due] {
            assert!(r.problems.is_empty(), "{:#?}", r.problems);
            assert_eq!((r.exported, r.exchanged, r.fetched), (0, 0, 0), "{r:#?}");
        }
        assert!(
            no_op.requests <= 2,
            "no-op at {origins} origins: {} requests",
            no_op.requests
        );
        assert!(
            heal_due.requests <= 3,
            "heal due: {} requests",
            heal_due.requests
        );
        rows.push(format!(
            "| {origins} | {} | {} | {} | {} |",
            no_op.requests, heal_due.requests, catch_up.requests, settle.requests
        ));
    }
    println!("| origins | no-op sync | with self-heal due | catch-up | the run after it |");
    println!("|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
}

/// A bucket that does not exist stops the sync at once with that reason (exit 1), instead of
/// every request failing in turn.
#[test]
fn a_missing_bucket_stops_the_sync_with_that_reason() {
    let scratch = Scratch::new("s3-no-bucket");
    let moto = Moto::start(&scratch.join("moto"), false);
    let m = Machine::new(&scratch.path, "a").with_env(&moto.env());
    let run = m.run(&["sync", "s3://never-created/x", "--no-ingest"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no such bucket"), "{}", run.stderr);
}

/// Read-only keys (a viewer's, or a machine that may only read): the sync imports everything
/// the bucket holds, reports each write the bucket refused with what it means, exits 3 (partial,
/// not a failure), and writes nothing.
#[test]
fn read_only_credentials_import_everything_and_report_what_stayed_local() {
    let scratch = Scratch::new("s3-read-only");
    let moto = Moto::start(&scratch.join("moto"), false);
    moto.create_bucket("shared");
    let target = Path::new("s3://shared/p");
    let writer = Machine::new(&scratch.path, "writer").with_env(&moto.env());
    ClaudeLog::write(
        &writer.projects(),
        "proj",
        "00000001-0000-4000-8000-000000000001",
        0,
        120,
    );
    writer.ingest();
    assert_eq!(writer.sync(target).0, 0);

    let proxy = common::faulty_proxy::FaultyProxy::start(&moto.endpoint);
    proxy.calm();
    proxy.read_only();
    let mut env = moto.env();
    for (k, v) in &mut env {
        if k == "AWS_ENDPOINT_URL" {
            v.clone_from(&proxy.url);
        }
    }
    let reader = Machine::new(&scratch.path, "reader").with_env(&env);
    ClaudeLog::write(
        &reader.projects(),
        "mine",
        "00000002-0000-4000-8000-000000000002",
        0,
        80,
    );
    reader.ingest();
    let (code, report) = reader.sync(target);
    assert_eq!(code, 3, "partial, not failed: {report:#}");
    assert_eq!(
        reader.sessions().as_array().unwrap().len(),
        2,
        "the writer's session arrived: {report:#}"
    );
    let problems = report["deferred"].as_array().unwrap();
    assert!(!problems.is_empty(), "{report:#}");
    // Each is one of this machine's own artifacts, refused or held back behind a refused one.
    for p in problems {
        assert!(p["key"].as_str().unwrap().contains("reader-"), "{p}");
    }
    assert!(
        problems
            .iter()
            .any(|p| p["reason"].as_str().unwrap().contains("may not write here")),
        "{problems:#?}"
    );
    let mut bucket = Remote::new(S3Bucket::new(
        "shared",
        "p",
        settings(&moto),
        http_client().unwrap(),
    ))
    .unwrap();
    let keys = agentsync_core::sync::store::list_all(&mut bucket, "", None).unwrap();
    assert!(!keys.is_empty());
    assert!(
        keys.iter().all(|k| !k.key.contains("reader-")),
        "the read-only machine wrote {keys:?}"
    );
}
