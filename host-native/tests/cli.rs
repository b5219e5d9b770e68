//! Runs the built `agentsync` binary end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn agentsync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentsync"))
        .args(args)
        .output()
        .expect("the agentsync binary runs")
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentsync-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn demo_json(dir: &Path) -> Value {
    let out = agentsync(&["demo", "--dir", dir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("demo --json prints JSON")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn demo_origins_read_each_others_sessions() {
    let dir = fresh_dir("demo");
    let report = demo_json(&dir);
    let written = report["written"].as_array().unwrap();
    let reads = report["reads"].as_array().unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(reads.len(), 2);
    let origins: Vec<&str> = written
        .iter()
        .map(|w| w["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins, ["laptop-0a1b2c", "desktop-3d4e5f"]);

    for read in reads {
        let (reader, origin) = (
            read["reader"].as_str().unwrap(),
            read["origin"].as_str().unwrap(),
        );
        assert_ne!(reader, origin, "each origin reads the other one");
        let w = written.iter().find(|w| w["origin"] == origin).unwrap();
        assert!(u(&w["session_count"]) >= 2);
        assert_eq!(
            read["session_count"], w["session_count"],
            "{reader} reading {origin}"
        );
        assert_eq!(
            read["message_count"], w["message_count"],
            "{reader} reading {origin}"
        );
        let mut read_gids: Vec<&str> = read["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["gid"].as_str().unwrap())
            .collect();
        let mut written_gids: Vec<&str> = w["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        read_gids.sort();
        written_gids.sort();
        assert_eq!(read_gids, written_gids);
        let per_session: u64 = read["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| u(&s["messages"]))
            .sum();
        assert_eq!(per_session, u(&w["message_count"]));
        // Every file the origin wrote was opened and verified, and the bytes add up.
        assert_eq!(read["artifacts_verified"], w["files"]);
        assert_eq!(read["bytes_read"], w["bytes"]);
        assert_eq!(read["root"], w["root"]);
        assert_eq!(read["signer"], w["public_key"]);
        let ops: Vec<&str> = read["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["op"]["op"].as_str().unwrap())
            .collect();
        assert_eq!(ops, ["star", "rename"]);
        assert_eq!(u(&w["already_present"]), 0);
    }

    // Artifacts are write-once and deterministic: a second run finds every file in place.
    let again = demo_json(&dir);
    for w in again["written"].as_array().unwrap() {
        assert_eq!(w["already_present"], w["files"]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inspect_renders_what_the_demo_wrote() {
    let dir = fresh_dir("inspect");
    let report = demo_json(&dir);
    let laptop = &report["written"][0];

    let root_path = dir.join(laptop["root"].as_str().unwrap());
    let out = agentsync(&["inspect", root_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "root");
    assert_eq!(json["root"]["origin"], "laptop-0a1b2c");
    assert_eq!(json["root"]["seq"], 1);

    let batch_path = dir.join(laptop["event_batches"][0].as_str().unwrap());
    let out = agentsync(&["inspect", batch_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "events");

    // A segment copied to a name that is not a key still opens, trusting its frame header.
    let segments = dir.join("laptop-0a1b2c").join("segments");
    let segment = std::fs::read_dir(&segments)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let copy = dir.join("copy.bin");
    std::fs::copy(&segment, &copy).unwrap();
    for path in [&segment, &copy] {
        let out = agentsync(&["inspect", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["kind"], "segment");
        assert_eq!(json["first_ordinal"], 0);
    }

    // Named with another kind's key: refused, naming the file.
    let wrong_key = format!(
        "laptop-0a1b2c/manifests/{}.manifest",
        segment
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".ndjson.zst")
    );
    let out = agentsync(&["inspect", copy.to_str().unwrap(), "--key", &wrong_key]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("copy.bin"), "{stderr}");

    // Corrupt bytes: exit code 1 and the file named.
    let corrupt = dir.join("corrupt.bin");
    std::fs::write(&corrupt, b"not an artifact").unwrap();
    let out = agentsync(&["inspect", corrupt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corrupt.bin"), "{stderr}");

    // Usage error: clap's exit code 2.
    assert_eq!(agentsync(&["inspect"]).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
