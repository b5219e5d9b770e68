//! End-to-end tests of the real `agentsync` binary: several machines (data dirs) syncing
//! through one shared folder converge; appends cost one tail segment; the CLI's exit codes and
//! JSON output.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;

use common::converge::convergence_case;
use common::{ClaudeLog, Machine, Scratch, assert_converged, files_under, settle, shared_folder};
use serde_json::{Value, json};

#[test]
fn random_edits_on_three_machines_converge() {
    // CONVERGE_SEED=<n> runs another history instead.
    match std::env::var("CONVERGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => convergence_case(seed, None, &[]),
        None => (1..=5).for_each(|seed| convergence_case(seed, None, &[])),
    }
}

#[test]
fn concurrent_renames_end_as_one_conflict_everywhere() {
    let scratch = Scratch::new("renames");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let c = Machine::new(&scratch.path, "c");
    let log = ClaudeLog::write(
        &a.projects(),
        "web",
        "5b1e6c3a-1f0d-4c9e-8a7b-2d3c4e5f6a7b",
        0,
        4,
    );
    a.ingest();
    let gid = log.gid(&a.origin);
    settle(&[&a, &b, &c], &shared, 6);
    assert_eq!(c.session_ids(), std::slice::from_ref(&gid));

    a.json(&["rename", &gid, "name from a"]);
    b.json(&["rename", &gid, "name from b"]);
    settle(&[&a, &b, &c], &shared, 6);
    let snapshot = assert_converged(&[&a, &b, &c]);
    let conflicts = snapshot["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:#?}");
    let conflict = &conflicts[0];
    assert_eq!(conflict["session"], gid.as_str());
    assert_eq!(conflict["field"], "display_name");
    let values: BTreeSet<&str> = [&conflict["winner"], &conflict["loser"]]
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, BTreeSet::from(["name from a", "name from b"]));
    assert_eq!(
        snapshot["sessions"][0]["display_name"],
        conflict["winner"]["value"]
    );

    // A later rename that saw both is no conflict, and its winner saw the losers: the
    // conflict is resolved, on every machine alike.
    c.json(&["rename", &gid, "settled"]);
    settle(&[&a, &b, &c], &shared, 6);
    let snapshot = assert_converged(&[&a, &b, &c]);
    assert_eq!(snapshot["conflicts"], json!([]));
    assert_eq!(snapshot["sessions"][0]["display_name"], "settled");
}

fn keys_under<'a>(files: &'a BTreeMap<String, Vec<u8>>, prefix: &str) -> BTreeSet<&'a str> {
    files
        .keys()
        .filter(|k| k.starts_with(prefix))
        .map(String::as_str)
        .collect()
}

#[test]
fn appending_one_message_sends_one_tail_segment() {
    let scratch = Scratch::new("tail");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let mut log = ClaudeLog::write(
        &a.projects(),
        "api",
        "0c8f2d4e-6a1b-4c3d-9e5f-7a8b9c0d1e2f",
        3600,
        300,
    );
    // A second session that must not be touched.
    ClaudeLog::write(
        &a.projects(),
        "api",
        "1d9a3e5f-7b2c-4d4e-8f6a-8b9c0d1e2f3a",
        7200,
        5,
    );
    a.ingest();
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    let gid = log.gid(&a.origin);
    assert_eq!(b.session(&gid).unwrap()["message_count"], 300);

    let before = files_under(&shared);
    let prefix = format!("{}/segments/", a.origin);
    assert!(
        keys_under(&before, &prefix).len() >= 4,
        "300 messages span several segments: {:?}",
        keys_under(&before, &prefix)
    );

    log.append(1);
    let ingest = a.ingest();
    assert_eq!(ingest["sessions_changed"], 1, "{ingest:#}");
    assert_eq!(ingest["messages"], 1, "{ingest:#}");
    a.sync_ok(&shared);
    let after = files_under(&shared);

    for (key, bytes) in &before {
        assert_eq!(
            after.get(key),
            Some(bytes),
            "{key} changed or vanished after an append"
        );
    }
    let new: BTreeSet<&str> = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .map(String::as_str)
        .collect();
    let count = |p: &str| new.iter().filter(|k| k.starts_with(p)).count();
    let o = &a.origin;
    assert_eq!(count(&format!("{o}/segments/")), 1, "{new:#?}");
    assert_eq!(count(&format!("{o}/manifests/")), 1, "{new:#?}");
    assert_eq!(count(&format!("{o}/buckets/")), 1, "{new:#?}");
    assert_eq!(count(&format!("roots/{o}/")), 1, "{new:#?}");
    assert_eq!(new.len(), 4, "nothing else is written: {new:#?}");

    let report = b.sync_ok(&shared);
    assert_eq!(report["imported_sessions"], 1, "{report:#}");
    assert_eq!(b.session(&gid).unwrap()["message_count"], 301);
    let shown = b.json(&["show", &gid]);
    assert_eq!(shown["messages"].as_array().unwrap().len(), 301);
    assert_eq!(
        shown["messages"][300]["content"],
        a.json(&["show", &gid])["messages"][300]["content"]
    );
    assert_converged(&[&a, &b]);
}

