//! Property tests of the format: round trips for every kind, the segmenting rule, checkpoint
//! determinism, and decoders that never panic on hostile bytes.

use std::collections::BTreeMap;

use agentsync_core::checkpoint::{EventsMark, Listing, bucket_bits_for, bucket_of};
use agentsync_core::frame::{self, Compressor};
use agentsync_core::segment::decode_segment;
use agentsync_core::{
    Anchor, Artifact, ArtifactId, ArtifactKind, Bucket, BucketEntry, Checkpoint, Event, EventBatch,
    Hlc, Manifest, Message, NativeId, Op, OrderKey, OriginId, OriginKey, Root, RuzstdCompressor,
    Session, SessionGid, TokenUsage, ToolCall, ToolResultEvent, UsageEvent, encode_segment,
    segment_messages,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z ]{0,40}".prop_map(move |s| s.chars().take(max).collect()),
        1 => any::<String>().prop_map(move |s| s.chars().take(max / 4).collect()),
        1 => Just(String::new()),
    ]
}

fn usage() -> impl Strategy<Value = TokenUsage> {
    (any::<u64>(), any::<u64>(), 0u64..1000, 0u64..1000, 0u64..10).prop_map(
        |(input, output, cache_creation, cache_read, reasoning)| TokenUsage {
            input,
            output,
            cache_creation,
            cache_read,
            reasoning,
        },
    )
}

fn tool_call() -> impl Strategy<Value = ToolCall> {
    (
        text(20),
        text(30),
        text(200),
        any::<bool>(),
        text(300),
        vec(
            (
                text(50),
                text(10),
                text(10),
                text(20),
                option::of(any::<i64>()),
            )
                .prop_map(
                    |(content, source, status, subagent_session, timestamp_ms)| ToolResultEvent {
                        content,
                        source,
                        status,
                        subagent_session,
                        timestamp_ms,
                    },
                ),
            0..3,
        ),
    )
        .prop_map(
            |(name, id, input, is_error, result, result_events)| ToolCall {
                category: "shell".into(),
                file_path: String::new(),
                id,
                input,
                is_error,
                name,
                result,
                result_events,
                subagent_session: String::new(),
            },
        )
}

/// One message body; ordinals are assigned by the caller.
fn message() -> impl Strategy<Value = Message> {
    (
        (any::<bool>(), text(2000), text(20), text(36)),
        // A role is never empty (a required key).
        (
            text(8).prop_map(|r| if r.is_empty() { "user".into() } else { r }),
            any::<bool>(),
            any::<bool>(),
            text(300),
        ),
        (
            option::of(any::<i64>()),
            vec(tool_call(), 0..3),
            usage(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (compact_boundary, content, model, source_uuid),
                (role, sidechain, system, thinking),
                (timestamp_ms, tool_calls, usage, abandoned),
            )| Message {
                abandoned,
                api_message_id: String::new(),
                compact_boundary,
                content,
                model,
                ordinal: 0,
                parent_uuid: String::new(),
                request_id: String::new(),
                role,
                sidechain,
                source_uuid,
                system,
                thinking,
                timestamp_ms,
                tool_calls,
                usage,
            },
        )
}

fn numbered(mut messages: Vec<Message>, first: u64) -> Vec<Message> {
    for (i, m) in messages.iter_mut().enumerate() {
        m.ordinal = first + i as u64;
    }
    messages
}

fn origin() -> impl Strategy<Value = OriginId> {
    "[a-z0-9]{1,10}(-[a-z0-9]{1,6})?".prop_filter_map("reserved", |s| s.parse().ok())
}

fn native() -> impl Strategy<Value = NativeId> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,40}".prop_map(|s| s.parse().unwrap())
}

fn id() -> impl Strategy<Value = ArtifactId> {
    any::<[u8; 32]>().prop_map(ArtifactId::from_bytes)
}

fn hlc() -> impl Strategy<Value = Hlc> {
    (0u64..=agentsync_core::hlc::MAX_MILLIS, any::<u16>())
        .prop_map(|(m, c)| Hlc::new(m, c).unwrap())
}

