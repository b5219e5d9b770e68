//! The stored form of every artifact: `frame(compress(canonical))`.
//!
//! A stored object is a frame header followed by the payload. The header is a zstd *skippable
//! frame*, so `zstdcat` ignores it and prints the canonical bytes of a compressed artifact. It
//! says which stages were applied (compression now, encryption later), the canonical length (so a
//! reader can refuse an oversized artifact before allocating) and the content id.
//!
//! ```text
//! 5a 2a 4d 18        skippable frame magic 0x184D2A5A, little endian
//! u32 LE             header body length (48 in v1; readers skip bytes they do not know)
//! "AGSY"             header magic
//! u8                 frame version (1)
//! u8                 artifact kind code
//! u8                 compression: 0 none, 1 zstd
//! u8                 encryption: 0 none
//! u64 LE             canonical length
//! [32]               content id: BLAKE3-256 of the canonical bytes
//! payload            canonical bytes, or one zstd frame of them
//! ```
//!
//! Ids hash the canonical bytes, never the payload, so any zstd encoder (the pure-Rust one here,
//! the C library a native host supplies) yields the same ids.

use std::io::Read;

use crate::error::{Error, Result};
use crate::id::ArtifactId;
use crate::kind::ArtifactKind;
use crate::limits;

pub const SKIPPABLE_MAGIC: [u8; 4] = [0x5a, 0x2a, 0x4d, 0x18];
pub const HEADER_MAGIC: [u8; 4] = *b"AGSY";
pub const FRAME_VERSION: u8 = 1;
/// Header body length written by v1.
pub const HEADER_BODY_LEN: usize = 48;
/// Bytes before the payload of a v1 frame.
pub const HEADER_LEN: usize = 8 + HEADER_BODY_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
}

impl Compression {
    pub const fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }
}

/// A zstd encoder. The core ships [`RuzstdCompressor`]; a host may supply a faster one. Any
/// encoder is fine as long as its output is one standard zstd frame.
pub trait Compressor {
    fn compress(&self, canonical: &[u8]) -> Result<Vec<u8>>;

    /// Compresses every input, in order. A host may spread them over its cores (the native
    /// host does: compression is the larger part of an export); by default one after another.
    fn compress_all(&self, inputs: &[&[u8]]) -> Vec<Result<Vec<u8>>> {
        inputs
            .iter()
            .map(|canonical| self.compress(canonical))
            .collect()
    }

    /// Runs the encoding of independent sessions of one export batch (canonical lines,
    /// segment ids), which comes before their compression. A host may spread the jobs over its
    /// cores (the native host does: after compression, encoding is the larger part of a first
    /// export's work). By default one after another.
    fn encode_all(&self, jobs: Vec<EncodeJob<'_>>) {
        for job in jobs {
            job();
        }
    }
}

/// One session's encoding, for [`Compressor::encode_all`].
pub type EncodeJob<'a> = Box<dyn FnOnce() + Send + 'a>;

/// Pure-Rust zstd (ruzstd's `Fastest` level, roughly zstd -1), available on every target.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuzstdCompressor;

impl Compressor for RuzstdCompressor {
    fn compress(&self, canonical: &[u8]) -> Result<Vec<u8>> {
        Ok(ruzstd::encoding::compress_to_vec(
            canonical,
            ruzstd::encoding::CompressionLevel::Fastest,
        ))
    }
}

/// A faster zstd decoder a host may supply (the native host plugs in the C library; wasm hosts
/// keep the core's ruzstd). The core keeps every check: it hands over only a payload whose
/// declared length is within the kind's limit and whose window is within the bound ruzstd
/// enforces, verifies length and id afterwards, and decodes anything the host decoder refuses
/// again with ruzstd, so that a bad artifact is reported with the same error on every host.
pub trait Decompressor: std::fmt::Debug {
    /// The canonical bytes of `payload` if it is exactly one zstd frame decoding to at most
    /// `declared` bytes; `None` for anything else (the core then finds out what is wrong).
    fn decompress(&self, payload: &[u8], declared: usize) -> Option<Vec<u8>>;

    /// Runs every job once, in any order, and returns when all have run. The core hands over
    /// the opening (decompression, id check, decoding) of independent artifacts of one round,
    /// and a host may spread them over its cores (the native host does: verifying what a relay
    /// copies is most of a first import's relay). By default one after another.
    fn open_all(&self, jobs: Vec<OpenJob<'_>>) {
        for job in jobs {
            job();
        }
    }
}

