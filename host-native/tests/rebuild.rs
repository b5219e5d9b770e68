//! `agentsync rebuild` (issue 15): an archive database that is gone or damaged is made again
//! from the local store and from what the old database still holds, with the same sessions,
//! curation and conflicts, under the same origin, and the machine goes on syncing as before.

mod common;

use std::fs;
use std::path::Path;

use common::{ClaudeLog, Machine, Rng, Scratch, shared_folder};
use serde_json::Value;

/// `a` (three sessions) and `b` (two), synced, with a star, a tag, and a rename both machines
/// made concurrently (a conflict on both).
fn two_machines(scratch: &Scratch, shared: &Path) -> (Machine, Machine, Vec<ClaudeLog>) {
    let mut rng = Rng::new(15);
    let a = Machine::new(&scratch.path, "a");
    let b = Machine::new(&scratch.path, "b");
    let logs: Vec<ClaudeLog> = (0..3)
        .map(|i| ClaudeLog::write(&a.projects(), "app", &rng.uuid(), i * 600, rng.range(3, 9)))
        .collect();
    for i in 0..2 {
        ClaudeLog::write(&b.projects(), "lib", &rng.uuid(), i * 900, rng.range(3, 9));
    }
    a.ingest();
    b.ingest();
    a.sync_ok(shared);
    b.sync_ok(shared);
    a.sync_ok(shared);
    let s0 = logs[0].gid(&a.origin);
    let s1 = logs[1].gid(&a.origin);
    a.json(&["star", &s0]);
    a.json(&["tag", &logs[2].gid(&a.origin), "+release"]);
    a.json(&["rename", &s1, "named on a"]);
    b.json(&["rename", &s1, "named on b"]);
    a.sync_ok(shared);
    b.sync_ok(shared);
    a.sync_ok(shared);
    assert_eq!(a.conflicts().as_array().unwrap().len(), 1);
    (a, b, logs)
}

fn remove_database(machine: &Machine) {
    for name in ["archive.db", "archive.db-wal", "archive.db-shm"] {
        let _ = fs::remove_file(machine.data.join(name));
    }
}

/// Overwrites the root pages of the sessions and messages tables with garbage: what a bad
/// disk sector or a torn copy does. The sync-state tables stay readable.
fn damage_derived_tables(machine: &Machine) {
    let path = machine.data.join("archive.db");
    let (page_size, roots) = {
        let db = rusqlite::Connection::open(&path).unwrap();
        let page_size: u64 = db.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let roots: Vec<u64> = ["sessions", "messages"]
            .iter()
            .map(|t| {
                db.query_row(
                    "SELECT rootpage FROM sqlite_master WHERE name = ?1",
                    [t],
                    |r| r.get(0),
                )
                .unwrap()
            })
            .collect();
        (page_size, roots)
    };
    let mut bytes = fs::read(&path).unwrap();
    for root in roots {
        let start = ((root - 1) * page_size) as usize;
        for byte in &mut bytes[start..start + page_size as usize] {
            *byte = 0xDE;
        }
    }
    fs::write(&path, bytes).unwrap();
}

fn rebuild(machine: &Machine) -> Value {
    machine.json(&["rebuild"])
}

