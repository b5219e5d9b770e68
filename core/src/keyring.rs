//! Pinned origin keys: trust on first sight, then only that key, until the user decides
//! otherwise (trust another key, or revoke the origin).

use std::collections::{BTreeMap, BTreeSet};

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
    /// The newest other key an origin's artifacts were refused for, until the user trusts it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    refused: BTreeMap<OriginId, PublicKey>,
    /// Origins the user revoked: every artifact they sign is refused.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    revoked: BTreeSet<OriginId>,
    /// Keys the user replaced with [`KeyRing::trust`]: still refused, but not offered again as
    /// a key to trust.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    retired: BTreeMap<OriginId, BTreeSet<PublicKey>>,
}

impl KeyRing {
    pub fn get(&self, origin: &OriginId) -> Option<&PublicKey> {
        self.pinned.get(origin)
    }

    /// Every pinned origin and its key, in origin order.
    pub fn pinned(&self) -> impl Iterator<Item = (&OriginId, &PublicKey)> {
        self.pinned.iter()
    }

    /// The newest key other than the pinned one that `origin`'s artifacts were signed with.
    pub fn refused(&self, origin: &OriginId) -> Option<&PublicKey> {
        self.refused.get(origin)
    }

    pub fn is_revoked(&self, origin: &OriginId) -> bool {
        self.revoked.contains(origin)
    }

    /// Whether the user replaced `key` as `origin`'s key, or revoked `origin`: what it signs is
    /// refused by the user's decision, which needs no report on every run.
    pub fn is_decided_against(&self, origin: &OriginId, key: &PublicKey) -> bool {
        self.revoked.contains(origin) || self.is_retired(origin, key)
    }

    fn is_retired(&self, origin: &OriginId, key: &PublicKey) -> bool {
        self.retired.get(origin).is_some_and(|r| r.contains(key))
    }

    /// Every revoked origin, pinned or not.
    pub fn revoked(&self) -> impl Iterator<Item = &OriginId> {
        self.revoked.iter()
    }

    /// The user's decision that `key` is `origin`'s key from now on (a machine that lost its
    /// key and kept its origin, say): it replaces the pinned key, and a revocation ends.
    pub fn trust(&mut self, origin: OriginId, key: PublicKey) {
        self.refused.remove(&origin);
        self.revoked.remove(&origin);
        if let Some(old) = self.pinned.insert(origin.clone(), key)
            && old != key
        {
            self.retired.entry(origin.clone()).or_default().insert(old);
        }
        if let Some(retired) = self.retired.get_mut(&origin) {
            retired.remove(&key);
            if retired.is_empty() {
                self.retired.remove(&origin);
            }
        }
    }

    /// The user's decision to accept nothing more signed for `origin` (a lost machine, a key
    /// that leaked); what was imported before stays.
    pub fn revoke(&mut self, origin: OriginId) {
        self.refused.remove(&origin);
        self.revoked.insert(origin);
    }

    /// Pins a key explicitly (an origin's own key, or one confirmed out of band).
    pub fn pin(&mut self, origin: OriginId, key: PublicKey) -> Result<Trust> {
        self.check(&origin, &key)
    }

    /// Accepts `key` for `origin` if it is the pinned one, pins it if none is, and rejects any
    /// other key with [`Error::KeyMismatch`].
    pub fn check(&mut self, origin: &OriginId, key: &PublicKey) -> Result<Trust> {
        if self.revoked.contains(origin) {
            return Err(Error::Revoked {
                origin: origin.to_string(),
            });
        }
        match self.pinned.get(origin) {
            Some(pinned) if pinned == key => Ok(Trust::Pinned),
            Some(pinned) => {
                let error = Error::KeyMismatch {
                    origin: origin.to_string(),
                    pinned: pinned.to_hex(),
                    found: key.to_hex(),
                };
                if !self.is_retired(origin, key) {
                    self.refused.insert(origin.clone(), *key);
                }
                Err(error)
            }
            None => {
                self.pinned.insert(origin.clone(), *key);
                Ok(Trust::NewlyPinned)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::OriginKey;

    fn key(seed: u8) -> PublicKey {
        OriginKey::from_secret([seed; 32]).public()
    }

    #[test]
    fn first_key_pins_another_is_refused_and_remembered_until_trusted() {
        let origin: OriginId = "desktop-3d4e5f".parse().unwrap();
        let mut ring = KeyRing::default();
        assert_eq!(ring.check(&origin, &key(1)).unwrap(), Trust::NewlyPinned);
        assert_eq!(ring.check(&origin, &key(1)).unwrap(), Trust::Pinned);
        assert_eq!(
            ring.check(&origin, &key(2)).unwrap_err().class(),
            "KeyMismatch"
        );
        assert_eq!(ring.refused(&origin), Some(&key(2)));
        ring.trust(origin.clone(), key(2));
        assert_eq!(
            (ring.get(&origin), ring.refused(&origin)),
            (Some(&key(2)), None)
        );
        // The replaced key is refused, and not offered as a key to trust again.
        assert_eq!(
            ring.check(&origin, &key(1)).unwrap_err().class(),
            "KeyMismatch"
        );
        assert_eq!(ring.refused(&origin), None);
        assert_eq!(ring.check(&origin, &key(2)).unwrap(), Trust::Pinned);
        // Trusting the old key again is the user's call, too.
        ring.trust(origin.clone(), key(1));
        assert_eq!(ring.check(&origin, &key(1)).unwrap(), Trust::Pinned);
        assert_eq!(
            ring.check(&origin, &key(2)).unwrap_err().class(),
            "KeyMismatch"
        );
        assert_eq!(ring.refused(&origin), None);
    }

    #[test]
    fn a_revoked_origin_is_refused_with_any_key_until_trusted_again() {
        let origin: OriginId = "desktop-3d4e5f".parse().unwrap();
        let mut ring = KeyRing::default();
        ring.check(&origin, &key(1)).unwrap();
        ring.revoke(origin.clone());
        for k in [key(1), key(3)] {
            assert_eq!(ring.check(&origin, &k).unwrap_err().class(), "Revoked");
        }
        // A never-seen origin can be revoked before its first artifact, too.
        let other: OriginId = "stolen-0a0a0a".parse().unwrap();
        ring.revoke(other.clone());
        assert_eq!(ring.check(&other, &key(4)).unwrap_err().class(), "Revoked");
        assert_eq!(ring.get(&other), None);
        ring.trust(origin.clone(), key(1));
        assert_eq!(ring.check(&origin, &key(1)).unwrap(), Trust::Pinned);
    }

    #[test]
    fn the_serialized_ring_is_unchanged_until_a_decision_or_refusal() {
        let origin: OriginId = "desktop-3d4e5f".parse().unwrap();
        let mut ring = KeyRing::default();
        ring.check(&origin, &key(1)).unwrap();
        let json = serde_json::to_string(&ring).unwrap();
        assert_eq!(
            json,
            format!(
                "{{\"pinned\":{{\"desktop-3d4e5f\":\"{}\"}}}}",
                key(1).to_hex()
            )
        );
        assert_eq!(serde_json::from_str::<KeyRing>(&json).unwrap(), ring);
    }
}
