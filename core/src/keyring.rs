//! Pinned origin keys: trust on first sight, then only that key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::OriginId;
use crate::signature::PublicKey;

/// Whether a key was already pinned or has just been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// First signed artifact of this origin: its key is now pinned.
    NewlyPinned,
    Pinned,
}

/// The public key pinned for each origin. Hosts persist it with their sync state; a rebuild of
/// the derived tables must keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRing {
    pinned: BTreeMap<OriginId, PublicKey>,
}

impl KeyRing {
    pub fn get(&self, origin: &OriginId) -> Option<&PublicKey> {
        self.pinned.get(origin)
    }

    /// Pins a key explicitly (an origin's own key, or one confirmed out of band).
    pub fn pin(&mut self, origin: OriginId, key: PublicKey) -> Result<Trust> {
        self.check(&origin, &key)
    }

    /// Accepts `key` for `origin` if it is the pinned one, pins it if none is, and rejects any
    /// other key with [`Error::KeyMismatch`].
    pub fn check(&mut self, origin: &OriginId, key: &PublicKey) -> Result<Trust> {
        match self.pinned.get(origin) {
            Some(pinned) if pinned == key => Ok(Trust::Pinned),
            Some(pinned) => Err(Error::KeyMismatch {
                origin: origin.to_string(),
                pinned: pinned.to_hex(),
                found: key.to_hex(),
            }),
            None => {
                self.pinned.insert(origin.clone(), *key);
                Ok(Trust::NewlyPinned)
            }
        }
    }
}
