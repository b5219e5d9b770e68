//! A network store ([`agentsync_remote`]'s S3 bucket or HTTP peer) as the CLI's blocking
//! [`Store`] and concurrent [`Target`]: the async client behind a tokio runtime of its own.

use std::sync::{Arc, Once};
use std::time::Duration;

use agentsync_core::sync::store::{
    Bounded, ListPage, PutOutcome, Request, Response, Store, StoreError,
};
use agentsync_remote::{CONCURRENCY, Failure, Fatal, RemoteClient, answer_round, retrying};
use anyhow::{Context as _, Result};

use super::Target;

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

/// A [`RemoteClient`] as a blocking [`Store`] and a concurrent [`Target`].
pub struct Remote<C> {
    client: Arc<C>,
    runtime: tokio::runtime::Runtime,
    fatal: Arc<Fatal>,
}

impl<C: RemoteClient> Remote<C> {
    pub fn new(client: C) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        Ok(Remote {
            client: Arc::new(client),
            runtime,
            fatal: Arc::default(),
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

impl<C: RemoteClient + Send + Sync> Target for Remote<C> {
    fn answer_all(&mut self, requests: &[Request]) -> Vec<Response> {
        self.runtime
            .block_on(answer_round(&*self.client, &self.fatal, requests))
    }

    fn can_delete(&self) -> bool {
        self.client.can_delete()
    }

    fn refused(&self) -> Option<String> {
        self.fatal.reason()
    }
}
