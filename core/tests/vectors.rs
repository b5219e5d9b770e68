//! The format conformance vectors in `tests/vectors/format/`.
//!
//! `generate()` builds every vector from hand-chosen inputs; byte-level negative cases and the
//! forward-compatibility cases ("v2" artifacts, appended fields, unknown ops) are hand-built
//! here with a separate minimal encoder, from the rules in docs/format.md rather than from the
//! core's own writer. Positive vectors pin the bytes and ids the core produced when they were
//! generated (golden values); negative vectors name the error class by hand.
//!
//! `UPDATE_VECTORS=1 cargo test -p agentsync-core --test vectors` rewrites the files; without it
//! the test fails if the files differ from what the generator produces, and runs every vector
//! file through the runner, as every other runner (wasmtime, browser) will.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentsync_core::conformance::{check, run_vector};
use ed25519_dalek::Signer;
use serde_json::{Value, json};

#[path = "vectors/ledger.rs"]
mod ledger;
#[path = "vectors/scenarios.rs"]
mod scenarios;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

// ---- a minimal, independent encoder for hand-built bytes ----

#[derive(Default, Clone)]
pub(crate) struct Bytes(Vec<u8>);

impl Bytes {
    pub(crate) fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn u8(self, v: u8) -> Self {
        self.raw(&[v])
    }
    pub(crate) fn varint(mut self, mut v: u64) -> Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    pub(crate) fn signed(self, v: i64) -> Self {
        self.varint(((v << 1) ^ (v >> 63)) as u64)
    }
    pub(crate) fn str(self, s: &str) -> Self {
        self.varint(s.len() as u64).raw(s.as_bytes())
    }
    pub(crate) fn record(self, inner: Bytes) -> Self {
        self.varint(inner.0.len() as u64).raw(&inner.0)
    }
    pub(crate) fn hex(&self) -> String {
        hex::encode(&self.0)
    }
}

pub(crate) fn b() -> Bytes {
    Bytes::default()
}

/// `"AS" kind version body-record`, signed when `seed` is given.
pub(crate) fn envelope(kind: u8, version: u64, body: Bytes, seed: Option<[u8; 32]>) -> Bytes {
    let unsigned = b().raw(b"AS").u8(kind).varint(version).record(body);
    match seed {
        None => unsigned,
        Some(seed) => {
            let kind_name = match kind {
                4 => "root",
                5 => "events",
                _ => unreachable!(),
            };
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let mut msg = b"agentsync/v1/".to_vec();
            msg.extend_from_slice(kind_name.as_bytes());
            msg.push(0);
            msg.extend_from_slice(&unsigned.0);
            let sig = key.sign(&msg).to_bytes();
            let sig_rec = b().raw(&key.verifying_key().to_bytes()).raw(&sig);
            unsigned.record(sig_rec)
        }
    }
}

/// An uncompressed stored object, built from the frame spec.
fn frame(kind: u8, canonical: &[u8]) -> Bytes {
    frame_with(1, kind, 0, 0, canonical.len() as u64, canonical, canonical)
}

fn frame_with(
    version: u8,
    kind: u8,
    compression: u8,
    encryption: u8,
    declared_len: u64,
    canonical: &[u8],
    payload: &[u8],
) -> Bytes {
    b().raw(&[0x5a, 0x2a, 0x4d, 0x18])
        .raw(&48u32.to_le_bytes())
        .raw(b"AGSY")
        .u8(version)
        .u8(kind)
        .u8(compression)
        .u8(encryption)
        .raw(&declared_len.to_le_bytes())
        .raw(blake3::hash(canonical).as_bytes())
        .raw(payload)
}

pub(crate) fn id_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

// ---- inputs ----

const ORIGIN: &str = "laptop-a1b2c3";
const OTHER: &str = "desktop-d4e5f6";
const SEED: [u8; 32] = [7; 32];
const OTHER_SEED: [u8; 32] = [9; 32];
const UUID: &str = "7f3e2c9a-1b2c-4d5e-8f90-0123456789ab";

fn basic_messages() -> Value {
    json!([
        {"ordinal": 0, "role": "user", "content": "hi", "timestamp_ms": 1764078194000i64},
        {"ordinal": 1, "role": "assistant", "content": "hello", "model": "claude-sonnet-4-5",
         "usage": {"input": 12, "output": 3}},
    ])
}

fn full_message() -> Value {
    json!([{
        "ordinal": 5,
        "role": "assistant",
        "content": "Reading the file.\nDone: \"ok\" \u{00e9}\u{0007}",
        "thinking": "The user wants the README.",
        "model": "claude-opus-4-1",
        "timestamp_ms": 1764078195123i64,
        "source_uuid": "a0000000-0000-4000-8000-000000000005",
        "parent_uuid": "a0000000-0000-4000-8000-000000000004",
        "sidechain": true,
        "usage": {"input": 1200, "output": 80, "cache_read": 9000, "cache_creation": 300, "reasoning": 40},
        "tool_calls": [{
            "id": "toolu_01",
            "name": "Read",
            "category": "read",
            "input": "{\"file_path\":\"/repo/README.md\"}",
            "result": "# agentsync\n",
            "result_events": [{"source": "subagent", "status": "done", "content": "ok",
                               "subagent_session": "agent-a1b2", "timestamp_ms": 1764078196000i64}]
        }, {
            "id": "toolu_02", "name": "Bash", "category": "shell",
            "input": "{\"command\":\"false\"}", "is_error": true, "result": "exit 1"
        }]
    }])
}

