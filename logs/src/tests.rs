//! Tests over the fixtures: real Claude Code records (from the `claude-code-log` package) and
//! hand-built Codex rollouts in `tests/fixtures/`, plus the incremental-parsing property.

use std::collections::BTreeSet;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use agentsync_core::{Manifest, Message, Session, UsageEvent, segment_messages};
use proptest::prelude::*;

use super::{ParseReport, ResumeState, claude, codex};
use agentsync_core::timestamp::parse_rfc3339_ms;

fn fixtures(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
}

fn jsonl_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(jsonl_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "jsonl") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn claude_fixture(relative: &str) -> PathBuf {
    fixtures("claude-code").join(relative)
}

/// Everything a log gives once its session is over.
#[derive(Debug, PartialEq)]
struct Whole {
    messages: Vec<Message>,
    usage_events: Vec<UsageEvent>,
    session: Option<Session>,
    report: ParseReport,
}

/// Which parser reads a log.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Claude,
    Codex,
}

/// Parses `bytes` (the log at `path`) in passes that stop at each of `cuts` (byte lengths of
/// the log as it grew), then finishes the session. Between passes the state goes through JSON,
/// as a host keeps it. Returns the result and the final state, as JSON, so states of both
/// formats compare alike.
fn parse_in_passes(kind: Kind, path: &Path, bytes: &[u8], cuts: &[usize]) -> (Whole, String) {
    fn run<F: serde::Serialize + serde::de::DeserializeOwned>(
        mut pass: impl FnMut(&[u8], Option<ResumeState<F>>) -> super::Parsed<F>,
        bytes: &[u8],
        cuts: &[usize],
    ) -> (Whole, String) {
        let mut whole = Whole {
            messages: Vec::new(),
            usage_events: Vec::new(),
            session: None,
            report: ParseReport::default(),
        };
        let mut state = None;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let parsed = pass(&bytes[..cut], state.take());
            // A branch the user left flags messages earlier passes handed out (the ones of
            // this pass carry the flag already).
            for range in &parsed.abandoned {
                for m in &mut whole.messages {
                    range.apply_to(m);
                }
            }
            whole.messages.extend(parsed.messages);
            // As a host does: a result for a message an earlier pass handed out amends it.
            for late in &parsed.late_results {
                if let Some(m) = whole
                    .messages
                    .iter_mut()
                    .find(|m| m.ordinal == late.ordinal)
                    && late.apply_to(m)
                {
                    super::fit::fit_message(m);
                }
            }
            whole.usage_events.extend(parsed.usage_events);
            whole.report.merge(parsed.report);
            let kept = serde_json::to_string(&parsed.state).unwrap();
            state = Some(serde_json::from_str(&kept).unwrap());
        }
        let mut state = state.unwrap();
        whole.messages.extend(state.finish());
        whole.session = state.session();
        // Passes each count the session once; only what the log holds must agree.
        whole.report.sessions = 0;
        whole.report.messages = 0;
        let state = serde_json::to_string(&state).unwrap();
        (whole, state)
    }
    match kind {
        Kind::Claude => run(
            |b, s| claude::parse_from(path, Cursor::new(b), s).unwrap(),
            bytes,
            cuts,
        ),
        Kind::Codex => run(
            |b, s| codex::parse_from(path, Cursor::new(b), s).unwrap(),
            bytes,
            cuts,
        ),
    }
}

fn parse_whole(kind: Kind, path: &Path) -> Whole {
    parse_in_passes(kind, path, &fs::read(path).unwrap(), &[]).0
}

/// What a host publishes must encode: the messages as segments, the session in a manifest.
fn assert_publishable(whole: &Whole) {
    let ordinals: Vec<u64> = whole.messages.iter().map(|m| m.ordinal).collect();
    let expected: Vec<u64> = (0..whole.messages.len() as u64).collect();
    assert_eq!(ordinals, expected, "ordinals are contiguous from 0");
    let segments = segment_messages(&whole.messages).expect("messages encode as segments");
    let session = whole.session.clone().expect("the session has an id");
    let manifest = Manifest {
        origin: "laptop-0a1b2c".parse().unwrap(),
        session,
        message_count: whole.messages.len() as u64,
        segments: segments.into_iter().map(|s| s.reference).collect(),
        usage_events: whole.usage_events.clone(),
    };
    let encoded = manifest
        .encode()
        .expect("the session encodes in a manifest");
    assert_eq!(Manifest::decode(&encoded).unwrap(), manifest);
}

/// Every Claude Code fixture, one after the other, as one long log.
fn all_claude_records() -> Vec<u8> {
    jsonl_files(&fixtures("claude-code"))
        .iter()
        .flat_map(|path| fs::read(path).unwrap())
        .collect()
}

const LONG_LOG: &str =
    "/home/u/.claude/projects/-home-u-app/b25638d7-b104-4f06-a797-70ac33d069ed.jsonl";

fn line_ends(bytes: &[u8]) -> Vec<usize> {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect()
}

#[test]
fn every_claude_fixture_parses_and_publishes() {
    let files = jsonl_files(&fixtures("claude-code"));
    assert_eq!(
        files.len(),
        62,
        "59 single records, one log composed of them, one session with a saved output, one with an edited prompt"
    );
    for path in &files {
        let whole = parse_whole(Kind::Claude, path);
        assert!(
            whole.report.malformed_lines.is_empty(),
            "{}: {:?}",
            path.display(),
            whole.report.malformed_lines
        );
        let session = whole.session.as_ref().unwrap();
        assert_eq!(session.agent, "claude");
        assert_eq!(session.parser, claude::PARSER);
        assert_publishable(&whole);
    }
}

