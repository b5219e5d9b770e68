//! The blob store hosts supply: a flat namespace of write-once keys.

use serde::{Deserialize, Serialize};

use crate::sync::engine::EngineError;

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
    /// The key already held these very bytes.
    Exists,
    /// The key holds other bytes, which were left alone. For an artifact that is either
    /// another valid copy (compressed differently) or a corrupt one: the engine reads it back
    /// and decides whether to [`Request::Replace`] it.
    Differs,
}

/// Which of the host's stores a request is for: the machine's local mirror of the archive's
/// artifacts, or the shared target it syncs with (a folder, an HTTP peer, an S3 bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreId {
    Mirror,
    Target,
}

impl StoreId {
    pub fn name(self) -> &'static str {
        match self {
            StoreId::Mirror => "mirror",
            StoreId::Target => "target",
        }
    }

    pub(crate) fn other(self) -> StoreId {
        match self {
            StoreId::Mirror => StoreId::Target,
            StoreId::Target => StoreId::Mirror,
        }
    }
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

/// What a bounded get found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bounded {
    Missing,
    Bytes(Vec<u8>),
    /// Over the bound: its size.
    TooLarge(u64),
}

/// A synchronous store: dumb by design, it knows nothing of the format. `list_keys` (not
/// `list`: a WIT keyword) returns keys under `prefix` strictly after `start_after`, in byte
/// order, ignoring writers' `.tmp-` files. `replace` overwrites a key atomically; the engine
/// asks for it only after verifying that the stored copy is corrupt and the new one is not.
pub trait Store {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError>;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// `get`, refusing an object over `max_bytes`. Stores that know sizes before reading
    /// (files, HTTP `Content-Length`) should override it so that nothing large is read.
    fn get_bounded(&mut self, key: &str, max_bytes: u64) -> Result<Bounded, StoreError> {
        Ok(match self.get(key)? {
            None => Bounded::Missing,
            Some(bytes) if bytes.len() as u64 > max_bytes => Bounded::TooLarge(bytes.len() as u64),
            Some(bytes) => Bounded::Bytes(bytes),
        })
    }
    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError>;
    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
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

/// One store operation the core asks a host to perform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    List {
        prefix: String,
        start_after: Option<String>,
    },
    /// At most `max_bytes`: a larger object is answered with [`Response::TooLarge`], unread.
    Get {
        key: String,
        max_bytes: u64,
    },
    /// Write unless the key exists.
    Put {
        key: String,
        #[serde(with = "hex_bytes")]
        bytes: Vec<u8>,
    },
    /// Overwrite: the stored copy failed verification and `bytes` passed it.
    Replace {
        key: String,
        #[serde(with = "hex_bytes")]
        bytes: Vec<u8>,
    },
    Delete {
        key: String,
    },
}

impl Request {
    /// A get bounded by the limit of the key's kind (of any kind if it is not an artifact key).
    pub fn get(key: String) -> Request {
        let max_bytes = Self::kind_bound(&key);
        Request::Get { key, max_bytes }
    }

    /// A get bounded by what a reference declares of the artifact's canonical size.
    pub fn get_declared(key: String, canonical: u64) -> Request {
        let max_bytes = Self::kind_bound(&key).min(crate::limits::stored_bound(canonical));
        Request::Get { key, max_bytes }
    }

    fn kind_bound(key: &str) -> u64 {
        key.parse::<crate::names::ArtifactKey>()
            .map_or(crate::limits::MAX_STORED_ANY, |k| {
                k.kind().limits().max_stored
            }) as u64
    }

    /// The key or prefix the request is about (for problems and progress).
    pub fn subject(&self) -> &str {
        match self {
            Request::List { prefix, .. } => prefix,
            Request::Get { key, .. }
            | Request::Put { key, .. }
            | Request::Replace { key, .. }
            | Request::Delete { key } => key,
        }
    }
}

/// A request addressed to one of the host's stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRequest {
    pub store: StoreId,
    #[serde(flatten)]
    pub request: Request,
}

/// The answer to one [`Request`], in the order the requests were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Listed(ListPage),
    /// `None`: the key does not exist (yet).
    Got(Option<Vec<u8>>),
    /// The object is larger than the get allowed (its size); it was not read.
    TooLarge(u64),
    Put(PutOutcome),
    /// A replace or delete was done.
    Done,
    Failed(StoreError),
}

