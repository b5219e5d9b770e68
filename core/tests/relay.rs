//! A relay into a store that holds an older root of the origin reads what that root reaches
//! (the buckets that differ, the old manifests of changed sessions) instead of listing every
//! key of the origin there; and it still delivers everything when that store turns out to lack
//! part of what its root reaches.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use agentsync_core::conformance::scenario::MemoryStore;
use agentsync_core::frame::{OpenJob, SharedDecompressor};
use agentsync_core::sync::exchange::{Exchange, ExchangeReport, run, run_exchange};
use agentsync_core::sync::export::ExportState;
use agentsync_core::sync::store::{ListPage, PutOutcome, Store, StoreError, list_all};
use agentsync_core::{Artifact, ArtifactKey, Decompressor, KeyRing};

const ORIGIN: &str = "laptop-0a1b2c";

/// The simulator's store, noting the prefix of every listing and counting reads.
#[derive(Default)]
struct Memory {
    store: MemoryStore,
    listed: Vec<String>,
    gets: usize,
}

impl Store for Memory {
    fn list_keys(&mut self, prefix: &str, after: Option<&str>) -> Result<ListPage, StoreError> {
        self.listed.push(prefix.to_owned());
        self.store.list_keys(prefix, after)
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.gets += 1;
        self.store.get(key)
    }
    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        self.store.put_if_absent(key, bytes)
    }
    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.store.replace(key, bytes)
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.store.delete(key)
    }
}

impl Memory {
    fn keys(&mut self) -> BTreeSet<String> {
        list_all(&mut self.store, "", None)
            .expect("a memory store lists")
            .into_iter()
            .map(|l| l.key)
            .collect()
    }

    fn bytes(&mut self, key: &str) -> Vec<u8> {
        self.store.get(key).expect("read").expect("present")
    }

    /// Whether any listing of this store covered every key of the origin.
    fn listed_the_origin(&self) -> bool {
        self.listed.iter().any(|p| p == &format!("{ORIGIN}/"))
    }

    fn forget_requests(&mut self) {
        self.listed.clear();
        self.gets = 0;
    }
}

/// 600 sessions (more than one bucket) relayed from a mirror into a target; then session 7
/// grows by a few messages in the mirror, ready for the next relay.
fn published_then_appended() -> (Memory, Memory, KeyRing) {
    let origin = ORIGIN.parse().expect("origin");
    let (mut mirror, mut target, mut keyring) =
        (Memory::default(), Memory::default(), KeyRing::default());
    let all: Vec<(usize, usize)> = (0..600).map(|n| (n, 1 + n % 40)).collect();
    let state = common::publish(&ExportState::new(origin), &all, &mut mirror);
    let first = run(&mut mirror, &mut target, &mut keyring);
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    assert!(
        target.listed_the_origin(),
        "a store without a root of the origin is listed"
    );
    assert_same_keys(&mut target, &mut mirror);
    // Session 7 had 8 messages: three more.
    common::publish(&state, &[(7, 8 + 3)], &mut mirror);
    mirror.forget_requests();
    target.forget_requests();
    (mirror, target, keyring)
}

fn assert_same_keys(target: &mut Memory, mirror: &mut Memory) {
    let (t, m) = (target.keys(), mirror.keys());
    let lacking: Vec<_> = m.difference(&t).collect();
    let extra: Vec<_> = t.difference(&m).collect();
    assert!(
        lacking.is_empty() && extra.is_empty(),
        "the target lacks {lacking:?} and has {extra:?} too"
    );
}

fn relay(mirror: &mut Memory, target: &mut Memory, keyring: &mut KeyRing) -> ExchangeReport {
    let report = run(mirror, target, keyring);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_same_keys(target, mirror);
    report
}

#[test]
fn a_small_change_is_relayed_without_listing_the_destination() {
    let (mut mirror, mut target, mut keyring) = published_then_appended();
    let before = target.keys().len();
    let report = relay(&mut mirror, &mut target, &mut keyring);
    assert!(!target.listed_the_origin(), "{:?}", target.listed);
    assert!(!mirror.listed_the_origin(), "{:?}", mirror.listed);
    // The new root, its one changed bucket, the session's manifest and its last segment.
    assert_eq!(report.copied.len(), 4, "{:?}", report.copied);
    assert_eq!(target.keys().len(), before + 4);
    // Read from the target: its root, the old bucket and the session's old manifest (and
    // what placing four artifacts costs).
    assert!(target.gets <= 8, "{} reads from the target", target.gets);
}