#[test]
fn every_codex_fixture_parses_and_publishes() {
    let files = jsonl_files(&fixtures("codex"));
    assert_eq!(files.len(), 5);
    for path in &files {
        let whole = parse_whole(Kind::Codex, path);
        assert!(
            whole.report.malformed_lines.is_empty(),
            "{}",
            path.display()
        );
        assert_eq!(whole.report.orphan_tool_results, 0, "{}", path.display());
        assert_publishable(&whole);
    }
}

#[test]
fn claude_assistant_record() {
    let whole = parse_whole(Kind::Claude, &claude_fixture("assistant/assistant.jsonl"));
    let [message] = whole.messages.as_slice() else {
        panic!("one message: {:?}", whole.messages)
    };
    assert_eq!(message.role, "assistant");
    assert!(message.content.starts_with("I'll help you rewrite this"));
    assert_eq!(message.model, "claude-opus-4-1-20250805");
    let u = &message.usage;
    assert_eq!(
        (u.input, u.output, u.cache_creation, u.cache_read),
        (4, 2, 4756, 12008)
    );
    assert_eq!(message.source_uuid, "6610c2dd-f12c-4fc1-b1d4-fa78c1612692");
    assert_eq!(message.parent_uuid, "39ea49bc-8cc9-4ec3-b598-4d75428d7c5e");
    assert_eq!(
        message.timestamp_ms,
        parse_rfc3339_ms("2025-09-29T17:07:50.508Z")
    );
    assert!(!message.sidechain);
    let session = whole.session.unwrap();
    assert_eq!(session.cwd, "/Users/dain/workspace/danieldemmel.me-next");
    assert_eq!(session.project, "danieldemmel.me-next");
    assert_eq!(session.git_branch, "main");
    assert_eq!(session.started_ms, message.timestamp_ms);
    assert_eq!(session.ended_ms, message.timestamp_ms);
    assert_eq!(session.user_message_count, 0);
}

#[test]
fn claude_thinking_and_sidechains() {
    let whole = parse_whole(Kind::Claude, &claude_fixture("assistant/thinking.jsonl"));
    assert!(
        whole.messages[0]
            .thinking
            .starts_with("The user is asking me to:")
    );
    assert!(whole.messages[0].content.is_empty());

    for fixture in [
        "assistant/assistant_sidechain.jsonl",
        "user/user_sidechain.jsonl",
    ] {
        let whole = parse_whole(Kind::Claude, &claude_fixture(fixture));
        assert!(whole.messages[0].sidechain, "{fixture}");
    }
    let whole = parse_whole(Kind::Claude, &claude_fixture("user/user_sidechain.jsonl"));
    let session = whole.session.unwrap();
    assert_eq!(
        session.user_message_count, 0,
        "a sidechain prompt in a main log is not the user's"
    );
    assert_eq!(session.first_message, "");
}

#[test]
fn claude_user_records() {
    let whole = parse_whole(Kind::Claude, &claude_fixture("user/user.jsonl"));
    let session = whole.session.unwrap();
    assert!(session.first_message.starts_with("Oh, I just found out"));
    assert_eq!(session.user_message_count, 1);
    assert_eq!(whole.messages[0].parent_uuid, "");

    let whole = parse_whole(Kind::Claude, &claude_fixture("user/image.jsonl"));
    let content = &whole.messages[0].content;
    assert!(content.contains("[image: image/png]"), "{content}");
    assert!(
        content.len() < 1000,
        "image bytes stay out of the transcript"
    );

    let whole = parse_whole(
        Kind::Claude,
        &claude_fixture("user/user_slash_command.jsonl"),
    );
    assert!(whole.messages[0].system, "isMeta text is not the user's");
    for generated in ["user/command_output.jsonl", "user/bash_output.jsonl"] {
        let whole = parse_whole(Kind::Claude, &claude_fixture(generated));
        assert!(whole.messages[0].system, "{generated}");
        assert_eq!(whole.session.unwrap().user_message_count, 0, "{generated}");
    }
    for typed in ["user/user_command.jsonl", "user/bash_input.jsonl"] {
        let whole = parse_whole(Kind::Claude, &claude_fixture(typed));
        let session = whole.session.unwrap();
        assert!(!whole.messages[0].system, "{typed}");
        assert_eq!(session.user_message_count, 1, "{typed}");
        assert_eq!(
            session.first_message, "",
            "{typed}: a command is not a prompt"
        );
    }
}

#[test]
fn claude_system_records() {
    let whole = parse_whole(Kind::Claude, &claude_fixture("system/summary.jsonl"));
    assert_eq!(whole.session.unwrap().title, "CSS Details Margin Styling");
    assert!(whole.messages.is_empty());

    let whole = parse_whole(Kind::Claude, &claude_fixture("system/system_info.jsonl"));
    let message = &whole.messages[0];
    assert_eq!((message.role.as_str(), message.system), ("system", true));
    assert!(message.content.starts_with("Running"));

    for (fixture, kind) in [
        (
            "system/file_history_snapshot.jsonl",
            "file-history-snapshot",
        ),
        ("system/queue_operation.jsonl", "queue-operation"),
    ] {
        let whole = parse_whole(Kind::Claude, &claude_fixture(fixture));
        assert!(whole.messages.is_empty());
        assert_eq!(whole.report.skipped_records[kind], 1);
    }
}

