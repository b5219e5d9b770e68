//! Another machine's `agentsync serve` as a target. The protocol (see `crate::serve`):
//!
//! ```text
//! GET    /v1/list?prefix=P&start_after=S   → 200 JSON {"entries":[{key,modified_ms,size}],"truncated":b}
//! GET    /v1/objects/KEY                   → 200 bytes | 404
//! PUT    /v1/objects/KEY                   → 201 created | 200 identical | 409 other bytes |
//!                                            400 invalid | 413 too large
//! PUT    /v1/objects/KEY?replace=corrupt   → 200 replaced | 409 the stored copy verifies
//! GET    /v1/status                        → 200 JSON (`status --json`)
//! ```
//!
//! Every request carries `Authorization: Bearer TOKEN`.

use agentsync_core::sync::store::{Bounded, ListPage, PutOutcome};
use anyhow::{Result, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;

use super::remote::{Failure, RemoteClient, http_client};

/// What a key keeps unescaped in a URL path: its own separators and the characters artifact
/// keys are made of.
pub const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The token for HTTP targets: `$AGENTSYNC_TOKEN`, else the config's `http.token`.
pub fn token(config_token: Option<&str>) -> Option<String> {
    std::env::var("AGENTSYNC_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| config_token.map(str::to_owned))
}

pub struct HttpPeer {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl HttpPeer {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let Some(token) = token else {
            bail!(
                "{base}: an HTTP target needs the peer's token (set $AGENTSYNC_TOKEN, or \
                 `token` under [http] in the config; `agentsync serve` prints it)"
            );
        };
        Ok(HttpPeer {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client: http_client()?,
        })
    }

    fn object_url(&self, key: &str) -> String {
        format!(
            "{}/v1/objects/{}",
            self.base,
            utf8_percent_encode(key, KEY_PATH)
        )
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url).bearer_auth(&self.token)
    }
}

async fn failed(response: reqwest::Response) -> Failure {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status == StatusCode::UNAUTHORIZED {
        return Failure::denied(format!(
            "HTTP 401: the peer refused the token ({})",
            body.trim()
        ));
    }
    Failure::status(status, &body)
}

impl RemoteClient for HttpPeer {
    async fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<ListPage, Failure> {
        let mut query = vec![("prefix", prefix)];
        if let Some(after) = start_after {
            query.push(("start_after", after));
        }
        let response = self
            .request(reqwest::Method::GET, &format!("{}/v1/list", self.base))
            .query(&query)
            .send()
            .await
            .map_err(|e| Failure::of(&e))?;
        if response.status() != StatusCode::OK {
            return Err(failed(response).await);
        }
        let bytes = response.bytes().await.map_err(|e| Failure::of(&e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Failure::permanent(format!("the peer's listing is not JSON: {e}")))
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Bounded, Failure> {
        let response = self
            .request(reqwest::Method::GET, &self.object_url(key))
            .send()
            .await
            .map_err(|e| Failure::of(&e))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(Bounded::Missing),
            StatusCode::OK => read_bounded(response, max_bytes).await,
            _ => Err(failed(response).await),
        }
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, Failure> {
        let response = self
            .request(reqwest::Method::PUT, &self.object_url(key))
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| Failure::of(&e))?;
        match response.status() {
            StatusCode::CREATED => Ok(PutOutcome::Created),
            StatusCode::OK => Ok(PutOutcome::Exists),
            StatusCode::CONFLICT => Ok(PutOutcome::Differs),
            _ => Err(failed(response).await),
        }
    }

    async fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), Failure> {
        let response = self
            .request(reqwest::Method::PUT, &self.object_url(key))
            .query(&[("replace", "corrupt")])
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| Failure::of(&e))?;
        match response.status() {
            // 409: the peer's copy verifies (another machine healed it, or this very request
            // was answered before and retried): the key holds a good copy either way.
            StatusCode::OK | StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            _ => Err(failed(response).await),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Failure> {
        Err(Failure::permanent(format!(
            "{key}: an HTTP peer does not delete (its own GC collects what it holds)"
        )))
    }

    fn can_delete(&self) -> bool {
        false
    }
}

/// Reads a body of at most `max_bytes`, refusing a larger one before reading it when the
/// length is announced, and as soon as it passes the bound otherwise.
pub async fn read_bounded(
    mut response: reqwest::Response,
    max_bytes: u64,
) -> Result<Bounded, Failure> {
    if let Some(length) = response.content_length()
        && length > max_bytes
    {
        return Ok(Bounded::TooLarge(length));
    }
    // The announced length is a hint from the network: preallocate at most 1 MiB of it.
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
