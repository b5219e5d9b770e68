//! The core's [`SyncEngine`] as the WIT resource `engine.sync-engine`: type mapping only.

use std::cell::RefCell;

use agentsync_core::sync::engine::{
    EngineError as CoreError, Input, Output, StageName, Stages, SyncConfig, SyncEngine, SyncState,
};
use agentsync_core::sync::store::{
    ListPage, Listing as CoreListing, PutOutcome as CorePut, Request as CoreRequest,
    Response as CoreResponse, StoreError as CoreStoreError, StoreId as CoreStoreId,
};
use agentsync_core::{OriginKey, SessionGid};

use crate::exports::agentsync::core::engine::{
    self as wit, Config, CountMismatch, EngineError, GetRequest, GuestSyncEngine, KeyPage,
    ListRequest, Listing, Progress, PutOutcome, Request, Response, SessionRead, Stage, StoreError,
    StoreId, StoreRequest, WriteRequest,
};

/// The data model across the boundary; each side uses one direction of each conversion.
mod convert {
    #![allow(dead_code)]
    use crate::exports::agentsync::core::engine as wit;
    include!("../../wit/model_convert.rs");
}
use convert::{apply_unit_to_wit, session_data_to_core};

pub struct EngineResource(RefCell<SyncEngine>);

impl GuestSyncEngine for EngineResource {
    fn start(config: Config, state_json: String) -> Result<wit::SyncEngine, EngineError> {
        let origin = config
            .origin
            .parse()
            .map_err(|e: agentsync_core::Error| invalid("origin", e))?;
        let secret: [u8; 32] = config
            .secret_key
            .try_into()
            .map_err(|_| invalid("secret-key", "not 32 bytes"))?;
        let state: SyncState = if state_json.is_empty() {
            SyncState::default()
        } else {
            serde_json::from_str(&state_json).map_err(|e| invalid("state-json", e))?
        };
        let config = SyncConfig {
            origin,
            key: OriginKey::from_secret(secret),
            now_ms: config.now_ms,
            target: config.has_target,
            stages: Stages {
                export: config.run_export,
                exchange: config.run_exchange,
                import: config.run_import,
            },
            last_sync_ms: config.last_sync_ms,
            heal_every_ms: config.heal_every_ms,
        };
        // The CLI, this component's host, stores a window while the next waits for its writer
        // and the engine builds a third (`host-native/src/import_writer.rs`); each window is
        // held here and again on the host's side of the interface. A quarter of the default
        // keeps the 1 GB wasm import's peak RSS under 150 MB: 146 MB at 3/8 when two windows
        // were held, 132–135 MB at 1/4 with three (an eighth, as the CLI's own engine takes,
        // measured 113 MB but took 5 % longer; 3/16, 126–139 MB).
        let engine = SyncEngine::new(config, state)
            .with_compressor(Box::new(agentsync_core::RuzstdCompressor))
            .with_import_window(agentsync_core::sync::import::SEGMENT_WINDOW_BYTES / 4);
        Ok(wit::SyncEngine::new(EngineResource(RefCell::new(engine))))
    }

    fn poll(&self) -> Result<wit::Output, EngineError> {
        let output = self.0.borrow_mut().poll().map_err(engine_error)?;
        Ok(match output {
            Output::Store(requests) => {
                wit::Output::Store(requests.into_iter().map(wit_request).collect())
            }
            Output::ReadSessions(reads) => wit::Output::ReadSessions(
                reads
                    .into_iter()
                    .map(|r| SessionRead {
                        native_id: r.native.to_string(),
                        from_ordinal: r.from_ordinal,
                    })
                    .collect(),
            ),
            Output::CheckPresent(gids) => {
                wit::Output::CheckPresent(gids.iter().map(SessionGid::to_string).collect())
            }
            Output::Apply(units) => {
                wit::Output::Apply(units.into_iter().map(apply_unit_to_wit).collect())
            }
            Output::Exported { change, published } => wit::Output::Exported(to_json(
                &serde_json::json!({"change": change, "published": published}),
            )?),
            Output::Imported(state) => wit::Output::Imported(to_json(&state)?),
            Output::Replayed(r) => wit::Output::Replayed(to_json(&r)?),
            Output::Listed(sessions) => wit::Output::Listed(to_json(&sessions)?),
            Output::Progress(p) => wit::Output::Progress(Progress {
                stage: match p.stage {
                    StageName::Export => Stage::Export,
                    StageName::Exchange => Stage::Exchange,
                    StageName::Heal => Stage::Heal,
                    StageName::Import => Stage::Import,
                    StageName::FallbackImport => Stage::FallbackImport,
                    StageName::Replay => Stage::Replay,
                },
                done: p.done,
                total: p.total,
            }),
            Output::Done(report) => wit::Output::Done(to_json(&report)?),
        })
    }