/// The fixtures hold a tool's use and its result as separate one-record files of one session.
#[test]
fn claude_tool_results_attach_to_their_calls() {
    let tools = fixtures("claude-code/tools");
    let mut attached = 0;
    for use_file in jsonl_files(&tools) {
        let name = use_file.file_name().unwrap().to_str().unwrap();
        let Some(tool) = name.strip_suffix("-tool_use.jsonl") else {
            continue;
        };
        for suffix in ["-tool_result.jsonl", "-tool_result_error.jsonl"] {
            let result_file = tools.join(format!("{tool}{suffix}"));
            if !result_file.exists() {
                continue;
            }
            let result = fs::read(&result_file).unwrap();
            let is_error = serde_json::from_slice::<serde_json::Value>(&result).unwrap()["message"]
                ["content"][0]["is_error"]
                == true;
            let mut log = fs::read(&use_file).unwrap();
            log.extend(result);
            let (whole, _) = parse_in_passes(Kind::Claude, Path::new(LONG_LOG), &log, &[]);
            let [message] = whole.messages.as_slice() else {
                panic!("{tool}: the result is no message of its own")
            };
            let call = &message.tool_calls[0];
            assert_eq!(call.name, tool);
            if whole.report.orphan_tool_results == 0 {
                attached += 1;
                assert_eq!(call.is_error, is_error, "{tool}{suffix}");
                assert!(!call.result.is_empty() || tool == "Bash", "{tool}{suffix}");
            } else {
                assert!(
                    call.result.is_empty(),
                    "{tool}{suffix}: from another session"
                );
            }
        }
    }
    assert_eq!(attached, 20, "use/result pairs whose ids match");

    let mut log = fs::read(tools.join("Task-tool_use.jsonl")).unwrap();
    log.extend(fs::read(tools.join("Task-tool_result.jsonl")).unwrap());
    let (whole, _) = parse_in_passes(Kind::Claude, Path::new(LONG_LOG), &log, &[]);
    let call = &whole.messages[0].tool_calls[0];
    assert_eq!(
        (call.name.as_str(), call.category.as_str()),
        ("Task", "task")
    );
    assert!(call.input.contains(r#""subagent_type":"Plan""#));
    assert!(
        call.result
            .starts_with("Perfect! Now I have a comprehensive understanding")
    );
    assert_eq!(
        call.subagent_session,
        "cb2e607c-c758-415a-8b45-c49e4631906a.agent-ea02459f"
    );
}

const SAVED_OUTPUT_LOG: &str = "-home-dev-src-ledger/3f0b7d2e-9c41-4e8a-b6d5-1a2c3e4f5a6b.jsonl";

/// Issue 11: a tool output Claude Code saved beside the log (`<session>/tool-results/`) is
/// read back in place of the preview the log holds.
#[test]
fn claude_saved_output_is_read_from_its_file() {
    let path = claude_fixture(SAVED_OUTPUT_LOG);
    let saved = fs::read_to_string(claude_fixture(
        "-home-dev-src-ledger/3f0b7d2e-9c41-4e8a-b6d5-1a2c3e4f5a6b/tool-results/toolu_01Hq8vB3cN5rT7wXyZ2aD4kF.txt",
    ))
    .unwrap();
    assert!(saved.len() > 30_000, "an output Claude Code saves");
    let whole = parse_whole(Kind::Claude, &path);
    let call = &whole.messages[1].tool_calls[0];
    assert_eq!(call.id, "toolu_01Hq8vB3cN5rT7wXyZ2aD4kF");
    assert_eq!(call.result, saved);
    assert_eq!(whole.report.saved_outputs_unread, 0);
    assert_eq!(
        whole.session.unwrap().native_id.as_str(),
        "3f0b7d2e-9c41-4e8a-b6d5-1a2c3e4f5a6b"
    );

    // The same log somewhere without its session folder keeps the preview.
    let (elsewhere, _) = parse_in_passes(
        Kind::Claude,
        Path::new(LONG_LOG),
        &fs::read(&path).unwrap(),
        &[],
    );
    let preview = &elsewhere.messages[1].tool_calls[0].result;
    assert!(preview.starts_with("<persisted-output>\nOutput too large (45.5KB)."));
    assert!(
        preview.len() < 3000 && saved.starts_with(&preview[preview.find("src/").unwrap()..][..500])
    );
    assert_eq!(elsewhere.report.saved_outputs_unread, 1);
}

#[test]
fn claude_call_without_a_result_is_held_until_the_session_ends() {
    let path = claude_fixture("tools/Edit-tool_use.jsonl");
    let parsed = claude::parse_file(&path).unwrap();
    assert!(parsed.messages.is_empty());
    let mut state = parsed.state;
    assert_eq!(state.held_messages(), 1);
    let finished = state.finish();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].tool_calls[0].category, "edit");
    assert_eq!(finished[0].tool_calls[0].result, "");
}

fn codex_fixture(relative: &str) -> PathBuf {
    fixtures("codex").join(relative)
}

