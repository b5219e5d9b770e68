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
