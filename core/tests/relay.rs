//! A relay into a store that holds an older root of the origin reads what that root reaches
//! (the buckets that differ, the old manifests of changed sessions) instead of listing every
//! key of the origin there; and it still delivers everything when that store turns out to lack
//! part of what its root reaches.

use std::collections::{BTreeMap, BTreeSet};

use agentsync_core::sync::exchange::{ExchangeReport, run};
use agentsync_core::sync::export::{ExportState, SessionExport};
use agentsync_core::sync::store::{ListPage, Listing, PutOutcome, Store, StoreError};
use agentsync_core::{Artifact, EventsMark, KeyRing, Message, OriginKey, Session};

const ORIGIN: &str = "laptop-0a1b2c";

/// A store in memory that notes the prefix of every listing it answers.
#[derive(Default)]
struct Memory {
    objects: BTreeMap<String, Vec<u8>>,
    listed: Vec<String>,
    gets: usize,
}

impl Store for Memory {
    fn list_keys(&mut self, prefix: &str, after: Option<&str>) -> Result<ListPage, StoreError> {
        self.listed.push(prefix.to_owned());
        let entries = self
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .map(|(k, v)| Listing {
                key: k.clone(),
                modified_ms: None,
                size: v.len() as u64,
            })
            .collect();
        Ok(ListPage {
            entries,
            truncated: false,
        })
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.gets += 1;
        Ok(self.objects.get(key).cloned())
    }
    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        if self.objects.contains_key(key) {
            return Ok(PutOutcome::Exists);
        }
        self.objects.insert(key.to_owned(), bytes.to_vec());
        Ok(PutOutcome::Created)
    }
    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.objects.insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.objects.remove(key);
        Ok(())
    }
}

impl Memory {
    fn keys(&self) -> BTreeSet<&String> {
        self.objects.keys().collect()
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

fn session(n: usize) -> Session {
    serde_json::from_value(serde_json::json!({
        "native_id": format!("s{n}"), "agent": "claude-code", "parser": "claude",
        "project": "p", "cwd": "", "git_branch": "", "started_ms": null, "ended_ms": null,
        "title": "", "first_message": "", "parent_session": "", "relationship": "",
        "user_message_count": 0
    }))
    .expect("session")
}

fn messages(n: usize, count: usize) -> Vec<Message> {
    (0..count as u64)
        .map(|ordinal| Message {
            ordinal,
            role: "user".into(),
            content: format!("session {n} message {ordinal} {}", "x".repeat(4000)),
            ..Message::default()
        })
        .collect()
}

/// Exports `sessions` (native number, message count) on top of `state` into `store`.
fn publish(state: &ExportState, sessions: &[(usize, usize)], store: &mut Memory) -> ExportState {
    let key = OriginKey::from_secret([3; 32]);
    let mut exporter = state.begin();
    for &(n, count) in sessions {
        exporter
            .session(SessionExport {
                marker: count.to_string(),
                session: session(n),
                messages: &messages(n, count),
                usage_events: Vec::new(),
            })
            .expect("export");
    }
    let (plan, next) = exporter
        .commit(0, 0, EventsMark::NoBatch, &key)
        .expect("commit");
    for encoded in plan.in_write_order() {
        let bytes = encoded.seal(None).expect("seal");
        store
            .put_if_absent(&encoded.key.to_string(), &bytes)
            .expect("put");
    }
    next
}

/// 600 sessions (more than one bucket) relayed from a mirror into a target; then session 7
/// grows by a few messages in the mirror, ready for the next relay.
fn published_then_appended() -> (Memory, Memory, KeyRing) {
    let origin = ORIGIN.parse().expect("origin");
    let (mut mirror, mut target, mut keyring) =
        (Memory::default(), Memory::default(), KeyRing::default());
    let all: Vec<(usize, usize)> = (0..600).map(|n| (n, 1 + n % 40)).collect();
    let state = publish(&ExportState::new(origin), &all, &mut mirror);
    let first = run(&mut mirror, &mut target, &mut keyring);
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    assert!(
        target.listed_the_origin(),
        "a store without a root of the origin is listed"
    );
    assert_same_keys(&target, &mirror);
    // Session 7 had 8 messages: three more.
    publish(&state, &[(7, 8 + 3)], &mut mirror);
    mirror.forget_requests();
    target.forget_requests();
    (mirror, target, keyring)
}

fn assert_same_keys(target: &Memory, mirror: &Memory) {
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
    let before = target.objects.len();
    let report = relay(&mut mirror, &mut target, &mut keyring);
    assert!(!target.listed_the_origin(), "{:?}", target.listed);
    assert!(!mirror.listed_the_origin(), "{:?}", mirror.listed);
    // The new root, its one changed bucket, the session's manifest and its last segment.
    assert_eq!(report.copied.len(), 4, "{:?}", report.copied);
    assert_eq!(target.objects.len(), before + 4);
    // Read from the target: its root, the old bucket and the session's old manifest (and
    // what placing four artifacts costs).
    assert!(target.gets <= 8, "{} reads from the target", target.gets);
}

#[test]
fn a_destination_missing_its_old_bucket_is_listed_after_all() {
    let (mut mirror, mut target, mut keyring) = published_then_appended();
    // The bucket of session 7 in the target's root, the one the relay reads, is gone.
    let newest_root = mirror
        .objects
        .iter()
        .rfind(|(k, _)| k.starts_with("roots/"))
        .map(|(k, v)| Artifact::open(&k.parse().expect("key"), v).expect("root"));
    let Some(Artifact::Root { root, .. }) = newest_root else {
        panic!("the mirror has a root");
    };
    let new_buckets: BTreeSet<String> = root.buckets.iter().map(|b| b.id.to_string()).collect();
    let old: Vec<String> = target
        .objects
        .keys()
        .filter(|k| k.contains("/buckets/") && !new_buckets.iter().any(|id| k.contains(id)))
        .cloned()
        .collect();
    assert_eq!(old.len(), 1, "one bucket changed: {old:?}");
    target.objects.remove(&old[0]);
    let report = run(&mut mirror, &mut target, &mut keyring);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(target.listed_the_origin(), "{:?}", target.listed);
    // Everything the new root reaches is there; the old bucket, which it does not reach, is
    // not relayed again.
    target
        .objects
        .insert(old[0].clone(), mirror.objects[&old[0]].clone());
    assert_same_keys(&target, &mirror);
}

#[test]
fn a_damaged_old_manifest_costs_reads_not_data() {
    let (mut mirror, mut target, mut keyring) = published_then_appended();
    for (key, bytes) in target.objects.iter_mut() {
        if key.contains("/manifests/")
            && let Some(last) = bytes.last_mut()
        {
            *last ^= 0x55;
        }
    }
    let damaged: BTreeMap<String, Vec<u8>> = target
        .objects
        .iter()
        .filter(|(k, _)| k.contains("/manifests/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let report = run(&mut mirror, &mut target, &mut keyring);
    assert!(!target.listed_the_origin());
    // The changed session's segments were placed again (all but the new one were there and
    // stay), and the new manifest went in beside the damaged old ones.
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_same_keys(&target, &mirror);
    for (key, bytes) in damaged {
        assert_eq!(target.objects.get(&key), Some(&bytes), "{key} left alone");
    }
}