#[test]
fn codex_session_with_tools_usage_and_compaction() {
    let whole = parse_whole(
        Kind::Codex,
        &codex_fixture(
            "2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl",
        ),
    );
    let session = whole.session.clone().unwrap();
    assert_eq!(
        session.native_id.as_str(),
        "0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f"
    );
    assert_eq!(
        (session.agent.as_str(), session.parser.as_str()),
        ("codex", codex::PARSER)
    );
    assert_eq!(session.cwd, "/home/dev/src/tally");
    assert_eq!(session.project, "tally");
    assert_eq!(session.git_branch, "fix/rounding");
    assert!(
        session
            .first_message
            .starts_with("The total in `summarize` is off by one cent")
    );
    assert_eq!(session.user_message_count, 3);
    assert_eq!(
        session.started_ms,
        parse_rfc3339_ms("2025-09-14T10:02:11.459Z")
    );
    assert_eq!(
        session.ended_ms,
        parse_rfc3339_ms("2025-09-14T10:04:37.480Z")
    );

    let m = &whole.messages;
    assert!(
        m[0].system && m[1].system,
        "instructions and environment are context"
    );
    assert_eq!(m[2].role, "user");
    assert!(
        m[3].thinking
            .starts_with("**Locating the summarize function**")
    );
    assert_eq!(m[3].model, "gpt-5-codex");

    let calls: Vec<_> = m.iter().flat_map(|m| &m.tool_calls).collect();
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "shell",
            "shell",
            "apply_patch",
            "apply_patch",
            "shell",
            "apply_patch",
            "shell",
            "shell",
            "web_search"
        ]
    );
    assert_eq!(
        calls[0].input,
        r#"{"command":["bash","-lc","rg -n \"fn summarize\" src"],"workdir":"/home/dev/src/tally"}"#
    );
    assert_eq!(
        calls[0].result,
        "src/report.rs:42:pub fn summarize(items: &[Item]) -> Summary {\n"
    );
    assert_eq!(calls[2].category, "edit");
    assert!(calls[2].input.starts_with("*** Begin Patch"));
    assert!(calls[4].is_error, "the first test run failed to build");
    assert!(calls[4].result.contains("error[E0609]"));
    assert!(!calls[6].is_error && calls[6].result.contains("7 passed"));
    assert_eq!(calls[7].result, "", "the aborted clippy run has no output");
    assert_eq!(
        (calls[8].id.as_str(), calls[8].category.as_str()),
        ("", "web")
    );

    let compaction: Vec<_> = m.iter().filter(|m| m.compact_boundary).collect();
    assert_eq!(compaction.len(), 1);
    assert!(
        compaction[0]
            .content
            .starts_with("Summary of the conversation so far")
    );
    assert!(whole.report.skipped_records["event_msg/user_message"] >= 3);

    let events = &whole.usage_events;
    assert_eq!(
        events.len(),
        10,
        "one event per model call: no empty or repeated counts"
    );
    let first = &events[0];
    let u = &first.usage;
    assert_eq!(
        (u.input, u.cache_read, u.output, u.reasoning),
        (6212 - 5120, 5120, 187, 128)
    );
    assert_eq!(first.source, codex::USAGE_SOURCE);
    assert_eq!(first.model, "gpt-5-codex");
    let called_at = first.message_ordinal.unwrap() as usize;
    assert_eq!(
        m[called_at].tool_calls[0].name, "shell",
        "usage follows the call it paid for"
    );
    let output: u64 = events.iter().map(|e| e.usage.output).sum();
    assert_eq!(output, 187 + 64 + 412 + 166 + 58 + 139 + 58 + 171 + 61 + 96);
    let keys: std::collections::BTreeSet<_> = events.iter().map(|e| &e.dedup_key).collect();
    assert_eq!(keys.len(), events.len());
}

#[test]
fn codex_subagent_thread() {
    let whole = parse_whole(
        Kind::Codex,
        &codex_fixture(
            "2026/01/20/rollout-2026-01-20T09-15-42-019bd6a2-3f4e-7a81-b2c3-d4e5f6a7b8c9.jsonl",
        ),
    );
    let session = whole.session.unwrap();
    assert_eq!(
        session.parent_session,
        "019bd6a0-9c1d-7e42-8f53-a6b7c8d9e0f1"
    );
    assert_eq!(session.relationship, "subagent");
    assert!(session.first_message.starts_with("Review src/report.rs"));
    let m = &whole.messages;
    assert_eq!((m[0].role.as_str(), m[0].system), ("developer", true));
    assert_eq!(
        whole.report.skipped_records["response_item/reasoning-without-text"],
        1
    );
    let calls: Vec<_> = m.iter().flat_map(|m| &m.tool_calls).collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].category, "shell");
    assert!(!calls[0].is_error);
    assert!(calls[1].is_error, "Process exited with code 101");
    assert_eq!(m.last().unwrap().model, "gpt-5.2-codex");
}

const CODEX_PARENT: &str =
    "2026/03/02/rollout-2026-03-02T14-05-10-019caedd-fecc-7a41-9c2e-5b7d8e9f0a1b.jsonl";
const CODEX_FORK: &str =
    "2026/03/02/rollout-2026-03-02T14-31-47-019caef6-5fbe-7c03-8d1f-2e4a6b8c0d2e.jsonl";

