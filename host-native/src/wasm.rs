//! The core as a WebAssembly component under wasmtime (`component/`, world `agentsync` of
//! `wit/agentsync.wit`).
//!
//! The component imports nothing of the world's own: its sync engine hands store requests out
//! as values ([`ComponentEngine`]), which the host loop answers like the native engine's.
//!
//! The component is a std `wasm32-wasip2` build, so besides the world's own interfaces it imports
//! the WASI preview-2 interfaces its std uses; they are linked with a context that has no
//! preopened folders, no environment and no arguments, and only stderr (so that a panic in the
//! guest is reported).

use std::path::{Path, PathBuf};

use agentsync_core::sync::store as core_store;
use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        world: "agentsync",
        path: "../wit/agentsync.wit",
    });
}

use agentsync_core::SessionGid;
use agentsync_core::sync::engine::{
    Input, Output, Progress, SessionRead, StageName, SyncConfig, SyncState,
};
use bindings::exports::agentsync::core::engine as wit;

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
        let component = compiled(&engine, path, cache_dir())?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("{e:?}"))
            .context("linking WASI")?;
        let wasi = WasiCtx::builder().inherit_stderr().build();
        let mut store = Store::new(
            &engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
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

/// A sync run inside the component: the core's engine as the WIT resource `sync-engine`,
/// driven by the same host loop as the native engine (`sync::Driver`).
pub struct ComponentEngine {
    component: CoreComponent,
    engine: ResourceAny,
}

impl ComponentEngine {
    pub fn start(path: &Path, config: &SyncConfig, state: &SyncState) -> Result<Self> {
        let mut component = CoreComponent::load(path)?;
        let wit_config = wit::Config {
            origin: config.origin.to_string(),
            secret_key: config.key.secret().to_vec(),
            now_ms: config.now_ms,
            has_target: config.target,
            run_export: config.stages.export,
            run_exchange: config.stages.exchange,
            run_import: config.stages.import,
            last_sync_ms: config.last_sync_ms,
            heal_every_ms: config.heal_every_ms,
        };
        let state_json = serde_json::to_string(state)?;
        let engine = component
            .core
            .agentsync_core_engine()
            .sync_engine()
            .call_start(&mut component.store, &wit_config, &state_json)
            .map_err(|e| anyhow!("{e:?}"))
            .context("the component trapped")?
            .map_err(engine_error)?;
        Ok(ComponentEngine { component, engine })
    }
}

impl crate::sync::Driver for ComponentEngine {
    fn poll(&mut self) -> Result<Output> {
        let output = self
            .component
            .core
            .agentsync_core_engine()
            .sync_engine()
            .call_poll(&mut self.component.store, self.engine)
            .map_err(|e| anyhow!("{e:?}"))
            .context("the component trapped")?
            .map_err(engine_error)?;
        Ok(match output {
            wit::Output::Store(requests) => {
                Output::Store(requests.into_iter().map(core_request).collect())
            }
            wit::Output::ReadSessions(reads) => Output::ReadSessions(
                reads
                    .into_iter()
                    .map(|r| {
                        Ok(SessionRead {
                            native: r.native_id.parse()?,
                            from_ordinal: r.from_ordinal,
                        })
                    })
                    .collect::<Result<Vec<_>, agentsync_core::Error>>()?,
            ),
            wit::Output::CheckPresent(gids) => Output::CheckPresent(
                gids.iter()
                    .map(|g| g.parse())
                    .collect::<Result<Vec<SessionGid>, _>>()?,
            ),
            wit::Output::Apply(units) => Output::Apply(
                units
                    .into_iter()
                    .map(apply_unit_to_core)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            wit::Output::Exported(json) => {
                #[derive(serde::Deserialize)]
                struct Exported {
                    change: Box<agentsync_core::sync::export::ExportChange>,
                    published: Vec<agentsync_core::SignedEvent>,
                }
                let e: Exported = serde_json::from_str(&json)?;
                Output::Exported {
                    change: e.change,
                    published: e.published,
                }
            }
            wit::Output::Imported(json) => Output::Imported(serde_json::from_str(&json)?),
            wit::Output::Replayed(json) => Output::Replayed(serde_json::from_str(&json)?),
            wit::Output::Listed(json) => Output::Listed(serde_json::from_str(&json)?),
            wit::Output::Progress(p) => Output::Progress(Progress {
                stage: match p.stage {
                    wit::Stage::Export => StageName::Export,
                    wit::Stage::Exchange => StageName::Exchange,
                    wit::Stage::Heal => StageName::Heal,
                    wit::Stage::Import => StageName::Import,
                    wit::Stage::FallbackImport => StageName::FallbackImport,
                    wit::Stage::Replay => StageName::Replay,
                },
                done: p.done,
                total: p.total,
            }),
            wit::Output::Done(json) => Output::Done(serde_json::from_str(&json)?),
        })
    }

    fn handle(&mut self, input: Input) -> Result<()> {
        let input = match input {
            Input::Store(responses) => {
                wit::Input::Store(responses.into_iter().map(wit_response).collect())
            }
            Input::Sessions(data) => {
                wit::Input::Sessions(data.into_iter().map(session_data_to_wit).collect())
            }
            Input::Present(answers) => wit::Input::Present(answers),
        };
        self.component
            .core
            .agentsync_core_engine()
            .sync_engine()
            .call_handle(&mut self.component.store, self.engine, &input)
            .map_err(|e| anyhow!("{e:?}"))
            .context("the component trapped")?
            .map_err(engine_error)
    }
}

/// The data model across the boundary; each side uses one direction of each conversion.
mod convert {
    #![allow(dead_code)]
    use super::bindings::exports::agentsync::core::engine as wit;
    include!("../../wit/model_convert.rs");
}
use convert::{apply_unit_to_core, session_data_to_wit};

fn core_request(r: wit::StoreRequest) -> core_store::StoreRequest {
    core_store::StoreRequest {
        store: match r.store {
            wit::StoreId::Mirror => core_store::StoreId::Mirror,
            wit::StoreId::Target => core_store::StoreId::Target,
        },
        request: match r.request {
            wit::Request::List(l) => core_store::Request::List {
                prefix: l.prefix,
                start_after: l.start_after,
            },
            wit::Request::Get(g) => core_store::Request::Get {
                key: g.key,
                max_bytes: g.max_bytes,
            },
            wit::Request::Put(w) => core_store::Request::Put {
                key: w.key,
                bytes: w.bytes,
            },
            wit::Request::Replace(w) => core_store::Request::Replace {
                key: w.key,
                bytes: w.bytes,
            },
            wit::Request::Delete(key) => core_store::Request::Delete { key },
        },
    }
}

fn wit_response(r: core_store::Response) -> wit::Response {
    match r {
        core_store::Response::Listed(page) => wit::Response::Listed(wit::KeyPage {
            entries: page
                .entries
                .into_iter()
                .map(|l| wit::Listing {
                    key: l.key,
                    modified_ms: l.modified_ms,
                    size: l.size,
                })
                .collect(),
            truncated: page.truncated,
        }),
        core_store::Response::Got(bytes) => wit::Response::Got(bytes),
        core_store::Response::TooLarge(size) => wit::Response::TooLarge(size),
        core_store::Response::Put(outcome) => wit::Response::Put(match outcome {
            core_store::PutOutcome::Created => wit::PutOutcome::Created,
            core_store::PutOutcome::Exists => wit::PutOutcome::Exists,
            core_store::PutOutcome::Differs => wit::PutOutcome::Differs,
        }),
        core_store::Response::Done => wit::Response::Done,
        core_store::Response::Failed(e) => wit::Response::Failed(wit::StoreError {
            op: e.op,
            key: e.key,
            reason: e.reason,
            transient: e.transient,
        }),
    }
}

fn engine_error(e: wit::EngineError) -> anyhow::Error {
    match e {
        wit::EngineError::Finished => anyhow!("the sync engine is finished"),
        wit::EngineError::ResponseCount(c) => {
            anyhow!("expected {} answers, gave {}", c.expected, c.got)
        }
        wit::EngineError::UnexpectedInput(m)
        | wit::EngineError::Export(m)
        | wit::EngineError::Mirror(m)
        | wit::EngineError::InvalidInput(m) => anyhow!("{m}"),
        wit::EngineError::Unanswered => anyhow!("polled before answering"),
    }
}

/// The component compiled for this machine: from the cache when a run compiled the same
/// component with the same wasmtime before (compiling takes seconds), else compiled and
/// cached. The cache is `$AGENTSYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/agentsync`, else
/// `~/.cache/agentsync`; a cache that cannot be written only costs the next run a compile.
fn compiled(engine: &Engine, path: &Path, cache: Option<PathBuf>) -> Result<Component> {
    let wasm = std::fs::read(path)
        .with_context(|| format!("cannot read the component {}", path.display()))?;
    let cached = cache.map(|dir| {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let id = agentsync_core::ArtifactId::of(&wasm).to_hex();
        dir.join(format!(
            "component-{}-{:016x}.cwasm",
            &id[..32],
            hasher.finish()
        ))
    });
    if let Some(file) = cached.as_deref().filter(|f| f.is_file()) {
        // SAFETY: the file is one this function wrote from `Component::serialize` of this very
        // component (its name holds the component's hash and the engine's compatibility hash),
        // in the user's own cache folder; wasmtime checks its version and configuration and
        // refuses a mismatch, in which case we compile again below.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, file) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, &wasm)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("cannot load the component {}", path.display()))?;
    if let Some(file) = cached
        && let Ok(bytes) = component.serialize()
        && let Some(dir) = file.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &file).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(component)
}

fn cache_dir() -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("AGENTSYNC_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("agentsync")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("agentsync")))
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

    /// The engine asks for every store operation in its outputs: the component calls nothing
    /// of the host's but the WASI interfaces its std uses (a browser can drive it unchanged).
    #[test]
    fn the_component_imports_only_what_std_needs_from_wasi() {
        let engine = Engine::default();
        let path = default_component_path().unwrap();
        let component = Component::from_file(&engine, &path).unwrap();
        let mut wasi = 0;
        for (name, item) in component.component_type().imports(&engine) {
            if name.starts_with("wasi:") {
                wasi += 1;
                continue;
            }
            // Interfaces that only define types (`types`) come along as imports; none of
            // ours may hold a function the component could call.
            let wasmtime::component::types::ComponentItem::ComponentInstance(instance) = item.ty
            else {
                panic!("unexpected import {name}");
            };
            let functions: Vec<String> = instance
                .exports(&engine)
                .filter(|(_, e)| {
                    matches!(
                        e.ty,
                        wasmtime::component::types::ComponentItem::ComponentFunc(_)
                    )
                })
                .map(|(n, _)| n.to_owned())
                .collect();
            assert!(
                functions.is_empty(),
                "{name} imports functions {functions:?}"
            );
        }
        assert!(wasi > 0, "a std wasip2 build imports WASI");
        let exports: Vec<String> = component
            .component_type()
            .exports(&engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        assert!(
            exports.iter().any(|e| e == "agentsync:core/engine@0.2.0"),
            "{exports:?}"
        );
    }

    /// A second load of the same component comes from the compile cache.
    #[test]
    fn a_compiled_component_is_cached() {
        let dir = std::env::temp_dir().join(format!("agentsync-wasm-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = default_component_path().unwrap();
        let engine = Engine::default();
        compiled(&engine, &path, Some(dir.clone())).unwrap();
        let cached: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(cached.len(), 1, "{cached:?}");
        let mtime = cached[0].metadata().unwrap().modified().unwrap();
        compiled(&engine, &path, Some(dir.clone())).unwrap();
        let again = std::fs::read_dir(&dir).unwrap().flatten().next().unwrap();
        assert_eq!(
            again.metadata().unwrap().modified().unwrap(),
            mtime,
            "not rewritten"
        );
        let _ = std::fs::remove_dir_all(&dir);
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