/// Answers one request against a synchronous store.
pub fn answer_one(store: &mut dyn Store, request: &Request) -> Response {
    let result = match request {
        Request::List {
            prefix,
            start_after,
        } => store
            .list_keys(prefix, start_after.as_deref())
            .map(Response::Listed),
        Request::Get { key, max_bytes } => {
            store.get_bounded(key, *max_bytes).map(|found| match found {
                Bounded::Missing => Response::Got(None),
                Bounded::Bytes(bytes) => Response::Got(Some(bytes)),
                Bounded::TooLarge(size) => Response::TooLarge(size),
            })
        }
        Request::Put { key, bytes } => store.put_if_absent(key, bytes).map(Response::Put),
        Request::Replace { key, bytes } => store.replace(key, bytes).map(|()| Response::Done),
        Request::Delete { key } => store.delete(key).map(|()| Response::Done),
    };
    result.unwrap_or_else(Response::Failed)
}

/// The requests of a round addressed to `store`, in order. A host that answers a store's
/// share of a round together hands [`merge_answers`] the answers in this order.
pub fn requests_for(round: &[StoreRequest], store: StoreId) -> Vec<&Request> {
    round
        .iter()
        .filter(|r| r.store == store)
        .map(|r| &r.request)
        .collect()
}

/// The requests of a round addressed to the target, in order. A host answers them together
/// (a remote target concurrently), then [`merge_round`] puts each answer in its place.
pub fn target_requests(round: &[StoreRequest]) -> Vec<Request> {
    requests_for(round, StoreId::Target)
        .into_iter()
        .cloned()
        .collect()
}

/// Every answer of a round, in the round's order: the mirror's requests answered one by one
/// from `mirror`, the target's taken in order from `target_answers` (one per
/// [`target_requests`]).
pub fn merge_round(
    round: &[StoreRequest],
    mirror: &mut dyn Store,
    target_answers: Vec<Response>,
) -> Result<Vec<Response>, EngineError> {
    let mirror_answers = requests_for(round, StoreId::Mirror)
        .into_iter()
        .map(|r| answer_one(mirror, r))
        .collect();
    merge_answers(round, mirror_answers, target_answers)
}

/// Every answer of a round, in the round's order, from each store's answers to its requests
/// in order: for a host that answers each store's share of a round at once (in parallel).
pub fn merge_answers(
    round: &[StoreRequest],
    mirror_answers: Vec<Response>,
    target_answers: Vec<Response>,
) -> Result<Vec<Response>, EngineError> {
    for (store, answers) in [
        (StoreId::Mirror, &mirror_answers),
        (StoreId::Target, &target_answers),
    ] {
        let expected = round.iter().filter(|r| r.store == store).count();
        if answers.len() != expected {
            return Err(EngineError::ResponseCount {
                expected,
                got: answers.len(),
            });
        }
    }
    let mut from_mirror = mirror_answers.into_iter();
    let mut from_target = target_answers.into_iter();
    Ok(round
        .iter()
        .filter_map(|r| match r.store {
            StoreId::Mirror => from_mirror.next(),
            StoreId::Target => from_target.next(),
        })
        .collect())
}