    fn handle(&self, input: wit::Input) -> Result<(), EngineError> {
        let input = match input {
            wit::Input::Store(responses) => {
                Input::Store(responses.into_iter().map(core_response).collect())
            }
            wit::Input::Sessions(data) => Input::Sessions(
                data.into_iter()
                    .map(session_data_to_core)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("sessions", e))?,
            ),
            wit::Input::Present(answers) => Input::Present(answers),
        };
        self.0.borrow_mut().handle(input).map_err(engine_error)
    }
}

fn wit_request(r: agentsync_core::sync::store::StoreRequest) -> StoreRequest {
    StoreRequest {
        store: match r.store {
            CoreStoreId::Mirror => StoreId::Mirror,
            CoreStoreId::Target => StoreId::Target,
        },
        request: match r.request {
            CoreRequest::List {
                prefix,
                start_after,
            } => Request::List(ListRequest {
                prefix,
                start_after,
            }),
            CoreRequest::Get { key, max_bytes } => Request::Get(GetRequest { key, max_bytes }),
            CoreRequest::Put { key, bytes } => Request::Put(WriteRequest { key, bytes }),
            CoreRequest::Replace { key, bytes } => Request::Replace(WriteRequest { key, bytes }),
            CoreRequest::Delete { key } => Request::Delete(key),
        },
    }
}

fn core_response(r: Response) -> CoreResponse {
    match r {
        Response::Listed(KeyPage { entries, truncated }) => CoreResponse::Listed(ListPage {
            entries: entries
                .into_iter()
                .map(|l: Listing| CoreListing {
                    key: l.key,
                    modified_ms: l.modified_ms,
                    size: l.size,
                })
                .collect(),
            truncated,
        }),
        Response::Got(bytes) => CoreResponse::Got(bytes),
        Response::TooLarge(size) => CoreResponse::TooLarge(size),
        Response::Put(outcome) => CoreResponse::Put(match outcome {
            PutOutcome::Created => CorePut::Created,
            PutOutcome::Exists => CorePut::Exists,
            PutOutcome::Differs => CorePut::Differs,
        }),
        Response::Done => CoreResponse::Done,
        Response::Failed(StoreError {
            op,
            key,
            reason,
            transient,
        }) => CoreResponse::Failed(CoreStoreError {
            op,
            key,
            reason,
            transient,
        }),
    }
}

fn engine_error(e: CoreError) -> EngineError {
    match e {
        CoreError::Finished => EngineError::Finished,
        CoreError::ResponseCount { expected, got } => EngineError::ResponseCount(CountMismatch {
            expected: expected as u64,
            got: got as u64,
        }),
        CoreError::Unanswered => EngineError::Unanswered,
        CoreError::Export(e) => EngineError::Export(e.to_string()),
        e @ CoreError::Mirror { .. } => EngineError::Mirror(e.to_string()),
        e @ CoreError::UnexpectedInput { .. } => EngineError::UnexpectedInput(e.to_string()),
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidInput(format!("{what}: {e}"))
}

fn to_json(value: &impl serde::Serialize) -> Result<String, EngineError> {
    serde_json::to_string(value).map_err(|e| invalid("result", e))
}
