//! The curation ledger: convergence under any delivery order, the causal conflict rule, and the
//! edge cases of DESIGN.md §5 (numbered as there).

use std::collections::BTreeMap;

use agentsync_core::ledger::{Curation, DeferReason, EditError, PinValue, Value};
use agentsync_core::{
    Anchor, Event, EventBatch, Field, Hlc, HlcClock, KeyRing, LedgerState, Op, OriginId, OriginKey,
    Projection, SessionGid, SignedEvent, Trust,
};
use proptest::prelude::*;

fn origin(s: &str) -> OriginId {
    s.parse().unwrap()
}

fn gid(s: &str) -> SessionGid {
    format!("laptop-a1b2c3~{s}").parse().unwrap()
}

fn all(_: &SessionGid) -> bool {
    true
}

const T0: u64 = 1_764_078_194_000;

/// A simulated machine: its origin, ledger, clock and wall-clock skew.
struct Machine {
    origin: OriginId,
    state: LedgerState,
    clock: HlcClock,
    skew: i64,
    log: Vec<SignedEvent>,
}

impl Machine {
    fn new(name: &str, skew: i64) -> Self {
        Machine {
            origin: origin(name),
            state: LedgerState::default(),
            clock: HlcClock::default(),
            skew,
            log: Vec::new(),
        }
    }

    fn wall(&self, t: u64) -> u64 {
        (t as i64 + self.skew) as u64
    }

    fn edit(&mut self, t: u64, session: &SessionGid, op: Op) -> SignedEvent {
        let wall = self.wall(t);
        let e = self
            .state
            .edit(&mut self.clock, wall, &self.origin, session.clone(), op)
            .unwrap();
        self.log.push(e.clone());
        e
    }

    fn receive(&mut self, t: u64, events: &[SignedEvent]) {
        let wall = self.wall(t);
        let r = self
            .state
            .replay(&mut self.clock, wall, events.iter().cloned(), &all);
        assert!(r.deferred.is_empty(), "{:?}", r.deferred);
        self.log.extend(events.iter().cloned());
    }
}

fn state_bytes(state: &LedgerState) -> String {
    serde_json::to_string(state).unwrap()
}

fn replay_fresh(events: &[SignedEvent]) -> LedgerState {
    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    let r = state.replay(&mut clock, u64::MAX / 4, events.iter().cloned(), &all);
    assert!(r.deferred.is_empty());
    state
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let anchor = Anchor {
        source_uuid: "m-1".into(),
        ordinal: Some(1),
    };
    prop_oneof![
        prop::sample::select(vec!["a", "b", ""]).prop_map(|n| Op::Rename { name: n.into() }),
        Just(Op::Star),
        Just(Op::Unstar),
        Just(Op::Trash),
        Just(Op::Restore),
        prop::sample::select(vec!["x", "y"]).prop_map(move |note| Op::Pin {
            anchor: anchor.clone(),
            note: note.into()
        }),
        Just(Op::Unpin {
            anchor: Anchor {
                source_uuid: "m-1".into(),
                ordinal: None
            }
        }),
        Just(Op::TagAdd { tag: "t".into() }),
        Just(Op::TagRemove { tag: "t".into() }),
        prop::sample::select(vec!["n1", "n2"]).prop_map(|n| Op::SetNote { note: n.into() }),
        Just(Op::Purge),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Edit {
        machine: usize,
        session: usize,
        op: Op,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..3usize, 0..3usize, op_strategy())
                .prop_map(|(machine, session, op)| Step::Edit { machine, session, op }),
            1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Sync { from, to }),
        ],
        1..40,
    )
}

