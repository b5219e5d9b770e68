//! Corrupt artifacts in the shared folder: a peer quarantines only what depends on the bad
//! copy, imports everything else, and recovers once a good copy arrives; the origin heals its
//! own corrupt copies.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{ClaudeLog, Machine, Rng, Scratch, assert_converged, flip_bytes, shared_folder};
use serde_json::{Value, json};

/// Machine `a` with four sessions, synced to the shared folder.
fn origin_with_sessions(scratch: &Scratch, shared: &Path, seed: u64) -> (Machine, Vec<ClaudeLog>) {
    let mut rng = Rng::new(seed);
    let a = Machine::new(&scratch.path, "a");
    let logs: Vec<ClaudeLog> = (0..4)
        .map(|i| {
            ClaudeLog::write(
                &a.projects(),
                "data",
                &rng.uuid(),
                i * 3600,
                rng.range(2, 12),
            )
        })
        .collect();
    a.ingest();
    a.json(&["star", &logs[0].gid(&a.origin)]);
    a.sync_ok(shared);
    (a, logs)
}

/// The files of `a`'s artifacts of one kind in a store (`segments`, `manifests`).
fn artifacts(store: &Path, origin: &str, kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(store.join(origin).join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn key_of(store: &Path, file: &Path) -> String {
    file.strip_prefix(store)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

fn problem_keys(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect()
}

fn quarantine_then_recover(kind: &str, seed: u64) {
    let scratch = Scratch::new(&format!("quarantine-{kind}"));
    let shared = shared_folder(&scratch.path);
    let (a, logs) = origin_with_sessions(&scratch, &shared, seed);
    let files = artifacts(&shared, &a.origin, kind);
    assert_eq!(files.len(), logs.len(), "one {kind} file per session");
    let victim = &files[1];
    let key = key_of(&shared, victim);
    let good = fs::read(a.mirror().join(&key)).unwrap();
    assert_eq!(fs::read(victim).unwrap(), good);
    flip_bytes(victim);

    let b = Machine::new(&scratch.path, "b");
    let (code, report) = b.sync(&shared);
    assert_eq!(
        code, 3,
        "a corrupt {kind} makes the sync partial: {report:#}"
    );
    let quarantined = problem_keys(&report["quarantined"]);
    assert!(
        quarantined.contains(&key.as_str()),
        "{key} not quarantined: {report:#}"
    );
    for q in &quarantined {
        assert!(
            q.starts_with(&format!("{}/", a.origin)),
            "only a's {kind} is bad: {report:#}"
        );
    }
    // Every other session arrived, whole.
    let on_a = a.sessions();
    let on_b = b.sessions();
    let on_b = on_b.as_array().unwrap();
    assert_eq!(
        on_b.len(),
        logs.len() - 1,
        "all sessions but the damaged one are imported: {report:#}"
    );
    for s in on_b {
        let same = on_a
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == s["id"])
            .unwrap();
        assert_eq!(s, same);
    }
    assert_eq!(report["imported_sessions"], logs.len() as u64 - 1);
    let status = b.json(&["status"]);
    assert!(problem_keys(&status["quarantined"]).contains(&key.as_str()));
    // Nothing changes on a retry while the copy stays bad.
    let (code, again) = b.sync(&shared);
    assert_eq!(code, 3, "{again:#}");
    assert_eq!(b.sessions().as_array().unwrap().len(), logs.len() - 1);

    // A good copy arrives.
    fs::write(victim, &good).unwrap();
    let report = b.sync_ok(&shared);
    assert_eq!(report["imported_sessions"], 1, "{report:#}");
    assert_eq!(report["quarantined"], json!([]));
    assert_eq!(report["deferred"], json!([]));
    let status = b.json(&["status"]);
    assert_eq!(status["quarantined"], json!([]), "{status:#}");
    assert_eq!(status["deferred"], json!([]), "{status:#}");
    assert_converged(&[&a, &b]);
    b.verify_ok(None);
    b.verify_ok(Some(&shared));
}

#[test]
fn a_corrupt_segment_is_quarantined_alone_and_recovered() {
    quarantine_then_recover("segments", 11);
}

#[test]
fn a_corrupt_manifest_is_quarantined_alone_and_recovered() {
    quarantine_then_recover("manifests", 12);
}

/// The origin's next sync, with nothing new to publish, replaces a corrupt copy of its root
/// (roots come with the one listing every sync makes); its other keys are checked on the
/// `heal.every` schedule, or now with `sync --heal`, which replaces them too.
#[test]
fn the_origin_heals_its_corrupt_copies() {
    let scratch = Scratch::new("heal");
    let shared = shared_folder(&scratch.path);
    let (a, logs) = origin_with_sessions(&scratch, &shared, 13);
    let mut victims = vec![
        artifacts(&shared, &a.origin, "segments")[2].clone(),
        artifacts(&shared, &a.origin, "manifests")[0].clone(),
    ];
    victims.extend(artifacts(&shared, &a.origin, "buckets").into_iter().take(1));
    let roots = shared.join("roots");
    victims.extend(artifacts(&roots, &a.origin, "").into_iter().last());
    let mut good = Vec::new();
    for v in &victims {
        let key = key_of(&shared, v);
        good.push(fs::read(a.mirror().join(&key)).unwrap());
        flip_bytes(v);
    }
    let run = a.run(&["--json", "verify", shared.to_str().unwrap()]);
    assert_eq!(run.code, 3, "verify sees the damage: {}", run.stdout);

    let report = a.sync_ok(&shared);
    assert_eq!(report["exported"], 0, "nothing new: {report:#}");
    assert_eq!(report["sent"], 1, "the root only: {report:#}");
    let (root, root_good) = (victims.last().unwrap(), good.last().unwrap());
    assert_eq!(&fs::read(root).unwrap(), root_good, "the root is healed");
    assert_ne!(
        &fs::read(&victims[0]).unwrap(),
        &good[0],
        "data waits for its schedule"
    );

    let report = a.sync_heal_ok(&shared);
    assert_eq!(report["sent"], victims.len() - 1, "{report:#}");
    a.verify_ok(Some(&shared));
    for (v, good) in victims.iter().zip(&good) {
        assert_eq!(&fs::read(v).unwrap(), good, "{} not healed", v.display());
    }

    // And a new peer gets everything.
    let b = Machine::new(&scratch.path, "b");
    let report = b.sync_ok(&shared);
    assert_eq!(report["imported_sessions"], logs.len() as u64, "{report:#}");
    assert_converged(&[&a, &b]);
}

/// A peer that has the old version of a session keeps it while the update's new segment is
/// corrupt (and still gets the origin's other news); the origin's next sync heals the copy and
/// the peer catches up.
#[test]
fn a_corrupt_update_waits_for_the_origin_to_heal_it() {
    let scratch = Scratch::new("update");
    let shared = shared_folder(&scratch.path);
    let (a, mut logs) = origin_with_sessions(&scratch, &shared, 14);
    let b = Machine::new(&scratch.path, "b");
    b.sync_ok(&shared);
    let old_count = logs[0].messages;
    let before = artifacts(&shared, &a.origin, "segments");

    logs[0].append(3);
    logs.push(ClaudeLog::write(
        &a.projects(),
        "data",
        "3f1c5a7b-9d2e-4f6a-8b8c-0d1e2f3a4b5c",
        20 * 3600,
        5,
    ));
    a.ingest();
    a.sync_ok(&shared);
    let new: Vec<PathBuf> = artifacts(&shared, &a.origin, "segments")
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert_eq!(new.len(), 2, "{new:#?}");
    let victim = new
        .iter()
        .find(|f| {
            let segment = a.json(&["inspect", f.to_str().unwrap()]);
            segment["messages"][0]["source_uuid"]
                .as_str()
                .unwrap()
                .starts_with(&logs[0].session[..24])
        })
        .expect("the appended session's new segment")
        .clone();
    let key = key_of(&shared, &victim);
    flip_bytes(&victim);

    let (code, report) = b.sync(&shared);
    assert_eq!(code, 3, "{report:#}");
    assert!(problem_keys(&report["quarantined"]).contains(&key.as_str()));
    let count = |m: &Machine, log: &ClaudeLog| {
        m.session(&log.gid(&a.origin)).unwrap()["message_count"].clone()
    };
    assert_eq!(count(&b, &logs[0]), old_count, "the old version stays");
    assert_eq!(
        count(&b, &logs[4]),
        5,
        "the new session arrives: {report:#}"
    );

    let report = a.sync_heal_ok(&shared);
    assert_eq!(report["exported"], 0, "{report:#}");
    a.verify_ok(Some(&shared));
    let report = b.sync_ok(&shared);
    assert_eq!(report["imported_sessions"], 1, "{report:#}");
    assert_eq!(count(&b, &logs[0]), old_count + 3);
    assert_eq!(b.json(&["status"])["quarantined"], json!([]));
    assert_converged(&[&a, &b]);
    b.verify_ok(None);
}

/// Issue 17 item 1, on the real binary: a forged greatest root for `a` in the shared folder
/// shadows nothing. `b` imports `a`'s real sessions, `status` names the forged key, and `a`'s
/// next root continues its own sequence (not u64::MAX + 1).
#[test]
fn a_forged_greatest_root_is_passed_over_and_named_in_status() {
    let scratch = Scratch::new("forged-root");
    let shared = shared_folder(&scratch.path);
    let (a, mut logs) = origin_with_sessions(&scratch, &shared, 17);
    let forged_key = format!("roots/{}/{}-{}.root", a.origin, u64::MAX, "ab".repeat(32));
    let forged = shared.join(&forged_key);
    fs::create_dir_all(forged.parent().unwrap()).unwrap();
    fs::write(&forged, b"not a root").unwrap();

    let b = Machine::new(&scratch.path, "b");
    let (code, report) = b.sync(&shared);
    assert_eq!(code, 3, "the forged root is reported: {report:#}");
    assert_eq!(report["imported_sessions"], logs.len(), "{report:#}");
    assert!(
        problem_keys(&report["quarantined"]).contains(&forged_key.as_str()),
        "{report:#}"
    );
    let status = b.json(&["status"]);
    assert!(
        problem_keys(&status["quarantined"]).contains(&forged_key.as_str()),
        "status names the forged key: {status:#}"
    );

    // `a` keeps its own sequence: its next root is its second.
    logs[1].append(2);
    a.ingest();
    a.sync(&shared);
    let roots: Vec<String> = fs::read_dir(shared.join("roots").join(&a.origin))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("00000000000000000002-"))
        .collect();
    assert_eq!(roots.len(), 1, "a's second root: {roots:?}");
    let (_, again) = b.sync(&shared);
    assert_converged(&[&a, &b]);
    assert!(problem_keys(&again["quarantined"]).contains(&forged_key.as_str()));
}

/// Issue 15: a flipped byte anywhere in a stored artifact of any kind (the frame header, the
/// envelope, the payload) is named by `verify` and refused by a reader's `sync`, which keeps
/// no copy of it; once the good bytes are back, a reader gets everything.
#[test]
fn a_flipped_byte_in_any_kind_is_named_by_verify_and_refused_by_sync() {
    let scratch = Scratch::new("flips");
    let shared = shared_folder(&scratch.path);
    let (a, _logs) = origin_with_sessions(&scratch, &shared, 15);
    let mut victims: Vec<PathBuf> = ["buckets", "manifests", "segments", "events"]
        .iter()
        .map(|kind| artifacts(&shared, &a.origin, kind)[0].clone())
        .collect();
    let roots = shared.join("roots").join(&a.origin);
    victims.push(
        fs::read_dir(&roots)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    );
    let mut readers = 0;
    for victim in &victims {
        let key = key_of(&shared, victim);
        let good = fs::read(victim).unwrap();
        let len = good.len();
        let mut positions = vec![0, 5, 8, 20, 40, 55, len / 2, len - 1];
        positions.retain(|&p| p < len);
        positions.dedup();
        for position in positions {
            let mut bad = good.clone();
            bad[position] ^= 0x01;
            fs::write(victim, &bad).unwrap();

            let verify = a
                .run(&["verify", shared.to_str().unwrap(), "--json"])
                .expect(3)
                .json();
            assert!(
                problem_keys(&verify["problems"]).contains(&key.as_str()),
                "byte {position} of {key}: {verify:#}"
            );

            readers += 1;
            let reader = Machine::new(&scratch.path, &format!("r{readers}"));
            let (code, report) = reader.sync(&shared);
            assert_eq!(code, 3, "byte {position} of {key}: {report:#}");
            assert!(
                problem_keys(&report["quarantined"]).contains(&key.as_str()),
                "byte {position} of {key}: {report:#}"
            );
            if let Ok(copy) = fs::read(reader.mirror().join(&key)) {
                assert_eq!(copy, good, "byte {position} of {key}: a bad copy was kept");
            }
            fs::write(victim, &good).unwrap();
        }
    }
    let last = Machine::new(&scratch.path, "last");
    last.sync_ok(&shared);
    assert_converged(&[&a, &last]);
}
