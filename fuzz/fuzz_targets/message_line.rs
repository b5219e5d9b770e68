//! The core's strict reader of canonical message lines against serde_json: whatever line it
//! reads, serde_json reads into an equal message. The reader is only ever a faster way to
//! serde_json's answer, never another answer (`core/src/canonical_line.rs`).
#![no_main]

use agentsync_core::Message;
use agentsync_core::segment::read_canonical_message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Some(message) = read_canonical_message(line) {
        let by_serde: Message = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("serde_json refuses a line the strict reader read: {e}"));
        assert_eq!(by_serde, message);
    }
});
