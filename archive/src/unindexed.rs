//! Messages stored in the open transaction and not yet in the search index.
//!
//! FTS5 keeps new index entries in memory and writes them out as a new index segment at every
//! savepoint, and SQLite opens a statement savepoint for any write that may abort halfway
//! (an upsert, a delete that fires a trigger, a write with foreign keys to check). Indexed
//! one by one, the messages of a batch were cut into a segment per session by the statements
//! between them, and FTS5 spent most of its time merging those segments again. So a
//! transaction only notes the ids of the messages it stores, and indexes them all with one
//! `INSERT … SELECT` per run of ids just before it commits: the index then receives one
//! statement's worth of entries, as a bare bulk insert does.
//!
//! A message's tool text is not stored (`schema::MESSAGES_FTS`): the index reads it out of the
//! message's JSON (`tool_text(rest_json)`). The row made it already (`MessageRow`), often on
//! another thread, so the text is held here with the id until the message is indexed, and read
//! again only for what is not held (beyond [`HELD_LIMIT`], or after a savepoint rolled back an
//! index written inside it).
//!
//! What must hold: every noted id is indexed before the transaction commits (or forgotten
//! with its rollback), and no message of the transaction is deleted before it is indexed (the
//! delete trigger removes index entries, which must exist).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use crate::error::Result;

/// Tool text held for messages waiting to be indexed, at most this many bytes: more is read
/// back out of the stored JSON, so that a large transaction does not hold its tool text twice.
const HELD_LIMIT: usize = 32 << 20;

/// Runs of message ids, in the order they were stored, and their tool text.
#[derive(Debug)]
pub(crate) struct Unindexed {
    runs: RefCell<Vec<(i64, i64)>>,
    held: HeldToolText,
}

/// Shared with the SQL function `held_tool_text(id)`, which takes a message's text out.
#[derive(Debug, Default, Clone)]
struct HeldToolText(Arc<Mutex<Held>>);

#[derive(Debug, Default)]
struct Held {
    texts: HashMap<i64, String>,
    bytes: usize,
}

