//! Canonical bytes of every artifact kind, past the id check (which random bytes never pass):
//! the first byte picks the kind, the rest is decoded. A manifest or bucket that decodes must
//! encode (a machine re-publishes what it imported) to bytes that decode to the same value.
//! Not to the same bytes: readers skip fields appended by newer versions, by design.
#![no_main]

use agentsync_core::{Artifact, ArtifactKind, Bucket, Manifest};
use libfuzzer_sys::fuzz_target;

const KINDS: [ArtifactKind; 5] = [
    ArtifactKind::Segment,
    ArtifactKind::Manifest,
    ArtifactKind::Bucket,
    ArtifactKind::Root,
    ArtifactKind::Events,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, canonical)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(pick) % KINDS.len()];
    let Ok(artifact) = Artifact::decode(kind, canonical) else {
        return;
    };
    match kind {
        ArtifactKind::Manifest => {
            let manifest = Manifest::decode(canonical).expect("decoded once already");
            let bytes = manifest.encode().expect("a decoded manifest encodes");
            assert_eq!(
                Manifest::decode(&bytes).expect("its encoding decodes"),
                manifest
            );
        }
        ArtifactKind::Bucket => {
            let bucket = Bucket::decode(canonical).expect("decoded once already");
            let bytes = bucket.encode().expect("a decoded bucket encodes");
            assert_eq!(
                Bucket::decode(&bytes).expect("its encoding decodes"),
                bucket
            );
        }
        _ => {}
    }
    let _ = artifact.origin();
});
