//! agentsync-core: the sans-IO core of agentsync.
//!
//! It owns everything that must behave identically on every host: the data model, canonical
//! encodings, content ids, compression framing and limits, names, signatures. It performs no I/O
//! and reads no clock: hosts hand it values and bytes, and it hands back bytes and decisions.
//! `docs/format.md` is the wire spec this crate implements.

mod binary;
mod canonical_line;
mod envelope;

pub mod artifact;
pub mod checkpoint;
pub mod conformance;
pub mod error;
pub mod events;
pub mod frame;
pub mod hlc;
pub mod id;
pub mod keyring;
pub mod kind;
pub mod ledger;
pub mod limits;
pub mod manifest;
pub mod model;
pub mod names;
pub mod pricing;
pub mod segment;
pub mod signature;
pub mod sync;
pub mod timestamp;

pub use artifact::{Artifact, Encoded};
pub use checkpoint::{
    Bucket, BucketEntry, BucketRef, Checkpoint, CommittedCheckpoint, EventsMark, Listing, Root,
};
pub use error::{Error, Result};
pub use events::{Anchor, DecodedBatch, Event, EventBatch, Op, OrderKey, normalize_tag};
pub use frame::{Compressor, Decompressor, RuzstdCompressor, SharedDecompressor};
pub use hlc::{Hlc, HlcClock, TooFarAhead};
pub use id::ArtifactId;
pub use keyring::{KeyRing, Trust};
pub use kind::ArtifactKind;
pub use ledger::{
    Conflict, Curation, DeferReason, Field, LedgerState, Projection, Replay, SignedEvent,
};
pub use manifest::Manifest;
pub use model::{Message, Session, TokenUsage, ToolCall, ToolResultEvent, UsageEvent};
pub use names::{ArtifactKey, NativeId, OriginId, SessionGid};
pub use pricing::{Cost, PriceTable, PricingError, UsageTotals};
pub use segment::{EncodedSegment, Segment, SegmentRef, encode_segment, segment_messages};
pub use signature::{OriginKey, PublicKey};
