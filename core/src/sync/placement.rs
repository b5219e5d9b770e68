//! Placing verified artifacts into stores, healing corrupt copies on the way.
//!
//! Stores only put-if-absent. When a key already holds other bytes, the stored copy is read
//! back and verified: a valid copy (the same artifact, compressed differently) stays, a
//! corrupt one is replaced by the verified bytes. This is the one place that decides healing,
//! so no store re-implements it.

use std::collections::BTreeMap;

use crate::artifact::Artifact;
use crate::names::ArtifactKey;
use crate::sync::problem::Problem;
use crate::sync::store::{PutOutcome, Request, Response, StoreId, StoreRequest};

/// What became of one placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// The key did not exist and now holds the bytes.
    Created,
    /// The key held a corrupt copy, now replaced.
    Healed,
    /// The key held these bytes or another valid copy.
    Present,
    Failed(Problem),
}

impl Placed {
    pub fn is_ok(&self) -> bool {
        !matches!(self, Placed::Failed(_))
    }

    pub fn wrote(&self) -> bool {
        matches!(self, Placed::Created | Placed::Healed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Put,
    ReadBack,
    Replace,
}

#[derive(Debug)]
struct Pending {
    store: StoreId,
    key: String,
    bytes: Vec<u8>,
    step: Step,
    /// Puts tried: a key that keeps vanishing between put and read-back gives up.
    attempts: u8,
}

/// Puts in flight and their outcomes; see the module comment.
#[derive(Debug, Default)]
pub struct Placement {
    queued: Vec<Pending>,
    in_flight: Vec<Pending>,
    outcomes: BTreeMap<(StoreId, String), Placed>,
}

impl Placement {
    /// Queues `bytes` (already verified by the caller) for `key` in `store`.
    pub fn put(&mut self, store: StoreId, key: String, bytes: Vec<u8>) {
        self.queued.push(Pending {
            store,
            key,
            bytes,
            step: Step::Put,
            attempts: 0,
        });
    }

    /// Queues a replacement of a stored copy the caller already read and found corrupt
    /// (`bytes` verified): no put and read-back first.
    pub fn replace(&mut self, store: StoreId, key: String, bytes: Vec<u8>) {
        self.queued.push(Pending {
            store,
            key,
            bytes,
            step: Step::Replace,
            attempts: 0,
        });
    }

    pub fn is_idle(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty()
    }

    /// The outcome of a finished placement (it stays until taken).
    pub fn take(&mut self, store: StoreId, key: &str) -> Option<Placed> {
        self.outcomes.remove(&(store, key.to_owned()))
    }

    /// Every finished placement, in key order.
    pub fn take_all(&mut self) -> Vec<((StoreId, String), Placed)> {
        std::mem::take(&mut self.outcomes).into_iter().collect()
    }

    pub fn requests(&mut self) -> Vec<StoreRequest> {
        self.in_flight = std::mem::take(&mut self.queued);
        self.in_flight
            .iter()
            .map(|p| StoreRequest {
                store: p.store,
                request: match p.step {
                    Step::Put => Request::Put {
                        key: p.key.clone(),
                        bytes: p.bytes.clone(),
                    },
                    Step::ReadBack => Request::get(p.key.clone()),
                    Step::Replace => Request::Replace {
                        key: p.key.clone(),
                        bytes: p.bytes.clone(),
                    },
                },
            })
            .collect()
    }

    pub fn handle(&mut self, responses: Vec<Response>) {
        let in_flight = std::mem::take(&mut self.in_flight);
        for (mut p, response) in in_flight.into_iter().zip(responses) {
            let outcome = match (p.step, response) {
                (_, Response::Failed(e)) => Some(Placed::Failed(Problem::store(&e))),
                (Step::Put, Response::Put(PutOutcome::Created)) => Some(Placed::Created),
                (Step::Put, Response::Put(PutOutcome::Exists)) => Some(Placed::Present),
                (Step::Put, Response::Put(PutOutcome::Differs)) => {
                    p.attempts += 1;
                    p.step = Step::ReadBack;
                    None
                }
                (Step::ReadBack, Response::Got(Some(existing))) => self.settle(&mut p, &existing),
                (Step::ReadBack, Response::Got(None)) if p.attempts < 3 => {
                    p.step = Step::Put;
                    None
                }
                (Step::Replace, Response::Done) => Some(Placed::Healed),
                (_, other) => Some(Placed::Failed(Problem {
                    key: p.key.clone(),
                    class: crate::sync::problem::ProblemClass::StoreError,
                    reason: format!("unexpected answer from the store: {other:?}"),
                    disposition: crate::sync::problem::Disposition::Deferred,
                })),
            };
            match outcome {
                Some(o) => {
                    self.outcomes.insert((p.store, p.key), o);
                }
                None => self.queued.push(p),
            }
        }
    }

    /// The key holds `existing`, which differs from the bytes to place.
    fn settle(&self, p: &mut Pending, existing: &[u8]) -> Option<Placed> {
        if existing == p.bytes {
            return Some(Placed::Present);
        }
        let Ok(key) = p.key.parse::<ArtifactKey>() else {
            return Some(Placed::Failed(Problem::malformed(
                &p.key,
                "already exists with different bytes (keys are write-once)",
            )));
        };
        match Artifact::open(&key, existing) {
            Ok(_) => Some(Placed::Present),
            // Newer than this build can read is not proof of corruption, and the id matches.
            Err(e) if e.is_deferred() => Some(Placed::Present),
            Err(_) => {
                p.step = Step::Replace;
                None
            }
        }
    }
}
