//! Validated names: origin ids, native session ids, session gids and store keys.
//!
//! Every name that can become a file name or an object key is checked here against a small
//! character set, so no accepted name can hold `/`, `\`, `..`, `:`, a control character or a
//! leading dot, whatever store or file system it lands in.

use core::fmt;
use core::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::id::ArtifactId;
use crate::kind::ArtifactKind;
use crate::limits;

/// Origin ids that can never be minted: `local` names the unsynced machine in hosts, and
/// `roots` is the top-level prefix of the checkpoint roots.
pub const RESERVED_ORIGINS: [&str; 2] = ["local", "roots"];

/// Names Windows refuses as a file or folder name, whatever the extension: an origin id is a
/// folder in every store, so none of these can be one.
fn is_windows_device(s: &str) -> bool {
    matches!(s, "con" | "prn" | "aux" | "nul")
        || (s.len() == 4
            && (s.starts_with("com") || s.starts_with("lpt"))
            && s.as_bytes()[3].is_ascii_digit())
}

/// One machine's id: `[a-z0-9-]`, 1–63 characters, no leading or trailing `-`, not reserved,
/// not a Windows device name.
/// Shared (`Arc`), because every event and order key carries one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginId(Arc<str>);

impl OriginId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OriginId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidName {
            what: "origin id",
            name: s.chars().take(80).collect(),
            reason,
        };
        if s.is_empty() || s.len() > limits::MAX_ORIGIN {
            return Err(invalid("must be 1 to 63 characters"));
        }
        if !s
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        {
            return Err(invalid("only a-z, 0-9 and - are allowed"));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(invalid("must not start or end with -"));
        }
        if RESERVED_ORIGINS.contains(&s) {
            return Err(invalid("reserved"));
        }
        if is_windows_device(s) {
            return Err(invalid(
                "a Windows device name (con, prn, aux, nul, com0-9, lpt0-9): no folder can have it",
            ));
        }
        Ok(OriginId(Arc::from(s)))
    }
}

/// A session id as its agent wrote it: 1–128 of `[A-Za-z0-9._-]`, not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NativeId(Arc<str>);

impl NativeId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NativeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidName {
            what: "native session id",
            name: s.chars().take(80).collect(),
            reason,
        };
        if s.is_empty() || s.len() > limits::MAX_NATIVE_ID {
            return Err(invalid("must be 1 to 128 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(invalid("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"));
        }
        if s.starts_with('.') {
            return Err(invalid("must not start with '.'"));
        }
        Ok(NativeId(Arc::from(s)))
    }
}

/// A session's id across the fleet: `<origin>~<native id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionGid {
    pub origin: OriginId,
    pub native: NativeId,
}

impl SessionGid {
    pub fn new(origin: OriginId, native: NativeId) -> Self {
        SessionGid { origin, native }
    }
}

impl FromStr for SessionGid {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (origin, native) = s.split_once('~').ok_or_else(|| Error::InvalidName {
            what: "session gid",
            name: s.chars().take(80).collect(),
            reason: "must be <origin>~<native id>",
        })?;
        Ok(SessionGid {
            origin: origin.parse()?,
            native: native.parse()?,
        })
    }
}

impl fmt::Display for SessionGid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}~{}", self.origin, self.native)
    }
}

macro_rules! string_name_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
string_name_impls!(OriginId);
string_name_impls!(NativeId);

