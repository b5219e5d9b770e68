//! agentsync-web: the browser host (skeleton).
//!
//! It will bind the core with `wasm-bindgen`, keep the archive in SQLite on OPFS and read an S3
//! bucket with `fetch`. For now it holds one real function, so the crate already proves that
//! the core builds and opens artifacts on `wasm32-unknown-unknown`.

use agentsync_core::{Artifact, frame};

/// One line about stored artifact bytes: `"<kind> <id>"` when they open and decode, or
/// `"error (<class>): <reason>"` when they do not.
///
/// Only the frame's own header is trusted (no key is given), so this checks the frame, limits,
/// decompression, the content id and the decoding (signatures included), not the name.
pub fn describe(stored: &[u8]) -> String {
    let result = frame::open(stored, None, None).and_then(|opened| {
        Artifact::decode(opened.header.kind, &opened.canonical).map(|a| (a, opened.header.id))
    });
    match result {
        Ok((artifact, id)) => format!("{} {id}", artifact.kind().name()),
        Err(e) => format!("error ({}): {e}", e.class()),
    }
}

#[cfg(test)]
mod tests {
    use agentsync_core::{Encoded, Message, OriginId, RuzstdCompressor, segment_messages};

    use super::*;

    #[test]
    fn describes_a_segment_and_rejects_garbage() {
        let messages = [Message {
            ordinal: 0,
            role: "user".into(),
            content: "hello".into(),
            ..Message::default()
        }];
        let origin: OriginId = "web-0a0b0c".parse().unwrap();
        let segment = segment_messages(&messages).unwrap().remove(0);
        let encoded = Encoded::segment(&origin, segment);
        let stored = encoded.seal(Some(&RuzstdCompressor)).unwrap();
        assert_eq!(describe(&stored), format!("segment {}", encoded.id()));

        assert!(describe(b"nope").starts_with("error (Truncated)"));

        // One flipped content byte no longer hashes to the id in the header.
        let mut corrupt = encoded.seal(None).unwrap();
        let at = corrupt.len() - 2;
        corrupt[at] ^= 0x01;
        let line = describe(&corrupt);
        assert!(line.starts_with("error (IdMismatch)"), "{line}");
    }
}
