//! The soak (issue 15): five origins, long random histories of new sessions, appends, edits
//! of every kind (renames that conflict, purges), whole syncs cut short at a random write,
//! lost, late and corrupt copies in the shared store, GC, and clocks skewed up to ±10 minutes.
//! Once every late key is back and every machine has synced a few times, all five archives,
//! curation and conflict logs are identical.
//!
//! Runs on the deterministic simulator behind the scenario vectors, which drives the real
//! `SyncEngine`. `SOAK_SEEDS` (default 3) and `SOAK_OPS` (default 1000) size it;
//! `./scripts/soak` runs 100 seeds, `./scripts/test` the default.

mod common;

use agentsync_core::conformance::run_vector;
use serde_json::{Value, json};

const ORIGINS: [&str; 5] = ["alpha-1", "beta-2", "gamma-3", "delta-4", "eps-5"];
const NATIVES: [&str; 4] = ["s1", "s2", "s3", "s4"];
const KINDS: [&str; 5] = [
    "/segments/",
    "/manifests/",
    "/buckets/",
    "roots/",
    "/events/",
];
const HOUR_MS: u64 = 3_600_000;

/// splitmix64: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn mirror(origin: &str) -> String {
    format!("m-{origin}")
}

fn edit_op(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 | 1 => json!({"op": "rename", "name": format!("name {}", rng.below(4))}),
        2 => json!({"op": "star"}),
        3 => json!({"op": "unstar"}),
        4 => json!({"op": "trash"}),
        5 => json!({"op": "restore"}),
        6 | 7 => json!({"op": "tag_add", "tag": format!("t{}", rng.below(3))}),
        8 => json!({"op": "tag_remove", "tag": format!("t{}", rng.below(3))}),
        9 | 10 => json!({"op": "set_note", "note": format!("note {}", rng.below(5))}),
        // Rare: a purge ends the session everywhere.
        _ if rng.below(4) == 0 => json!({"op": "purge"}),
        _ => json!({"op": "star"}),
    }
}

/// One random history of `ops` steps, then the calm: every late key back, three rounds of
/// syncs (the first reading every own key back, `sync --heal`).
fn history(seed: u64, ops: usize) -> Vec<Value> {
    let mut rng = Rng(seed);
    // Each machine's clock is off by up to ±10 minutes, for good.
    let skew: Vec<i64> = ORIGINS
        .iter()
        .map(|_| rng.below(1_200_001) as i64 - 600_000)
        .collect();
    let mut now = 1_764_078_194_000u64;
    let mut steps = Vec::with_capacity(ops + 20);
    let at = |now: u64, o: usize| (now as i64 + skew[o]) as u64;
    for _ in 0..ops {
        now += 1_000 + rng.below(120_000);
        let o = rng.below(ORIGINS.len() as u64) as usize;
        let origin = ORIGINS[o];
        let step = match rng.below(20) {
            0..=3 => {
                let native = rng.pick(&NATIVES);
                json!({"do": "session", "origin": origin, "native": native, "messages": 1 + rng.below(40)})
            }
            4..=8 => {
                let mut step = json!({"do": "sync", "origin": origin, "mirror": mirror(origin), "target": "shared"});
                if rng.below(4) == 0 {
                    step["crash_after_writes"] = json!(rng.below(12));
                }
                step
            }
            9..=14 => {
                let owner = rng.pick(&ORIGINS);
                let native = rng.pick(&NATIVES);
                json!({"do": "edit", "origin": origin, "session": format!("{owner}~{native}"), "op": edit_op(&mut rng)})
            }
            15 => json!({"do": "drop", "store": "shared", "key_contains": rng.pick(&KINDS)}),
            16 => json!({"do": "restore", "store": "shared"}),
            17 => json!({"do": "corrupt", "store": "shared", "key_contains": rng.pick(&KINDS)}),
            _ => {
                let store = if rng.below(2) == 0 {
                    "shared".to_owned()
                } else {
                    mirror(origin)
                };
                json!({"do": "gc", "origin": origin, "store": store, "grace_ms": 2 * HOUR_MS})
            }
        };
        let mut step = step;
        step["now_ms"] = json!(at(now, o));
        steps.push(step);
    }
    // An edit stamped by a clock more than five minutes ahead of a reader's waits there until
    // the reader's clock catches up (the HLC's drift bound): the calm starts once every
    // clock has passed every edit.
    now += 30 * 60_000;
    steps.push(json!({"do": "restore", "store": "shared", "now_ms": now}));
    for round in 0..3 {
        for (o, origin) in ORIGINS.iter().enumerate() {
            now += 1_000;
            steps.push(json!({"do": "sync", "origin": origin, "mirror": mirror(origin), "target": "shared", "now_ms": at(now, o), "heal": round == 0}));
        }
    }
    steps
}

fn soak_one(seed: u64, ops: usize) -> (usize, usize) {
    let steps = history(seed, ops);
    let origins = common::scenario_origins(&ORIGINS);
    let mut stores: Vec<String> = ORIGINS.iter().map(|o| mirror(o)).collect();
    stores.push("shared".into());
    let v = json!({"name": format!("soak-{seed}"), "op": "scenario", "origins": origins, "stores": stores, "page_size": 7, "steps": steps});
    let result = run_vector(&v);
    assert_eq!(result["ok"], json!(true), "seed {seed}: {result}");
    let machines = &result["output"]["final"]["machines"];
    let first = &machines[ORIGINS[0]];
    for o in &ORIGINS[1..] {
        for part in ["sessions", "curation", "conflicts"] {
            if machines[o][part] != first[part] {
                let (a, b) = (&first[part], &machines[o][part]);
                if let (Some(a), Some(b)) = (a.as_array(), b.as_array()) {
                    for x in a.iter().filter(|x| !b.contains(x)) {
                        eprintln!("DIFF {part} only on {}: {x}", ORIGINS[0]);
                    }
                    for x in b.iter().filter(|x| !a.contains(x)) {
                        eprintln!("DIFF {part} only on {o}: {x}");
                    }
                }
                if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
                    for k in a.keys().chain(b.keys()) {
                        if a.get(k) != b.get(k) {
                            eprintln!("DIFF {part} {k}: {:?}\n   vs {:?}", a.get(k), b.get(k));
                        }
                    }
                }
            }
            assert_eq!(
                machines[o][part], first[part],
                "seed {seed}: {o}'s {part} differ from {}'s",
                ORIGINS[0]
            );
        }
    }
    let sessions = first["sessions"].as_object().map_or(0, |s| s.len());
    let conflicts = first["conflicts"].as_u64().unwrap_or(0) as usize;
    (sessions, conflicts)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn five_origins_with_skewed_clocks_converge_after_long_random_histories() {
    let seeds = env_number("SOAK_SEEDS", 3);
    let ops = env_number("SOAK_OPS", 1000) as usize;
    let first_seed = env_number("SOAK_FIRST_SEED", 1);
    let mut compared = 0;
    for seed in first_seed..first_seed + seeds {
        let (sessions, conflicts) = soak_one(seed, ops);
        eprintln!("soak seed {seed}: {ops} operations, {sessions} sessions, {conflicts} conflicts");
        compared += sessions;
    }
    assert!(
        compared > 0,
        "every history ended with no session: nothing was compared"
    );
}