/// One artifact's opening, for [`Decompressor::open_all`].
pub type OpenJob<'a> = Box<dyn FnOnce() + Send + 'a>;

/// A decoder shared by the parts of a sync run that open artifacts.
pub type SharedDecompressor = std::sync::Arc<dyn Decompressor + Send + Sync>;

/// What a frame header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: ArtifactKind,
    pub compression: Compression,
    pub canonical_len: u64,
    pub id: ArtifactId,
}

/// An artifact whose stored bytes were checked: header, size limits, decompression and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub header: FrameHeader,
    pub canonical: Vec<u8>,
}

/// Builds the stored bytes of an artifact. `compressor` is `None` to store it uncompressed.
/// Small artifacts that zstd does not shrink are stored uncompressed too (ids do not change);
/// segments are always compressed, so their `.ndjson.zst` names stay true.
pub fn seal(
    kind: ArtifactKind,
    canonical: &[u8],
    compressor: Option<&dyn Compressor>,
) -> Result<Vec<u8>> {
    seal_with_id(kind, canonical, ArtifactId::of(canonical), compressor)
}

/// [`seal`] for bytes whose id the caller computed from them already (an [`crate::Encoded`]
/// names its id), so the write path hashes each artifact once.
pub(crate) fn seal_with_id(
    kind: ArtifactKind,
    canonical: &[u8],
    id: ArtifactId,
    compressor: Option<&dyn Compressor>,
) -> Result<Vec<u8>> {
    seal_all_with_ids(&[(kind, canonical, id)], compressor)?
        .pop()
        .ok_or_else(|| Error::Compress {
            reason: "the compressor returned nothing".into(),
        })
}

/// [`seal_with_id`] for several artifacts, compressed with one [`Compressor::compress_all`].
pub(crate) fn seal_all_with_ids(
    items: &[(ArtifactKind, &[u8], ArtifactId)],
    compressor: Option<&dyn Compressor>,
) -> Result<Vec<Vec<u8>>> {
    for (kind, canonical, id) in items {
        debug_assert_eq!(
            *id,
            ArtifactId::of(canonical),
            "seal_with_id: the id of other bytes"
        );
        let limits = kind.limits();
        if canonical.len() > limits.max_canonical {
            return Err(Error::SizeLimit {
                kind: kind.name(),
                limit: limits.max_canonical as u64,
                actual: canonical.len() as u64,
            });
        }
    }
    let compressed = match compressor {
        Some(c) => {
            let inputs: Vec<&[u8]> = items.iter().map(|(_, canonical, _)| *canonical).collect();
            let compressed = c.compress_all(&inputs);
            if compressed.len() != items.len() {
                return Err(Error::Compress {
                    reason: format!(
                        "the compressor returned {} results for {} inputs",
                        compressed.len(),
                        items.len()
                    ),
                });
            }
            compressed
                .into_iter()
                .map(|c| c.map(Some))
                .collect::<Result<Vec<_>>>()?
        }
        None => vec![None; items.len()],
    };
    items
        .iter()
        .zip(compressed)
        .map(|(&(kind, canonical, id), compressed)| frame(kind, canonical, id, compressed))
        .collect()
}

/// The stored bytes: header, then the compressed payload, or the canonical bytes where there
/// is none or it does not shrink them.
fn frame(
    kind: ArtifactKind,
    canonical: &[u8],
    id: ArtifactId,
    compressed: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    let limits = kind.limits();
    let (compression, payload) = match compressed {
        Some(compressed) if compressed.len() < canonical.len() || kind == ArtifactKind::Segment => {
            (Compression::Zstd, compressed)
        }
        _ => (Compression::None, canonical.to_vec()),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&SKIPPABLE_MAGIC);
    out.extend_from_slice(&(HEADER_BODY_LEN as u32).to_le_bytes());
    out.extend_from_slice(&HEADER_MAGIC);
    out.push(FRAME_VERSION);
    out.push(kind.code());
    out.push(compression.code());
    out.push(0); // encryption: none
    out.extend_from_slice(&(canonical.len() as u64).to_le_bytes());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&payload);
    if out.len() > limits.max_stored {
        return Err(Error::SizeLimit {
            kind: kind.name(),
            limit: limits.max_stored as u64,
            actual: out.len() as u64,
        });
    }
    Ok(out)
}

