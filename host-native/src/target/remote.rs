//! A store reached over the network (an HTTP peer, an S3 bucket): the async client of each
//! behind one wrapper that owns the runtime, retries transient failures with jittered
//! backoff, and runs a round of the engine's independent requests concurrently.

use std::future::Future;
use std::sync::Once;
use std::time::Duration;

use agentsync_core::sync::store::{
    Bounded, ListPage, PutOutcome, Request, Response, Store, StoreError,
};
use anyhow::{Context as _, Result};
use futures_util::StreamExt;

use super::Target;

/// Requests of one round in flight at once.
const CONCURRENCY: usize = 16;
/// Attempts of one request that keeps failing transiently (the first included).
const ATTEMPTS: u32 = 6;

/// Why a remote operation failed. `transient` failures (connection errors, timeouts, 5xx,
/// S3 `SlowDown`) are retried; the others are reported at once.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: String,
    pub transient: bool,
    /// The store refused our credentials: nothing else will work this run.
    pub denied: bool,
    /// No connection could be made (after retries, the target is taken as down).
    pub unreachable: bool,
}

impl Failure {
    pub fn transient(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            transient: true,
            denied: false,
            unreachable: false,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            transient: false,
            denied: false,
            unreachable: false,
        }
    }

    pub fn denied(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            transient: false,
            denied: true,
            unreachable: false,
        }
    }

    /// A reqwest error: everything that never reached an answer (connect, timeout, a body cut
    /// off) may succeed on a retry.
    pub fn of(e: &reqwest::Error) -> Self {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason.push_str(&format!(": {s}"));
            source = s.source();
        }
        Failure {
            reason,
            transient: !e.is_builder() && !e.is_redirect(),
            denied: false,
            unreachable: e.is_connect(),
        }
    }

    /// An HTTP status that is not the answer expected: 5xx and 429 are transient.
    pub fn status(status: reqwest::StatusCode, body: &str) -> Self {
        let body = body.trim();
        let reason = if body.is_empty() {
            format!("HTTP {status}")
        } else {
            format!(
                "HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            )
        };
        Failure {
            reason,
            transient: status.is_server_error() || status.as_u16() == 429,
            denied: false,
            unreachable: false,
        }
    }
}

/// The operations of a remote store, async. Implementations make one attempt; [`Remote`]
/// retries.
pub trait RemoteClient: Send + Sync + 'static {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> impl Future<Output = Result<ListPage, Failure>> + Send;
    fn get(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Bounded, Failure>> + Send;
    fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<PutOutcome, Failure>> + Send;
    fn replace(&self, key: &str, bytes: &[u8]) -> impl Future<Output = Result<(), Failure>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), Failure>> + Send;
    fn can_delete(&self) -> bool;
}

