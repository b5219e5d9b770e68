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

use agentsync::core::types::{
    ArtifactKind as WitKind, ExpectedFound, FormatError, FutureVersion, IdMismatch, InvalidName,
    KeyInfo, KeyMismatch, LimitExceeded, NestingLimit, OtherError, Reason, UnsupportedStage,
};
use exports::agentsync::core::engine;
use exports::agentsync::core::{conformance, format};

mod sync_engine;

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
    type SyncEngine = sync_engine::EngineResource;
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
