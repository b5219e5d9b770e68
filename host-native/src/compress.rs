//! The native host's zstd codec: the C library, encoding at level 3 and decoding what sync
//! verifies and imports.
//!
//! Safe to mix with any other encoder (DESIGN.md §2): ids hash the uncompressed canonical bytes,
//! never the compressed payload. Decoding stays the core's business: it bounds what it hands
//! over, checks length and id afterwards, and decodes whatever the C library refuses again
//! with ruzstd, so errors read the same on every host.

use agentsync_core::frame::{EncodeJob, OpenJob};
use agentsync_core::{Compressor, Decompressor, Error};

/// The zstd level the native host writes with: ~3× faster and denser than ruzstd's only level.
pub const LEVEL: i32 = 3;

/// [`Compressor`] backed by the C `zstd` library.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZstdCompressor;

thread_local! {
    /// One compression context per thread: creating one per artifact cost ~2% of an export.
    static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

impl Compressor for ZstdCompressor {
    fn compress(&self, canonical: &[u8]) -> agentsync_core::Result<Vec<u8>> {
        let fail = |e: std::io::Error| Error::Compress {
            reason: e.to_string(),
        };
        CONTEXT.with(|cell| {
            let mut slot = cell.borrow_mut();
            let context = match slot.as_mut() {
                Some(context) => context,
                None => slot.insert(zstd::bulk::Compressor::new(LEVEL).map_err(fail)?),
            };
            context.compress(canonical).map_err(fail)
        })
    }

    /// On every core (each with its own context): compression is most of an export's work.
    fn compress_all(&self, inputs: &[&[u8]]) -> Vec<agentsync_core::Result<Vec<u8>>> {
        use rayon::prelude::*;
        inputs
            .par_iter()
            .map(|canonical| self.compress(canonical))
            .collect()
    }

    /// On every core: the canonical JSON and hashing of a batch's sessions were a fifth of a
    /// first export's main thread.
    fn encode_all(&self, jobs: Vec<EncodeJob<'_>>) {
        use rayon::prelude::*;
        jobs.into_par_iter().for_each(|job| job());
    }
}

/// [`Decompressor`] backed by the C `zstd` library (about 4× ruzstd's speed).
#[derive(Debug, Clone, Copy, Default)]
pub struct ZstdDecompressor;

thread_local! {
    static DECODER: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

impl Decompressor for ZstdDecompressor {
    fn decompress(&self, payload: &[u8], declared: usize) -> Option<Vec<u8>> {
        // Exactly one frame: trailing bytes (another frame, garbage) are for the core to name.
        if zstd::zstd_safe::find_frame_compressed_size(payload).ok()? != payload.len() {
            return None;
        }
        DECODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let decoder = match slot.as_mut() {
                Some(decoder) => decoder,
                None => slot.insert(zstd::bulk::Decompressor::new().ok()?),
            };
            // Decodes into one buffer of the declared size: no window beyond it, no growth.
            decoder.decompress(payload, declared).ok()
        })
    }

    /// On every core: a relay verifies every segment it copies (a new machine's first sync
    /// relays the whole archive into its mirror before the import's writer starts).
    fn open_all(&self, jobs: Vec<OpenJob<'_>>) {
        use rayon::prelude::*;
        jobs.into_par_iter().for_each(|job| job());
    }
}

#[cfg(test)]
mod tests {
    use agentsync_core::{Encoded, Message, OriginId, RuzstdCompressor, frame, segment_messages};

    use super::*;

    #[test]
    fn c_and_rust_encoders_store_different_bytes_for_the_same_artifact() {
        let messages: Vec<Message> = (0..40)
            .map(|i| Message {
                ordinal: i,
                role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
                content: format!("message {i}: the quick brown fox jumps over the lazy dog. ")
                    .repeat(8),
                ..Message::default()
            })
            .collect();
        let origin: OriginId = "test-0a0b0c".parse().unwrap();
        let segment = segment_messages(&messages).unwrap().remove(0);
        let encoded = Encoded::segment(&origin, segment);

        let by_c = encoded.seal(Some(&ZstdCompressor)).unwrap();
        let by_rust = encoded.seal(Some(&RuzstdCompressor)).unwrap();
        assert_ne!(
            by_c, by_rust,
            "the two encoders should not produce identical frames"
        );

        let opened_c = frame::open(&by_c, Some(encoded.key.kind()), Some(encoded.id())).unwrap();
        let opened_rust =
            frame::open(&by_rust, Some(encoded.key.kind()), Some(encoded.id())).unwrap();
        assert_eq!(opened_c.canonical, encoded.canonical);
        assert_eq!(opened_c.canonical, opened_rust.canonical);
        assert_eq!(opened_c.header.id, opened_rust.header.id);
        assert_eq!(opened_c.header.id, encoded.id());
    }

