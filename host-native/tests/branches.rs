//! Issue 11: a Claude Code log where the user rewound to a prompt and edited it. The first
//! attempt, stored and published before the edited prompt was written, is flagged abandoned
//! once it is: `show` folds it into one line (`--all` prints it, marked), `show --json` keeps
//! it with its flag, search still finds it, and a second machine gets the flags by a sync.

mod common;

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use common::{Machine, Scratch, assert_converged, settle, shared_folder};
use serde_json::Value;

const SESSION: &str = "3f0c9a2e-5b7d-4e1a-9c8b-2d6e4f1a7b35";

/// The reconstructed log (logs/tests/fixtures/README.md): its 14th line ends the first attempt
/// at the second prompt; the 15th is the edited prompt.
fn fixture_lines() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../logs/tests/fixtures/claude-code/branches")
        .join(format!("{SESSION}.jsonl"));
    fs::read_to_string(path)
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_owned)
        .collect()
}

fn flagged(detail: &Value) -> Vec<u64> {
    detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["abandoned"] == true)
        .map(|m| m["ordinal"].as_u64().unwrap())
        .collect()
}

#[test]
fn an_edited_prompt_folds_its_first_attempt_on_every_machine() {
    let scratch = Scratch::new("branches");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let lines = fixture_lines();
    assert_eq!(lines.len(), 25);
    let dir = a.projects().join("-home-dev-src-tally");
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join(format!("{SESSION}.jsonl"));
    fs::write(&log, lines[..14].concat()).unwrap();
    a.ingest();
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    let gid = format!("{}~{SESSION}", a.origin);
    let before = b.json(&["show", &gid]);
    assert_eq!(before["messages"].as_array().unwrap().len(), 8);
    assert_eq!(flagged(&before), Vec::<u64>::new(), "no branch yet");

    // The user rewinds and edits the second prompt: Claude Code appends the new branch.
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(lines[14..].concat().as_bytes()).unwrap();
    drop(file);
    let ingest = a.ingest();
    assert_eq!(ingest["sessions_changed"], 1, "{ingest:#}");
    settle(&[&a, &b], &shared, 4);

    for m in [&a, &b] {
        let detail = m.json(&["show", &gid]);
        assert_eq!(flagged(&detail), [5, 6, 7], "{}", m.name);
        assert_eq!(detail["message_count"], 14, "{}", m.name);

        let text = m.run(&["show", &gid]).expect(0).stdout;
        assert!(
            text.contains("\n[3 messages on an abandoned branch, #5–#7: --all shows them]\n"),
            "{}: {text}",
            m.name
        );
        assert!(
            !text.contains("every export now starts"),
            "{}: {text}",
            m.name
        );
        assert!(!text.contains("#5 user"), "{}: {text}", m.name);
        assert!(
            text.contains("#4 assistant") && text.contains("#8 user"),
            "{}: {text}",
            m.name
        );
        assert!(
            text.contains("but only when --header is given"),
            "{}: {text}",
            m.name
        );

        let all = m.run(&["show", &gid, "--all"]).expect(0).stdout;
        assert!(!all.contains("abandoned branch,"), "{}: {all}", m.name);
        for ordinal in 5..=7 {
            assert!(
                all.lines().any(|l| l.starts_with(&format!("#{ordinal} "))
                    && l.ends_with(" (abandoned branch)")),
                "{}: #{ordinal} is not marked: {all}",
                m.name
            );
        }
        assert!(all.contains("every export now starts"), "{}", m.name);
        assert!(
            all.lines()
                .filter(|l| l.ends_with(" (abandoned branch)"))
                .count()
                == 3,
            "{}: {all}",
            m.name
        );

        let hits = m.json(&["search", "starts"]);
        assert!(
            hits.as_array()
                .unwrap()
                .iter()
                .any(|h| h["session"] == gid.as_str() && h["ordinal"] == 7),
            "{}: search finds the abandoned answer: {hits:#}",
            m.name
        );
    }
    assert_converged(&[&a, &b]);
}

/// A log read again from its start flags the branch at once: stored messages that lack only
/// the flag are amended, never taken for a rewritten log (no `.rewrite-1` session), and a
/// database rebuilt from the store reads the log again with nothing changed.
#[test]
fn a_log_read_again_from_the_start_amends_the_flags_in_place() {
    let scratch = Scratch::new("branches-reread");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let lines = fixture_lines();
    let dir = a.projects().join("-home-dev-src-tally");
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join(format!("{SESSION}.jsonl"));
    fs::write(&log, lines[..14].concat()).unwrap();
    a.ingest();
    // The log replaced by a new file (another inode) holding the whole session: read whole.
    let replacement = dir.join("replacement.tmp");
    fs::write(&replacement, lines.concat()).unwrap();
    fs::rename(&replacement, &log).unwrap();
    let ingest = a.ingest();
    assert_eq!(ingest["sessions_changed"], 1, "{ingest:#}");
    let sessions = a.sessions();
    assert_eq!(
        sessions.as_array().unwrap().len(),
        1,
        "no rewrite session: {sessions:#}"
    );
    let gid = format!("{}~{SESSION}", a.origin);
    let detail = a.json(&["show", &gid]);
    assert_eq!(flagged(&detail), [5, 6, 7]);
    assert_eq!(detail["message_count"], 14);
    a.sync_ok(&shared);

    for name in ["archive.db", "archive.db-wal", "archive.db-shm"] {
        let _ = fs::remove_file(a.data.join(name));
    }
    a.json(&["rebuild"]);
    let again = a.ingest();
    assert_eq!(again["sessions_changed"], 0, "{again:#}");
    assert_eq!(a.json(&["show", &gid]), detail);
}
