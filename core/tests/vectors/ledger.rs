//! Ledger vectors: event sets → registers, conflicts, projections and deferrals. Inputs are
//! hand-written; the generator asserts the property each vector is about before pinning the
//! golden output, so a wrong golden cannot be written.

use agentsync_core::{Event, EventBatch, Hlc, Op, OriginKey};
use serde_json::{Value, json};

use super::{ORIGIN, OTHER, OTHER_SEED, SEED, b, envelope, event_record, golden, run};

const T0: u64 = 1_764_078_194_000;
const S: &str = "laptop-a1b2c3~s-1";
const S2: &str = "laptop-a1b2c3~s-2";
const THIRD: &str = "server-778899";

fn h(offset_ms: u64, counter: u16) -> String {
    Hlc::new(T0 + offset_ms, counter).unwrap().to_string()
}

fn ev(origin: &str, hlc: String, session: &str, op: Value) -> Value {
    let mut v = json!({"origin": origin, "hlc": hlc, "session": session});
    for (k, x) in op.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn with_prev(mut v: Value, index: usize) -> Value {
    v["prev_ref"] = json!(index);
    v
}

fn rename(name: &str) -> Value {
    json!({"op": "rename", "name": name})
}

fn simple(op: &str) -> Value {
    json!({"op": op})
}

fn replay(name: &str, events: Vec<Value>, extra: Value) -> Value {
    let mut v = json!({"name": name, "op": "replay", "wall_ms": T0 + 60_000, "events": events});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// Pins the whole output after checking `assert` on it.
fn checked(v: Value, assert: impl Fn(&Value)) -> Value {
    let result = run(&v);
    assert!(result["ok"] == true, "{}: {result}", v["name"]);
    assert(&result["output"]);
    golden(v, &["state", "conflicts", "rounds", "rejected", "clock"])
}

fn conflicts(out: &Value) -> usize {
    out["conflicts"].as_array().unwrap().len()
}

fn deferred(out: &Value, round: usize) -> Vec<String> {
    out["rounds"][round]["deferred"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_owned())
        .collect()
}

fn winner<'a>(out: &'a Value, session: &str, field: &str) -> &'a Value {
    &out["state"]["registers"][session][field]["winner"]["value"]
}

fn batch_hex(seed: [u8; 32], origin: &str, events: Vec<Event>) -> String {
    let batch = EventBatch {
        origin: origin.parse().unwrap(),
        events,
    };
    hex::encode(batch.encode(&OriginKey::from_secret(seed)).unwrap())
}

fn event(hlc: String, session: &str, op: Op) -> Event {
    Event {
        hlc: hlc.parse().unwrap(),
        session: session.parse().unwrap(),
        prev: None,
        op,
    }
}

