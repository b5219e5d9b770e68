//! The versioned envelope of the binary kinds (manifest, bucket, root, events).
//!
//! ```text
//! "AS"            2 bytes
//! u8              kind code (must match the frame header and the key)
//! varint          kind version (1)
//! record          the body
//! record          signed kinds only: public key [32] || signature [64]
//! ```
//!
//! The version is read before anything else: a newer version is reported as deferred, whatever
//! follows it.

use crate::binary::{Reader, Writer};
use crate::error::{Error, Result};
use crate::kind::ArtifactKind;
use crate::limits;
use crate::signature::{self, OriginKey, PublicKey};

pub const ENVELOPE_MAGIC: [u8; 2] = *b"AS";

/// Writes envelope and body; signs when `key` is given (required for signed kinds).
pub(crate) fn encode(
    kind: ArtifactKind,
    key: Option<&OriginKey>,
    body: impl FnOnce(&mut Writer),
) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&ENVELOPE_MAGIC);
    w.u8(kind.code());
    w.varint(kind.version());
    w.record(body);
    let mut bytes = w.into_bytes();
    if let Some(key) = key {
        let sig = signature::sign(key, kind, &bytes);
        let mut w = Writer::new();
        w.record(|w| {
            w.raw(&key.public().0);
            w.raw(&sig);
        });
        bytes.extend_from_slice(&w.into_bytes());
    }
    bytes
}

/// Reads the envelope, hands the body to `read_body`, checks the signature of signed kinds, and
/// requires that nothing follows.
pub(crate) fn decode<T>(
    kind: ArtifactKind,
    bytes: &[u8],
    read_body: impl FnOnce(&mut Reader<'_>) -> Result<T>,
) -> Result<(T, Option<PublicKey>)> {
    let what = kind.name();
    let mut r = Reader::new(bytes);
    let magic = r.array::<2>(what)?;
    if magic != ENVELOPE_MAGIC {
        return Err(Error::malformed(what, "missing AS envelope magic"));
    }
    let found = ArtifactKind::from_code(r.u8(what)?)?;
    if found != kind {
        return Err(Error::KindMismatch {
            expected: kind.name(),
            found: found.name(),
        });
    }
    let version = r.varint(what)?;
    if version == 0 {
        return Err(Error::malformed(what, "version 0"));
    }
    if version > kind.version() {
        return Err(Error::FutureVersion {
            what,
            version,
            supported: kind.version(),
        });
    }
    let value = r.record(what, limits::MAX_RECORD, read_body)?;
    let signer = if kind.is_signed() {
        let signed_prefix = r.consumed();
        // Exactly a key and a signature: trailing bytes here would give one signed artifact
        // many encodings (and ids).
        let (public, sig) = r.record("signature", limits::MAX_RECORD, |r| {
            let public = PublicKey(r.array::<32>("public key")?);
            let sig = r.array::<64>("signature")?;
            r.finish("signature record")?;
            Ok((public, sig))
        })?;
        signature::verify(&public, &sig, kind, signed_prefix)?;
        Some(public)
    } else {
        None
    };
    r.finish(what)?;
    Ok((value, signer))
}
