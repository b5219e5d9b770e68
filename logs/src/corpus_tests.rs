//! The benchmark corpus of `agentsync-bench` against our parsers: every generated log parses
//! without a malformed line into a session, the messages are the ones the generator counted,
//! every tool call gets its result, and appending to a session is read by a resumed pass.
//! Benchmarks on that corpus then measure the parsers' real work, not their error paths.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use agentsync_bench::{CorpusSpec, append, generate};
use agentsync_core::{Message, Session};

use super::{ParseReport, claude, codex, discover};
use crate::scratch::TempDir;

fn assert_clean(path: &Path, report: &ParseReport) {
    assert!(
        report.malformed_lines.is_empty() && report.malformed_unlisted == 0,
        "{}: {:?}",
        path.display(),
        report.malformed_lines
    );
    assert_eq!(report.orphan_tool_results, 0, "{}", path.display());
}

/// What every parsed log must hold: a session with its context, messages in time order, calls
/// with results, nothing left waiting.
fn assert_complete(
    path: &Path,
    session: Option<Session>,
    messages: &[Message],
    held: usize,
) -> Session {
    let session = session.unwrap_or_else(|| panic!("{}: no session", path.display()));
    assert!(
        !session.cwd.is_empty() && !session.git_branch.is_empty(),
        "{}",
        path.display()
    );
    assert!(session.started_ms.is_some() && session.started_ms <= session.ended_ms);
    assert!(!messages.is_empty(), "{}: no messages", path.display());
    assert_eq!(
        held,
        0,
        "{}: messages still wait for tool results",
        path.display()
    );
    let mut last = i64::MIN;
    for message in messages {
        let time = message
            .timestamp_ms
            .unwrap_or_else(|| panic!("{}: a message without a time", path.display()));
        assert!(
            time >= last,
            "{}: time goes back at {}",
            path.display(),
            message.ordinal
        );
        last = time;
        for call in &message.tool_calls {
            // Only a provider-run web search has no id, and no result to wait for.
            if !call.id.is_empty() {
                assert!(
                    !call.result.is_empty(),
                    "{}: {} call {} has no result",
                    path.display(),
                    call.name,
                    call.id
                );
            }
        }
    }
    session
}

#[test]
fn the_benchmark_corpus_parses_fully() {
    check_corpus("parse", 11, 3_000_000);
}

/// The same over a corpus large enough for long sessions (compactions, thousands of messages):
/// `cargo test -p agentsync --bin agentsync corpus_tests -- --ignored`.
#[test]
#[ignore = "generates and parses 100 MB"]
fn a_large_benchmark_corpus_parses_fully() {
    let compactions = check_corpus("parse-large", 1, 100_000_000);
    assert!(compactions > 0, "long sessions are compacted");
}

