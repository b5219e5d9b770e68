//! The blob store hosts supply: a flat namespace of write-once keys.

use serde::{Deserialize, Serialize};

/// One listed key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub key: String,
    /// When the store last wrote the key (milliseconds since the epoch), if it knows.
    pub modified_ms: Option<u64>,
    pub size: u64,
}

/// One page of a listing, in byte order of key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    pub entries: Vec<Listing>,
    /// More keys follow the last one listed.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    Created,
    /// The key existed already; its bytes were not changed.
    Exists,
}

/// A store operation that failed. `transient` failures (timeouts, 5xx) may be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("store {op} {key:?}: {reason}")]
pub struct StoreError {
    pub op: String,
    pub key: String,
    pub reason: String,
    pub transient: bool,
}

/// A synchronous store. `list_keys` (not `list`: a WIT keyword) returns keys under `prefix`
/// strictly after `start_after`, in byte order, ignoring writers' `.tmp-` files.
pub trait Store {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError>;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError>;
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
}

/// Every key under `prefix` after `start_after`, following pages.
pub fn list_all(
    store: &mut dyn Store,
    prefix: &str,
    start_after: Option<&str>,
) -> Result<Vec<Listing>, StoreError> {
    let mut out: Vec<Listing> = Vec::new();
    let mut after = start_after.map(str::to_owned);
    loop {
        let page = store.list_keys(prefix, after.as_deref())?;
        let progressed = page.entries.last().map(|l| l.key.clone());
        out.extend(page.entries);
        match (page.truncated, progressed) {
            (true, Some(last)) => after = Some(last),
            _ => return Ok(out),
        }
    }
}

/// A request of the [`crate::sync::import::Import`] machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    List {
        prefix: String,
        start_after: Option<String>,
    },
    Get {
        key: String,
    },
}

/// The answer to one [`Request`], in the order the requests were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Listed(ListPage),
    /// `None`: the key does not exist (yet).
    Got(Option<Vec<u8>>),
    Failed(StoreError),
}

/// Answers requests against a synchronous store.
pub fn answer(store: &mut dyn Store, requests: &[Request]) -> Vec<Response> {
    requests
        .iter()
        .map(|r| match r {
            Request::List {
                prefix,
                start_after,
            } => match store.list_keys(prefix, start_after.as_deref()) {
                Ok(page) => Response::Listed(page),
                Err(e) => Response::Failed(e),
            },
            Request::Get { key } => match store.get(key) {
                Ok(bytes) => Response::Got(bytes),
                Err(e) => Response::Failed(e),
            },
        })
        .collect()
}
