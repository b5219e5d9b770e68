//! Crash points for the crash matrix (issue 15): with `AGENTSYNC_CRASH_AT=<point>:<n>` in its
//! environment, the process aborts the n-th time it passes `point`: no destructor runs and no
//! buffer is flushed, as under `kill -9`, but at a chosen step instead of a random moment.
//! Each point sits right after a step that made something durable (a transaction committed,
//! a round of store writes done), which is where a crash tests what the next run assumes.
//! Without the variable a point costs one atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every crash point of a sync run, for the tests that walk them all.
pub const POINTS: &[&str] = &[
    "ingest.batch",
    "sync.store",
    "sync.apply",
    "sync.exported",
    "sync.imported",
    "sync.replayed",
    "sync.finished",
];

/// The crash points of `rebuild`: the new database complete under its temporary name, and
/// the old one moved aside.
pub const REBUILD_POINTS: &[&str] = &["rebuild.built", "rebuild.aside"];

static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);

fn plan() -> &'static Option<(String, u64)> {
    PLAN.get_or_init(|| {
        let value = std::env::var("AGENTSYNC_CRASH_AT").ok()?;
        let (point, n) = value.rsplit_once(':')?;
        Some((point.to_owned(), n.parse().ok()?))
    })
}

/// Marks that the process passed `point` (one of [`POINTS`]).
pub fn passed(point: &'static str) {
    debug_assert!(
        POINTS.contains(&point) || REBUILD_POINTS.contains(&point),
        "{point} is not listed"
    );
    if let Some((wanted, n)) = plan()
        && wanted == point
        && PASSED.fetch_add(1, Ordering::Relaxed) + 1 == *n
    {
        std::process::abort();
    }
}
