//! `agentsync conformance`: the native core and the core's WebAssembly component must print
//! byte-identical result lines for every vector, and the expected-failures list must be exact.
//!
//! The wasm run needs the component: `cargo build -p agentsync-component --target wasm32-wasip2
//! --release` (scripts/test builds it and names it in `AGENTSYNC_COMPONENT`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn agentsync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentsync"))
        .args(args)
        .output()
        .expect("the agentsync binary runs")
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agentsync-conformance-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn native_and_wasm_print_identical_result_lines() {
    let dir = vectors_dir();
    let dir = dir.to_str().unwrap();
    let native = agentsync(&["conformance", "--engine", "native", dir]);
    assert!(native.status.success(), "native: {}", stderr(&native));
    let wasm = agentsync(&["conformance", "--engine", "wasm", dir]);
    assert!(wasm.status.success(), "wasm: {}", stderr(&wasm));

    let native_text = String::from_utf8(native.stdout).unwrap();
    let wasm_text = String::from_utf8(wasm.stdout).unwrap();
    let lines = native_text.lines().count();
    assert!(lines >= 100, "only {lines} result lines");
    for (n, w) in native_text.lines().zip(wasm_text.lines()) {
        assert_eq!(n, w, "native and wasm result lines differ");
    }
    assert_eq!(native_text, wasm_text);
    // The browser's conformance test (host-web/tests/conformance.rs) compares its lines with
    // this file, so it must hold exactly what the native core prints.
    let golden = vectors_dir().join("results.jsonl");
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&golden, &native_text).unwrap();
    }
    let kept = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        kept == native_text,
        "tests/vectors/results.jsonl is stale: rerun this test with UPDATE_VECTORS=1"
    );
    for line in native_text.lines() {
        let result: Value = serde_json::from_str(line).unwrap();
        assert!(result["name"].is_string(), "{line}");
    }
}

/// A copy of a small vector file in a fresh folder, and the name of its first vector.
fn small_vectors(name: &str) -> (PathBuf, String) {
    let dir = fresh_dir(name);
    let text = std::fs::read_to_string(vectors_dir().join("format/names.json")).unwrap();
    std::fs::write(dir.join("names.json"), &text).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let first = doc["vectors"][0]["name"].as_str().unwrap().to_owned();
    (dir, first)
}

#[test]
fn a_listed_vector_that_passes_fails_the_run() {
    let (dir, first) = small_vectors("stale");
    let dir_arg = dir.to_str().unwrap();
    let ok = agentsync(&["conformance", "--engine", "native", dir_arg]);
    assert!(ok.status.success(), "{}", stderr(&ok));

    let list = dir.join("xfail.txt");
    std::fs::write(&list, format!("# allowed to fail\n{first}\n")).unwrap();
    let stale = agentsync(&[
        "conformance",
        "--engine",
        "native",
        "--expected-failures",
        list.to_str().unwrap(),
        dir_arg,
    ]);
    assert!(!stale.status.success());
    assert!(
        stderr(&stale).contains(&format!("STALE {first}")),
        "{}",
        stderr(&stale)
    );
    // The list is found in the first folder by default.
    std::fs::rename(&list, dir.join("expected-failures.txt")).unwrap();
    let stale = agentsync(&["conformance", "--engine", "native", dir_arg]);
    assert!(!stale.status.success(), "{}", stderr(&stale));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unlisted_failure_fails_the_run_and_a_listed_one_does_not() {
    let (dir, first) = small_vectors("fail");
    let path = dir.join("names.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["vectors"][0]["expect"] = serde_json::json!({ "error": "NoSuchClass" });
    std::fs::write(&path, doc.to_string()).unwrap();
    let dir_arg = dir.to_str().unwrap();

    let failed = agentsync(&["conformance", "--engine", "native", dir_arg]);
    assert!(!failed.status.success());
    assert!(
        stderr(&failed).contains(&format!("FAIL {first}")),
        "{}",
        stderr(&failed)
    );
    // Every vector still prints its line.
    let lines = String::from_utf8(failed.stdout).unwrap().lines().count();
    assert_eq!(lines, doc["vectors"].as_array().unwrap().len());

    std::fs::write(dir.join("expected-failures.txt"), format!("{first}\n")).unwrap();
    let allowed = agentsync(&["conformance", "--engine", "native", dir_arg]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_component_is_named_with_the_build_command() {
    let dir = vectors_dir();
    let out = agentsync(&[
        "conformance",
        "--engine",
        "wasm",
        "--component",
        "/nonexistent/agentsync_component.wasm",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/agentsync_component.wasm"),
        "{err}"
    );
    assert!(err.contains("cargo build -p agentsync-component"), "{err}");
}
