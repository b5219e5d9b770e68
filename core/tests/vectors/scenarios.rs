//! Scenario vectors: scripted multi-origin sync runs through in-memory stores. Each vector's
//! generator checks the property the scenario is about before its output is pinned.

use agentsync_core::{Event, EventBatch, Hlc, Op, OriginKey, Root};
use serde_json::{Value, json};

use super::{golden, run};

const A: &str = "laptop-a1b2c3";
const B: &str = "desktop-d4e5f6";
const C: &str = "server-778899";
const T: u64 = 1_764_078_194_000;
const DAY: u64 = 86_400_000;

fn seed(n: u8) -> String {
    hex::encode([n; 32])
}

fn origins(names: &[&str]) -> Value {
    let mut o = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        o.insert((*n).to_owned(), json!({"seed": seed(i as u8 + 1)}));
    }
    Value::Object(o)
}

fn session(origin: &str, native: &str, messages: u64) -> Value {
    json!({"do": "session", "origin": origin, "native": native, "messages": messages, "title": format!("{native} title")})
}

fn export(origin: &str, store: &str, now: u64) -> Value {
    json!({"do": "export", "origin": origin, "store": store, "now_ms": now})
}

fn import(origin: &str, store: &str, now: u64) -> Value {
    json!({"do": "import", "origin": origin, "store": store, "now_ms": now})
}

fn edit(origin: &str, session: &str, op: Value, now: u64) -> Value {
    json!({"do": "edit", "origin": origin, "session": session, "op": op, "now_ms": now})
}

fn gid(origin: &str, native: &str) -> String {
    format!("{origin}~{native}")
}

fn scenario(
    name: &str,
    names: &[&str],
    stores: &[&str],
    steps: Vec<Value>,
    check: impl Fn(&Value),
) -> Value {
    scenario_paged(name, names, stores, 1000, steps, check)
}

fn scenario_paged(
    name: &str,
    names: &[&str],
    stores: &[&str],
    page_size: u64,
    steps: Vec<Value>,
    check: impl Fn(&Value),
) -> Value {
    let v = json!({"name": name, "op": "scenario", "origins": origins(names), "stores": stores,
                   "page_size": page_size, "steps": steps});
    let result = run(&v);
    assert!(result["ok"] == true, "{name}: {result}");
    check(&result["output"]);
    golden(v, &["steps", "final"])
}

fn sessions_of<'a>(out: &'a Value, machine: &str) -> &'a serde_json::Map<String, Value> {
    out["final"]["machines"][machine]["sessions"]
        .as_object()
        .unwrap()
}

/// Every machine holds the same sessions with the same contents.
fn converged(out: &Value, names: &[&str]) {
    let first = sessions_of(out, names[0]);
    for n in &names[1..] {
        assert_eq!(sessions_of(out, n), first, "{n} differs from {}", names[0]);
    }
}

fn step(out: &Value, i: usize) -> &Value {
    &out["steps"][i]
}

