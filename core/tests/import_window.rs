//! Import in windows: a host that applies units as they come (holding one window of messages)
//! ends with exactly what a single-round import gives.

use std::collections::{BTreeMap, BTreeSet};

use agentsync_core::sync::export::{ExportState, SessionExport};
use agentsync_core::sync::import::{ApplyUnit, Import, Step, run};
use agentsync_core::sync::store::{ListPage, Listing, PutOutcome, Store, StoreError, answer};
use agentsync_core::{Message, OriginKey, Session};

#[derive(Default)]
struct Memory(BTreeMap<String, Vec<u8>>);

impl Store for Memory {
    fn list_keys(&mut self, prefix: &str, after: Option<&str>) -> Result<ListPage, StoreError> {
        let entries = self
            .0
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
        Ok(self.0.get(key).cloned())
    }
    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        if self.0.contains_key(key) {
            return Ok(PutOutcome::Exists);
        }
        self.0.insert(key.to_owned(), bytes.to_vec());
        Ok(PutOutcome::Created)
    }
    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.0.insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.0.remove(key);
        Ok(())
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

fn published(sessions: usize) -> Memory {
    let origin = "laptop-0a1b2c".parse().expect("origin");
    let key = OriginKey::from_secret([3; 32]);
    let mut exporter = ExportState::new(origin).begin();
    for n in 0..sessions {
        let messages: Vec<Message> = (0..(n * 37 % 300) as u64)
            .map(|ordinal| Message {
                ordinal,
                role: "user".into(),
                content: format!("session {n} message {ordinal} {}", "x".repeat(n % 50)),
                ..Message::default()
            })
            .collect();
        exporter
            .session(SessionExport {
                marker: "1".into(),
                session: session(n),
                messages: &messages,
                usage_events: Vec::new(),
            })
            .expect("export");
    }
    let (plan, _) = exporter
        .commit(0, 0, agentsync_core::EventsMark::NoBatch, &key)
        .expect("commit");
    let mut store = Memory::default();
    for encoded in plan.in_write_order() {
        let bytes = encoded.seal(None).expect("seal");
        store
            .put_if_absent(&encoded.key.to_string(), &bytes)
            .expect("put");
    }
    store
}

#[test]
fn windowed_import_with_drained_units_equals_one_round() {
    let local = "desktop-3d4e5f".parse().expect("origin");
    let mut store = published(40);
    let whole = run(
        Import::new(local, Default::default(), BTreeSet::new()),
        &mut store,
    );
    assert_eq!(whole.units.len(), 40);

    let local = "desktop-3d4e5f".parse().expect("origin");
    let mut import =
        Import::new(local, Default::default(), BTreeSet::new()).with_segment_window(4096);
    let mut drained: Vec<ApplyUnit> = Vec::new();
    let mut rounds = 0;
    let report = loop {
        match import.poll() {
            Step::Requests(requests) => {
                let requests: Vec<_> = requests.into_iter().map(|r| r.request).collect();
                let responses = answer(&mut store, &requests);
                import.handle(responses);
                let units = import.take_units();
                // Never more than one window's worth of sessions at a time.
                assert!(units.len() < 40, "a round handed out {} units", units.len());
                drained.extend(units);
                rounds += 1;
            }
            Step::Done(report) => break *report,
        }
    };
    drained.extend(report.units);
    drained.sort_by(|a, b| a.gid.cmp(&b.gid));
    assert!(rounds > 10, "small windows take many rounds, took {rounds}");
    assert_eq!(drained, whole.units);
    assert_eq!(report.state, whole.state);
    assert_eq!(report.fetched, whole.fetched);
}
