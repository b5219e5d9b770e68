//! The worker's handle on the viewer: JSON in, JSON out, errors as JavaScript `Error`s whose
//! message says what to fix.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use agentsync_archive::Archive;
use agentsync_core::{OriginId, OriginKey};
use agentsync_remote::S3Bucket;
use anyhow::{Context as _, Result, anyhow, bail};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;

use crate::connection::Connection;
use crate::{queries, sync_run};

/// The archive's file in the OPFS pool.
const DATABASE: &str = "agentsync.db";

#[wasm_bindgen]
pub struct Viewer {
    inner: Rc<Inner>,
}

struct Inner {
    archive: RefCell<Archive>,
    origin: OriginId,
    key: OriginKey,
    /// `opfs` (kept across visits) or `memory` (gone with the page).
    storage: &'static str,
    syncing: Cell<bool>,
}

fn js_error(e: anyhow::Error) -> JsError {
    JsError::new(&format!("{e:#}"))
}

fn parse<T: DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).with_context(|| format!("a request the viewer cannot read: {json}"))
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let crypto: web_sys::Crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| anyhow!("this browser has no crypto.getRandomValues"))?;
    let mut bytes = [0u8; N];
    crypto
        .get_random_values_with_u8_array(&mut bytes)
        .map_err(|e| anyhow!("crypto.getRandomValues failed: {e:?}"))?;
    Ok(bytes)
}

/// OPFS's synchronous access handles exist only in a dedicated worker.
fn in_dedicated_worker() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &"FileSystemSyncAccessHandle".into()).unwrap_or(false)
}

/// `on_upgrade` is called first when the archive was made by an earlier version: bringing it
/// up to date can take a while (a re-index), and the page says so meanwhile.
async fn open_archive(on_upgrade: Option<&js_sys::Function>) -> Result<(Archive, &'static str)> {
    if !in_dedicated_worker() {
        return Ok((Archive::open_in_memory()?, "memory"));
    }
    let config = sqlite_wasm_vfs::sahpool::OpfsSAHPoolCfg::default();
    sqlite_wasm_vfs::sahpool::install::<sqlite_wasm_rs::WasmOsCallback>(&config, true)
        .await
        .map_err(|e| {
            anyhow!(
                "the archive in this browser's storage (OPFS) cannot be opened: {e:?}. Is the \
                 viewer open in another tab? Close it and reload."
            )
        })?;
    let path = Path::new(DATABASE);
    if let Some(on_upgrade) = on_upgrade
        && Archive::upgrade_pending(path).unwrap_or(false)
    {
        // Only a notice: a failing callback must not keep the archive closed.
        let _ = on_upgrade.call0(&JsValue::NULL);
    }
    Ok((Archive::open(path)?, "opfs"))
}

#[wasm_bindgen]
impl Viewer {
    /// Opens (or creates) this browser's archive and its identity as an origin.
    /// `on_upgrade()`, if given, is called first when the archive must be brought up to date.
    pub async fn open(on_upgrade: Option<js_sys::Function>) -> Result<Viewer, JsError> {
        Self::open_inner(on_upgrade).await.map_err(js_error)
    }

    async fn open_inner(on_upgrade: Option<js_sys::Function>) -> Result<Viewer> {
        let (archive, storage) = open_archive(on_upgrade.as_ref()).await?;
        let (origin, key) = match archive.identity()? {
            Some(identity) => identity,
            None => {
                let suffix: [u8; 3] = random_bytes()?;
                let origin: OriginId =
                    format!("web-{:02x}{:02x}{:02x}", suffix[0], suffix[1], suffix[2]).parse()?;
                let key = OriginKey::from_secret(random_bytes()?);
                archive.create_identity(&origin, &key, now_ms() as i64)?
            }
        };
        Ok(Viewer {
            inner: Rc::new(Inner {
                archive: RefCell::new(archive),
                origin,
                key,
                storage,
                syncing: Cell::new(false),
            }),
        })
    }

