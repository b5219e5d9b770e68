//! Fixtures shared by the core's integration tests (each test file uses some of them).
#![allow(dead_code)]

use agentsync_core::sync::export::{ExportState, SessionExport};
use agentsync_core::sync::store::Store;
use agentsync_core::{EventsMark, Message, OriginKey, Session};

/// A Claude Code session record with only its id set.
pub fn session(native: &str) -> Session {
    serde_json::from_value(serde_json::json!({
        "native_id": native, "agent": "claude-code", "parser": "claude",
        "project": "p", "cwd": "", "git_branch": "", "started_ms": null, "ended_ms": null,
        "title": "t", "first_message": "", "parent_session": "", "relationship": "",
        "user_message_count": 1
    }))
    .expect("a session")
}

/// The `origins` of a scenario vector: each origin with a fixed signing seed (its index + 1).
pub fn scenario_origins(origins: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    origins
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                (*o).to_owned(),
                serde_json::json!({"seed": hex::encode([i as u8 + 1; 32])}),
            )
        })
        .collect()
}

/// `count` user messages of session number `n`, each about 4 KB.
pub fn messages(n: usize, count: usize) -> Vec<Message> {
    (0..count as u64)
        .map(|ordinal| Message {
            ordinal,
            role: "user".into(),
            content: format!("session {n} message {ordinal} {}", "x".repeat(4000)),
            ..Message::default()
        })
        .collect()
}

/// Exports `sessions` (native number `s<n>`, message count) on top of `state` into `store`,
/// in write order, as the origin's own sync would (signed with seed `[3; 32]`).
pub fn publish(
    state: &ExportState,
    sessions: &[(usize, usize)],
    store: &mut dyn Store,
) -> ExportState {
    let key = OriginKey::from_secret([3; 32]);
    let mut exporter = state.begin();
    for &(n, count) in sessions {
        exporter
            .session(SessionExport {
                marker: count.to_string(),
                session: session(&format!("s{n}")),
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