fn session(native: &str) -> Value {
    json!({
        "native_id": native,
        "agent": "claude",
        "parser": "claude-code/1",
        "project": "agentsync",
        "cwd": "/home/u/agentsync",
        "git_branch": "main",
        "started_ms": 1764078194000i64,
        "ended_ms": 1764078199000i64,
        "title": "Fix the README",
        "first_message": "hi",
        "parent_session": "",
        "relationship": "",
        "user_message_count": 1
    })
}

pub(crate) fn run(v: &Value) -> Value {
    run_vector(v)
}

/// Fills `expect` from the run for positive golden vectors.
pub(crate) fn golden(mut v: Value, fields: &[&str]) -> Value {
    let result = run(&v);
    let output = result
        .get("output")
        .unwrap_or_else(|| panic!("golden vector {} failed: {result}", v["name"]));
    let mut expect = serde_json::Map::new();
    for f in fields {
        expect.insert((*f).to_owned(), output[*f].clone());
    }
    v["expect"] = Value::Object(expect);
    v
}

pub(crate) fn rejects(mut v: Value, class: &str) -> Value {
    v["expect"] = json!({ "error": class });
    v
}

pub(crate) fn canonical_of(v: &Value) -> Vec<u8> {
    let r = run(v);
    hex::decode(r["output"]["canonical_hex"].as_str().expect("canonical")).unwrap()
}

fn names() -> Vec<Value> {
    let id = id_of(b"agentsync");
    let mut out = Vec::new();
    let mut name = |n: &str, what: &str, text: &str, ok: bool| {
        let v = json!({"name": n, "op": "parse_name", "what": what, "text": text});
        out.push(if ok {
            golden(v, &["value"])
        } else {
            rejects(v, "InvalidName")
        });
    };
    name("origin-ok", "origin", ORIGIN, true);
    name("origin-uppercase", "origin", "Laptop-a1b2c3", false);
    name("origin-local-reserved", "origin", "local", false);
    name("origin-roots-reserved", "origin", "roots", false);
    // Issue 17 item 10: Windows cannot create these folders.
    for device in ["con", "nul", "aux", "prn", "com1", "lpt9"] {
        name(
            &format!("origin-windows-device-{device}"),
            "origin",
            device,
            false,
        );
    }
    name("origin-like-a-device-ok", "origin", "console-1", true);
    name("origin-leading-dash", "origin", "-laptop", false);
    name("origin-too-long", "origin", &"a".repeat(64), false);
    name("native-uuid", "native", UUID, true);
    name("native-dotdot", "native", "..", false);
    name("native-slash", "native", "a/b", false);
    name("native-colon", "native", "codex:abc", false);
    name("gid-ok", "gid", &format!("{ORIGIN}~{UUID}"), true);
    name("gid-no-tilde", "gid", UUID, false);
    name("gid-traversal", "gid", "../x~y", false);
    name("id-ok", "id", &id, true);
    name("id-uppercase", "id", &id.to_uppercase(), false);
    name("hlc-ok", "hlc", "20261125T134314.123Z-000a", true);
    name(
        "hlc-with-colons",
        "hlc",
        "2026-11-25T13:43:14.123Z-000a",
        false,
    );
    name("hlc-not-a-date", "hlc", "20260230T000000.000Z-0000", false);
    name(
        "key-segment",
        "key",
        &format!("{ORIGIN}/segments/{id}.ndjson.zst"),
        true,
    );
    name(
        "key-manifest",
        "key",
        &format!("{ORIGIN}/manifests/{id}.manifest"),
        true,
    );
    name(
        "key-bucket",
        "key",
        &format!("{ORIGIN}/buckets/{id}.bucket"),
        true,
    );
    name(
        "key-events",
        "key",
        &format!("{ORIGIN}/events/20261125T134314.123Z-0000-{id}.events"),
        true,
    );
    name(
        "key-root",
        "key",
        &format!("roots/{ORIGIN}/00000000000000000007-{id}.root"),
        true,
    );
    name(
        "key-traversal",
        "key",
        &format!("{ORIGIN}/segments/../{id}.ndjson.zst"),
        false,
    );
    name(
        "key-wrong-extension",
        "key",
        &format!("{ORIGIN}/segments/{id}.manifest"),
        false,
    );
    name(
        "key-root-short-seq",
        "key",
        &format!("roots/{ORIGIN}/7-{id}.root"),
        false,
    );
    out
}