/// Issue 11: a fork opens with a copy of its parent's rollout; the copy is neither the fork's
/// messages nor its usage, and the fork names its parent.
#[test]
fn codex_fork_reads_only_its_own_lines() {
    let parent = parse_whole(Kind::Codex, &codex_fixture(CODEX_PARENT));
    let fork = parse_whole(Kind::Codex, &codex_fixture(CODEX_FORK));
    let session = fork.session.clone().unwrap();
    assert_eq!(
        session.native_id.as_str(),
        "019caef6-5fbe-7c03-8d1f-2e4a6b8c0d2e"
    );
    assert_eq!(
        session.parent_session,
        "019caedd-fecc-7a41-9c2e-5b7d8e9f0a1b"
    );
    assert_eq!(session.relationship, "fork");
    assert_eq!(
        session.first_message,
        "Instead, keep the header in main.rs and make `report::to_csv` skip it."
    );
    assert_eq!(session.user_message_count, 1);
    assert_eq!(session.started_ms, Some(1_772_461_907_903));

    // Only the fork's own turn: none of the parent's messages comes back.
    let contents: Vec<(&str, &str)> = fork
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect();
    assert_eq!(contents.len(), 4, "{contents:?}");
    assert_eq!(contents[0].0, "user");
    assert!(fork.messages[1].thinking.contains("main.rs only"));
    assert_eq!(fork.messages[2].tool_calls[0].name, "apply_patch");
    assert!(fork.messages[2].tool_calls[0].result.starts_with("Success"));
    assert!(contents[3].1.starts_with("`report::to_csv` no longer"));
    for m in &parent.messages {
        assert!(
            !fork.messages.iter().any(|f| f.content == m.content
                && f.thinking == m.thinking
                && f.tool_calls.len() == m.tool_calls.len()
                && f.tool_calls
                    .iter()
                    .zip(&m.tool_calls)
                    .all(|(a, b)| a.id == b.id)),
            "the parent's message {:?} is read again in the fork",
            m.content
        );
    }
    assert!(
        fork.messages
            .iter()
            .filter(|m| m.role == "assistant")
            .all(|m| m.model == "gpt-5.3-codex")
    );
    assert_eq!(fork.report.orphan_tool_results, 0);
    assert_eq!(fork.report.skipped_records["replayed/session_meta"], 1);
    assert_eq!(fork.report.skipped_records["replayed/turn_context"], 2);
    assert_eq!(fork.report.skipped_records["replayed/event_msg"], 4);
    assert_eq!(fork.report.skipped_records["replayed/response_item"], 9);

    // Usage: the fork's two calls, each once; the copied counts and the count the fork starts
    // with (its parent's totals) make none.
    let used = |w: &Whole| -> Vec<(u64, u64, u64, u64)> {
        w.usage_events
            .iter()
            .map(|e| {
                (
                    e.usage.input,
                    e.usage.cache_read,
                    e.usage.output,
                    e.usage.reasoning,
                )
            })
            .collect()
    };
    assert_eq!(used(&fork), [(361, 9344, 233, 128), (262, 9728, 71, 0)]);
    assert_eq!(used(&parent).len(), 5);
    let parent_keys: BTreeSet<&str> = parent
        .usage_events
        .iter()
        .map(|e| e.dedup_key.as_str())
        .collect();
    assert!(
        fork.usage_events
            .iter()
            .all(|e| !parent_keys.contains(e.dedup_key.as_str()))
    );
    // Parent and fork together cost what the calls cost: the parent's final totals plus what the
    // fork's totals grew by from the totals it was forked with.
    let sum = |w: &Whole| {
        w.usage_events.iter().fold((0, 0, 0), |(i, c, o), e| {
            (
                i + e.usage.input,
                c + e.usage.cache_read,
                o + e.usage.output,
            )
        })
    };
    let (pi, pc, po) = sum(&parent);
    let (fi, fc, fo) = sum(&fork);
    // Totals (input incl. cached, cached, output): parent final 48_366 / 41_088 / 482; the fork
    // starts from 18_551 / 12_288 / 245 and ends at 38_246 / 31_360 / 549.
    assert_eq!(
        (pi + pc + fi + fc, pc + fc, po + fo),
        (
            48_366 + (38_246 - 18_551),
            41_088 + (31_360 - 12_288),
            482 + (549 - 245)
        )
    );
}

#[test]
fn codex_rollout_from_before_the_envelope() {
    let whole = parse_whole(
        Kind::Codex,
        &codex_fixture(
            "2025/05/07/rollout-2025-05-07T17-24-21-5973b6c0-94b8-487b-a530-2aeb6098ae0e.jsonl",
        ),
    );
    let session = whole.session.unwrap();
    assert_eq!(
        session.native_id.as_str(),
        "5973b6c0-94b8-487b-a530-2aeb6098ae0e"
    );
    assert_eq!(session.git_branch, "main");
    assert_eq!(
        session.started_ms,
        parse_rfc3339_ms("2025-05-07T17:24:21.123Z")
    );
    let shape: Vec<(&str, bool, usize)> = whole
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.thinking.is_empty(), m.tool_calls.len()))
        .collect();
    assert_eq!(
        shape,
        [
            ("user", true, 0),
            ("assistant", false, 0),
            ("assistant", true, 1),
            ("assistant", true, 0)
        ]
    );
    assert_eq!(
        whole.messages[2].tool_calls[0].result,
        "# tally\n\nA tiny CLI that totals shopping lists.\n"
    );
    assert_eq!(whole.report.skipped_records["state"], 4);
}

#[test]
fn malformed_lines_are_reported_and_skipped() {
    let log = [
        &br#"{"type":"user","uuid":"u1","message":{"role":"user","content":"first"}}"#[..],
        b"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"cut off",
        b"[1,2,3]",
        br#"{"no":"type"}"#,
        br#"{"type":"assistant","uuid":"a1"}"#,
        b"{\"type\":\"user\",\"message\":{\"content\":\"\xff\"}}",
        b"",
        br#"{"type":"mystery-record","data":1}"#,
        br#"{"type":"user","uuid":"u2","message":{"role":"user","content":"second"}}"#,
    ]
    .join(&b'\n');
    let mut log = log;
    log.push(b'\n');
    let parsed = claude::parse_from(Path::new(LONG_LOG), Cursor::new(&log), None).unwrap();
    let contents: Vec<&str> = parsed.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["first", "second"]);
    assert_eq!(
        parsed
            .messages
            .iter()
            .map(|m| m.ordinal)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    let lines: Vec<u64> = parsed
        .report
        .malformed_lines
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(lines, [2, 3, 4, 5, 6]);
    let reasons: Vec<&str> = parsed
        .report
        .malformed_lines
        .iter()
        .map(|(_, r)| r.as_str())
        .collect();
    assert!(reasons[0].starts_with("invalid JSON"), "{reasons:?}");
    assert_eq!(reasons[1], "not a JSON object");
    assert_eq!(reasons[2], "a record without a type");
    assert_eq!(reasons[3], "a assistant record without a message");
    assert_eq!(parsed.report.skipped_records["mystery-record"], 1);
    assert_eq!(parsed.state.offset, log.len() as u64);
    assert_eq!(parsed.state.lines, 9);
}

