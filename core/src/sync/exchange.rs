//! Exchange: relay artifacts between two stores, guided by roots.
//!
//! For each origin, a store receives what the origin's newest root reaches (the buckets,
//! manifests and segments it lacks, then the root itself, last) and the origin's event batches
//! it lacks. Bytes are copied verbatim, after full verification (id, limits, decoding,
//! signature, the pinned key). Guiding by roots instead of a blind union of names keeps a
//! peer's mirror from copying back what the origin's GC deleted.
//!
//! A corrupt or missing artifact is reported and skipped, and the root that needs it is not
//! copied, so a store never holds a root whose data it lacks.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::checkpoint::{Bucket, Root};
use crate::id::ArtifactId;
use crate::keyring::KeyRing;
use crate::manifest::Manifest;
use crate::names::{ArtifactKey, OriginId, ROOTS_PREFIX};
use crate::sync::import::Problem;
use crate::sync::store::{PutOutcome, Store, StoreError, list_all};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeReport {
    /// Keys written to the destination, in write order.
    pub copied: Vec<String>,
    pub quarantined: Vec<Problem>,
    pub deferred: Vec<Problem>,
}

impl ExchangeReport {
    fn merge(&mut self, other: ExchangeReport) {
        self.copied.extend(other.copied);
        self.quarantined.extend(other.quarantined);
        self.deferred.extend(other.deferred);
    }
}

fn store_problem(e: &StoreError) -> Problem {
    Problem {
        key: e.key.clone(),
        class: "StoreError".into(),
        reason: e.to_string(),
    }
}

fn newest_roots(store: &mut dyn Store) -> Result<BTreeMap<OriginId, ArtifactKey>, StoreError> {
    let mut out: BTreeMap<OriginId, ArtifactKey> = BTreeMap::new();
    for entry in list_all(store, ROOTS_PREFIX, None)? {
        if let Ok(key @ ArtifactKey::Root { .. }) = entry.key.parse::<ArtifactKey>() {
            let slot = out
                .entry(key.origin().clone())
                .or_insert_with(|| key.clone());
            if key > *slot {
                *slot = key;
            }
        }
    }
    Ok(out)
}

struct Relay<'a> {
    src: &'a mut dyn Store,
    dst: &'a mut dyn Store,
    keyring: &'a mut KeyRing,
    report: ExchangeReport,
}

