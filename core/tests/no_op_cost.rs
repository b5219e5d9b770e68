//! Issue 17 item 8: what a sync that finds nothing to do costs in store requests, as the
//! number of origins grows. Every origin publishes a session and a curation edit, one machine
//! catches up, then syncs again with nothing new: that run lists `roots/` once in its mirror
//! and once in the target (one page each up to 1 000 roots), and nothing else, whatever the
//! number of origins. Self-heal's full listing of the machine's own keys adds one request when
//! it is due (`heal_every_ms`).

use agentsync_core::conformance::run_vector;
use serde_json::{Value, json};

const T: u64 = 1_764_078_194_000;

struct NoOp {
    /// Requests of the no-op run after the catch-up, heal due and not due.
    heal_due: u64,
    heal_not_due: u64,
    /// Requests of the catch-up run itself (for the table).
    catch_up: u64,
}

fn origin(i: usize) -> String {
    format!("host{i:04}-a1")
}

fn no_op_cost(origins: usize) -> NoOp {
    let mut steps = Vec::new();
    let mut now = T;
    for i in 0..origins {
        let o = origin(i);
        now += 10;
        steps.push(json!({"do": "session", "origin": o, "native": "s1", "messages": 3}));
        steps.push(
            json!({"do": "edit", "origin": o, "session": format!("{o}~s1"),
                          "op": {"op": "star"}, "now_ms": now}),
        );
        // Publishing straight into the target (export only) builds the same target as a sync
        // through a mirror of its own, at a fraction of the simulator's time.
        let step = if i == 0 {
            json!({"do": "sync", "origin": o, "mirror": "m0", "target": "shared", "now_ms": now})
        } else {
            json!({"do": "export", "origin": o, "store": "shared", "now_ms": now})
        };
        steps.push(step);
    }
    let me = origin(0);
    // Catch up with everyone, then sync twice with nothing new (the first of them may still
    // verify the roots the catch-up recorded), then once more an hour later.
    for dt in [1_000, 2_000, 3_000, 3_600_000 + 4_000] {
        steps.push(
            json!({"do": "sync", "origin": me, "mirror": "m0", "target": "shared",
                          "now_ms": now + dt}),
        );
    }
    let mut seeds = serde_json::Map::new();
    for i in 0..origins {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        seeds.insert(origin(i), json!({"seed": hex::encode(seed)}));
    }
    let stores = ["m0", "shared"];
    let v = json!({"name": "no-op-cost", "op": "scenario", "origins": seeds, "stores": stores,
                   "heal_every_ms": 3_600_000, "steps": steps});
    let result = run_vector(&v);
    assert_eq!(result["ok"], true, "{result}");
    let out = &result["output"]["steps"];
    let n = out.as_array().map_or(0, Vec::len);
    let report = |i: usize| -> &Value { &out[i] };
    let requests = |i: usize| report(i)["requests"].as_u64().unwrap_or(u64::MAX);
    let catch_up = report(n - 4);
    assert_eq!(
        catch_up["units"].as_array().map_or(0, Vec::len),
        origins - 1,
        "the catch-up imports every other origin's session: {catch_up}"
    );
    assert_eq!(
        catch_up["events"].as_u64(),
        Some(origins as u64 - 1),
        "and every other origin's edit"
    );
    for i in n - 3..n {
        assert_eq!(report(i)["written"], json!({}), "{}", report(i));
        assert_eq!(report(i)["units"], json!([]), "{}", report(i));
        assert_eq!(report(i)["events"], 0, "{}", report(i));
    }
    NoOp {
        heal_due: requests(n - 1),
        heal_not_due: requests(n - 2),
        catch_up: requests(n - 4),
    }
}

#[test]
fn issue17_item8_a_no_op_sync_costs_the_same_at_5_and_at_1000_origins() {
    let mut rows = Vec::new();
    for origins in [5, 1000] {
        let cost = no_op_cost(origins);
        assert!(
            cost.heal_not_due <= 2,
            "no-op at {origins} origins: {} requests (two root listings expected)",
            cost.heal_not_due
        );
        assert!(
            cost.heal_due <= 3,
            "no-op at {origins} origins with self-heal due: {} requests",
            cost.heal_due
        );
        rows.push(format!(
            "| {origins} | {} | {} | {} |",
            cost.heal_not_due, cost.heal_due, cost.catch_up
        ));
    }
    // The table docs/benchmarks.md records (`cargo test -p agentsync-core --test no_op_cost
    // -- --nocapture`).
    println!("| origins | no-op requests | with self-heal due | catch-up run |");
    println!("|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
}