#[test]
fn a_deleted_database_comes_back_from_the_store_under_the_same_origin() {
    let scratch = Scratch::new("rebuild-deleted");
    let shared = shared_folder(&scratch.path);
    let (a, b, logs) = two_machines(&scratch, &shared);
    // The agent deleted this log: the session now lives only in the archive and the store.
    fs::remove_file(&logs[2].path).unwrap();
    let before = a.snapshot();
    let b_before = b.snapshot();

    remove_database(&a);
    let refused = a.run(&["sessions"]).expect(1);
    assert!(
        refused.stderr.contains("missing") && refused.stderr.contains("agentsync rebuild"),
        "{}",
        refused.stderr
    );
    assert!(
        !a.data.join("archive.db").exists(),
        "no empty archive was made"
    );

    let report = rebuild(&a);
    assert_eq!(report["origin"], a.origin.as_str());
    assert_eq!(report["identity_from"], "recovery copy");
    assert_eq!(report["own_sessions"], 3);
    assert_eq!(report["other_sessions"], 2);
    assert_eq!(report["conflicts"], 1);
    assert!(report.get("kept_aside").is_none());
    assert_eq!(
        a.snapshot(),
        before,
        "sessions, curation and conflicts come back"
    );

    // The machine goes on as itself: its logs are read again (nothing new in them), the
    // session whose log is gone stays, and the other machine sees no new origin.
    let synced = a
        .run(&["sync", shared.to_str().unwrap(), "--json"])
        .expect(0)
        .json();
    assert_eq!(synced["ingest"]["sessions_changed"], 0, "{synced:#}");
    assert_eq!(a.snapshot(), before);
    b.sync_ok(&shared);
    assert_eq!(b.snapshot(), b_before);
    a.verify_ok(None);
}

#[test]
fn a_damaged_database_is_rebuilt_keeping_unpublished_edits_and_sync_progress() {
    let scratch = Scratch::new("rebuild-damaged");
    let shared = shared_folder(&scratch.path);
    let (a, b, logs) = two_machines(&scratch, &shared);
    let s1 = logs[1].gid(&a.origin);
    // An edit the store has not seen yet: only the old database holds it.
    a.json(&["star", &s1]);
    let before = a.snapshot();
    damage_derived_tables(&a);

    let verify = a.run(&["verify"]).expect(3);
    assert!(
        verify.stdout.contains("agentsync rebuild"),
        "{}",
        verify.stdout
    );
    let listed = a.run(&["sessions"]).expect(1);
    assert!(
        listed.stderr.contains("agentsync rebuild"),
        "{}",
        listed.stderr
    );

    // Partial (exit 3): the damaged tables' sessions could not be read for anything the
    // store lacks, and it says so; here the store holds them all.
    let report = a.run(&["--json", "rebuild"]).expect(3).json();
    assert!(report["kept_from_old"]["lost"].is_string(), "{report:#}");
    assert_eq!(report["kept_from_old"]["sessions"], 0, "{report:#}");
    assert_eq!(report["identity_from"], "database");
    for table in report["salvaged"].as_array().unwrap() {
        assert!(table.get("lost").is_none(), "{table}");
    }
    let aside = report["kept_aside"].as_str().unwrap();
    assert!(
        Path::new(aside).exists(),
        "the damaged file is kept: {aside}"
    );
    assert_eq!(a.snapshot(), before);
    a.verify_ok(None);

    // Export progress survived: the next sync publishes the star and nothing else.
    let synced = a.sync_ok(&shared);
    assert_eq!(synced["events_published"], 1, "{synced:#}");
    assert_eq!(
        synced["exported"], 2,
        "one edit batch and one root: {synced:#}"
    );
    b.sync_ok(&shared);
    assert_eq!(b.session(&s1).unwrap()["starred"], true);
    let again = a.sync_ok(&shared);
    assert_eq!(again["exported"], 0, "{again:#}");
}

#[test]
fn without_an_identity_nothing_is_changed() {
    let scratch = Scratch::new("rebuild-no-identity");
    let shared = shared_folder(&scratch.path);
    let (a, _b, _logs) = two_machines(&scratch, &shared);
    remove_database(&a);
    fs::remove_file(a.data.join("identity.json")).unwrap();
    let run = a.run(&["rebuild"]).expect(1);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert!(!a.data.join("archive.db").exists());
    assert!(!a.data.join("archive.rebuild.db").exists());
    assert!(
        a.mirror().join(&a.origin).is_dir(),
        "the store is untouched"
    );
}

