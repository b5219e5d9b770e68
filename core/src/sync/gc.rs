//! GC planning for the local origin: what it may delete from a store.
//!
//! Lock-free and conservative: only the origin's own keys, only artifacts its newest root does
//! not reach, only once they are older than the grace window (which also covers clock skew and
//! listing lag) *and* were already seen unreachable by a GC at least a grace window earlier
//! (two observations, kopia's rule: one listing that missed a key's reference, or a file time
//! that lies, is never enough), never event batches, and nothing at all for an origin that has
//! no root yet. Superseded roots go by the same rule; the newest root always stays.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::id::ArtifactId;
use crate::names::{ArtifactKey, OriginId};
use crate::sync::store::Listing;

/// Default grace window: 7 days.
pub const DEFAULT_GRACE_MS: u64 = 7 * 24 * 3_600_000;
/// Added to the grace window for clocks that disagree.
pub const SKEW_MARGIN_MS: u64 = 10 * 60_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcPlan {
    /// Keys to delete, in byte order.
    pub delete: Vec<String>,
    /// Unreachable keys kept because they are younger than the grace window.
    pub kept_young: usize,
    /// Listed keys that are not artifacts of this origin, or events: never touched.
    pub ignored: usize,
    /// When each unreachable key was first seen unreachable (keep it for the next GC of the
    /// same store; keys reachable again, or deleted, are dropped).
    pub observed: BTreeMap<String, u64>,
}

/// Plans the deletions among `listing` (the origin's own prefixes and its roots).
/// `reachable` holds every segment, manifest and bucket id the newest root reaches;
/// `observed` is the [`GcPlan::observed`] of the previous GC of the same store.
pub fn plan(
    origin: &OriginId,
    newest_root: Option<&ArtifactKey>,
    reachable: &BTreeSet<ArtifactId>,
    listing: &[Listing],
    observed: &BTreeMap<String, u64>,
    now_ms: u64,
    grace_ms: u64,
) -> GcPlan {
    let mut out = GcPlan::default();
    let Some(newest_root) = newest_root else {
        out.ignored = listing.len();
        return out;
    };
    let horizon = now_ms.saturating_sub(grace_ms.saturating_add(SKEW_MARGIN_MS));
    for entry in listing {
        let Ok(key) = entry.key.parse::<ArtifactKey>() else {
            out.ignored += 1;
            continue;
        };
        if key.origin() != origin || matches!(key, ArtifactKey::Events { .. }) {
            out.ignored += 1;
            continue;
        }
        let unreachable = match &key {
            ArtifactKey::Root { .. } => key != *newest_root && key < *newest_root,
            other => !reachable.contains(&other.id()),
        };
        if !unreachable {
            continue;
        }
        let first_seen = observed
            .get(&entry.key)
            .copied()
            .unwrap_or(now_ms)
            .min(now_ms);
        // Without a modification time the age is unknown: keep it.
        match entry.modified_ms {
            Some(t) if t <= horizon && first_seen <= horizon => out.delete.push(entry.key.clone()),
            _ => {
                out.kept_young += 1;
                out.observed.insert(entry.key.clone(), first_seen);
            }
        }
    }
    out.delete.sort();
    out
}