fn session() -> impl Strategy<Value = Session> {
    (
        native(),
        (text(10), text(10), text(100), text(100), text(30)),
        (option::of(any::<i64>()), option::of(any::<i64>())),
        (text(100), text(500), text(40), text(10), any::<u64>()),
    )
        .prop_map(
            |(
                native_id,
                (agent, parser, project, cwd, git_branch),
                (started_ms, ended_ms),
                (title, first_message, parent_session, relationship, user_message_count),
            )| Session {
                native_id,
                agent,
                parser,
                project,
                cwd,
                git_branch,
                started_ms,
                ended_ms,
                title,
                first_message,
                parent_session,
                relationship,
                user_message_count,
            },
        )
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (
        origin(),
        session(),
        vec((id(), 1u32..200, 0u64..1_000_000), 0..20),
        vec(
            (
                option::of(any::<u64>()),
                text(10),
                text(20),
                usage(),
                option::of(any::<u64>()),
                option::of(any::<i64>()),
                text(30),
            ),
            0..5,
        ),
    )
        .prop_map(|(origin, session, segs, usage_events)| {
            let mut next = 0u64;
            let segments = segs
                .into_iter()
                .map(|(id, count, bytes)| {
                    let first_ordinal = next;
                    next += u64::from(count);
                    agentsync_core::SegmentRef {
                        id,
                        first_ordinal,
                        count,
                        bytes,
                    }
                })
                .collect();
            Manifest {
                origin,
                session,
                message_count: next,
                segments,
                usage_events: usage_events
                    .into_iter()
                    .map(
                        |(message_ordinal, source, model, usage, cost, occurred_ms, dedup_key)| {
                            UsageEvent {
                                message_ordinal,
                                source,
                                model,
                                usage,
                                cost_micro_usd: cost,
                                occurred_ms,
                                dedup_key,
                            }
                        },
                    )
                    .collect(),
            }
        })
}

fn op() -> impl Strategy<Value = Op> {
    let anchor = || {
        (text(36), option::of(any::<u64>()))
            .prop_filter("an anchor names a uuid or an ordinal", |(u, o)| {
                !u.is_empty() || o.is_some()
            })
            .prop_map(|(source_uuid, ordinal)| Anchor {
                source_uuid,
                ordinal,
            })
    };
    prop_oneof![
        text(100).prop_map(|name| Op::Rename { name }),
        Just(Op::Star),
        Just(Op::Unstar),
        Just(Op::Trash),
        Just(Op::Restore),
        Just(Op::Purge),
        (anchor(), text(200)).prop_map(|(anchor, note)| Op::Pin { anchor, note }),
        anchor().prop_map(|anchor| Op::Unpin { anchor }),
        text(30).prop_map(|tag| Op::TagAdd { tag }),
        text(30).prop_map(|tag| Op::TagRemove { tag }),
        text(300).prop_map(|note| Op::SetNote { note }),
    ]
}

fn batch() -> impl Strategy<Value = EventBatch> {
    (
        origin(),
        vec(
            (
                hlc(),
                origin(),
                native(),
                option::of((hlc(), origin(), id())),
                op(),
            ),
            1..20,
        ),
    )
        .prop_map(|(origin, raw)| {
            let mut events: Vec<Event> = raw
                .into_iter()
                .map(|(hlc, o, n, prev, op)| Event {
                    hlc,
                    session: SessionGid::new(o, n),
                    prev: prev.map(|(hlc, origin, event)| OrderKey { hlc, origin, event }),
                    op,
                })
                .collect();
            events.sort_by_key(|e| e.hlc);
            events.dedup_by_key(|e| e.hlc);
            EventBatch { origin, events }
        })
}

