//! `agentsync demo`: the wire format end to end, on embedded sample data.
//!
//! Two simulated origins, in one process, each encode their sample sessions into segments,
//! manifests, a signed checkpoint (buckets + root) and a signed event batch, and write them into
//! one shared folder. Then each reads the other's artifacts back root-first, opening and
//! verifying every one. There is no SQLite archive, no agent-log ingest and no network here: this
//! shows the format and the store layout, not sync.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use agentsync_core::{
    Artifact, ArtifactKey, Checkpoint, Encoded, Event, EventBatch, Hlc, Manifest, Message, Op,
    OriginId, OriginKey, PublicKey, Session, SessionGid, UsageEvent, segment_messages,
};
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::compress::ZstdCompressor;
use crate::store::{FolderStore, Put};

const SAMPLES: &str = include_str!("samples.json");

/// Fixed demo signing secrets, one per origin. Real origins draw theirs from the OS.
const SECRETS: [[u8; 32]; 2] = [[0x11; 32], [0x22; 32]];
/// The wall clock the demo pretends it is (2025-11-25T12:00:00Z), so output is reproducible.
const DEMO_NOW_MS: u64 = 1_764_072_000_000;

pub const NOTE: &str = "format-level demo: two simulated origins in one process write signed, \
content-addressed artifacts of embedded sample sessions into one shared folder and read each \
other's back; no SQLite archive, agent-log ingest or network yet";

#[derive(Deserialize)]
struct Samples {
    origins: Vec<SampleOrigin>,
}

#[derive(Deserialize)]
struct SampleOrigin {
    origin: OriginId,
    sessions: Vec<SampleSession>,
}

#[derive(Deserialize)]
struct SampleSession {
    session: Session,
    messages: Vec<Message>,
    usage_events: Vec<UsageEvent>,
}

/// Everything the demo did, printed as text or JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub note: &'static str,
    pub dir: PathBuf,
    pub written: Vec<Written>,
    pub reads: Vec<Read>,
}

#[derive(Debug, Default, Serialize)]
pub struct KindCount {
    pub files: u64,
    /// Stored bytes: frame header plus zstd payload.
    pub bytes: u64,
    /// Uncompressed canonical bytes (what ids hash).
    pub canonical_bytes: u64,
}

/// What one origin wrote.
#[derive(Debug, Serialize)]
pub struct Written {
    pub origin: OriginId,
    pub public_key: String,
    pub sessions: Vec<String>,
    pub session_count: u64,
    pub message_count: u64,
    pub files: u64,
    pub bytes: u64,
    /// Files that were already in the folder with identical bytes (a re-run is a no-op).
    pub already_present: u64,
    pub by_kind: BTreeMap<&'static str, KindCount>,
    pub root: String,
    pub event_batches: Vec<String>,
}

/// What one origin read of another's artifacts.
#[derive(Debug, Serialize)]
pub struct Read {
    pub reader: OriginId,
    pub origin: OriginId,
    pub root: String,
    pub seq: u64,
    /// The key that signed the root, pinned for the origin on first sight.
    pub signer: String,
    pub sessions: Vec<SessionRead>,
    pub session_count: u64,
    pub message_count: u64,
    pub tool_calls: u64,
    /// Artifacts opened and verified: frame, limits, content id, name, signature.
    pub artifacts_verified: u64,
    pub bytes_read: u64,
    pub events: Vec<EventRead>,
}

#[derive(Debug, Serialize)]
pub struct SessionRead {
    pub gid: String,
    pub agent: String,
    pub title: String,
    pub messages: u64,
    pub segments: u64,
}

#[derive(Debug, Serialize)]
pub struct EventRead {
    pub batch: String,
    pub hlc: String,
    pub session: String,
    pub op: serde_json::Value,
}