/// Runs a random history on three machines with skewed clocks; returns every event made.
fn simulate(steps: &[Step], skews: [i64; 3]) -> (Vec<Machine>, Vec<SignedEvent>) {
    let mut machines: Vec<Machine> = ["alpha", "beta", "gamma"]
        .iter()
        .zip(skews)
        .map(|(n, s)| Machine::new(n, s))
        .collect();
    let sessions = [gid("s0"), gid("s1"), gid("s2")];
    let mut all_events = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let t = T0 + i as u64 * 1000;
        match step {
            Step::Edit {
                machine,
                session,
                op,
            } => {
                let m = &mut machines[*machine];
                if m.state.is_purged(&sessions[*session]) {
                    continue;
                }
                all_events.push(m.edit(t, &sessions[*session], op.clone()));
            }
            Step::Sync { from, to } => {
                let events = machines[*from].log.clone();
                machines[*to].receive(t, &events);
            }
        }
    }
    (machines, all_events)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every permutation and duplication of the same events gives byte-identical state and the
    /// same conflicts, and every machine converges to it once it has every event.
    #[test]
    fn replay_is_order_and_duplicate_independent(
        steps in steps(),
        skews in prop::array::uniform3(-120_000i64..120_000),
        order in any::<prop::sample::Index>(),
        seed: u64,
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let (mut machines, events) = simulate(&steps, skews);
        prop_assume!(!events.is_empty());
        let reference = replay_fresh(&events);

        // A permuted copy with duplicates, delivered in several deliveries.
        let mut shuffled = events.clone();
        for d in &dups {
            shuffled.push(events[d.index(events.len())].clone());
        }
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let split = order.index(shuffled.len());
        let mut state = LedgerState::default();
        let mut clock = HlcClock::default();
        state.replay(&mut clock, u64::MAX / 4, shuffled[..split].iter().cloned(), &all);
        state.replay(&mut clock, u64::MAX / 4, shuffled[split..].iter().cloned(), &all);
        state.replay(&mut clock, u64::MAX / 4, shuffled.iter().cloned(), &all);
        prop_assert_eq!(state_bytes(&state), state_bytes(&reference));
        prop_assert_eq!(state.conflicts(), reference.conflicts());

        // Full exchange: every machine ends in the reference state, local edits included.
        for m in machines.iter_mut() {
            let t = T0 + 10_000_000;
            m.receive(t, &events);
            prop_assert_eq!(state_bytes(&m.state), state_bytes(&reference));
        }
    }

    /// Edits that each saw the previous one never conflict, across machines and clock skews.
    #[test]
    fn informed_edits_never_conflict(
        ops in prop::collection::vec((0..3usize, op_strategy()), 1..30),
        skews in prop::array::uniform3(-120_000i64..120_000),
    ) {
        let mut machines: Vec<Machine> = ["alpha", "beta", "gamma"]
            .iter().zip(skews).map(|(n, s)| Machine::new(n, s)).collect();
        let s = gid("s0");
        let mut log: Vec<SignedEvent> = Vec::new();
        for (i, (m, op)) in ops.into_iter().enumerate() {
            if op == Op::Purge { continue; }
            let t = T0 + i as u64 * 10;
            let machine = &mut machines[m];
            machine.receive(t, &log);
            let e = machine.edit(t, &s, op);
            log.push(e);
        }
        let state = replay_fresh(&log);
        prop_assert!(state.conflicts().is_empty(), "{:?}", state.conflicts());
    }

    /// Concurrent edits of one field (no machine saw another's) make every loser with another
    /// value a conflict, and nothing else.
    #[test]
    fn concurrent_edits_conflict_exactly_on_the_losers(
        names in prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "d"]), 2..6),
        skews in prop::collection::vec(-120_000i64..120_000, 6),
    ) {
        let s = gid("s0");
        let mut events = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let mut m = Machine::new(&format!("m{i}"), skews[i]);
            events.push(m.edit(T0, &s, Op::Rename { name: (*name).into() }));
        }
        let state = replay_fresh(&events);
        let winner = events.iter().max_by_key(|e| e.key()).unwrap();
        let Op::Rename { name: winning } = &winner.event.op else { unreachable!() };
        let expected: Vec<_> = {
            let mut l: Vec<_> = events.iter()
                .filter(|e| e.key() != winner.key())
                .filter(|e| !matches!(&e.event.op, Op::Rename { name } if name == winning))
                .map(|e| e.key())
                .collect();
            l.sort();
            l
        };
        let got: Vec<_> = state.conflicts().into_iter().map(|c| c.loser.key).collect();
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn edge_3_a_local_edit_is_not_overwritten_by_an_older_remote_event() {
    let s = gid("s0");
    let mut laptop = Machine::new("laptop", 0);
    let mut desktop = Machine::new("desktop", 0);
    let old_remote = desktop.edit(T0, &s, Op::Rename { name: "old".into() });
    laptop.edit(
        T0 + 5_000,
        &s,
        Op::Rename {
            name: "mine".into(),
        },
    );
    laptop.receive(T0 + 6_000, &[old_remote]);
    assert_eq!(
        laptop.state.value(&s, &Field::DisplayName),
        Some(&Value::Text("mine".into()))
    );
    // The remote value lost without the local writer having seen it: a visible conflict.
    assert_eq!(laptop.state.conflicts().len(), 1);
}

