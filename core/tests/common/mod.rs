//! Fixtures shared by the core's integration tests.

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
