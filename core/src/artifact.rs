//! Any artifact: naming what was encoded, and opening what was read from a store.

use serde::Serialize;

use crate::checkpoint::{Bucket, Root};
use crate::error::{Error, Result};
use crate::events::{DecodedBatch, EventBatch};
use crate::frame::{self, Compressor, Decompressor};
use crate::id::ArtifactId;
use crate::kind::ArtifactKind;
use crate::manifest::Manifest;
use crate::names::{ArtifactKey, OriginId};
use crate::segment::{EncodedSegment, Segment, decode_segment};
use crate::signature::PublicKey;

/// Canonical bytes and the key they are to be written under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub key: ArtifactKey,
    pub canonical: Vec<u8>,
}

impl Encoded {
    pub fn id(&self) -> ArtifactId {
        self.key.id()
    }

    /// The bytes to store: frame header plus the payload compressed by `compressor`.
    pub fn seal(&self, compressor: Option<&dyn Compressor>) -> Result<Vec<u8>> {
        frame::seal_with_id(self.key.kind(), &self.canonical, self.id(), compressor)
    }

    /// [`seal`](Self::seal) for several, compressed with one [`Compressor::compress_all`].
    pub fn seal_all(
        encoded: &[Encoded],
        compressor: Option<&dyn Compressor>,
    ) -> Result<Vec<Vec<u8>>> {
        let items: Vec<_> = encoded
            .iter()
            .map(|e| (e.key.kind(), e.canonical.as_slice(), e.id()))
            .collect();
        frame::seal_all_with_ids(&items, compressor)
    }

    pub fn segment(origin: &OriginId, segment: EncodedSegment) -> Self {
        Encoded {
            key: ArtifactKey::Segment {
                origin: origin.clone(),
                id: segment.reference.id,
            },
            canonical: segment.canonical,
        }
    }

    pub fn manifest(manifest: &Manifest) -> Result<Self> {
        let canonical = manifest.encode()?;
        Ok(Encoded {
            key: ArtifactKey::Manifest {
                origin: manifest.origin.clone(),
                id: ArtifactId::of(&canonical),
            },
            canonical,
        })
    }
}

/// A decoded artifact of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Artifact {
    Segment(Segment),
    Manifest(Box<Manifest>),
    Bucket(Bucket),
    Root { root: Root, signer: PublicKey },
    Events(DecodedBatch),
}

impl Artifact {
    /// The key that signed a root or an event batch (checked against the artifact already).
    pub fn signer(&self) -> Option<&PublicKey> {
        match self {
            Artifact::Root { signer, .. } => Some(signer),
            Artifact::Events(batch) => Some(&batch.signer),
            _ => None,
        }
    }

    pub fn kind(&self) -> ArtifactKind {
        match self {
            Artifact::Segment(_) => ArtifactKind::Segment,
            Artifact::Manifest(_) => ArtifactKind::Manifest,
            Artifact::Bucket(_) => ArtifactKind::Bucket,
            Artifact::Root { .. } => ArtifactKind::Root,
            Artifact::Events(_) => ArtifactKind::Events,
        }
    }

    /// The origin named inside the artifact (segments carry none).
    pub fn origin(&self) -> Option<&OriginId> {
        match self {
            Artifact::Segment(_) => None,
            Artifact::Manifest(m) => Some(&m.origin),
            Artifact::Bucket(b) => Some(&b.origin),
            Artifact::Root { root, .. } => Some(&root.origin),
            Artifact::Events(e) => Some(&e.batch.origin),
        }
    }

    /// Decodes canonical bytes of a known kind.
    pub fn decode(kind: ArtifactKind, canonical: &[u8]) -> Result<Self> {
        Ok(match kind {
            ArtifactKind::Segment => Artifact::Segment(decode_segment(canonical)?),
            ArtifactKind::Manifest => Artifact::Manifest(Box::new(Manifest::decode(canonical)?)),
            ArtifactKind::Bucket => Artifact::Bucket(Bucket::decode(canonical)?),
            ArtifactKind::Root => {
                let (root, signer) = Root::decode(canonical)?;
                Artifact::Root { root, signer }
            }
            ArtifactKind::Events => Artifact::Events(EventBatch::decode(canonical)?),
        })
    }

    /// Opens stored bytes read under `key`: frame, limits, id, decoding, and that the artifact
    /// agrees with its name (kind, origin, root sequence, batch HLC).
    pub fn open(key: &ArtifactKey, stored: &[u8]) -> Result<Self> {
        Artifact::open_with(key, stored, None)
    }

    /// [`Artifact::open`] with a host's zstd decoder (see [`frame::Decompressor`]).
    pub fn open_with(
        key: &ArtifactKey,
        stored: &[u8],
        decoder: Option<&dyn Decompressor>,
    ) -> Result<Self> {
        let opened = frame::open_with(stored, Some(key.kind()), Some(key.id()), decoder)?;
        let artifact = Artifact::decode(key.kind(), &opened.canonical)?;
        if let Some(origin) = artifact.origin()
            && origin != key.origin()
        {
            return Err(Error::OriginMismatch {
                expected: key.origin().to_string(),
                found: origin.to_string(),
            });
        }
        match (key, &artifact) {
            (ArtifactKey::Root { seq, .. }, Artifact::Root { root, .. }) if root.seq != *seq => {
                Err(Error::malformed(
                    "root",
                    format!("named with sequence {seq}, holds {}", root.seq),
                ))
            }
            (ArtifactKey::Events { hlc, .. }, Artifact::Events(d))
                if d.batch.events.first().map(|e| e.hlc) != Some(*hlc) =>
            {
                Err(Error::malformed(
                    "events",
                    "named with another HLC than its first event's",
                ))
            }
            _ => Ok(artifact),
        }
    }
}