#[test]
fn a_rebuild_stopped_anywhere_is_finished_by_the_next_one() {
    for point in agentsync::crash_point::REBUILD_POINTS {
        let scratch = Scratch::new(&format!("rebuild-stopped-{point}"));
        let shared = shared_folder(&scratch.path);
        let (a, _b, logs) = two_machines(&scratch, &shared);
        a.json(&["star", &logs[1].gid(&a.origin)]);
        let before = a.snapshot();
        let stopped = a
            .command(&["rebuild"])
            .env("AGENTSYNC_CRASH_AT", format!("{point}:1"))
            .output()
            .unwrap();
        assert_eq!(
            stopped.status.code(),
            None,
            "{point}: the rebuild was aborted"
        );
        // Whatever the step, the next command either works or names `rebuild`.
        let listed = a.run(&["sessions"]);
        if listed.code != 0 {
            assert!(
                listed.stderr.contains("agentsync rebuild"),
                "{}",
                listed.stderr
            );
        }
        let finished = rebuild(&a);
        assert_eq!(
            finished["finished_interrupted"], true,
            "{point}: {finished:#}"
        );
        assert_eq!(a.snapshot(), before, "{point}");
        let files: Vec<String> = fs::read_dir(&a.data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !files.iter().any(|f| f.starts_with("archive.rebuil")),
            "{point}: {files:?}"
        );
        // The old database went aside whole: one name, never a WAL without its database.
        let aside: Vec<&String> = files.iter().filter(|f| f.contains("damaged")).collect();
        assert!(
            aside.iter().any(|f| f.ends_with(".db")),
            "{point}: {files:?}"
        );
        let stems: std::collections::BTreeSet<&str> = aside
            .iter()
            .map(|f| f.trim_end_matches("-wal").trim_end_matches("-shm"))
            .collect();
        assert_eq!(stems.len(), 1, "{point}: {files:?}");
        // The unpublished star goes out with the next sync.
        let synced = a.sync_ok(&shared);
        assert_eq!(synced["events_published"], 1, "{point}: {synced:#}");
    }
}

#[test]
fn sessions_the_store_does_not_hold_are_kept_from_the_old_database() {
    let scratch = Scratch::new("rebuild-unpublished");
    let shared = shared_folder(&scratch.path);
    let (a, b, _logs) = two_machines(&scratch, &shared);
    // Ingested, never synced, and then its log is gone: only the database holds it.
    let mut rng = Rng::new(99);
    let log = ClaudeLog::write(&a.projects(), "app", &rng.uuid(), 7200, 6);
    a.ingest();
    fs::remove_file(&log.path).unwrap();
    let before = a.snapshot();

    let report = rebuild(&a);
    assert_eq!(report["kept_from_old"]["sessions"], 1, "{report:#}");
    assert_eq!(report["kept_from_old"]["messages"], 6, "{report:#}");
    assert_eq!(a.snapshot(), before);
    // Export publishes it (its revision is above every marker the export state holds).
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    assert!(b.session(&log.gid(&a.origin)).is_some());
}

#[test]
fn a_state_row_that_no_longer_decodes_is_dropped_and_the_rest_rebuilt() {
    let scratch = Scratch::new("rebuild-bad-row");
    let shared = shared_folder(&scratch.path);
    let (a, b, _logs) = two_machines(&scratch, &shared);
    let before = a.snapshot();
    {
        let db = rusqlite::Connection::open(a.data.join("archive.db")).unwrap();
        db.execute(
            "UPDATE sync_state SET json = '{\"origins\": 7' WHERE name = 'import'",
            [],
        )
        .unwrap();
    }
    let run = a.run(&["--json", "rebuild"]).expect(3);
    let report = run.json();
    let sync_state = report["salvaged"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "sync_state")
        .unwrap();
    assert!(
        sync_state["lost"]
            .as_str()
            .unwrap()
            .contains("state import"),
        "{report:#}"
    );
    assert_eq!(a.snapshot(), before);
    a.sync_ok(&shared);
    b.sync_ok(&shared);
    assert_eq!(a.snapshot()["sessions"], b.snapshot()["sessions"]);
}
