//! The conformance runner protocol: one JSON vector in, one JSON result line out.
//!
//! Every runner (native `cargo test`, the wasmtime component, the browser) feeds the files of
//! `tests/vectors/` through [`run_vector`] and must print byte-identical result lines. A vector
//! is an object with `name`, `op`, the op's inputs and `expect`; the result line is
//! `{"name":…,"ok":true,"output":{…}}` or `{"name":…,"ok":false,"error":{"class":…,"message":…}}`.
//! [`check`] compares a result with the vector's `expect` (see `docs/format.md`, "Vectors").

use std::collections::BTreeMap;

pub mod scenario;

use serde_json::{Value, json};

use crate::artifact::{Artifact, Encoded};
use crate::checkpoint::Checkpoint;
use crate::error::Error;
use crate::events::EventBatch;
use crate::frame;
use crate::hlc::Hlc;
use crate::id::ArtifactId;
use crate::kind::ArtifactKind;
use crate::manifest::Manifest;
use crate::model::Message;
use crate::names::{ArtifactKey, NativeId, OriginId, SessionGid};
use crate::segment::{encode_segment, segment_messages};
use crate::signature::OriginKey;
use crate::{Bucket, Root};

/// Why a vector could not be run at all (as opposed to the core rejecting its input).
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("vector field {0:?} is missing or has the wrong type")]
    Field(&'static str),
    #[error("vector field {field:?} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("unknown op {0:?}")]
    UnknownOp(String),
}

enum Outcome {
    Ok(Value),
    Rejected(Error),
}

fn field<'a>(v: &'a Value, name: &'static str) -> Result<&'a Value, VectorError> {
    v.get(name).ok_or(VectorError::Field(name))
}

fn str_field<'a>(v: &'a Value, name: &'static str) -> Result<&'a str, VectorError> {
    field(v, name)?.as_str().ok_or(VectorError::Field(name))
}

fn hex_field(v: &Value, name: &'static str) -> Result<Vec<u8>, VectorError> {
    hex::decode(str_field(v, name)?).map_err(|e| VectorError::Invalid {
        field: name,
        reason: e.to_string(),
    })
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value, name: &'static str) -> Result<T, VectorError> {
    serde_json::from_value(field(v, name)?.clone()).map_err(|e| VectorError::Invalid {
        field: name,
        reason: e.to_string(),
    })
}

fn kind_field(v: &Value) -> Result<ArtifactKind, VectorError> {
    ArtifactKind::from_name(str_field(v, "kind")?).map_err(|e| VectorError::Invalid {
        field: "kind",
        reason: e.to_string(),
    })
}

fn signing_key(v: &Value) -> Result<OriginKey, VectorError> {
    let seed = hex_field(v, "signing_seed")?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| VectorError::Invalid {
        field: "signing_seed",
        reason: "must be 32 bytes".into(),
    })?;
    Ok(OriginKey::from_secret(seed))
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn artifact_json(artifact: &Artifact) -> Value {
    to_json(artifact)
}

fn encoded_json(canonical: &[u8]) -> Value {
    json!({ "canonical_hex": hex::encode(canonical), "id": ArtifactId::of(canonical).to_hex() })
}

fn run_encode(v: &Value) -> Result<Outcome, VectorError> {
    let kind = kind_field(v)?;
    let result = match kind {
        ArtifactKind::Segment => {
            let messages: Vec<Message> = typed(v, "value")?;
            encode_segment(&messages).map(|s| s.canonical)
        }
        ArtifactKind::Manifest => typed::<Manifest>(v, "value")?.encode(),
        ArtifactKind::Bucket => typed::<Bucket>(v, "value")?.encode(),
        ArtifactKind::Root => typed::<Root>(v, "value")?.encode(&signing_key(v)?),
        ArtifactKind::Events => typed::<EventBatch>(v, "value")?.encode(&signing_key(v)?),
    };
    Ok(match result {
        Ok(canonical) => Outcome::Ok(encoded_json(&canonical)),
        Err(e) => Outcome::Rejected(e),
    })
}