fn key() -> OriginKey {
    OriginKey::from_secret([3; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn segments_round_trip(msgs in vec(message(), 1..20), first in 0u64..1_000_000) {
        let msgs = numbered(msgs, first);
        let seg = encode_segment(&msgs).unwrap();
        prop_assert_eq!(seg.reference.id, ArtifactId::of(&seg.canonical));
        let decoded = decode_segment(&seg.canonical).unwrap();
        prop_assert_eq!(decoded.first_ordinal, first);
        prop_assert_eq!(decoded.messages, msgs);
    }

    #[test]
    fn manifests_round_trip(m in manifest()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(Manifest::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn buckets_round_trip(
        o in origin(),
        entries in btree_map(native(), (id(), option::of((session(), any::<u32>()))), 0..50),
        bits in 0u8..3,
    ) {
        // Keep the entries that fall in bucket 0 of `bits` bits; some carry a listing.
        let entries: Vec<BucketEntry> = entries
            .into_iter()
            .filter(|(s, _)| bucket_of(s, bits) == 0)
            .map(|(session, (manifest, listed))| BucketEntry {
                listing: listed.map(|(mut record, count)| {
                    record.native_id = session.clone();
                    Listing { session: record, message_count: u64::from(count) }
                }),
                session,
                manifest,
            })
            .collect();
        let bucket = Bucket { origin: o, bits, index: 0, entries };
        prop_assert_eq!(Bucket::decode(&bucket.encode().unwrap()).unwrap(), bucket);
    }

    #[test]
    fn roots_round_trip_and_carry_the_signer(
        o in origin(), seq: u64, created_ms: i64, counts in vec(1u32..100, 0..4), ids in vec(id(), 4)
    ) {
        let session_count: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        let bits = bucket_bits_for(session_count);
        prop_assume!(counts.len() <= 1 << bits);
        let buckets = counts
            .iter()
            .enumerate()
            .map(|(i, &sessions)| agentsync_core::BucketRef { index: i as u32, id: ids[i], sessions })
            .collect();
        let root = Root { origin: o, seq, created_ms, bits, session_count, buckets, events: EventsMark::NoBatch };
        let (decoded, signer) = Root::decode(&root.encode(&key()).unwrap()).unwrap();
        prop_assert_eq!(decoded, root);
        prop_assert_eq!(signer, key().public());
    }

    #[test]
    fn event_batches_round_trip(b in batch()) {
        let bytes = b.encode(&key()).unwrap();
        let decoded = EventBatch::decode(&bytes).unwrap();
        prop_assert_eq!(decoded.signer, key().public());
        let ids: Vec<ArtifactId> = b.events.iter().map(Event::id).collect();
        prop_assert_eq!(decoded.event_ids, ids);
        prop_assert_eq!(decoded.batch, b);
    }

    #[test]
    fn sealed_artifacts_open_with_either_encoder(bytes in vec(any::<u8>(), 0..5000), zstd: bool) {
        let compressor: Option<&dyn Compressor> = if zstd { Some(&RuzstdCompressor) } else { None };
        let stored = frame::seal(ArtifactKind::Segment, &bytes, compressor).unwrap();
        let opened = frame::open(&stored, Some(ArtifactKind::Segment), Some(ArtifactId::of(&bytes))).unwrap();
        prop_assert_eq!(opened.canonical, bytes);
    }

    #[test]
    fn segmenting_is_deterministic_and_lossless(msgs in vec(message(), 0..300)) {
        let msgs = numbered(msgs, 0);
        let a = segment_messages(&msgs).unwrap();
        let b = segment_messages(&msgs).unwrap();
        prop_assert_eq!(&a, &b);
        let mut back = Vec::new();
        for seg in &a {
            prop_assert!(seg.reference.count as usize <= agentsync_core::limits::SEGMENT_TARGET_MESSAGES);
            back.extend(decode_segment(&seg.canonical).unwrap().messages);
        }
        prop_assert_eq!(back, msgs);
    }

    #[test]
    fn appending_replaces_at_most_the_open_tail_segment(
        msgs in vec(message(), 1..400), extra in vec(message(), 1..64)
    ) {
        let n = msgs.len() as u64;
        let before = numbered(msgs.clone(), 0);
        let mut after = before.clone();
        after.extend(numbered(extra, n));
        let old: Vec<ArtifactId> = segment_messages(&before).unwrap().iter().map(|s| s.reference.id).collect();
        let new: Vec<ArtifactId> = segment_messages(&after).unwrap().iter().map(|s| s.reference.id).collect();
        // Every closed segment stays; only the last (open) one may be replaced.
        prop_assert_eq!(&new[..old.len() - 1], &old[..old.len() - 1]);
        let changed = new.iter().filter(|id| !old.contains(id)).count()
            + old.iter().filter(|id| !new.contains(id)).count();
        prop_assert!(changed <= 3, "{changed} ids changed");
        let added = new.iter().filter(|id| !old.contains(id)).count();
        prop_assert!(added <= 2, "{added} new segments for {} appended messages", after.len() - before.len());
    }

    #[test]
    fn resegmenting_from_the_open_segment_gives_the_same_tail(
        msgs in vec(message(), 1..400), extra in vec(message(), 1..64)
    ) {
        // An exporter re-encodes only from the first ordinal of the old open segment.
        let before = numbered(msgs, 0);
        let old = segment_messages(&before).unwrap();
        let mut after = before.clone();
        let n = after.len() as u64;
        after.extend(numbered(extra, n));
        let full = segment_messages(&after).unwrap();
        let tail_start = old.last().unwrap().reference.first_ordinal as usize;
        let tail = segment_messages(&after[tail_start..]).unwrap();
        prop_assert_eq!(&full[old.len() - 1..], &tail[..]);
    }

    #[test]
    fn checkpoints_depend_only_on_the_final_session_map(
        o in origin(),
        ops in vec((native(), option::of(id())), 1..400),
    ) {
        // Machine A applies the operations one commit at a time; machine B builds the final
        // map in one go. Same map, same seq: byte-identical roots.
        let mut a = Checkpoint::new(o.clone());
        let mut last = None;
        let mut expected = BTreeMap::new();
        for (i, (native, manifest)) in ops.iter().enumerate() {
            match manifest {
                Some(m) => { a.insert(native.clone(), *m); expected.insert(native.clone(), *m); }
                None => { a.remove(native); expected.remove(native); }
            }
            if i % 37 == 0 {
                a.commit(i as u64, 0, EventsMark::NoBatch, &key()).unwrap();
            }
            last = Some(i);
        }
        let seq = last.unwrap() as u64 + 1000;
        let root_a = a.commit(seq, 5, EventsMark::NoBatch, &key()).unwrap().root;
        let mut b = Checkpoint::new(o);
        for (native, m) in &expected {
            b.insert(native.clone(), *m);
        }
        let committed_b = b.commit(seq, 5, EventsMark::NoBatch, &key()).unwrap();
        prop_assert_eq!(&root_a, &committed_b.root);
        prop_assert_eq!(a.sessions(), &expected);
        // Reading back: B's buckets hold exactly the map.
        let mut read = BTreeMap::new();
        for bucket in &committed_b.buckets {
            for e in Bucket::decode(&bucket.canonical).unwrap().entries {
                read.insert(e.session, e.manifest);
            }
        }
        prop_assert_eq!(read, expected);
    }

    #[test]
    fn one_change_rewrites_one_bucket(
        o in origin(), sessions in btree_map(native(), id(), 1..2000), pick: prop::sample::Index, new_id in id()
    ) {
        let mut cp = Checkpoint::new(o);
        for (s, m) in &sessions {
            cp.insert(s.clone(), *m);
        }
        let first = cp.commit(1, 0, EventsMark::NoBatch, &key()).unwrap();
        prop_assert!(!cp.has_changes());
        let (s, old) = sessions.iter().nth(pick.index(sessions.len())).unwrap();
        prop_assume!(*old != new_id);
        cp.insert(s.clone(), new_id);
        let second = cp.commit(2, 0, EventsMark::NoBatch, &key()).unwrap();
        prop_assert_eq!(second.buckets.len(), 1);
        let (root1, _) = Root::decode(&first.root.canonical).unwrap();
        let (root2, _) = Root::decode(&second.root.canonical).unwrap();
        prop_assert_eq!(root2.changed_buckets(Some(&root1)).len(), 1);
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in vec(any::<u8>(), 0..600)) {
        for kind in ArtifactKind::ALL {
            let _ = Artifact::decode(kind, &bytes);
        }
        let _ = frame::open(&bytes, None, None);
    }

    #[test]
    fn decoders_never_panic_on_mutated_artifacts(
        m in manifest(), b in batch(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for (kind, mut bytes) in [
            (ArtifactKind::Manifest, m.encode().unwrap()),
            (ArtifactKind::Events, b.encode(&key()).unwrap()),
        ] {
            let original = bytes.clone();
            for (at, x) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x | 1;
            }
            // A mutated signed artifact must never verify as the original content.
            if let Ok(a) = Artifact::decode(kind, &bytes) {
                prop_assert!(kind != ArtifactKind::Events || bytes == original || a != Artifact::decode(kind, &original).unwrap());
            }
            let truncated = &original[..cut.index(original.len())];
            prop_assert!(Artifact::decode(kind, truncated).is_err());
        }
    }
}
