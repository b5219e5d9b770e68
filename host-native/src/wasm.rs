//! The core as a WebAssembly component under wasmtime (`component/`, world `agentsync` of
//! `wit/agentsync.wit`).
//!
//! The component imports `store`: the host answers it from a table of stores
//! (`Box<dyn agentsync_core::sync::store::Store + Send>`, e.g. `crate::store::FolderStore`) kept
//! in the wasmtime store's data and named by their index, the WIT `store-id`. The conformance
//! runner registers none.
//!
//! The component is a std `wasm32-wasip2` build, so besides the world's own interfaces it imports
//! the WASI preview-2 interfaces its std uses; they are linked with a context that has no
//! preopened folders, no environment and no arguments, and only stderr (so that a panic in the
//! guest is reported).

use std::path::{Path, PathBuf};

use agentsync_core::sync::store as core_store;
use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        world: "agentsync",
        path: "../wit/agentsync.wit",
    });
}

use bindings::agentsync::core::store as wit_store;
use bindings::exports::agentsync::core::engine::EngineError;

/// The environment variable naming the component file.
pub const COMPONENT_ENV: &str = "AGENTSYNC_COMPONENT";

/// Where `cargo build -p agentsync-component --target wasm32-wasip2 --release` writes the
/// component, relative to the target folder.
const COMPONENT_IN_TARGET: &str = "wasm32-wasip2/release/agentsync_component.wasm";

/// The command that builds the component.
pub const BUILD_COMMAND: &str =
    "cargo build -p agentsync-component --target wasm32-wasip2 --release";

struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The stores the component reaches through its `store` import; `store-id` is the index.
    stores: Vec<Box<dyn core_store::Store + Send>>,
}

impl HostState {
    fn store(
        &mut self,
        op: &str,
        id: u32,
        key: &str,
    ) -> Result<&mut dyn core_store::Store, wit_store::StoreError> {
        match self.stores.get_mut(id as usize) {
            Some(store) => Ok(store.as_mut()),
            None => Err(wit_store::StoreError {
                op: op.into(),
                key: key.into(),
                reason: format!("no store with id {id}"),
                transient: false,
            }),
        }
    }
}

fn wit_error(e: core_store::StoreError) -> wit_store::StoreError {
    wit_store::StoreError {
        op: e.op,
        key: e.key,
        reason: e.reason,
        transient: e.transient,
    }
}

impl wit_store::Host for HostState {
    fn list_keys(
        &mut self,
        store_id: u32,
        prefix: String,
        start_after: Option<String>,
    ) -> Result<wit_store::KeyPage, wit_store::StoreError> {
        let page = self
            .store("list", store_id, &prefix)?
            .list_keys(&prefix, start_after.as_deref())
            .map_err(wit_error)?;
        Ok(wit_store::KeyPage {
            entries: page
                .entries
                .into_iter()
                .map(|l| wit_store::Listing {
                    key: l.key,
                    modified_ms: l.modified_ms,
                    size: l.size,
                })
                .collect(),
            truncated: page.truncated,
        })
    }

    fn get(
        &mut self,
        store_id: u32,
        key: String,
    ) -> Result<Option<Vec<u8>>, wit_store::StoreError> {
        self.store("get", store_id, &key)?
            .get(&key)
            .map_err(wit_error)
    }

    fn put_if_absent(
        &mut self,
        store_id: u32,
        key: String,
        bytes: Vec<u8>,
    ) -> Result<wit_store::PutOutcome, wit_store::StoreError> {
        match self
            .store("put", store_id, &key)?
            .put_if_absent(&key, &bytes)
        {
            Ok(core_store::PutOutcome::Created) => Ok(wit_store::PutOutcome::Created),
            Ok(core_store::PutOutcome::Exists) => Ok(wit_store::PutOutcome::Exists),
            Err(e) => Err(wit_error(e)),
        }
    }

