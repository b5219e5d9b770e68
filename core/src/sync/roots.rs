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
use crate::sync::store::{ListPage, Listing, Request, Response, StoreId, StoreRequest};

/// One store's `roots/` listing, made once per run and shared by every walk of the run
/// (export's own roots, the exchange, self-heal, import), and kept current with the roots the
/// run writes: a no-op sync lists each store's roots once and nothing else (issue 17 item 8).
#[derive(Debug, Clone)]
pub struct RootsListing {
    pub store: StoreId,
    pub entries: Vec<Listing>,
    /// The next page starts after this key; `None` once the listing is complete.
    after: Option<String>,
    started: bool,
    /// The listing failed: walks see what was listed before the failure.
    pub failed: bool,
}

impl RootsListing {
    pub fn new(store: StoreId) -> Self {
        RootsListing {
            store,
            entries: Vec::new(),
            after: None,
            started: false,
            failed: false,
        }
    }

    pub fn is_done(&self) -> bool {
        self.started && self.after.is_none()
    }

    /// The request for the next page (`None` when done).
    pub fn request(&self) -> Option<StoreRequest> {
        (!self.is_done()).then(|| StoreRequest {
            store: self.store,
            request: Request::List {
                prefix: crate::names::ROOTS_PREFIX.to_owned(),
                start_after: self.after.clone(),
            },
        })
    }

    /// The answer to [`RootsListing::request`]; a failure is returned for the caller to report.
    pub fn handle(&mut self, response: Response) -> Option<Problem> {
        self.started = true;
        self.after = None;
        match response {
            Response::Listed(page) => {
                if page.truncated {
                    self.after = page.entries.last().map(|l| l.key.clone());
                }
                self.entries.extend(page.entries);
                None
            }
            Response::Failed(e) => {
                self.failed = true;
                Some(Problem::store(&e))
            }
            _ => {
                self.failed = true;
                Some(Problem::malformed(
                    crate::names::ROOTS_PREFIX,
                    "the store answered a listing with a response of the wrong kind",
                ))
            }
        }
    }

    /// A root this run wrote to the store.
    pub fn wrote(&mut self, key: &str) {
        if !self.entries.iter().any(|e| e.key == key) {
            self.entries.push(Listing {
                key: key.to_owned(),
                modified_ms: None,
                size: 0,
            });
        }
    }
}

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
    /// Roots listed with the sequence number of their origin's newest verified root: each is
    /// fetched once, and reported if it verifies too (two writers for one origin).
    twins: Vec<(ArtifactKey, ArtifactKey)>,
    twins_in_flight: BTreeMap<ArtifactKey, ArtifactKey>,
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
            twins: Vec::new(),
            twins_in_flight: BTreeMap::new(),
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

    /// Takes the store's roots from a listing already made: the walk only fetches.
    pub fn fed(mut self, listing: &RootsListing) -> Self {
        self.store = listing.store;
        let prefix = self.prefix.clone();
        self.listed(ListPage {
            entries: listing
                .entries
                .iter()
                .filter(|e| e.key.starts_with(&prefix))
                .cloned()
                .collect(),
            truncated: false,
        });
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
                for (twin, newest) in std::mem::take(&mut self.twins) {
                    self.in_flight.push(twin.clone());
                    self.twins_in_flight.insert(twin, newest);
                }
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
                    match self.twins_in_flight.remove(&key) {
                        Some(newest) => self.twin_fetched(key, &newest, response, keyring),
                        None => self.fetched(key, response, keyring),
                    }
                }
                if self.candidates.is_empty() && self.twins.is_empty() {
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
            match self.floors.get(&origin) {
                Some(floor) if key <= *floor => {
                    // Below the floor but with its number: another writer's root (fetched
                    // once the walk is done, and reported if validly signed).
                    if key != *floor && key.root_seq() == floor.root_seq() {
                        self.twins.push((key, floor.clone()));
                    }
                }
                _ => self.candidates.entry(origin).or_default().push(key),
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
                    // A replaced key's or a revoked origin's roots stay in the store; passing
                    // over them is what the user decided (`trust`), not news on every run.
                    Err(_) if keyring.is_decided_against(&origin, &signer) => None,
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
                let listed = self.candidates.remove(&origin).unwrap_or_default();
                let same_seq = |k: &ArtifactKey| *k != v.key && k.root_seq() == v.key.root_seq();
                // The floor verified on an earlier run: no need to fetch it again.
                if let Some(floor) = self.floors.get(&origin).filter(|f| same_seq(f)) {
                    self.problems
                        .push(Problem::duplicate_sequence(floor, &v.key));
                }
                self.twins.extend(
                    listed
                        .into_iter()
                        .filter(|k| same_seq(k))
                        .map(|k| (k, v.key.clone())),
                );
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

    /// A root with the sequence number of the newest: reported if it is validly signed too;
    /// anything else about it (forged, gone) is for the walk of an older root to find.
    fn twin_fetched(
        &mut self,
        key: ArtifactKey,
        newest: &ArtifactKey,
        response: Response,
        keyring: &KeyRing,
    ) {
        if let Response::Got(Some(bytes)) = response
            && let Ok(Artifact::Root { signer, .. }) = Artifact::open(&key, &bytes)
            && keyring.get(key.origin()) == Some(&signer)
        {
            self.problems
                .push(Problem::duplicate_sequence(&key, newest));
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
    }
}
