//! The convergence case every transport must pass: three machines, random curation and log
//! appends, syncs in random order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{ClaudeLog, Machine, Rng, Scratch, assert_converged, settle, shared_folder};

const TAGS: [&str; 3] = ["red", "blue", "green"];
const NAMES: [&str; 4] = ["alpha", "beta", "gamma", ""];

/// What a machine knows it holds: session id → message count (refreshed after syncs).
struct Known {
    machine: Machine,
    logs: Vec<ClaudeLog>,
    sessions: BTreeMap<String, u64>,
}

impl Known {
    fn refresh(&mut self) {
        self.sessions = self
            .machine
            .sessions()
            .as_array()
            .unwrap()
            .iter()
            .chain(self.machine.trashed().as_array().unwrap())
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["message_count"].as_u64().unwrap(),
                )
            })
            .collect();
    }
}

/// One random curation edit (or a log append) on a random session the machine holds.
fn random_edit(rng: &mut Rng, k: &mut Known, round: usize) {
    if k.sessions.is_empty() {
        return;
    }
    let ids: Vec<String> = k.sessions.keys().cloned().collect();
    let id = rng.pick(&ids).clone();
    let count = k.sessions[&id];
    let m = &k.machine;
    match rng.below(13) {
        0 | 1 => {
            let name = format!(
                "{}{}",
                rng.pick(&NAMES),
                if rng.chance(1, 2) { "" } else { "!" }
            );
            m.json(&["rename", &id, &name]);
        }
        2 => _ = m.json(&["star", &id]),
        3 => _ = m.json(&["unstar", &id]),
        4 => _ = m.json(&["trash", &id]),
        5 => _ = m.json(&["restore", &id]),
        6 => {
            let sign = if rng.chance(2, 3) { "+" } else { "-" };
            let tag = format!("{sign}{}", rng.pick(&TAGS));
            m.json(&["tag", &id, &tag]);
        }
        7 => {
            let note = format!("note {} from {}", rng.below(100), m.name);
            m.json(&["note", &id, &note]);
        }
        8 if count > 0 => {
            let ord = rng.below(count).to_string();
            let note = format!("pin {round}");
            m.json(&["pin", &id, &ord, "--note", &note]);
        }
        9 if count > 0 => {
            let ord = rng.below(count).to_string();
            m.json(&["unpin", &id, &ord]);
        }
        10 if rng.chance(1, 4) => {
            m.json(&["purge", &id, "--yes"]);
            k.sessions.remove(&id);
        }
        11 if !k.logs.is_empty() => {
            // New messages in one of its own sessions.
            let i = rng.below(k.logs.len() as u64) as usize;
            let n = rng.range(1, 3);
            k.logs[i].append(n);
            m.ingest();
            k.refresh();
        }
        _ => {
            let tag = format!("+{}", rng.pick(&TAGS));
            m.json(&["tag", &id, &tag, "-red"]);
        }
    }
}

/// Three machines make random edits and sync in random order through `target` (a folder, an
/// HTTP peer, an S3 bucket; `None`: a shared folder in the scratch folder), with `env` in
/// their environment; then they settle and must show the same archive, and the target must
/// verify.
pub fn convergence_case(seed: u64, target: Option<&Path>, env: &[(String, String)]) {
    let mut rng = Rng::new(seed);
    let scratch = Scratch::new(&format!("converge-{seed}"));
    let shared = match target {
        Some(t) => t.to_path_buf(),
        None => shared_folder(&scratch.path),
    };
    let mut machines: Vec<Known> = ["a", "b", "c"]
        .iter()
        .map(|name| Known {
            machine: Machine::new(&scratch.path, name).with_env(env),
            logs: Vec::new(),
            sessions: BTreeMap::new(),
        })
        .collect();
    for k in &mut machines {
        for p in 0..rng.range(1, 2) {
            let session = rng.uuid();
            let start = rng.below(5 * 86_400);
            let n = rng.range(1, 9);
            let project = format!("proj{}", p % 2);
            k.logs.push(ClaudeLog::write(
                &k.machine.projects(),
                &project,
                &session,
                start,
                n,
            ));
        }
        k.machine.ingest();
        k.refresh();
    }
    for round in 0..3 {
        for _ in 0..16 {
            let i = rng.below(3) as usize;
            if rng.chance(1, 6) {
                machines[i].machine.sync(&shared);
                machines[i].refresh();
            } else {
                random_edit(&mut rng, &mut machines[i], round);
            }
        }
        // Sync in a random order (some machines maybe twice, some not at all).
        let mut order: Vec<usize> = (0..3).chain(0..3).collect();
        rng.shuffle(&mut order);
        order.truncate(rng.range(1, 5) as usize);
        for i in order {
            machines[i].machine.sync(&shared);
            machines[i].refresh();
        }
    }
    let refs: Vec<&Machine> = machines.iter().map(|k| &k.machine).collect();
    settle(&refs, &shared, 8);
    let snapshot = assert_converged(&refs);
    // The comparison was not vacuous: sessions of every origin were compared.
    let origins: BTreeSet<&str> = snapshot["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .chain(snapshot["trashed"].as_array().unwrap())
        .map(|s| s["origin"].as_str().unwrap())
        .collect();
    assert!(!origins.is_empty(), "seed {seed}: every session was purged");
    eprintln!(
        "seed {seed}: {} sessions ({} trashed) from {} origins, {} conflicts",
        snapshot["sessions"].as_array().unwrap().len(),
        snapshot["trashed"].as_array().unwrap().len(),
        origins.len(),
        snapshot["conflicts"].as_array().unwrap().len()
    );
    for k in &machines {
        k.machine.verify_ok(Some(&shared));
    }
}