fn list_len(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

fn root_hex(origin_seed: u8, origin: &str, seq: u64) -> (String, String) {
    signed_root_hex(origin_seed, origin, seq, true)
}

/// A root of `origin` signed with the key of `origin_seed`, stored with a newer frame version
/// or not.
fn signed_root_hex(origin_seed: u8, origin: &str, seq: u64, newer_frame: bool) -> (String, String) {
    let root = Root {
        origin: origin.parse().unwrap(),
        seq,
        created_ms: 0,
        bits: 0,
        session_count: 0,
        buckets: vec![],
        events: agentsync_core::checkpoint::EventsMark::Unstated,
    };
    let canonical = root
        .encode(&OriginKey::from_secret([origin_seed; 32]))
        .unwrap();
    let id = agentsync_core::ArtifactId::of(&canonical);
    let mut stored =
        agentsync_core::frame::seal(agentsync_core::ArtifactKind::Root, &canonical, None).unwrap();
    if newer_frame {
        stored[12] = 2; // frame version 2: written by a newer agentsync
    }
    (
        format!("roots/{origin}/{seq:020}-{id}.root"),
        hex::encode(stored),
    )
}

fn sync(origin: &str, mirror: &str, now: u64) -> Value {
    json!({"do": "sync", "origin": origin, "mirror": mirror, "target": "shared", "now_ms": now})
}

/// Whole sync runs (export → exchange → self-heal → import → fallback → replay), each machine
/// with its own mirror and one shared target: what the CLI runs.
fn sync_vectors(out: &mut Vec<Value>) {
    let shared = "shared";
    let stores = &["ma", "mb", "mc", shared];

    out.push(scenario(
        "scenario-sync-three-machines-converge",
        &[A, B, C],
        stores,
        vec![
            session(A, "a1", 4),
            session(B, "b1", 2),
            session(C, "c1", 3),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            sync(C, "mc", T + 20),
            sync(A, "ma", T + 30),
            sync(B, "mb", T + 40),
            edit(
                A,
                &gid(C, "c1"),
                json!({"op": "rename", "name": "from a"}),
                T + 50,
            ),
            sync(A, "ma", T + 60),
            sync(B, "mb", T + 70),
            sync(C, "mc", T + 80),
        ],
        |o| {
            converged(o, &[A, B, C]);
            assert_eq!(sessions_of(o, A).len(), 3);
            for m in [A, B, C] {
                let curation = &o["final"]["machines"][m]["curation"];
                assert_eq!(list_len(curation), 1, "{m}: {curation}");
            }
        },
    ));

    out.push(scenario(
        "scenario-sync-no-op-writes-nothing",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 4),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            sync(A, "ma", T + 20),
            sync(B, "mb", T + 30),
            sync(A, "ma", T + 40),
            sync(B, "mb", T + 50),
        ],
        |o| {
            // After one round each has the other's root; from then on nothing moves.
            for i in [4, 5, 6] {
                let s = step(o, i);
                assert_eq!(s["written"], json!({}), "{s}");
                assert_eq!(list_len(&s["units"]), 0, "{s}");
            }
        },
    ));

    // Issue 17 item 1: a key that does not verify never shadows the origin's real roots, and
    // never moves the exporter's sequence (seq + 1 would overflow at u64::MAX).
    let forged = format!("roots/{A}/{}-{}.root", u64::MAX, "ab".repeat(32));
    out.push(scenario(
        "scenario-sync-forged-greatest-root-is-passed-over",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 4),
            json!({"do": "put_raw", "store": shared, "key": forged, "hex": "deadbeef"}),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            session(A, "a2", 2),
            sync(A, "ma", T + 20),
            sync(B, "mb", T + 30),
        ],
        move |o| {
            converged(o, &[A, B]);
            assert_eq!(sessions_of(o, B).len(), 2);
            for i in [2, 3, 5, 6] {
                let s = step(o, i);
                assert!(
                    s["shadowed_roots"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k == &json!(forged)),
                    "step {i} names the forged key: {s}"
                );
            }
        },
    ));

    // Issue 17 item 9: our own key is pinned before the first sync, and a peer that has seen
    // an origin rejects a validly signed root of another key for it.
    let (other_key, other_hex) = signed_root_hex(9, A, 1 << 40, false);
    out.push(scenario(
        "scenario-sync-root-signed-by-another-key-is-rejected",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 4),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            json!({"do": "put_raw", "store": shared, "key": other_key, "hex": other_hex}),
            session(A, "a2", 2),
            sync(A, "ma", T + 20),
            sync(B, "mb", T + 30),
        ],
        |o| {
            converged(o, &[A, B]);
            assert_eq!(sessions_of(o, B).len(), 2);
            for i in [5, 6] {
                let s = step(o, i);
                assert!(
                    s["quarantined"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p.as_str().unwrap().starts_with("KeyMismatch")),
                    "step {i}: {s}"
                );
            }
        },
    ));

    out.push(scenario(
        "scenario-sync-heals-a-corrupt-own-copy-in-the-target",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 4),
            session(A, "a2", 4),
            sync(A, "ma", T),
            json!({"do": "corrupt", "store": shared, "key_contains": "/segments/", "now_ms": T + 5}),
            sync(A, "ma", T + 10),
            sync(B, "mb", T + 20),
        ],
        |o| {
            assert_eq!(step(o, 4)["healed"], 1, "{}", step(o, 4));
            assert_eq!(list_len(&step(o, 5)["quarantined"]), 0, "{}", step(o, 5));
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-sync-fallback-import-when-the-relay-is-blocked",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 4),
            session(A, "a2", 4),
            sync(A, "ma", T),
            json!({"do": "corrupt", "store": shared, "key_contains": "/segments/", "now_ms": T + 5}),
            sync(B, "mb", T + 10),
            sync(A, "ma", T + 20),
            sync(B, "mb", T + 30),
        ],
        |o| {
            let blocked = step(o, 4);
            assert_eq!(list_len(&blocked["quarantined"]), 2, "exchange and import: {blocked}");
            assert_eq!(list_len(&blocked["units"]), 1, "the other session imports: {blocked}");
            assert_eq!(step(o, 5)["healed"], 1);
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-sync-interrupted-runs-resume",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 300),
            session(A, "a2", 3),
            json!({"do": "sync", "origin": A, "mirror": "ma", "target": shared, "now_ms": T, "crash_after_writes": 2}),
            json!({"do": "sync", "origin": A, "mirror": "ma", "target": shared, "now_ms": T + 10, "crash_after_writes": 5}),
            sync(B, "mb", T + 20),
            sync(A, "ma", T + 30),
            sync(B, "mb", T + 40),
        ],
        |o| {
            assert!(step(o, 2)["interrupted_after"].is_number());
            assert!(step(o, 3)["interrupted_after"].is_number());
            converged(o, &[A, B]);
            assert_eq!(sessions_of(o, B).len(), 2);
        },
    ));

    out.push(scenario(
        "scenario-sync-purge-travels-and-blocks-reimport",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 4),
            session(A, "a2", 4),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            edit(B, &gid(A, "a1"), json!({"op": "purge"}), T + 20),
            sync(B, "mb", T + 30),
            sync(A, "ma", T + 40),
            sync(B, "mb", T + 50),
        ],
        |o| {
            converged(o, &[A, B]);
            assert_eq!(sessions_of(o, A).len(), 1);
        },
    ));
}