/// Generates a corpus and checks every log of it; returns the compaction boundaries read.
fn check_corpus(name: &str, seed: u64, target_bytes: u64) -> usize {
    let dir = TempDir::new(name);
    let summary = generate(&dir.0, &CorpusSpec { seed, target_bytes }).unwrap();
    let claude_logs = discover::claude_logs(&dir.0.join("claude/projects")).unwrap();
    let codex_logs = discover::codex_rollouts(&dir.0.join("codex/sessions")).unwrap();
    assert_eq!((claude_logs.len() + codex_logs.len()) as u64, summary.files);
    assert!(
        summary.claude_sessions > summary.codex_sessions && summary.codex_sessions > 0,
        "{summary:?}"
    );

    let mut messages = 0;
    let mut calls = 0;
    let mut subagents = Vec::new();
    let mut linked = BTreeSet::new();
    let mut usage = 0;
    let mut compactions = 0;
    for path in &claude_logs {
        let mut parsed = claude::parse_file(path).unwrap();
        assert_clean(path, &parsed.report);
        let session = assert_complete(
            path,
            parsed.state.session(),
            &parsed.messages,
            parsed.state.held_messages(),
        );
        assert!(parsed.state.finish().is_empty());
        if session.relationship == "subagent" {
            assert!(!session.parent_session.is_empty());
            subagents.push(session.native_id.as_str().to_owned());
        }
        for message in &parsed.messages {
            usage += message.usage.output;
            compactions += usize::from(message.compact_boundary);
            calls += message.tool_calls.len() as u64;
            linked.extend(
                message
                    .tool_calls
                    .iter()
                    .filter(|c| !c.subagent_session.is_empty())
                    .map(|c| c.subagent_session.clone()),
            );
        }
        messages += parsed.messages.len() as u64;
    }
    assert!(usage > 0, "assistant messages carry token usage");
    for id in &subagents {
        assert!(
            linked.contains(id),
            "subagent {id} is named by its parent's Task call"
        );
    }

    let mut usage_events = 0;
    for path in &codex_logs {
        let mut parsed = codex::parse_file(path).unwrap();
        assert_clean(path, &parsed.report);
        let session = assert_complete(
            path,
            parsed.state.session(),
            &parsed.messages,
            parsed.state.held_messages(),
        );
        assert!(parsed.state.finish().is_empty());
        if session.relationship == "subagent" {
            subagents.push(session.native_id.as_str().to_owned());
        }
        usage_events += parsed.usage_events.len();
        compactions += parsed
            .messages
            .iter()
            .filter(|m| m.compact_boundary)
            .count();
        calls += parsed
            .messages
            .iter()
            .map(|m| m.tool_calls.len() as u64)
            .sum::<u64>();
        messages += parsed.messages.len() as u64;
    }
    assert!(usage_events > 0);

    assert_eq!(
        messages, summary.messages,
        "the generator counts what the parsers read"
    );
    assert_eq!(calls, summary.tool_calls);
    assert_eq!(subagents.len() as u64, summary.subagent_sessions);
    compactions
}

#[test]
fn appended_messages_are_what_a_resumed_pass_reads() {
    let dir = TempDir::new("corpus-append");
    generate(
        &dir.0,
        &CorpusSpec {
            seed: 5,
            target_bytes: 1_000_000,
        },
    )
    .unwrap();
    let mut states: HashMap<PathBuf, (claude::ResumeState, u64)> = HashMap::new();
    for path in discover::claude_logs(&dir.0.join("claude/projects")).unwrap() {
        let parsed = claude::parse_file(&path).unwrap();
        let count = parsed.messages.len() as u64;
        states.insert(path, (parsed.state, count));
    }

    for (seed, n) in [(1, 1), (2, 2), (3, 9), (1, 4)] {
        let appended = append(&dir.0, seed, n).unwrap();
        assert_eq!(appended.messages, n as u64);
        let (state, before) = states
            .remove(&appended.path)
            .unwrap_or_else(|| panic!("{} is a session log", appended.path.display()));
        let last_time = state.session().and_then(|s| s.ended_ms).unwrap();
        let offset = state.offset;
        let file = fs::File::open(&appended.path).unwrap();
        let parsed = claude::parse_from(&appended.path, file, Some(state)).unwrap();
        assert_clean(&appended.path, &parsed.report);
        assert_eq!(parsed.state.offset, offset + appended.bytes);
        assert_eq!(
            parsed.messages.len(),
            n,
            "seed {seed}: exactly the appended messages"
        );
        assert_eq!(parsed.state.held_messages(), 0);
        let ordinals: Vec<u64> = parsed.messages.iter().map(|m| m.ordinal).collect();
        assert_eq!(ordinals, (before..before + n as u64).collect::<Vec<_>>());
        let first = &parsed.messages[0];
        assert_eq!((first.role.as_str(), first.system), ("user", false));
        assert!(first.timestamp_ms.unwrap() > last_time);
        for message in &parsed.messages {
            for call in &message.tool_calls {
                assert!(!call.result.is_empty(), "{} has its result", call.name);
            }
        }
        states.insert(appended.path, (parsed.state, before + n as u64));
    }

    // The grown logs read the same from the start.
    for (path, (_, count)) in &states {
        let parsed = claude::parse_file(path).unwrap();
        assert_clean(path, &parsed.report);
        assert_eq!(parsed.messages.len() as u64, *count, "{}", path.display());
    }
}