fn segments() -> Vec<Value> {
    let mut out = Vec::new();
    // Hand-written canonical text: the spec's own example, checked byte for byte.
    let basic_text = concat!(
        "{\"count\":2,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}\n",
        "{\"content\":\"hi\",\"ordinal\":0,\"role\":\"user\",\"timestamp_ms\":1764078194000}\n",
        "{\"content\":\"hello\",\"model\":\"claude-sonnet-4-5\",\"ordinal\":1,\"role\":\"assistant\",\"usage\":{\"input\":12,\"output\":3}}\n",
    );
    out.push(json!({
        "name": "segment-basic", "op": "encode", "kind": "segment", "value": basic_messages(),
        "expect": {"canonical_hex": hex::encode(basic_text), "id": id_of(basic_text.as_bytes())}
    }));
    out.push(golden(
        json!({"name": "segment-full-message", "op": "encode", "kind": "segment", "value": full_message()}),
        &["canonical_hex", "id"],
    ));
    out.push(rejects(
        json!({"name": "segment-ordinal-gap", "op": "encode", "kind": "segment",
               "value": [{"ordinal": 0, "role": "user"}, {"ordinal": 2, "role": "user"}]}),
        "Malformed",
    ));
    out.push(rejects(
        json!({"name": "segment-empty", "op": "encode", "kind": "segment", "value": []}),
        "Malformed",
    ));
    out.push(json!({
        "name": "segment-decode-basic", "op": "decode", "kind": "segment",
        "canonical_hex": hex::encode(basic_text),
        "expect": {"value": {"kind": "segment", "first_ordinal": 0, "messages": [
            {"ordinal": 0, "role": "user", "content": "hi", "timestamp_ms": 1764078194000i64},
            {"ordinal": 1, "role": "assistant", "content": "hello", "model": "claude-sonnet-4-5",
             "usage": {"input": 12, "output": 3}}
        ]}}
    }));
    // Forward compatibility: keys a newer v1 writer appended are skipped.
    let appended = concat!(
        "{\"count\":1,\"first_ordinal\":0,\"kind\":\"segment\",\"shard\":\"x\",\"v\":1}\n",
        "{\"content\":\"hi\",\"mood\":{\"tone\":[1,2]},\"ordinal\":0,\"role\":\"user\"}\n",
    );
    out.push(golden(
        json!({"name": "segment-unknown-keys-skipped", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(appended)}),
        &["value"],
    ));
    let v2 = concat!(
        "{\"count\":1,\"encoding\":\"columnar\",\"kind\":\"segment\",\"v\":2}\n",
        "[\"ordinal\",\"role\"]\n",
    );
    out.push(rejects(
        json!({"name": "segment-v2-deferred", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(v2)}),
        "FutureVersion",
    ));
    // Issue 17: `ordinal` and `role` are required keys of a message line (and `name` of a tool
    // call), and a role is never empty; a writer refuses to produce such a line (encode), a reader refuses to accept one.
    for (name, line) in [
        (
            "segment-message-missing-role",
            "{\"content\":\"hi\",\"ordinal\":0}",
        ),
        (
            "segment-message-missing-ordinal",
            "{\"content\":\"hi\",\"role\":\"user\"}",
        ),
        (
            "segment-message-empty-role",
            "{\"content\":\"hi\",\"ordinal\":0,\"role\":\"\"}",
        ),
        (
            "segment-tool-call-missing-name",
            "{\"ordinal\":0,\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t1\"}]}",
        ),
    ] {
        let text =
            format!("{{\"count\":1,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}}\n{line}\n");
        out.push(rejects(
            json!({"name": name, "op": "decode", "kind": "segment", "canonical_hex": hex::encode(text)}),
            "Malformed",
        ));
    }
    out.push(rejects(
        json!({"name": "segment-encode-empty-role", "op": "encode", "kind": "segment",
               "value": [{"ordinal": 0, "role": ""}]}),
        "Malformed",
    ));
    let missing_line = "{\"count\":2,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}\n{\"ordinal\":0,\"role\":\"user\"}\n";
    out.push(rejects(
        json!({"name": "segment-missing-line", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(missing_line)}),
        "Truncated",
    ));
    let no_newline = "{\"count\":1,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}\n{\"ordinal\":0,\"role\":\"user\"}";
    out.push(rejects(
        json!({"name": "segment-unterminated-line", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(no_newline)}),
        "Truncated",
    ));
    let gap = "{\"count\":2,\"first_ordinal\":3,\"kind\":\"segment\",\"v\":1}\n{\"ordinal\":3,\"role\":\"user\"}\n{\"ordinal\":5,\"role\":\"user\"}\n";
    out.push(rejects(
        json!({"name": "segment-decode-ordinal-gap", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(gap)}),
        "Malformed",
    ));
    let deep = format!(
        "{{\"count\":1,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}}\n{{\"ordinal\":0,\"role\":\"user\",\"x\":{}0{}}}\n",
        "[".repeat(20),
        "]".repeat(20)
    );
    out.push(rejects(
        json!({"name": "segment-nesting-too-deep", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(deep)}),
        "NestingLimit",
    ));
    let too_many = "{\"count\":5000,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}\n{\"ordinal\":0,\"role\":\"user\"}\n";
    out.push(rejects(
        json!({"name": "segment-count-over-limit", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(too_many)}),
        "CountLimit",
    ));
    let dup = "{\"count\":1,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}\n{\"ordinal\":0,\"role\":\"user\",\"role\":\"tool\"}\n";
    out.push(rejects(
        json!({"name": "segment-duplicate-key", "op": "decode", "kind": "segment",
               "canonical_hex": hex::encode(dup)}),
        "Malformed",
    ));
    // The segmenting rule: 300 short messages → 128 + 128 + 44.
    let many: Vec<Value> = (0..300)
        .map(|i| json!({"ordinal": i, "role": if i % 2 == 0 {"user"} else {"assistant"}, "content": format!("message {i}")}))
        .collect();
    out.push(golden(
        json!({"name": "segmenting-by-count", "op": "segment_messages", "messages": many}),
        &["segments"],
    ));
    // ...and by size: 90 KiB messages, so a segment holds two (2 × 90 KiB ≤ 256 KiB < 3 ×).
    let big: Vec<Value> = (0..3)
        .map(|i| json!({"ordinal": i, "role": "tool", "content": "x".repeat(90 * 1024)}))
        .collect();
    out.push(golden(
        json!({"name": "segmenting-by-size", "op": "segment_messages", "messages": big}),
        &["segments"],
    ));
    out
}

fn manifest_value(native: &str, segments: Value, message_count: u64) -> Value {
    json!({
        "origin": ORIGIN,
        "session": session(native),
        "message_count": message_count,
        "segments": segments,
        "usage_events": [{
            "message_ordinal": 1, "source": "claude", "model": "claude-sonnet-4-5",
            "usage": {"input": 12, "output": 3}, "cost_micro_usd": 105, "occurred_ms": 1764078195000i64,
            "dedup_key": "msg_01"
        }]
    })
}

