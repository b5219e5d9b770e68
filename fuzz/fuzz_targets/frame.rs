//! Stored bytes as a store hands them over: frame header, limits, zstd payload, id check.
//! Anything may be refused; nothing may panic, allocate past the limits or hang. And the C
//! decoder the native host plugs in must change nothing: the same bytes or the same error as
//! the core's own decoder, whatever the input.
#![no_main]

use agentsync_core::{Decompressor, frame};
use libfuzzer_sys::fuzz_target;

/// The native host's decoder (host-native `ZstdDecompressor`, without its per-thread context).
#[derive(Debug)]
struct CZstd;

impl Decompressor for CZstd {
    fn decompress(&self, payload: &[u8], declared: usize) -> Option<Vec<u8>> {
        if zstd::zstd_safe::find_frame_compressed_size(payload).ok()? != payload.len() {
            return None;
        }
        zstd::bulk::decompress(payload, declared).ok()
    }
}

fuzz_target!(|stored: &[u8]| {
    let ours = frame::open(stored, None, None);
    if let Ok(opened) = &ours {
        // What opens is what the header promised.
        assert_eq!(opened.canonical.len() as u64, opened.header.canonical_len);
        assert_eq!(
            agentsync_core::ArtifactId::of(&opened.canonical),
            opened.header.id
        );
    }
    let with_c = frame::open_with(stored, None, None, Some(&CZstd));
    assert_eq!(
        ours.map(|o| o.canonical).map_err(|e| e.to_string()),
        with_c.map(|o| o.canonical).map_err(|e| e.to_string())
    );
});