/// More whole runs: curation, appends, pagination, faults and recovery through the engine.
fn more_sync_vectors(out: &mut Vec<Value>) {
    let shared = "shared";
    let stores = &["ma", "mb", "mc", shared];

    out.push(scenario(
        "scenario-sync-events-and-their-session-arrive-together",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 2),
            edit(
                A,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "first"}),
                T,
            ),
            edit(A, &gid(A, "a1"), json!({"op": "star"}), T + 1),
            sync(A, "ma", T + 10),
            sync(B, "mb", T + 20),
        ],
        |o| {
            let s = step(o, 4);
            assert_eq!(s["events"], 2, "{s}");
            assert_eq!(
                s["events_deferred"], 0,
                "the session came in the same run: {s}"
            );
            let curation = &o["final"]["machines"][B]["curation"];
            assert_eq!(list_len(curation), 2, "{curation}");
        },
    ));

    out.push(scenario(
        "scenario-sync-concurrent-renames-conflict-on-both",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 2),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            edit(
                A,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "from a"}),
                T + 20,
            ),
            edit(
                B,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "from b"}),
                T + 21,
            ),
            sync(A, "ma", T + 30),
            sync(B, "mb", T + 40),
            sync(A, "ma", T + 50),
        ],
        |o| {
            for m in [A, B] {
                assert_eq!(o["final"]["machines"][m]["conflicts"], 1, "{m}");
            }
            assert_eq!(
                o["final"]["machines"][A]["curation"],
                o["final"]["machines"][B]["curation"]
            );
        },
    ));

    out.push(scenario(
        "scenario-sync-append-moves-only-the-tail",
        &[A, B],
        stores,
        vec![
            session(A, "long", 1000),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            json!({"do": "append", "origin": A, "native": "long", "messages": 3}),
            sync(A, "ma", T + 20),
            sync(B, "mb", T + 30),
        ],
        |o| {
            // One new tail segment, written to the mirror and relayed to the target.
            let a = step(o, 4);
            assert_eq!(a["written"]["segment"], 2, "{a}");
            let units = &step(o, 5)["units"];
            assert_eq!(list_len(units), 1, "{units}");
            assert!(units[0][1].as_u64().unwrap() > 0, "only the tail: {units}");
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario_paged(
        "scenario-sync-every-listing-paginated",
        &[A, B, C],
        stores,
        1,
        vec![
            session(A, "a1", 3),
            session(A, "a2", 3),
            session(B, "b1", 3),
            session(C, "c1", 3),
            edit(B, &gid(B, "b1"), json!({"op": "star"}), T),
            sync(A, "ma", T + 10),
            sync(B, "mb", T + 20),
            sync(C, "mc", T + 30),
            sync(A, "ma", T + 40),
            sync(B, "mb", T + 50),
        ],
        |o| {
            converged(o, &[A, B, C]);
            assert_eq!(sessions_of(o, C).len(), 4);
            assert_eq!(list_len(&o["final"]["machines"][A]["curation"]), 1);
        },
    ));

    out.push(scenario(
        "scenario-sync-missing-segment-defers-then-completes",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 3),
            session(A, "a2", 3),
            sync(A, "ma", T),
            json!({"do": "drop", "store": shared, "key_contains": "/segments/"}),
            sync(B, "mb", T + 10),
            json!({"do": "restore", "store": shared}),
            sync(B, "mb", T + 20),
        ],
        |o| {
            let s = step(o, 4);
            assert!(list_len(&s["deferred"]) >= 1, "{s}");
            assert_eq!(
                list_len(&s["quarantined"]),
                0,
                "missing is never corrupt: {s}"
            );
            converged(o, &[A, B]);
        },
    ));

    // A newer-version root defers, and the walk falls back to the newest root it can read.
    let (future_key, future_hex) = root_hex(1, A, 50);
    out.push(scenario(
        "scenario-sync-future-version-root-defers-and-falls-back",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 3),
            sync(A, "ma", T),
            json!({"do": "put_raw", "store": shared, "key": future_key, "hex": future_hex}),
            sync(B, "mb", T + 10),
        ],
        |o| {
            let s = step(o, 3);
            assert_eq!(list_len(&s["quarantined"]), 0, "{s}");
            assert!(
                s["deferred"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p.as_str().unwrap().starts_with("FutureVersion")),
                "{s}"
            );
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-sync-own-purge-leaves-every-archive",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 3),
            session(A, "a2", 3),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            edit(A, &gid(A, "a1"), json!({"op": "purge"}), T + 20),
            sync(A, "ma", T + 30),
            sync(B, "mb", T + 40),
        ],
        |o| {
            converged(o, &[A, B]);
            assert_eq!(sessions_of(o, B).len(), 1);
            assert!(!sessions_of(o, B).contains_key(&gid(A, "a1")));
        },
    ));

    let crash = |n: u64, now: u64| json!({"do": "sync", "origin": A, "mirror": "ma", "target": shared, "now_ms": now, "crash_after_writes": n});
    out.push(scenario(
        "scenario-sync-crashes-at-many-points-then-converges",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 200),
            session(A, "a2", 2),
            edit(A, &gid(A, "a2"), json!({"op": "star"}), T),
            crash(0, T + 1),
            crash(1, T + 2),
            crash(4, T + 3),
            crash(9, T + 4),
            sync(A, "ma", T + 10),
            sync(B, "mb", T + 20),
        ],
        |o| {
            for i in 3..7 {
                assert!(
                    step(o, i)["interrupted_after"].is_number(),
                    "{}",
                    step(o, i)
                );
            }
            converged(o, &[A, B]);
            assert_eq!(list_len(&o["final"]["machines"][B]["curation"]), 1);
        },
    ));

    out.push(scenario(
        "scenario-sync-a-machine-offline-for-long-catches-up",
        &[A, B, C],
        stores,
        vec![
            session(A, "a1", 3),
            session(B, "b1", 3),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            json!({"do": "append", "origin": A, "native": "a1", "messages": 5}),
            edit(
                B,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "seen by b"}),
                T + 20,
            ),
            sync(A, "ma", T + 30),
            sync(B, "mb", T + 40),
            session(B, "b2", 1),
            sync(B, "mb", T + 50),
            sync(A, "ma", T + 60),
            sync(C, "mc", T + 70),
        ],
        |o| {
            converged(o, &[A, B, C]);
            assert_eq!(sessions_of(o, C).len(), 3);
            assert_eq!(sessions_of(o, C)[&gid(A, "a1")]["messages"], 8);
        },
    ));

    // Issue 17 item 4: a batch that could not be verified is retried on later runs, never
    // stepped over by the watermark of the batches after it.
    out.push(scenario(
        "scenario-sync-a-failed-event-batch-is-retried-not-skipped",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 2),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            edit(
                A,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "first batch"}),
                T + 20,
            ),
            sync(A, "ma", T + 30),
            edit(A, &gid(A, "a1"), json!({"op": "star"}), T + 40),
            sync(A, "ma", T + 50),
            json!({"do": "corrupt", "store": shared, "key_contains": "/events/", "now_ms": T + 55}),
            sync(B, "mb", T + 60),
            sync(A, "ma", T + 70),
            sync(B, "mb", T + 80),
            sync(B, "mb", T + 90),
        ],
        |o| {
            let blocked = step(o, 8);
            assert!(list_len(&blocked["quarantined"]) >= 1, "{blocked}");
            assert_eq!(step(o, 9)["healed"], 1, "{}", step(o, 9));
            let b = &o["final"]["machines"][B]["curation"];
            assert_eq!(list_len(b), 2, "both batches applied on B: {b}");
            assert_eq!(o["final"]["machines"][A]["curation"], *b);
        },
    ));

    // A dumb transport (Syncthing) delivers a later batch before an earlier one.
    out.push(scenario(
        "scenario-sync-event-batches-arriving-out-of-order-all-apply",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 2),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            edit(
                A,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "early"}),
                T + 20,
            ),
            sync(A, "ma", T + 30),
            json!({"do": "drop", "store": shared, "key_contains": "/events/"}),
            edit(A, &gid(A, "a1"), json!({"op": "star"}), T + 40),
            json!({"do": "sync", "origin": A, "mirror": "mc", "target": shared, "now_ms": T + 50}),
            sync(B, "mb", T + 60),
            json!({"do": "restore", "store": shared}),
            sync(B, "mb", T + 70),
        ],
        |o| {
            let b = &o["final"]["machines"][B]["curation"];
            assert_eq!(list_len(b), 2, "the late, earlier batch applied too: {b}");
        },
    ));

    out.push(scenario(
        "scenario-sync-a-lost-mirror-is-restored-from-the-target",
        &[A, B],
        stores,
        vec![
            session(A, "a1", 3),
            session(B, "b1", 3),
            sync(A, "ma", T),
            sync(B, "mb", T + 10),
            sync(A, "ma", T + 20),
            json!({"do": "drop", "store": "ma", "key_contains": ""}),
            sync(A, "ma", T + 30),
            sync(B, "mb", T + 40),
        ],
        |o| {
            let s = step(o, 6);
            assert!(s["exchanged"].as_u64().unwrap() > 0, "{s}");
            assert_eq!(list_len(&s["quarantined"]), 0, "{s}");
            assert_eq!(o["final"]["stores"]["ma"], o["final"]["stores"]["mb"]);
            converged(o, &[A, B]);
        },
    ));
}

