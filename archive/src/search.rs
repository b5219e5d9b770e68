//! Full-text search over message content, thinking and tool calls (SQLite FTS5).

use serde::{Deserialize, Serialize};

use crate::Archive;
use crate::error::Result;

/// One message that matches a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub session: String,
    pub display_name: String,
    pub ordinal: u64,
    pub role: String,
    pub timestamp_ms: Option<i64>,
    /// The matching text around the first hit, matches in `[…]`.
    pub snippet: String,
    /// Where the hit is: `message` (its text), `thinking`, or `tool` (a tool call's name,
    /// input or result).
    #[serde(rename = "in")]
    pub found_in: String,
}

/// A user's words as an FTS5 query: every word must appear (as a prefix for the last one), and
/// no word is read as FTS5 syntax (`AND`, `-`, `:` …), so any input is a valid query.
pub(crate) fn fts_query(input: &str) -> String {
    let words: Vec<String> = input
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} {last}*", rest.join(" ")),
        Some((last, _)) => format!("{last}*"),
        None => "\"\"".to_owned(),
    }
}

impl Archive {
    /// Messages matching `query`, best first (BM25), trashed sessions excluded.
    pub fn search(&self, query: &str, limit: u64) -> Result<Vec<SearchHit>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.gid, coalesce(nullif(c.display_name, ''), nullif(s.title, ''),
                        substr(s.first_message, 1, 80)),
                    m.ordinal, m.role, m.timestamp_ms,
                    snippet(messages_fts, 0, char(1), char(2), '…', 16),
                    snippet(messages_fts, 1, char(1), char(2), '…', 16),
                    snippet(messages_fts, 2, char(1), char(2), '…', 16)
             FROM messages_fts
             JOIN messages m ON m.id = messages_fts.rowid
             JOIN sessions s ON s.id = m.session
             LEFT JOIN curation c ON c.gid = s.gid
             WHERE messages_fts MATCH ?1 AND coalesce(c.trashed, 0) = 0
             ORDER BY bm25(messages_fts), s.gid, m.ordinal
             LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![fts_query(query), limit.min(i64::MAX as u64) as i64],
            |r| {
                // The first column whose snippet holds a match, marked with control
                // characters no text of ours holds, then shown in `[…]`.
                let mut found = (String::new(), "message");
                for (i, place) in [(5, "message"), (6, "thinking"), (7, "tool")] {
                    let snippet: String = r.get(i)?;
                    if snippet.contains('\u{1}') {
                        found = (snippet.replace('\u{1}', "[").replace('\u{2}', "]"), place);
                        break;
                    }
                }
                Ok(SearchHit {
                    session: r.get(0)?,
                    display_name: r.get(1)?,
                    ordinal: r.get(2)?,
                    role: r.get(3)?,
                    timestamp_ms: r.get(4)?,
                    snippet: found.0,
                    found_in: found.1.to_owned(),
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
