//! Crash tests: `agentsync sync` is killed (SIGKILL) at a random moment, and aborted at each
//! crash point (right after each durable step of ingest, export, exchange, import and replay),
//! while it has fresh work (new logs to ingest, appended messages, curation edits); the next
//! sync resumes, nothing acknowledged is lost, the machines converge, and every store still
//! verifies.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ClaudeLog, Machine, Rng, Scratch, assert_converged, settle, shared_folder};
use serde_json::{Value, json};

/// Kill-at-random trials; `CRASH_TRIALS` (`./scripts/soak`: 200) runs more.
fn trials() -> usize {
    env_number("CRASH_TRIALS", 24)
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Side {
    machine: Machine,
    logs: Vec<ClaudeLog>,
}

/// Machines `a` and `b` with no logs yet, and their shared folder.
fn two_sides(name: &str) -> (Scratch, PathBuf, Vec<Side>) {
    let scratch = Scratch::new(name);
    let shared = shared_folder(&scratch.path);
    let sides = ["a", "b"]
        .iter()
        .map(|name| Side {
            machine: Machine::new(&scratch.path, name),
            logs: Vec::new(),
        })
        .collect();
    (scratch, shared, sides)
}

/// The cheap part of a snapshot: both lists and the conflicts.
fn lists(m: &Machine) -> Value {
    json!({"sessions": m.sessions(), "trashed": m.trashed(), "conflicts": m.conflicts()})
}

/// Every message of every log of `side` is in its archive, once.
fn assert_logs_complete(side: &Side, trial: usize) {
    let counts: BTreeMap<String, u64> = side
        .machine
        .sessions()
        .as_array()
        .unwrap()
        .iter()
        .chain(side.machine.trashed().as_array().unwrap())
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["message_count"].as_u64().unwrap(),
            )
        })
        .collect();
    for log in &side.logs {
        let gid = log.gid(&side.machine.origin);
        assert_eq!(
            counts.get(&gid),
            Some(&log.messages),
            "trial {trial}: {gid} on {}",
            side.machine.name
        );
    }
}

/// Fresh work for one side: maybe a new session, maybe an append, a few edits.
fn fresh_work(rng: &mut Rng, side: &mut Side, trial: usize) {
    let projects = side.machine.projects();
    if side.logs.is_empty() || rng.chance(1, 2) {
        let session = rng.uuid();
        let n = rng.range(1, 160);
        side.logs.push(ClaudeLog::write(
            &projects,
            &format!("p{}", trial % 3),
            &session,
            rng.below(86_400),
            n,
        ));
    }
    if rng.chance(2, 3) {
        let i = rng.below(side.logs.len() as u64) as usize;
        let n = rng.range(1, 40);
        side.logs[i].append(n);
    }
    // Edits on what the archive holds already (new logs are only ingested by the sync).
    let ids = side.machine.session_ids();
    if ids.is_empty() {
        return;
    }
    for _ in 0..rng.below(4) {
        let id = rng.pick(&ids).clone();
        let m = &side.machine;
        match rng.below(5) {
            0 => _ = m.json(&["rename", &id, &format!("trial {trial}")]),
            1 => _ = m.json(&["star", &id]),
            2 => _ = m.json(&["tag", &id, &format!("+t{}", rng.below(3))]),
            3 => _ = m.json(&["note", &id, &format!("seen by {} in {trial}", m.name)]),
            _ => _ = m.json(&[if rng.chance(1, 2) { "trash" } else { "restore" }, &id]),
        }
    }
}

fn resume_and_check(sides: &[Side], who: usize, shared: &Path, trial: usize) {
    let m = &sides[who].machine;
    // The interrupted run's work is redone (ingest included) by the next one.
    let run = m
        .run(&["sync", shared.to_str().unwrap(), "--json"])
        .expect(0);
    let report = run.json();
    assert_eq!(
        report["quarantined"],
        json!([]),
        "trial {trial}: {report:#}"
    );
    let machines: Vec<&Machine> = sides.iter().map(|s| &s.machine).collect();
    settle(&machines, shared, 6);
    let first = lists(machines[0]);
    for other in &machines[1..] {
        assert_eq!(
            lists(other),
            first,
            "trial {trial}: {} and {} differ",
            machines[0].name,
            other.name
        );
    }
    for side in sides {
        assert_logs_complete(side, trial);
    }
    m.verify_ok(None);
    m.verify_ok(Some(shared));
}

