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

#[test]
fn demo_converges_two_machines_and_keeps_the_conflict() {
    let dir = fresh_dir("demo");
    let report = demo_json(&dir);
    assert_eq!(report["converged"], true);
    let sessions = report["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 5);
    let origins: std::collections::BTreeSet<&str> = sessions
        .iter()
        .map(|s| s["origin"].as_str().unwrap())
        .collect();
    assert_eq!(
        origins.into_iter().collect::<Vec<_>>(),
        ["desktop-3d4e5f", "laptop-0a1b2c"]
    );
    let contested = sessions
        .iter()
        .find(|s| s["id"].as_str().unwrap().contains("5b0c8e2a"))
        .unwrap();
    // The later rename wins on both machines; the star and the tag from either side apply.
    assert_eq!(contested["display_name"], "CSV export, shipped in 1.4");
    assert_eq!(contested["starred"], true);
    assert_eq!(contested["tags"], serde_json::json!(["feature"]));
    let conflicts = report["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["field"], "display_name");
    assert_eq!(conflicts[0]["loser"]["value"], "CSV export (laptop's name)");

    // Each machine is a real data folder the CLI opens afterwards.
    let laptop = dir.join("laptop");
    let out = agentsync(&["--data-dir", laptop.to_str().unwrap(), "--json", "sessions"]);
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(&listed, &report["sessions"]);
    let out = agentsync(&["--data-dir", laptop.to_str().unwrap(), "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn first_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".tmp-")
        })
        .collect();
    files.sort();
    files.remove(0)
}

#[test]
fn inspect_renders_what_the_demo_wrote() {
    let dir = fresh_dir("inspect");
    demo_json(&dir);
    let shared = dir.join("shared");
    let root_path = first_file(&shared.join("roots").join("laptop-0a1b2c"));
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

    let batch_path = first_file(&shared.join("laptop-0a1b2c").join("events"));
    let out = agentsync(&["inspect", batch_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "events");

    // A segment copied to a name that is not a key still opens, trusting its frame header.
    let segments = shared.join("laptop-0a1b2c").join("segments");
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

/// `sync --engine wasm` plans exchange, import and replay in the core's WebAssembly component
/// (built by scripts/test): a third machine syncing that way ends where a native one does.
#[test]
fn sync_with_the_wasm_engine_converges_like_the_native_one() {
    let dir = fresh_dir("wasm-sync");
    demo_json(&dir);
    let shared = dir.join("shared");
    let mut listings = Vec::new();
    for (machine, engine) in [("native", "native"), ("wasm", "wasm")] {
        let data = dir.join(machine);
        let data = data.to_str().unwrap();
        let origin = format!("{machine}-000001");
        let out = agentsync(&["--data-dir", data, "init", "--origin", &origin]);
        assert!(out.status.success());
        let out = agentsync(&[
            "--data-dir",
            data,
            "--json",
            "sync",
            shared.to_str().unwrap(),
            "--no-ingest",
            "--engine",
            engine,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["imported_sessions"], 5);
        let sessions = agentsync(&["--data-dir", data, "--json", "sessions"]);
        let conflicts = agentsync(&["--data-dir", data, "--json", "conflicts"]);
        listings.push((sessions.stdout, conflicts.stdout));
    }
    assert_eq!(listings[0], listings[1]);
    let conflicts: Value = serde_json::from_slice(&listings[1].1).unwrap();
    assert_eq!(conflicts.as_array().unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A missing target is an error (an unmounted share must not become a local folder), unless
/// `--init` asks for it to be created.
#[test]
fn a_missing_target_is_refused_unless_init_creates_it() {
    let dir = fresh_dir("missing-target");
    let data = dir.join("m");
    let data = data.to_str().unwrap();
    let missing = dir.join("not-mounted");
    let out = agentsync(&[
        "--data-dir",
        data,
        "sync",
        missing.to_str().unwrap(),
        "--no-ingest",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder"));
    assert!(!missing.exists());
    let out = agentsync(&["--data-dir", data, "verify", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let out = agentsync(&[
        "--data-dir",
        data,
        "sync",
        missing.to_str().unwrap(),
        "--no-ingest",
        "--init",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(missing.is_dir());
    // `--init` made it the default target.
    let out = agentsync(&["--data-dir", data, "--json", "sync", "--no-ingest"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["target"].as_str().unwrap(),
        std::fs::canonicalize(&missing).unwrap().to_str().unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sync --watch` syncs at once, again at least every interval, prints one JSON object a line,
/// and on Ctrl-C (SIGINT) runs a last sync and exits 0.
#[cfg(unix)]
#[test]
fn watch_syncs_on_an_interval_and_once_more_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = fresh_dir("watch");
    demo_json(&dir);
    let laptop = dir.join("laptop");
    let config = std::fs::read_to_string(laptop.join("config.toml"))
        .unwrap()
        .replace("interval_secs = 300", "interval_secs = 1")
        .replace("debounce_ms = 2000", "debounce_ms = 50");
    assert!(config.contains("interval_secs = 1"), "{config}");
    std::fs::write(laptop.join("config.toml"), config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentsync"))
        .args([
            "--data-dir",
            laptop.to_str().unwrap(),
            "--json",
            "sync",
            "--watch",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The first run, then one the interval triggered.
    let mut lines = Vec::new();
    while lines.len() < 2 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("watch printed {} lines in 60 s", lines.len());
            }
        }
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    lines.extend(rx.iter());
    assert!(lines.len() >= 3, "a last sync after Ctrl-C: {lines:?}");
    for line in &lines {
        let report: Value = serde_json::from_str(line).unwrap();
        assert_eq!(report["origin"], "laptop-0a1b2c");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 1 / issue 17 item 3: an edit over a reader's limit is refused at the command
/// (exit 2, the limit named, nothing written), so it can never wedge a later sync.
#[test]
fn an_edit_over_the_limit_is_refused_and_sync_still_works() {
    let dir = fresh_dir("too-long");
    let report = demo_json(&dir);
    let laptop = dir.join("laptop");
    let data = laptop.to_str().unwrap();
    let id = report["sessions"][0]["id"].as_str().unwrap().to_owned();
    let name = "n".repeat(1025);
    let out = agentsync(&["--data-dir", data, "rename", &id, &name]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1024"), "the limit is named: {err}");
    let out = agentsync(&["--data-dir", data, "--json", "show", &id]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&name));
    let out = agentsync(&["--data-dir", data, "sync", "--no-ingest"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 2: one writer per data folder. While another process holds the write lock, a
/// writing command waits its bounded time and fails naming the holder; readers go on.
#[test]
fn a_second_writer_waits_then_names_the_holder_and_readers_never_block() {
    let dir = fresh_dir("lock");
    let report = demo_json(&dir);
    let laptop = dir.join("laptop");
    let data = laptop.to_str().unwrap();
    let id = report["sessions"][0]["id"].as_str().unwrap().to_owned();

    let mut holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(laptop.join("write.lock"))
        .unwrap();
    holder.lock().unwrap();
    std::io::Write::write_all(&mut holder, b"held by the test").unwrap();

    let blocked = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_agentsync"))
            .env("AGENTSYNC_LOCK_WAIT_MS", "300")
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        vec!["--data-dir", data, "rename", &id, "while locked"],
        vec!["--data-dir", data, "sync", "--no-ingest"],
    ] {
        let out = blocked(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("held by the test"), "{err}");
    }
    let out = blocked(&["--data-dir", data, "--json", "sessions"]);
    assert!(out.status.success(), "readers never block: {out:?}");
    let out = blocked(&["--data-dir", data, "status"]);
    assert!(out.status.success(), "{out:?}");

    holder.unlock().unwrap();
    let out = blocked(&["--data-dir", data, "rename", &id, "after the lock"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 5: text from logs and other machines never reaches the terminal raw, and a
/// name or tag with a control character is refused at the edit (exit 2).
#[test]
fn escape_sequences_never_reach_the_terminal_raw() {
    let dir = fresh_dir("escapes");
    let report = demo_json(&dir);
    let laptop = dir.join("laptop");
    let data = laptop.to_str().unwrap();
    let log = dir.join("hostile.jsonl");
    std::fs::write(
        &log,
        concat!(
            r#"{"type":"user","sessionId":"6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f","#,
            r#""uuid":"7d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a","timestamp":"2026-11-30T10:00:00.000Z","#,
            r#""cwd":"/tmp/x","message":{"role":"user","content":"clear \u001b[2J the screen"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = agentsync(&["--data-dir", data, "ingest", log.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    for args in [
        vec!["--data-dir", data, "sessions"],
        vec!["--data-dir", data, "search", "screen"],
    ] {
        let out = agentsync(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(!out.stdout.contains(&0x1b), "raw ESC in {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("\\x1b[2J"),
            "shown escaped: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let id = report["sessions"][0]["id"].as_str().unwrap().to_owned();
    let out = agentsync(&["--data-dir", data, "rename", &id, "bad \u{1b}[2J name"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = agentsync(&["--data-dir", data, "tag", &id, "+\u{202e}gat"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 6: a quoted `~` (left alone by the shell, as config files and GUIs do) means
/// the home folder, never a folder named `~` in the current one; the config stores the
/// absolute path.
#[test]
fn a_quoted_tilde_target_is_the_home_folder() {
    let root = fresh_dir("tilde");
    let (home, cwd) = (root.join("home"), root.join("cwd"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let data = root.join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_agentsync"))
        .env("HOME", &home)
        .current_dir(&cwd)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "init",
            "--target",
            "~/shared-x",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(home.join("shared-x").is_dir());
    assert!(!cwd.join("~").exists(), "no folder named ~");
    let out = Command::new(env!("CARGO_BIN_EXE_agentsync"))
        .env("HOME", &home)
        .args(["--data-dir", data.to_str().unwrap(), "--json", "status"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let target = status["target"].as_str().unwrap();
    assert!(
        Path::new(target).is_absolute() && target.ends_with("shared-x"),
        "{target}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// Issue 19 item 7: messages that do not mislead. `verify` of a folder that is no store and
/// `gc` of a missing target fail and say why; a bad `--grace` is a usage error; `gc` says the
/// fixed margin it adds to the grace window.
#[test]
fn verify_and_gc_say_what_is_wrong() {
    let dir = fresh_dir("messages");
    demo_json(&dir);
    let data = dir.join("laptop");
    let data = data.to_str().unwrap();
    let not_a_store = dir.join("not-a-store");
    std::fs::create_dir_all(&not_a_store).unwrap();
    std::fs::write(not_a_store.join("notes.txt"), "hello").unwrap();
    let out = agentsync(&["--data-dir", data, "verify", not_a_store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an agentsync store"));

    let missing = dir.join("unmounted");
    let out = agentsync(&["--data-dir", data, "gc", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder"));
    assert!(!missing.exists(), "nothing created");

    let out = agentsync(&["--data-dir", data, "gc", "--grace", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = agentsync(&["--data-dir", data, "gc", "--dry-run", "--grace", "0s"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("plus 10 min for clock skew"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The shared folder the demo used is a store.
    let out = agentsync(&[
        "--data-dir",
        data,
        "verify",
        dir.join("shared").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 7: a file that is no known agent's log, named on the command line, is refused
/// with its name instead of becoming a session of malformed lines.
#[test]
fn ingest_refuses_a_file_that_is_no_known_log() {
    let dir = fresh_dir("not-a-log");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let gemini = dir.join("session-2026-11-30.json");
    std::fs::write(
        &gemini,
        r#"{"sessionHash":"abc","messages":[{"role":"user","parts":[{"text":"hi"}]}]}"#,
    )
    .unwrap();
    let out = agentsync(&[
        "--data-dir",
        data.to_str().unwrap(),
        "ingest",
        gemini.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("session-2026-11-30.json") && err.contains("no log of a known agent"),
        "{err}"
    );
    let out = agentsync(&["--data-dir", data.to_str().unwrap(), "--json", "sessions"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[]",
        "nothing ingested"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 1, the rest of it: a data folder that already holds an edit no reader accepts
/// (written by an older version) syncs everything else, shows the edit in `sync` and `status`
/// with the command that drops it, and `drop-edit` gets the machine out.
#[test]
fn issue19_item1_an_unpublishable_edit_already_held_syncs_the_rest_and_can_be_dropped() {
    use agentsync_core::events::{Event, Op};
    use agentsync_core::ledger::SignedEvent;
    let dir = fresh_dir("unpublishable");
    let report = demo_json(&dir);
    let laptop = dir.join("laptop");
    let data = laptop.to_str().unwrap();
    let ids: Vec<String> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let hlc = {
        let archive = agentsync_archive::Archive::open(&laptop.join("archive.db")).unwrap();
        let (origin, _) = archive.identity().unwrap().unwrap();
        let mut clock = archive.clock().unwrap();
        let event = Event {
            hlc: clock.now(4_102_444_800_000),
            session: ids[0].parse().unwrap(),
            prev: None,
            op: Op::Rename {
                name: "n".repeat(1025),
            },
        };
        let signed = SignedEvent {
            origin,
            id: event.id(),
            event,
        };
        archive
            .insert_events(std::slice::from_ref(&signed), false)
            .unwrap();
        signed.event.hlc.to_string()
    };
    // Everything else still goes out: a valid edit made after it reaches the other machine.
    let out = agentsync(&[
        "--data-dir",
        data,
        "--json",
        "rename",
        &ids[1],
        "made after",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let published_hlc = made[0]["hlc"].as_str().unwrap().to_owned();
    let out = agentsync(&["--data-dir", data, "sync", "--no-ingest"]);
    assert_eq!(out.status.code(), Some(3), "partial, not failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("agentsync drop-edit {hlc}")),
        "sync names the way out: {text}"
    );
    let desktop = dir.join("desktop");
    let out = agentsync(&[
        "--data-dir",
        desktop.to_str().unwrap(),
        "sync",
        "--no-ingest",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = agentsync(&[
        "--data-dir",
        desktop.to_str().unwrap(),
        "--json",
        "show",
        &ids[1],
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("made after"),
        "the valid edit was published"
    );
    let out = agentsync(&["--data-dir", data, "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&hlc) && text.contains("drop-edit"),
        "status shows it: {text}"
    );

    let out = agentsync(&["--data-dir", data, "drop-edit", &hlc]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = agentsync(&["--data-dir", data, "drop-edit", &hlc]);
    assert_eq!(out.status.code(), Some(1), "already gone: {out:?}");
    let out = agentsync(&["--data-dir", data, "sync", "--no-ingest"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = agentsync(&["--data-dir", data, "--json", "status"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["deferred"], serde_json::json!([]), "{status:#}");
    // A published edit is never dropped: other machines have it.
    let out = agentsync(&["--data-dir", data, "drop-edit", &published_hlc]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("published already"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 4: `show` prints each tool call with its input and result (long ones cut with
/// a visible "…", whole with `--full`), and `search` finds a word that occurs only in a tool
/// result, on the machine that ran the tool and on the one that imported the session, saying
/// where the hit is.
#[test]
fn issue19_item4_tool_results_are_shown_and_searchable() {
    let dir = fresh_dir("tools");
    demo_json(&dir);
    for machine in ["laptop", "desktop"] {
        let data = dir.join(machine);
        let data = data.to_str().unwrap();
        let out = agentsync(&["--data-dir", data, "--json", "search", "println"]);
        assert!(out.status.success(), "{out:?}");
        let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
        let hit = hits
            .as_array()
            .unwrap()
            .first()
            .unwrap_or_else(|| panic!("{machine}: a word of a tool result is found"));
        assert_eq!(hit["in"], "tool", "{hit}");
        assert!(
            hit["snippet"].as_str().unwrap().contains("[println"),
            "{hit}"
        );
        let out = agentsync(&["--data-dir", data, "search", "println"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("(tool)"), "{text}");

        let session = hit["session"].as_str().unwrap();
        let out = agentsync(&["--data-dir", data, "show", session]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("  → "), "tool calls are printed: {text}");
        assert!(text.contains("  ← "), "their results too: {text}");
        assert!(text.contains("println"), "{text}");
    }
    // A long result is cut visibly, and whole with --full.
    let log = dir.join("long-result.jsonl");
    let long = "word ".repeat(200) + "needle-at-the-end";
    let lines = [
        serde_json::json!({"type": "user", "sessionId": "5b1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e40",
            "uuid": "a1000000-0000-4000-8000-000000000001", "timestamp": "2026-11-30T10:00:00.000Z",
            "cwd": "/tmp/x", "message": {"role": "user", "content": "list it"}}),
        serde_json::json!({"type": "assistant", "sessionId": "5b1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e40",
            "uuid": "a1000000-0000-4000-8000-000000000002", "parentUuid": "a1000000-0000-4000-8000-000000000001",
            "timestamp": "2026-11-30T10:00:01.000Z", "cwd": "/tmp/x",
            "message": {"role": "assistant", "model": "m", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "cd /tmp/x\nmake frobnicate"}}]}}),
        serde_json::json!({"type": "user", "sessionId": "5b1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e40",
            "uuid": "a1000000-0000-4000-8000-000000000003", "parentUuid": "a1000000-0000-4000-8000-000000000002",
            "timestamp": "2026-11-30T10:00:02.000Z", "cwd": "/tmp/x",
            "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": long}]}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let data = dir.join("laptop");
    let data = data.to_str().unwrap();
    let out = agentsync(&["--data-dir", data, "ingest", log.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let out = agentsync(&["--data-dir", data, "show", "long-result"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("more characters; --full shows all"), "{text}");
    assert!(!text.contains("needle-at-the-end"), "{text}");
    let out = agentsync(&["--data-dir", data, "show", "long-result", "--full"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("needle-at-the-end"));
    let out = agentsync(&["--data-dir", data, "--json", "search", "needle"]);
    let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["in"], "tool", "{hits}");
    // A word at the start of a line of a tool's input (JSON `\n` before it) is a word.
    let out = agentsync(&["--data-dir", data, "--json", "search", "make frobnicate"]);
    let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["in"], "tool", "{hits}");
    assert!(
        hits[0]["snippet"]
            .as_str()
            .unwrap()
            .contains("[make] [frobnicate]"),
        "{hits}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19 item 7: `sync` says how many malformed lines each log it read had, and `status`
/// lists every log with malformed lines (totals kept across incremental reads).
#[test]
fn issue19_item7_malformed_lines_are_reported_per_log_in_sync_and_status() {
    let dir = fresh_dir("malformed");
    demo_json(&dir);
    let laptop = dir.join("laptop");
    let data = laptop.to_str().unwrap();
    let projects = dir.join("logs");
    let log = projects
        .join("-home-dev-x")
        .join("9d8e7f6a-0000-4000-8000-000000000001.jsonl");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let good = |n: u32| {
        serde_json::json!({"type": "user", "sessionId": "9d8e7f6a-0000-4000-8000-000000000001",
            "uuid": format!("9d8e7f6a-0000-4000-8000-{n:012}"), "timestamp": "2026-11-30T10:00:00.000Z",
            "cwd": "/tmp/x", "message": {"role": "user", "content": format!("line {n}")}})
        .to_string()
    };
    std::fs::write(
        &log,
        format!("{}\n{{not json\n{}\n[1,2\n", good(1), good(2)),
    )
    .unwrap();
    let config = laptop.join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap_or_default();
    text = text
        .lines()
        .filter(|l| !l.starts_with("claude_projects"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.insert_str(
        0,
        &format!("claude_projects = [{:?}]\n", projects.to_str().unwrap()),
    );
    std::fs::write(&config, text).unwrap();
    let out = agentsync(&["--data-dir", data, "sync"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{}: 2 malformed lines skipped (first: line 2:",
            log.display()
        )),
        "{stdout}"
    );
    let out = agentsync(&["--data-dir", data, "--json", "status"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["malformed_logs"][0]["lines"], 2, "{status:#}");
    // An incremental read adds to the file's total.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, format!("oops\n{}\n", good(3)).as_bytes()).unwrap();
    let out = agentsync(&["--data-dir", data, "sync"]);
    assert!(out.status.success(), "{out:?}");
    let out = agentsync(&["--data-dir", data, "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("logs with malformed lines (skipped): 1"),
        "{text}"
    );
    assert!(text.contains("3 lines (first: line 2:"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 11: a session whose log ends on a tool call that never got its result is published
/// whole once the log has been left alone for an hour (the agent is done with it), not held
/// back for ever.
#[test]
fn a_log_that_ends_on_an_unanswered_call_is_published_once_it_settles() {
    let dir = fresh_dir("unanswered");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("m");
    let data = data.to_str().unwrap();
    let log = dir.join("7e6d5c4b-0000-4000-8000-000000000001.jsonl");
    let sid = "7e6d5c4b-0000-4000-8000-000000000001";
    let lines = [
        serde_json::json!({"type": "user", "sessionId": sid, "uuid": "u1",
            "timestamp": "2026-11-30T10:00:00.000Z", "cwd": "/tmp/x",
            "message": {"role": "user", "content": "deploy it"}}),
        serde_json::json!({"type": "assistant", "sessionId": sid, "uuid": "u2", "parentUuid": "u1",
            "timestamp": "2026-11-30T10:00:01.000Z", "cwd": "/tmp/x",
            "message": {"role": "assistant", "model": "m", "content": [
                {"type": "text", "text": "running the deploy"},
                {"type": "tool_use", "id": "toolu_9", "name": "Bash", "input": {"command": "make deploy"}}]}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let count = || {
        let out = agentsync(&["--data-dir", data, "--json", "sessions"]);
        let sessions: Value = serde_json::from_slice(&out.stdout).unwrap();
        sessions[0]["message_count"].as_u64().unwrap_or(0)
    };
    let out = agentsync(&["--data-dir", data, "ingest", log.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        count(),
        1,
        "while the agent may still answer, the call's message waits"
    );
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let out = agentsync(&["--data-dir", data, "ingest", log.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        count(),
        2,
        "settled: published with the result it has (none)"
    );
    let out = agentsync(&["--data-dir", data, "show", sid]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("→ Bash"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 15, trust: keys are pinned on first sight and listed; another key for a pinned origin
/// is refused (and named, with the way out) until the user trusts it; a revoked origin's new
/// roots and edits are refused while what was imported stays.
#[test]
fn trust_lists_pins_accepts_a_new_key_and_revokes() {
    let dir = fresh_dir("trust");
    demo_json(&dir);
    let shared = dir.join("shared");
    let at = |machine: &str| dir.join(machine).to_str().unwrap().to_owned();
    let run = |machine: &str, args: &[&str]| {
        let data = at(machine);
        let mut all = vec!["--data-dir", data.as_str()];
        all.extend_from_slice(args);
        agentsync(&all)
    };
    let json = |machine: &str, args: &[&str]| -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = run(machine, &all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {out:?}"))
    };
    let sync = |machine: &str| run(machine, &["sync", shared.to_str().unwrap(), "--no-ingest"]);

    let listed = json("laptop", &["trust"]);
    let old_key = listed[0]["key"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["origin"], "desktop-3d4e5f", "{listed}");
    assert_eq!(listed[1]["local"], true, "{listed}");

    // The desktop's folder is lost; a new one takes the same origin with a new key and
    // publishes until its newest root is the origin's newest (sequence 3).
    let init = json("desktop2", &["init", "--origin", "desktop-3d4e5f"]);
    let new_key = init["public_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    sync("desktop2");
    for name in ["first", "second", "third"] {
        assert!(run("desktop2", &["rename", "0199", name]).status.success());
        sync("desktop2");
    }

    let out = sync("laptop");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("KeyMismatch") && text.contains("`agentsync trust`"),
        "{text}"
    );
    let listed = json("laptop", &["trust", "desktop-3d4e5f"]);
    assert_eq!(listed[0]["key"], old_key.as_str());
    assert_eq!(listed[0]["refused_key"], new_key.as_str(), "{listed}");
    let status = json("laptop", &["status"]);
    let desktop = &status["origins"][0];
    assert_eq!(desktop["origin"], "desktop-3d4e5f", "{status}");
    assert_eq!(
        (&desktop["key"], &desktop["refused_key"]),
        (
            &Value::from(old_key.as_str()),
            &Value::from(new_key.as_str())
        )
    );
    let name_of_0199 = || {
        json("laptop", &["sessions"])
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["native_id"].as_str().unwrap().starts_with("0199"))
            .map(|s| s["display_name"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_ne!(
        name_of_0199(),
        "third",
        "nothing the new key signed is applied"
    );

    // The user trusts the new key: its root and edits come in; the old key's are refused.
    let out = run("laptop", &["trust", "desktop-3d4e5f", &new_key]);
    assert!(out.status.success(), "{out:?}");
    sync("laptop");
    assert_eq!(name_of_0199(), "third");
    let listed = json("laptop", &["trust", "desktop-3d4e5f"]);
    assert_eq!(listed[0]["key"], new_key.as_str());
    // The old key's roots are still there, and refused, but never offered as a key to trust,
    // and not reported on every run either.
    let out = sync("laptop");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        json("laptop", &["trust", "desktop-3d4e5f"])[0]["refused_key"],
        Value::Null
    );

    // Revoked: a new edit of that origin is refused, what came in before stays.
    let out = run("laptop", &["trust", "desktop-3d4e5f", "--revoke"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        run("desktop2", &["rename", "0199", "fourth"])
            .status
            .success()
    );
    sync("desktop2");
    let out = sync("laptop");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Revoked"),
        "{out:?}"
    );
    assert_eq!(name_of_0199(), "third");
    assert_eq!(
        json("laptop", &["trust", "desktop-3d4e5f"])[0]["revoked"],
        true
    );
    assert_eq!(json("laptop", &["status"])["origins"][0]["revoked"], true);

    // An origin never seen can be revoked too, and is listed.
    assert!(
        run("laptop", &["trust", "stolen-0a0a0a", "--revoke"])
            .status
            .success()
    );
    let listed = json("laptop", &["trust"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["origin"] == "stolen-0a0a0a" && o["revoked"] == true),
        "{listed}"
    );

    // This machine's own key is no matter of trust; a key must be one.
    assert_eq!(
        run("laptop", &["trust", "laptop-0a1b2c", "--revoke"])
            .status
            .code(),
        Some(1)
    );
    let out = run("laptop", &["trust", "desktop-3d4e5f", "abc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not 64 lowercase hex digits"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19 item 5, tags: one spelling (`Bug` is `bug`), no separators inside a tag (`a,b` is
/// refused, exit 2, nothing recorded), the same rule for adding and removing.
#[test]
fn issue19_item5_tags_have_one_spelling_and_no_separators() {
    let dir = fresh_dir("tag-syntax");
    let report = demo_json(&dir);
    let data = dir.join("laptop");
    let data = data.to_str().unwrap();
    let id = report["sessions"][0]["id"].as_str().unwrap().to_owned();
    let tags = || -> Value {
        let out = agentsync(&["--data-dir", data, "--json", "show", &id]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["tags"].clone()
    };
    let before = tags();
    for bad in ["a,b", "two words", "a;b"] {
        let out = agentsync(&["--data-dir", data, "tag", &id, bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("separate arguments"),
            "{out:?}"
        );
    }
    assert_eq!(tags(), before, "nothing recorded");
    let out = agentsync(&["--data-dir", data, "tag", &id, "+Bug", "BUG"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(tags(), serde_json::json!(["bug"]));
    let out = agentsync(&["--data-dir", data, "tag", &id, "-Bug"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(tags(), serde_json::json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}
