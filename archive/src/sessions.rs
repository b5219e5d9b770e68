//! Sessions and their messages: written by ingest (own sessions) and import (foreign ones),
//! read by lists, `show` and export.

use agentsync_core::segment::read_canonical_message;
use agentsync_core::sync::engine::ListedSession;
use agentsync_core::sync::import::ApplyUnit;
use agentsync_core::{Message, NativeId, OriginId, Session, SessionGid, TokenUsage, UsageEvent};
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::Archive;
use crate::curation::PinRow;
use crate::error::{ArchiveError, Result, decode, encode};
use crate::message_row::{MessageRow, PreparedUnit};

/// One line of a session list. Every field is the same on every machine that has the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The fleet-wide id, `<origin>~<native id>`.
    pub id: String,
    pub origin: String,
    pub native_id: String,
    pub agent: String,
    pub project: String,
    /// The user's name for it, else the agent's title, else the first message (shortened).
    pub display_name: String,
    pub title: String,
    pub starred: bool,
    pub trashed: bool,
    pub tags: Vec<String>,
    pub note: String,
    pub message_count: u64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// The parent session's id, for subagent sessions.
    pub parent: Option<String>,
    /// Listed by its origin, its messages not imported yet ([`Archive::add_listed`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// A session with its messages and pins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub summary: SessionSummary,
    pub session: Session,
    pub usage_events: Vec<UsageEvent>,
    pub pins: Vec<PinRow>,
    pub messages: Vec<Message>,
}

/// A message's model (`""` when it names none) and token usage.
pub type ModelUsage = (String, TokenUsage);

/// What a session list shows.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Full-text query over messages (and names).
    pub search: Option<String>,
    pub starred: bool,
    /// Only trashed sessions (otherwise trashed ones are hidden).
    pub trashed: bool,
    pub tag: Option<String>,
    pub origin: Option<String>,
    pub limit: Option<u64>,
}

/// Sessions held per origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginCount {
    pub origin: String,
    pub sessions: u64,
    pub messages: u64,
}

const SUMMARY_COLUMNS: &str = "s.gid, s.origin, s.native_id, s.agent, s.project, s.title,
    s.first_message, s.message_count, s.started_ms, s.ended_ms, s.session_json,
    coalesce(c.display_name, ''), coalesce(c.starred, 0), coalesce(c.trashed, 0),
    coalesce(c.note, ''),
    (SELECT coalesce(json_group_array(tag), '[]') FROM
        (SELECT tag FROM curation_tags t WHERE t.gid = s.gid ORDER BY tag)),
    s.own = 0 AND s.manifest IS NULL";

fn summary_of(row: &Row<'_>) -> rusqlite::Result<(SessionSummary, String)> {
    let title: String = row.get(5)?;
    let first_message: String = row.get(6)?;
    let name: String = row.get(11)?;
    let tags: String = row.get(15)?;
    let session_json: String = row.get(10)?;
    let origin: String = row.get(1)?;
    let display_name = if !name.is_empty() {
        name
    } else if !title.is_empty() {
        title.clone()
    } else {
        shorten(&first_message, 80)
    };
    Ok((
        SessionSummary {
            id: row.get(0)?,
            origin,
            native_id: row.get(2)?,
            agent: row.get(3)?,
            project: row.get(4)?,
            display_name,
            title,
            starred: row.get(12)?,
            trashed: row.get(13)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            note: row.get(14)?,
            message_count: row.get(7)?,
            started_ms: row.get(8)?,
            ended_ms: row.get(9)?,
            parent: None,
            pending: row.get(16)?,
        },
        session_json,
    ))
}

fn with_parent(mut summary: SessionSummary, session_json: &str) -> Result<SessionSummary> {
    let session: Session = decode("session", session_json)?;
    if !session.parent_session.is_empty() {
        summary.parent = Some(format!("{}~{}", summary.origin, session.parent_session));
    }
    Ok(summary)
}

/// The first `max` characters of the first line.
fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// What [`Archive::apply_own`] did with a log's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnApplied {
    /// Stored (new, appended, or a rewritten log that still begins with everything stored).
    Applied,
    /// The rewritten log is shorter but holds nothing new: every stored message is kept.
    KeptStored,
    /// The rewritten log's earlier content differs from what is stored: nothing was changed,
    /// and the caller stores the new content as a session of its own.
    Diverged,
}