#[test]
fn a_partial_last_line_waits_for_its_newline() {
    let line = br#"{"type":"user","message":{"role":"user","content":"hello"}}"#;
    let mut log = line.to_vec();
    log.push(b'\n');
    log.extend_from_slice(&line[..20]);
    let first = claude::parse_from(Path::new(LONG_LOG), Cursor::new(&log), None).unwrap();
    assert_eq!(first.messages.len(), 1);
    assert_eq!(first.state.offset, line.len() as u64 + 1);
    assert!(first.report.malformed_lines.is_empty());

    log.extend_from_slice(&line[20..]);
    log.push(b'\n');
    let second =
        claude::parse_from(Path::new(LONG_LOG), Cursor::new(&log), Some(first.state)).unwrap();
    assert_eq!(second.messages.len(), 1);
    assert_eq!(second.messages[0].ordinal, 1);
    assert!(second.report.malformed_lines.is_empty());

    let shrunk = claude::parse_from(
        Path::new(LONG_LOG),
        Cursor::new(&log[..10]),
        Some(second.state),
    );
    assert_eq!(shrunk.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
}

/// Parsing a log in one pass equals parsing its first k lines, then the rest, for every k.
#[test]
fn resuming_after_any_line_gives_the_same_session() {
    let saved_output_log = claude_fixture(SAVED_OUTPUT_LOG);
    let mut logs = vec![
        (Kind::Claude, PathBuf::from(LONG_LOG), all_claude_records()),
        // Its result is read from the file beside it in whichever pass reads the record.
        (
            Kind::Claude,
            saved_output_log.clone(),
            fs::read(&saved_output_log).unwrap(),
        ),
    ];
    for path in jsonl_files(&fixtures("codex")) {
        let bytes = fs::read(&path).unwrap();
        logs.push((Kind::Codex, path, bytes));
    }
    for (kind, path, bytes) in logs {
        let one_pass = parse_in_passes(kind, &path, &bytes, &[]);
        assert_publishable(&one_pass.0);
        for cut in std::iter::once(0).chain(line_ends(&bytes)) {
            let two_passes = parse_in_passes(kind, &path, &bytes, &[cut]);
            assert_eq!(
                two_passes,
                one_pass,
                "{} cut after byte {cut}",
                path.display()
            );
        }
    }
}

/// Issue 11: a log where the user rewound to the second prompt and edited it. The first
/// attempt (the prompt, its edit and its answer) is flagged, nothing else; read in two passes
/// cut at any line, the host's amendments give the same messages.
#[test]
fn claude_edited_prompt_leaves_its_first_attempt_abandoned() {
    let path = claude_fixture("branches/3f0c9a2e-5b7d-4e1a-9c8b-2d6e4f1a7b35.jsonl");
    let bytes = fs::read(&path).unwrap();
    let (one_pass, _) = parse_in_passes(Kind::Claude, &path, &bytes, &[]);
    let flagged: Vec<(u64, &str, &str)> = one_pass
        .messages
        .iter()
        .filter(|m| m.abandoned)
        .map(|m| (m.ordinal, m.role.as_str(), m.content.as_str()))
        .collect();
    assert_eq!(
        flagged,
        [
            (5, "user", "Now add a header row with the column names."),
            (6, "assistant", ""),
            (
                7,
                "assistant",
                "Added a header row: every export now starts with `date,item,amount`."
            ),
        ]
    );
    assert_eq!(
        one_pass.messages[8].content,
        "Now add a header row with the column names, but only when --header is given."
    );
    assert_eq!(one_pass.messages.len(), 14);
    for cut in std::iter::once(0).chain(line_ends(&bytes)) {
        assert_eq!(
            parse_in_passes(Kind::Claude, &path, &bytes, &[cut]).0,
            one_pass,
            "cut after byte {cut}"
        );
    }
    // In three passes too: the abandoned messages handed out in the first.
    let ends = line_ends(&bytes);
    assert_eq!(
        parse_in_passes(Kind::Claude, &path, &bytes, &[ends[9], ends[14]]).0,
        one_pass
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The same at any byte, in any number of passes: a pass that stops mid-line leaves the
    /// partial line for the next.
    #[test]
    fn resuming_at_any_bytes_gives_the_same_session(
        fractions in proptest::collection::vec(0.0f64..=1.0, 1..5),
        codex_log in 0usize..5,
    ) {
        let codex_files = jsonl_files(&fixtures("codex"));
        let logs = [
            (Kind::Claude, PathBuf::from(LONG_LOG), all_claude_records()),
            (Kind::Codex, codex_files[codex_log].clone(), fs::read(&codex_files[codex_log]).unwrap()),
        ];
        for (kind, path, bytes) in logs {
            let mut cuts: Vec<usize> =
                fractions.iter().map(|f| (f * bytes.len() as f64) as usize).collect();
            cuts.sort_unstable();
            let one_pass = parse_in_passes(kind, &path, &bytes, &[]);
            prop_assert_eq!(parse_in_passes(kind, &path, &bytes, &cuts), one_pass);
        }
    }

    /// Generated Claude Code logs: prompts, split assistant messages with tool calls, results
    /// in any order or missing, sidechains, garbage lines. Any cut gives the same session, and
    /// the session publishes.
    #[test]
    fn generated_claude_logs_resume_and_publish(
        steps in proptest::collection::vec(claude_step(), 0..40),
        cut in 0.0f64..=1.0,
    ) {
        let bytes = claude_log(&steps);
        let path = Path::new(LONG_LOG);
        let one_pass = parse_in_passes(Kind::Claude, path, &bytes, &[]);
        assert_publishable(&one_pass.0);
        let cut = (cut * bytes.len() as f64) as usize;
        prop_assert_eq!(parse_in_passes(Kind::Claude, path, &bytes, &[cut]), one_pass);
    }
}

#[derive(Debug, Clone)]
enum ClaudeStep {
    /// A typed prompt; `parent` picks its `parentUuid` from a few, so that prompts share one
    /// (a branch) now and then.
    Prompt {
        text: String,
        sidechain: bool,
        parent: Option<u8>,
    },
    /// An API message of `blocks` records; each block is text or a call to tool `calls[i]`.
    Assistant {
        id: u8,
        calls: Vec<u8>,
        texts: u8,
        sidechain: bool,
    },
    Result {
        call: u8,
        is_error: bool,
    },
    Garbage(String),
}

fn claude_step() -> impl Strategy<Value = ClaudeStep> {
    prop_oneof![
        (
            "[a-z \\n\"é]{0,30}",
            any::<bool>(),
            proptest::option::of(0u8..4)
        )
            .prop_map(|(text, sidechain, parent)| ClaudeStep::Prompt {
                text,
                sidechain,
                parent
            }),
        (
            any::<u8>(),
            proptest::collection::vec(0u8..12, 0..3),
            0u8..3,
            any::<bool>()
        )
            .prop_map(|(id, calls, texts, sidechain)| ClaudeStep::Assistant {
                id,
                calls,
                texts,
                sidechain
            }),
        (0u8..12, any::<bool>()).prop_map(|(call, is_error)| ClaudeStep::Result { call, is_error }),
        "[{}\\[\\]a-z:,\"]{0,20}".prop_map(ClaudeStep::Garbage),
    ]
}

fn claude_log(steps: &[ClaudeStep]) -> Vec<u8> {
    use serde_json::json;
    let mut lines = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let time = format!("2025-10-01T12:{:02}:{:02}.000Z", n / 60, n % 60);
        match step {
            ClaudeStep::Prompt {
                text,
                sidechain,
                parent,
            } => lines.push(
                json!({"type": "user", "uuid": format!("u{n}"), "isSidechain": sidechain,
                       "parentUuid": parent.map(|p| format!("p{p}")),
                       "timestamp": time, "message": {"role": "user", "content": text}})
                .to_string(),
            ),
            ClaudeStep::Assistant {
                id,
                calls,
                texts,
                sidechain,
            } => {
                let blocks = calls
                    .iter()
                    .map(|c| {
                        json!({"type": "tool_use", "id": format!("toolu_{c}"), "name": "Bash",
                                    "input": {"command": format!("echo {c}")}})
                    })
                    .chain(
                        (0..*texts).map(|t| json!({"type": "text", "text": format!("text {t}")})),
                    );
                for (b, block) in blocks.enumerate() {
                    lines.push(
                        json!({"type": "assistant", "uuid": format!("a{n}-{b}"), "isSidechain": sidechain,
                               "timestamp": time,
                               "message": {"id": format!("msg_{id}"), "role": "assistant", "model": "claude-x",
                                           "content": [block],
                                           "usage": {"input_tokens": 3, "output_tokens": 10 * (b + 1)}}})
                        .to_string(),
                    );
                }
            }
            ClaudeStep::Result { call, is_error } => lines.push(
                json!({"type": "user", "uuid": format!("r{n}"), "timestamp": time,
                       "message": {"role": "user", "content": [
                           {"type": "tool_result", "tool_use_id": format!("toolu_{call}"),
                            "content": format!("output {n}"), "is_error": is_error}]}})
                .to_string(),
            ),
            ClaudeStep::Garbage(text) => lines.push(text.replace('\n', " ")),
        }
    }
    let mut log = lines.join("\n").into_bytes();
    log.push(b'\n');
    log
}

#[test]
fn claude_read_call_keeps_its_file_and_api_ids() {
    let whole = parse_whole(Kind::Claude, &claude_fixture("tools/Read-tool_use.jsonl"));
    let message = &whole.messages[0];
    assert_eq!(message.api_message_id, "msg_01KtTuXBk5jFyQMW1pR3Zs4N");
    let raw = fs::read_to_string(claude_fixture("tools/Read-tool_use.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(
        message.request_id,
        record["requestId"].as_str().unwrap_or("")
    );
    assert_eq!(
        message.tool_calls[0].file_path,
        "/Users/dain/workspace/danieldemmel.me-next/public/tokenizer.js"
    );
}

/// Issue 11: prompts typed while the agent works are user messages. Claude Code ≥ 2.1.101 logs
/// them as `attachment` records of type `queued_command` (a string prompt, or content blocks
/// when it carried an image); the records below follow the shape claude-code-log 1.7.0 documents
/// (dev-docs/messages.md, "User Steering"), reconstructed, not written by the real tool.
#[test]
fn claude_queued_prompts_are_user_messages() {
    let dir = std::env::temp_dir().join(format!("agentsync-queued-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("4f5e6d7c-0000-4000-8000-000000000001.jsonl");
    let sid = "4f5e6d7c-0000-4000-8000-000000000001";
    let records = [
        serde_json::json!({"type": "user", "sessionId": sid, "uuid": "u1", "parentUuid": null,
            "timestamp": "2026-11-30T10:00:00.000Z", "cwd": "/w", "version": "2.1.205",
            "message": {"role": "user", "content": "refactor the parser"}}),
        serde_json::json!({"type": "assistant", "sessionId": sid, "uuid": "u2", "parentUuid": "u1",
            "timestamp": "2026-11-30T10:00:01.000Z", "cwd": "/w",
            "message": {"role": "assistant", "model": "m", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "cargo test"}}]}}),
        serde_json::json!({"type": "attachment", "sessionId": sid, "uuid": "u3", "parentUuid": "u2",
            "timestamp": "2026-11-30T10:00:02.000Z", "cwd": "/w",
            "attachment": {"type": "queued_command", "prompt": "and keep the old API working"}}),
        serde_json::json!({"type": "user", "sessionId": sid, "uuid": "u4", "parentUuid": "u3",
            "timestamp": "2026-11-30T10:00:03.000Z", "cwd": "/w",
            "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok: 12 passed"}]}}),
        serde_json::json!({"type": "attachment", "sessionId": sid, "uuid": "u5", "parentUuid": "u4",
            "timestamp": "2026-11-30T10:00:04.000Z", "cwd": "/w",
            "attachment": {"type": "queued_command", "prompt": [
                {"type": "text", "text": "like this screenshot"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}}),
        serde_json::json!({"type": "attachment", "sessionId": sid, "uuid": "u6", "parentUuid": "u5",
            "timestamp": "2026-11-30T10:00:05.000Z", "cwd": "/w",
            "attachment": {"type": "hook_success", "content": "x"}}),
    ];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    fs::write(&path, text).unwrap();
    let whole = parse_whole(Kind::Claude, &path);
    let users: Vec<&str> = whole
        .messages
        .iter()
        .filter(|m| m.role == "user")
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(users[1], "and keep the old API working");
    assert!(users[2].starts_with("like this screenshot"), "{users:?}");
    assert!(users[2].contains("[image: image/png]"), "{users:?}");
    // The queued prompt did not end the turn: the call still got its result.
    let call = &whole.messages[1].tool_calls[0];
    assert_eq!(call.result, "ok: 12 passed");
    assert_eq!(whole.session.unwrap().user_message_count, 3);
    assert_eq!(
        whole.report.skipped_records.get("attachment/hook_success"),
        Some(&1)
    );
    assert_publishable(&parse_whole(Kind::Claude, &path));
    fs::remove_dir_all(&dir).unwrap();
}

