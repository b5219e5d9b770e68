//! Text from listings and peers: store keys, origin ids, session ids, HLC stamps, RFC 3339
//! times. What parses must print back as the same text (one spelling per name).
#![no_main]

use agentsync_core::{ArtifactKey, Hlc, OriginId, SessionGid, timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = text.parse::<ArtifactKey>() {
        assert_eq!(key.to_string(), text);
    }
    if let Ok(origin) = text.parse::<OriginId>() {
        assert_eq!(origin.to_string(), text);
    }
    if let Ok(session) = text.parse::<SessionGid>() {
        assert_eq!(session.to_string(), text);
    }
    if let Ok(hlc) = text.parse::<Hlc>() {
        assert_eq!(hlc.to_string(), text);
    }
    let _ = timestamp::parse_rfc3339_ms(text);
});