/// Runs the demo in `dir` (a new temporary folder if `None`).
pub fn run(dir: Option<&Path>) -> Result<Report> {
    let samples: Samples =
        serde_json::from_str(SAMPLES).context("embedded sample data does not parse")?;
    ensure!(
        samples.origins.len() == 2,
        "embedded sample data must hold exactly two origins"
    );
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => new_temp_dir(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let store = FolderStore::new(&dir);

    let gids: Vec<Vec<SessionGid>> = samples
        .origins
        .iter()
        .map(|o| {
            o.sessions
                .iter()
                .map(|s| SessionGid::new(o.origin.clone(), s.session.native_id.clone()))
                .collect()
        })
        .collect();

    let mut written = Vec::new();
    for (i, origin) in samples.origins.iter().enumerate() {
        let key = OriginKey::from_secret(SECRETS[i]);
        let other = &gids[1 - i];
        let events = sample_events(i, &gids[i], other)?;
        written.push(
            write_origin(&store, origin, &key, events)
                .with_context(|| format!("origin {} writing", origin.origin))?,
        );
    }

    let mut reads = Vec::new();
    for (i, origin) in samples.origins.iter().enumerate() {
        let other = &samples.origins[1 - i].origin;
        reads.push(
            read_origin(&store, &origin.origin, other)
                .with_context(|| format!("origin {} reading {other}", origin.origin))?,
        );
    }

    Ok(Report {
        note: NOTE,
        dir,
        written,
        reads,
    })
}

fn new_temp_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("agentsync-demo-{}-{nanos:09}", std::process::id()))
}

/// Two curation events per origin: star one of its own sessions, rename one of the other's.
fn sample_events(index: usize, own: &[SessionGid], other: &[SessionGid]) -> Result<Vec<Event>> {
    let millis = DEMO_NOW_MS + 60_000 * index as u64;
    let (own, other) = match (own.first(), other.first()) {
        (Some(own), Some(other)) => (own, other),
        _ => bail!("every sample origin needs at least one session"),
    };
    let name = match index {
        0 => "Backup timer was never enabled",
        _ => "Tokenizer: escaped quotes",
    };
    Ok(vec![
        Event {
            hlc: Hlc::new(millis, 0)?,
            session: own.clone(),
            prev: None,
            op: Op::Star,
        },
        Event {
            hlc: Hlc::new(millis, 1)?,
            session: other.clone(),
            prev: None,
            op: Op::Rename { name: name.into() },
        },
    ])
}

fn write_origin(
    store: &FolderStore,
    sample: &SampleOrigin,
    key: &OriginKey,
    events: Vec<Event>,
) -> Result<Written> {
    let origin = &sample.origin;
    let mut out = Written {
        origin: origin.clone(),
        public_key: key.public().to_hex(),
        sessions: Vec::new(),
        session_count: 0,
        message_count: 0,
        files: 0,
        bytes: 0,
        already_present: 0,
        by_kind: BTreeMap::new(),
        root: String::new(),
        event_batches: Vec::new(),
    };
    let mut put = |encoded: &Encoded| -> Result<()> {
        let stored = encoded.seal(Some(&ZstdCompressor))?;
        let name = encoded.key.to_string();
        let outcome = store.put_if_absent(&name, &stored)?;
        let count = out.by_kind.entry(encoded.key.kind().name()).or_default();
        count.files += 1;
        count.bytes += stored.len() as u64;
        count.canonical_bytes += encoded.canonical.len() as u64;
        out.files += 1;
        out.bytes += stored.len() as u64;
        if outcome == Put::AlreadyPresent {
            out.already_present += 1;
        }
        Ok(())
    };

    // Data before references: segments, then manifests, then buckets, then the root.
    let mut manifests = Vec::new();
    for s in &sample.sessions {
        let native = s.session.native_id.clone();
        let segments = segment_messages(&s.messages)
            .with_context(|| format!("segmenting session {native}"))?;
        let refs = segments.iter().map(|seg| seg.reference.clone()).collect();
        for segment in segments {
            put(&Encoded::segment(origin, segment))?;
        }
        let manifest = Manifest {
            origin: origin.clone(),
            session: s.session.clone(),
            message_count: s.messages.len() as u64,
            segments: refs,
            usage_events: s.usage_events.clone(),
        };
        let encoded =
            Encoded::manifest(&manifest).with_context(|| format!("encoding manifest {native}"))?;
        put(&encoded)?;
        manifests.push((native, encoded.id(), s.messages.len() as u64));
    }

    let mut checkpoint = Checkpoint::new(origin.clone());
    for (native, manifest_id, _) in &manifests {
        checkpoint.insert(native.clone(), *manifest_id);
    }
    let committed = checkpoint
        .commit(1, DEMO_NOW_MS as i64, key)
        .context("committing the checkpoint")?;
    for bucket in &committed.buckets {
        put(bucket)?;
    }
    put(&committed.root)?;
    let root_name = committed.root.key.to_string();

    let batch = EventBatch {
        origin: origin.clone(),
        events,
    }
    .seal(key)
    .context("sealing the event batch")?;
    put(&batch)?;

    out.root = root_name;
    out.event_batches.push(batch.key.to_string());
    out.session_count = manifests.len() as u64;
    out.message_count = manifests.iter().map(|(_, _, n)| n).sum();
    out.sessions = manifests
        .iter()
        .map(|(native, _, _)| SessionGid::new(origin.clone(), native.clone()).to_string())
        .collect();
    Ok(out)
}

