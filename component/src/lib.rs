//! agentsync-component: the core as a WASI preview-2 component.
//!
//! Implements the world `agentsync` of `wit/agentsync.wit` (the format operations, the
//! conformance runner and the sync engine over the host's imported stores) with thin wrappers
//! around `agentsync-core`: no logic beyond mapping types and errors. Build it with
//!
//! ```sh
//! cargo build -p agentsync-component --target wasm32-wasip2 --release
//! ```
//!
//! which writes `target/wasm32-wasip2/release/agentsync_component.wasm`; `agentsync conformance
//! --engine wasm` runs it under wasmtime. The crate also compiles natively (the generated import
//! stubs are never called there), so `cargo clippy --workspace` lints it like every other crate.

use agentsync_core::{Artifact, ArtifactId, ArtifactKey, ArtifactKind, Error, frame};

use agentsync::core::store as wit_store;
use agentsync::core::types::{
    ArtifactKind as WitKind, ExpectedFound, FormatError, FutureVersion, IdMismatch, InvalidName,
    KeyInfo, KeyMismatch, LimitExceeded, NestingLimit, OtherError, Reason, UnsupportedStage,
};
use agentsync_core::sync::store::{ListPage, Listing, PutOutcome, Store, StoreError};
use agentsync_core::sync::{exchange, import};
use exports::agentsync::core::engine::{self, EngineError};
use exports::agentsync::core::{conformance, format};

wit_bindgen::generate!({
    world: "agentsync",
    path: "../wit/agentsync.wit",
});

struct Component;

export!(Component);

impl conformance::Guest for Component {
    fn run_vector(vector_json: String) -> String {
        // A vector that is not JSON goes to the runner as a string, which it reports as a
        // `VectorError` result line like any other malformed vector.
        let vector =
            serde_json::from_str(&vector_json).unwrap_or(serde_json::Value::String(vector_json));
        agentsync_core::conformance::run_vector(&vector).to_string()
    }
}

impl format::Guest for Component {
    fn open(key: String, stored: Vec<u8>) -> Result<String, FormatError> {
        let key: ArtifactKey = key.parse().map_err(format_error)?;
        let artifact = Artifact::open(&key, &stored).map_err(format_error)?;
        serde_json::to_string(&artifact).map_err(|e| {
            FormatError::Malformed(Reason {
                what: "artifact JSON".into(),
                reason: e.to_string(),
            })
        })
    }

    fn seal(kind: WitKind, canonical: Vec<u8>) -> Result<Vec<u8>, FormatError> {
        frame::seal(core_kind(kind), &canonical, None).map_err(format_error)
    }

    fn content_id(canonical: Vec<u8>) -> String {
        ArtifactId::of(&canonical).to_hex()
    }

    fn parse_key(key: String) -> Result<KeyInfo, FormatError> {
        let key: ArtifactKey = key.parse().map_err(format_error)?;
        let (seq, hlc) = match &key {
            ArtifactKey::Root { seq, .. } => (Some(*seq), None),
            ArtifactKey::Events { hlc, .. } => (None, Some(hlc.to_string())),
            _ => (None, None),
        };
        Ok(KeyInfo {
            kind: wit_kind(key.kind()),
            origin: key.origin().to_string(),
            id: key.id().to_hex(),
            seq,
            hlc,
        })
    }
}

impl engine::Guest for Component {
    fn import_from(
        store_id: u32,
        local_origin: String,
        state_json: String,
        purged_json: String,
    ) -> Result<String, EngineError> {
        let local = local_origin
            .parse()
            .map_err(|e: Error| invalid("local-origin", e))?;
        let state = from_json_or_default(&state_json, "state-json")?;
        let purged = from_json_or_default(&purged_json, "purged-json")?;
        let report = import::run(
            import::Import::new(local, state, purged),
            &mut HostStore(store_id),
        );
        to_json(&report)
    }

    fn replay(
        state_json: String,
        clock: String,
        wall_ms: u64,
        events_json: String,
        present_json: String,
    ) -> Result<String, EngineError> {
        let mut state: agentsync_core::LedgerState =
            from_json_or_default(&state_json, "state-json")?;
        let mut hlc_clock = if clock.is_empty() {
            agentsync_core::HlcClock::default()
        } else {
            agentsync_core::HlcClock::resume(clock.parse().map_err(|e: Error| invalid("clock", e))?)
        };
        let events: Vec<agentsync_core::SignedEvent> =
            from_json_or_default(&events_json, "events-json")?;
        let present: Option<std::collections::BTreeSet<agentsync_core::SessionGid>> =
            if present_json.is_empty() {
                None
            } else {
                Some(from_json_or_default(&present_json, "present-json")?)
            };
        let replay = state.replay(&mut hlc_clock, wall_ms, events, &|gid| {
            present.as_ref().is_none_or(|p| p.contains(gid))
        });
        to_json(&Replayed {
            clock: hlc_clock.last().to_string(),
            replay,
            state,
        })
    }

    fn exchange(a: u32, b: u32, keyring_json: String) -> Result<String, EngineError> {
        let mut keyring = from_json_or_default(&keyring_json, "keyring-json")?;
        let report = exchange::exchange(&mut HostStore(a), &mut HostStore(b), &mut keyring);
        to_json(&Exchanged {
            report: &report,
            keyring: &keyring,
        })
    }
}