/// Issue 11: a result that comes after the next prompt is paired with its call by id, in the
/// pass that reads it (the message was already released when the prompt gave up waiting).
#[test]
fn claude_late_results_are_paired_in_one_pass() {
    let dir = std::env::temp_dir().join(format!("agentsync-late-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let sid = "6d7e8f90-0000-4000-8000-000000000001";
    let path = dir.join(format!("{sid}.jsonl"));
    let rec = |uuid: &str, t: u32, body: serde_json::Value| {
        let mut r = serde_json::json!({"sessionId": sid, "uuid": uuid, "cwd": "/w",
            "timestamp": format!("2026-11-30T10:00:{t:02}.000Z")});
        for (k, v) in body.as_object().unwrap() {
            r[k] = v.clone();
        }
        format!("{r}\n")
    };
    let text = [
        rec("u1", 0, serde_json::json!({"type": "user", "message": {"role": "user", "content": "go"}})),
        rec("u2", 1, serde_json::json!({"type": "assistant", "message": {"role": "assistant", "model": "m", "content": [
            {"type": "tool_use", "id": "t1", "name": "Task", "input": {"prompt": "x"}},
            {"type": "tool_use", "id": "t2", "name": "Task", "input": {"prompt": "y"}}]}})),
        rec("u3", 2, serde_json::json!({"type": "user", "message": {"role": "user", "content": "meanwhile, something else"}})),
        rec("u4", 3, serde_json::json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t2", "content": "second done"}]}})),
        rec("u5", 4, serde_json::json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "first done"}]}})),
    ]
    .concat();
    fs::write(&path, text).unwrap();
    let whole = parse_whole(Kind::Claude, &path);
    let results: Vec<&str> = whole.messages[1]
        .tool_calls
        .iter()
        .map(|c| c.result.as_str())
        .collect();
    assert_eq!(results, ["first done", "second done"]);
    assert_eq!(whole.report.orphan_tool_results, 0);
    fs::remove_dir_all(&dir).unwrap();
}

