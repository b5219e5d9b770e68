//! Every agent the CLI reads: its fixtures ingest with `--agent NAME --from DIR`, every
//! session shows with its messages, a word of each agent's messages finds its session, and a
//! second machine gets them all through a sync.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{Machine, Scratch};
use serde_json::Value;

fn fixtures(agent: &str) -> PathBuf {
    let folder = if agent == "claude" {
        "claude-code"
    } else {
        agent
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../logs/tests/fixtures")
        .join(folder)
}

/// A word of the session's messages long enough to be specific.
fn a_word_of(detail: &Value) -> Option<String> {
    let texts = detail["messages"]
        .as_array()?
        .iter()
        .filter_map(|m| m["content"].as_str());
    texts
        .flat_map(|t| t.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.len() >= 7 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::to_lowercase)
        .next()
}

#[test]
fn every_agent_ingests_shows_finds_and_syncs() {
    let scratch = Scratch::new("agents");
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let shared = scratch.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let names: Vec<&str> = agentsync_logs::agent::ALL.iter().map(|a| a.name).collect();
    for name in &names {
        let from = fixtures(name);
        let out = a.json(&["ingest", "--agent", name, "--from", from.to_str().unwrap()]);
        assert!(out["files"].as_u64().unwrap() > 0, "{name}: {out:#}");
        assert_eq!(out["failed"], serde_json::json!([]), "{name}: {out:#}");
        assert!(
            out["sessions_changed"].as_u64().unwrap() > 0,
            "{name}: {out:#}"
        );
        // Read again: nothing changed.
        let again = a.json(&["ingest", "--agent", name, "--from", from.to_str().unwrap()]);
        assert_eq!(again["sessions_changed"], 0, "{name}: {again:#}");
    }
    let sessions = a.sessions();
    let sessions = sessions.as_array().unwrap();
    for name in &names {
        let mine: Vec<&Value> = sessions.iter().filter(|s| s["agent"] == *name).collect();
        assert!(!mine.is_empty(), "{name}: no session listed");
        let mut found = false;
        for session in mine {
            let id = session["id"].as_str().unwrap();
            let detail = a.json(&["show", id]);
            assert_eq!(detail["session"]["agent"], *name, "{detail:#}");
            // The list and the session price the same tokens alike.
            for field in ["tokens", "cost_usd", "unpriced_models"] {
                assert_eq!(detail[field], session[field], "{name} {id}: {field}");
            }
            let Some(word) = a_word_of(&detail) else {
                continue;
            };
            let hits = a.json(&["search", &word]);
            assert!(
                hits.as_array().unwrap().iter().any(|h| h["session"] == id),
                "{name}: searching {word:?} does not find {id}: {hits:#}"
            );
            found = true;
        }
        assert!(found, "{name}: no session has a searchable word");
    }
    // The agents whose fixtures log usage of models in the price table get a cost.
    for name in ["claude", "codex", "gemini"] {
        assert!(
            sessions
                .iter()
                .filter(|s| s["agent"] == name)
                .any(|s| s["cost_usd"].as_f64().is_some_and(|c| c > 0.0)
                    && s["tokens"]["output"].as_u64().is_some_and(|t| t > 0)),
            "{name}: no session with a cost"
        );
    }
    // The wrong agent for a file is refused by name; an unknown agent too.
    let not_gemini = fixtures("codex");
    let run = a.run(&[
        "ingest",
        "--agent",
        "nosuch",
        "--from",
        not_gemini.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("nosuch"), "{}", run.stderr);

    a.sync_ok(&shared);
    b.sync_ok(&shared);
    let agents_of = |m: &Machine| -> BTreeSet<String> {
        m.sessions()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["agent"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(agents_of(&b), names.iter().map(|n| n.to_string()).collect());
    assert_eq!(a.session_ids(), b.session_ids());
    // Tokens travel with the sessions; both machines price them alike.
    let priced = |m: &Machine| -> Vec<(String, Value, Value)> {
        let mut list: Vec<_> = m
            .sessions()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["tokens"].clone(),
                    s["cost_usd"].clone(),
                )
            })
            .collect();
        list.sort_by(|x, y| x.0.cmp(&y.0));
        list
    };
    assert_eq!(priced(&a), priced(&b));
}

/// A document (an Amp thread) caught mid-turn: the call still running waits; once the thread
/// has been left alone for an hour it is published without its result; when the agent later
/// writes the result into the document, the stored message is amended (no second session),
/// the new last message waits until the thread settles, and a peer gets it all.
#[test]
fn a_document_publishes_waiting_calls_when_settled_and_amends_their_results() {
    let scratch = Scratch::new("agents-document");
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let shared = scratch.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let name = "T-019a1c71-3d0e-7f52-8b64-5e1a9c2f4d83.json";
    let threads = a.home.join(".local/share/amp/threads");
    std::fs::create_dir_all(&threads).unwrap();
    let thread = threads.join(name);
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(fixtures("amp").join(name)).unwrap()).unwrap();
    std::fs::write(&thread, doc.to_string()).unwrap();
    let show = |m: &Machine| -> Value {
        let id = format!("{}~{}", a.origin, "T-019a1c71-3d0e-7f52-8b64-5e1a9c2f4d83");
        m.json(&["show", &id])
    };

    let out = a.json(&["ingest", "--agent", "amp"]);
    assert_eq!(out["messages"], 2, "the running Bash call waits: {out:#}");
    assert_eq!(show(&a)["messages"].as_array().unwrap().len(), 2);

    // Left alone for two hours: published with the result it has (none).
    let set_old = |path: &std::path::Path| {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        file.set_modified(two_hours_ago).unwrap();
    };
    set_old(&thread);
    let out = a.json(&["ingest", "--agent", "amp"]);
    assert_eq!(out["messages"], 1, "{out:#}");
    let messages = show(&a)["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3);
    let bash = &messages[2]["tool_calls"][0];
    assert_eq!(bash["name"], "Bash");
    assert!(bash.get("result").is_none_or(|r| r == ""), "{bash}");

    // The agent comes back: the result lands and the thread goes on.
    doc["messages"][4]["content"][0]["run"] = serde_json::json!({"status": "done", "result": {"output": "test header_only ... ok", "exitCode": 0}});
    doc["messages"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "role": "assistant", "messageId": 5,
            "content": [{"type": "text", "text": "The header-only test passes."}],
            "state": {"type": "complete", "stopReason": "end_turn"}
        }));
    std::fs::write(&thread, doc.to_string()).unwrap();
    let out = a.json(&["ingest", "--agent", "amp"]);
    assert_eq!(out["sessions_changed"], 1, "{out:#}");
    let messages = show(&a)["messages"].as_array().unwrap().clone();
    assert_eq!(
        messages.len(),
        3,
        "the new last message waits: {messages:#?}"
    );
    set_old(&thread);
    a.json(&["ingest", "--agent", "amp"]);
    let messages = show(&a)["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 4, "{messages:#?}");
    let result = messages[2]["tool_calls"][0]["result"]
        .as_str()
        .unwrap_or_default();
    assert!(result.contains("header_only ... ok"), "amended: {result}");
    let amp_sessions = a
        .sessions()
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["agent"] == "amp")
        .count();
    assert_eq!(
        amp_sessions, 1,
        "the filled-in result is no rewrite of the thread"
    );

    a.sync_ok(&shared);
    b.sync_ok(&shared);
    assert_eq!(show(&b)["messages"], show(&a)["messages"]);
}

