//! Checkpoints: an origin's set of sessions (native id → manifest id), as a signed root over
//! hash-bucketed maps, so that changing one session rewrites one small bucket and the root.
//!
//! A session's bucket is the first `bits` bits (big-endian) of BLAKE3(native id). `bits` is the
//! smallest value in 0..=16 for which the session count is at most 128 × 2^bits, so buckets hold
//! about 128 sessions or fewer; it is a function of the count alone, so every writer of the same
//! session set produces the same buckets and ids.
//!
//! Bucket body: `str origin, u8 bits, varint index, varint n, n × record { str native_id,
//! id [32] }` (entries in byte order of native id, unique, all hashing to `index`). An entry may
//! append its [`Listing`] (`record session, varint message_count`, as the manifest states them),
//! so a reader lists an origin's sessions from its buckets, before it fetches a manifest.
//! Root body: `str origin, varint seq, signed-varint created_ms, u8 bits, varint session_count,
//! varint n, n × record { varint index, id [32], varint sessions }` (non-empty buckets only, by
//! index), then the events mark (`u8` 0: no batch, 1: followed by record { str hlc, id [32],
//! varint count } of the newest event batch and the number of batches; absent in roots of
//! older writers), followed by the origin's signature.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::artifact::Encoded;
use crate::envelope;
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::id::ArtifactId;
use crate::kind::ArtifactKind;
use crate::limits::{self, BUCKET_TARGET_ENTRIES, MAX_BUCKET_BITS, MAX_BUCKET_ENTRIES};
use crate::model::Session;
use crate::names::{ArtifactKey, NativeId, OriginId};
use crate::signature::{OriginKey, PublicKey};

/// The bucket bits for a checkpoint of `sessions` sessions.
pub fn bucket_bits_for(sessions: u64) -> u8 {
    let mut bits = 0u8;
    while bits < MAX_BUCKET_BITS && sessions > (BUCKET_TARGET_ENTRIES as u64) << bits {
        bits += 1;
    }
    bits
}

/// The bucket a session falls in.
pub fn bucket_of(native: &NativeId, bits: u8) -> u32 {
    if bits == 0 {
        return 0;
    }
    let hash = blake3::hash(native.as_str().as_bytes());
    let b = hash.as_bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) >> (32 - u32::from(bits))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEntry {
    pub session: NativeId,
    pub manifest: ArtifactId,
    /// What the manifest says of the session, for listing it before the manifest is fetched.
    /// Absent in buckets of older writers, and in a bucket too large with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<Listing>,
}

/// A session as a list shows it: the record and message count of its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub session: Session,
    pub message_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub origin: OriginId,
    pub bits: u8,
    pub index: u32,
    pub entries: Vec<BucketEntry>,
}

impl Bucket {
    /// The entries that carry a listing: sessions a host may list before their import.
    pub fn listed(&self) -> impl Iterator<Item = &BucketEntry> {
        self.entries.iter().filter(|e| e.listing.is_some())
    }