    /// The frame header is a zstd skippable frame, so plain zstd tools (zstdcat, libzstd's
    /// streaming decoder used here) read a stored segment as its canonical NDJSON.
    #[test]
    fn libzstd_reads_a_stored_segment_as_ndjson() {
        let messages: Vec<Message> = (0..3)
            .map(|i| Message {
                ordinal: i,
                role: "user".into(),
                content: format!("line {i}"),
                ..Message::default()
            })
            .collect();
        let segment = segment_messages(&messages).unwrap().remove(0);
        let canonical = segment.canonical.clone();
        let origin: OriginId = "laptop-0a1b2c".parse().unwrap();
        for compressor in [
            &ZstdCompressor as &dyn agentsync_core::Compressor,
            &RuzstdCompressor,
        ] {
            let stored = Encoded::segment(&origin, segment.clone())
                .seal(Some(compressor))
                .unwrap();
            let read = zstd::stream::decode_all(stored.as_slice()).unwrap();
            assert_eq!(read, canonical);
            assert!(
                String::from_utf8(read)
                    .unwrap()
                    .starts_with("{\"count\":3,")
            );
        }
    }

    fn sample_segment(n: u64) -> Encoded {
        let messages: Vec<Message> = (0..n)
            .map(|i| Message {
                ordinal: i,
                role: "assistant".into(),
                content: format!(
                    "reply {i}: {}",
                    "all work and no play. ".repeat(i as usize % 7)
                ),
                ..Message::default()
            })
            .collect();
        let origin: OriginId = "test-0a0b0c".parse().unwrap();
        Encoded::segment(&origin, segment_messages(&messages).unwrap().remove(0))
    }

    #[test]
    fn the_c_decoder_opens_what_either_encoder_wrote() {
        let encoded = sample_segment(60);
        for compressor in [&ZstdCompressor as &dyn Compressor, &RuzstdCompressor] {
            let stored = encoded.seal(Some(compressor)).unwrap();
            let payload = &stored[frame::HEADER_LEN..];
            let decoded = ZstdDecompressor.decompress(payload, encoded.canonical.len());
            assert_eq!(decoded.as_deref(), Some(encoded.canonical.as_slice()));
            // One byte short of the content: refused, never cut.
            assert_eq!(
                ZstdDecompressor.decompress(payload, encoded.canonical.len() - 1),
                None
            );
            let kind = Some(encoded.key.kind());
            let opened =
                frame::open_with(&stored, kind, Some(encoded.id()), Some(&ZstdDecompressor))
                    .unwrap();
            assert_eq!(opened.canonical, encoded.canonical);
        }
    }

    proptest::proptest! {
        /// Damage anywhere (a flipped byte, a cut, bytes appended) gives the same answer with
        /// the C decoder as with the core's own: the same canonical bytes or the same error.
        #[test]
        fn damaged_frames_read_the_same_with_either_decoder(
            at in 0usize..10_000,
            flip in 1u8..=255,
            cut in proptest::prelude::any::<bool>(),
            extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
        ) {
            let encoded = sample_segment(30);
            let mut stored = encoded.seal(Some(&ZstdCompressor)).unwrap();
            let at = at % stored.len();
            if cut {
                stored.truncate(at);
            } else {
                stored[at] ^= flip;
            }
            stored.extend_from_slice(&extra);
            let kind = Some(encoded.key.kind());
            let ours = frame::open(&stored, kind, Some(encoded.id()));
            let c = frame::open_with(&stored, kind, Some(encoded.id()), Some(&ZstdDecompressor));
            proptest::prop_assert_eq!(
                ours.map(|o| o.canonical).map_err(|e| e.to_string()),
                c.map(|o| o.canonical).map_err(|e| e.to_string())
            );
        }
    }
}