/// Opens artifacts of one origin from the store, counting what it verified.
struct Opener<'a> {
    store: &'a FolderStore,
    verified: u64,
    bytes: u64,
}

impl Opener<'_> {
    fn open(&mut self, key: &ArtifactKey, referenced_by: &str) -> Result<Artifact> {
        let name = key.to_string();
        let Some(stored) = self.store.get(&name)? else {
            bail!(
                "{name}, referenced by {referenced_by}, is missing (a syncing reader would \
                 defer and retry, never treat it as deleted)"
            );
        };
        let artifact =
            Artifact::open(key, &stored).with_context(|| format!("{name} does not verify"))?;
        self.verified += 1;
        self.bytes += stored.len() as u64;
        Ok(artifact)
    }
}

fn read_origin(store: &FolderStore, reader: &OriginId, origin: &OriginId) -> Result<Read> {
    let mut opener = Opener {
        store,
        verified: 0,
        bytes: 0,
    };

    // One listing finds the newest root: names sort by sequence.
    let prefix = ArtifactKey::roots_prefix(origin);
    let root_key = store
        .list_keys(&prefix, None)?
        .iter()
        .filter_map(|name| name.parse::<ArtifactKey>().ok())
        .filter(|key| matches!(key, ArtifactKey::Root { .. }) && key.origin() == origin)
        .max()
        .with_context(|| format!("no checkpoint root under {prefix}"))?;
    let root_name = root_key.to_string();
    let Artifact::Root { root, signer } = opener.open(&root_key, "the roots listing")? else {
        bail!("{root_name} is not a root");
    };
    // First sight: pin the origin's key. Every later signed artifact must carry the same one.
    let pinned: PublicKey = signer;

    let mut out = Read {
        reader: reader.clone(),
        origin: origin.clone(),
        root: root_name.clone(),
        seq: root.seq,
        signer: pinned.to_hex(),
        sessions: Vec::new(),
        session_count: 0,
        message_count: 0,
        tool_calls: 0,
        artifacts_verified: 0,
        bytes_read: 0,
        events: Vec::new(),
    };

    for bucket_ref in &root.buckets {
        let bucket_key = ArtifactKey::Bucket {
            origin: origin.clone(),
            id: bucket_ref.id,
        };
        let Artifact::Bucket(bucket) = opener.open(&bucket_key, &root_name)? else {
            bail!("{bucket_key} is not a bucket");
        };
        ensure!(
            bucket.index == bucket_ref.index
                && bucket.entries.len() as u64 == u64::from(bucket_ref.sessions),
            "{bucket_key} does not match its entry in {root_name}"
        );
        for entry in &bucket.entries {
            let manifest_key = ArtifactKey::Manifest {
                origin: origin.clone(),
                id: entry.manifest,
            };
            let Artifact::Manifest(manifest) =
                opener.open(&manifest_key, &bucket_key.to_string())?
            else {
                bail!("{manifest_key} is not a manifest");
            };
            ensure!(
                manifest.session.native_id == entry.session,
                "{manifest_key} holds session {}, its bucket says {}",
                manifest.session.native_id,
                entry.session
            );
            let mut messages = 0u64;
            for segment_ref in &manifest.segments {
                let segment_key = ArtifactKey::Segment {
                    origin: origin.clone(),
                    id: segment_ref.id,
                };
                let Artifact::Segment(segment) =
                    opener.open(&segment_key, &manifest_key.to_string())?
                else {
                    bail!("{segment_key} is not a segment");
                };
                ensure!(
                    segment.first_ordinal == segment_ref.first_ordinal
                        && segment.messages.len() as u64 == u64::from(segment_ref.count),
                    "{segment_key} does not match its entry in {manifest_key}"
                );
                messages += segment.messages.len() as u64;
                out.tool_calls += segment
                    .messages
                    .iter()
                    .map(|m| m.tool_calls.len() as u64)
                    .sum::<u64>();
            }
            ensure!(
                messages == manifest.message_count,
                "{manifest_key} announces {} messages, its segments hold {messages}",
                manifest.message_count
            );
            out.message_count += messages;
            out.sessions.push(SessionRead {
                gid: manifest.gid().to_string(),
                agent: manifest.session.agent.clone(),
                title: manifest.session.title.clone(),
                messages,
                segments: manifest.segments.len() as u64,
            });
        }
    }
    out.session_count = out.sessions.len() as u64;
    ensure!(
        out.session_count == root.session_count,
        "{root_name} announces {} sessions, its buckets hold {}",
        root.session_count,
        out.session_count
    );

    // Event batches, in HLC order by name.
    let events_prefix = ArtifactKey::events_prefix(origin);
    for name in store.list_keys(&events_prefix, None)? {
        let Ok(key) = name.parse::<ArtifactKey>() else {
            continue; // not an artifact name: ignored, as a reader must
        };
        let Artifact::Events(decoded) = opener.open(&key, "the events listing")? else {
            bail!("{name} is not an event batch");
        };
        ensure!(
            decoded.signer == pinned,
            "{name} is signed by {}, not by the key pinned for {origin}",
            decoded.signer.to_hex()
        );
        for event in &decoded.batch.events {
            out.events.push(EventRead {
                batch: name.clone(),
                hlc: event.hlc.to_string(),
                session: event.session.to_string(),
                op: serde_json::to_value(&event.op).context("rendering an op")?,
            });
        }
    }

    out.artifacts_verified = opener.verified;
    out.bytes_read = opener.bytes;
    Ok(out)
}