#[test]
fn a_destination_missing_its_old_bucket_is_listed_after_all() {
    let (mut mirror, mut target, mut keyring) = published_then_appended();
    // The bucket of session 7 in the target's root, the one the relay reads, is gone.
    let newest_root = mirror
        .keys()
        .into_iter()
        .rfind(|k| k.starts_with("roots/"))
        .expect("the mirror has a root");
    let bytes = mirror.bytes(&newest_root);
    let Ok(Artifact::Root { root, .. }) =
        Artifact::open(&newest_root.parse().expect("key"), &bytes)
    else {
        panic!("{newest_root} opens");
    };
    let new_buckets: BTreeSet<String> = root.buckets.iter().map(|b| b.id.to_string()).collect();
    let old: Vec<String> = target
        .keys()
        .into_iter()
        .filter(|k| k.contains("/buckets/") && !new_buckets.iter().any(|id| k.contains(id)))
        .collect();
    assert_eq!(old.len(), 1, "one bucket changed: {old:?}");
    target.store.delete(&old[0]).expect("delete");
    let report = run(&mut mirror, &mut target, &mut keyring);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(target.listed_the_origin(), "{:?}", target.listed);
    // Everything the new root reaches is there; the old bucket, which it does not reach, is
    // not relayed again.
    mirror.store.delete(&old[0]).expect("delete");
    assert_same_keys(&mut target, &mut mirror);
}

#[test]
fn a_damaged_old_manifest_costs_reads_not_data() {
    let (mut mirror, mut target, mut keyring) = published_then_appended();
    let mut damaged = BTreeMap::new();
    for key in target.keys() {
        if key.contains("/manifests/") {
            let mut bytes = target.bytes(&key);
            if let Some(last) = bytes.last_mut() {
                *last ^= 0x55;
            }
            target.store.replace(&key, &bytes).expect("replace");
            damaged.insert(key, bytes);
        }
    }
    let report = run(&mut mirror, &mut target, &mut keyring);
    assert!(!target.listed_the_origin());
    // The changed session's segments were placed again (all but the new one were there and
    // stay), and the new manifest went in beside the damaged old ones.
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_same_keys(&mut target, &mut mirror);
    for (key, bytes) in damaged {
        assert_eq!(target.bytes(&key), bytes, "{key} left alone");
    }
}

/// A host decoder that leaves decompression to the core and opens a round's segments on
/// threads of its own, last first.
#[derive(Debug)]
struct Threads;

impl Decompressor for Threads {
    fn decompress(&self, _: &[u8], _: usize) -> Option<Vec<u8>> {
        None
    }

    fn open_all(&self, mut jobs: Vec<OpenJob<'_>>) {
        jobs.reverse();
        std::thread::scope(|scope| {
            for job in jobs {
                scope.spawn(job);
            }
        });
    }
}

/// Segments and manifests verified all at once on the host's threads, in any order, give the
/// relay exactly what verifying them one by one gives, a damaged segment and a damaged
/// manifest included; and so do segments this run sealed, which are only hashed (one of them
/// damaged since it was sealed).
#[test]
fn artifacts_verified_on_host_threads_relay_as_one_by_one() {
    for sealed in [false, true] {
        let mut reports = Vec::new();
        for decoder in [
            None,
            Some(std::sync::Arc::new(Threads) as SharedDecompressor),
        ] {
            let origin = ORIGIN.parse().expect("origin");
            let (mut mirror, mut target) = (Memory::default(), Memory::default());
            let all: Vec<(usize, usize)> = (0..200).map(|n| (n, 1 + n % 40)).collect();
            common::publish(&ExportState::new(origin), &all, &mut mirror);
            let hashes: BTreeMap<ArtifactKey, blake3::Hash> = mirror
                .keys()
                .into_iter()
                .filter(|k| k.contains("/segments/"))
                .map(|k| (k.parse().expect("key"), blake3::hash(&mirror.bytes(&k))))
                .collect();
            let damaged: Vec<String> = ["/segments/", "/manifests/"]
                .into_iter()
                .map(|kind| {
                    let key = mirror
                        .keys()
                        .into_iter()
                        .find(|k| k.contains(kind))
                        .expect("an artifact");
                    let mut bytes = mirror.bytes(&key);
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x55;
                    mirror.store.replace(&key, &bytes).expect("replace");
                    key
                })
                .collect();
            let exchange = Exchange::new().with_decompressor(decoder);
            let exchange = if sealed {
                exchange.with_sealed(hashes)
            } else {
                exchange
            };
            let report = run_exchange(exchange, &mut mirror, &mut target, &mut KeyRing::default());
            for key in &damaged {
                assert!(
                    report.problems.iter().any(|p| &p.key == key),
                    "{key}: {:?}",
                    report.problems
                );
                assert!(!target.keys().contains(key), "{key} was relayed");
            }
            reports.push((report, target.keys()));
        }
        assert_eq!(reports[0], reports[1], "sealed: {sealed}");
    }
}
