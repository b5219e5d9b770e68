//! Archive tests against a real (in-memory) SQLite.

use agentsync_core::sync::import::ApplyUnit;
use agentsync_core::{ArtifactId, Message, NativeId, Op, OriginId, Session, SessionGid};

use crate::{Archive, SessionFilter};

fn origin(name: &str) -> OriginId {
    name.parse().expect("origin")
}

fn session(native: &str, title: &str) -> Session {
    Session {
        native_id: native.parse::<NativeId>().expect("native id"),
        agent: "claude-code".into(),
        parser: "claude".into(),
        project: "demo".into(),
        title: title.into(),
        first_message: format!("first message of {native}"),
        cwd: String::new(),
        git_branch: String::new(),
        started_ms: Some(1_700_000_000_000),
        ended_ms: None,
        parent_session: String::new(),
        relationship: String::new(),
        user_message_count: 0,
    }
}

/// An empty folder of this test process's own, for an archive on disk.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("agentsync-archive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn message(ordinal: u64, content: &str) -> Message {
    Message {
        ordinal,
        role: if ordinal.is_multiple_of(2) {
            "user"
        } else {
            "assistant"
        }
        .into(),
        content: content.into(),
        thinking: format!("thinking about {ordinal}"),
        ..Message::default()
    }
}

#[test]
fn own_sessions_append_and_read_back_in_order() {
    let archive = Archive::open_in_memory().expect("open");
    let me = origin("laptop-0a1b2c");
    let s = session("s1", "Fix the parser");
    archive
        .apply_own(
            &me,
            &s,
            &[message(0, "hello"), message(1, "hi there")],
            &[],
            false,
        )
        .expect("first pass");
    archive
        .apply_own(&me, &s, &[message(2, "more")], &[], false)
        .expect("append");
    let gid = SessionGid::new(me.clone(), s.native_id.clone());
    let all = archive.messages(&gid, 0).expect("messages");
    assert_eq!(all.iter().map(|m| m.ordinal).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(all[1].content, "hi there");
    assert_eq!(all[1].thinking, "thinking about 1");
    assert_eq!(archive.messages(&gid, 2).expect("tail").len(), 1);
    let revisions = archive.own_revisions().expect("revisions");
    assert_eq!(revisions, vec![(s.native_id.clone(), 2)]);
    let listed = archive.sessions(&SessionFilter::default()).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].message_count, 3);
    assert_eq!(listed[0].display_name, "Fix the parser");
    // Issue 19 item 3: a rewritten log never takes archived messages away. Other content is
    // reported as diverged (the host makes it a session of its own); a shorter prefix keeps
    // what is stored; a longer log that begins with it only adds.
    let applied = archive
        .apply_own(&me, &s, &[message(0, "only")], &[], true)
        .expect("reset");
    assert_eq!(applied, crate::OwnApplied::Diverged);
    assert_eq!(archive.messages(&gid, 0).expect("messages"), all);
    let applied = archive
        .apply_own(&me, &s, &all[..2], &[], true)
        .expect("shrunk");
    assert_eq!(applied, crate::OwnApplied::KeptStored);
    assert_eq!(archive.messages(&gid, 0).expect("messages"), all);
    let mut longer = all.clone();
    longer.push(message(3, "appended after a rewrite"));
    let applied = archive
        .apply_own(&me, &s, &longer, &[], true)
        .expect("grown");
    assert_eq!(applied, crate::OwnApplied::Applied);
    assert_eq!(archive.messages(&gid, 0).expect("messages"), longer);
    let mut amended = message(1, "hi there, amended");
    amended.thinking = "okapi".into();
    assert!(archive.amend_own_message(&gid, &amended).expect("amend"));
    assert_eq!(archive.search("okapi", 10).expect("search").len(), 1);
    assert_eq!(archive.integrity_check().expect("check"), "ok");
}

#[test]
fn the_search_index_follows_every_insert_replace_and_delete_and_a_stray_entry_is_caught() {
    let archive = Archive::open_in_memory().expect("open");
    let me = origin("laptop-0a1b2c");
    for n in 0..20u64 {
        let s = session(&format!("s{n}"), "t");
        let messages: Vec<Message> = (0..5)
            .map(|i| message(i, &format!("word{n} m{i}")))
            .collect();
        archive
            .apply_own(&me, &s, &messages, &[], false)
            .expect("apply");
    }
    let s3 = SessionGid::new(me.clone(), "s3".parse().expect("native"));
    assert!(archive.delete_session(&s3).expect("delete"));
    assert!(archive.search("word3", 10).expect("search").is_empty());
    assert_eq!(archive.search("word4", 10).expect("search").len(), 5);
    assert_eq!(archive.integrity_check().expect("check"), "ok");
    archive
        .conn
        .execute(
            "INSERT INTO messages_fts (rowid, content, thinking, tools) VALUES (99999, 'ghost', '', '')",
            [],
        )
        .expect("stray entry");
    let found = archive.integrity_check().expect("check");
    assert!(found.starts_with("search index: "), "{found}");
}

