//! The third host: every conformance vector run by the core compiled into this crate, in
//! headless Chromium, must print the very result lines the native core prints (kept in
//! `tests/vectors/results.jsonl`, which host-native's conformance test checks against the
//! native and the wasmtime runs).
//!
//! `cargo test -p agentsync-web --target wasm32-unknown-unknown` (the runner is
//! wasm-bindgen-test-runner, set in .cargo/config.toml; scripts/web ensure installs it).
#![cfg(target_arch = "wasm32")]

use agentsync_core::conformance::run_vector;
use serde_json::Value;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

include!(concat!(env!("OUT_DIR"), "/vectors.rs"));

const NATIVE_LINES: &str = include_str!("../../tests/vectors/results.jsonl");

#[wasm_bindgen_test]
fn every_vector_prints_the_native_result_line_in_chromium() {
    let mut lines = Vec::new();
    for (file, text) in VECTOR_FILES {
        let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let vectors = doc["vectors"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no vectors"));
        for vector in vectors {
            lines.push(run_vector(vector).to_string());
        }
    }
    let native: Vec<&str> = NATIVE_LINES.lines().collect();
    assert!(native.len() >= 100, "only {} native lines", native.len());
    for (i, (browser, native)) in lines.iter().zip(&native).enumerate() {
        assert_eq!(browser, native, "result line {i} differs");
    }
    assert_eq!(lines.len(), native.len(), "vector counts differ");
}