fn sessions_of(m: &Machine) -> Value {
    json!([m.sessions(), m.trashed()])
}

#[test]
fn cli_exit_codes_and_json() {
    let scratch = Scratch::new("cli");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let log = ClaudeLog::write(
        &a.projects(),
        "cli",
        "2e0b4f6a-8c3d-4e5f-8a7b-9c0d1e2f3a4b",
        0,
        3,
    );
    let gid = log.gid(&a.origin);

    // Usage errors: exit 2.
    for args in [
        &["frobnicate"][..],
        &["sync", "--no-such-flag"],
        &["pin", &gid, "not-a-number"],
        &["rename"],
    ] {
        let run = a.run(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty(), "{args:?}: no usage message");
    }

    // Every --json output parses.
    let ingest = a.json(&["ingest", a.projects().to_str().unwrap()]);
    assert_eq!(ingest["messages"], 3);
    let list = a.json(&["sessions"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], gid.as_str());
    assert_eq!(list[0]["origin"], a.origin.as_str());
    assert_eq!(list[0]["agent"], "claude");
    assert_eq!(list[0]["message_count"], 3);
    let shown = a.json(&["show", &gid]);
    assert_eq!(shown["messages"].as_array().unwrap().len(), 3);
    let hits = a.json(&["search", "question"]);
    assert!(!hits.as_array().unwrap().is_empty(), "{hits:#}");
    let edit = a.json(&["star", &gid]);
    assert_eq!(edit.as_array().unwrap().len(), 1);
    assert_eq!(a.json(&["conflicts"]), json!([]));
    let status = a.json(&["status"]);
    assert_eq!(status["origin"], a.origin.as_str());
    assert_eq!(status["unpublished_events"], 1);
    let report = a.sync_ok(&shared);
    assert_eq!(report["events_published"], 1, "{report:#}");
    assert_eq!(a.json(&["status"])["unpublished_events"], 0);
    a.verify_ok(None);
    a.verify_ok(Some(&shared));
    a.json(&["gc", shared.to_str().unwrap(), "--dry-run"]);

    // Unknown sessions: exit 1, and the message names the id.
    for args in [
        &["show", "no-such-session"][..],
        &["rename", "no-such-session", "x"],
        &["star", &gid, "no-such-session"],
    ] {
        let run = a.run(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("no-such-session"),
            "{args:?}: the error does not name the id: {}",
            run.stderr
        );
    }
    // The valid id before the typo was not starred a second time: nothing to publish.
    assert_eq!(a.json(&["status"])["unpublished_events"], 0);

    // A global option after the tag changes is refused, not recorded as a tag "-json".
    let run = a.run(&["tag", &gid, "+x", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--json"), "{}", run.stderr);
    assert_eq!(a.json(&["status"])["unpublished_events"], 0);
    let tagged = a.json(&["tag", &gid, "+x", "-x"]);
    assert_eq!(tagged.as_array().unwrap().len(), 2);
    assert_eq!(a.session(&gid).unwrap()["tags"], json!([]));
    let report = a.sync_ok(&shared);
    assert_eq!(report["events_published"], 2, "{report:#}");

    // Purge without --yes: a usage error (exit 2), nothing changes, nothing is published.
    let before = sessions_of(&a);
    let run = a.run(&["purge", &gid]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(sessions_of(&a), before);
    assert_eq!(a.json(&["status"])["unpublished_events"], 0);
    let report = a.sync_ok(&shared);
    assert_eq!(report["events_published"], 0, "{report:#}");
    assert_eq!(sessions_of(&a), before);

    // And with --yes the session is gone, here and after a sync, and not re-ingested.
    a.json(&["purge", &gid, "--yes"]);
    assert_eq!(a.session_ids(), Vec::<String>::new());
    a.sync_ok(&shared);
    let ingest = a.json(&["ingest", a.projects().to_str().unwrap()]);
    assert_eq!(ingest["sessions_changed"], 0, "{ingest:#}");
    assert_eq!(a.session_ids(), Vec::<String>::new());
    let b = Machine::new(&scratch.path, "b");
    b.sync_ok(&shared);
    assert_eq!(b.session_ids(), Vec::<String>::new());
    let run = b.run(&["show", &gid]);
    assert_eq!(run.code, 1);
}

/// The daily GC's schedule starts at a machine's first sync, which has just written every key
/// a GC would list (and a first GC only records what it saw): that sync runs none, a sync once
/// the interval has passed does. `every = "0s"` collects after every sync, the first included.
#[test]
fn the_scheduled_gc_starts_counting_at_the_first_sync() {
    let scratch = Scratch::new("gc-schedule");
    let shared = shared_folder(&scratch.path);
    let machine = |name: &str, every: &str| {
        let m = Machine::new(&scratch.path, name);
        fs::write(
            m.data.join("config.toml"),
            format!("[gc]\nevery = \"{every}\"\n"),
        )
        .unwrap();
        ClaudeLog::write(
            &m.projects(),
            "api",
            "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
            0,
            3,
        );
        m.ingest();
        m
    };
    let a = machine("a", "1s");
    let first = a.sync_ok(&shared);
    assert!(first.get("gc").is_none(), "{first:#}");
    let soon = a.sync_ok(&shared);
    assert!(soon.get("gc").is_none(), "within the interval: {soon:#}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let later = a.sync_ok(&shared);
    let stores: Vec<&str> = later["gc"]
        .as_array()
        .unwrap_or_else(|| panic!("no gc once the interval passed: {later:#}"))
        .iter()
        .map(|r| r["store"].as_str().unwrap())
        .collect();
    assert_eq!(stores, ["mirror", shared.to_str().unwrap()]);

    let b = machine("b", "0s");
    let first = b.sync_ok(&shared);
    assert!(first["gc"].is_array(), "every sync: {first:#}");
}

/// Issue 17 item 7: a peer's GC finds the copies in its mirror that the other origin's newest
/// root no longer references (the superseded root, bucket, manifest and tail segment after an
/// append) and, being a first observation, only records them; nothing the newest root reaches
/// is among them, and the shared folder is not touched.
#[test]
fn gc_finds_superseded_copies_of_another_origin_in_the_mirror() {
    let scratch = Scratch::new("gc-foreign");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let mut log = ClaudeLog::write(
        &a.projects(),
        "api",
        "2e0b4f6a-8c3d-4e5f-9a7b-9c0d1e2f3a4b",
        3600,
        300,
    );
    a.ingest();
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    log.append(1);
    a.ingest();
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    let shared_before = files_under(&shared);
    let gc = b.json(&["gc", shared.to_str().unwrap()]);
    let copies = gc
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["origin"] == a.origin.as_str())
        .unwrap_or_else(|| panic!("no plan for a's copies: {gc:#}"));
    assert_eq!(
        copies["delete"],
        json!([]),
        "a first observation deletes nothing"
    );
    let waiting: Vec<&str> = copies["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let kinds: std::collections::BTreeSet<&str> = waiting
        .iter()
        .map(|k| {
            if k.starts_with("roots/") {
                "root"
            } else {
                k.split('/').nth(1).unwrap()
            }
        })
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["buckets", "manifests", "root", "segments"],
        "{waiting:?}"
    );
    // What b's newest copy of a references is not among them: b still imports from scratch.
    for key in &waiting {
        assert!(b.mirror().join(key).exists(), "{key} still there");
    }
    assert_eq!(
        files_under(&shared),
        shared_before,
        "gc of copies never touches the target"
    );
    let c = Machine::new(&scratch.path, "c");
    c.sync_ok(&shared);
    assert_converged(&[&a, &b, &c]);
}

/// Issue 19 item 3: archived messages outlive their logs. A log truncated, then deleted, keeps
/// its session whole on every machine; a log replaced in place (same inode) by other content
/// becomes a session of its own, linked to the old one, never mixed into it; what is then
/// appended to the replaced file goes to the new session.
#[test]
fn issue19_item3_archived_messages_outlive_their_logs() {
    let scratch = Scratch::new("outlive");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let mut log = ClaudeLog::write(
        &a.projects(),
        "tally",
        "3a4b5c6d-0000-4000-8000-000000000001",
        0,
        6,
    );
    let gid = log.gid(&a.origin);
    let count = |m: &Machine, id: &str| m.session(id).map(|s| s["message_count"].clone());
    let contents = |m: &Machine, id: &str| -> Vec<String> {
        m.json(&["show", id])["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    a.ingest();
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    let original = contents(&a, &gid);
    assert_eq!(original.len(), 6);

    // Truncated to its first three records.
    let text = fs::read_to_string(&log.path).unwrap();
    let first3: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log.path)
        .unwrap()
        .write_all(first3.as_bytes())
        .unwrap();
    a.ingest();
    settle(&[&a, &b], &shared, 4);
    for m in [&a, &b] {
        assert_eq!(
            contents(m, &gid),
            original,
            "{}: a shrunk log keeps the session",
            m.name
        );
    }

    // Deleted.
    fs::remove_file(&log.path).unwrap();
    a.ingest();
    settle(&[&a, &b], &shared, 4);
    for m in [&a, &b] {
        assert_eq!(
            count(m, &gid),
            Some(json!(6)),
            "{}: a deleted log too",
            m.name
        );
    }

    // Replaced in place by other content (same path, same inode).
    ClaudeLog::write(
        &a.projects(),
        "tally",
        "3a4b5c6d-0000-4000-8000-000000000001",
        0,
        1,
    );
    a.ingest();
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log.path).unwrap());
    let other_dir = scratch.join("other");
    let other = ClaudeLog::write(
        &other_dir,
        "ledger",
        "3a4b5c6d-0000-4000-8000-000000000001",
        500,
        4,
    );
    let replacement = fs::read(&other.path).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log.path)
        .unwrap()
        .write_all(&replacement)
        .unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log.path).unwrap()),
        inode
    );
    a.ingest();
    settle(&[&a, &b], &shared, 4);
    let rewrite = format!("{gid}.rewrite-1");
    for m in [&a, &b] {
        assert_eq!(contents(m, &gid), original, "{}: never mixed", m.name);
        let new = contents(m, &rewrite);
        assert_eq!(
            new.len(),
            4,
            "{}: the new content is its own session",
            m.name
        );
        assert!(new[0].contains("ledger"), "{new:?}");
        let record = &m.json(&["show", &rewrite])["session"];
        assert_eq!(record["relationship"], "rewrite", "{record}");
    }

    // Appending to the replaced file goes on in the new session.
    log.messages = 4;
    log.project = "ledger".into();
    log.start_secs = 500;
    log.append(2);
    a.ingest();
    settle(&[&a, &b], &shared, 4);
    for m in [&a, &b] {
        assert_eq!(count(m, &rewrite), Some(json!(6)), "{}", m.name);
        assert_eq!(contents(m, &gid), original, "{}", m.name);
    }
    assert_converged(&[&a, &b]);
}