/// Inputs the `logs` fuzz target once failed on (`logs/tests/fixtures/fuzz/`), checked the way
/// it checks: a format byte (even: Claude Code, odd: Codex), two bytes of cut point, the log.
#[test]
fn fuzz_findings_stay_fixed() {
    let dir = fixtures("fuzz");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let data = fs::read(entry.unwrap().path()).unwrap();
        let [format, hi, lo, log @ ..] = data.as_slice() else {
            continue;
        };
        let cut = (usize::from(*hi) << 8 | usize::from(*lo)).min(log.len());
        // The fuzz target `logs` reads the first byte mod 3: Claude Code, Codex, Copilot CLI.
        let (kind, path) = match format % 3 {
            0 => (Kind::Claude, Path::new(LONG_LOG)),
            1 => (
                Kind::Codex,
                Path::new(
                    "2025/09/14/rollout-2025-09-14T10-02-11-0199473a-6c1f-7d52-9a3e-4f1b2c3d4e5f.jsonl",
                ),
            ),
            _ => panic!("a Copilot CLI finding: read it here as one (Kind has no Copilot yet)"),
        };
        let (one, _) = parse_in_passes(kind, path, log, &[]);
        let (two, _) = parse_in_passes(kind, path, log, &[cut]);
        assert_eq!(one.messages, two.messages);
        assert_eq!(one.session, two.session);
        if one.session.is_some() {
            assert_publishable(&one);
        }
        checked += 1;
    }
    assert!(checked > 0, "no fuzz findings in {}", dir.display());
}
