//! The native host's zstd encoder: the C library at level 3.
//!
//! Safe to mix with any other encoder (DESIGN.md §2): ids hash the uncompressed canonical bytes,
//! never the compressed payload, and every reader decodes with the core's pure-Rust decoder.

use agentsync_core::{Compressor, Error};

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
}