fn session_record(native: &str, appended: Option<&str>) -> Bytes {
    let mut rec = b()
        .str(native)
        .str("claude")
        .str("claude-code/1")
        .str("agentsync")
        .str("/home/u/agentsync")
        .str("main")
        .u8(1)
        .signed(1764078194000)
        .u8(1)
        .signed(1764078199000)
        .str("Fix the README")
        .str("hi")
        .str("")
        .str("")
        .varint(1);
    if let Some(extra) = appended {
        rec = rec.str(extra);
    }
    rec
}

fn manifests() -> Vec<Value> {
    let mut out = Vec::new();
    let seg_id = id_of(b"segment bytes");
    let segs = json!([{"id": seg_id, "first_ordinal": 0, "count": 2, "bytes": 310}]);
    let basic = json!({"name": "manifest-basic", "op": "encode", "kind": "manifest",
                       "value": manifest_value(UUID, segs.clone(), 2)});
    let basic_bytes = canonical_of(&basic);
    out.push(golden(basic, &["canonical_hex", "id"]));
    // Edge case 7: usage but no messages is still a manifest.
    out.push(golden(
        json!({"name": "manifest-usage-only", "op": "encode", "kind": "manifest",
               "value": manifest_value("usage-only-1", json!([]), 0)}),
        &["canonical_hex", "id"],
    ));
    out.push(rejects(
        json!({"name": "manifest-count-mismatch", "op": "encode", "kind": "manifest",
               "value": manifest_value(UUID, segs.clone(), 3)}),
        "Malformed",
    ));
    let mut long_title = manifest_value(UUID, segs.clone(), 2);
    long_title["session"]["title"] = json!("t".repeat(1025));
    out.push(rejects(
        json!({"name": "manifest-title-too-long", "op": "encode", "kind": "manifest", "value": long_title}),
        "StringLimit",
    ));
    out.push(golden(
        json!({"name": "manifest-decode", "op": "decode", "kind": "manifest",
               "canonical_hex": hex::encode(&basic_bytes)}),
        &["value", "id"],
    ));
    // Hand-built: the same manifest with fields appended to the session record and the body.
    let seg_ref = b()
        .raw(&hex::decode(&seg_id).unwrap())
        .varint(0)
        .varint(2)
        .varint(310)
        .str("appended segment-ref field");
    let usage = b().varint(12).varint(3).varint(0).varint(0).varint(0);
    let usage_event = b()
        .u8(1)
        .varint(1)
        .str("claude")
        .str("claude-sonnet-4-5")
        .record(usage)
        .u8(1)
        .varint(105)
        .u8(1)
        .signed(1764078195000)
        .str("msg_01");
    let body = |appended: bool| {
        let mut body = b()
            .str(ORIGIN)
            .record(session_record(
                UUID,
                appended.then_some("appended session field"),
            ))
            .varint(2)
            .varint(1);
        body = if appended {
            body.record(seg_ref.clone())
        } else {
            body.record(
                b().raw(&hex::decode(&seg_id).unwrap())
                    .varint(0)
                    .varint(2)
                    .varint(310),
            )
        };
        body = body.varint(1).record(usage_event.clone());
        if appended {
            body = body.str("appended body field").varint(99);
        }
        body
    };
    let plain = envelope(2, 1, body(false), None);
    assert_eq!(
        plain.0, basic_bytes,
        "hand-built manifest differs from the core's"
    );
    let decoded_plain =
        run(&json!({"op": "decode", "kind": "manifest", "canonical_hex": plain.hex()}));
    let mut appended = json!({"name": "manifest-appended-fields-skipped", "op": "decode",
                              "kind": "manifest", "canonical_hex": envelope(2, 1, body(true), None).hex()});
    appended["expect"] = json!({"value": decoded_plain["output"]["value"]});
    out.push(appended);
    out.push(rejects(
        json!({"name": "manifest-v2-deferred", "op": "decode", "kind": "manifest",
               "canonical_hex": envelope(2, 2, b().str("a v2 body this reader cannot parse"), None).hex()}),
        "FutureVersion",
    ));
    out.push(rejects(
        json!({"name": "manifest-truncated", "op": "decode", "kind": "manifest",
               "canonical_hex": hex::encode(&basic_bytes[..basic_bytes.len() - 5])}),
        "Truncated",
    ));
    let mut trailing = basic_bytes.clone();
    trailing.push(0);
    out.push(rejects(
        json!({"name": "manifest-trailing-bytes", "op": "decode", "kind": "manifest",
               "canonical_hex": hex::encode(&trailing)}),
        "Malformed",
    ));
    let lying = envelope(
        2,
        1,
        b().str(ORIGIN)
            .record(session_record(UUID, None))
            .varint(0)
            .varint(1 << 40),
        None,
    );
    out.push(rejects(
        json!({"name": "manifest-segment-count-lie", "op": "decode", "kind": "manifest",
               "canonical_hex": lying.hex()}),
        "CountLimit",
    ));
    out.push(rejects(
        json!({"name": "manifest-wrong-kind-byte", "op": "decode", "kind": "manifest",
               "canonical_hex": envelope(3, 1, body(false), None).hex()}),
        "KindMismatch",
    ));
    out
}