    fn delete(&mut self, store_id: u32, key: String) -> Result<(), wit_store::StoreError> {
        self.store("delete", store_id, &key)?
            .delete(&key)
            .map_err(wit_error)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One instance of the component, reused for every call.
pub struct CoreComponent {
    store: Store<HostState>,
    core: bindings::Agentsync,
}

/// The component seen as the sync engine (`engine` export).
#[allow(dead_code)] // the CLI has no sync command yet; tests/engine.rs drives it
pub type WasmEngine = CoreComponent;

impl CoreComponent {
    /// Compiles and instantiates the component in `path`.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            anyhow::bail!(
                "no WebAssembly component at {}: build it with `{BUILD_COMMAND}`",
                path.display()
            );
        }
        let engine = Engine::default();
        let component = Component::from_file(&engine, path)
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| format!("cannot load the component {}", path.display()))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("{e:?}"))
            .context("linking WASI")?;
        wit_store::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("{e:?}"))
            .context("linking the store import")?;
        let wasi = WasiCtx::builder().inherit_stderr().build();
        let mut store = Store::new(
            &engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                stores: Vec::new(),
            },
        );
        let core = bindings::Agentsync::instantiate(&mut store, &component, &linker)
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| format!("cannot instantiate the component {}", path.display()))?;
        Ok(CoreComponent { store, core })
    }

    /// `conformance.run-vector`: one vector's JSON in, its result line out.
    pub fn run_vector(&mut self, vector_json: &str) -> Result<String> {
        self.core
            .agentsync_core_conformance()
            .call_run_vector(&mut self.store, vector_json)
            .map_err(|e| anyhow!("{e:?}"))
            .context("the component trapped")
    }
}

/// The sync engine: stores registered with [`CoreComponent::add_store`], plans run by the
/// component's `engine` export. Results are the JSON the native core would serialize.
#[allow(dead_code)] // the CLI has no sync command yet; tests/engine.rs drives it
impl CoreComponent {
    /// Hands a store to the component; returns its `store-id`.
    pub fn add_store(&mut self, store: Box<dyn core_store::Store + Send>) -> u32 {
        let stores = &mut self.store.data_mut().stores;
        stores.push(store);
        u32::try_from(stores.len() - 1).expect("fewer than 2^32 stores")
    }

    /// `engine.import-from`: the `ImportReport` JSON (`""` arguments: fresh state, no purges).
    pub fn import_from(
        &mut self,
        store_id: u32,
        local_origin: &str,
        state_json: &str,
        purged_json: &str,
    ) -> Result<String> {
        let result = self
            .core
            .agentsync_core_engine()
            .call_import_from(
                &mut self.store,
                store_id,
                local_origin,
                state_json,
                purged_json,
            )
            .map_err(|e| anyhow!("{e:?}"))
            .context("the component trapped")?;
        result.map_err(engine_error)
    }

    /// `engine.replay`: `{"clock": hlc, "replay": Replay, "state": LedgerState}` as JSON.
    pub fn replay(
        &mut self,
        state_json: &str,
        clock: &str,
        wall_ms: u64,
        events_json: &str,
        present_json: &str,
    ) -> Result<String> {
        let result = self
            .core
            .agentsync_core_engine()
            .call_replay(
                &mut self.store,
                state_json,
                clock,
                wall_ms,
                events_json,
                present_json,
            )
            .map_err(|e| anyhow!("{e:?}"))
            .context("the component trapped")?;
        result.map_err(engine_error)
    }

    /// `engine.exchange`: `{"report": ExchangeReport, "keyring": KeyRing}` as JSON.
    pub fn exchange(&mut self, a: u32, b: u32, keyring_json: &str) -> Result<String> {
        let result = self
            .core
            .agentsync_core_engine()
            .call_exchange(&mut self.store, a, b, keyring_json)
            .map_err(|e| anyhow!("{e:?}"))
            .context("the component trapped")?;
        result.map_err(engine_error)
    }
}

fn engine_error(e: EngineError) -> anyhow::Error {
    match e {
        EngineError::InvalidInput(reason) => anyhow!("invalid input: {reason}"),
        EngineError::Store(e) => anyhow!("store {} {:?}: {}", e.op, e.key, e.reason),
    }
}

/// The component to run: `$AGENTSYNC_COMPONENT` if set, else the release build in the target
/// folder this executable was built into (`<target>/<profile>/agentsync`, or
/// `<target>/<profile>/deps/…` for a test).
pub fn default_component_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(COMPONENT_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            anyhow::bail!(
                "${COMPONENT_ENV} names {}, which is not a file; build it with `{BUILD_COMMAND}`",
                path.display()
            );
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot locate the running executable")?;
    let mut profile_dir = exe.parent();
    if profile_dir.is_some_and(|dir| dir.ends_with("deps")) {
        profile_dir = profile_dir.and_then(Path::parent);
    }
    // `<target>/<profile>`, or `<target>/<triple>/<profile>` for a cross build.
    let target_dir = profile_dir.and_then(Path::parent);
    let candidates: Vec<PathBuf> = target_dir
        .into_iter()
        .chain(target_dir.and_then(Path::parent))
        .map(|dir| dir.join(COMPONENT_IN_TARGET))
        .collect();
    match candidates.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => anyhow::bail!(
            "no WebAssembly component at {}: build it with `{BUILD_COMMAND}`, or name it with \
             --component or ${COMPONENT_ENV}",
            candidates
                .first()
                .map_or_else(|| COMPONENT_IN_TARGET.into(), |p| p.display().to_string())
        ),
    }
}

