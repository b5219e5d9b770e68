//! Fixtures shared by the core's integration tests (each test file uses some of them).
#![allow(dead_code)]

use agentsync_core::Session;

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