/// Issue 11: a tool result that arrives after the user typed the next prompt (an interrupted
/// turn, a parallel subagent finishing later) is never dropped: it is paired with its call by
/// id whenever it comes, also when the call's message was already stored and published, and
/// the other machine gets the amended message.
#[test]
fn a_late_tool_result_reaches_its_call_on_every_machine() {
    let scratch = Scratch::new("late-result");
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let sid = "5c6d7e8f-0000-4000-8000-000000000001";
    let dir = a.projects().join("-home-dev-late");
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join(format!("{sid}.jsonl"));
    let record = |uuid: &str, parent: &str, t: u32, body: serde_json::Value| {
        let mut r = json!({"sessionId": sid, "uuid": uuid, "parentUuid": parent, "cwd": "/home/dev/late",
            "timestamp": format!("2026-11-30T10:00:{t:02}.000Z"), "version": "2.1.205"});
        for (k, v) in body.as_object().unwrap() {
            r[k] = v.clone();
        }
        format!("{r}\n")
    };
    let first_part = [
        record(
            "u1",
            "",
            0,
            json!({"type": "user", "message": {"role": "user", "content": "run both checks"}}),
        ),
        record(
            "u2",
            "u1",
            1,
            json!({"type": "assistant", "message": {"role": "assistant", "model": "m", "content": [
            {"type": "tool_use", "id": "toolu_a", "name": "Bash", "input": {"command": "check a"}},
            {"type": "tool_use", "id": "toolu_b", "name": "Bash", "input": {"command": "check b"}}]}}),
        ),
        record(
            "u3",
            "u2",
            2,
            json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "a passed"}]}}),
        ),
        record(
            "u4",
            "u3",
            3,
            json!({"type": "user", "message": {"role": "user", "content": "stop, look at this instead"}}),
        ),
        record(
            "u5",
            "u4",
            4,
            json!({"type": "assistant", "message": {"role": "assistant", "model": "m", "content": [
            {"type": "text", "text": "looking"}]}}),
        ),
    ];
    fs::write(&log, first_part.concat()).unwrap();
    a.ingest();
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    let gid = format!("{}~{sid}", a.origin);
    let results = |m: &Machine| -> Vec<String> {
        m.json(&["show", &gid])["messages"][1]["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["result"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(results(&b), ["a passed", ""], "b's result has not come yet");

    let late = record(
        "u6",
        "u5",
        5,
        json!({"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "b failed: timeout"}]}}),
    );
    let more = record(
        "u7",
        "u6",
        6,
        json!({"type": "assistant", "message": {"role": "assistant", "model": "m", "content": [
        {"type": "text", "text": "b timed out"}]}}),
    );
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(format!("{late}{more}").as_bytes()).unwrap();
    a.ingest();
    settle(&[&a, &b], &shared, 4);
    for m in [&a, &b] {
        assert_eq!(results(m), ["a passed", "b failed: timeout"], "{}", m.name);
        assert_eq!(m.session(&gid).unwrap()["message_count"], 5, "{}", m.name);
    }
    let hits = b.json(&["search", "timeout"]);
    assert_eq!(hits[0]["in"], "tool", "{hits}");
    assert_converged(&[&a, &b]);
}

/// Issue 11: a log rewritten in place at the same size (a letter changed in its middle, where
/// the resume fingerprint does not look; no append does that) is read again from the start, and
/// its changed content becomes a session of its own; a log only touched changes nothing.
#[test]
fn a_log_rewritten_in_place_at_the_same_size_is_read_again() {
    let scratch = Scratch::new("same-size");
    let a = Machine::new(&scratch.path, "a");
    let log = ClaudeLog::write(
        &a.projects(),
        "tally",
        "5e6f7a8b-0000-4000-8000-000000000001",
        0,
        40,
    );
    let gid = log.gid(&a.origin);
    a.ingest();
    assert!(
        fs::metadata(&log.path).unwrap().len() > 3 * 4096,
        "longer than the fingerprint"
    );
    let set_mtime = |secs_ago: u64| {
        let file = fs::File::options().write(true).open(&log.path).unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago);
        file.set_modified(when).unwrap();
    };
    set_mtime(30);
    let touched = a.ingest();
    assert_eq!(touched["unchanged"], 0, "read again: {touched:#}");
    assert_eq!(touched["sessions_changed"], 0, "{touched:#}");

    let text = fs::read_to_string(&log.path).unwrap();
    let changed = text.replacen("question 20 about", "Question 20 about", 1);
    assert_ne!(changed, text);
    assert_eq!(changed.len(), text.len());
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log.path).unwrap());
    fs::OpenOptions::new()
        .write(true)
        .open(&log.path)
        .unwrap()
        .write_all(changed.as_bytes())
        .unwrap();
    set_mtime(10);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&log.path).unwrap()),
        inode
    );
    let out = a.ingest();
    assert_eq!(out["sessions_changed"], 1, "{out:#}");
    let rewrite = a.json(&["show", &format!("{gid}.rewrite-1")]);
    let contents: Vec<&str> = rewrite["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        contents.iter().any(|c| c.starts_with("Question 20")),
        "{contents:?}"
    );
    let original = a.json(&["show", &gid]);
    assert!(
        original["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| !m["content"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Question")),
        "the archived session keeps what it had"
    );
}