fn buckets_and_roots() -> Vec<Value> {
    let mut out = Vec::new();
    let m = |s: &str| id_of(s.as_bytes());
    out.push(golden(
        json!({"name": "bucket-basic", "op": "encode", "kind": "bucket", "value": {
            "origin": ORIGIN, "bits": 0, "index": 0, "entries": [
                {"session": "a-session", "manifest": m("a")},
                {"session": "b-session", "manifest": m("b")}]}}),
        &["canonical_hex", "id"],
    ));
    out.push(rejects(
        json!({"name": "bucket-unsorted", "op": "encode", "kind": "bucket", "value": {
            "origin": ORIGIN, "bits": 0, "index": 0, "entries": [
                {"session": "b-session", "manifest": m("b")},
                {"session": "a-session", "manifest": m("a")}]}}),
        "Malformed",
    ));
    // With 1 bit, "a-session" and "b-session" land in fixed buckets; a bucket naming a session
    // of the other bucket is rejected. Built by hand so the encoder's own check cannot hide it.
    let entry = |s: &str| b().str(s).raw(&hex::decode(m(s)).unwrap());
    let wrong = envelope(
        3,
        1,
        b().str(ORIGIN)
            .u8(0)
            .varint(1)
            .varint(1)
            .record(entry("a-session")),
        None,
    );
    out.push(rejects(
        json!({"name": "bucket-index-out-of-range", "op": "decode", "kind": "bucket",
               "canonical_hex": wrong.hex()}),
        "Malformed",
    ));
    // An entry may append its listing (§8): the manifest's session record and message count.
    let listed = json!({"name": "bucket-listed", "op": "encode", "kind": "bucket", "value": {
        "origin": ORIGIN, "bits": 0, "index": 0, "entries": [
            {"session": "a-session", "manifest": m("a"),
             "listing": {"session": session("a-session"), "message_count": 2}},
            {"session": "b-session", "manifest": m("b")}]}});
    let listed_bytes = canonical_of(&listed);
    out.push(golden(listed, &["canonical_hex", "id"]));
    let named = |s: &str, manifest: &str| b().str(s).raw(&hex::decode(m(manifest)).unwrap());
    let listed_body = |appended: bool| {
        let mut a = named("a-session", "a")
            .record(session_record("a-session", None))
            .varint(2);
        if appended {
            a = a.str("a field of a later writer");
        }
        b().str(ORIGIN)
            .u8(0)
            .varint(0)
            .varint(2)
            .record(a)
            .record(named("b-session", "b"))
    };
    assert_eq!(
        envelope(3, 1, listed_body(false), None).0,
        listed_bytes,
        "hand-built listed bucket differs from the core's"
    );
    let listed_decode = json!({"name": "bucket-listed-decode", "op": "decode", "kind": "bucket",
                               "canonical_hex": hex::encode(&listed_bytes)});
    let decoded_listed = run(&listed_decode);
    out.push(golden(listed_decode, &["value"]));
    let mut appended = json!({"name": "bucket-listing-appended-fields-skipped", "op": "decode",
                              "kind": "bucket",
                              "canonical_hex": envelope(3, 1, listed_body(true), None).hex()});
    appended["expect"] = json!({"value": decoded_listed["output"]["value"]});
    out.push(appended);
    out.push(rejects(
        json!({"name": "bucket-listing-names-another-session", "op": "encode", "kind": "bucket",
               "value": {"origin": ORIGIN, "bits": 0, "index": 0, "entries": [
                   {"session": "a-session", "manifest": m("a"),
                    "listing": {"session": session("b-session"), "message_count": 2}}]}}),
        "Malformed",
    ));
    let root = json!({"origin": ORIGIN, "seq": 7, "created_ms": 1764078200000i64, "bits": 0,
                      "session_count": 2, "buckets": [{"index": 0, "id": m("bucket"), "sessions": 2}]});
    let root_vector = json!({"name": "root-signed", "op": "encode", "kind": "root", "value": root,
                             "signing_seed": hex::encode(SEED)});
    let root_bytes = canonical_of(&root_vector);
    out.push(golden(root_vector, &["canonical_hex", "id"]));
    out.push(golden(
        json!({"name": "root-decode", "op": "decode", "kind": "root", "canonical_hex": hex::encode(&root_bytes)}),
        &["value"],
    ));
    let mut flipped = root_bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    out.push(rejects(
        json!({"name": "root-bad-signature", "op": "decode", "kind": "root", "canonical_hex": hex::encode(&flipped)}),
        "BadSignature",
    ));
    // Issue 17 item 5: the signature record is exactly a key and a signature; a byte appended
    // inside it (length 96 -> 97) leaves the signature valid but must not give a second
    // encoding (and id) of the same signed root.
    let mut padded = root_bytes.clone();
    let len_at = root_bytes.len() - 97;
    assert_eq!(padded[len_at], 96);
    padded[len_at] = 97;
    padded.push(0);
    out.push(rejects(
        json!({"name": "root-signature-record-trailing-bytes", "op": "decode", "kind": "root",
               "canonical_hex": hex::encode(&padded)}),
        "Malformed",
    ));
    // Issue 17 item 8: a root names its origin's newest event batch (or says there is none);
    // `root-signed` above, without the field, is a root of an older writer ("unstated").
    let mut marked = root.clone();
    marked["events"] =
        json!({"newest": {"hlc": "20261125T134318.000Z-0000", "id": m("events"), "count": 3}});
    let marked_vector = json!({"name": "root-events-mark", "op": "encode", "kind": "root",
                               "value": marked, "signing_seed": hex::encode(SEED)});
    out.push(golden(marked_vector, &["canonical_hex", "id"]));
    let mut none = root.clone();
    none["events"] = json!("no_batch");
    let none_vector = json!({"name": "root-events-no-batch", "op": "encode", "kind": "root",
                             "value": none, "signing_seed": hex::encode(SEED)});
    let none_bytes = canonical_of(&none_vector);
    out.push(golden(none_vector, &["canonical_hex", "id"]));
    out.push(golden(
        json!({"name": "root-events-no-batch-decode", "op": "decode", "kind": "root",
               "canonical_hex": hex::encode(&none_bytes)}),
        &["value"],
    ));
    let mut bad_tag = none_bytes.clone();
    let tag_at = none_bytes.len() - 98;
    assert_eq!(bad_tag[tag_at], 0);
    bad_tag[tag_at] = 2;
    out.push(rejects(
        json!({"name": "root-events-mark-bad-tag", "op": "decode", "kind": "root",
               "canonical_hex": hex::encode(&bad_tag)}),
        "Malformed",
    ));
    let mut unsigned = root_bytes.clone();
    unsigned.truncate(root_bytes.len() - 97);
    out.push(rejects(
        json!({"name": "root-unsigned", "op": "decode", "kind": "root", "canonical_hex": hex::encode(&unsigned)}),
        "Truncated",
    ));
    out.push(rejects(
        json!({"name": "root-v2-deferred", "op": "decode", "kind": "root",
               "canonical_hex": envelope(4, 2, b().str(ORIGIN).varint(8), Some(SEED)).hex()}),
        "FutureVersion",
    ));
    out.push(rejects(
        json!({"name": "root-wrong-bucket-bits", "op": "encode", "kind": "root", "signing_seed": hex::encode(SEED),
               "value": {"origin": ORIGIN, "seq": 1, "created_ms": 0, "bits": 1, "session_count": 2,
                         "buckets": [{"index": 0, "id": m("x"), "sessions": 2}]}}),
        "Malformed",
    ));
    // Checkpoint commits: a change rewrites one bucket and the root.
    let sessions: BTreeMap<String, String> = (0..300)
        .map(|i| (format!("s-{i:03}"), m(&format!("manifest {i}"))))
        .collect();
    out.push(golden(
        json!({"name": "checkpoint-commits", "op": "checkpoint", "origin": ORIGIN,
               "signing_seed": hex::encode(SEED),
               "steps": [
                   {"seq": 1, "created_ms": 1764078200000i64, "upsert": {"s-000": m("manifest 0"), "s-001": m("manifest 1")}},
                   {"seq": 2, "created_ms": 1764078201000i64, "upsert": {"s-001": m("manifest 1 v2")}},
                   {"seq": 3, "created_ms": 1764078202000i64, "upsert": sessions},
                   {"seq": 4, "created_ms": 1764078203000i64, "upsert": {"s-150": m("manifest 150 v2")}},
                   {"seq": 5, "created_ms": 1764078204000i64}
               ]}),
        &["commits"],
    ));
    out
}