/// What every [`Store`] promises, checked on an empty one: each host runs it on its own stores
/// in its tests (a folder, a database table, memory), so they all behave alike. Returns the
/// first broken promise.
pub fn check_contract(store: &mut dyn Store) -> Result<(), String> {
    fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what}: got {got:?}, want {want:?}"))
        }
    }
    let keys = |store: &mut dyn Store, prefix: &str, after: Option<&str>| {
        list_all(store, prefix, after)
            .map(|l| l.into_iter().map(|e| e.key).collect::<Vec<_>>())
            .map_err(|e| e.to_string())
    };
    let err = |e: StoreError| e.to_string();
    expect(
        "get of a key never written",
        store.get("a/x/1").map_err(err)?,
        None,
    )?;
    expect("listing an empty store", keys(store, "", None)?, vec![])?;
    for (key, bytes) in [
        ("a/x/1", &b"one"[..]),
        ("a/x/2", b"two"),
        ("b/x/1", b"three"),
    ] {
        expect(
            &format!("first put of {key}"),
            store.put_if_absent(key, bytes).map_err(err)?,
            PutOutcome::Created,
        )?;
    }
    expect(
        "put of the same bytes again",
        store.put_if_absent("a/x/1", b"one").map_err(err)?,
        PutOutcome::Exists,
    )?;
    expect(
        "put of other bytes",
        store.put_if_absent("a/x/1", b"other").map_err(err)?,
        PutOutcome::Differs,
    )?;
    expect(
        "get after a refused put",
        store.get("a/x/1").map_err(err)?,
        Some(b"one".to_vec()),
    )?;
    expect(
        "listing a prefix",
        keys(store, "a/", None)?,
        vec!["a/x/1".into(), "a/x/2".into()],
    )?;
    expect(
        "listing after a key",
        keys(store, "a/x/", Some("a/x/1"))?,
        vec!["a/x/2".into()],
    )?;
    expect(
        "listing a whole key",
        keys(store, "a/x/2", None)?,
        vec!["a/x/2".into()],
    )?;
    expect("listing below a key", keys(store, "a/x/1/", None)?, vec![])?;
    expect("listing an absent prefix", keys(store, "c/", None)?, vec![])?;
    expect(
        "bounded get over the bound",
        store.get_bounded("b/x/1", 4).map_err(err)?,
        Bounded::TooLarge(5),
    )?;
    expect(
        "bounded get at the bound",
        store.get_bounded("b/x/1", 5).map_err(err)?,
        Bounded::Bytes(b"three".to_vec()),
    )?;
    expect(
        "bounded get of a missing key",
        store.get_bounded("c/1", 5).map_err(err)?,
        Bounded::Missing,
    )?;
    store.replace("a/x/2", b"TWO").map_err(err)?;
    expect(
        "get after replace",
        store.get("a/x/2").map_err(err)?,
        Some(b"TWO".to_vec()),
    )?;
    for key in ["a/x/1", "a/x/1", "q/r/s"] {
        store.delete(key).map_err(err)?;
    }
    expect("get after delete", store.get("a/x/1").map_err(err)?, None)?;
    expect(
        "bounded get after delete",
        store.get_bounded("a/x/1", 5).map_err(err)?,
        Bounded::Missing,
    )?;
    expect(
        "listing after delete",
        keys(store, "", None)?,
        vec!["a/x/2".into(), "b/x/1".into()],
    )
}

/// Answers requests against a synchronous store, in order.
pub fn answer(store: &mut dyn Store, requests: &[Request]) -> Vec<Response> {
    requests.iter().map(|r| answer_one(store, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::scenario::MemoryStore;

    fn get(store: StoreId, key: &str) -> StoreRequest {
        StoreRequest {
            store,
            request: Request::Get {
                key: key.into(),
                max_bytes: 10,
            },
        }
    }

    #[test]
    fn the_memory_store_keeps_the_store_contract() {
        check_contract(&mut MemoryStore::default()).unwrap();
    }

    #[test]
    fn a_round_is_answered_in_its_own_order_from_both_stores() {
        let mut mirror = MemoryStore::default();
        mirror.put_if_absent("m/1", b"one").unwrap();
        let round = [
            get(StoreId::Target, "t/1"),
            get(StoreId::Mirror, "m/1"),
            get(StoreId::Target, "t/2"),
            get(StoreId::Mirror, "m/2"),
        ];
        assert_eq!(
            target_requests(&round),
            vec![round[0].request.clone(), round[2].request.clone()]
        );
        let from_target = vec![Response::Got(Some(b"T1".to_vec())), Response::Got(None)];
        let merged = merge_round(&round, &mut mirror, from_target).unwrap();
        assert_eq!(
            merged,
            vec![
                Response::Got(Some(b"T1".to_vec())),
                Response::Got(Some(b"one".to_vec())),
                Response::Got(None),
                Response::Got(None),
            ]
        );
        for wrong in [vec![Response::Done], vec![Response::Done; 3]] {
            let got = wrong.len();
            assert_eq!(
                merge_round(&round, &mut mirror, wrong),
                Err(EngineError::ResponseCount { expected: 2, got })
            );
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}