impl Archive {
    /// Adds messages parsed from an own session's log (ordinals continue what is stored) and
    /// updates its record. Bumps the session's revision, which export compares to find
    /// changed sessions.
    ///
    /// `reset`: the log was rewritten (shrunk, replaced in place) and `messages` is all of it.
    /// Archived messages outlive their logs (issue 19 item 3): a rewrite that begins with every
    /// stored message only adds what follows; one that is a shorter prefix keeps the stored
    /// session; one that differs earlier is [`OwnApplied::Diverged`], never mixed in.
    pub fn apply_own(
        &self,
        origin: &OriginId,
        session: &Session,
        messages: &[Message],
        new_usage: &[UsageEvent],
        reset: bool,
    ) -> Result<OwnApplied> {
        let gid = SessionGid::new(origin.clone(), session.native_id.clone());
        let mut messages = messages;
        let rewritten = reset;
        let mut reset = reset;
        if reset {
            let stored = self.messages(&gid, 0)?;
            let common = stored
                .iter()
                .zip(messages)
                .take_while(|(a, b)| a == b)
                .count();
            if common < stored.len() {
                return Ok(if common == messages.len() {
                    OwnApplied::KeptStored
                } else {
                    OwnApplied::Diverged
                });
            }
            // Everything stored is still there: continue after it, keeping its usage.
            messages = &messages[common..];
            reset = stored.is_empty();
            if messages.is_empty() && !stored.is_empty() {
                // Read again with nothing new (a first read after `rebuild`, a rewrite in
                // place): the revision stays, so export has nothing to publish.
                let (stored_session, stored_usage) = self.session_record(&gid)?;
                if stored_session == *session && new_usage.iter().all(|u| stored_usage.contains(u))
                {
                    return Ok(OwnApplied::KeptStored);
                }
            }
        }
        let existing: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT id, usage_json FROM sessions WHERE gid = ?1")?
            .query_row([gid.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let mut usage: Vec<UsageEvent> = match &existing {
            Some((_, json)) if !reset => decode("usage events", json)?,
            _ => Vec::new(),
        };
        if rewritten {
            // The whole log was read again: its usage events are mostly stored already.
            for u in new_usage {
                if !usage.contains(u) {
                    usage.push(u.clone());
                }
            }
        } else {
            usage.extend_from_slice(new_usage);
        }
        let id = self.upsert_session(&gid, true, session, &usage, None, None)?;
        let from = if reset {
            0
        } else {
            messages.first().map_or(u64::MAX, |m| m.ordinal)
        };
        let mut rows = messages
            .iter()
            .map(MessageRow::of)
            .collect::<Result<Vec<_>>>()?;
        self.replace_messages(id, from, &mut rows)?;
        self.conn
            .prepare_cached(
                "UPDATE sessions SET revision = revision + 1,
                     message_count = (SELECT count(*) FROM messages WHERE session = ?1)
                 WHERE id = ?1",
            )?
            .execute([id])?;
        Ok(OwnApplied::Applied)
    }

    /// Replaces one stored message of an own session (a tool result that arrived after the
    /// message was stored); bumps the revision. `false` if there is no such message.
    pub fn amend_own_message(&self, gid: &SessionGid, message: &Message) -> Result<bool> {
        let Some(id) = self
            .conn
            .query_row(
                "SELECT id FROM sessions WHERE gid = ?1 AND own = 1",
                [gid.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
        else {
            return Ok(false);
        };
        let ordinal = message.ordinal.min(i64::MAX as u64) as i64;
        // Delete and insert, so that the search index follows.
        self.unindexed.index(&self.conn)?;
        let deleted = self.conn.execute(
            "DELETE FROM messages WHERE session = ?1 AND ordinal = ?2",
            params![id, ordinal],
        )?;
        if deleted == 0 {
            return Ok(false);
        }
        self.insert_message(id, &mut MessageRow::of(message)?)?;
        self.conn.execute(
            "UPDATE sessions SET revision = revision + 1 WHERE id = ?1",
            [id],
        )?;
        Ok(true)
    }

    /// Adds the sessions their origins' buckets list and the archive lacks, with their records
    /// and message counts but no manifest and no messages yet: a list shows them while the
    /// import is on its way, and the import's unit replaces them. A session the archive holds
    /// is left as it is. Returns how many were added.
    pub fn add_listed(&self, listed: &[ListedSession]) -> Result<usize> {
        let mut added = 0;
        for l in listed {
            if !self.has_session(&l.gid)? {
                let count = Some(l.listing.message_count);
                self.upsert_session(&l.gid, false, &l.listing.session, &[], count, None)?;
                added += 1;
            }
        }
        Ok(added)
    }

    /// Applies one imported session: replaces its record and its messages from the unit's
    /// first ordinal on. `own`: a session of this machine restored from the store (a rebuild).
    pub fn apply_unit(&self, unit: &ApplyUnit, own: bool) -> Result<()> {
        self.apply_prepared(&mut PreparedUnit::new(unit.clone())?, own)
    }

    /// [`apply_unit`](Self::apply_unit) for a unit made ready off the writer's thread. The
    /// unit is left spent (its rows' text, without the tool text the index took), for its
    /// maker to free: see [`Archive::apply_prepared_window`].
    pub fn apply_prepared(&self, unit: &mut PreparedUnit, own: bool) -> Result<()> {
        let id = self.upsert_session_encoded(
            &unit.gid,
            own,
            &unit.session,
            [&unit.session_json, &unit.usage_json],
            Some(unit.message_count),
            Some(&unit.manifest.to_string()),
        )?;
        self.replace_messages(id, unit.from_ordinal, &mut unit.rows)
    }

    fn upsert_session(
        &self,
        gid: &SessionGid,
        own: bool,
        session: &Session,
        usage: &[UsageEvent],
        message_count: Option<u64>,
        manifest: Option<&str>,
    ) -> Result<i64> {
        self.upsert_session_encoded(
            gid,
            own,
            session,
            [
                &encode("session", session)?,
                &encode("usage events", &usage)?,
            ],
            message_count,
            manifest,
        )
    }

    /// `json`: the session and its usage events, encoded.
    fn upsert_session_encoded(
        &self,
        gid: &SessionGid,
        own: bool,
        session: &Session,
        [session_json, usage_json]: [&str; 2],
        message_count: Option<u64>,
        manifest: Option<&str>,
    ) -> Result<i64> {
        let id = self
            .conn
            .prepare_cached(
                "INSERT INTO sessions (gid, origin, native_id, own, agent, project, title,
                     first_message, started_ms, ended_ms, message_count, manifest, session_json,
                     usage_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, coalesce(?11, 0), ?12, ?13, ?14)
                 ON CONFLICT (gid) DO UPDATE SET agent = excluded.agent,
                     project = excluded.project, title = excluded.title,
                     first_message = excluded.first_message, started_ms = excluded.started_ms,
                     ended_ms = excluded.ended_ms,
                     message_count = coalesce(?11, message_count),
                     manifest = coalesce(excluded.manifest, manifest),
                     session_json = excluded.session_json, usage_json = excluded.usage_json
                 RETURNING id",
            )?
            .query_row(
                params![
                    gid.to_string(),
                    gid.origin.as_str(),
                    gid.native.as_str(),
                    own,
                    session.agent,
                    session.project,
                    session.title,
                    session.first_message,
                    session.started_ms,
                    session.ended_ms,
                    message_count,
                    manifest,
                    session_json,
                    usage_json,
                ],
                |r| r.get(0),
            )?;
        Ok(id)
    }

    /// Each row's tool text is taken (to be indexed); the rest is left to the caller.
    fn replace_messages(&self, session: i64, from: u64, rows: &mut [MessageRow<'_>]) -> Result<()> {
        let from = from.min(i64::MAX as u64) as i64;
        // Most calls add messages after the last one stored. A delete statement, even one
        // that finds nothing, would write out the search index's pending entries (see
        // `unindexed`), so it runs only when there is something to delete.
        let stored_from: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE session = ?1 AND ordinal >= ?2)",
            )?
            .query_row(params![session, from], |r| r.get(0))?;
        if stored_from {
            self.unindexed.index(&self.conn)?;
            self.conn.execute(
                "DELETE FROM messages WHERE session = ?1 AND ordinal >= ?2",
                params![session, from],
            )?;
        }
        for row in rows {
            self.insert_message(session, row)?;
        }
        Ok(())
    }

    /// Stores a message and indexes it for search: at once outside a transaction, else when the
    /// transaction commits (see `unindexed` for why, and `schema::MESSAGES_FTS` for why not by
    /// a trigger).
    /// The row's tool text is taken, to be indexed; the rest is left to the caller.
    fn insert_message(&self, session: i64, row: &mut MessageRow<'_>) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO messages (session, ordinal, role, timestamp_ms, content, thinking,
                     rest_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                session,
                row.ordinal,
                row.role,
                row.timestamp_ms,
                row.content,
                row.thinking,
                row.rest_json,
            ])?;
        self.unindexed.note(
            self.conn.last_insert_rowid(),
            std::mem::take(&mut row.tools),
        );
        if self.conn.is_autocommit() {
            self.unindexed.index(&self.conn)?;
        }
        Ok(())
    }

