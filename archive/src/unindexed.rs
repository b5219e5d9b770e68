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
//! What must hold: every noted id is indexed before the transaction commits (or forgotten
//! with its rollback), and no message of the transaction is deleted before it is indexed (the
//! delete trigger removes index entries, which must exist).

use std::cell::RefCell;

use rusqlite::Connection;

use crate::error::Result;

/// Runs of message ids, in the order they were stored.
#[derive(Debug, Default)]
pub(crate) struct Unindexed {
    runs: RefCell<Vec<(i64, i64)>>,
}

impl Unindexed {
    pub(crate) fn note(&self, id: i64) {
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
             SELECT id, content, thinking, tools FROM messages WHERE id BETWEEN ?1 AND ?2",
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
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.runs.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_and_each_message_is_indexed_once() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, content TEXT, thinking TEXT,
                 tools TEXT);
             CREATE VIRTUAL TABLE messages_fts USING fts5(content, thinking, tools,
                 content = 'messages', content_rowid = 'id');",
        )
        .unwrap();
        for id in 1..=10 {
            conn.execute(
                "INSERT INTO messages VALUES (?1, 'word' || ?1, '', '')",
                [id],
            )
            .unwrap();
        }
        let unindexed = Unindexed::default();
        // Out of order, overlapping, repeated, and one id with no message; 7 is indexed on
        // its own, as a message stored outside a transaction is.
        for id in [3, 4, 5, 1, 2, 4, 5, 6, 8, 9, 10, 11] {
            unindexed.note(id);
        }
        unindexed.index(&conn).unwrap();
        assert!(unindexed.is_empty());
        conn.execute(
            "INSERT INTO messages_fts (rowid, content, thinking, tools) VALUES (7, 'word7', '', '')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("every message indexed once, as its row reads");
        let hits: Vec<i64> = conn
            .prepare("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'word2 OR word7 OR word9' ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(hits, vec![2, 7, 9]);
    }
}
