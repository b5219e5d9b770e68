//! Origin signatures (ed25519) on checkpoint roots and event batches.
//!
//! A signed artifact ends with a signature record `{ public key [32], signature [64] }` over
//! `"agentsync/v1/<kind>\0" || every canonical byte before the signature record`. The core checks
//! that the signature verifies against the key it carries; whether that key is the one pinned for
//! the origin is the caller's check ([`crate::PublicKey`] values compare by bytes).
//! Key generation needs randomness, which hosts supply: the core only derives a key from 32
//! secret bytes.

use core::fmt;

use ed25519_dalek::{Signer, SigningKey};

use crate::error::{Error, Result};
use crate::kind::ArtifactKind;

/// An origin's public key: 32 bytes, rendered as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl core::str::FromStr for PublicKey {
    type Err = Error;

    /// 64 hex digits of a valid ed25519 public key (as `status`, `trust` and `init` print it).
    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason: &'static str| Error::InvalidName {
            what: "public key",
            name: text.to_owned(),
            reason,
        };
        let mut bytes = [0u8; 32];
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("not 64 lowercase hex digits"));
        }
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| invalid("not 64 lowercase hex digits"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| invalid("not an ed25519 public key"))?;
        Ok(PublicKey(bytes))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(PublicKey(out))
    }
}

/// An origin's secret signing key. Never part of any artifact.
pub struct OriginKey(SigningKey);

impl OriginKey {
    /// Derives the key from 32 secret bytes (drawn by the host from its random source).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        OriginKey(SigningKey::from_bytes(&secret))
    }

    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
}

impl fmt::Debug for OriginKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OriginKey(public {})", self.public().to_hex())
    }
}

fn signed_message(kind: ArtifactKind, prefix: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(prefix.len() + 24);
    msg.extend_from_slice(b"agentsync/v1/");
    msg.extend_from_slice(kind.name().as_bytes());
    msg.push(0);
    msg.extend_from_slice(prefix);
    msg
}

pub(crate) fn sign(key: &OriginKey, kind: ArtifactKind, prefix: &[u8]) -> [u8; 64] {
    key.0.sign(&signed_message(kind, prefix)).to_bytes()
}

pub(crate) fn verify(
    public: &PublicKey,
    signature: &[u8; 64],
    kind: ArtifactKind,
    prefix: &[u8],
) -> Result<()> {
    let bad = || Error::BadSignature { what: kind.name() };
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public.0).map_err(|_| bad())?;
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(&signed_message(kind, prefix), &sig)
        .map_err(|_| bad())
}