    /// Deletes a session and its messages (a purge).
    pub fn delete_session(&self, gid: &SessionGid) -> Result<bool> {
        self.unindexed.index(&self.conn)?;
        Ok(self
            .conn
            .execute("DELETE FROM sessions WHERE gid = ?1", [gid.to_string()])?
            > 0)
    }

    pub fn has_session(&self, gid: &SessionGid) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM sessions WHERE gid = ?1")?
            .query_row([gid.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// How many messages the archive holds of a session (0 for none).
    pub fn message_count(&self, gid: &SessionGid) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT message_count FROM sessions WHERE gid = ?1")?
            .query_row([gid.to_string()], |r| r.get::<_, i64>(0))
            .optional()?
            .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Every own session's native id and revision (export's change markers).
    pub fn own_revisions(&self) -> Result<Vec<(NativeId, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT native_id, revision FROM sessions WHERE own = 1")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (native, revision) = row?;
            out.push((native.parse()?, revision as u64));
        }
        Ok(out)
    }

    /// A session's record and usage events.
    pub fn session_record(&self, gid: &SessionGid) -> Result<(Session, Vec<UsageEvent>)> {
        let (session, usage): (String, String) = self
            .conn
            .query_row(
                "SELECT session_json, usage_json FROM sessions WHERE gid = ?1",
                [gid.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| ArchiveError::NoSuchSession(gid.to_string()))?;
        Ok((
            decode("session", &session)?,
            decode("usage events", &usage)?,
        ))
    }

    /// The `(model, usage)` of every message of a session that has usage, in order, and the
    /// session's usage events: what its token totals and cost are computed from, without
    /// reading message texts.
    pub fn session_usage(&self, gid: &SessionGid) -> Result<(Vec<ModelUsage>, Vec<UsageEvent>)> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT coalesce(json_extract(m.rest_json, '$.model'), ''),
                    json_extract(m.rest_json, '$.usage')
             FROM messages m JOIN sessions s ON s.id = m.session
             WHERE s.gid = ?1 AND json_extract(m.rest_json, '$.usage') IS NOT NULL
             ORDER BY m.ordinal",
        )?;
        let rows = stmt.query_map([gid.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut messages = Vec::new();
        for row in rows {
            let (model, usage) = row?;
            messages.push((model, decode("message usage", &usage)?));
        }
        let (_, events) = self.session_record(gid)?;
        Ok((messages, events))
    }

    /// A session's messages from ordinal `from` on, in order.
    pub fn messages(&self, gid: &SessionGid, from: u64) -> Result<Vec<Message>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.content, m.thinking, m.rest_json FROM messages m
             JOIN sessions s ON s.id = m.session
             WHERE s.gid = ?1 AND m.ordinal >= ?2 ORDER BY m.ordinal",
        )?;
        let rows = stmt.query_map(
            params![gid.to_string(), from.min(i64::MAX as u64) as i64],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (content, thinking, rest) = row?;
            let mut message: Message = match read_canonical_message(rest.as_bytes()) {
                Some(message) => message,
                None => decode("message", &rest)?,
            };
            message.content = content;
            message.thinking = thinking;
            out.push(message);
        }
        Ok(out)
    }

    /// Sessions matching `filter`, newest first.
    pub fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionSummary>> {
        let mut conditions = vec![
            if filter.trashed {
                "coalesce(c.trashed, 0) = 1"
            } else {
                "coalesce(c.trashed, 0) = 0"
            }
            .to_owned(),
        ];
        let mut args: Vec<String> = Vec::new();
        if filter.starred {
            conditions.push("coalesce(c.starred, 0) = 1".into());
        }
        if let Some(tag) = &filter.tag {
            args.push(tag.clone());
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM curation_tags t WHERE t.gid = s.gid AND t.tag = ?{})",
                args.len()
            ));
        }
        if let Some(origin) = &filter.origin {
            args.push(origin.clone());
            conditions.push(format!("s.origin = ?{}", args.len()));
        }
        if let Some(query) = &filter.search {
            args.push(crate::search::fts_query(query));
            let fts = args.len();
            args.push(format!("%{}%", query.to_lowercase()));
            let like = args.len();
            conditions.push(format!(
                "(s.id IN (SELECT m.session FROM messages_fts f JOIN messages m ON m.id = f.rowid
                           WHERE messages_fts MATCH ?{fts})
                  OR lower(coalesce(c.display_name, '') || ' ' || s.title) LIKE ?{like})"
            ));
        }
        let limit = filter
            .limit
            .map(|l| format!("LIMIT {l}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM sessions s LEFT JOIN curation c ON c.gid = s.gid
             WHERE {} ORDER BY s.started_ms DESC, s.gid {limit}",
            conditions.join(" AND ")
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), summary_of)?;
        let mut out = Vec::new();
        for row in rows {
            let (summary, session_json) = row?;
            out.push(with_parent(summary, &session_json)?);
        }
        Ok(out)
    }

    /// One session in full.
    pub fn session_detail(&self, gid: &SessionGid) -> Result<SessionDetail> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, s.usage_json FROM sessions s
             LEFT JOIN curation c ON c.gid = s.gid WHERE s.gid = ?1"
        );
        let (summary, session_json, usage_json) = self
            .conn
            .query_row(&sql, [gid.to_string()], |r| {
                let (summary, session_json) = summary_of(r)?;
                Ok((summary, session_json, r.get::<_, String>(17)?))
            })
            .optional()?
            .ok_or_else(|| ArchiveError::NoSuchSession(gid.to_string()))?;
        Ok(SessionDetail {
            summary: with_parent(summary, &session_json)?,
            session: decode("session", &session_json)?,
            usage_events: decode("usage events", &usage_json)?,
            pins: self.pins(gid)?,
            messages: self.messages(gid, 0)?,
        })
    }

    /// The session a user means by `query`: a full id, a native id, or a unique prefix of
    /// either.
    pub fn resolve(&self, query: &str) -> Result<SessionGid> {
        let exact: Option<String> = self
            .conn
            .query_row("SELECT gid FROM sessions WHERE gid = ?1", [query], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(gid) = exact {
            return Ok(gid.parse()?);
        }
        for sql in [
            "SELECT gid FROM sessions WHERE native_id = ?1 ORDER BY gid LIMIT 3",
            "SELECT gid FROM sessions WHERE substr(gid, 1, length(?1)) = ?1
                 OR substr(native_id, 1, length(?1)) = ?1 ORDER BY gid LIMIT 3",
        ] {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let found: Vec<String> = stmt
                .query_map([query], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            match found.len() {
                0 => continue,
                1 => return Ok(found[0].parse()?),
                count => {
                    return Err(ArchiveError::AmbiguousSession {
                        query: query.to_owned(),
                        count,
                        example: found[0].clone(),
                    });
                }
            }
        }
        Err(ArchiveError::NoSuchSession(query.to_owned()))
    }

    /// Sessions and messages held per origin.
    pub fn origin_counts(&self) -> Result<Vec<OriginCount>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT origin, count(*), coalesce(sum(message_count), 0) FROM sessions
             GROUP BY origin ORDER BY origin",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OriginCount {
                origin: r.get(0)?,
                sessions: r.get(1)?,
                messages: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
