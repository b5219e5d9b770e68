//! The newest *verified* root of each origin in one store: the one walk that export, exchange
//! and import share.
//!
//! Names alone cannot be trusted: anyone who can write to a shared target can plant
//! `roots/<origin>/<huge seq>-<id>.root`. So the walk lists the roots, then for each origin
//! fetches its greatest key and verifies it (frame, id, name, signature, the pinned key); a key
//! that fails is reported and the walk falls back to the next greatest, until one verifies or
//! it reaches the origin's `floor` (a root this machine verified before, which it need not
//! fetch again). A forged name therefore costs one extra request per run and shadows nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::artifact::Artifact;
use crate::checkpoint::Root;
use crate::keyring::KeyRing;
use crate::names::{ArtifactKey, OriginId};
use crate::sync::problem::Problem;
use crate::sync::store::{ListPage, Request, Response, StoreId, StoreRequest};

/// A root that verified, with its stored bytes (so a relay can copy them verbatim).
#[derive(Debug, Clone)]
pub struct VerifiedRoot {
    pub key: ArtifactKey,
    pub root: Root,
    pub bytes: Vec<u8>,
}

/// What the walk found for one origin.
#[derive(Debug, Clone)]
pub enum Newest {
    /// A root newer than the floor verified.
    Verified(VerifiedRoot),
    /// Nothing newer than the floor verified; the floor key is still the newest known good.
    Floor(ArtifactKey),
}

#[derive(Debug)]
enum Phase {
    List { after: Option<String> },
    Fetch,
    Done,
}

/// Walks one store's roots; see the module comment. Drive it with [`RootWalk::requests`] and
/// [`RootWalk::handle`] until [`RootWalk::is_done`].
#[derive(Debug)]
pub struct RootWalk {
    store: StoreId,
    prefix: String,
    /// Origins to walk (`None`: every origin listed), and origins never to walk.
    only: Option<BTreeSet<OriginId>>,
    skip: BTreeSet<OriginId>,
    floors: BTreeMap<OriginId, ArtifactKey>,
    phase: Phase,
    /// Keys newer than the floor, ascending; the walk fetches the last one.
    candidates: BTreeMap<OriginId, Vec<ArtifactKey>>,
    in_flight: Vec<ArtifactKey>,
    /// Greatest key listed per origin, verified or not.
    pub greatest: BTreeMap<OriginId, ArtifactKey>,
    pub found: BTreeMap<OriginId, Newest>,
    /// Origins whose greatest listed root sorts below their floor (a rollback, or a store
    /// that lags): ignored.
    pub older_than_floor: Vec<ArtifactKey>,
    pub problems: Vec<Problem>,
    pub requests: usize,
    /// Requests of the last round, not answered yet.
    issued: usize,
}

impl RootWalk {
    /// Walks every origin under `roots/` (or one origin's `roots/<origin>/`).
    pub fn new(store: StoreId, only_origin: Option<&OriginId>) -> Self {
        let prefix = only_origin.map_or_else(
            || crate::names::ROOTS_PREFIX.to_owned(),
            ArtifactKey::roots_prefix,
        );
        RootWalk {
            store,
            prefix,
            only: only_origin.map(|o| BTreeSet::from([o.clone()])),
            skip: BTreeSet::new(),
            floors: BTreeMap::new(),
            phase: Phase::List { after: None },
            candidates: BTreeMap::new(),
            in_flight: Vec::new(),
            greatest: BTreeMap::new(),
            found: BTreeMap::new(),
            older_than_floor: Vec::new(),
            problems: Vec::new(),
            requests: 0,
            issued: 0,
        }
    }

    /// Roots already verified by this machine: the walk stops there without fetching.
    pub fn with_floors(mut self, floors: BTreeMap<OriginId, ArtifactKey>) -> Self {
        self.floors = floors;
        self
    }

    pub fn on_store(mut self, store: StoreId) -> Self {
        self.store = store;
        self
    }

    pub fn only(mut self, origins: BTreeSet<OriginId>) -> Self {
        self.only = Some(origins);
        self
    }

    pub fn skip(mut self, origin: OriginId) -> Self {
        self.skip.insert(origin);
        self
    }

    /// Listing done: walk (fetch and verify) only these origins; the others are left out of
    /// `found`. For a caller that needs verification only where stores disagree.
    pub fn restrict(&mut self, origins: &BTreeSet<OriginId>) {
        self.candidates.retain(|o, _| origins.contains(o));
    }