#[test]
fn edge_4_a_lagging_machine_orders_its_edit_after_what_it_has_seen() {
    let s = gid("s0");
    let mut ahead = Machine::new("ahead", 60_000);
    let mut lagging = Machine::new("lagging", -60_000);
    let first = ahead.edit(T0, &s, Op::Star);
    lagging.receive(T0 + 1_000, std::slice::from_ref(&first));
    let second = lagging.edit(T0 + 1_000, &s, Op::Unstar);
    assert!(second.event.hlc > first.event.hlc);
    let state = replay_fresh(&[first, second]);
    assert_eq!(state.value(&s, &Field::Starred), Some(&Value::Flag(false)));
    assert!(
        state.conflicts().is_empty(),
        "the later edit had seen the earlier one"
    );
}

#[test]
fn edge_5_remote_timestamps_are_observed_before_their_events_apply() {
    let s = gid("s0");
    let mut remote = Machine::new("remote", 30_000);
    let events: Vec<_> = (0..5)
        .map(|i| {
            remote.edit(
                T0 + i,
                &s,
                Op::TagAdd {
                    tag: format!("t{i}"),
                },
            )
        })
        .collect();
    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    state.replay(&mut clock, T0, events.clone(), &all);
    let newest = events.iter().map(|e| e.event.hlc).max().unwrap();
    assert!(clock.last() >= newest);
    let local = state
        .edit(&mut clock, T0, &origin("local-1"), s, Op::Star)
        .unwrap();
    assert!(local.event.hlc > newest);
}

#[test]
fn edge_6_an_event_for_a_missing_session_defers_only_itself() {
    let present = gid("here");
    let missing = gid("not-yet");
    let mut m = Machine::new("remote", 0);
    let events = vec![
        m.edit(T0, &missing, Op::Star),
        m.edit(T0 + 1, &present, Op::Star),
        m.edit(
            T0 + 2,
            &missing,
            Op::Rename {
                name: "later".into(),
            },
        ),
        m.edit(T0 + 3, &present, Op::Trash),
        m.edit(T0 + 4, &missing, Op::Purge),
    ];
    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    let r = state.replay(&mut clock, T0, events.clone(), &|g| *g == present);
    assert_eq!(
        r.applied, 3,
        "both events of the present session and the purge apply"
    );
    assert_eq!(r.deferred.len(), 2);
    assert!(
        r.deferred
            .iter()
            .all(|d| d.session == missing && d.reason == DeferReason::TargetMissing)
    );
    assert!(state.is_purged(&missing), "a tombstone needs no target");
    assert!(r.projections.contains(&Projection::Purge {
        session: missing.clone()
    }));
    // Retried once the session exists: the purge dominates, so they are ignored, not applied.
    let again = state.replay(&mut clock, T0, events, &all);
    assert_eq!(again.ignored, 2);
}

#[test]
fn edge_8_bulk_edits_emit_one_event_per_session() {
    let mut m = Machine::new("laptop", 0);
    let sessions: Vec<_> = (0..50).map(|i| gid(&format!("s{i}"))).collect();
    let events: Vec<_> = sessions.iter().map(|s| m.edit(T0, s, Op::Star)).collect();
    assert_eq!(events.len(), 50);
    let ids: std::collections::BTreeSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 50);
    let batch = EventBatch {
        origin: m.origin.clone(),
        events: events.iter().map(|e| e.event.clone()).collect(),
    };
    let key = OriginKey::from_secret([1; 32]);
    let decoded = EventBatch::decode(&batch.encode(&key).unwrap()).unwrap();
    assert_eq!(decoded.signed_events(), events);
}

#[test]
fn edge_11_baseline_publishes_old_curation_once() {
    let me = origin("laptop");
    let s0 = gid("s0");
    let s1 = gid("s1");
    let curation = BTreeMap::from([
        (
            s0.clone(),
            Curation {
                display_name: "Release".into(),
                starred: true,
                tags: vec!["ship".into()],
                pins: vec![PinValue {
                    anchor: Anchor {
                        source_uuid: "u-1".into(),
                        ordinal: Some(3),
                    },
                    note: "here".into(),
                }],
                ..Curation::default()
            },
        ),
        (s1.clone(), Curation::default()),
    ]);
    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    // A field already covered by the register (an earlier edit) is skipped.
    state
        .edit(&mut clock, T0, &me, s0.clone(), Op::Unstar)
        .unwrap();
    let first = state.baseline(&mut clock, T0, &me, &curation);
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first.iter().all(|e| e.event.op != Op::Star));
    assert!(state.baseline(&mut clock, T0, &me, &curation).is_empty());
    // A peer replaying the baseline gets the curation.
    let peer = replay_fresh(&first);
    assert_eq!(
        peer.value(&s0, &Field::DisplayName),
        Some(&Value::Text("Release".into()))
    );
    assert_eq!(
        peer.value(&s0, &Field::Tag("ship".into())),
        Some(&Value::Flag(true))
    );
}