    /// `{origin, storage, settings, last_sync, unpublished}`.
    pub fn info(&self) -> Result<String, JsError> {
        self.inner.info().map_err(js_error)
    }

    /// Saves where to sync from (see `Connection`); answers like `info`.
    pub fn connect(&self, json: &str) -> Result<String, JsError> {
        let run = || -> Result<String> {
            Connection::save(&self.inner.archive.borrow(), parse(json)?)?;
            self.inner.info()
        };
        run().map_err(js_error)
    }

    /// Syncs with the bucket; `on_progress(stage, done, total)`, and `on_listed(added)` when
    /// sessions were added to the list ahead of their messages. Resolves to the report.
    pub fn sync(
        &self,
        on_progress: js_sys::Function,
        on_listed: js_sys::Function,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if inner.syncing.replace(true) {
                return Err(JsError::new("a sync is running already").into());
            }
            let result = inner.sync(&on_progress, &on_listed).await;
            inner.syncing.set(false);
            result
                .map(|report| JsValue::from_str(&report.to_string()))
                .map_err(|e| js_error(e).into())
        })
    }

    pub fn sessions(&self, json: &str) -> Result<String, JsError> {
        self.answer(json, queries::sessions)
    }

    pub fn search(&self, json: &str) -> Result<String, JsError> {
        self.answer(json, queries::search)
    }

    pub fn session(&self, json: &str) -> Result<String, JsError> {
        self.answer(json, queries::session)
    }

    pub fn machines(&self) -> Result<String, JsError> {
        queries::machines(&self.inner.archive.borrow())
            .map(|v| v.to_string())
            .map_err(js_error)
    }

    /// One edit (`{id, op, value}`); published by the next sync.
    pub fn curate(&self, json: &str) -> Result<String, JsError> {
        let run = || -> Result<String> {
            let request = parse(json)?;
            let mut archive = self.inner.archive.borrow_mut();
            Ok(queries::curate(&mut archive, &self.inner.origin, now_ms(), request)?.to_string())
        };
        run().map_err(js_error)
    }
}

impl Viewer {
    fn answer<T: DeserializeOwned>(
        &self,
        json: &str,
        query: impl FnOnce(&Archive, T) -> Result<Value>,
    ) -> Result<String, JsError> {
        let run = || -> Result<String> {
            let request = parse(json)?;
            Ok(query(&self.inner.archive.borrow(), request)?.to_string())
        };
        run().map_err(js_error)
    }
}

impl Inner {
    fn info(&self) -> Result<String> {
        let archive = self.archive.borrow();
        let settings = Connection::load(&archive)?.map(|c| c.view());
        Ok(json!({
            "origin": self.origin.as_str(),
            "storage": self.storage,
            "settings": settings,
            "last_sync": archive.last_sync()?,
            "unpublished": archive.unpublished_events()?.len(),
        })
        .to_string())
    }

    async fn sync(
        &self,
        on_progress: &js_sys::Function,
        on_listed: &js_sys::Function,
    ) -> Result<Value> {
        let Some(connection) = Connection::load(&self.archive.borrow())? else {
            bail!("connect to a bucket first (Settings)");
        };
        let bucket = S3Bucket::new(
            &connection.bucket,
            &connection.prefix,
            connection.s3_settings(),
            reqwest::Client::new(),
        );
        let request = sync_run::SyncRequest {
            origin: &self.origin,
            key: &self.key,
            bucket: &bucket,
            target_name: connection.target_name(),
            now_ms: &now_ms,
        };
        sync_run::run(
            &self.archive,
            request,
            |p| {
                // A progress callback that throws must not stop the sync.
                let _ = on_progress.call3(
                    &JsValue::NULL,
                    &p.stage.label().into(),
                    &(p.done as f64).into(),
                    &(p.total as f64).into(),
                );
            },
            |added| {
                let _ = on_listed.call1(&JsValue::NULL, &(added as f64).into());
            },
        )
        .await
    }
}