pub(crate) fn vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let none = json!({});

    out.push(checked(
        replay(
            "ledger-single-star",
            vec![ev(ORIGIN, h(0, 0), S, simple("star"))],
            none.clone(),
        ),
        |o| assert_eq!(winner(o, S, "starred"), &json!({"flag": true})),
    ));
    out.push(checked(
        replay(
            "ledger-fields-are-independent",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                ev(OTHER, h(1, 0), S, simple("star")),
                ev(THIRD, h(2, 0), S, json!({"op": "set_note", "note": "n"})),
            ],
            none.clone(),
        ),
        |o| assert_eq!(conflicts(o), 0),
    ));
    out.push(checked(
        replay(
            "ledger-concurrent-renames-conflict",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                ev(OTHER, h(5, 0), S, rename("B")),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(winner(o, S, "display_name"), &json!({"text": "B"}));
            assert_eq!(conflicts(o), 1);
        },
    ));
    out.push(checked(
        replay(
            "ledger-concurrent-same-value-no-conflict",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                ev(OTHER, h(5, 0), S, rename("A")),
            ],
            none.clone(),
        ),
        |o| assert_eq!(conflicts(o), 0),
    ));
    out.push(checked(
        replay(
            "ledger-informed-chain-no-conflict",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                with_prev(ev(OTHER, h(5, 0), S, rename("B")), 0),
                with_prev(ev(THIRD, h(9, 0), S, rename("C")), 1),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(winner(o, S, "display_name"), &json!({"text": "C"}));
            assert_eq!(conflicts(o), 0);
        },
    ));
    out.push(checked(
        replay(
            "ledger-three-concurrent-two-conflicts",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                ev(OTHER, h(1, 0), S, rename("B")),
                ev(THIRD, h(2, 0), S, rename("C")),
            ],
            none.clone(),
        ),
        |o| assert_eq!(conflicts(o), 2),
    ));
    out.push(checked(
        replay(
            "ledger-winner-saw-one-of-two",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                ev(OTHER, h(5, 0), S, rename("B")),
                with_prev(ev(THIRD, h(9, 0), S, rename("C")), 0),
            ],
            none.clone(),
        ),
        // C saw A (prev = A) but not B: only B is a conflict.
        |o| {
            assert_eq!(conflicts(o), 1);
            assert_eq!(o["conflicts"][0]["loser"]["value"], json!({"text": "B"}));
        },
    ));
    out.push(checked(
        replay(
            "ledger-winner-saw-the-later-one",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                ev(OTHER, h(5, 0), S, rename("B")),
                with_prev(ev(THIRD, h(9, 0), S, rename("C")), 1),
            ],
            none.clone(),
        ),
        // prev = B's key, which orders after A's: by the rule, C's writer had seen both.
        |o| assert_eq!(conflicts(o), 0),
    ));
    out.push(checked(
        replay(
            "ledger-same-hlc-origin-breaks-tie",
            vec![
                ev(OTHER, h(0, 0), S, rename("desktop")),
                ev(ORIGIN, h(0, 0), S, rename("laptop")),
            ],
            none.clone(),
        ),
        // "laptop-a1b2c3" > "desktop-d4e5f6".
        |o| assert_eq!(winner(o, S, "display_name"), &json!({"text": "laptop"})),
    ));
    out.push(checked(
        replay(
            "ledger-same-hlc-same-origin-id-breaks-tie",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("one")),
                ev(ORIGIN, h(0, 0), S, rename("two")),
            ],
            none.clone(),
        ),
        |o| assert_eq!(conflicts(o), 1),
    ));
    out.push(checked(
        replay(
            "ledger-duplicates-counted-once",
            vec![
                ev(ORIGIN, h(0, 0), S, simple("star")),
                ev(ORIGIN, h(0, 0), S, simple("star")),
                ev(ORIGIN, h(0, 0), S, simple("star")),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(o["rounds"][0]["applied"], 1);
            assert_eq!(conflicts(o), 0);
        },
    ));
    out.push(checked(
        replay(
            "ledger-star-toggle-informed",
            vec![
                ev(ORIGIN, h(0, 0), S, simple("star")),
                with_prev(ev(ORIGIN, h(1, 0), S, simple("unstar")), 0),
                with_prev(ev(OTHER, h(2, 0), S, simple("star")), 1),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(winner(o, S, "starred"), &json!({"flag": true}));
            assert_eq!(conflicts(o), 0);
        },
    ));
    out.push(checked(
        replay(
            "ledger-trash-restore-concurrent",
            vec![
                ev(ORIGIN, h(0, 0), S, simple("trash")),
                ev(OTHER, h(1, 0), S, simple("restore")),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(winner(o, S, "trashed"), &json!({"flag": false}));
            assert_eq!(conflicts(o), 1);
        },
    ));
    out.push(checked(
        replay(
            "ledger-purge-dominates-later-edits",
            vec![
                ev(ORIGIN, h(0, 0), S, simple("purge")),
                ev(OTHER, h(10, 0), S, rename("after")),
                ev(OTHER, h(11, 0), S, simple("restore")),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(o["state"]["registers"], json!({}));
            assert_eq!(o["rounds"][0]["ignored"], 2);
        },
    ));
    out.push(checked(
        replay(
            "ledger-purge-erases-earlier-conflicts",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("A")),
                ev(OTHER, h(1, 0), S, rename("B")),
                ev(THIRD, h(2, 0), S, simple("purge")),
                ev(ORIGIN, h(3, 0), S2, simple("star")),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(conflicts(o), 0);
            assert!(o["state"]["purged"].get(S).is_some());
            assert_eq!(winner(o, S2, "starred"), &json!({"flag": true}));
        },
    ));
    out.push(checked(
        replay(
            "ledger-two-purges-keep-the-least",
            vec![
                ev(OTHER, h(7, 0), S, simple("purge")),
                ev(ORIGIN, h(3, 0), S, simple("purge")),
            ],
            none.clone(),
        ),
        |o| assert_eq!(o["state"]["purged"][S]["origin"], json!(ORIGIN)),
    ));
    let anchor_uuid = json!({"source_uuid": "a0000000-0000-4000-8000-000000000005", "ordinal": 5});
    out.push(checked(
        replay(
            "ledger-pin-then-unpin-same-anchor",
            vec![
                ev(ORIGIN, h(0, 0), S, json!({"op": "pin", "anchor": anchor_uuid, "note": "here"})),
                with_prev(
                    ev(OTHER, h(1, 0), S, json!({"op": "unpin", "anchor": {"source_uuid": "a0000000-0000-4000-8000-000000000005", "ordinal": null}})),
                    0,
                ),
            ],
            none.clone(),
        ),
        |o| {
            let field = "pin:uuid:a0000000-0000-4000-8000-000000000005";
            assert_eq!(winner(o, S, field), &json!({"pin": null}));
            assert_eq!(conflicts(o), 0);
        },
    ));
    out.push(checked(
        replay(
            "ledger-pins-by-ordinal-and-uuid-are-different-fields",
            vec![
                ev(ORIGIN, h(0, 0), S, json!({"op": "pin", "anchor": {"source_uuid": "", "ordinal": 5}, "note": "by ordinal"})),
                ev(OTHER, h(1, 0), S, json!({"op": "pin", "anchor": anchor_uuid, "note": "by uuid"})),
            ],
            none.clone(),
        ),
        |o| {
            assert!(o["state"]["registers"][S].get("pin:ord:5").is_some());
            assert_eq!(conflicts(o), 0);
        },
    ));
    out.push(checked(
        replay(
            "ledger-pin-notes-concurrent",
            vec![
                ev(
                    ORIGIN,
                    h(0, 0),
                    S,
                    json!({"op": "pin", "anchor": anchor_uuid, "note": "mine"}),
                ),
                ev(
                    OTHER,
                    h(1, 0),
                    S,
                    json!({"op": "pin", "anchor": anchor_uuid, "note": "theirs"}),
                ),
            ],
            none.clone(),
        ),
        |o| assert_eq!(conflicts(o), 1),
    ));
    out.push(checked(
        replay(
            "ledger-tag-add-remove-concurrent",
            vec![
                ev(
                    ORIGIN,
                    h(0, 0),
                    S,
                    json!({"op": "tag_add", "tag": "release"}),
                ),
                ev(
                    OTHER,
                    h(1, 0),
                    S,
                    json!({"op": "tag_remove", "tag": "release"}),
                ),
                ev(OTHER, h(2, 0), S, json!({"op": "tag_add", "tag": "bug"})),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(winner(o, S, "tag:release"), &json!({"flag": false}));
            assert_eq!(winner(o, S, "tag:bug"), &json!({"flag": true}));
            assert_eq!(conflicts(o), 1);
        },
    ));
    out.push(checked(
        replay(
            "ledger-note-set-and-clear",
            vec![
                ev(
                    ORIGIN,
                    h(0, 0),
                    S,
                    json!({"op": "set_note", "note": "remember"}),
                ),
                with_prev(
                    ev(ORIGIN, h(1, 0), S, json!({"op": "set_note", "note": ""})),
                    0,
                ),
            ],
            none.clone(),
        ),
        |o| assert_eq!(winner(o, S, "note"), &json!({"text": ""})),
    ));
    out.push(checked(
        replay(
            "ledger-rename-to-empty-clears",
            vec![
                ev(ORIGIN, h(0, 0), S, rename("x")),
                with_prev(ev(ORIGIN, h(1, 0), S, rename("")), 0),
            ],
            none.clone(),
        ),
        |o| assert_eq!(o["rounds"][0]["projections"].as_array().unwrap().len(), 1),
    ));
    let far = T0 + 60_000 + 5 * 60_000 + 1;
    out.push(checked(
        replay(
            "ledger-far-future-deferred",
            vec![
                ev(
                    OTHER,
                    Hlc::new(far, 0).unwrap().to_string(),
                    S,
                    rename("forged"),
                ),
                ev(ORIGIN, h(0, 0), S, simple("star")),
            ],
            none.clone(),
        ),
        |o| {
            assert_eq!(deferred(o, 0), ["too_far_ahead"]);
            assert_eq!(
                o["clock"],
                json!(h(0, 0)),
                "the clock did not move to the forged time"
            );
        },
    ));
    out.push(checked(
        replay(
            "ledger-far-future-applies-when-time-catches-up",
            vec![ev(
                OTHER,
                Hlc::new(far, 0).unwrap().to_string(),
                S,
                rename("early"),
            )],
            json!({"retry": {"wall_ms": far}}),
        ),
        |o| {
            assert_eq!(deferred(o, 0), ["too_far_ahead"]);
            assert!(deferred(o, 1).is_empty());
            assert_eq!(winner(o, S, "display_name"), &json!({"text": "early"}));
        },
    ));
    out.push(checked(
        replay(
            "ledger-custom-max-drift",
            vec![ev(OTHER, h(60_000 + 2_000, 0), S, simple("star"))],
            json!({"max_drift_ms": 1000}),
        ),
        |o| assert_eq!(deferred(o, 0), ["too_far_ahead"]),
    ));
    out.push(checked(
        replay(
            "ledger-missing-target-deferred-then-applied",
            vec![
                ev(OTHER, h(0, 0), S2, simple("star")),
                ev(OTHER, h(1, 0), S, simple("star")),
                ev(OTHER, h(2, 0), S2, simple("purge")),
            ],
            json!({"present": [S], "retry": {"wall_ms": T0 + 70_000, "present": [S, S2]}}),
        ),
        |o| {
            assert_eq!(deferred(o, 0), ["target_missing"]);
            assert_eq!(o["rounds"][1]["ignored"], 1, "purged meanwhile");
        },
    ));
    out.push(checked(
        replay(
            "ledger-clock-resumes-ahead",
            vec![ev(OTHER, h(0, 0), S, simple("star"))],
            json!({"clock": h(30_000, 3)}),
        ),
        |o| assert_eq!(o["clock"], json!(h(30_000, 3))),
    ));

    // Batches: decoded, verified against pinned keys, then replayed.
    let good = batch_hex(
        SEED,
        ORIGIN,
        vec![
            event(h(0, 0), S, Op::Star),
            event(
                h(1, 0),
                S,
                Op::Rename {
                    name: "from batch".into(),
                },
            ),
        ],
    );
    let other_key = hex::encode(OriginKey::from_secret(OTHER_SEED).public().0);
    let own_key = hex::encode(OriginKey::from_secret(SEED).public().0);
    out.push(checked(
        replay(
            "ledger-batch-pinned-key",
            vec![],
            json!({"batches": [{"canonical_hex": good}], "pinned": {"pinned": {ORIGIN: own_key}}}),
        ),
        |o| {
            assert!(o["rejected"].as_array().unwrap().is_empty());
            assert_eq!(o["rounds"][0]["applied"], 2);
        },
    ));
    out.push(checked(
        replay("ledger-batch-wrong-key", vec![ev(OTHER, h(5, 0), S, simple("trash"))], json!({"batches": [{"canonical_hex": good}], "pinned": {"pinned": {ORIGIN: other_key}}})),
        |o| {
            assert_eq!(o["rejected"][0]["class"], "KeyMismatch");
            assert_eq!(o["rounds"][0]["applied"], 1, "the rest still applies");
        },
    ));
    let mut swapped = hex::decode(&good).unwrap();
    let at = swapped.len() - 96;
    swapped[at..at + 32].copy_from_slice(&OriginKey::from_secret(OTHER_SEED).public().0);
    out.push(checked(
        replay(
            "ledger-batch-bad-signature",
            vec![],
            json!({"batches": [{"canonical_hex": hex::encode(swapped)}, {"canonical_hex": good}]}),
        ),
        |o| {
            assert_eq!(o["rejected"][0]["class"], "BadSignature");
            assert_eq!(o["rounds"][0]["applied"], 2);
        },
    ));
    let unparseable = envelope(
        5,
        1,
        b().str(ORIGIN)
            .varint(1)
            .record(event_record("2026-11-25T13:43:14Z", S, 2, b())),
        Some(SEED),
    );
    out.push(checked(
        replay(
            "ledger-batch-unparseable-hlc",
            vec![],
            json!({"batches": [{"canonical_hex": unparseable.hex()}]}),
        ),
        |o| assert_eq!(o["rejected"][0]["class"], "InvalidName"),
    ));
    let forged_future = batch_hex(
        OTHER_SEED,
        OTHER,
        vec![event(
            Hlc::new(T0 + 86_400_000, 0).unwrap().to_string(),
            S,
            Op::Rename {
                name: "forever".into(),
            },
        )],
    );
    out.push(checked(
        replay(
            "ledger-batch-signed-far-future",
            vec![ev(ORIGIN, h(0, 0), S, rename("honest"))],
            json!({"batches": [{"canonical_hex": forged_future}]}),
        ),
        |o| {
            assert_eq!(deferred(o, 0), ["too_far_ahead"]);
            assert_eq!(winner(o, S, "display_name"), &json!({"text": "honest"}));
        },
    ));
    let unknown_op = envelope(
        5,
        1,
        b().str(ORIGIN)
            .varint(2)
            .record(event_record(&h(0, 0), S, 77, b().str("future")))
            .record(event_record(&h(1, 0), S, 2, b())),
        Some(SEED),
    );
    out.push(checked(
        replay(
            "ledger-batch-unknown-op-deferred",
            vec![],
            json!({"batches": [{"canonical_hex": unknown_op.hex()}]}),
        ),
        |o| {
            assert_eq!(deferred(o, 0), ["unknown_op"]);
            assert_eq!(winner(o, S, "starred"), &json!({"flag": true}));
        },
    ));
    out.push(checked(
        replay(
            "ledger-batch-and-loose-events-mixed",
            vec![
                ev(OTHER, h(0, 500), S, rename("loose")),
                ev(ORIGIN, h(0, 0), S, simple("star")),
            ],
            json!({"batches": [{"canonical_hex": good}]}),
        ),
        |o| {
            assert_eq!(o["rounds"][0]["duplicates"], 0);
            assert_eq!(winner(o, S, "display_name"), &json!({"text": "from batch"}));
        },
    ));
    out
}
