//! Two machines writing as one origin (a copied data folder): both sign checkpoints with the
//! same numbers, each without the other's sessions. Every machine that sees both names the
//! problem, and `gc` stops collecting that origin, which would otherwise delete what the other
//! writer published (issue 15, bad-input table: duplicate root sequence numbers).

mod common;

use std::path::Path;

use common::{ClaudeLog, Machine, Rng, Scratch, shared_folder};
use serde_json::Value;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn duplicates(report: &Value, origin: &str) -> Vec<String> {
    report["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["class"] == "DuplicateSequence")
        .map(|p| p["key"].as_str().unwrap().to_owned())
        .inspect(|key| assert!(key.starts_with(&format!("roots/{origin}/")), "{key}"))
        .collect()
}

#[test]
fn a_copied_data_folder_is_named_everywhere_and_gc_stops_collecting_it() {
    // Which of the two checkpoints sorts first depends on their content: several histories
    // cover both (the original's root below or above the copy's).
    let mut orders = std::collections::BTreeSet::new();
    for seed in 1..=6 {
        orders.insert(copied_folder_case(seed));
    }
    assert_eq!(orders.len(), 2, "both orders of the twin roots were tried");
}

/// Returns whether the original's checkpoint 2 sorts above the copy's.
fn copied_folder_case(seed: u64) -> bool {
    let mut rng = Rng::new(seed);
    let scratch = Scratch::new(&format!("cloned-{seed}"));
    let shared = shared_folder(&scratch.path);
    let a = Machine::new(&scratch.path, "a");
    ClaudeLog::write(&a.projects(), "app", &rng.uuid(), 0, 4);
    a.ingest();
    a.sync_ok(&shared);

    // The copy: same origin, same key, its own logs from now on.
    let clone = Machine {
        name: "clone".into(),
        origin: a.origin.clone(),
        data: scratch.path.join("clone").join("data"),
        home: scratch.path.join("clone").join("home"),
        env: Vec::new(),
    };
    copy_dir(&a.data, &clone.data);
    ClaudeLog::write(&clone.projects(), "app", &rng.uuid(), 600, 3);
    clone.ingest();
    clone.sync_ok(&shared);
    // Meanwhile, offline, the original publishes its own checkpoint 2.
    ClaudeLog::write(&a.projects(), "app", &rng.uuid(), 900, 5);
    a.ingest();
    a.sync_alone_ok();

    let (code, report) = a.sync(&shared);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(duplicates(&report, &a.origin).len(), 1, "{report:#}");

    // A reader names it once both checkpoints 2 are in the store: the original relays its
    // own only when it sorts above the copy's (the newest root decides what is relayed).
    let twins_shared = std::fs::read_dir(shared.join("roots").join(&a.origin))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("00000000000000000002-")
        })
        .count();
    let b = Machine::new(&scratch.path, "b");
    let (code, report) = b.sync(&shared);
    if twins_shared == 2 {
        assert_eq!(code, 3, "{report:#}");
        assert_eq!(duplicates(&report, &a.origin).len(), 1, "{report:#}");
        let reason = report["quarantined"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("copied data folder"), "{reason}");
        let status = b.json(&["status"]);
        assert!(
            status["quarantined"]
                .to_string()
                .contains("DuplicateSequence")
        );
    } else {
        assert_eq!(duplicates(&report, &a.origin), Vec::<String>::new());
    }

    let gc = a
        .run(&["gc", shared.to_str().unwrap(), "--grace", "1ms"])
        .expect(0);
    assert!(
        gc.stdout.contains(&format!(
            "{}: not collected: two machines write as it",
            a.origin
        )),
        "{}",
        gc.stdout
    );
    let own_root = |m: &Machine| {
        m.json(&["status"])["origins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["origin"] == m.origin.as_str())
            .unwrap()["newest_checkpoint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    own_root(&a) > own_root(&clone)
}
