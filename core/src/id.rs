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
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid("only lowercase hex digits are allowed"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| invalid("not hex"))?;
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

impl serde::Serialize for ArtifactId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ArtifactId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
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