#[test]
fn import_units_replace_from_their_first_ordinal_and_search_finds_words() {
    let archive = Archive::open_in_memory().expect("open");
    let peer = origin("desktop-3d4e5f");
    let gid = SessionGid::new(peer.clone(), "s9".parse().expect("native"));
    let unit = |from: u64, messages: Vec<Message>, count: u64| ApplyUnit {
        gid: gid.clone(),
        session: session("s9", ""),
        from_ordinal: from,
        messages,
        message_count: count,
        usage_events: Vec::new(),
        manifest: ArtifactId::of(b"m"),
    };
    archive
        .apply_unit(
            &unit(
                0,
                vec![message(0, "zebra crossing"), message(1, "old tail")],
                2,
            ),
            false,
        )
        .expect("first");
    archive
        .apply_unit(
            &unit(1, vec![message(1, "new tail giraffe"), message(2, "x")], 3),
            false,
        )
        .expect("tail");
    let all = archive.messages(&gid, 0).expect("messages");
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].content, "new tail giraffe");
    let hits = archive.search("giraf", 10).expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].ordinal, 1);
    assert!(hits[0].snippet.contains("[giraffe]"), "{}", hits[0].snippet);
    assert!(archive.search("old tail", 10).expect("search").is_empty());
    // Syntax characters are words, not FTS5 operators.
    assert!(
        archive
            .search("\"AND -: (", 10)
            .expect("odd input")
            .is_empty()
    );
    let found = archive
        .sessions(&SessionFilter {
            search: Some("zebra".into()),
            ..SessionFilter::default()
        })
        .expect("filtered");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].display_name, "first message of s9");
    assert_eq!(archive.integrity_check().expect("check"), "ok");
}

#[test]
fn edits_project_onto_rows_and_purge_deletes() {
    let mut archive = Archive::open_in_memory().expect("open");
    let me = origin("laptop-0a1b2c");
    for n in ["a1", "a2"] {
        archive
            .apply_own(&me, &session(n, n), &[message(0, "x")], &[], false)
            .expect("session");
    }
    let a1: SessionGid = "laptop-0a1b2c~a1".parse().expect("gid");
    let a2: SessionGid = "laptop-0a1b2c~a2".parse().expect("gid");
    let t = 1_700_000_000_000;
    archive
        .edit(
            &me,
            t,
            &a1,
            Op::Rename {
                name: "Mine".into(),
            },
        )
        .expect("rename");
    archive.edit(&me, t, &a1, Op::Star).expect("star");
    archive
        .edit(&me, t, &a1, Op::TagAdd { tag: "work".into() })
        .expect("tag");
    archive.edit(&me, t, &a2, Op::Trash).expect("trash");
    let listed = archive.sessions(&SessionFilter::default()).expect("list");
    assert_eq!(listed.len(), 1, "trashed sessions are hidden");
    assert_eq!(listed[0].display_name, "Mine");
    assert!(listed[0].starred);
    assert_eq!(listed[0].tags, ["work"]);
    let trashed = archive
        .sessions(&SessionFilter {
            trashed: true,
            ..SessionFilter::default()
        })
        .expect("trashed");
    assert_eq!(trashed[0].id, a2.to_string());
    assert_eq!(archive.unpublished_events().expect("events").len(), 4);
    // Edits that change nothing record nothing.
    assert!(
        archive
            .edit(&me, t, &a1, Op::Star)
            .expect("star again")
            .is_none()
    );
    assert!(
        archive
            .edit(
                &me,
                t,
                &a1,
                Op::TagRemove {
                    tag: "absent".into()
                }
            )
            .expect("untag")
            .is_none()
    );
    assert_eq!(archive.unpublished_events().expect("events").len(), 4);
    archive.edit(&me, t, &a2, Op::Purge).expect("purge");
    assert!(!archive.has_session(&a2).expect("has"));
    assert!(matches!(
        archive.edit(&me, t, &a2, Op::Star),
        Err(crate::ArchiveError::NoSuchSession(_))
    ));
    // The ledger survives a rebuild; the projection comes back from it. The import state
    // forgets the foreign sessions the dropped tables held (so the next sync imports them
    // again from the mirror) but keeps the pinned keys and the event batches handled.
    let peer = origin("desktop-3d4e5f");
    let mut import = agentsync_core::sync::import::ImportState::default();
    import
        .keyring
        .pin(
            peer.clone(),
            agentsync_core::OriginKey::from_secret([9; 32]).public(),
        )
        .expect("pin");
    let progress = import.origins.entry(peer.clone()).or_default();
    progress.root = Some(
        format!("roots/{peer}/00000000000000000003-{}.root", "ab".repeat(32))
            .parse()
            .expect("key"),
    );
    progress.events_seen.insert("batch".into());
    archive.set_state("import", &import).expect("state");
    archive.rebuild_derived().expect("rebuild");
    let after: agentsync_core::sync::import::ImportState =
        archive.state("import").expect("state").expect("kept");
    assert_eq!(
        after.keyring, import.keyring,
        "issue 17 item 11: pinned keys survive"
    );
    assert_eq!(
        after.origins[&peer].root, None,
        "issue 17 item 11: re-imported next sync"
    );
    assert!(after.origins[&peer].events_seen.contains("batch"));
    archive
        .apply_own(&me, &session("a1", "a1"), &[message(0, "x")], &[], false)
        .expect("re-ingest");
    let ledger = archive.ledger().expect("ledger");
    archive.reproject(&ledger).expect("reproject");
    let listed = archive.sessions(&SessionFilter::default()).expect("list");
    assert_eq!(listed[0].display_name, "Mine");
    assert!(ledger.is_purged(&a2));
    assert!(archive.identity().expect("identity").is_none());
}

#[test]
fn session_usage_reads_each_messages_model_and_usage_and_the_usage_events() {
    use agentsync_core::{TokenUsage, UsageEvent};
    let archive = Archive::open_in_memory().expect("open");
    let me = origin("laptop-0a1b2c");
    let s = session("s1", "usage");
    let mut answered = message(1, "an answer");
    answered.model = "claude-sonnet-4-5-20250929".into();
    answered.usage = TokenUsage {
        input: 12,
        output: 30,
        cache_read: 500,
        ..TokenUsage::default()
    };
    let mut unnamed = message(3, "no model");
    unnamed.usage.output = 4;
    let event = UsageEvent {
        source: "codex/token_count".into(),
        model: "gpt-5-codex".into(),
        usage: TokenUsage {
            input: 7,
            ..TokenUsage::default()
        },
        dedup_key: "total:7".into(),
        ..UsageEvent::default()
    };
    archive
        .apply_own(
            &me,
            &s,
            &[
                message(0, "q"),
                answered.clone(),
                message(2, "q2"),
                unnamed.clone(),
            ],
            std::slice::from_ref(&event),
            false,
        )
        .expect("apply");
    let gid = SessionGid::new(me, s.native_id.clone());
    let (messages, events) = archive.session_usage(&gid).expect("usage");
    // Messages without usage (the user's) are not read.
    assert_eq!(
        messages,
        [
            (answered.model.clone(), answered.usage.clone()),
            (String::new(), unnamed.usage.clone())
        ]
    );
    assert_eq!(events, [event]);
}