pub(crate) fn event_record(hlc: &str, gid: &str, tag: u64, payload: Bytes) -> Bytes {
    b().str(hlc).str(gid).u8(0).varint(tag).record(payload)
}

fn events() -> Vec<Value> {
    let mut out = Vec::new();
    let gid = format!("{OTHER}~{UUID}");
    let batch = json!({"origin": ORIGIN, "events": [
        {"hlc": "20261125T134314.123Z-0000", "session": gid, "prev": null, "op": "rename", "name": "Fix the README"},
        {"hlc": "20261125T134314.123Z-0001", "session": gid, "prev": null, "op": "star"},
        {"hlc": "20261125T134315.000Z-0000", "session": gid,
         "prev": {"hlc": "20261125T134314.123Z-0001", "origin": ORIGIN, "event": id_of(b"prev")},
         "op": "pin", "anchor": {"source_uuid": "a0000000-0000-4000-8000-000000000005", "ordinal": 5}, "note": "the fix"},
        {"hlc": "20261125T134316.000Z-0000", "session": gid, "prev": null, "op": "tag_add", "tag": "release"},
        {"hlc": "20261125T134317.000Z-0000", "session": gid, "prev": null, "op": "set_note", "note": "ship it"},
        {"hlc": "20261125T134318.000Z-0000", "session": format!("{ORIGIN}~gone-1"), "prev": null, "op": "purge"}
    ]});
    let v = json!({"name": "events-basic", "op": "encode", "kind": "events", "value": batch,
                   "signing_seed": hex::encode(SEED)});
    let bytes = canonical_of(&v);
    out.push(golden(v, &["canonical_hex", "id"]));
    out.push(golden(
        json!({"name": "events-decode", "op": "decode", "kind": "events", "canonical_hex": hex::encode(&bytes)}),
        &["value"],
    ));
    // Hand-built: an op this reader does not know (tag 42) is kept, not rejected.
    let unknown = envelope(
        5,
        1,
        b().str(ORIGIN)
            .varint(2)
            .record(event_record(
                "20261125T134314.123Z-0000",
                &gid,
                42,
                b().str("future op payload"),
            ))
            .record(event_record("20261125T134314.124Z-0000", &gid, 2, b())),
        Some(SEED),
    );
    out.push(golden(
        json!({"name": "events-unknown-op-kept", "op": "decode", "kind": "events", "canonical_hex": unknown.hex()}),
        &["value"],
    ));
    let unparseable = envelope(
        5,
        1,
        b().str(ORIGIN)
            .varint(1)
            .record(event_record("9999-99-99T99:99:99Z", &gid, 2, b())),
        Some(SEED),
    );
    out.push(rejects(
        json!({"name": "events-unparseable-hlc", "op": "decode", "kind": "events", "canonical_hex": unparseable.hex()}),
        "InvalidName",
    ));
    let backwards = envelope(
        5,
        1,
        b().str(ORIGIN)
            .varint(2)
            .record(event_record("20261125T134315.000Z-0000", &gid, 2, b()))
            .record(event_record("20261125T134314.000Z-0000", &gid, 3, b())),
        Some(SEED),
    );
    out.push(rejects(
        json!({"name": "events-hlc-not-increasing", "op": "decode", "kind": "events", "canonical_hex": backwards.hex()}),
        "Malformed",
    ));
    // Signed with one key, then the public key swapped for another: the signature fails.
    let mut forged = bytes.clone();
    let key_at = forged.len() - 96;
    let other = ed25519_dalek::SigningKey::from_bytes(&OTHER_SEED)
        .verifying_key()
        .to_bytes();
    forged[key_at..key_at + 32].copy_from_slice(&other);
    out.push(rejects(
        json!({"name": "events-key-swapped", "op": "decode", "kind": "events", "canonical_hex": hex::encode(&forged)}),
        "BadSignature",
    ));
    out.push(rejects(
        json!({"name": "events-v2-deferred", "op": "decode", "kind": "events",
               "canonical_hex": envelope(5, 2, b().str(ORIGIN), Some(SEED)).hex()}),
        "FutureVersion",
    ));
    // Issue 17: an op with tag 0 is malformed (not an unknown op to keep), and an edit over a
    // reader's limit is refused on read as it is at the edit.
    let tag_zero = envelope(
        5,
        1,
        b().str(ORIGIN)
            .varint(1)
            .record(event_record("20261125T134314.123Z-0000", &gid, 0, b())),
        Some(SEED),
    );
    out.push(rejects(
        json!({"name": "events-op-tag-0", "op": "decode", "kind": "events", "canonical_hex": tag_zero.hex()}),
        "Malformed",
    ));
    let long_name = envelope(
        5,
        1,
        b().str(ORIGIN).varint(1).record(event_record(
            "20261125T134314.123Z-0000",
            &gid,
            1,
            b().str(&"n".repeat(1025)),
        )),
        Some(SEED),
    );
    out.push(rejects(
        json!({"name": "events-rename-over-the-limit", "op": "decode", "kind": "events", "canonical_hex": long_name.hex()}),
        "StringLimit",
    ));
    out.push(rejects(
        json!({"name": "events-empty-batch", "op": "encode", "kind": "events", "signing_seed": hex::encode(SEED),
               "value": {"origin": ORIGIN, "events": []}}),
        "Malformed",
    ));
    out
}

