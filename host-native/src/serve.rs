//! `agentsync serve`: this machine's store (its mirror) over HTTP, for machines that have no
//! shared folder. The protocol is in `crate::target::http_peer`. The server is as dumb as any
//! store, with one addition a remote writer needs: nothing is written that does not verify
//! (frame, id, signature, the pinned key, the name's origin, the kind's size limit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agentsync_core::sync::store::{PutOutcome, Store};
use agentsync_core::{Artifact, ArtifactKey, limits};
use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::commands::Context;
use crate::store::FolderStore;

/// Keys per listing page (as S3's ListObjectsV2).
const PAGE: usize = 1000;
/// Requests served at once; more wait.
const CONCURRENCY: usize = 64;
/// The token file in the data folder.
pub const TOKEN_FILE: &str = "serve-token";

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub token: String,
}

struct Served {
    data_dir: PathBuf,
    mirror: PathBuf,
    token: String,
}

/// This machine's serve token: the one in the data folder, made (random, 0600) when missing.
pub fn token(data_dir: &std::path::Path) -> Result<String> {
    let path = data_dir.join(TOKEN_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)?;
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Parses `--listen`, refusing a non-loopback address unless `allow_remote`.
pub fn listen_address(text: &str, allow_remote: bool) -> Result<SocketAddr> {
    let addr: SocketAddr = text
        .parse()
        .with_context(|| format!("{text:?} is not an address like 127.0.0.1:8787"))?;
    if !addr.ip().is_loopback() && !allow_remote {
        bail!(
            "{addr} is reachable from other machines: pass --allow-remote to serve there \
             (put TLS in front of it: see docs/cli.md, serve)"
        );
    }
    Ok(addr)
}

/// Serves until SIGINT or SIGTERM. Prints one line when listening (JSON under `--json`).
pub fn serve(ctx: &Context, options: ServeOptions) -> Result<()> {
    crate::target::install_crypto();
    let served = Arc::new(Served {
        data_dir: ctx.home.data_dir.clone(),
        mirror: ctx.home.mirror_dir(),
        token: options.token,
    });
    std::fs::create_dir_all(&served.mirror)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server runtime")?;
    let json = ctx.json;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("listening on {}", options.listen))?;
        let bound = listener.local_addr()?;
        if json {
            println!(
                "{}",
                serde_json::json!({"listen": bound.to_string(), "url": format!("http://{bound}")})
            );
        } else {
            println!(
                "serving {} on http://{bound} (token in {}; Ctrl-C stops)",
                served.mirror.display(),
                served.data_dir.join(TOKEN_FILE).display()
            );
        }
        axum::serve(listener, router(served))
            .with_graceful_shutdown(shutdown())
            .await
            .context("serving")
    })
}

async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

fn router(served: Arc<Served>) -> Router {
    Router::new()
        .route("/v1/list", get(list))
        .route("/v1/status", get(status))
        .route("/v1/objects/{*key}", get(get_object).put(put_object))
        .layer(middleware::from_fn_with_state(served.clone(), authorize))
        // Bodies over the largest artifact are refused before they are read; each kind's own
        // limit is checked once the key is known.
        .layer(DefaultBodyLimit::max(limits::MAX_STORED_ANY))
        // One limit for the whole server (a `Router::layer` would give each route its own).
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(CONCURRENCY))
        .with_state(served)
}

async fn authorize(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(served.token.as_bytes()).into();
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong token (Authorization: Bearer TOKEN)\n",
        )
            .into_response();
    }
    next.run(request).await
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    let mut text = reason.into();
    text.push('\n');
    (status, text).into_response()
}

/// A refusal: its status and the reason sent as the body.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refuse(self.0, self.1)
    }
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Refused> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    start_after: Option<String>,
}

/// A listing prefix: key characters only, no empty, `.` or `..` part, not absolute.
fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty()
        || (!prefix.starts_with('/')
            && !prefix.contains("//")
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~/".contains(&b))
            && prefix
                .trim_end_matches('/')
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".."))
}

async fn list(State(served): State<Arc<Served>>, Query(q): Query<ListQuery>) -> Response {
    if !valid_prefix(&q.prefix) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("invalid prefix {:?}", q.prefix),
        );
    }
    let mirror = served.mirror.clone();
    let result = blocking(move || {
        FolderStore::new(mirror).list_page(&q.prefix, q.start_after.as_deref(), PAGE)
    })
    .await;
    match result {
        Err(r) => r.into_response(),
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        Ok(Ok(page)) => axum::Json(page).into_response(),
    }
}

fn parse_key(key: &str) -> Result<ArtifactKey, Refused> {
    key.parse::<ArtifactKey>()
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("{key:?}: {e}")))
}

