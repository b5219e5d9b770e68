//! Another machine's `agentsync serve` as a target. The protocol (served by the CLI's `agentsync serve`):
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
use percent_encoding::utf8_percent_encode;
use reqwest::StatusCode;

use crate::{Failure, KEY_PATH, RemoteClient, read_bounded};

pub struct HttpPeer {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl HttpPeer {
    pub fn new(base: &str, token: String, client: reqwest::Client) -> Self {
        HttpPeer {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client,
        }
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
            .map_err(|e| Failure::of_request(&e, &self.base))?;
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
            .map_err(|e| Failure::of_request(&e, &self.base))?;
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
            .map_err(|e| Failure::of_request(&e, &self.base))?;
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
            .map_err(|e| Failure::of_request(&e, &self.base))?;
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