/// A collection (an Aider chat history: one session per run): a new run appended to the file
/// is one new session; the runs before it are not read again as changed.
#[test]
fn a_collection_reads_again_only_the_sessions_that_changed() {
    let scratch = Scratch::new("agents-collection");
    let a = Machine::new(&scratch.path, "a");
    let project = scratch.join("src/app");
    std::fs::create_dir_all(&project).unwrap();
    let history = project.join(".aider.chat.history.md");
    let run = |when: &str, prompt: &str, reply: &str| {
        format!(
            "\n# aider chat started at {when}\n\n> Main model: gpt-4.1 with diff edit format  \n\n#### {prompt}  \n\n{reply}\n\n"
        )
    };
    let first = run(
        "2026-11-20 09:00:00",
        "add a --verbose flag",
        "Added `--verbose`.",
    );
    std::fs::write(&history, &first).unwrap();
    let src = scratch.join("src");
    let from = src.to_str().unwrap();
    let out = a.json(&["ingest", "--agent", "aider", "--from", from]);
    assert_eq!(out["sessions_changed"], 1, "{out:#}");
    let second = run(
        "2026-11-21 10:00:00",
        "document the flag",
        "Documented in the README.",
    );
    std::fs::write(&history, format!("{first}{second}")).unwrap();
    let out = a.json(&["ingest", "--agent", "aider", "--from", from]);
    assert_eq!(out["sessions_changed"], 1, "only the new run: {out:#}");
    let runs: Vec<Value> = a
        .sessions()
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["agent"] == "aider")
        .cloned()
        .collect();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let out = a.json(&["ingest", "--agent", "aider", "--from", from]);
    assert_eq!(out["unchanged"], 1, "{out:#}");
}
