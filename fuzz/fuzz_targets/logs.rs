//! Agents' line logs (agentsync-logs): any bytes, as a Claude Code, Codex or Copilot CLI log
//! (first byte mod 3), read in one pass
//! and in two (cut anywhere, the state kept as JSON between passes, as the ingest pass keeps
//! it). Never a panic; both readings hand out the same messages and session; what they hand
//! out encodes as segments and a manifest (a parser must never produce what export refuses).
#![no_main]

use std::io::Cursor;
use std::path::Path;

use agentsync_core::{Manifest, Message, Session, UsageEvent, segment_messages};
use agentsync_logs::{ParseReport, Parsed, ResumeState, claude, codex, copilot, fit};
use libfuzzer_sys::fuzz_target;

const CLAUDE: &str =
    "/home/u/.claude/projects/-home-u-app/b25638d7-b104-4f06-a797-70ac33d069ed.jsonl";
const COPILOT: &str =
    "/home/u/.copilot/session-state/5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d/events.jsonl";
const CODEX: &str = "/home/u/.codex/sessions/2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl";

struct Whole {
    messages: Vec<Message>,
    usage_events: Vec<UsageEvent>,
    session: Option<Session>,
}

fn read<F: serde::Serialize + serde::de::DeserializeOwned>(
    mut pass: impl FnMut(&[u8], Option<ResumeState<F>>) -> Parsed<F>,
    bytes: &[u8],
    cuts: &[usize],
) -> Whole {
    let mut whole = Whole {
        messages: Vec::new(),
        usage_events: Vec::new(),
        session: None,
    };
    let mut report = ParseReport::default();
    let mut state = None;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let parsed = pass(&bytes[..cut], state.take());
        // Messages an earlier pass handed out that a later one found on a branch the user
        // left: the host flags them as it amends late results.
        for range in &parsed.abandoned {
            for m in whole.messages.iter_mut() {
                range.apply_to(m);
            }
        }
        whole.messages.extend(parsed.messages);
        for late in &parsed.late_results {
            if let Some(m) = whole
                .messages
                .iter_mut()
                .find(|m| m.ordinal == late.ordinal)
                && late.apply_to(m)
            {
                fit::fit_message(m);
            }
        }
        whole.usage_events.extend(parsed.usage_events);
        report.merge(parsed.report);
        let kept = serde_json::to_string(&parsed.state).expect("a state serializes");
        state = Some(serde_json::from_str(&kept).expect("a kept state reads back"));
    }
    let mut state = state.expect("one pass at least");
    whole.messages.extend(state.finish());
    whole.session = state.session();
    whole
}

fn check_publishable(whole: &Whole) {
    let segments = segment_messages(&whole.messages).expect("messages encode as segments");
    let Some(session) = whole.session.clone() else {
        return;
    };
    let manifest = Manifest {
        origin: "laptop-0a1b2c".parse().expect("a valid origin"),
        session,
        message_count: whole.messages.len() as u64,
        segments: segments.into_iter().map(|s| s.reference).collect(),
        usage_events: whole.usage_events.clone(),
    };
    manifest
        .encode()
        .expect("the session encodes in a manifest");
}

fuzz_target!(|data: &[u8]| {
    let [format, cut_hi, cut_lo, log @ ..] = data else {
        return;
    };
    let cut = (usize::from(*cut_hi) << 8 | usize::from(*cut_lo)).min(log.len());
    let (one, two) = match format % 3 {
        0 => {
            let path = Path::new(CLAUDE);
            let pass =
                |b: &[u8], s| claude::parse_from(path, Cursor::new(b), s).expect("bytes read");
            (read(pass, log, &[]), read(pass, log, &[cut]))
        }
        1 => {
            let path = Path::new(CODEX);
            let pass =
                |b: &[u8], s| codex::parse_from(path, Cursor::new(b), s).expect("bytes read");
            (read(pass, log, &[]), read(pass, log, &[cut]))
        }
        _ => {
            let path = Path::new(COPILOT);
            let pass =
                |b: &[u8], s| copilot::parse_from(path, Cursor::new(b), s).expect("bytes read");
            (read(pass, log, &[]), read(pass, log, &[cut]))
        }
    };
    assert_eq!(one.messages, two.messages, "cut at {cut}");
    assert_eq!(one.session, two.session, "cut at {cut}");
    check_publishable(&one);
});