    pub fn is_listed(&self) -> bool {
        !matches!(self.phase, Phase::List { .. })
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The next round's requests (empty while waiting on nothing: then the walk is done or
    /// its listing is done and the caller may [`RootWalk::restrict`] before continuing).
    pub fn requests(&mut self) -> Vec<StoreRequest> {
        let out = self.round();
        self.issued = out.len();
        out
    }

    /// How many answers [`RootWalk::handle`] expects.
    pub fn pending(&self) -> usize {
        self.issued
    }

    fn round(&mut self) -> Vec<StoreRequest> {
        let store = self.store;
        match &self.phase {
            Phase::List { after } => vec![StoreRequest {
                store,
                request: Request::List {
                    prefix: self.prefix.clone(),
                    start_after: after.clone(),
                },
            }],
            Phase::Fetch => {
                self.in_flight = self
                    .candidates
                    .values()
                    .filter_map(|keys| keys.last().cloned())
                    .collect();
                if self.in_flight.is_empty() {
                    self.finish();
                }
                self.in_flight
                    .iter()
                    .map(|k| StoreRequest {
                        store,
                        request: Request::get(k.to_string()),
                    })
                    .collect()
            }
            Phase::Done => Vec::new(),
        }
    }

    /// Answers to the last [`RootWalk::requests`], in order.
    pub fn handle(&mut self, responses: Vec<Response>, keyring: &mut KeyRing) {
        self.requests += responses.len();
        self.issued = 0;
        match &self.phase {
            Phase::List { .. } => {
                let page = match responses.into_iter().next() {
                    Some(Response::Listed(page)) => page,
                    Some(Response::Failed(e)) => {
                        self.problems.push(Problem::store(&e));
                        ListPage::default()
                    }
                    _ => ListPage::default(),
                };
                self.listed(page);
            }
            Phase::Fetch => {
                let keys = std::mem::take(&mut self.in_flight);
                for (key, response) in keys.into_iter().zip(responses) {
                    self.fetched(key, response, keyring);
                }
                if self.candidates.is_empty() {
                    self.finish();
                }
            }
            Phase::Done => {}
        }
    }

    fn wanted(&self, origin: &OriginId) -> bool {
        !self.skip.contains(origin) && self.only.as_ref().is_none_or(|o| o.contains(origin))
    }

    fn listed(&mut self, page: ListPage) {
        let last = page.entries.last().map(|l| l.key.clone());
        for entry in &page.entries {
            let Ok(key @ ArtifactKey::Root { .. }) = entry.key.parse::<ArtifactKey>() else {
                continue;
            };
            let origin = key.origin().clone();
            if !self.wanted(&origin) {
                continue;
            }
            let greatest = self
                .greatest
                .entry(origin.clone())
                .or_insert_with(|| key.clone());
            if key > *greatest {
                *greatest = key.clone();
            }
            if self.floors.get(&origin).is_none_or(|floor| key > *floor) {
                self.candidates.entry(origin).or_default().push(key);
            }
        }
        if page.truncated && last.is_some() {
            self.phase = Phase::List { after: last };
            return;
        }
        for keys in self.candidates.values_mut() {
            keys.sort();
            keys.dedup();
        }
        for (origin, floor) in &self.floors {
            if !self.candidates.contains_key(origin) {
                if let Some(greatest) = self.greatest.get(origin)
                    && greatest < floor
                {
                    self.older_than_floor.push(greatest.clone());
                }
                if self.greatest.contains_key(origin) {
                    self.found
                        .insert(origin.clone(), Newest::Floor(floor.clone()));
                }
            }
        }
        self.phase = Phase::Fetch;
    }

    fn fetched(&mut self, key: ArtifactKey, response: Response, keyring: &mut KeyRing) {
        let origin = key.origin().clone();
        let text = key.to_string();
        let verified = match response {
            Response::Got(Some(bytes)) => match Artifact::open(&key, &bytes) {
                Ok(Artifact::Root { root, signer }) => match keyring.check(&origin, &signer) {
                    Ok(_) => Some(VerifiedRoot { key, root, bytes }),
                    Err(e) => {
                        self.problems.push(Problem::rejected(&text, &e));
                        None
                    }
                },
                Ok(_) => None,
                Err(e) => {
                    self.problems.push(Problem::rejected(&text, &e));
                    None
                }
            },
            // Listed, then gone (GC of a superseded root, listing lag): try the next one.
            Response::Got(None) => None,
            Response::Failed(e) => {
                // Not proof of anything: stop walking this origin for this run.
                self.problems.push(Problem::store(&e));
                self.candidates.remove(&origin);
                return;
            }
            _ => None,
        };
        match verified {
            Some(v) => {
                self.candidates.remove(&origin);
                self.found.insert(origin, Newest::Verified(v));
            }
            None => {
                let keys = self.candidates.entry(origin.clone()).or_default();
                keys.pop();
                if keys.is_empty() {
                    self.candidates.remove(&origin);
                    if let Some(floor) = self.floors.get(&origin) {
                        self.found.insert(origin, Newest::Floor(floor.clone()));
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
    }
}