fn run_decode(v: &Value) -> Result<Outcome, VectorError> {
    let kind = kind_field(v)?;
    let canonical = hex_field(v, "canonical_hex")?;
    Ok(match Artifact::decode(kind, &canonical) {
        Ok(a) => {
            Outcome::Ok(json!({ "id": ArtifactId::of(&canonical), "value": artifact_json(&a) }))
        }
        Err(e) => Outcome::Rejected(e),
    })
}

fn run_open(v: &Value) -> Result<Outcome, VectorError> {
    let key = str_field(v, "key")?;
    let stored = hex_field(v, "stored_hex")?;
    let key: ArtifactKey = match key.parse() {
        Ok(k) => k,
        Err(e) => return Ok(Outcome::Rejected(e)),
    };
    Ok(match Artifact::open(&key, &stored) {
        Ok(a) => Outcome::Ok(json!({ "value": artifact_json(&a) })),
        Err(e) => Outcome::Rejected(e),
    })
}

fn run_seal(v: &Value) -> Result<Outcome, VectorError> {
    let kind = kind_field(v)?;
    let canonical = hex_field(v, "canonical_hex")?;
    Ok(match frame::seal(kind, &canonical, None) {
        Ok(stored) => Outcome::Ok(json!({ "stored_hex": hex::encode(stored) })),
        Err(e) => Outcome::Rejected(e),
    })
}

fn run_segment_messages(v: &Value) -> Result<Outcome, VectorError> {
    let messages: Vec<Message> = typed(v, "messages")?;
    Ok(match segment_messages(&messages) {
        Ok(segments) => Outcome::Ok(json!({
            "segments": segments.iter().map(|s| to_json(&s.reference)).collect::<Vec<_>>()
        })),
        Err(e) => Outcome::Rejected(e),
    })
}

fn run_parse_name(v: &Value) -> Result<Outcome, VectorError> {
    let text = str_field(v, "text")?;
    let parsed: Result<Value, Error> = match str_field(v, "what")? {
        "origin" => text.parse::<OriginId>().map(|x| to_json(&x)),
        "native" => text.parse::<NativeId>().map(|x| to_json(&x)),
        "gid" => text.parse::<SessionGid>().map(|x| to_json(&x)),
        "id" => text.parse::<ArtifactId>().map(|x| to_json(&x)),
        "hlc" => text
            .parse::<Hlc>()
            .map(|x| json!({ "millis": x.millis, "counter": x.counter, "text": x.to_string() })),
        "key" => text.parse::<ArtifactKey>().map(|k| {
            json!({
                "kind": k.kind().name(),
                "origin": k.origin(),
                "id": k.id(),
                "text": k.to_string(),
            })
        }),
        other => {
            return Err(VectorError::Invalid {
                field: "what",
                reason: format!("unknown name kind {other:?}"),
            });
        }
    };
    Ok(match parsed {
        Ok(value) => Outcome::Ok(json!({ "value": value })),
        Err(e) => Outcome::Rejected(e),
    })
}

/// Runs a sequence of checkpoint commits and reports what each one writes.
fn run_checkpoint(v: &Value) -> Result<Outcome, VectorError> {
    let origin: OriginId = typed(v, "origin")?;
    let key = signing_key(v)?;
    let steps = field(v, "steps")?
        .as_array()
        .ok_or(VectorError::Field("steps"))?;
    let mut checkpoint = Checkpoint::new(origin);
    let mut out = Vec::new();
    for step in steps {
        let upsert: BTreeMap<NativeId, ArtifactId> = match step.get("upsert") {
            Some(_) => typed(step, "upsert")?,
            None => BTreeMap::new(),
        };
        let remove: Vec<NativeId> = match step.get("remove") {
            Some(_) => typed(step, "remove")?,
            None => Vec::new(),
        };
        for (session, manifest) in upsert {
            checkpoint.insert(session, manifest);
        }
        for session in &remove {
            checkpoint.remove(session);
        }
        let seq = typed::<u64>(step, "seq")?;
        let created_ms = typed::<i64>(step, "created_ms")?;
        // Writers always state the mark; a step without one has published no event batch.
        let events = match step.get("events") {
            Some(_) => typed(step, "events")?,
            None => crate::checkpoint::EventsMark::NoBatch,
        };
        match checkpoint.commit(seq, created_ms, events, &key) {
            Ok(c) => out.push(json!({
                "buckets": c.buckets.iter().map(|b: &Encoded| b.key.to_string()).collect::<Vec<_>>(),
                "root": c.root.key.to_string(),
                "root_canonical_hex": hex::encode(&c.root.canonical),
            })),
            Err(e) => return Ok(Outcome::Rejected(e)),
        }
    }
    Ok(Outcome::Ok(json!({ "commits": out })))
}