/// The human-readable summary.
pub fn render_text(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "agentsync demo, format level only: two simulated origins in one process write signed,\n\
         content-addressed artifacts of embedded sample sessions into one shared folder, then\n\
         each reads the other's back. No SQLite archive, agent-log ingest or network yet: the\n\
         two-machine sync demo arrives with the CLI.\n"
    );
    let _ = writeln!(s, "Shared folder: {}\n", report.dir.display());
    for w in &report.written {
        let _ = writeln!(
            s,
            "{} wrote {} sessions ({} messages) as {} files, {} bytes, zstd level 3{}:",
            w.origin,
            w.session_count,
            w.message_count,
            w.files,
            w.bytes,
            if w.already_present > 0 {
                format!(" ({} already present, unchanged)", w.already_present)
            } else {
                String::new()
            }
        );
        for kind in ["segment", "manifest", "bucket", "root", "events"] {
            if let Some(c) = w.by_kind.get(kind) {
                let _ = writeln!(
                    s,
                    "  {kind:<9} {:>2} files {:>6} bytes (canonical {:>6})",
                    c.files, c.bytes, c.canonical_bytes
                );
            }
        }
        let _ = writeln!(s, "  root      {}", w.root);
        let _ = writeln!(s, "  signed by {}\n", w.public_key);
    }
    for r in &report.reads {
        let _ = writeln!(s, "{} read {}:", r.reader, r.origin);
        let _ = writeln!(s, "  newest root {} (seq {})", r.root, r.seq);
        for session in &r.sessions {
            let title = if session.title.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", session.title)
            };
            let _ = writeln!(
                s,
                "  {} [{}]{title}: {} messages in {} segment(s)",
                session.gid, session.agent, session.messages, session.segments
            );
        }
        for e in &r.events {
            let op = e.op.get("op").and_then(|v| v.as_str()).unwrap_or("?");
            let detail =
                e.op.get("name")
                    .and_then(|v| v.as_str())
                    .map(|n| format!(" \"{n}\""))
                    .unwrap_or_default();
            let _ = writeln!(s, "  event {} {op}{detail} on {}", e.hlc, e.session);
        }
        let _ = writeln!(
            s,
            "  verified {} artifacts ({} bytes): ids, limits, names, signatures; {} sessions, {} \
             messages, {} tool calls, {} events\n",
            r.artifacts_verified,
            r.bytes_read,
            r.session_count,
            r.message_count,
            r.tool_calls,
            r.events.len()
        );
    }
    if let Some(w) = report.written.first() {
        let _ = writeln!(
            s,
            "Look at any artifact as JSON, e.g.: agentsync inspect {}",
            report.dir.join(&w.root).display()
        );
    }
    s
}