/// A [`RemoteClient`] as a blocking [`Store`] and a concurrent [`Target`].
pub struct Remote<C> {
    client: std::sync::Arc<C>,
    runtime: tokio::runtime::Runtime,
    /// Why the run must stop, once it must: the store refused our credentials, or could not
    /// be reached at all. Later requests then fail at once instead of each retrying.
    fatal: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// reqwest is built without a default TLS crypto provider (the default, aws-lc, needs cmake
/// to build): install ring's once per process.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already: either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client both remote stores use.
pub fn http_client() -> Result<reqwest::Client> {
    install_crypto();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(CONCURRENCY)
        // A redirect would turn a PUT into a GET that answers 200: never follow one.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("agentsync/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

impl<C: RemoteClient> Remote<C> {
    pub fn new(client: C) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        Ok(Remote {
            client: std::sync::Arc::new(client),
            runtime,
            fatal: std::sync::Arc::default(),
        })
    }

    fn run<T>(
        &self,
        op: &str,
        key: &str,
        attempt: impl AsyncFnMut() -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        self.runtime
            .block_on(retrying(op, key, &self.fatal, attempt))
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or [`ATTEMPTS`] transient failures
/// in a row; waits 0.2 s × 2^n (at most 5 s), jittered, between attempts.
async fn retrying<T>(
    op: &str,
    key: &str,
    fatal: &std::sync::Mutex<Option<String>>,
    mut attempt: impl AsyncFnMut() -> Result<T, Failure>,
) -> Result<T, StoreError> {
    let mut n = 0;
    loop {
        let stopped = fatal.lock().ok().and_then(|f| f.clone());
        if let Some(reason) = stopped {
            return Err(StoreError {
                op: op.to_owned(),
                key: key.to_owned(),
                reason: format!("not tried: {reason}"),
                transient: true,
            });
        }
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(f) if f.transient && n + 1 < ATTEMPTS => {
                let base = (200u64 << n).min(5_000);
                tokio::time::sleep(Duration::from_millis(base / 2 + jitter(base / 2))).await;
                n += 1;
            }
            Err(f) => {
                let stop = if f.denied {
                    Some(format!("the target refused this machine: {}", f.reason))
                } else if f.unreachable {
                    Some(format!("the target cannot be reached: {}", f.reason))
                } else {
                    None
                };
                if let Some(stop) = stop
                    && let Ok(mut first) = fatal.lock()
                {
                    first.get_or_insert(stop);
                }
                return Err(StoreError {
                    op: op.to_owned(),
                    key: key.to_owned(),
                    reason: if n > 0 {
                        format!("{} (after {} attempts)", f.reason, n + 1)
                    } else {
                        f.reason
                    },
                    transient: f.transient,
                });
            }
        }
    }
}

fn jitter(max: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() || max == 0 {
        return 0;
    }
    u64::from_le_bytes(bytes) % max
}

async fn answer<C: RemoteClient>(
    client: &C,
    fatal: &std::sync::Mutex<Option<String>>,
    request: &Request,
) -> Response {
    let result = match request {
        Request::List {
            prefix,
            start_after,
        } => retrying("list", prefix, fatal, async || {
            client.list(prefix, start_after.as_deref()).await
        })
        .await
        .map(Response::Listed),
        Request::Get { key, max_bytes } => retrying("get", key, fatal, async || {
            client.get(key, *max_bytes).await
        })
        .await
        .map(|found| match found {
            Bounded::Missing => Response::Got(None),
            Bounded::Bytes(bytes) => Response::Got(Some(bytes)),
            Bounded::TooLarge(size) => Response::TooLarge(size),
        }),
        Request::Put { key, bytes } => retrying("put", key, fatal, async || {
            client.put_if_absent(key, bytes).await
        })
        .await
        .map(Response::Put),
        Request::Replace { key, bytes } => retrying("replace", key, fatal, async || {
            client.replace(key, bytes).await
        })
        .await
        .map(|()| Response::Done),
        Request::Delete { key } => {
            retrying("delete", key, fatal, async || client.delete(key).await)
                .await
                .map(|()| Response::Done)
        }
    };
    result.unwrap_or_else(Response::Failed)
}

impl<C: RemoteClient> Store for Remote<C> {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError> {
        let client = self.client.clone();
        self.run("list", prefix, async || {
            client.list(prefix, start_after).await
        })
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // No artifact is larger than this; nothing larger is read.
        let bound = agentsync_core::limits::MAX_STORED_ANY as u64;
        match self.get_bounded(key, bound)? {
            Bounded::Bytes(b) => Ok(Some(b)),
            _ => Ok(None),
        }
    }

    fn get_bounded(&mut self, key: &str, max_bytes: u64) -> Result<Bounded, StoreError> {
        let client = self.client.clone();
        self.run("get", key, async || client.get(key, max_bytes).await)
    }

    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let client = self.client.clone();
        self.run("put", key, async || client.put_if_absent(key, bytes).await)
    }

    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let client = self.client.clone();
        self.run("replace", key, async || client.replace(key, bytes).await)
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        let client = self.client.clone();
        self.run("delete", key, async || client.delete(key).await)
    }
}

impl<C: RemoteClient> Target for Remote<C> {
    fn answer_all(&mut self, requests: &[Request]) -> Vec<Response> {
        let client = self.client.clone();
        let fatal = self.fatal.clone();
        self.runtime.block_on(async {
            futures_util::stream::iter(requests)
                .map(|r| answer(&*client, &fatal, r))
                .buffered(CONCURRENCY)
                .collect()
                .await
        })
    }

    fn can_delete(&self) -> bool {
        self.client.can_delete()
    }

    fn refused(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|d| d.clone())
    }
}