#[test]
fn killed_syncs_resume_and_converge() {
    // CRASH_SEED=<n> explores other histories.
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de);
    let mut rng = Rng::new(seed);
    let (scratch, shared, mut sides) = two_sides("crash");
    let mut interrupted = 0;
    let trials = trials();
    for trial in 0..trials {
        let who = rng.below(sides.len() as u64) as usize;
        fresh_work(&mut rng, &mut sides[who], trial);
        // Mostly short: a small sync takes a few tens of milliseconds.
        let delay = if rng.chance(2, 3) {
            rng.below(30)
        } else {
            rng.below(151)
        };
        let mut child = sides[who].machine.spawn_sync(&shared);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        resume_and_check(&sides, who, &shared, trial);
    }
    let leftovers = common::files_under(&scratch.path)
        .keys()
        .filter(|k| k.rsplit('/').next().is_some_and(|n| n.starts_with(".tmp-")))
        .count();
    eprintln!(
        "{interrupted} of {trials} syncs were killed before they finished; \
         {leftovers} temporary files left behind"
    );
    let machines: Vec<&Machine> = sides.iter().map(|s| &s.machine).collect();
    assert_converged(&machines);
    for m in &machines {
        m.verify_ok(None);
        m.verify_ok(Some(&shared));
    }
}

#[test]
fn a_sync_aborted_at_every_crash_point_resumes_and_converges() {
    // `CRASH_POINT_HITS` (`./scripts/soak`: 6) aborts at the first, second, … pass of each.
    let hits = env_number("CRASH_POINT_HITS", 2);
    let mut rng = Rng::new(0xc0ffee);
    let (_scratch, shared, mut sides) = two_sides("crash-points");
    for (i, side) in sides.iter_mut().enumerate() {
        fresh_work(&mut rng, side, i);
        side.machine.ingest();
        side.machine.sync(&shared);
    }
    let mut trial = 0;
    for point in agentsync::crash_point::POINTS {
        let mut crashed = 0;
        for n in 1..=hits {
            trial += 1;
            let who = trial % 2;
            fresh_work(&mut rng, &mut sides[who], trial);
            // The other side has news for this one to import and replay.
            fresh_work(&mut rng, &mut sides[1 - who], trial);
            sides[1 - who].logs[0].append(2);
            let other = &sides[1 - who].machine;
            other
                .run(&["sync", shared.to_str().unwrap(), "--json"])
                .expect(0);
            let m = &sides[who].machine;
            // An edit acknowledged (exit 0) before the crash: tags are only ever added here,
            // so it must end up on both machines.
            let ids = m.session_ids();
            let acked = rng.pick(&ids).clone();
            let tag = format!("acked-{trial}");
            m.json(&["tag", &acked, &format!("+{tag}")]);
            let run = m
                .command(&["sync", shared.to_str().unwrap(), "--json"])
                .env("AGENTSYNC_CRASH_AT", format!("{point}:{n}"))
                .output()
                .unwrap();
            match run.status.code() {
                // Aborted at the point: no exit code, a signal.
                None => crashed += 1,
                // The point was passed fewer than n times in this run.
                Some(0) => {}
                Some(code) => panic!(
                    "{point}:{n}: sync exited with {code}: {}",
                    String::from_utf8_lossy(&run.stderr)
                ),
            }
            m.verify_ok(None);
            resume_and_check(&sides, who, &shared, trial);
            for side in &sides {
                let session = side.machine.session(&acked).unwrap();
                assert!(
                    session["tags"].as_array().unwrap().contains(&json!(tag)),
                    "{point}:{n}: the acknowledged tag is missing on {}: {session}",
                    side.machine.name
                );
            }
        }
        assert!(
            crashed > 0,
            "{point} was never reached: the matrix tests nothing there"
        );
        eprintln!("{point}: aborted {crashed} of {hits} runs");
    }
}
