//! The sync engine natively and as the component's `engine` export, over the same folder
//! stores: reports and written files must be byte-identical.
//!
//! The wasm run needs the component: `cargo build -p agentsync-component --target wasm32-wasip2
//! --release` (scripts/test builds it and names it in `AGENTSYNC_COMPONENT`).

// The binary crate has no library; compile the two modules this test drives into it.
#[allow(dead_code)]
#[path = "../src/store.rs"]
mod store;
#[allow(dead_code)]
#[path = "../src/wasm.rs"]
mod wasm;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use agentsync_core::KeyRing;
use agentsync_core::sync::exchange::{self, ExchangeReport};
use agentsync_core::sync::import::{self, Import, ImportReport, ImportState};
use serde_json::Value;

use store::FolderStore;
use wasm::WasmEngine;

/// The origin importing the demo's two origins.
const LOCAL: &str = "server-9f8e7d";

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentsync-engine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A folder holding the demo's artifacts of `laptop-0a1b2c` and `desktop-3d4e5f`.
fn demo_folder(name: &str) -> PathBuf {
    let dir = fresh_dir(name);
    let out = Command::new(env!("CARGO_BIN_EXE_agentsync"))
        .args(["demo", "--dir", dir.to_str().unwrap(), "--json"])
        .output()
        .expect("the agentsync binary runs");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The two machines' artifacts meet in the demo's shared folder.
    dir.join("shared")
}

fn wasm_engine() -> WasmEngine {
    WasmEngine::load(&wasm::default_component_path().unwrap()).unwrap()
}

fn native_import(dir: &Path, state: ImportState) -> String {
    let import = Import::new(LOCAL.parse().unwrap(), state, BTreeSet::new());
    let report = import::run(import, &mut FolderStore::new(dir));
    serde_json::to_string(&report).unwrap()
}

#[test]
fn import_reports_are_byte_identical() {
    let dir = demo_folder("import");
    let mut engine = wasm_engine();
    let id = engine.add_store(Box::new(FolderStore::new(&dir)));

    let native = native_import(&dir, ImportState::default());
    let wasm = engine.import_from(id, LOCAL, "", "").unwrap();
    assert_eq!(native, wasm);
    let report: ImportReport = serde_json::from_str(&native).unwrap();
    assert!(!report.units.is_empty(), "the demo's sessions are imported");
    assert!(!report.events.is_empty(), "the demo's events are imported");
    assert_eq!(report.state.origins.len(), 2);
    assert!(report.quarantined.is_empty() && report.deferred.is_empty());

    // Resuming from the persisted state finds nothing new, on both engines.
    let state = serde_json::to_string(&report.state).unwrap();
    let native = native_import(&dir, report.state);
    let wasm = engine.import_from(id, LOCAL, &state, "").unwrap();
    assert_eq!(native, wasm);
    let again: ImportReport = serde_json::from_str(&native).unwrap();
    assert!(again.units.is_empty());

    let bad = engine.import_from(id, "Not An Origin", "", "").unwrap_err();
    assert!(format!("{bad:#}").contains("invalid input"), "{bad:#}");
    let bad = engine.import_from(id, LOCAL, "{", "").unwrap_err();
    assert!(format!("{bad:#}").contains("state-json"), "{bad:#}");
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[derive(serde::Serialize)]
struct Exchanged<'a> {
    report: &'a ExchangeReport,
    keyring: &'a KeyRing,
}

#[test]
fn exchanges_write_identical_folders() {
    let src = demo_folder("exchange-src");
    let (native_dst, wasm_dst) = (fresh_dir("exchange-native"), fresh_dir("exchange-wasm"));

    let mut keyring = KeyRing::default();
    let report = exchange::exchange(
        &mut FolderStore::new(&src),
        &mut FolderStore::new(&native_dst),
        &mut keyring,
    );
    let native = serde_json::to_string(&Exchanged {
        report: &report,
        keyring: &keyring,
    })
    .unwrap();

    let mut engine = wasm_engine();
    let a = engine.add_store(Box::new(FolderStore::new(&src)));
    let b = engine.add_store(Box::new(FolderStore::new(&wasm_dst)));
    let wasm = engine.exchange(a, b, "").unwrap();
    assert_eq!(native, wasm);

    assert!(!report.copied.is_empty(), "the demo's artifacts are copied");
    assert!(report.quarantined.is_empty() && report.deferred.is_empty());
    let parsed: Value = serde_json::from_str(&wasm).unwrap();
    assert_eq!(parsed["keyring"]["pinned"].as_object().unwrap().len(), 2);

    let (native_files, wasm_files) = (files(&native_dst), files(&wasm_dst));
    assert_eq!(native_files.len(), report.copied.len());
    assert_eq!(
        native_files.keys().collect::<Vec<_>>(),
        wasm_files.keys().collect::<Vec<_>>()
    );
    assert!(native_files == wasm_files, "the copies differ in bytes");

    // A store id the host never registered is the store's error, folded into the report.
    let again = engine.exchange(a, 7, "").unwrap();
    let again: Value = serde_json::from_str(&again).unwrap();
    assert!(
        !again["report"]["deferred"].as_array().unwrap().is_empty(),
        "{again}"
    );
}

/// Curation events of two origins, concurrent on one field, one of them for a session the
/// replaying machine does not have.
fn curation_events() -> Vec<agentsync_core::SignedEvent> {
    use agentsync_core::{HlcClock, LedgerState, Op, OriginId, SessionGid};
    let here: SessionGid = "laptop-0a1b2c~s-1".parse().unwrap();
    let missing: SessionGid = "laptop-0a1b2c~s-2".parse().unwrap();
    let mut events = Vec::new();
    for (origin, name, wall) in [
        ("laptop-0a1b2c", "mine", 1_000),
        ("desktop-3d4e5f", "theirs", 2_000),
    ] {
        let origin: OriginId = origin.parse().unwrap();
        let mut ledger = LedgerState::default();
        let mut clock = HlcClock::default();
        for (session, op) in [
            (&here, Op::Rename { name: name.into() }),
            (&here, Op::Star),
            (&missing, Op::TagAdd { tag: "t".into() }),
        ] {
            events.push(
                ledger
                    .edit(&mut clock, wall, &origin, session.clone(), op)
                    .unwrap(),
            );
        }
    }
    events
}

#[test]
fn replay_gives_the_same_ledger_natively_and_in_the_component() {
    use agentsync_core::{HlcClock, LedgerState, SessionGid};
    let events = curation_events();
    let present: BTreeSet<SessionGid> = ["laptop-0a1b2c~s-1".parse().unwrap()].into();
    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    let replay = state.replay(&mut clock, 10_000, events.clone(), &|g| present.contains(g));
    assert_eq!(replay.deferred.len(), 2, "the missing session's tags wait");
    assert_eq!(
        state.conflicts().len(),
        1,
        "the concurrent renames conflict"
    );
    let native = serde_json::json!({
        "clock": clock.last().to_string(),
        "replay": replay,
        "state": state,
    });
    let wasm = wasm_engine()
        .replay(
            "",
            "",
            10_000,
            &serde_json::to_string(&events).unwrap(),
            &serde_json::to_string(&present).unwrap(),
        )
        .unwrap();
    // Same values; the component writes struct fields in declaration order.
    let wasm: Value = serde_json::from_str(&wasm).unwrap();
    assert_eq!(wasm, native);
}