macro_rules! serde_via_str {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> core::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> core::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(OriginId);
serde_via_str!(NativeId);
serde_via_str!(SessionGid);
serde_via_str!(ArtifactKey);

/// Where an artifact lives in a store. Every key names its origin; only that origin writes or
/// deletes it.
///
/// ```text
/// <origin>/segments/<id>.ndjson.zst
/// <origin>/manifests/<id>.manifest
/// <origin>/buckets/<id>.bucket
/// <origin>/events/<hlc>-<id>.events
/// roots/<origin>/<seq, 20 digits>-<id>.root
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArtifactKey {
    Segment {
        origin: OriginId,
        id: ArtifactId,
    },
    Manifest {
        origin: OriginId,
        id: ArtifactId,
    },
    Bucket {
        origin: OriginId,
        id: ArtifactId,
    },
    Events {
        origin: OriginId,
        hlc: Hlc,
        id: ArtifactId,
    },
    Root {
        origin: OriginId,
        seq: u64,
        id: ArtifactId,
    },
}

/// The prefix under which every origin's roots are listed together.
pub const ROOTS_PREFIX: &str = "roots/";

impl ArtifactKey {
    /// A root's sequence number (`None` for other kinds).
    pub fn root_seq(&self) -> Option<u64> {
        match self {
            ArtifactKey::Root { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    pub fn kind(&self) -> ArtifactKind {
        match self {
            ArtifactKey::Segment { .. } => ArtifactKind::Segment,
            ArtifactKey::Manifest { .. } => ArtifactKind::Manifest,
            ArtifactKey::Bucket { .. } => ArtifactKind::Bucket,
            ArtifactKey::Events { .. } => ArtifactKind::Events,
            ArtifactKey::Root { .. } => ArtifactKind::Root,
        }
    }

    pub fn origin(&self) -> &OriginId {
        match self {
            ArtifactKey::Segment { origin, .. }
            | ArtifactKey::Manifest { origin, .. }
            | ArtifactKey::Bucket { origin, .. }
            | ArtifactKey::Events { origin, .. }
            | ArtifactKey::Root { origin, .. } => origin,
        }
    }

    pub fn id(&self) -> ArtifactId {
        match self {
            ArtifactKey::Segment { id, .. }
            | ArtifactKey::Manifest { id, .. }
            | ArtifactKey::Bucket { id, .. }
            | ArtifactKey::Events { id, .. }
            | ArtifactKey::Root { id, .. } => *id,
        }
    }

    /// The listing prefix holding one origin's roots; list it with `start-after` set to the
    /// newest root key known to find only newer roots.
    pub fn roots_prefix(origin: &OriginId) -> String {
        format!("{ROOTS_PREFIX}{origin}/")
    }

    /// The listing prefix holding one origin's event batches, in HLC order.
    pub fn events_prefix(origin: &OriginId) -> String {
        format!("{origin}/events/")
    }

    /// Keys that are not artifacts but must be ignored without complaint (a writer's temp files).
    pub fn is_temporary(key: &str) -> bool {
        key.rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(".tmp-"))
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ext = self.kind().extension();
        match self {
            ArtifactKey::Segment { origin, id } => write!(f, "{origin}/segments/{id}{ext}"),
            ArtifactKey::Manifest { origin, id } => write!(f, "{origin}/manifests/{id}{ext}"),
            ArtifactKey::Bucket { origin, id } => write!(f, "{origin}/buckets/{id}{ext}"),
            ArtifactKey::Events { origin, hlc, id } => {
                write!(f, "{origin}/events/{hlc}-{id}{ext}")
            }
            ArtifactKey::Root { origin, seq, id } => {
                write!(f, "{ROOTS_PREFIX}{origin}/{seq:020}-{id}{ext}")
            }
        }
    }
}

impl FromStr for ArtifactKey {
    type Err = Error;

    fn from_str(key: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidName {
            what: "artifact key",
            name: key.chars().take(200).collect(),
            reason,
        };
        let parts: Vec<&str> = key.split('/').collect();
        let [first, second, file] = parts[..] else {
            return Err(invalid("must have exactly three /-separated parts"));
        };
        let strip = |kind: ArtifactKind| {
            file.strip_suffix(kind.extension())
                .ok_or_else(|| invalid("file name does not end with its kind's extension"))
        };
        if first == "roots" {
            let origin: OriginId = second.parse()?;
            let stem = strip(ArtifactKind::Root)?;
            let (seq, id) = stem
                .split_once('-')
                .ok_or_else(|| invalid("root name must be <seq>-<id>.root"))?;
            if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("root sequence must be 20 decimal digits"));
            }
            let seq: u64 = seq
                .parse()
                .map_err(|_| invalid("root sequence does not fit 64 bits"))?;
            return Ok(ArtifactKey::Root {
                origin,
                seq,
                id: id.parse()?,
            });
        }
        let origin: OriginId = first.parse()?;
        match second {
            "segments" => Ok(ArtifactKey::Segment {
                origin,
                id: strip(ArtifactKind::Segment)?.parse()?,
            }),
            "manifests" => Ok(ArtifactKey::Manifest {
                origin,
                id: strip(ArtifactKind::Manifest)?.parse()?,
            }),
            "buckets" => Ok(ArtifactKey::Bucket {
                origin,
                id: strip(ArtifactKind::Bucket)?.parse()?,
            }),
            "events" => {
                let stem = strip(ArtifactKind::Events)?;
                // The HLC text itself contains one '-', so split at the last one.
                let (hlc, id) = stem
                    .rsplit_once('-')
                    .ok_or_else(|| invalid("event batch name must be <hlc>-<id>.events"))?;
                Ok(ArtifactKey::Events {
                    origin,
                    hlc: hlc.parse()?,
                    id: id.parse()?,
                })
            }
            _ => Err(invalid(
                "unknown folder: expected segments, manifests, buckets or events",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_ids_follow_the_rules() {
        for ok in ["laptop-a1b2c3", "a", "0", &"x".repeat(63), "a-b"] {
            assert!(ok.parse::<OriginId>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Laptop",
            "local",
            "roots",
            "a_b",
            "a/b",
            "..",
            "a.b",
            "a~b",
            &"x".repeat(64),
            " a",
            "ä",
        ] {
            assert!(bad.parse::<OriginId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn native_ids_rule_out_traversal() {
        for ok in [
            "7f3e2c9a-1b2c-4d5e-8f90-0123456789ab",
            "agent-a1b2",
            "a.b_c",
        ] {
            assert!(ok.parse::<NativeId>().is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", ".hidden", "a/b", "a\\b", "a:b", "a~b", "a b", "a\0b",
        ] {
            assert!(bad.parse::<NativeId>().is_err(), "{bad:?}");
        }
        assert!("x".repeat(129).parse::<NativeId>().is_err());
    }

    #[test]
    fn gids_split_on_the_tilde() {
        let gid: SessionGid = "laptop-a1b2c3~abc-123".parse().unwrap();
        assert_eq!(gid.origin.as_str(), "laptop-a1b2c3");
        assert_eq!(gid.native.as_str(), "abc-123");
        assert_eq!(gid.to_string(), "laptop-a1b2c3~abc-123");
        for bad in [
            "abc",
            "~abc",
            "laptop~",
            "laptop~a~b",
            "local~abc",
            "../x~y",
        ] {
            assert!(bad.parse::<SessionGid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_round_trip_for_every_kind() {
        let origin: OriginId = "desk-0a0b0c".parse().unwrap();
        let id = ArtifactId::of(b"k");
        let keys = [
            ArtifactKey::Segment {
                origin: origin.clone(),
                id,
            },
            ArtifactKey::Manifest {
                origin: origin.clone(),
                id,
            },
            ArtifactKey::Bucket {
                origin: origin.clone(),
                id,
            },
            ArtifactKey::Events {
                origin: origin.clone(),
                hlc: Hlc::new(1_764_078_194_123, 3).unwrap(),
                id,
            },
            ArtifactKey::Root {
                origin,
                seq: 42,
                id,
            },
        ];
        for key in keys {
            let text = key.to_string();
            assert_eq!(text.parse::<ArtifactKey>().unwrap(), key, "{text}");
        }
    }

    #[test]
    fn root_keys_sort_by_sequence() {
        let origin: OriginId = "a".parse().unwrap();
        let k = |seq, b: &[u8]| {
            ArtifactKey::Root {
                origin: origin.clone(),
                seq,
                id: ArtifactId::of(b),
            }
            .to_string()
        };
        assert!(k(9, b"z") < k(10, b"a"));
        assert!(k(u64::MAX - 1, b"z") < k(u64::MAX, b"a"));
    }

    #[test]
    fn hostile_keys_are_rejected() {
        let id = ArtifactId::of(b"k").to_hex();
        for bad in [
            format!("../segments/{id}.ndjson.zst"),
            format!("a/segments/../{id}.ndjson.zst"),
            format!("a/segments/{id}.manifest"),
            format!("a/segments/{id}"),
            format!("a/other/{id}.bucket"),
            format!("a//segments/{id}.ndjson.zst"),
            format!("/a/segments/{id}.ndjson.zst"),
            format!("roots/a/{id}.root"),
            format!("roots/a/1-{id}.root"),
            format!("roots/a/-0000000000000000001-{id}.root"),
            "a/events/20261125T134314.123Z-0000.events".to_owned(),
            format!("a/events/2026-11-25T13:43:14Z-{id}.events"),
            format!("local/segments/{id}.ndjson.zst"),
        ] {
            assert!(bad.parse::<ArtifactKey>().is_err(), "{bad}");
        }
        assert!(ArtifactKey::is_temporary("a/segments/.tmp-123"));
    }
}
