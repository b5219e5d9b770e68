//! Stored bytes as a store hands them over: frame header, limits, zstd payload, id check.
//! Anything may be refused; nothing may panic, allocate past the limits or hang.
#![no_main]

use agentsync_core::frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|stored: &[u8]| {
    if let Ok(opened) = frame::open(stored, None, None) {
        // What opens is what the header promised.
        assert_eq!(opened.canonical.len() as u64, opened.header.canonical_len);
        assert_eq!(
            agentsync_core::ArtifactId::of(&opened.canonical),
            opened.header.id
        );
    }
});