#[cfg(test)]
mod tests {
    //! The typed `format` exports against the native core, on the `open` and `seal` vectors.

    use agentsync_core::{Artifact, ArtifactId, ArtifactKey, frame};
    use serde_json::Value;

    use super::bindings::agentsync::core::types::{ArtifactKind, FormatError};
    use super::*;

    fn class(e: &FormatError) -> &'static str {
        match e {
            FormatError::SizeLimit(_) => "SizeLimit",
            FormatError::CountLimit(_) => "CountLimit",
            FormatError::StringLimit(_) => "StringLimit",
            FormatError::NestingLimit(_) => "NestingLimit",
            FormatError::IdMismatch(_) => "IdMismatch",
            FormatError::Truncated(_) => "Truncated",
            FormatError::FutureVersion(_) => "FutureVersion",
            FormatError::UnsupportedStage(_) => "UnsupportedStage",
            FormatError::Malformed(_) => "Malformed",
            FormatError::InvalidName(_) => "InvalidName",
            FormatError::KindMismatch(_) => "KindMismatch",
            FormatError::OriginMismatch(_) => "OriginMismatch",
            FormatError::BadSignature(_) => "BadSignature",
            FormatError::KeyMismatch(_) => "KeyMismatch",
            FormatError::Decompress(_) => "Decompress",
            FormatError::Compress(_) => "Compress",
            FormatError::Other(o) => panic!("unmapped core error class {}", o.class),
        }
    }

    fn hex(v: &Value, field: &str) -> Vec<u8> {
        hex_decode(v[field].as_str().unwrap())
    }

    fn hex_decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn format_exports_agree_with_the_native_core() {
        let path = default_component_path().unwrap();
        let mut c = CoreComponent::load(&path).unwrap();
        let vectors_file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/format/stored.json");
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(vectors_file).unwrap()).unwrap();
        let (mut opened, mut rejected, mut sealed) = (0, 0, 0);
        for v in doc["vectors"].as_array().unwrap() {
            let format = c.core.agentsync_core_format();
            match v["op"].as_str().unwrap() {
                "open" => {
                    let key = v["key"].as_str().unwrap();
                    let stored = hex(v, "stored_hex");
                    let got = format.call_open(&mut c.store, key, &stored).unwrap();
                    let want = key
                        .parse::<ArtifactKey>()
                        .and_then(|k| Artifact::open(&k, &stored));
                    match (got, want) {
                        (Ok(json), Ok(artifact)) => {
                            assert_eq!(json, serde_json::to_string(&artifact).unwrap());
                            opened += 1;
                        }
                        (Err(e), Err(want)) => {
                            assert_eq!(class(&e), want.class(), "{}", v["name"]);
                            rejected += 1;
                        }
                        (got, want) => panic!("{}: {got:?} vs {want:?}", v["name"]),
                    }
                    let info = format.call_parse_key(&mut c.store, key).unwrap();
                    let native: ArtifactKey = key.parse().unwrap();
                    let info = info.unwrap();
                    assert_eq!(info.id, native.id().to_hex());
                    assert_eq!(info.origin, native.origin().as_str());
                    let seq = match native {
                        ArtifactKey::Root { seq, .. } => Some(seq),
                        _ => None,
                    };
                    assert_eq!(info.seq, seq);
                }
                "seal" => {
                    let canonical = hex(v, "canonical_hex");
                    let kind = match v["kind"].as_str().unwrap() {
                        "segment" => ArtifactKind::Segment,
                        other => panic!("no seal vector of kind {other} expected"),
                    };
                    let got = format.call_seal(&mut c.store, kind, &canonical).unwrap();
                    let want = frame::seal(agentsync_core::ArtifactKind::Segment, &canonical, None);
                    assert_eq!(got.unwrap(), want.unwrap());
                    let id = format.call_content_id(&mut c.store, &canonical).unwrap();
                    assert_eq!(id, ArtifactId::of(&canonical).to_hex());
                    sealed += 1;
                }
                _ => {}
            }
        }
        assert!(opened >= 3 && rejected >= 5 && sealed >= 1);

        let format = c.core.agentsync_core_format();
        let bad = format.call_parse_key(&mut c.store, "not/a/key").unwrap();
        assert_eq!(class(&bad.unwrap_err()), "InvalidName");
    }
}