impl Relay<'_> {
    /// Fetches and verifies `key` from the source; `None` (reported) if missing or corrupt.
    fn fetch(&mut self, key: &ArtifactKey) -> Option<(Vec<u8>, Artifact)> {
        let text = key.to_string();
        let bytes = match self.src.get(&text) {
            Ok(Some(b)) => b,
            Ok(None) => {
                self.report.deferred.push(Problem {
                    key: text,
                    class: "Missing".into(),
                    reason: "referenced but not in the source store".into(),
                });
                return None;
            }
            Err(e) => {
                self.report.deferred.push(store_problem(&e));
                return None;
            }
        };
        match Artifact::open(key, &bytes) {
            Ok(artifact) => Some((bytes, artifact)),
            Err(e) => {
                let problem = Problem::new(&text, &e);
                if e.is_deferred() {
                    self.report.deferred.push(problem);
                } else {
                    self.report.quarantined.push(problem);
                }
                None
            }
        }
    }

    fn put(&mut self, key: &ArtifactKey, bytes: &[u8]) -> bool {
        let text = key.to_string();
        match self.dst.put_if_absent(&text, bytes) {
            Ok(PutOutcome::Created) => {
                self.report.copied.push(text);
                true
            }
            Ok(PutOutcome::Exists) => true,
            Err(e) => {
                self.report.deferred.push(store_problem(&e));
                false
            }
        }
    }

    /// Reads an artifact the destination already holds (to diff against); `None` if absent or
    /// unusable, in which case everything is treated as new.
    fn existing(&mut self, key: &ArtifactKey) -> Option<Artifact> {
        let bytes = self.dst.get(&key.to_string()).ok()??;
        Artifact::open(key, &bytes).ok()
    }

    fn copy_origin(
        &mut self,
        origin: &OriginId,
        new_key: &ArtifactKey,
        old_key: Option<&ArtifactKey>,
    ) {
        let Some((root_bytes, Artifact::Root { root, signer })) = self.fetch(new_key) else {
            return;
        };
        if let Err(e) = self.keyring.check(origin, &signer) {
            self.report
                .quarantined
                .push(Problem::new(&new_key.to_string(), &e));
            return;
        }
        let old_root: Option<Root> = old_key.and_then(|k| match self.existing(k) {
            Some(Artifact::Root { root, .. }) => Some(root),
            _ => None,
        });
        let mut complete = true;
        for bucket_ref in root.changed_buckets(old_root.as_ref()) {
            let bucket_key = ArtifactKey::Bucket {
                origin: origin.clone(),
                id: bucket_ref.id,
            };
            if self.existing(&bucket_key).is_some() {
                continue;
            }
            let Some((bucket_bytes, Artifact::Bucket(bucket))) = self.fetch(&bucket_key) else {
                complete = false;
                continue;
            };
            let old_entries = old_root
                .as_ref()
                .filter(|o| o.bits == root.bits)
                .and_then(|o| o.buckets.iter().find(|b| b.index == bucket.index))
                .and_then(|b| {
                    match self.existing(&ArtifactKey::Bucket {
                        origin: origin.clone(),
                        id: b.id,
                    }) {
                        Some(Artifact::Bucket(old)) => Some(old),
                        _ => None,
                    }
                });
            complete &= self.copy_bucket_sessions(origin, &bucket, old_entries.as_ref());
            if complete {
                complete &= self.put(&bucket_key, &bucket_bytes);
            }
        }
        if complete {
            self.put(new_key, &root_bytes);
        } else {
            self.report.deferred.push(Problem {
                key: new_key.to_string(),
                class: "Incomplete".into(),
                reason: "not relayed: an artifact it references is missing or corrupt".into(),
            });
        }
    }

    fn copy_bucket_sessions(
        &mut self,
        origin: &OriginId,
        bucket: &Bucket,
        old: Option<&Bucket>,
    ) -> bool {
        let old: BTreeMap<_, _> = old
            .map(|b| {
                b.entries
                    .iter()
                    .map(|e| (e.session.clone(), e.manifest))
                    .collect()
            })
            .unwrap_or_default();
        let mut complete = true;
        for entry in bucket.changed_since(&old) {
            let manifest_key = ArtifactKey::Manifest {
                origin: origin.clone(),
                id: entry.manifest,
            };
            if self.existing(&manifest_key).is_some() {
                continue;
            }
            let Some((bytes, Artifact::Manifest(manifest))) = self.fetch(&manifest_key) else {
                complete = false;
                continue;
            };
            let previous: BTreeSet<ArtifactId> = old
                .get(&entry.session)
                .and_then(|id| {
                    match self.existing(&ArtifactKey::Manifest {
                        origin: origin.clone(),
                        id: *id,
                    }) {
                        Some(Artifact::Manifest(m)) => Some(segment_ids(&m)),
                        _ => None,
                    }
                })
                .unwrap_or_default();
            let mut segments_ok = true;
            for seg in &manifest.segments {
                if previous.contains(&seg.id) {
                    continue;
                }
                let key = ArtifactKey::Segment {
                    origin: origin.clone(),
                    id: seg.id,
                };
                match self.fetch(&key) {
                    Some((seg_bytes, _)) => segments_ok &= self.put(&key, &seg_bytes),
                    None => segments_ok = false,
                }
            }
            if segments_ok {
                complete &= self.put(&manifest_key, &bytes);
            } else {
                complete = false;
            }
        }
        complete
    }

    fn copy_events(&mut self, origin: &OriginId) {
        let prefix = ArtifactKey::events_prefix(origin);
        let src_keys = match list_all(self.src, &prefix, None) {
            Ok(l) => l,
            Err(e) => return self.report.deferred.push(store_problem(&e)),
        };
        let dst_keys: BTreeSet<String> = match list_all(self.dst, &prefix, None) {
            Ok(l) => l.into_iter().map(|l| l.key).collect(),
            Err(e) => return self.report.deferred.push(store_problem(&e)),
        };
        for entry in src_keys {
            if dst_keys.contains(&entry.key) {
                continue;
            }
            let Ok(key @ ArtifactKey::Events { .. }) = entry.key.parse::<ArtifactKey>() else {
                continue;
            };
            if let Some((bytes, Artifact::Events(batch))) = self.fetch(&key) {
                match self.keyring.check(origin, &batch.signer) {
                    Ok(_) => {
                        self.put(&key, &bytes);
                    }
                    Err(e) => self
                        .report
                        .quarantined
                        .push(Problem::new(&entry.key.clone(), &e)),
                }
            }
        }
    }
}

fn segment_ids(m: &Manifest) -> BTreeSet<ArtifactId> {
    m.segments.iter().map(|s| s.id).collect()
}

/// Copies from `src` to `dst` what `dst` lacks of every origin's newest root and events.
pub fn relay(src: &mut dyn Store, dst: &mut dyn Store, keyring: &mut KeyRing) -> ExchangeReport {
    let mut report = ExchangeReport::default();
    let src_roots = match newest_roots(src) {
        Ok(r) => r,
        Err(e) => {
            report.deferred.push(store_problem(&e));
            return report;
        }
    };
    let dst_roots = match newest_roots(dst) {
        Ok(r) => r,
        Err(e) => {
            report.deferred.push(store_problem(&e));
            return report;
        }
    };
    let mut relay = Relay {
        src,
        dst,
        keyring,
        report,
    };
    for (origin, key) in &src_roots {
        let old = dst_roots.get(origin);
        if old.is_none_or(|old| old < key) {
            relay.copy_origin(origin, key, old);
        }
        relay.copy_events(origin);
    }
    relay.report
}

/// Both directions: afterwards each store holds every origin's newest complete root.
pub fn exchange(a: &mut dyn Store, b: &mut dyn Store, keyring: &mut KeyRing) -> ExchangeReport {
    let mut report = relay(a, b, keyring);
    report.merge(relay(b, a, keyring));
    report
}