/// Replays curation events and batches through a fresh ledger; optionally retries what was
/// deferred in a second round (`retry`: `wall_ms`, `present`).
fn run_replay(v: &Value) -> Result<Outcome, VectorError> {
    use crate::events::{Event, OrderKey};
    use crate::hlc::HlcClock;
    use crate::keyring::KeyRing;
    use crate::ledger::{LedgerState, SignedEvent};

    let wall_ms: u64 = typed(v, "wall_ms")?;
    let mut clock = match v.get("clock") {
        Some(_) => HlcClock::resume(typed(v, "clock")?),
        None => HlcClock::default(),
    };
    if v.get("max_drift_ms").is_some() {
        clock = clock.with_max_drift(typed(v, "max_drift_ms")?);
    }
    let present = |v: &Value| -> Result<Option<Vec<SessionGid>>, VectorError> {
        Ok(match v.get("present") {
            Some(_) => Some(typed(v, "present")?),
            None => None,
        })
    };
    let mut signed: Vec<SignedEvent> = Vec::new();
    let inputs = match v.get("events") {
        Some(list) => list.as_array().ok_or(VectorError::Field("events"))?.clone(),
        None => Vec::new(),
    };
    for input in &inputs {
        let origin: OriginId = typed(input, "origin")?;
        let mut event_json = input.clone();
        let prev_ref = input.get("prev_ref").and_then(Value::as_u64);
        if let Some(obj) = event_json.as_object_mut() {
            obj.remove("origin");
            obj.remove("prev_ref");
            obj.entry("prev").or_insert(Value::Null);
        }
        let mut event: Event =
            serde_json::from_value(event_json).map_err(|e| VectorError::Invalid {
                field: "events",
                reason: e.to_string(),
            })?;
        if let Some(i) = prev_ref {
            let target: &SignedEvent =
                signed.get(i as usize).ok_or_else(|| VectorError::Invalid {
                    field: "prev_ref",
                    reason: format!("no earlier event {i}"),
                })?;
            event.prev = Some(OrderKey {
                hlc: target.event.hlc,
                origin: target.origin.clone(),
                event: target.id,
            });
        }
        signed.push(SignedEvent {
            origin,
            id: event.id(),
            event,
        });
    }
    let mut keyring: KeyRing = match v.get("pinned") {
        Some(_) => typed(v, "pinned")?,
        None => KeyRing::default(),
    };
    let mut rejected = Vec::new();
    if let Some(batches) = v.get("batches").and_then(Value::as_array) {
        for (i, batch) in batches.iter().enumerate() {
            let bytes = hex_field(batch, "canonical_hex")?;
            let checked = EventBatch::decode(&bytes)
                .and_then(|d| keyring.check(&d.batch.origin, &d.signer).map(|_| d));
            match checked {
                Ok(d) => signed.extend(d.signed_events()),
                Err(e) => {
                    rejected.push(json!({"batch": i, "class": e.class(), "message": e.to_string()}))
                }
            }
        }
    }
    let present_now = present(v)?;
    let is_present = |set: &Option<Vec<SessionGid>>, gid: &SessionGid| {
        set.as_ref().is_none_or(|s| s.contains(gid))
    };
    let mut state = LedgerState::default();
    let first = state.replay(&mut clock, wall_ms, signed.clone(), &|g| {
        is_present(&present_now, g)
    });
    let mut rounds = vec![first];
    if let Some(retry) = v.get("retry") {
        let wall: u64 = typed(retry, "wall_ms")?;
        let present_later = present(retry)?;
        let keys: Vec<_> = rounds[0].deferred.iter().map(|d| d.key.clone()).collect();
        let again: Vec<SignedEvent> = signed
            .iter()
            .filter(|s| keys.contains(&s.key()))
            .cloned()
            .collect();
        rounds.push(state.replay(&mut clock, wall, again, &|g| is_present(&present_later, g)));
    }
    Ok(Outcome::Ok(json!({
        "state": to_json(&state),
        "conflicts": to_json(&state.conflicts()),
        "rounds": rounds.iter().map(|r| json!({
            "projections": to_json(&r.projections),
            "deferred": to_json(&r.deferred),
            "applied": r.applied,
            "duplicates": r.duplicates,
            "ignored": r.ignored,
        })).collect::<Vec<_>>(),
        "rejected": rejected,
        "clock": clock.last().to_string(),
        "event_ids": signed.iter().map(|s| s.id.to_hex()).collect::<Vec<_>>(),
    })))
}

