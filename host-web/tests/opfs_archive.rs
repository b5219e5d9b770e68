//! The viewer's archive in this browser's storage (OPFS, through SQLite's VFS), in a dedicated
//! worker of headless Chromium as the page has it: an archive made by an earlier version is
//! announced before it is brought up to date, and only then.
//!
//! `cargo test -p agentsync-web --target wasm32-unknown-unknown` (see `conformance.rs`).
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::rc::Rc;

use agentsync_web::Viewer;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// The file the viewer keeps its archive in (`viewer.rs`).
const DATABASE: &str = "agentsync.db";

async fn open(on_upgrade: &js_sys::Function) -> Viewer {
    Viewer::open(Some(on_upgrade.clone()))
        .await
        .map_err(JsValue::from)
        .expect("the archive opens")
}

#[wasm_bindgen_test]
async fn an_archive_of_an_earlier_version_is_announced_then_brought_up_to_date() {
    let announced = Rc::new(Cell::new(0));
    let counter = announced.clone();
    let notice = Closure::<dyn FnMut()>::new(move || counter.set(counter.get() + 1));
    let on_upgrade: &js_sys::Function = notice.as_ref().unchecked_ref();

    let viewer = open(on_upgrade).await;
    let info: serde_json::Value =
        serde_json::from_str(&viewer.info().map_err(JsValue::from).expect("info"))
            .expect("info is JSON");
    assert_eq!(info["storage"], "opfs", "{info}");
    assert_eq!(announced.get(), 0, "a new archive needs no upgrade");
    drop(viewer);

    let current: i64 = {
        let conn = rusqlite::Connection::open(DATABASE).expect("the same file, through OPFS");
        let current = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        // Back to the version before the tool text was read out of the stored messages.
        conn.pragma_update(None, "user_version", current - 1)
            .expect("an earlier version");
        current
    };
    let viewer = open(on_upgrade).await;
    assert_eq!(announced.get(), 1, "the upgrade is announced");
    drop(viewer);

    let conn = rusqlite::Connection::open(DATABASE).expect("reopen");
    let upgraded: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(upgraded, current);
    drop(conn);
    drop(open(on_upgrade).await);
    assert_eq!(announced.get(), 1, "an archive up to date is not announced");
}