async fn get_object(State(served): State<Arc<Served>>, Path(key): Path<String>) -> Response {
    if let Err(r) = parse_key(&key) {
        return r.into_response();
    }
    let mirror = served.mirror.clone();
    let result = blocking(move || FolderStore::new(mirror).get(&key)).await;
    match result {
        Err(r) => r.into_response(),
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        Ok(Ok(None)) => refuse(StatusCode::NOT_FOUND, "no such key"),
        Ok(Ok(Some(bytes))) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(bytes),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct PutQuery {
    replace: Option<String>,
}

async fn put_object(
    State(served): State<Arc<Served>>,
    Path(key): Path<String>,
    Query(q): Query<PutQuery>,
    body: Bytes,
) -> Response {
    let parsed = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let max = parsed.kind().limits().max_stored;
    if body.len() > max {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{key}: {} bytes, a {} holds at most {max}",
                body.len(),
                parsed.kind().name()
            ),
        );
    }
    let replace = match q.replace.as_deref() {
        None => false,
        Some("corrupt") => true,
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("replace={other}: only replace=corrupt"),
            );
        }
    };
    let result = blocking(move || store_verified(&served, &key, &parsed, &body, replace)).await;
    match result {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

/// Verifies `bytes` as the artifact `key` names, then writes it (put-if-absent, or replaces a
/// stored copy that fails verification).
fn store_verified(
    served: &Served,
    key: &str,
    parsed: &ArtifactKey,
    bytes: &[u8],
    replace: bool,
) -> Response {
    let artifact = match Artifact::open(parsed, bytes) {
        Ok(a) => a,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("{key}: {} {e}", e.class())),
    };
    if let Some(signer) = artifact.signer() {
        match refusal(served, parsed.origin(), signer) {
            Ok(Some(e)) => {
                return refuse(StatusCode::BAD_REQUEST, format!("{key}: {} {e}", e.class()));
            }
            Ok(None) => {}
            Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        }
    }
    let mut store = FolderStore::new(&served.mirror);
    if replace {
        return match store.get(key) {
            Ok(Some(stored)) if Artifact::open(parsed, &stored).is_ok() => refuse(
                StatusCode::CONFLICT,
                format!("{key}: the stored copy verifies; it is not replaced"),
            ),
            Ok(_) => match store
                .replace(key, bytes)
                .map_err(anyhow::Error::from)
                .and_then(|()| store.flush())
            {
                Ok(()) => StatusCode::OK.into_response(),
                Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
            },
            Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    match Store::put_if_absent(&mut store, key, bytes) {
        // Answered only once durable: a client never sends an acknowledged artifact again.
        Ok(PutOutcome::Created) => match store.flush() {
            Ok(()) => StatusCode::CREATED.into_response(),
            Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        },
        Ok(PutOutcome::Exists) => StatusCode::OK.into_response(),
        Ok(PutOutcome::Differs) => refuse(
            StatusCode::CONFLICT,
            format!("{key}: holds other bytes (write-once)"),
        ),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Why this machine refuses `signer` for `origin`, if it does: another key than the one pinned
/// (its own, or one its imports pinned), or an origin its user revoked. An origin not seen yet
/// is accepted, as an import would pin it.
fn refusal(
    served: &Served,
    origin: &agentsync_core::OriginId,
    signer: &agentsync_core::PublicKey,
) -> Result<Option<agentsync_core::Error>> {
    let ctx = Context::new(Some(&served.data_dir), true)?;
    let archive = ctx.archive()?;
    let mut ring = archive.keyring()?;
    if let Some((own, key)) = archive.identity()? {
        ring.trust(own, key.public());
    }
    Ok(ring.check(origin, signer).err())
}

async fn status(State(served): State<Arc<Served>>) -> Response {
    let data_dir = served.data_dir.clone();
    let result = blocking(move || -> Result<serde_json::Value> {
        let ctx = Context::new(Some(&data_dir), true)?;
        Ok(crate::commands::browse::status(&ctx)?.value)
    })
    .await;
    match result {
        Err(r) => r.into_response(),
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        Ok(Ok(value)) => axum::Json(value).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_addresses_are_checked() {
        assert!(valid_prefix(""));
        assert!(valid_prefix("roots/"));
        assert!(valid_prefix("laptop-a1b2c3/events/"));
        assert!(!valid_prefix("../etc"));
        assert!(!valid_prefix("roots/../x"));
        assert!(!valid_prefix("/abs"));
        assert!(!valid_prefix("a//b"));
        assert!(!valid_prefix("a//"));
        assert!(!valid_prefix("a%2e"));
        assert!(listen_address("127.0.0.1:8787", false).is_ok());
        assert!(listen_address("[::1]:0", false).is_ok());
        assert!(listen_address("0.0.0.0:8787", false).is_err());
        assert!(listen_address("0.0.0.0:8787", true).is_ok());
    }
}