#[test]
fn resolve_accepts_full_ids_native_ids_and_unique_prefixes() {
    let archive = Archive::open_in_memory().expect("open");
    let me = origin("laptop-0a1b2c");
    for n in ["abc123", "abd456"] {
        archive
            .apply_own(&me, &session(n, n), &[], &[], false)
            .expect("session");
    }
    assert_eq!(
        archive.resolve("abc123").expect("native").to_string(),
        "laptop-0a1b2c~abc123"
    );
    assert_eq!(
        archive.resolve("abd").expect("prefix").to_string(),
        "laptop-0a1b2c~abd456"
    );
    assert!(matches!(
        archive.resolve("ab"),
        Err(crate::ArchiveError::AmbiguousSession { count: 2, .. })
    ));
    assert!(matches!(
        archive.resolve("zz"),
        Err(crate::ArchiveError::NoSuchSession(_))
    ));
}

#[test]
fn identity_is_created_once() {
    let archive = Archive::open_in_memory().expect("open");
    let first = agentsync_core::OriginKey::from_secret([7; 32]);
    let second = agentsync_core::OriginKey::from_secret([9; 32]);
    let (o1, k1) = archive
        .create_identity(&origin("laptop-0a1b2c"), &first, 1)
        .expect("create");
    let (o2, k2) = archive
        .create_identity(&origin("other-000000"), &second, 2)
        .expect("second create keeps the first");
    assert_eq!(o1, o2);
    assert_eq!(k1.public(), k2.public());
    assert_eq!(o2.as_str(), "laptop-0a1b2c");
}