/// Runs one vector and returns its result line (a JSON object).
pub fn run_vector(vector: &Value) -> Value {
    let name = vector.get("name").cloned().unwrap_or(Value::Null);
    let outcome = (|| {
        let op = str_field(vector, "op")?;
        match op {
            "encode" => run_encode(vector),
            "decode" => run_decode(vector),
            "open" => run_open(vector),
            "seal" => run_seal(vector),
            "segment_messages" => run_segment_messages(vector),
            "parse_name" => run_parse_name(vector),
            "checkpoint" => run_checkpoint(vector),
            "replay" => run_replay(vector),
            "scenario" => scenario::run(vector).map(Outcome::Ok),
            other => Err(VectorError::UnknownOp(other.to_owned())),
        }
    })();
    match outcome {
        Ok(Outcome::Ok(output)) => json!({ "name": name, "ok": true, "output": output }),
        Ok(Outcome::Rejected(e)) => json!({
            "name": name,
            "ok": false,
            "error": { "class": e.class(), "deferred": e.is_deferred(), "message": e.to_string() },
        }),
        Err(e) => json!({
            "name": name,
            "ok": false,
            "error": { "class": "VectorError", "deferred": false, "message": e.to_string() },
        }),
    }
}

/// Runs every vector of a vector file (`{"vectors": [...]}`) and returns one result line each.
pub fn run_file(text: &str) -> Result<Vec<String>, VectorError> {
    let file: Value = serde_json::from_str(text).map_err(|e| VectorError::Invalid {
        field: "file",
        reason: e.to_string(),
    })?;
    let vectors = field(&file, "vectors")?
        .as_array()
        .ok_or(VectorError::Field("vectors"))?;
    Ok(vectors.iter().map(|v| run_vector(v).to_string()).collect())
}

/// Compares a result line with the vector's `expect`: `{"error": "<class>"}` wants a rejection of
/// that class; any other object lists output fields that must be equal.
pub fn check(vector: &Value, result: &Value) -> Result<(), String> {
    let expect = vector
        .get("expect")
        .ok_or_else(|| "vector has no expect".to_owned())?;
    if let Some(class) = expect.get("error") {
        return match result.get("error").and_then(|e| e.get("class")) {
            Some(actual) if actual == class => Ok(()),
            _ => Err(format!("expected error {class}, got {result}")),
        };
    }
    let output = result
        .get("output")
        .ok_or_else(|| format!("expected success, got {result}"))?;
    let expect = expect
        .as_object()
        .ok_or_else(|| "expect must be an object".to_owned())?;
    for (key, want) in expect {
        match output.get(key) {
            Some(got) if got == want => {}
            got => return Err(format!("{key}: expected {want}, got {got:?}")),
        }
    }
    Ok(())
}
