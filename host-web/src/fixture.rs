//! Test data shared by this crate's tests.

use agentsync_archive::Archive;
use agentsync_core::{Message, NativeId, OriginId, Session};

/// A session record with `native` as its id, otherwise plain.
pub fn session(native: &str, agent: &str) -> Session {
    Session {
        native_id: native.parse::<NativeId>().expect("a valid native id"),
        agent: agent.into(),
        parser: agent.into(),
        project: "demo".into(),
        title: String::new(),
        first_message: "first".into(),
        cwd: String::new(),
        git_branch: String::new(),
        started_ms: Some(1_700_000_000_000),
        ended_ms: None,
        parent_session: String::new(),
        relationship: String::new(),
        user_message_count: 1,
    }
}

/// Stores `contents` as the messages of `origin`'s session `native`, as ingest would.
pub fn own_session(archive: &mut Archive, origin: &OriginId, native: &str, contents: &[&str]) {
    let messages: Vec<Message> = contents
        .iter()
        .enumerate()
        .map(|(i, text)| Message {
            ordinal: i as u64,
            role: "user".into(),
            content: (*text).into(),
            ..Message::default()
        })
        .collect();
    archive
        .transaction(|a| {
            a.apply_own(
                origin,
                &session(native, "claude-code"),
                &messages,
                &[],
                false,
            )
            .map(|_| ())
        })
        .expect("the session is stored");
}
