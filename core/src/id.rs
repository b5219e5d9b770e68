//! Content ids: BLAKE3-256 of an artifact's uncompressed canonical bytes.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;

/// The id of an artifact: BLAKE3-256 of its canonical (uncompressed, unencrypted) bytes, written
/// as 64 lowercase hex digits in names. Parsing accepts exactly that and nothing else.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactId([u8; 32]);

impl ArtifactId {
    pub const LEN: usize = 32;

    pub fn of(canonical: &[u8]) -> Self {
        ArtifactId(*blake3::hash(canonical).as_bytes())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ArtifactId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Returns an error unless `canonical` hashes to this id.
    pub fn verify(&self, canonical: &[u8]) -> Result<(), Error> {
        let actual = ArtifactId::of(canonical);
        if actual == *self {
            Ok(())
        } else {
            Err(Error::IdMismatch {
                expected: *self,
                actual,
            })
        }
    }
}

impl FromStr for ArtifactId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidName {
            what: "artifact id",
            name: s.chars().take(80).collect(),
            reason,
        };
        if s.len() != 64 {
            return Err(invalid("must be 64 hex digits"));
        }
        // One pass (states hold ids by the ten thousand, and a no-op sync reads them all).
        fn nibble(b: u8) -> Option<u8> {
            match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'a'..=b'f' => Some(b - b'a' + 10),
                _ => None,
            }
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let (Some(high), Some(low)) = (nibble(pair[0]), nibble(pair[1])) else {
                return Err(invalid("only lowercase hex digits are allowed"));
            };
            *byte = high << 4 | low;
        }
        Ok(ArtifactId(out))
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactId({})", self.to_hex())
    }
}

// Without a `String` per id either way: engine states hold ids by the ten thousand.
impl serde::Serialize for ArtifactId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 64];
        hex::encode_to_slice(self.0, &mut text).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> serde::Deserialize<'de> for ArtifactId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = ArtifactId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an artifact id (64 lowercase hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ArtifactId, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_hashes_to_the_blake3_reference_value() {
        assert_eq!(
            ArtifactId::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn parsing_round_trips_and_rejects_everything_else() {
        let id = ArtifactId::of(b"x");
        assert_eq!(id.to_hex().parse::<ArtifactId>().unwrap(), id);
        for bad in [
            "",
            &id.to_hex()[..63],
            &id.to_hex().to_uppercase(),
            &format!("{}0", id.to_hex()),
            "../../../../etc/passwd",
            &"g".repeat(64),
        ] {
            assert!(bad.parse::<ArtifactId>().is_err(), "{bad}");
        }
    }
}
