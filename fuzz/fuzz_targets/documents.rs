//! Agents' session documents (agentsync-logs): any bytes as a Gemini CLI chat (JSON or JSONL),
//! a Cursor transcript (text or JSONL), an Amp thread, or an Aider chat history. Never a
//! panic; the same bytes read twice give the same sessions (the host compares a document
//! read again with what it stored); what a reader hands out encodes as segments and a
//! manifest (a parser must never produce what export refuses).
#![no_main]

use std::path::Path;

use agentsync_core::{Manifest, segment_messages};
use agentsync_logs::agent::Document;
use agentsync_logs::{aider, amp, cursor, gemini};
use libfuzzer_sys::fuzz_target;

const GEMINI: [&str; 2] = [
    "/home/u/.gemini/tmp/myapp/chats/session-2026-01-05T10-00-1b2c3d4e.jsonl",
    "/home/u/.gemini/tmp/myapp/chats/session-2025-08-05T10-00-1b2c3d4e.json",
];
const CURSOR: [&str; 2] = [
    "/home/u/.cursor/projects/home-u-app/agent-transcripts/4f1a2b3c-0d9e-4a8b-9c7d-6e5f4a3b2c1d.txt",
    "/home/u/.cursor/projects/home-u-app/agent-transcripts/4f1a2b3c-0d9e-4a8b-9c7d-6e5f4a3b2c1d/4f1a2b3c-0d9e-4a8b-9c7d-6e5f4a3b2c1d.jsonl",
];
const AMP: &str = "/home/u/.local/share/amp/threads/T-019a1c71-3d0e-7f52-8b64-5e1a9c2f4d83.json";
const AIDER: &str = "/home/u/src/app/.aider.chat.history.md";

fn check_publishable(document: &Document) {
    let segments = segment_messages(&document.messages).expect("messages encode as segments");
    let manifest = Manifest {
        origin: "laptop-0a1b2c".parse().expect("a valid origin"),
        session: document.session.clone(),
        message_count: document.messages.len() as u64,
        segments: segments.into_iter().map(|s| s.reference).collect(),
        usage_events: document.usage_events.clone(),
    };
    manifest
        .encode()
        .expect("the session encodes in a manifest");
    assert!(document.waiting <= document.messages.len());
}

fuzz_target!(|data: &[u8]| {
    let [which, bytes @ ..] = data else {
        return;
    };
    let variant = usize::from(which / 4 % 2);
    let read = |bytes: &[u8]| -> Vec<Result<Document, String>> {
        match which % 4 {
            0 => vec![gemini::parse(Path::new(GEMINI[variant]), bytes, None)],
            1 => vec![cursor::read(Path::new(CURSOR[variant]), bytes)],
            2 => vec![amp::read(Path::new(AMP), bytes)],
            _ => match aider::read_bytes(Path::new(AIDER), bytes, &mut |_, _| true) {
                Ok(sessions) => sessions.into_iter().map(|s| s.document).collect(),
                Err(e) => vec![Err(e.to_string())],
            },
        }
    };
    let once = read(bytes);
    assert_eq!(once, read(bytes), "the same bytes read twice");
    for document in once.iter().flatten() {
        check_publishable(document);
    }
});
