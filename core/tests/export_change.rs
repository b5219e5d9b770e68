//! An export state kept as its head and one row per session, changed run after run by what
//! each run reports ([`ExportChange`]), is the state kept whole: whatever the runs export,
//! append, purge, amend or fail to export.

mod common;

use std::collections::BTreeMap;

use agentsync_core::sync::export::{ExportState, ExportedSession, SessionExport};
use agentsync_core::{EventsMark, NativeId, OriginId, OriginKey};
use proptest::collection::vec;
use proptest::prelude::*;

/// What one run does to one session (by number).
#[derive(Debug, Clone)]
enum Step {
    /// Exports the session with this many messages more than it had (a new one: from 0).
    Grow(usize, usize),
    /// Purges it.
    Remove(usize),
    /// A message of it changed after the fact (`ExportState::amended`), then it is exported.
    Amend(usize, u64),
    /// Hands messages from the wrong ordinal: the session fails and keeps its export.
    Fail(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..12, 1usize..40).prop_map(|(n, more)| Step::Grow(n, more)),
        1 => (0usize..12).prop_map(Step::Remove),
        1 => (0usize..12, 0u64..60).prop_map(|(n, o)| Step::Amend(n, o)),
        1 => (0usize..12).prop_map(Step::Fail),
    ]
}

fn native(n: usize) -> NativeId {
    format!("s{n}").parse().expect("a native id")
}

/// Runs `steps` as one export over `state`; the state it leaves and what it changed.
fn run(
    state: &ExportState,
    counts: &mut BTreeMap<usize, usize>,
    steps: &[Step],
    key: &OriginKey,
) -> (ExportState, agentsync_core::sync::export::ExportChange) {
    let mut state = state.clone();
    for s in steps {
        if let Step::Amend(n, ordinal) = s {
            state.amended(&native(*n), *ordinal);
        }
    }
    let mut exporter = state.clone().into_exporter();
    for s in steps {
        let (n, count, from) = match s {
            Step::Grow(n, more) => (*n, counts.get(n).copied().unwrap_or(0) + more, None),
            Step::Amend(n, _) => (*n, counts.get(n).copied().unwrap_or(0) + 1, None),
            Step::Fail(n) => (*n, counts.get(n).copied().unwrap_or(0) + 3, Some(1)),
            Step::Remove(n) => {
                exporter.remove(&native(*n));
                counts.remove(n);
                continue;
            }
        };
        let marker = format!("{count}-{}", counts.len());
        let start = state.tail_start(&native(n), &marker).unwrap_or(0);
        let messages = common::messages(n, count);
        let from = from.map_or(start, |wrong| start + wrong) as usize;
        let exported = exporter.session(SessionExport {
            marker,
            session: common::session(&format!("s{n}")),
            messages: messages.get(from..).unwrap_or(&[]),
            usage_events: Vec::new(),
        });
        if exported.is_ok() {
            counts.insert(n, count);
        }
    }
    let touched = exporter.touched().clone();
    let (_, next) = exporter
        .commit(0, 0, EventsMark::NoBatch, key)
        .expect("commit");
    let change = next.change(&touched);
    (next, change)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_state_kept_as_rows_is_the_state_kept_whole(runs in vec(vec(step(), 0..6), 1..8)) {
        let key = OriginKey::from_secret([3; 32]);
        let origin: OriginId = "laptop".parse().expect("an origin");
        let mut whole = ExportState::new(origin);
        let mut rows: BTreeMap<NativeId, ExportedSession> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for steps in &runs {
            let (next, change) = run(&whole, &mut counts, steps, &key);
            // A host keeping the whole state applies the change to it.
            prop_assert_eq!(&change.clone().applied_to(Some(whole.clone())), &next);
            // A host keeping rows writes the head and the touched rows, nothing else.
            prop_assert!(change.head.sessions.is_empty());
            prop_assert!(change.head.checkpoint.sessions().is_empty());
            let head = change.head;
            for (native, exported) in change.sessions {
                match exported {
                    Some(e) => rows.insert(native, e),
                    None => rows.remove(&native),
                };
            }
            let read = ExportState::from_parts(head, rows.clone());
            prop_assert_eq!(&read, &next);
            whole = next;
        }
    }
}

#[test]
fn a_state_saved_whole_reads_as_its_head_and_rows() {
    let key = OriginKey::from_secret([3; 32]);
    let origin: OriginId = "laptop".parse().expect("an origin");
    let mut counts = BTreeMap::new();
    let (state, change) = run(
        &ExportState::new(origin),
        &mut counts,
        &[Step::Grow(1, 30), Step::Grow(2, 5)],
        &key,
    );
    assert_eq!(change.sessions.len(), 2);
    // The head of an older version's state is the whole state: the rows go over it.
    assert_eq!(ExportState::from_parts(state.clone(), []), state);
    assert_eq!(
        ExportState::from_parts(state.clone(), state.sessions.clone()),
        state
    );
    // A run that changes nothing reports no session.
    let (again, unchanged) = run(&state, &mut counts, &[], &key);
    assert_eq!(again, state);
    assert!(unchanged.sessions.is_empty());
    assert_eq!(unchanged.head, state.head());
}