pub(crate) fn vectors() -> Vec<Value> {
    let mut out = Vec::new();
    sync_vectors(&mut out);
    more_sync_vectors(&mut out);
    let f = "folder";

    out.push(scenario(
        "scenario-fresh-pair",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 3),
            session(A, "a2", 0),
            session(B, "b1", 5),
            export(A, f, T),
            export(B, f, T),
            import(A, f, T),
            import(B, f, T),
        ],
        |o| {
            converged(o, &[A, B]);
            assert_eq!(sessions_of(o, A).len(), 3);
        },
    ));

    out.push(scenario(
        "scenario-three-way-relay-through-a-folder",
        &[A, B, C],
        &["a", "b", "c", "shared"],
        vec![
            session(A, "a1", 4),
            session(B, "b1", 4),
            session(C, "c1", 4),
            export(A, "a", T),
            export(B, "b", T),
            export(C, "c", T),
            json!({"do": "exchange", "a": "a", "b": "shared"}),
            json!({"do": "exchange", "a": "b", "b": "shared"}),
            json!({"do": "exchange", "a": "c", "b": "shared"}),
            json!({"do": "exchange", "a": "a", "b": "shared"}),
            json!({"do": "exchange", "a": "b", "b": "shared"}),
            import(A, "a", T),
            import(B, "b", T),
            import(C, "c", T),
        ],
        |o| {
            // C exchanged before A and B had seen each other, so C lacks nothing of its own but
            // has A's and B's only if they reached the shared folder first: they did.
            converged(o, &[A, B, C]);
            assert_eq!(sessions_of(o, A).len(), 3);
        },
    ));

    out.push(scenario(
        "scenario-append-to-a-long-session-moves-only-the-tail",
        &[A, B],
        &[f],
        vec![
            session(A, "long", 1000),
            export(A, f, T),
            import(B, f, T),
            json!({"do": "append", "origin": A, "native": "long", "messages": 3}),
            export(A, f, T + 1000),
            import(B, f, T + 1000),
        ],
        |o| {
            let written = &step(o, 4)["written"];
            assert_eq!(written["segment"], 1, "{written}");
            assert_eq!(written["manifest"], 1);
            let unit = &step(o, 5)["units"][0];
            assert_eq!(
                unit[1], 896,
                "only the open segment (from ordinal 896) is re-imported: {unit}"
            );
            assert_eq!(unit[2], 107);
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-no-op-sync-costs-nothing",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 10),
            session(B, "b1", 10),
            export(A, f, T),
            export(B, f, T),
            import(A, f, T),
            import(B, f, T),
            export(A, f, T + 1),
            import(A, f, T + 1),
        ],
        |o| {
            assert_eq!(step(o, 6)["written"], json!({}));
            assert_eq!(list_len(&step(o, 7)["units"]), 0);
            assert!(
                step(o, 7)["requests"].as_u64().unwrap() <= 3,
                "{}",
                step(o, 7)
            );
        },
    ));

    out.push(scenario(
        "scenario-concurrent-curation-conflicts-everywhere",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 2),
            export(A, f, T),
            import(B, f, T),
            edit(
                A,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "mine"}),
                T + 10,
            ),
            edit(
                B,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "theirs"}),
                T + 20,
            ),
            export(A, f, T + 30),
            export(B, f, T + 30),
            import(A, f, T + 40),
            import(B, f, T + 40),
        ],
        |o| {
            for m in [A, B] {
                assert_eq!(o["final"]["machines"][m]["conflicts"], 1, "{m}");
            }
            assert_eq!(
                o["final"]["machines"][A]["curation"],
                o["final"]["machines"][B]["curation"]
            );
        },
    ));

    out.push(scenario(
        "scenario-informed-curation-no-conflict",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 2),
            export(A, f, T),
            import(B, f, T),
            edit(
                A,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "first"}),
                T + 10,
            ),
            export(A, f, T + 20),
            import(B, f, T + 30),
            edit(
                B,
                &gid(A, "a1"),
                json!({"op": "rename", "name": "second"}),
                T + 40,
            ),
            export(B, f, T + 50),
            import(A, f, T + 60),
        ],
        |o| {
            for m in [A, B] {
                assert_eq!(o["final"]["machines"][m]["conflicts"], 0, "{m}");
            }
            assert_eq!(
                o["final"]["machines"][A]["curation"],
                o["final"]["machines"][B]["curation"]
            );
        },
    ));

    out.push(scenario(
        "scenario-purge-beats-a-concurrent-edit",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 2),
            session(A, "a2", 2),
            export(A, f, T),
            import(B, f, T),
            edit(A, &gid(A, "a1"), json!({"op": "purge"}), T + 10),
            edit(B, &gid(A, "a1"), json!({"op": "star"}), T + 20),
            export(A, f, T + 30),
            export(B, f, T + 30),
            import(A, f, T + 40),
            import(B, f, T + 40),
        ],
        |o| {
            for m in [A, B] {
                assert!(
                    sessions_of(o, m).get(&gid(A, "a1")).is_none(),
                    "{m} still has the purged session"
                );
                assert_eq!(o["final"]["machines"][m]["purged"], json!([gid(A, "a1")]));
                assert_eq!(o["final"]["machines"][m]["conflicts"], 0);
            }
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-purged-session-is-never-reimported",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 2),
            export(A, f, T),
            import(B, f, T),
            edit(B, &gid(A, "a1"), json!({"op": "purge"}), T + 10),
            json!({"do": "append", "origin": A, "native": "a1", "messages": 2}),
            export(A, f, T + 20),
            import(B, f, T + 30),
        ],
        |o| {
            assert_eq!(list_len(&step(o, 6)["units"]), 0, "{}", step(o, 6));
            assert!(sessions_of(o, B).get(&gid(A, "a1")).is_none());
        },
    ));

    out.push(scenario(
        "scenario-corrupt-segment-quarantined-rest-continues-then-heals",
        &[A, B],
        &[f, "good"],
        vec![
            session(A, "a1", 3),
            session(A, "a2", 3),
            export(A, "good", T),
            json!({"do": "exchange", "a": "good", "b": f}),
            json!({"do": "corrupt", "store": f, "key_contains": "/segments/"}),
            import(B, f, T),
            import(B, "good", T + 10),
        ],
        |o| {
            let first = step(o, 5);
            assert_eq!(list_len(&first["quarantined"]), 1, "{first}");
            assert!(
                first["quarantined"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("IdMismatch")
            );
            assert_eq!(
                list_len(&first["units"]),
                1,
                "the other session still imports"
            );
            assert_eq!(
                list_len(&step(o, 6)["units"]),
                1,
                "healed from the good copy"
            );
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-corrupt-root-skips-only-its-origin",
        &[A, B, C],
        &[f],
        vec![
            session(A, "a1", 3),
            session(C, "c1", 3),
            export(A, f, T),
            export(C, f, T),
            json!({"do": "corrupt", "store": f, "key_contains": "roots/laptop"}),
            import(B, f, T),
        ],
        |o| {
            let s = step(o, 5);
            assert_eq!(list_len(&s["quarantined"]), 1, "{s}");
            assert_eq!(list_len(&s["units"]), 1);
            assert!(sessions_of(o, B).contains_key(&gid(C, "c1")));
        },
    ));

    out.push(scenario(
        "scenario-interrupted-export-resumes",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 300),
            session(A, "a2", 5),
            json!({"do": "export_interrupted", "origin": A, "store": f, "writes": 2, "now_ms": T}),
            import(B, f, T),
            export(A, f, T + 10),
            import(B, f, T + 20),
        ],
        |o| {
            assert_eq!(
                list_len(&step(o, 3)["units"]),
                0,
                "no root yet, nothing to import"
            );
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-late-segment-defers-then-completes",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 3),
            session(A, "a2", 3),
            export(A, f, T),
            json!({"do": "drop", "store": f, "key_contains": "/segments/"}),
            import(B, f, T),
            json!({"do": "restore", "store": f}),
            import(B, f, T + 10),
        ],
        |o| {
            let s = step(o, 4);
            assert_eq!(list_len(&s["units"]), 0, "{s}");
            assert!(list_len(&s["deferred"]) >= 1);
            assert_eq!(list_len(&s["quarantined"]), 0, "missing is never corrupt");
            assert_eq!(list_len(&step(o, 6)["units"]), 2);
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-event-before-its-session-waits",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 3),
            edit(A, &gid(A, "a1"), json!({"op": "star"}), T),
            export(A, f, T),
            json!({"do": "drop", "store": f, "key_contains": "/segments/"}),
            import(B, f, T + 10),
            json!({"do": "restore", "store": f}),
            import(B, f, T + 20),
        ],
        |o| {
            assert_eq!(step(o, 4)["events_deferred"], 1, "{}", step(o, 4));
            assert_eq!(step(o, 6)["events_deferred"], 0);
            assert_eq!(
                o["final"]["machines"][B]["curation"],
                o["final"]["machines"][A]["curation"]
            );
        },
    ));

    out.push(scenario(
        "scenario-gc-keeps-everything-the-root-reaches",
        &[A],
        &[f],
        vec![
            session(A, "a1", 300),
            export(A, f, T),
            json!({"do": "gc", "origin": A, "store": f, "now_ms": T + 30 * DAY}),
        ],
        |o| {
            assert_eq!(list_len(&step(o, 2)["deleted"]), 0);
        },
    ));

    out.push(scenario(
        "scenario-gc-after-a-newer-root-waits-for-grace",
        &[A, B],
        &[f],
        vec![
            session(A, "a1", 200),
            export(A, f, T),
            import(B, f, T),
            json!({"do": "append", "origin": A, "native": "a1", "messages": 1}),
            edit(A, &gid(A, "a1"), json!({"op": "star"}), T + 1),
            export(A, f, T + DAY),
            json!({"do": "gc", "origin": A, "store": f, "now_ms": T + 2 * DAY}),
            json!({"do": "gc", "origin": A, "store": f, "now_ms": T + 9 * DAY}),
            json!({"do": "gc", "origin": A, "store": f, "now_ms": T + 16 * DAY}),
            import(B, f, T + 16 * DAY),
        ],
        |o| {
            assert_eq!(
                list_len(&step(o, 6)["deleted"]),
                0,
                "inside the grace window"
            );
            assert!(step(o, 6)["kept_young"].as_u64().unwrap() >= 4);
            // Issue 17 item 7: old enough, but first seen unreachable only 7 days ago (less
            // than the grace window plus the skew margin): a second observation is needed.
            assert_eq!(list_len(&step(o, 7)["deleted"]), 0, "{}", step(o, 7));
            let deleted: Vec<&str> = step(o, 8)["deleted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            assert_eq!(
                deleted,
                ["buckets", "manifests", "segments", "laptop-a1b2c3"],
                "old bucket, manifest, tail segment and root"
            );
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario(
        "scenario-gc-without-a-root-does-nothing",
        &[A, B],
        &[f],
        vec![
            session(B, "b1", 2),
            export(B, f, T),
            json!({"do": "gc", "origin": A, "store": f, "now_ms": T + 30 * DAY}),
        ],
        |o| assert_eq!(list_len(&step(o, 2)["deleted"]), 0),
    ));

    let (future_key, future_hex) = root_hex(3, C, 99);
    out.push(scenario(
        "scenario-newer-version-root-is-deferred",
        &[A, B, C],
        &[f],
        vec![
            session(A, "a1", 2),
            export(A, f, T),
            json!({"do": "put_raw", "store": f, "key": future_key, "hex": future_hex}),
            import(B, f, T),
        ],
        |o| {
            let s = step(o, 3);
            assert_eq!(list_len(&s["quarantined"]), 0, "{s}");
            assert!(
                s["deferred"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("FutureVersion")
            );
            assert_eq!(list_len(&s["units"]), 1);
        },
    ));

    let forged = EventBatch {
        origin: A.parse().unwrap(),
        events: vec![Event {
            hlc: Hlc::new(T + 5, 0).unwrap(),
            session: gid(A, "a1").parse().unwrap(),
            prev: None,
            op: Op::Rename {
                name: "forged".into(),
            },
        }],
    }
    .seal(&OriginKey::from_secret([66; 32]))
    .unwrap();
    out.push(scenario("scenario-batch-signed-by-another-key-is-rejected", &[A, B], &[f], vec![
        session(A, "a1", 2), export(A, f, T),
        json!({"do": "put_raw", "store": f, "key": forged.key.to_string(), "hex": hex::encode(forged.seal(None).unwrap())}),
        import(B, f, T + 10),
    ], |o| {
        let s = step(o, 3);
        assert!(s["quarantined"][0].as_str().unwrap().starts_with("KeyMismatch"), "{s}");
        assert_eq!(o["final"]["machines"][B]["curation"], json!([]));
    }));

    out.push(scenario(
        "scenario-duplicates-and-repeats-change-nothing",
        &[A, B],
        &[f, "peer"],
        vec![
            session(A, "a1", 130),
            export(A, f, T),
            json!({"do": "exchange", "a": f, "b": "peer"}),
            json!({"do": "exchange", "a": f, "b": "peer"}),
            import(B, "peer", T),
            import(B, f, T),
            import(B, "peer", T),
        ],
        |o| {
            assert_eq!(step(o, 3)["copied"], 0, "second exchange copies nothing");
            assert_eq!(list_len(&step(o, 5)["units"]), 0);
            converged(o, &[A, B]);
        },
    ));

    out.push(scenario("scenario-usage-only-session-is-published", &[A, B], &[f], vec![
        json!({"do": "session", "origin": A, "native": "usage-only", "messages": 0, "usage_tokens": 1234}),
        export(A, f, T), import(B, f, T),
    ], |o| {
        assert!(sessions_of(o, B).contains_key(&gid(A, "usage-only")));
    }));

    out.push(scenario_paged(
        "scenario-paginated-listings",
        &[A, B, C],
        &[f],
        2,
        vec![
            session(A, "a1", 1),
            session(A, "a2", 1),
            session(B, "b1", 1),
            session(C, "c1", 1),
            export(A, f, T),
            export(B, f, T),
            export(C, f, T),
            import(A, f, T + 1),
            session(A, "a3", 1),
            edit(A, &gid(B, "b1"), json!({"op": "star"}), T + 1),
            export(A, f, T + 2),
            edit(A, &gid(C, "c1"), json!({"op": "star"}), T + 3),
            export(A, f, T + 4),
            edit(A, &gid(A, "a1"), json!({"op": "star"}), T + 5),
            export(A, f, T + 6),
            import(B, f, T + 10),
            import(C, f, T + 10),
            import(A, f, T + 10),
        ],
        |o| {
            converged(o, &[A, B, C]);
            assert_eq!(sessions_of(o, B).len(), 5);
            assert_eq!(list_len(&o["final"]["machines"][B]["curation"]), 3);
        },
    ));

    out.push(scenario(
        "scenario-gc-is-not-undone-by-a-mirror",
        &[A],
        &["mirror", "peer"],
        vec![
            session(A, "a1", 200),
            export(A, "mirror", T),
            json!({"do": "exchange", "a": "mirror", "b": "peer"}),
            json!({"do": "append", "origin": A, "native": "a1", "messages": 1}),
            export(A, "mirror", T + DAY),
            json!({"do": "gc", "origin": A, "store": "mirror", "now_ms": T + 2 * DAY}),
            json!({"do": "gc", "origin": A, "store": "mirror", "now_ms": T + 10 * DAY}),
            json!({"do": "exchange", "a": "mirror", "b": "peer"}),
        ],
        |o| {
            assert_eq!(
                list_len(&step(o, 5)["deleted"]),
                0,
                "one observation is not enough"
            );
            assert!(list_len(&step(o, 6)["deleted"]) >= 4);
            let stores = &o["final"]["stores"];
            assert!(
                stores["mirror"].as_u64().unwrap() < stores["peer"].as_u64().unwrap(),
                "the peer keeps its old copies, but they are not copied back: {stores}"
            );
        },
    ));

    // Issue 17 item 2: an older root arriving after a newer one never rolls sessions back.
    out.push(scenario(
        "scenario-older-root-never-rolls-back",
        &[A, B],
        &["old", f],
        vec![
            session(A, "a1", 3),
            export(A, "old", T),
            json!({"do": "append", "origin": A, "native": "a1", "messages": 2}),
            export(A, f, T + 10),
            import(B, f, T + 20),
            import(B, "old", T + 30),
        ],
        |o| {
            let s = step(o, 5);
            assert_eq!(list_len(&s["units"]), 0, "{s}");
            assert_eq!(list_len(&s["older_roots"]), 1, "{s}");
            assert_eq!(sessions_of(o, B)[&gid(A, "a1")]["messages"], 5);
        },
    ));

    out
}