#[test]
fn edge_12_a_far_future_timestamp_is_deferred_and_cannot_win_forever() {
    let s = gid("s0");
    let forger = origin("forger");
    let forged = Event {
        hlc: Hlc::new(T0 + 365 * 24 * 3_600_000, 0).unwrap(),
        session: s.clone(),
        prev: None,
        op: Op::Rename {
            name: "forged".into(),
        },
    };
    let forged = SignedEvent {
        origin: forger,
        id: forged.id(),
        event: forged,
    };
    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    let r = state.replay(&mut clock, T0, [forged.clone()], &all);
    assert!(matches!(
        r.deferred[0].reason,
        DeferReason::TooFarAhead { .. }
    ));
    assert_eq!(
        clock.last(),
        Hlc::new(0, 0).unwrap(),
        "the clock did not move"
    );
    assert!(state.value(&s, &Field::DisplayName).is_none());
    // Honest edits go on with honest timestamps.
    let mine = state
        .edit(
            &mut clock,
            T0,
            &origin("laptop"),
            s.clone(),
            Op::Rename {
                name: "honest".into(),
            },
        )
        .unwrap();
    assert!(mine.event.hlc.millis <= T0);
}

#[test]
fn purge_dominates_every_order_and_blocks_edits() {
    let s = gid("s0");
    let mut a = Machine::new("alpha", 0);
    let mut b = Machine::new("beta", 0);
    let rename = a.edit(T0, &s, Op::Rename { name: "x".into() });
    let purge = b.edit(T0 - 10_000, &s, Op::Purge);
    let star = a.edit(T0 + 1, &s, Op::Star);
    let forward = replay_fresh(&[rename.clone(), purge.clone(), star.clone()]);
    let backward = replay_fresh(&[star, purge, rename]);
    assert_eq!(state_bytes(&forward), state_bytes(&backward));
    assert!(forward.is_purged(&s));
    assert!(forward.conflicts().is_empty());
    let mut state = forward;
    assert_eq!(
        state
            .edit(
                &mut HlcClock::default(),
                T0,
                &origin("alpha"),
                s.clone(),
                Op::Star
            )
            .unwrap_err(),
        EditError::Purged(s)
    );
}

#[test]
fn projections_report_only_changed_winners() {
    let s = gid("s0");
    let mut m = Machine::new("remote", 0);
    let star = m.edit(T0, &s, Op::Star);
    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    let r = state.replay(&mut clock, T0, [star.clone()], &all);
    assert_eq!(
        r.projections,
        vec![Projection::Set {
            session: s.clone(),
            field: Field::Starred,
            value: Value::Flag(true)
        }]
    );
    let again = state.replay(&mut clock, T0, [star], &all);
    assert!(again.projections.is_empty());
    assert_eq!(again.duplicates, 1);
}

#[test]
fn a_batch_signed_by_another_key_is_rejected() {
    let laptop = origin("laptop");
    let mut ring = KeyRing::default();
    let real = OriginKey::from_secret([1; 32]);
    let impostor = OriginKey::from_secret([2; 32]);
    assert_eq!(
        ring.check(&laptop, &real.public()).unwrap(),
        Trust::NewlyPinned
    );
    let batch = EventBatch {
        origin: laptop.clone(),
        events: vec![Event {
            hlc: Hlc::new(T0, 0).unwrap(),
            session: gid("s0"),
            prev: None,
            op: Op::Star,
        }],
    };
    let genuine = EventBatch::decode(&batch.encode(&real).unwrap()).unwrap();
    assert_eq!(ring.check(&laptop, &genuine.signer).unwrap(), Trust::Pinned);
    let forged = EventBatch::decode(&batch.encode(&impostor).unwrap()).unwrap();
    let err = ring.check(&laptop, &forged.signer).unwrap_err();
    assert_eq!(err.class(), "KeyMismatch");
}