    fn validate(&self) -> Result<()> {
        check_bits(self.bits)?;
        if u64::from(self.index) >= 1u64 << self.bits {
            return Err(Error::malformed(
                "bucket",
                format!("index {} out of range for {} bits", self.index, self.bits),
            ));
        }
        limits::check_count("bucket entries", self.entries.len(), MAX_BUCKET_ENTRIES)?;
        for pair in self.entries.windows(2) {
            if pair[0].session >= pair[1].session {
                return Err(Error::malformed(
                    "bucket",
                    "entries are not in strictly increasing session order",
                ));
            }
        }
        for entry in &self.entries {
            if let Some(listing) = &entry.listing {
                if listing.session.native_id != entry.session {
                    return Err(Error::malformed(
                        "bucket",
                        format!(
                            "entry {} lists session {}",
                            entry.session, listing.session.native_id
                        ),
                    ));
                }
                listing.session.validate()?;
            }
            if bucket_of(&entry.session, self.bits) != self.index {
                return Err(Error::malformed(
                    "bucket",
                    format!(
                        "session {} does not hash into bucket {}",
                        entry.session, self.index
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        Ok(envelope::encode(ArtifactKind::Bucket, None, |w| {
            w.str(self.origin.as_str());
            w.u8(self.bits);
            w.varint(u64::from(self.index));
            w.varint(self.entries.len() as u64);
            for e in &self.entries {
                w.record(|w| {
                    w.str(e.session.as_str());
                    w.id(&e.manifest);
                    if let Some(listing) = &e.listing {
                        listing.session.write(w);
                        w.varint(listing.message_count);
                    }
                });
            }
        }))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (bucket, _) = envelope::decode(ArtifactKind::Bucket, bytes, |r| {
            let origin: OriginId = r.str("bucket.origin", limits::MAX_ORIGIN)?.parse()?;
            let bits = r.u8("bucket.bits")?;
            let index = r.u32("bucket.index")?;
            let n = r.count("bucket entries", MAX_BUCKET_ENTRIES, 34)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(r.record("bucket entry", limits::MAX_RECORD, |r| {
                    let session = r
                        .str("bucket entry session", limits::MAX_NATIVE_ID)?
                        .parse()?;
                    let manifest = r.id("bucket entry manifest")?;
                    let listing = if r.remaining() > 0 {
                        Some(Listing {
                            session: Session::read(r)?,
                            message_count: r.varint("bucket entry message_count")?,
                        })
                    } else {
                        None
                    };
                    Ok(BucketEntry {
                        session,
                        manifest,
                        listing,
                    })
                })?);
            }
            Ok(Bucket {
                origin,
                bits,
                index,
                entries,
            })
        })?;
        bucket.validate()?;
        Ok(bucket)
    }

    /// Entries that are new or point at another manifest than in `previous`. Entries missing
    /// here but present in `previous` are not reported: a session absent from a checkpoint is
    /// never a deletion.
    pub fn changed_since<'a>(
        &'a self,
        previous: &BTreeMap<NativeId, ArtifactId>,
    ) -> impl Iterator<Item = &'a BucketEntry> {
        self.entries
            .iter()
            .filter(move |e| previous.get(&e.session) != Some(&e.manifest))
    }
}

fn check_bits(bits: u8) -> Result<()> {
    if bits > MAX_BUCKET_BITS {
        return Err(Error::malformed(
            "checkpoint",
            format!("{bits} bucket bits, at most {MAX_BUCKET_BITS} allowed"),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRef {
    pub index: u32,
    pub id: ArtifactId,
    pub sessions: u32,
}

/// What a root says of its origin's event batches: the newest one the origin had written when
/// it wrote the root, and how many it had written. Writers put batches before the root and
/// relays copy them before it, so a store that holds the root holds every batch up to the mark;
/// a reader that handled that many batches up to the mark need not list the origin's batches
/// again while the root stays the newest (issue 17 item 8). The count catches a transport that
/// delivers the root before an older batch (a replicated folder): the reader then lists again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventsMark {
    /// A root of a writer from before the mark (format rule 1: the field is absent): nothing
    /// is known, readers list the batches.
    #[default]
    Unstated,
    /// The origin had written no event batch.
    NoBatch,
    /// The newest batch, by its key's HLC and id, and the number of batches up to it.
    Newest {
        hlc: Hlc,
        id: ArtifactId,
        count: u64,
    },
}

impl EventsMark {
    pub fn is_stated(&self) -> bool {
        !matches!(self, EventsMark::Unstated)
    }

    /// The key of the batch the mark names, if any.
    pub fn key(&self, origin: &OriginId) -> Option<ArtifactKey> {
        match self {
            EventsMark::Newest { hlc, id, .. } => Some(ArtifactKey::Events {
                origin: origin.clone(),
                hlc: *hlc,
                id: *id,
            }),
            _ => None,
        }
    }

    /// The mark after publishing one more batch, `key`. An unstated mark stays unstated: the
    /// batches before it are not counted.
    pub fn with(self, key: &ArtifactKey) -> EventsMark {
        let ArtifactKey::Events { hlc, id, .. } = key else {
            return self;
        };
        match self {
            EventsMark::Unstated => self,
            EventsMark::NoBatch => EventsMark::Newest {
                hlc: *hlc,
                id: *id,
                count: 1,
            },
            EventsMark::Newest {
                hlc: h,
                id: i,
                count,
            } => {
                let (hlc, id) = (h, i).max((*hlc, *id));
                EventsMark::Newest {
                    hlc,
                    id,
                    count: count.saturating_add(1),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    pub origin: OriginId,
    /// Strictly increasing per origin; names sort by it.
    pub seq: u64,
    /// The writer's wall clock when it wrote the root (informational).
    pub created_ms: i64,
    pub bits: u8,
    pub session_count: u64,
    pub buckets: Vec<BucketRef>,
    #[serde(default)]
    pub events: EventsMark,
}

impl Root {
    fn validate(&self) -> Result<()> {
        check_bits(self.bits)?;
        let max = 1usize << self.bits;
        limits::check_count("root buckets", self.buckets.len(), max)?;
        for pair in self.buckets.windows(2) {
            if pair[0].index >= pair[1].index {
                return Err(Error::malformed(
                    "root",
                    "buckets are not in strictly increasing index order",
                ));
            }
        }
        if let Some(last) = self.buckets.last()
            && last.index as usize >= max
        {
            return Err(Error::malformed(
                "root",
                format!("bucket index {} out of range", last.index),
            ));
        }
        let total: u64 = self.buckets.iter().map(|b| u64::from(b.sessions)).sum();
        if total != self.session_count || self.buckets.iter().any(|b| b.sessions == 0) {
            return Err(Error::malformed(
                "root",
                "session_count differs from its non-empty buckets' counts",
            ));
        }
        if bucket_bits_for(self.session_count) != self.bits {
            return Err(Error::malformed(
                "root",
                format!(
                    "{} sessions need {} bucket bits, root has {}",
                    self.session_count,
                    bucket_bits_for(self.session_count),
                    self.bits
                ),
            ));
        }
        Ok(())
    }

    /// The canonical bytes, signed with the origin's key.
    pub fn encode(&self, key: &OriginKey) -> Result<Vec<u8>> {
        self.validate()?;
        Ok(envelope::encode(ArtifactKind::Root, Some(key), |w| {
            w.str(self.origin.as_str());
            w.varint(self.seq);
            w.signed(self.created_ms);
            w.u8(self.bits);
            w.varint(self.session_count);
            w.varint(self.buckets.len() as u64);
            for b in &self.buckets {
                w.record(|w| {
                    w.varint(u64::from(b.index));
                    w.id(&b.id);
                    w.varint(u64::from(b.sessions));
                });
            }
            match &self.events {
                // Only a decoded root of an older writer lacks the mark; re-encoding it gives
                // back its bytes.
                EventsMark::Unstated => {}
                EventsMark::NoBatch => w.u8(0),
                EventsMark::Newest { hlc, id, count } => {
                    w.u8(1);
                    w.record(|w| {
                        w.str(&hlc.to_string());
                        w.id(id);
                        w.varint(*count);
                    });
                }
            }
        }))
    }

    /// Decodes and checks the signature against the key the root carries, which is returned
    /// for the caller to compare with the origin's pinned key.
    pub fn decode(bytes: &[u8]) -> Result<(Self, PublicKey)> {
        let (root, signer) = envelope::decode(ArtifactKind::Root, bytes, |r| {
            let origin: OriginId = r.str("root.origin", limits::MAX_ORIGIN)?.parse()?;
            let seq = r.varint("root.seq")?;
            let created_ms = r.signed("root.created_ms")?;
            let bits = r.u8("root.bits")?;
            check_bits(bits)?;
            let session_count = r.varint("root.session_count")?;
            let n = r.count("root buckets", 1 << bits, 35)?;
            let mut buckets = Vec::with_capacity(n);
            for _ in 0..n {
                buckets.push(r.record("bucket ref", limits::MAX_RECORD, |r| {
                    Ok(BucketRef {
                        index: r.u32("bucket ref index")?,
                        id: r.id("bucket ref id")?,
                        sessions: r.u32("bucket ref sessions")?,
                    })
                })?);
            }
            let events = if r.remaining() == 0 {
                EventsMark::Unstated
            } else {
                match r.u8("root.events tag")? {
                    0 => EventsMark::NoBatch,
                    1 => r.record("root.events", limits::MAX_RECORD, |r| {
                        Ok(EventsMark::Newest {
                            hlc: r.str("root.events hlc", limits::MAX_HLC)?.parse()?,
                            id: r.id("root.events id")?,
                            count: r.varint("root.events count")?,
                        })
                    })?,
                    tag => {
                        return Err(Error::malformed(
                            "root",
                            format!("events mark tag {tag} (0 or 1 allowed)"),
                        ));
                    }
                }
            };
            Ok(Root {
                origin,
                seq,
                created_ms,
                bits,
                session_count,
                buckets,
                events,
            })
        })?;
        root.validate()?;
        let signer = signer.ok_or(Error::BadSignature { what: "root" })?;
        Ok((root, signer))
    }

    /// Buckets of this root that a reader holding `previous` must fetch: all of them when the
    /// bucket bits changed, otherwise those whose id differs.
    pub fn changed_buckets<'a>(&'a self, previous: Option<&Root>) -> Vec<&'a BucketRef> {
        match previous {
            Some(prev) if prev.bits == self.bits => {
                let old: BTreeMap<u32, ArtifactId> =
                    prev.buckets.iter().map(|b| (b.index, b.id)).collect();
                self.buckets
                    .iter()
                    .filter(|b| old.get(&b.index) != Some(&b.id))
                    .collect()
            }
            _ => self.buckets.iter().collect(),
        }
    }
}

/// The artifacts one checkpoint commit must write, in write order: buckets, then the root.
#[derive(Debug, Clone)]
pub struct CommittedCheckpoint {
    pub buckets: Vec<Encoded>,
    pub root: Encoded,
}

/// An origin's live session map, kept between exports so that a commit re-encodes only the
/// buckets that changed. Hosts persist it (it serializes) with their export state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    origin: OriginId,
    sessions: BTreeMap<NativeId, ArtifactId>,
    bits: u8,
    bucket_ids: BTreeMap<u32, (ArtifactId, u32)>,
    dirty: BTreeSet<u32>,
    /// The last commit's buckets carry listings (false in a state saved before they did: the
    /// next listed commit rewrites every bucket).
    #[serde(default)]
    listed: bool,
}

impl Checkpoint {
    pub fn new(origin: OriginId) -> Self {
        Checkpoint {
            origin,
            sessions: BTreeMap::new(),
            bits: 0,
            bucket_ids: BTreeMap::new(),
            dirty: BTreeSet::new(),
            listed: false,
        }
    }

    /// The sessions whose buckets a listed commit ([`Checkpoint::commit_listed`]) will write:
    /// it needs a listing for each.
    pub fn sessions_to_list(&self) -> impl Iterator<Item = &NativeId> + '_ {
        let bits = bucket_bits_for(self.sessions.len() as u64);
        let all = bits != self.bits || !self.listed;
        self.sessions
            .keys()
            .filter(move |s| all || self.dirty.contains(&bucket_of(s, bits)))
    }

    pub fn sessions(&self) -> &BTreeMap<NativeId, ArtifactId> {
        &self.sessions
    }

    /// Ids of the buckets of the last commit.
    pub fn bucket_ids(&self) -> impl Iterator<Item = ArtifactId> + '_ {
        self.bucket_ids.values().map(|(id, _)| *id)
    }

    /// The last commit's buckets carry listings ([`Checkpoint::commit_listed`]).
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    /// True when a commit would write anything but an identical root.
    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty() || bucket_bits_for(self.sessions.len() as u64) != self.bits
    }

    /// The checkpoint without its session map: what a host persists once, beside one row per
    /// session ([`ExportState::head`](crate::sync::export::ExportState::head)).
    pub fn without_sessions(&self) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            sessions: BTreeMap::new(),
            bits: self.bits,
            bucket_ids: self.bucket_ids.clone(),
            dirty: self.dirty.clone(),
            listed: self.listed,
        }
    }

    /// Puts back a session of a checkpoint persisted without its session map
    /// ([`Checkpoint::without_sessions`]): the last commit wrote it, so no bucket turns dirty.
    pub fn restore(&mut self, session: NativeId, manifest: ArtifactId) {
        self.sessions.insert(session, manifest);
    }

    /// Points `session` at `manifest`; returns the manifest it pointed at before.
    pub fn insert(&mut self, session: NativeId, manifest: ArtifactId) -> Option<ArtifactId> {
        let bucket = bucket_of(&session, self.bits);
        let old = self.sessions.insert(session, manifest);
        if old != Some(manifest) {
            self.dirty.insert(bucket);
        }
        old
    }

    /// Removes a session (the origin purged it). Readers never infer deletion from absence;
    /// the purge travels as a curation event.
    pub fn remove(&mut self, session: &NativeId) -> Option<ArtifactId> {
        let old = self.sessions.remove(session);
        if old.is_some() {
            self.dirty.insert(bucket_of(session, self.bits));
        }
        old
    }

    /// Encodes the changed buckets, without listings, and a new root with sequence `seq` and
    /// events mark `events`.
    pub fn commit(
        &mut self,
        seq: u64,
        created_ms: i64,
        events: EventsMark,
        key: &OriginKey,
    ) -> Result<CommittedCheckpoint> {
        self.commit_with(seq, created_ms, events, key, None)
    }

    /// Like [`Checkpoint::commit`], with each written entry's listing taken from `listings`
    /// (see [`Checkpoint::sessions_to_list`]; a session missing there is written unlisted). A
    /// bucket too large with its listings is written without them.
    pub fn commit_listed(
        &mut self,
        seq: u64,
        created_ms: i64,
        events: EventsMark,
        key: &OriginKey,
        listings: &BTreeMap<NativeId, Listing>,
    ) -> Result<CommittedCheckpoint> {
        self.commit_with(seq, created_ms, events, key, Some(listings))
    }

    fn commit_with(
        &mut self,
        seq: u64,
        created_ms: i64,
        events: EventsMark,
        key: &OriginKey,
        listings: Option<&BTreeMap<NativeId, Listing>>,
    ) -> Result<CommittedCheckpoint> {
        let bits = bucket_bits_for(self.sessions.len() as u64);
        let listed = listings.is_some();
        if bits != self.bits || listed != self.listed {
            self.bits = bits;
            self.listed = listed;
            self.bucket_ids.clear();
            self.dirty = self.sessions.keys().map(|s| bucket_of(s, bits)).collect();
        }
        let mut grouped: BTreeMap<u32, Vec<BucketEntry>> = BTreeMap::new();
        if !self.dirty.is_empty() {
            for (session, manifest) in &self.sessions {
                let index = bucket_of(session, bits);
                if self.dirty.contains(&index) {
                    grouped.entry(index).or_default().push(BucketEntry {
                        session: session.clone(),
                        manifest: *manifest,
                        listing: listings.and_then(|l| l.get(session)).cloned(),
                    });
                }
            }
        }
        let mut written = Vec::new();
        for index in std::mem::take(&mut self.dirty) {
            match grouped.remove(&index) {
                None => {
                    self.bucket_ids.remove(&index);
                }
                Some(entries) => {
                    let count = entries.len() as u32;
                    let mut bucket = Bucket {
                        origin: self.origin.clone(),
                        bits,
                        index,
                        entries,
                    };
                    let mut canonical = bucket.encode()?;
                    if canonical.len() > limits::BUCKET.max_canonical {
                        for e in &mut bucket.entries {
                            e.listing = None;
                        }
                        canonical = bucket.encode()?;
                    }
                    let id = ArtifactId::of(&canonical);
                    self.bucket_ids.insert(index, (id, count));
                    written.push(Encoded {
                        key: ArtifactKey::Bucket {
                            origin: self.origin.clone(),
                            id,
                        },
                        canonical,
                    });
                }
            }
        }
        let root = Root {
            origin: self.origin.clone(),
            seq,
            created_ms,
            bits,
            session_count: self.sessions.len() as u64,
            buckets: self
                .bucket_ids
                .iter()
                .map(|(&index, &(id, sessions))| BucketRef {
                    index,
                    id,
                    sessions,
                })
                .collect(),
            events,
        };
        let canonical = root.encode(key)?;
        let id = ArtifactId::of(&canonical);
        Ok(CommittedCheckpoint {
            buckets: written,
            root: Encoded {
                key: ArtifactKey::Root {
                    origin: self.origin.clone(),
                    seq,
                    id,
                },
                canonical,
            },
        })
    }
}