/// Issue 19 item 4: an archive made before tool calls were indexed gets them indexed when it is
/// opened (its messages' tool calls, read from the stored rows), with nothing re-ingested.
#[test]
fn an_older_archive_gets_its_tool_calls_indexed() {
    let dir = fresh_dir("tools");
    let path = dir.join("archive.db");
    let me = origin("laptop-0a1b2c");
    {
        let archive = Archive::open(&path).expect("open");
        let mut m = message(1, "ran it");
        m.tool_calls = vec![agentsync_core::ToolCall {
            name: "Bash".into(),
            input: "{\"command\":\"make\"}".into(),
            result: "error: undefined reference to frobnicate".into(),
            ..agentsync_core::ToolCall::default()
        }];
        archive
            .apply_own(
                &me,
                &session("s1", "s1"),
                &[message(0, "build"), m],
                &[],
                false,
            )
            .expect("ingest");
        // Back to the layout of schema version 2: no `tools` column, a two-column index.
        archive
            .conn
            .execute_batch(
                "DROP TRIGGER IF EXISTS messages_fts_insert; DROP TRIGGER messages_fts_delete;
                 DROP TABLE messages_fts;
                 DROP VIEW messages_search;
                 CREATE VIRTUAL TABLE messages_fts USING fts5(
                     content, thinking, content = 'messages', content_rowid = 'id');
                 INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
                 PRAGMA user_version = 2;",
            )
            .expect("downgrade");
        assert!(
            archive.search("frobnicate", 10).is_err()
                || archive.search("frobnicate", 10).expect("search").is_empty()
        );
    }
    let archive = Archive::open(&path).expect("reopen upgrades");
    let hits = archive.search("frobnicate", 10).expect("search");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].found_in, "tool");
    assert_eq!(hits[0].ordinal, 1);
    assert!(
        hits[0].snippet.contains("[frobnicate]"),
        "{}",
        hits[0].snippet
    );
    // New messages are indexed too, and content hits say so.
    let hits = archive.search("build", 10).expect("search");
    assert_eq!(hits[0].found_in, "message");
    assert_eq!(archive.integrity_check().expect("check"), "ok");
    // The upgraded index is built with the settings of a new one.
    let settings = |archive: &Archive| -> Vec<(String, i64)> {
        let mut stmt = archive
            .conn
            .prepare("SELECT k, v FROM messages_fts_config WHERE k IN ('hashsize', 'automerge') ORDER BY k")
            .expect("settings");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("settings")
            .collect::<rusqlite::Result<_>>()
            .expect("settings")
    };
    let expected = vec![
        ("automerge".to_owned(), 16),
        ("hashsize".to_owned(), 8 << 20),
    ];
    assert_eq!(settings(&archive), expected);
    assert_eq!(settings(&Archive::open_in_memory().expect("new")), expected);
    drop(archive);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn words_at_the_start_of_a_line_of_a_tool_input_are_found_also_in_an_older_archive() {
    let dir = fresh_dir("inputs");
    let path = dir.join("archive.db");
    let me = origin("laptop-0a1b2c");
    let mut m = message(1, "wrote it");
    m.tool_calls = vec![agentsync_core::ToolCall {
        name: "Write".into(),
        input: r#"{"file_path":"a.py","content":"import os\nclass TaskWriter:\n    pass"}"#.into(),
        ..agentsync_core::ToolCall::default()
    }];
    let found = |archive: &Archive, query: &str| -> Vec<(u64, String)> {
        let hits = archive.search(query, 10).expect("search");
        hits.into_iter().map(|h| (h.ordinal, h.found_in)).collect()
    };
    let tool_hit = vec![(1, "tool".to_owned())];
    {
        let archive = Archive::open(&path).expect("open");
        archive
            .apply_own(
                &me,
                &session("s1", "s1"),
                &[message(0, "go"), m.clone()],
                &[],
                false,
            )
            .expect("ingest");
        assert_eq!(found(&archive, "class TaskWriter"), tool_hit);
        assert_eq!(found(&archive, "pass"), tool_hit);
        // Keys are not words of the input.
        assert_eq!(found(&archive, "file_path"), vec![]);
        // Back to schema version 9: the tool text stored in a column of its own, the input
        // indexed as written, escapes and keys included.
        archive
            .conn
            .execute_batch(&format!(
                "DROP TRIGGER messages_fts_delete; DROP TABLE messages_fts;
                 DROP VIEW messages_search;
                 ALTER TABLE messages ADD COLUMN tools TEXT NOT NULL DEFAULT '';
                 UPDATE messages SET tools = 'Write ' || {} WHERE ordinal = 1;
                 CREATE VIRTUAL TABLE messages_fts USING fts5(
                     content, thinking, tools, content = 'messages', content_rowid = 'id');
                 CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
                     INSERT INTO messages_fts (messages_fts, rowid, content, thinking, tools)
                     VALUES ('delete', old.id, old.content, old.thinking, old.tools);
                 END;
                 INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
                 PRAGMA user_version = 9;",
                quote(&m.tool_calls[0].input)
            ))
            .expect("downgrade");
        assert_eq!(found(&archive, "class TaskWriter"), vec![]);
        assert_eq!(found(&archive, "nclass"), tool_hit);
    }
    let archive = Archive::open(&path).expect("reopen upgrades");
    assert_eq!(found(&archive, "class TaskWriter"), tool_hit);
    assert_eq!(found(&archive, "nclass"), vec![]);
    assert_eq!(found(&archive, "go"), vec![(0, "message".to_owned())]);
    assert_eq!(archive.integrity_check().expect("check"), "ok");
    // The text is no longer stored twice, and a message deleted leaves the index whole.
    assert!(!crate::schema::has_column(&archive.conn, "messages", "tools").expect("columns"));
    assert!(
        archive
            .delete_session(&SessionGid::new(me, "s1".parse().expect("native")))
            .expect("purge")
    );
    assert_eq!(found(&archive, "class TaskWriter"), vec![]);
    assert_eq!(archive.integrity_check().expect("check"), "ok");
    drop(archive);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn an_upgrade_is_pending_only_for_an_archive_of_an_earlier_version() {
    let dir = fresh_dir("upgrade-pending");
    let path = dir.join("archive.db");
    assert!(!Archive::upgrade_pending(&path).expect("no file"));
    assert!(!path.exists(), "asking creates nothing");
    let archive = Archive::open(&path).expect("create");
    drop(archive);
    assert!(!Archive::upgrade_pending(&path).expect("current"));
    let archive = Archive::open(&path).expect("open");
    archive
        .conn
        .execute_batch("PRAGMA user_version = 10;")
        .expect("an earlier version");
    drop(archive);
    assert!(Archive::upgrade_pending(&path).expect("earlier"));
    drop(Archive::open(&path).expect("upgrade"));
    assert!(!Archive::upgrade_pending(&path).expect("upgraded"));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// The page size of the archive's database file.
fn page_size(archive: &Archive) -> u32 {
    archive
        .conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page size")
}

/// An archive at `path` as a version before 16 KiB pages made it: SQLite's default 4 KiB pages,
/// then this version's tables.
fn archive_with_small_pages(path: &std::path::Path) -> Archive {
    rusqlite::Connection::open(path)
        .expect("old file")
        .execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE made_before (x);",
        )
        .expect("4 KiB pages");
    Archive::open(path).expect("migrate")
}

#[test]
fn a_new_archive_takes_the_page_size_and_one_made_before_keeps_its_own() {
    let dir = fresh_dir("page-size");
    let me = origin("laptop-0a1b2c");
    // Longer than a page of either size: stored in a chain of overflow pages.
    let long = (0..8_000).map(|i| format!("w{i} ")).collect::<String>();
    let store_and_find = |archive: &Archive, native: &str| {
        archive
            .apply_own(
                &me,
                &session(native, "long"),
                &[message(0, "short"), message(1, &long)],
                &[],
                false,
            )
            .expect("store");
        let gid = SessionGid::new(me.clone(), native.parse().expect("native"));
        assert_eq!(archive.messages(&gid, 0).expect("read")[1].content, long);
        let hits = archive.search("w7999", 10).expect("search");
        assert!(
            hits.iter()
                .any(|h| h.session == gid.to_string() && h.ordinal == 1)
        );
    };
    let new = dir.join("new.db");
    let archive = Archive::open(&new).expect("create");
    assert_eq!(page_size(&archive), crate::PAGE_SIZE);
    store_and_find(&archive, "s1");
    drop(archive);
    // Made by an earlier version: opened by this one, it keeps its pages, and works as it did.
    let old = dir.join("old.db");
    let archive = archive_with_small_pages(&old);
    assert_eq!(page_size(&archive), 4096);
    store_and_find(&archive, "s2");
    drop(archive);
    let archive = Archive::open(&old).expect("reopen");
    assert_eq!(page_size(&archive), 4096);
    assert_eq!(archive.integrity_check().expect("check"), "ok");
    drop(archive);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Once `compact` has left WAL, nothing else may read the file or switch it back to WAL
/// before the `VACUUM` (which would then keep the old page size): the file stays locked.
#[test]
fn an_archive_being_compacted_is_locked_to_other_programs() {
    let dir = fresh_dir("compact-lock");
    let path = dir.join("archive.db");
    let archive = archive_with_small_pages(&path);
    archive.take_alone().expect("alone");
    let other = rusqlite::Connection::open(&path).expect("another connection");
    other
        .busy_timeout(std::time::Duration::ZERO)
        .expect("no wait");
    let refused = |sql: &str| match other.query_row(sql, [], |r| r.get::<_, String>(0)) {
        Err(rusqlite::Error::SqliteFailure(e, _)) => {
            assert_eq!(e.code, rusqlite::ErrorCode::DatabaseBusy, "{sql}: {e}")
        }
        other => panic!("{sql} while compacting: {other:?}"),
    };
    refused("PRAGMA journal_mode = WAL");
    refused("SELECT name FROM sqlite_master");
    drop(archive);
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("readable once the archive is closed");
    assert_eq!(mode, "delete", "nothing else switched it while it was held");
    drop(other);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn compacting_an_archive_made_with_small_pages_drops_its_free_pages_and_keeps_everything() {
    let dir = fresh_dir("compact");
    let path = dir.join("archive.db");
    let journal_mode = |archive: &Archive| -> String {
        archive
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal mode")
    };
    let me = origin("laptop-0a1b2c");
    let gid = |native: &str| SessionGid::new(me.clone(), native.parse().expect("native"));
    let text = |native: &str| {
        (0..4_000)
            .map(|i| format!("{native}w{i} "))
            .collect::<String>()
    };
    let archive = archive_with_small_pages(&path);
    for native in ["s1", "s2", "s3"] {
        archive
            .apply_own(
                &me,
                &session(native, "long"),
                &[message(0, &text(native))],
                &[],
                false,
            )
            .expect("store");
    }
    assert!(archive.delete_session(&gid("s2")).expect("purge"));
    let kept = |archive: &Archive| {
        for native in ["s1", "s3"] {
            assert_eq!(
                archive.messages(&gid(native), 0).expect("read")[0].content,
                text(native)
            );
            let hits = archive
                .search(&format!("{native}w3999"), 10)
                .expect("search");
            assert_eq!(hits.len(), 1, "{native}");
        }
        assert!(archive.search("s2w3999", 10).expect("search").is_empty());
        assert_eq!(archive.integrity_check().expect("check"), "ok");
    };

    let free_pages = |archive: &Archive| -> i64 {
        archive
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .expect("free pages")
    };
    let free_before = free_pages(&archive);
    assert!(free_before > 0, "the purge left free pages");

    // Another connection has it open: refused, and nothing changed.
    let other = rusqlite::Connection::open(&path).expect("another connection");
    let _: i64 = other
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .expect("read");
    match archive.compact() {
        Err(crate::ArchiveError::InUse(why)) => assert!(why.contains("open"), "{why}"),
        other => panic!("compacted while in use: {other:?}"),
    }
    let archive = Archive::open(&path).expect("reopen after the refusal");
    assert_eq!(journal_mode(&archive), "wal");
    assert_eq!(page_size(&archive), 4096);
    assert_eq!(free_pages(&archive), free_before);
    kept(&archive);
    drop(other);

    let compacted = archive.compact().expect("compact");
    assert_eq!(
        (compacted.page_size_before, compacted.page_size_after),
        (4096, crate::PAGE_SIZE)
    );
    // (An archive this small grows: each of its tables and indexes takes a page at least.)
    assert_eq!(
        compacted.bytes_after,
        std::fs::metadata(&path).expect("file").len()
    );
    // Compacting closed it, back in WAL mode (no log left beside it).
    let mode: String = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let archive = Archive::open(&path).expect("reopen");
    assert_eq!(journal_mode(&archive), "wal");
    assert_eq!(page_size(&archive), crate::PAGE_SIZE);
    assert_eq!(free_pages(&archive), 0);
    kept(&archive);
    drop(archive);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// `text` as an SQL string literal.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

mod mirror_and_sync_host {
    use agentsync_core::sync::engine::{Input, Stages, SyncConfig, SyncEngine};
    use agentsync_core::sync::store::{PutOutcome, Store, StoreId, answer_one, check_contract};
    use agentsync_core::{Op, OriginKey, SessionGid};

    use super::{fresh_dir, message, origin, session};
    use crate::{Archive, HostStep, SessionFilter, SyncOutcome};

    #[test]
    fn the_mirror_table_keeps_the_store_contract_and_pages_by_a_thousand() {
        let archive = Archive::open_in_memory().unwrap();
        check_contract(&mut archive.mirror_table(1_000)).unwrap();

        let paged = Archive::open_in_memory().unwrap();
        let mut mirror = paged.mirror_table(1_000);
        for i in 0..1_001 {
            let key = format!("origins/a/{i:05}");
            assert_eq!(
                mirror.put_if_absent(&key, b"x").unwrap(),
                PutOutcome::Created
            );
        }
        mirror.put_if_absent("origins/b/1", b"other").unwrap();
        let first = mirror.list_keys("origins/a/", None).unwrap();
        assert_eq!(first.entries.len(), 1_000);
        assert!(first.truncated);
        assert_eq!(first.entries[0].key, "origins/a/00000");
        assert_eq!(first.entries[0].modified_ms, Some(1_000));
        let last = first.entries.last().unwrap().key.clone();
        let second = mirror.list_keys("origins/a/", Some(&last)).unwrap();
        assert_eq!(second.entries.len(), 1);
        assert_eq!(second.entries[0].key, "origins/a/01000");
        assert!(!second.truncated);
        assert_eq!(
            mirror
                .list_keys("origins/", Some("origins/a/01000"))
                .unwrap()
                .entries
                .len(),
            1
        );
    }

    /// One whole run of the core's engine with the archive answering everything but the
    /// stores: this archive's mirror table, and `shared` (another archive's table) as target.
    fn sync(
        archive: &mut Archive,
        name: &str,
        seed: u8,
        shared: &Archive,
        now: u64,
    ) -> SyncOutcome {
        let me = origin(name);
        let config = SyncConfig {
            origin: me.clone(),
            key: OriginKey::from_secret([seed; 32]),
            now_ms: now,
            target: true,
            stages: Stages::ALL,
            last_sync_ms: archive.last_sync_ms().unwrap(),
            heal_every_ms: 0,
        };
        let mut engine = SyncEngine::new(config, archive.sync_state().unwrap());
        loop {
            let output = engine.poll().unwrap();
            match archive.take_output(&me, output).unwrap() {
                HostStep::Answer(input) => engine.handle(input).unwrap(),
                HostStep::Store(requests) => {
                    let responses = requests
                        .iter()
                        .map(|r| match r.store {
                            StoreId::Mirror => {
                                answer_one(&mut archive.mirror_table(now), &r.request)
                            }
                            StoreId::Target => {
                                answer_one(&mut shared.mirror_table(now), &r.request)
                            }
                        })
                        .collect();
                    engine.handle(Input::Store(responses)).unwrap();
                }
                HostStep::Stored | HostStep::Progress(_) | HostStep::Listed(_) => {}
                HostStep::Done(report) => {
                    let outcome = archive.finish_sync(&report, now).unwrap();
                    archive
                        .record_sync(&crate::SyncRun {
                            target: "shared".into(),
                            finished_ms: now as i64,
                            report: serde_json::Value::Null,
                        })
                        .unwrap();
                    return outcome;
                }
            }
        }
    }

    /// The export state lives as a head and one row per session: a sync that appends to one
    /// session rewrites that row and the head, and what is read back is the state the engine
    /// left. A state saved whole by an older version is split on open.
    #[test]
    fn the_export_state_is_written_as_what_each_run_changed() {
        let dir = fresh_dir("export");
        let path = dir.join("archive.db");
        let shared = Archive::open_in_memory().unwrap();
        let mut laptop = Archive::open(&path).unwrap();
        let me = origin("laptop-0a0b0c");
        let own = |archive: &mut Archive, native: &str, count: u64| {
            let messages: Vec<_> = (0..count).map(|i| message(i, &format!("m{i}"))).collect();
            archive
                .transaction(|a| {
                    a.apply_own(&me, &session(native, native), &messages, &[], false)
                        .map(|_| ())
                })
                .unwrap();
        };
        let rows = |archive: &Archive| -> Vec<(String, String)> {
            let mut stmt = archive
                .conn
                .prepare("SELECT native_id, json FROM export_sessions ORDER BY native_id")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let head =
            |archive: &Archive| -> serde_json::Value { archive.state("export").unwrap().unwrap() };
        for native in ["s1", "s2", "s3"] {
            own(&mut laptop, native, 3);
        }
        sync(&mut laptop, "laptop-0a0b0c", 1, &shared, 10_000);
        let first = rows(&laptop);
        assert_eq!(first.len(), 3);
        assert_eq!(head(&laptop)["sessions"], serde_json::json!({}));
        assert_eq!(
            head(&laptop)["checkpoint"]["sessions"],
            serde_json::json!({})
        );
        let state = laptop.export_state().unwrap().unwrap();
        assert_eq!(state.sessions.len(), 3);
        assert_eq!(state.checkpoint.sessions().len(), 3);

        own(&mut laptop, "s2", 5);
        sync(&mut laptop, "laptop-0a0b0c", 1, &shared, 11_000);
        let second = rows(&laptop);
        assert_eq!(second[0], first[0]);
        assert_ne!(second[1], first[1], "s2 was exported again");
        assert_eq!(second[2], first[2]);
        let state = laptop.export_state().unwrap().unwrap();
        assert_eq!(state.seq, 2);
        let s2 = &state.sessions[&"s2".parse().unwrap()];
        let exported: u64 = s2.segments.iter().map(|s| u64::from(s.count)).sum();
        assert_eq!(exported, 5);
        assert_eq!(
            state.checkpoint.sessions()[&"s2".parse().unwrap()],
            s2.manifest
        );
        // Nothing changed: the head and the rows stay as they are.
        let before = (head(&laptop), rows(&laptop));
        sync(&mut laptop, "laptop-0a0b0c", 1, &shared, 12_000);
        assert_eq!((head(&laptop), rows(&laptop)), before);

        // Back to a state saved whole, as before the last migration.
        laptop.set_state("export", &state).unwrap();
        laptop
            .conn
            .execute_batch("DROP TABLE export_sessions; PRAGMA user_version = 8;")
            .unwrap();
        drop(laptop);
        let laptop = Archive::open(&path).unwrap();
        assert_eq!(rows(&laptop), second);
        assert_eq!(head(&laptop)["sessions"], serde_json::json!({}));
        assert_eq!(laptop.export_state().unwrap().unwrap(), state);
        drop(laptop);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_archives_converge_through_the_engine_with_mirror_tables() {
        let shared = Archive::open_in_memory().unwrap();
        let mut laptop = Archive::open_in_memory().unwrap();
        let mut browser = Archive::open_in_memory().unwrap();
        let laptop_origin = origin("laptop-0a0b0c");
        let messages: Vec<_> = (0..5)
            .map(|i| message(i, &format!("word{i} zebra")))
            .collect();
        laptop
            .transaction(|a| {
                a.apply_own(
                    &laptop_origin,
                    &session("s1", "first"),
                    &messages,
                    &[],
                    false,
                )
                .map(|_| ())
            })
            .unwrap();

        let out = sync(&mut laptop, "laptop-0a0b0c", 1, &shared, 10_000);
        assert!(
            out.quarantined.is_empty() && out.deferred.is_empty(),
            "{out:?}"
        );
        let out = sync(&mut browser, "web-0d0e0f", 2, &shared, 11_000);
        assert!(
            out.quarantined.is_empty() && out.deferred.is_empty(),
            "{out:?}"
        );

        let listed = browser.sessions(&SessionFilter::default()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, "laptop-0a0b0c~s1");
        let gid: SessionGid = listed[0].id.parse().unwrap();
        assert_eq!(
            browser.messages(&gid, 0).unwrap(),
            laptop.messages(&gid, 0).unwrap()
        );
        assert_eq!(browser.search("zebra", 10).unwrap().len(), 5);

        // A curation made in the browser reaches the laptop.
        let me = origin("web-0d0e0f");
        browser
            .edit(
                &me,
                12_000,
                &gid,
                Op::Rename {
                    name: "from the browser".into(),
                },
            )
            .unwrap();
        browser.edit(&me, 12_001, &gid, Op::Star).unwrap();
        sync(&mut browser, "web-0d0e0f", 2, &shared, 13_000);
        sync(&mut laptop, "laptop-0a0b0c", 1, &shared, 14_000);
        let seen = &laptop.sessions(&SessionFilter::default()).unwrap()[0];
        assert_eq!(seen.display_name, "from the browser");
        assert!(seen.starred);
        // Nothing left to publish, nothing left to fetch: a second run changes nothing.
        assert!(browser.unpublished_events().unwrap().is_empty());
    }
}

/// Search picks the best hits first and makes snippets for those only; the hits and their
/// order must be exactly those of ranking every match (trashed sessions left out).
#[test]
fn search_takes_the_best_hits_in_rank_order_whatever_the_limit() {
    let mut archive = Archive::open_in_memory().expect("open");
    let me = origin("laptop-0a1b2c");
    for s in 0..6u64 {
        let messages: Vec<Message> = (0..20u64)
            .map(|i| {
                let words = "otter ".repeat(((s * 7 + i * 3) % 5 + 1) as usize);
                message(i, &format!("{words} filler {s} {i} beaver"))
            })
            .collect();
        archive
            .transaction(|a| {
                a.apply_own(&me, &session(&format!("s{s}"), ""), &messages, &[], false)
                    .map(|_| ())
            })
            .expect("own");
    }
    let trashed = SessionGid::new(me.clone(), "s2".parse().expect("native"));
    archive.edit(&me, 1, &trashed, Op::Trash).expect("trash");

    let everything = archive.search("otter", 10_000).expect("search");
    assert_eq!(
        everything.len(),
        5 * 20,
        "all but the trashed session's messages"
    );
    assert!(everything.iter().all(|h| !h.session.ends_with("~s2")));
    for limit in [1, 3, 17, 99, 100] {
        let hits = archive.search("otter", limit).expect("search");
        assert_eq!(hits, everything[..limit as usize].to_vec(), "limit {limit}");
    }
    assert!(everything.iter().all(|h| h.snippet.contains("[otter]")));
}

#[test]
fn an_older_archive_learns_which_logs_hold_messages_from_their_resume_states() {
    let dir = fresh_dir("holding");
    let path = dir.join("archive.db");
    let rows = [
        (
            "/logs/line-done.jsonl",
            r#"{"offset":10,"held":[],"x":1}"#,
            false,
        ),
        (
            "/logs/line-holding.jsonl",
            r#"{"offset":10,"held":[{"ordinal":3}]}"#,
            true,
        ),
        (
            "/logs/document-done.json",
            r#"{"waiting":0,"malformed":0,"first_malformed":""}"#,
            false,
        ),
        (
            "/logs/document-waiting.json",
            r#"{"waiting":2,"malformed":0,"first_malformed":""}"#,
            true,
        ),
        ("/logs/unreadable", "not json", true),
    ];
    {
        let archive = Archive::open(&path).expect("open");
        // Back to schema version 5: no `holding` column.
        archive
            .conn
            .execute_batch(
                "DROP INDEX sources_stamp; DROP INDEX sessions_own;
                 ALTER TABLE sources DROP COLUMN holding; PRAGMA user_version = 5;",
            )
            .expect("downgrade");
        for (path, resume, _) in rows {
            archive
                .conn
                .execute(
                    "INSERT INTO sources (path, format, size, mtime_ns, inode, resume_json)
                     VALUES (?1, 'claude', 1, 1, 1, ?2)",
                    [path, resume],
                )
                .expect("row");
        }
    }
    let archive = Archive::open(&path).expect("reopen upgrades");
    let stamps = archive.source_stamps().expect("stamps");
    for (path, _, holding) in rows {
        assert_eq!(stamps[path].holding, holding, "{path}");
        assert_eq!(
            archive.source(path).expect("row").expect("row").holding,
            holding
        );
    }
    drop(archive);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Messages stored inside a transaction are indexed when it commits (`unindexed`). Whatever
/// the mix of transactions, savepoints rolled back, replaced tails and deleted sessions, the
/// index holds every stored message once and nothing else.
mod deferred_index {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Replace session `s`'s messages from `from` (capped at its length) with `n` new ones.
        Apply {
            s: usize,
            from: usize,
            n: usize,
        },
        Delete {
            s: usize,
        },
    }

    #[derive(Debug, Clone)]
    enum Group {
        Autocommit(Vec<Op>),
        Transaction(Vec<Op>),
        /// A transaction whose middle part runs in a savepoint that fails.
        TransactionWithFailedItem(Vec<Op>, Vec<Op>, Vec<Op>),
        FailedTransaction(Vec<Op>),
        /// A savepoint outside any transaction: it is the transaction.
        Item(Vec<Op>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..4usize, 0..6usize, 0..5usize).prop_map(|(s, from, n)| Op::Apply { s, from, n }),
            1 => (0..4usize).prop_map(|s| Op::Delete { s }),
        ]
    }

    fn group() -> impl Strategy<Value = Group> {
        let ops = || prop::collection::vec(op(), 0..5);
        prop_oneof![
            ops().prop_map(Group::Autocommit),
            ops().prop_map(Group::Transaction),
            (ops(), ops(), ops()).prop_map(|(a, b, c)| Group::TransactionWithFailedItem(a, b, c)),
            ops().prop_map(Group::FailedTransaction),
            ops().prop_map(Group::Item),
        ]
    }

    type Model = Vec<Vec<String>>;

    struct Run {
        peer: OriginId,
        next_word: usize,
    }

    impl Run {
        fn apply(&mut self, a: &Archive, model: &mut Model, op: &Op) -> crate::Result<()> {
            match *op {
                Op::Apply { s, from, n } => {
                    let from = from.min(model[s].len());
                    let words: Vec<String> = (0..n)
                        .map(|_| {
                            self.next_word += 1;
                            format!("w{}x", self.next_word)
                        })
                        .collect();
                    let messages = words
                        .iter()
                        .enumerate()
                        .map(|(i, w)| message((from + i) as u64, w))
                        .collect();
                    a.apply_unit(
                        &ApplyUnit {
                            gid: SessionGid::new(
                                self.peer.clone(),
                                format!("s{s}").parse().expect("native"),
                            ),
                            session: session(&format!("s{s}"), ""),
                            from_ordinal: from as u64,
                            messages,
                            message_count: (from + n) as u64,
                            usage_events: Vec::new(),
                            manifest: ArtifactId::of(b"m"),
                        },
                        false,
                    )?;
                    model[s].truncate(from);
                    model[s].extend(words);
                }
                Op::Delete { s } => {
                    let gid = SessionGid::new(
                        self.peer.clone(),
                        format!("s{s}").parse().expect("native"),
                    );
                    a.delete_session(&gid)?;
                    model[s].clear();
                }
            }
            Ok(())
        }

        fn apply_all(&mut self, a: &Archive, model: &mut Model, ops: &[Op]) -> crate::Result<()> {
            ops.iter().try_for_each(|op| self.apply(a, model, op))
        }
    }

    fn failure() -> crate::ArchiveError {
        crate::ArchiveError::from(rusqlite::Error::InvalidQuery)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_index_holds_every_stored_message_once(groups in prop::collection::vec(group(), 1..8)) {
            let mut archive = Archive::open_in_memory().expect("open");
            let mut run = Run { peer: origin("desktop-3d4e5f"), next_word: 0 };
            let mut model: Model = vec![Vec::new(); 4];
            let mut written = Vec::new();
            for g in &groups {
                let before = model.clone();
                let words_before = run.next_word;
                match g {
                    Group::Autocommit(ops) => run.apply_all(&archive, &mut model, ops).expect("autocommit"),
                    Group::Transaction(ops) => archive
                        .transaction(|a| run.apply_all(a, &mut model, ops))
                        .expect("transaction"),
                    Group::TransactionWithFailedItem(a_ops, b_ops, c_ops) => archive
                        .transaction(|a| {
                            run.apply_all(a, &mut model, a_ops)?;
                            let kept = model.clone();
                            let failed = a.atomically(|a| {
                                run.apply_all(a, &mut model, b_ops)?;
                                Err::<(), _>(failure())
                            });
                            assert!(failed.is_err());
                            model = kept;
                            run.apply_all(a, &mut model, c_ops)?;
                            Ok(())
                        })
                        .expect("transaction"),
                    Group::FailedTransaction(ops) => {
                        let failed = archive.transaction(|a| {
                            run.apply_all(a, &mut model, ops)?;
                            Err::<(), _>(failure())
                        });
                        prop_assert!(failed.is_err());
                        model = before;
                    }
                    Group::Item(ops) => archive
                        .atomically(|a| run.apply_all(a, &mut model, ops))
                        .expect("item"),
                }
                written.extend(words_before + 1..=run.next_word);
            }
            prop_assert_eq!(archive.integrity_check().expect("check"), "ok");
            let live: std::collections::HashSet<String> = model.iter().flatten().cloned().collect();
            for n in written {
                let word = format!("w{n}x");
                let hits = archive.search(&word, 10).expect("search").len();
                prop_assert_eq!(hits, usize::from(live.contains(&word)), "{}", word);
            }
        }
    }
}

/// A writer whose log is copied by the checkpoint thread: every commit lands, the log stays
/// bounded (it starts over once copied, though the copying runs beside the writer), and the
/// last connection to close leaves no log behind.
#[test]
fn a_log_copied_beside_the_writer_stays_bounded_and_loses_nothing() {
    let dir = fresh_dir("wal");
    let path = dir.join("archive.db");
    let wal = dir.join("archive.db-wal");
    let (transactions, bytes) = (200usize, 256 * 1024);
    let limit: u64 = 16 << 20;
    let mut archive = Archive::open(&path).expect("open");
    archive
        .checkpoint_beside_up_to(limit as i64)
        .expect("checkpointer");
    archive
        .checkpoint_beside()
        .expect("asking twice changes nothing");
    for i in 0..transactions {
        let blob = format!("{i:08}").repeat(bytes / 8);
        archive
            .transaction(|a| {
                a.conn.execute(
                    "INSERT INTO sync_state (name, json) VALUES (?1, ?2)",
                    rusqlite::params![format!("blob-{i}"), blob],
                )?;
                Ok(())
            })
            .expect("commit");
    }
    let written = (transactions * bytes) as u64;
    let log = std::fs::metadata(&wal).expect("log").len();
    assert!(
        written > 3 * limit && log < limit + limit / 2,
        "{written} bytes committed, log of {log} bytes (limit {limit})"
    );
    drop(archive);
    assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0));
    let archive = Archive::open(&path).expect("reopen");
    let (count, total): (i64, i64) = archive
        .conn
        .query_row(
            "SELECT count(*), sum(length(json)) FROM sync_state WHERE name LIKE 'blob-%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count");
    assert_eq!((count as usize, total as u64), (transactions, written));
    assert_eq!(archive.integrity_check().expect("check"), "ok");
    drop(archive);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