impl HeldToolText {
    fn with<T>(&self, f: impl FnOnce(&mut Held) -> T) -> T {
        // Only the connection's own thread locks it; a panic there leaves nothing half-done
        // that matters, since text not held is read back.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Unindexed {
    /// Registers `held_tool_text` on `conn`, the connection this will index with.
    pub(crate) fn new(conn: &Connection) -> Result<Unindexed> {
        let held = HeldToolText::default();
        let taken = held.clone();
        conn.create_scalar_function(
            "held_tool_text",
            1,
            FunctionFlags::SQLITE_UTF8,
            move |ctx| {
                let id: i64 = ctx.get(0)?;
                Ok(taken.with(|h| h.texts.remove(&id)))
            },
        )?;
        Ok(Unindexed {
            runs: RefCell::default(),
            held,
        })
    }

    /// A message stored in the open transaction, and its tool text (`tool_text::of`).
    pub(crate) fn note(&self, id: i64, tool_text: String) {
        self.held.with(|h| {
            if h.bytes + tool_text.len() <= HELD_LIMIT {
                h.bytes += tool_text.len();
                // An id noted again: a savepoint rolled back the message first noted with it.
                if let Some(before) = h.texts.insert(id, tool_text) {
                    h.bytes -= before.len();
                }
            }
        });
        let mut runs = self.runs.borrow_mut();
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }

    /// Indexes every noted message that still exists. An id may have been noted twice (a
    /// savepoint rolled back and its id reused): runs are merged first, so no message is
    /// indexed twice.
    pub(crate) fn index(&self, conn: &Connection) -> Result<()> {
        let mut runs = std::mem::take(&mut *self.runs.borrow_mut());
        if runs.is_empty() {
            return Ok(());
        }
        // Every noted message is indexed below: what is left held belongs to none.
        let _release = Release(&self.held);
        runs.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(runs.len());
        for (first, last) in runs {
            match merged.last_mut() {
                Some((_, end)) if first <= end.saturating_add(1) => *end = (*end).max(last),
                _ => merged.push((first, last)),
            }
        }
        let mut insert = conn.prepare_cached(
            "INSERT INTO messages_fts (rowid, content, thinking, tools)
             SELECT id, content, thinking, coalesce(held_tool_text(id), tool_text(rest_json))
             FROM messages WHERE id BETWEEN ?1 AND ?2",
        )?;
        for (first, last) in merged {
            insert.execute([first, last])?;
        }
        Ok(())
    }

    /// What is noted now, for [`restore`](Self::restore) if a savepoint opened now rolls back.
    pub(crate) fn snapshot(&self) -> Vec<(i64, i64)> {
        self.runs.borrow().clone()
    }

    /// A savepoint rolled back: the messages noted before it are unindexed again (indexing
    /// them inside it was rolled back too), and those noted since are gone.
    pub(crate) fn restore(&self, snapshot: Vec<(i64, i64)>) {
        *self.runs.borrow_mut() = snapshot;
    }

    /// The transaction rolled back: its messages are gone, and their ids may be taken by
    /// messages that are indexed as they are stored.
    pub(crate) fn forget(&self) {
        self.runs.borrow_mut().clear();
        self.held.with(Held::clear);
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.runs.borrow().is_empty()
    }
}

impl Held {
    fn clear(&mut self) {
        self.texts = HashMap::new();
        self.bytes = 0;
    }
}

/// Lets go of the held text when indexing ends, however it ends.
struct Release<'a>(&'a HeldToolText);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.with(Held::clear);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages whose stored JSON holds one tool call, named `json<id>`, and the index over
    /// them as the archive has it (`schema::MESSAGES_FTS`).
    fn messages(ids: std::ops::RangeInclusive<i64>) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::tool_text::register(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, content TEXT, thinking TEXT,
                 rest_json TEXT);",
        )
        .unwrap();
        conn.execute_batch(crate::schema::MESSAGES_FTS).unwrap();
        for id in ids {
            conn.execute(
                r#"INSERT INTO messages VALUES (?1, 'word' || ?1, '',
                       '{"tool_calls":[{"name":"json' || ?1 || '"}]}')"#,
                [id],
            )
            .unwrap();
        }
        conn
    }

    fn hits(conn: &Connection, query: &str) -> Vec<i64> {
        conn.prepare("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 ORDER BY rowid")
            .unwrap()
            .query_map([query], |r| r.get(0))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn runs_merge_and_each_message_is_indexed_once() {
        let conn = messages(1..=10);
        let unindexed = Unindexed::new(&conn).unwrap();
        // Out of order, overlapping, repeated, and one id with no message; 7 is indexed on
        // its own, as a message stored outside a transaction is.
        for id in [3, 4, 5, 1, 2, 4, 5, 6, 8, 9, 10, 11] {
            unindexed.note(id, format!("json{id}"));
        }
        unindexed.index(&conn).unwrap();
        assert!(unindexed.is_empty());
        conn.execute(
            "INSERT INTO messages_fts (rowid, content, thinking, tools) VALUES (7, 'word7', '', 'json7')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("every message indexed once, as its row reads");
        assert_eq!(hits(&conn, "word2 OR word7 OR json9"), vec![2, 7, 9]);
    }

    #[test]
    fn held_tool_text_is_indexed_and_what_is_not_held_is_read_from_the_json() {
        let conn = messages(1..=3);
        let unindexed = Unindexed::new(&conn).unwrap();
        // What the row made is what is indexed: here, on purpose, not what its JSON says.
        unindexed.note(1, "held1".into());
        // Beyond the limit: not held, so read back out of the JSON.
        unindexed.note(2, "x".repeat(HELD_LIMIT + 1));
        unindexed.note(3, "held3".into());
        unindexed.index(&conn).unwrap();
        assert_eq!(hits(&conn, "held1 OR held3"), vec![1, 3]);
        assert_eq!(hits(&conn, "json1 OR json2 OR json3"), vec![2]);
        unindexed
            .held
            .with(|h| assert_eq!((h.texts.len(), h.bytes), (0, 0)));
    }

    #[test]
    fn an_id_noted_again_replaces_its_held_text() {
        let conn = messages(1..=1);
        let unindexed = Unindexed::new(&conn).unwrap();
        let before = unindexed.snapshot();
        unindexed.note(1, "rolled back".into());
        unindexed.restore(before);
        unindexed.note(1, "json1".into());
        unindexed.held.with(|h| assert_eq!(h.bytes, "json1".len()));
        unindexed.index(&conn).unwrap();
        assert_eq!(hits(&conn, "json1"), vec![1]);
        assert_eq!(hits(&conn, "rolled"), Vec::<i64>::new());
    }
}
