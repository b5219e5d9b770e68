//! agentsync-remote: the stores a machine reaches over the network, an S3 bucket
//! ([`S3Bucket`]) and another machine's `agentsync serve` ([`HttpPeer`]), for every host: the
//! CLI runs them on tokio, the browser on `fetch`. Each makes one attempt per call; [`answer`]
//! retries transient failures with jittered backoff, and [`answer_round`] runs a round of the
//! engine's independent requests concurrently. Like every store, they decide nothing: the
//! core's engine does.

mod http_peer;
mod s3;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use agentsync_core::sync::store::{Bounded, ListPage, PutOutcome, Request, Response, StoreError};
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

pub use http_peer::HttpPeer;
pub use s3::{Credentials, S3Bucket, S3Settings};

/// Requests of one round in flight at once.
pub const CONCURRENCY: usize = 16;
/// Attempts of one request that keeps failing transiently (the first included).
const ATTEMPTS: u32 = 6;

/// What a key keeps unescaped in a URL path: its own separators and the characters artifact
/// keys are made of.
pub const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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
    /// off) may succeed on a retry. In a browser, `fetch` says only that it failed: the
    /// endpoint is down, or its CORS rule refused the page.
    pub fn of(e: &reqwest::Error) -> Self {
        Self::of_request(e, "")
    }

    /// [`Failure::of`] for a request sent to `url`, which a browser's message names.
    pub fn of_request(e: &reqwest::Error, url: &str) -> Self {
        #[cfg(target_arch = "wasm32")]
        let (reason, unreachable) = {
            // `fetch` gives a bare TypeError with a JavaScript stack: name the host instead.
            let host = match url.split_once("://") {
                Some((scheme, rest)) => {
                    format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
                }
                None => "the endpoint".to_owned(),
            };
            let unreachable = e.status().is_none() && !e.is_builder();
            let reason = if unreachable {
                format!(
                    "{host} cannot be reached from this page: it is down, or the bucket's CORS \
                     rule does not allow this page's origin (see docs/s3.md)"
                )
            } else {
                e.to_string()
            };
            (reason, unreachable)
        };
        #[cfg(not(target_arch = "wasm32"))]
        let (reason, unreachable) = {
            let _ = url; // reqwest's own message names it natively
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                reason.push_str(&format!(": {s}"));
                source = s.source();
            }
            (reason, e.is_connect())
        };
        Failure {
            reason,
            transient: !e.is_builder() && !e.is_redirect(),
            denied: false,
            unreachable,
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

/// The operations of a remote store, async. Implementations make one attempt; [`answer`]
/// retries. (No `Send` bound: in a browser, `fetch` futures stay on their thread.)
pub trait RemoteClient {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> impl Future<Output = Result<ListPage, Failure>>;
    fn get(&self, key: &str, max_bytes: u64) -> impl Future<Output = Result<Bounded, Failure>>;
    fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<PutOutcome, Failure>>;
    fn replace(&self, key: &str, bytes: &[u8]) -> impl Future<Output = Result<(), Failure>>;
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), Failure>>;
    fn can_delete(&self) -> bool;
}

/// Why a run must stop, once it must: the store refused our credentials, or could not be
/// reached at all. Later requests then fail at once instead of each retrying.
#[derive(Debug, Default)]
pub struct Fatal(Mutex<Option<String>>);

impl Fatal {
    pub fn reason(&self) -> Option<String> {
        self.0.lock().ok().and_then(|f| f.clone())
    }

    fn set(&self, reason: String) {
        if let Ok(mut first) = self.0.lock() {
            first.get_or_insert(reason);
        }
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or [`ATTEMPTS`] transient failures
/// in a row; waits 0.2 s × 2^n (at most 5 s), jittered, between attempts.
pub async fn retrying<T>(
    op: &str,
    key: &str,
    fatal: &Fatal,
    mut attempt: impl AsyncFnMut() -> Result<T, Failure>,
) -> Result<T, StoreError> {
    let mut n = 0;
    loop {
        if let Some(reason) = fatal.reason() {
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
                pause(Duration::from_millis(base / 2 + jitter(base / 2))).await;
                n += 1;
            }
            Err(f) => {
                if f.denied {
                    fatal.set(format!("the target refused this machine: {}", f.reason));
                } else if f.unreachable {
                    fatal.set(format!("the target cannot be reached: {}", f.reason));
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

#[cfg(not(target_arch = "wasm32"))]
async fn pause(duration: Duration) {
    tokio::time::sleep(duration).await;
}

#[cfg(target_arch = "wasm32")]
async fn pause(duration: Duration) {
    gloo_timers::future::sleep(duration).await;
}

#[cfg(not(target_arch = "wasm32"))]
fn jitter(max: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() || max == 0 {
        return 0;
    }
    u64::from_le_bytes(bytes) % max
}

#[cfg(target_arch = "wasm32")]
fn jitter(max: u64) -> u64 {
    (js_sys::Math::random() * max as f64) as u64
}

/// Answers one request, retrying transient failures.
pub async fn answer<C: RemoteClient>(client: &C, fatal: &Fatal, request: &Request) -> Response {
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

/// Answers a round of independent requests, [`CONCURRENCY`] at a time, in order.
pub async fn answer_round<C: RemoteClient>(
    client: &C,
    fatal: &Fatal,
    requests: &[Request],
) -> Vec<Response> {
    futures_util::stream::iter(requests)
        .map(|r| answer(client, fatal, r))
        .buffered(CONCURRENCY)
        .collect()
        .await
}

/// Reads a body of at most `max_bytes`, refusing a larger one before reading it when the
/// length is announced, and as soon as it passes the bound otherwise.
pub async fn read_bounded(
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))] mut response: reqwest::Response,
    max_bytes: u64,
) -> Result<Bounded, Failure> {
    if let Some(length) = response.content_length()
        && length > max_bytes
    {
        return Ok(Bounded::TooLarge(length));
    }
    // A browser's fetch hands the body over whole (its length was checked above when known).
    #[cfg(target_arch = "wasm32")]
    {
        let body = response.bytes().await.map_err(|e| Failure::of(&e))?;
        if body.len() as u64 > max_bytes {
            return Ok(Bounded::TooLarge(body.len() as u64));
        }
        Ok(Bounded::Bytes(body.to_vec()))
    }
    // The announced length is a hint from the network: preallocate at most 1 MiB of it.
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut out = Vec::with_capacity(
            response
                .content_length()
                .map_or(0, |l| usize::try_from(l.min(1 << 20)).unwrap_or(0)),
        );
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::of(&e))? {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > max_bytes {
                return Ok(Bounded::TooLarge(out.len() as u64));
            }
        }
        Ok(Bounded::Bytes(out))
    }
}
