//! A fault-injecting HTTP proxy in front of a real server (moto): 503 bursts, writes that land
//! but answer 500, bodies cut off mid-way, slow answers, and listings that miss their newest
//! keys. Faults follow a seeded schedule and stop when `calm()` is called.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the proxy did, by fault.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub unavailable: AtomicU64,
    pub lost_answers: AtomicU64,
    pub cut_bodies: AtomicU64,
    pub slow: AtomicU64,
    pub lagging_listings: AtomicU64,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    faults: AtomicBool,
    /// Refuse every write with 403 AccessDenied, as a bucket policy does for read-only keys.
    read_only: AtomicBool,
    counts: Counts,
}

pub struct FaultyProxy {
    pub url: String,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl FaultyProxy {
    pub fn start(upstream: &str) -> FaultyProxy {
        agentsync::target::install_crypto();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            faults: AtomicBool::new(true),
            read_only: AtomicBool::new(false),
            counts: Counts::default(),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(forward).with_state(shared.clone());
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FaultyProxy {
            url,
            shared,
            _runtime: runtime,
        }
    }

    /// No more faults from now on.
    pub fn calm(&self) {
        self.shared.faults.store(false, Ordering::SeqCst);
    }

    /// From now on every write is refused (403 AccessDenied), reads pass.
    pub fn read_only(&self) {
        self.shared.read_only.store(true, Ordering::SeqCst);
    }

    pub fn counts(&self) -> &Counts {
        &self.shared.counts
    }
}

fn slow_down() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
    )
        .into_response()
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let n = shared.counts.requests.fetch_add(1, Ordering::SeqCst);
    let faults = shared.faults.load(Ordering::SeqCst);
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    if shared.read_only.load(Ordering::SeqCst) && method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::FORBIDDEN,
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        )
            .into_response();
    }
    if faults && n % 9 == 4 {
        shared.counts.unavailable.fetch_add(1, Ordering::SeqCst);
        return slow_down();
    }
    if faults && n % 13 == 6 {
        shared.counts.slow.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let upstream = match send(&shared, &method, &path, &headers, body).await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = upstream.status();
    let mut out_headers = HeaderMap::new();
    for name in ["content-type", "etag", "last-modified"] {
        if let Some(v) = upstream.headers().get(name)
            && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
        {
            out_headers.insert(name, v);
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    // A write that landed, answered with an error: the client retries it.
    if faults && method == Method::PUT && n % 5 == 2 {
        shared.counts.lost_answers.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "<Error><Code>InternalError</Code></Error>",
        )
            .into_response();
    }
    let listing = method == Method::GET && path.contains("list-type=2");
    let mut bytes = bytes.to_vec();
    if faults && listing && n % 3 == 0 {
        // Eventual consistency: the newest write (here: the last key) is not listed yet.
        if let Some(at) = find_last(&bytes, b"<Contents>")
            && let Some(end) = find_last(&bytes, b"</Contents>")
        {
            bytes.drain(at..end + b"</Contents>".len());
            shared
                .counts
                .lagging_listings
                .fetch_add(1, Ordering::SeqCst);
        }
    }
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if faults && method == Method::GET && !listing && status == StatusCode::OK && n % 7 == 3 {
        // The connection drops mid-body: the announced length is never reached.
        shared.counts.cut_bodies.fetch_add(1, Ordering::SeqCst);
        let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
        let stream = futures_util::stream::iter(vec![
            Ok::<Bytes, std::io::Error>(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut",
            )),
        ]);
        let mut response = Response::new(Body::from_stream(stream));
        *response.status_mut() = status;
        *response.headers_mut() = out_headers;
        response.headers_mut().insert(
            "content-length",
            HeaderValue::from_str(&bytes.len().to_string()).unwrap(),
        );
        return response;
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = out_headers;
    response
}

async fn send(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut builder = shared
        .client
        .request(method, format!("{}{path}", shared.upstream));
    for (name, value) in headers {
        if name == "host" || name == "content-length" {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    builder.body(body.to_vec()).send().await
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}