/// What `replay` returns; fields in byte order, like a JSON object built by serde_json.
#[derive(serde::Serialize)]
struct Replayed {
    clock: String,
    replay: agentsync_core::Replay,
    state: agentsync_core::LedgerState,
}

/// What `exchange` returns, in this field order.
#[derive(serde::Serialize)]
struct Exchanged<'a> {
    report: &'a exchange::ExchangeReport,
    keyring: &'a agentsync_core::KeyRing,
}

/// A store the host supplies, by its id: the core's `Store` over the imported WIT `store`.
struct HostStore(u32);

impl Store for HostStore {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError> {
        let page = wit_store::list_keys(self.0, prefix, start_after).map_err(store_error)?;
        Ok(ListPage {
            entries: page
                .entries
                .into_iter()
                .map(|l| Listing {
                    key: l.key,
                    modified_ms: l.modified_ms,
                    size: l.size,
                })
                .collect(),
            truncated: page.truncated,
        })
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        wit_store::get(self.0, key).map_err(store_error)
    }

    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        match wit_store::put_if_absent(self.0, key, bytes).map_err(store_error)? {
            wit_store::PutOutcome::Created => Ok(PutOutcome::Created),
            wit_store::PutOutcome::Exists => Ok(PutOutcome::Exists),
        }
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        wit_store::delete(self.0, key).map_err(store_error)
    }
}

fn store_error(e: wit_store::StoreError) -> StoreError {
    StoreError {
        op: e.op,
        key: e.key,
        reason: e.reason,
        transient: e.transient,
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidInput(format!("{what}: {e}"))
}

/// `""` is the default value (a fresh state, no purged sessions, an empty key ring).
fn from_json_or_default<T: serde::de::DeserializeOwned + Default>(
    json: &str,
    what: &str,
) -> Result<T, EngineError> {
    if json.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(json).map_err(|e| invalid(what, e))
}

fn to_json(value: &impl serde::Serialize) -> Result<String, EngineError> {
    serde_json::to_string(value).map_err(|e| invalid("result JSON", e))
}

fn core_kind(kind: WitKind) -> ArtifactKind {
    match kind {
        WitKind::Segment => ArtifactKind::Segment,
        WitKind::Manifest => ArtifactKind::Manifest,
        WitKind::Bucket => ArtifactKind::Bucket,
        WitKind::Root => ArtifactKind::Root,
        WitKind::Events => ArtifactKind::Events,
    }
}

fn wit_kind(kind: ArtifactKind) -> WitKind {
    match kind {
        ArtifactKind::Segment => WitKind::Segment,
        ArtifactKind::Manifest => WitKind::Manifest,
        ArtifactKind::Bucket => WitKind::Bucket,
        ArtifactKind::Root => WitKind::Root,
        ArtifactKind::Events => WitKind::Events,
    }
}

/// The one place where the core's errors become the WIT `format-error`.
fn format_error(e: Error) -> FormatError {
    let limit = |what: &str, limit: u64, actual: u64| LimitExceeded {
        what: what.into(),
        limit,
        actual,
    };
    match e {
        Error::SizeLimit {
            kind,
            limit: l,
            actual,
        } => FormatError::SizeLimit(limit(kind, l, actual)),
        Error::CountLimit {
            what,
            limit: l,
            actual,
        } => FormatError::CountLimit(limit(what, l, actual)),
        Error::StringLimit {
            what,
            limit: l,
            actual,
        } => FormatError::StringLimit(limit(what, l, actual)),
        Error::NestingLimit { what, limit } => FormatError::NestingLimit(NestingLimit {
            what: what.into(),
            limit,
        }),
        Error::IdMismatch { expected, actual } => FormatError::IdMismatch(IdMismatch {
            expected: expected.to_hex(),
            actual: actual.to_hex(),
        }),
        Error::Truncated { what } => FormatError::Truncated(what.into()),
        Error::FutureVersion {
            what,
            version,
            supported,
        } => FormatError::FutureVersion(FutureVersion {
            what: what.into(),
            version,
            supported,
        }),
        Error::UnsupportedStage { what, code } => FormatError::UnsupportedStage(UnsupportedStage {
            what: what.into(),
            code,
        }),
        Error::Malformed { what, reason } => FormatError::Malformed(Reason {
            what: what.into(),
            reason,
        }),
        Error::InvalidName { what, name, reason } => FormatError::InvalidName(InvalidName {
            what: what.into(),
            name,
            reason: reason.into(),
        }),
        Error::KindMismatch { expected, found } => FormatError::KindMismatch(ExpectedFound {
            expected: expected.into(),
            found: found.into(),
        }),
        Error::OriginMismatch { expected, found } => {
            FormatError::OriginMismatch(ExpectedFound { expected, found })
        }
        Error::BadSignature { what } => FormatError::BadSignature(what.into()),
        Error::KeyMismatch {
            origin,
            pinned,
            found,
        } => FormatError::KeyMismatch(KeyMismatch {
            origin,
            pinned,
            found,
        }),
        Error::Decompress { what, reason } => FormatError::Decompress(Reason {
            what: what.into(),
            reason,
        }),
        Error::Compress { reason } => FormatError::Compress(reason),
        // `Error` is non-exhaustive: a class added to the core reaches hosts as `other` until the
        // WIT names it.
        other => FormatError::Other(OtherError {
            class: other.class().into(),
            message: other.to_string(),
        }),
    }
}