/// Parses and checks a frame header, returning it and the offset of the payload. Reads nothing
/// past the header, so hosts can call it on a prefix (e.g. a ranged GET) to inspect an artifact.
pub fn read_header(stored: &[u8]) -> Result<(FrameHeader, usize)> {
    const WHAT: &str = "frame header";
    if stored.len() < 8 {
        return Err(Error::Truncated { what: WHAT });
    }
    if stored[..4] != SKIPPABLE_MAGIC {
        return Err(Error::malformed(
            WHAT,
            "does not start with the agentsync skippable-frame magic 5a2a4d18",
        ));
    }
    let body_len = u32::from_le_bytes([stored[4], stored[5], stored[6], stored[7]]) as usize;
    if body_len > limits::MAX_FRAME_HEADER {
        return Err(Error::SizeLimit {
            kind: WHAT,
            limit: limits::MAX_FRAME_HEADER as u64,
            actual: body_len as u64,
        });
    }
    if body_len < 8 {
        return Err(Error::malformed(WHAT, "header body shorter than 8 bytes"));
    }
    let body = stored
        .get(8..8 + body_len)
        .ok_or(Error::Truncated { what: WHAT })?;
    if body[..4] != HEADER_MAGIC {
        return Err(Error::malformed(WHAT, "missing AGSY magic"));
    }
    let version = body[4];
    if version == 0 {
        return Err(Error::malformed(WHAT, "frame version 0"));
    }
    if version > FRAME_VERSION {
        return Err(Error::FutureVersion {
            what: "frame",
            version: u64::from(version),
            supported: u64::from(FRAME_VERSION),
        });
    }
    // Exactly 48 bytes in v1: a longer body would hold bytes no check covers, so a flipped
    // byte there would be neither detected nor healable. (A newer frame version may differ;
    // it was deferred above.)
    if body_len != HEADER_BODY_LEN {
        return Err(Error::malformed(
            WHAT,
            format!("v1 header body is 48 bytes, found {body_len}"),
        ));
    }
    let kind = ArtifactKind::from_code(body[5])?;
    let compression = match body[6] {
        0 => Compression::None,
        1 => Compression::Zstd,
        code => {
            return Err(Error::UnsupportedStage {
                what: "compression",
                code,
            });
        }
    };
    if body[7] != 0 {
        return Err(Error::UnsupportedStage {
            what: "encryption",
            code: body[7],
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&body[8..16]);
    let canonical_len = u64::from_le_bytes(len);
    let mut id = [0u8; 32];
    id.copy_from_slice(&body[16..48]);
    Ok((
        FrameHeader {
            kind,
            compression,
            canonical_len,
            id: ArtifactId::from_bytes(id),
        },
        8 + body_len,
    ))
}

/// Checks stored bytes and returns the canonical bytes: size limits (before any allocation),
/// header, decompression, and that the content hashes to the id in the header and, if given,
/// to `expected_id` (the id in the artifact's name).
pub fn open(
    stored: &[u8],
    expected_kind: Option<ArtifactKind>,
    expected_id: Option<ArtifactId>,
) -> Result<Opened> {
    open_with(stored, expected_kind, expected_id, None)
}

/// [`open`], decoding zstd payloads with `decoder` when given (see [`Decompressor`]).
pub fn open_with(
    stored: &[u8],
    expected_kind: Option<ArtifactKind>,
    expected_id: Option<ArtifactId>,
    decoder: Option<&dyn Decompressor>,
) -> Result<Opened> {
    let max_stored = expected_kind.map_or(limits::MAX_STORED_ANY, |k| k.limits().max_stored);
    if stored.len() > max_stored {
        return Err(Error::SizeLimit {
            kind: expected_kind.map_or("stored artifact", ArtifactKind::name),
            limit: max_stored as u64,
            actual: stored.len() as u64,
        });
    }
    let (header, offset) = read_header(stored)?;
    if let Some(expected) = expected_kind
        && expected != header.kind
    {
        return Err(Error::KindMismatch {
            expected: expected.name(),
            found: header.kind.name(),
        });
    }
    if let Some(expected) = expected_id
        && expected != header.id
    {
        return Err(Error::IdMismatch {
            expected,
            actual: header.id,
        });
    }
    let kind_limits = header.kind.limits();
    if stored.len() > kind_limits.max_stored {
        return Err(Error::SizeLimit {
            kind: header.kind.name(),
            limit: kind_limits.max_stored as u64,
            actual: stored.len() as u64,
        });
    }
    if header.canonical_len > kind_limits.max_canonical as u64 {
        return Err(Error::SizeLimit {
            kind: header.kind.name(),
            limit: kind_limits.max_canonical as u64,
            actual: header.canonical_len,
        });
    }
    let declared = header.canonical_len as usize;
    let payload = &stored[offset..];
    let canonical = match header.compression {
        Compression::None => payload.to_vec(),
        Compression::Zstd => {
            // The host's decoder is trusted with nothing: only a result that passes every
            // check is kept; anything else is decoded again here and reported from there.
            let fast = decoder
                .filter(|_| host_may_decode(payload, declared, max_window(header.kind)))
                .and_then(|d| d.decompress(payload, declared))
                .filter(|c| c.len() == declared && header.id.verify(c).is_ok());
            if let Some(canonical) = fast {
                return Ok(Opened { header, canonical });
            }
            decompress(payload, declared, header.kind)?
        }
    };
    if canonical.len() != declared {
        return Err(Error::malformed(
            "frame",
            format!(
                "header declares {declared} canonical bytes, payload holds {}",
                canonical.len()
            ),
        ));
    }
    header.id.verify(&canonical)?;
    Ok(Opened { header, canonical })
}

/// The largest zstd window a reader allows for `kind`: its canonical limit, rounded up.
fn max_window(kind: ArtifactKind) -> u64 {
    (kind.limits().max_canonical as u64).next_power_of_two()
}

/// Whether a host decoder may decode this frame without accepting anything ruzstd refuses: the
/// frame is single-segment (its window is its content, which the declared length bounds), or
/// its window (RFC 8878 §3.1.1.1.2) is at most `max`, as ruzstd requires, and holds the whole
/// declared content. A smaller window lets ruzstd forget output that a back-reference may
/// still name (an error there) while the C library, decoding into one buffer, finds it.
fn host_may_decode(payload: &[u8], declared: usize, max: u64) -> bool {
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let (Some(magic), Some(&descriptor)) = (payload.get(..4), payload.get(4)) else {
        return false;
    };
    if magic != ZSTD_MAGIC {
        return false;
    }
    let single_segment = descriptor & 0x20 != 0;
    if single_segment {
        return true;
    }
    let Some(&window_descriptor) = payload.get(5) else {
        return false;
    };
    let log = 10 + u32::from(window_descriptor >> 3);
    let base = 1u64 << log;
    let window = base + (base / 8) * u64::from(window_descriptor & 7);
    window <= max && window >= declared as u64
}

fn decompress(payload: &[u8], declared: usize, kind: ArtifactKind) -> Result<Vec<u8>> {
    let what = kind.name();
    let fail = |reason: String| Error::Decompress { what, reason };
    let mut source = payload;
    let max_window = max_window(kind);
    let decoder =
        ruzstd::decoding::StreamingDecoder::new_with_max_window_size(&mut source, max_window)
            .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::with_capacity(declared);
    // One byte past the declared length is enough to detect a lying header.
    decoder
        .take(declared as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| fail(e.to_string()))?;
    if out.len() > declared {
        return Err(Error::malformed(
            "frame",
            format!("payload decodes to more than the declared {declared} bytes"),
        ));
    }
    if !source.is_empty() {
        return Err(Error::malformed(
            "frame",
            format!("{} bytes after the zstd frame", source.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_to_the_same_canonical_bytes() {
        let canonical = b"{\"hello\":\"world\"}\n".repeat(100);
        for compressor in [None, Some(&RuzstdCompressor as &dyn Compressor)] {
            let stored = seal(ArtifactKind::Segment, &canonical, compressor).unwrap();
            let opened = open(&stored, Some(ArtifactKind::Segment), None).unwrap();
            assert_eq!(opened.canonical, canonical);
            assert_eq!(opened.header.id, ArtifactId::of(&canonical));
        }
    }

    /// A host decoder that counts its calls and answers what it is told to.
    #[derive(Debug)]
    struct HostDecoder {
        calls: std::cell::Cell<u32>,
        answer: fn(&[u8], usize) -> Option<Vec<u8>>,
    }

    impl Decompressor for HostDecoder {
        fn decompress(&self, payload: &[u8], declared: usize) -> Option<Vec<u8>> {
            self.calls.set(self.calls.get() + 1);
            (self.answer)(payload, declared)
        }
    }

    #[test]
    fn a_host_decoder_is_used_but_never_trusted() {
        let canonical = b"{\"n\":1}\n".repeat(300);
        let stored = seal(ArtifactKind::Segment, &canonical, Some(&RuzstdCompressor)).unwrap();
        let honest = HostDecoder {
            calls: Default::default(),
            answer: |p, d| decompress(p, d, ArtifactKind::Segment).ok(),
        };
        let opened = open_with(&stored, Some(ArtifactKind::Segment), None, Some(&honest)).unwrap();
        assert_eq!(
            (opened.canonical, honest.calls.get()),
            (canonical.clone(), 1)
        );
        // Wrong bytes of the right length, too many bytes, or none: the core decodes itself.
        for answer in [
            (|_, d| Some(vec![b'x'; d])) as fn(&[u8], usize) -> Option<Vec<u8>>,
            |_, d| Some(vec![b'x'; d + 1]),
            |_, _| None,
        ] {
            let liar = HostDecoder {
                calls: Default::default(),
                answer,
            };
            let opened =
                open_with(&stored, Some(ArtifactKind::Segment), None, Some(&liar)).unwrap();
            assert_eq!((opened.canonical, liar.calls.get()), (canonical.clone(), 1));
        }
    }

    #[test]
    fn only_frames_ruzstd_would_decode_alike_reach_the_host_decoder() {
        let limit = max_window(ArtifactKind::Segment);
        // Frame header: magic, descriptor without single-segment, window descriptor.
        let frame = |window_descriptor: u8| [0x28, 0xb5, 0x2f, 0xfd, 0x00, window_descriptor];
        let log = limit.trailing_zeros() as u8;
        let small = 1024;
        assert!(host_may_decode(&frame((log - 10) << 3), small, limit));
        // Past the kind's window limit: ruzstd refuses it.
        assert!(!host_may_decode(&frame((log - 10) << 3 | 1), small, limit));
        assert!(!host_may_decode(&frame((log - 9) << 3), small, limit));
        // A 1 KiB window for 4 KiB of content: ruzstd forgets what C still has.
        assert!(host_may_decode(&frame(0), 1024, limit));
        assert!(!host_may_decode(&frame(0), 4096, limit));
        // Single-segment: the window is the content.
        assert!(host_may_decode(
            &[0x28, 0xb5, 0x2f, 0xfd, 0x20],
            1 << 20,
            limit
        ));
        assert!(!host_may_decode(&[0x28, 0xb5, 0x2f], small, limit));
        assert!(!host_may_decode(&[0, 0, 0, 0, 0, 0], small, limit));
    }

    #[test]
    fn ids_do_not_depend_on_the_encoder() {
        let canonical = b"same content, other encoder\n".repeat(50);
        let a = seal(ArtifactKind::Segment, &canonical, Some(&RuzstdCompressor)).unwrap();
        let b = seal(ArtifactKind::Segment, &canonical, None).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            open(&a, None, None).unwrap().header.id,
            open(&b, None, None).unwrap().header.id
        );
    }

    #[test]
    fn a_lying_length_is_refused_before_decompressing() {
        let mut stored = seal(ArtifactKind::Manifest, b"abc", Some(&RuzstdCompressor)).unwrap();
        stored[16..24].copy_from_slice(&(u64::MAX).to_le_bytes());
        assert_eq!(open(&stored, None, None).unwrap_err().class(), "SizeLimit");
    }

    #[test]
    fn a_payload_decoding_past_its_declared_length_stops_there() {
        // A decompression bomb: a few bytes that decode to a megabyte, declared as 16 bytes.
        let canonical = vec![b'a'; 1 << 20];
        let mut stored = seal(ArtifactKind::Segment, &canonical, Some(&RuzstdCompressor)).unwrap();
        assert!(stored.len() < 1 << 12, "{} bytes", stored.len());
        stored[16..24].copy_from_slice(&16u64.to_le_bytes());
        assert_eq!(open(&stored, None, None).unwrap_err().class(), "Malformed");
    }

    #[test]
    fn unknown_stages_and_versions_are_deferred_not_corrupt() {
        let stored = seal(ArtifactKind::Manifest, b"abc", None).unwrap();
        let mut encrypted = stored.clone();
        encrypted[15] = 1;
        assert!(open(&encrypted, None, None).unwrap_err().is_deferred());
        let mut newer = stored.clone();
        newer[12] = 2;
        assert!(open(&newer, None, None).unwrap_err().is_deferred());
        let mut compressed_otherwise = stored;
        compressed_otherwise[14] = 7;
        assert!(
            open(&compressed_otherwise, None, None)
                .unwrap_err()
                .is_deferred()
        );
    }
}