fn stored() -> Vec<Value> {
    let mut out = Vec::new();
    let text = concat!(
        "{\"count\":2,\"first_ordinal\":0,\"kind\":\"segment\",\"v\":1}\n",
        "{\"content\":\"hi\",\"ordinal\":0,\"role\":\"user\",\"timestamp_ms\":1764078194000}\n",
        "{\"content\":\"hello\",\"model\":\"claude-sonnet-4-5\",\"ordinal\":1,\"role\":\"assistant\",\"usage\":{\"input\":12,\"output\":3}}\n",
    )
    .as_bytes();
    let id = id_of(text);
    let seg_key = format!("{ORIGIN}/segments/{id}.ndjson.zst");
    out.push(json!({"name": "seal-segment-uncompressed", "op": "seal", "kind": "segment",
                    "canonical_hex": hex::encode(text), "expect": {"stored_hex": frame(1, text).hex()}}));
    out.push(golden(
        json!({"name": "open-segment-uncompressed", "op": "open", "key": seg_key, "stored_hex": frame(1, text).hex()}),
        &["value"],
    ));
    // Compressed by the C zstd library at level 3: any standard encoder is fine.
    let zstd = zstd::bulk::compress(text, 3).unwrap();
    let compressed = frame_with(1, 1, 1, 0, text.len() as u64, text, &zstd);
    out.push(golden(
        json!({"name": "open-segment-zstd", "op": "open", "key": seg_key, "stored_hex": compressed.hex()}),
        &["value"],
    ));
    let other_id = id_of(b"other");
    out.push(rejects(
        json!({"name": "open-wrong-id-in-name", "op": "open",
               "key": format!("{ORIGIN}/segments/{other_id}.ndjson.zst"), "stored_hex": frame(1, text).hex()}),
        "IdMismatch",
    ));
    let mut tampered = frame(1, text).0;
    let last = tampered.len() - 3;
    tampered[last] ^= 0x20;
    out.push(rejects(
        json!({"name": "open-tampered-payload", "op": "open", "key": seg_key, "stored_hex": hex::encode(&tampered)}),
        "IdMismatch",
    ));
    out.push(rejects(
        json!({"name": "open-truncated-zstd", "op": "open", "key": seg_key,
               "stored_hex": hex::encode(&compressed.0[..compressed.0.len() - 4])}),
        "Decompress",
    ));
    out.push(rejects(
        json!({"name": "open-truncated-header", "op": "open", "key": seg_key,
               "stored_hex": hex::encode(&frame(1, text).0[..20])}),
        "Truncated",
    ));
    out.push(rejects(
        json!({"name": "open-declared-length-over-limit", "op": "open", "key": seg_key,
               "stored_hex": frame_with(1, 1, 1, 0, 1 << 40, text, &zstd).hex()}),
        "SizeLimit",
    ));
    out.push(rejects(
        json!({"name": "open-frame-v2-deferred", "op": "open", "key": seg_key,
               "stored_hex": frame_with(2, 1, 1, 0, text.len() as u64, text, b"future payload").hex()}),
        "FutureVersion",
    ));
    out.push(rejects(
        json!({"name": "open-encrypted-deferred", "op": "open", "key": seg_key,
               "stored_hex": frame_with(1, 1, 1, 1, text.len() as u64, text, b"ciphertext").hex()}),
        "UnsupportedStage",
    ));
    // Issue 17 item 5: a v1 header body is exactly 48 bytes, so no header byte escapes a check.
    let long_header = b()
        .raw(&[0x5a, 0x2a, 0x4d, 0x18])
        .raw(&49u32.to_le_bytes())
        .raw(b"AGSY")
        .u8(1)
        .u8(1)
        .u8(0)
        .u8(0)
        .raw(&(text.len() as u64).to_le_bytes())
        .raw(blake3::hash(text).as_bytes())
        .u8(0xaa)
        .raw(text);
    out.push(rejects(
        json!({"name": "open-header-body-longer-than-v1", "op": "open", "key": seg_key,
               "stored_hex": long_header.hex()}),
        "Malformed",
    ));
    out.push(rejects(
        json!({"name": "open-bad-magic", "op": "open", "key": seg_key,
               "stored_hex": hex::encode([b"\x28\xb5\x2f\xfd".as_slice(), text].concat())}),
        "Malformed",
    ));
    // A manifest stored under a segment key.
    let manifest = canonical_of(&json!({"op": "encode", "kind": "manifest",
        "value": manifest_value(UUID, json!([{"id": id, "first_ordinal": 0, "count": 2, "bytes": text.len()}]), 2)}));
    let manifest_id = id_of(&manifest);
    out.push(rejects(
        json!({"name": "open-kind-mismatch", "op": "open",
               "key": format!("{ORIGIN}/segments/{manifest_id}.ndjson.zst"), "stored_hex": frame(2, &manifest).hex()}),
        "KindMismatch",
    ));
    out.push(golden(
        json!({"name": "open-manifest", "op": "open",
               "key": format!("{ORIGIN}/manifests/{manifest_id}.manifest"), "stored_hex": frame(2, &manifest).hex()}),
        &["value"],
    ));
    out.push(rejects(
        json!({"name": "open-manifest-under-other-origin", "op": "open",
               "key": format!("{OTHER}/manifests/{manifest_id}.manifest"), "stored_hex": frame(2, &manifest).hex()}),
        "OriginMismatch",
    ));
    let root = canonical_of(
        &json!({"op": "encode", "kind": "root", "signing_seed": hex::encode(SEED),
        "value": {"origin": ORIGIN, "seq": 7, "created_ms": 1764078200000i64, "bits": 0, "session_count": 1,
                  "buckets": [{"index": 0, "id": id_of(b"bucket"), "sessions": 1}]}}),
    );
    let root_id = id_of(&root);
    out.push(golden(
        json!({"name": "open-root", "op": "open",
               "key": format!("roots/{ORIGIN}/00000000000000000007-{root_id}.root"), "stored_hex": frame(4, &root).hex()}),
        &["value"],
    ));
    out.push(rejects(
        json!({"name": "open-root-wrong-sequence", "op": "open",
               "key": format!("roots/{ORIGIN}/00000000000000000008-{root_id}.root"), "stored_hex": frame(4, &root).hex()}),
        "Malformed",
    ));
    out
}

