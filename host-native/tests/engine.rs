//! The sync engine natively and inside the component (`engine.sync-engine`), over copies of the
//! same folder stores: every output, and every file written, must be identical.
//!
//! The wasm run needs the component: `cargo build -p agentsync-component --target wasm32-wasip2
//! --release` (scripts/test builds it and names it in `AGENTSYNC_COMPONENT`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentsync_core::sync::engine::{
    Input, Output, SessionData, Stages, SyncConfig, SyncEngine, SyncState,
};
use agentsync_core::sync::store::{StoreId, answer_one};
use agentsync_core::{Message, OriginKey, Session};

use agentsync::store::FolderStore;
use agentsync::sync::Driver;
use agentsync::wasm::{self, ComponentEngine};

/// The origin syncing with the demo's two origins.
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
    dir.join("shared")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in files(from) {
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn session() -> (Session, Vec<Message>) {
    let session: Session = serde_json::from_value(serde_json::json!({
        "native_id": "s1", "agent": "claude-code", "parser": "claude",
        "project": "p", "cwd": "", "git_branch": "", "started_ms": null, "ended_ms": null,
        "title": "local", "first_message": "", "parent_session": "", "relationship": "",
        "user_message_count": 1
    }))
    .unwrap();
    let messages = (0..5)
        .map(|ordinal| Message {
            ordinal,
            role: if ordinal % 2 == 0 {
                "user"
            } else {
                "assistant"
            }
            .into(),
            content: format!("message {ordinal}"),
            ..Message::default()
        })
        .collect();
    (session, messages)
}

/// Runs one engine to the end against a mirror and a target folder, recording every output.
fn run(
    mut poll: impl FnMut() -> Output,
    mut handle: impl FnMut(Input),
    mirror: &Path,
    target: &Path,
) -> Vec<String> {
    let (session, messages) = session();
    let mut mirror = FolderStore::new(mirror);
    let mut target = FolderStore::new(target);
    let mut log = Vec::new();
    loop {
        let output = poll();
        // Progress and the compressed bytes of own artifacts are allowed to differ (C zstd is
        // not in the component); everything else must match.
        match &output {
            Output::Progress(_) => {}
            Output::Store(requests) => log.push(format!(
                "store {:?}",
                requests
                    .iter()
                    .map(|r| (r.store, r.request.subject().to_owned()))
                    .collect::<Vec<_>>()
            )),
            // The heal mark holds the target's file times, which differ between the runs.
            Output::Done(report) => {
                let mut report = report.clone();
                assert!(report.heal_mark.is_some());
                report.heal_mark = None;
                log.push(serde_json::to_string(&Output::Done(report)).unwrap());
            }
            other => log.push(serde_json::to_string(other).unwrap()),
        }
        match output {
            Output::Store(requests) => {
                let responses = requests
                    .iter()
                    .map(|r| match r.store {
                        StoreId::Mirror => answer_one(&mut mirror, &r.request),
                        StoreId::Target => answer_one(&mut target, &r.request),
                    })
                    .collect();
                handle(Input::Store(responses));
            }
            Output::ReadSessions(reads) => handle(Input::Sessions(
                reads
                    .iter()
                    .map(|_| SessionData {
                        session: session.clone(),
                        messages: messages.clone(),
                        usage_events: Vec::new(),
                    })
                    .collect(),
            )),
            Output::CheckPresent(gids) => handle(Input::Present(vec![true; gids.len()])),
            Output::Done(_) => return log,
            _ => {}
        }
    }
}

fn config() -> (SyncConfig, SyncState) {
    let config = SyncConfig {
        origin: LOCAL.parse().unwrap(),
        key: OriginKey::from_secret([7; 32]),
        now_ms: 1_764_078_194_000,
        target: true,
        stages: Stages::ALL,
        last_sync_ms: None,
        heal_every_ms: 0,
    };
    let state = SyncState {
        revisions: vec![("s1".parse().unwrap(), "1".into())],
        ..SyncState::default()
    };
    (config, state)
}

#[test]
fn a_whole_sync_run_is_identical_natively_and_in_the_component() {
    let shared = demo_folder("demo");
    let root = fresh_dir("runs");
    let (native_target, wasm_target) = (root.join("native-target"), root.join("wasm-target"));
    copy_dir(&shared, &native_target);
    copy_dir(&shared, &wasm_target);

    let (native_config, native_state) = config();
    let engine = std::cell::RefCell::new(SyncEngine::new(native_config, native_state));
    let native = run(
        || engine.borrow_mut().poll().unwrap(),
        |input| engine.borrow_mut().handle(input).unwrap(),
        &root.join("native-mirror"),
        &native_target,
    );

    let (wasm_config, wasm_state) = config();
    let component = wasm::default_component_path().unwrap();
    let wasm_engine = std::cell::RefCell::new(
        ComponentEngine::start(&component, &wasm_config, &wasm_state).unwrap(),
    );
    let wasm = run(
        || wasm_engine.borrow_mut().poll().unwrap(),
        |input| wasm_engine.borrow_mut().handle(input).unwrap(),
        &root.join("wasm-mirror"),
        &wasm_target,
    );

    assert_eq!(native.len(), wasm.len());
    for (n, w) in native.iter().zip(&wasm) {
        assert_eq!(n, w);
    }
    // Both imported the demo's five sessions and published their own.
    let applied: usize = native
        .iter()
        .filter(|l| l.starts_with("{\"Apply\""))
        .map(|l| l.matches("\"gid\"").count())
        .sum();
    assert_eq!(applied, 5, "{native:#?}");
    let keys = |dir: &Path| files(dir).into_keys().collect::<Vec<_>>();
    assert_eq!(keys(&native_target), keys(&wasm_target));
    assert_eq!(
        keys(&root.join("native-mirror")),
        keys(&root.join("wasm-mirror"))
    );
    let _ = std::fs::remove_dir_all(&root);
}