fn generate() -> BTreeMap<&'static str, Value> {
    let file = |description: &str, vectors: Vec<Value>| json!({"description": description, "vectors": vectors});
    BTreeMap::from([
        (
            "format/names.json",
            file(
                "Origin ids, native ids, gids, content ids, HLC text and store keys.",
                names(),
            ),
        ),
        (
            "format/segments.json",
            file(
                "Segment canonical NDJSON, decoding rules and the segmenting rule.",
                segments(),
            ),
        ),
        (
            "format/manifests.json",
            file(
                "Session manifests, including hand-built forward-compatibility cases.",
                manifests(),
            ),
        ),
        (
            "format/checkpoints.json",
            file(
                "Checkpoint buckets, signed roots and commit sequences.",
                buckets_and_roots(),
            ),
        ),
        (
            "format/events.json",
            file(
                "Signed event batches: the curation ledger's envelope.",
                events(),
            ),
        ),
        (
            "format/stored.json",
            file(
                "Stored objects: frame header, compression, ids and names.",
                stored(),
            ),
        ),
        (
            "scenarios/sync.json",
            file(
                "Scripted multi-origin sync runs through in-memory stores.",
                scenarios::vectors(),
            ),
        ),
        (
            "ledger/replay.json",
            file(
                "Curation ledger: event sets → registers, conflicts, projections, deferrals.",
                ledger::vectors(),
            ),
        ),
    ])
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

#[test]
fn vector_files_match_the_generator() {
    let dir = vectors_dir();
    let update = std::env::var_os("UPDATE_VECTORS").is_some();
    let mut stale = Vec::new();
    for (name, content) in generate() {
        let path = dir.join(name);
        let want = pretty(&content);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, want).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the generator: if the change is intended, run \
         UPDATE_VECTORS=1 cargo test -p agentsync-core --test vectors and review the diff"
    );
}

#[test]
fn every_vector_gives_its_expected_result() {
    let mut total = 0;
    let mut failures = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    let mut files: Vec<_> = ["format", "ledger", "scenarios"]
        .iter()
        .flat_map(|d| std::fs::read_dir(vectors_dir().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for vector in file["vectors"].as_array().unwrap() {
            total += 1;
            let name = vector["name"].as_str().unwrap().to_owned();
            assert!(names.insert(name.clone()), "duplicate vector name {name}");
            let result = run_vector(vector);
            println!("{result}");
            if let Err(why) = check(vector, &result) {
                failures.push(format!("{}: {name}: {why}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 70, "only {total} vectors");
}
