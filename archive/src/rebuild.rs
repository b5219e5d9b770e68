//! Rebuilding an archive whose database is damaged or gone (DESIGN edge case 15: a rebuild
//! must not lose sync state). What only this machine knows (its identity, the engines'
//! states, the event log, sync history) is copied out of the old database table by table,
//! each as far as it can be read; everything else comes back from the local store (the
//! host runs an import that includes this machine's own sessions) and from the logs.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde::Serialize;

use agentsync_core::SessionGid;

use crate::Archive;
use crate::error::Result;

/// The sync-state tables a rebuild carries over, with their columns. `conflicts` and
/// `problems` are left behind: the ledger replay and the next sync make them again.
const CARRIED: &[(&str, &str)] = &[
    ("identity", "id, origin, secret, created_ms"),
    ("sync_state", "name, json"),
    ("export_sessions", "native_id, json"),
    (
        "ledger_events",
        "origin, id, hlc, json, published, deferred",
    ),
    ("sync_runs", "id, target, finished_ms, report"),
    ("mirror", "key, bytes, modified_ms"),
];

/// What was read of one table of the old database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalvagedTable {
    pub table: &'static str,
    pub rows: u64,
    /// Why the table (or its rows after `rows`) could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
}

impl Archive {
    /// Copies the sync state of the database at `old` into this archive, which must be new.
    /// Each table is read on its own and as far as it can be: a damaged page costs the rows
    /// behind it, not the rest. The import state then forgets the sessions it had imported
    /// (the derived tables they lived in are empty here), keeping pinned keys and the event
    /// batches handled, like [`Archive::rebuild_derived`].
    pub fn salvage_sync_state(&mut self, old: &Path) -> Result<Vec<SalvagedTable>> {
        let source = Connection::open_with_flags(
            old,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        );
        let mut out = Vec::new();
        let source = match source {
            Ok(c) => c,
            Err(e) => {
                return Ok(CARRIED
                    .iter()
                    .map(|(table, _)| SalvagedTable {
                        table,
                        rows: 0,
                        lost: Some(e.to_string()),
                    })
                    .collect());
            }
        };
        for (table, columns) in CARRIED {
            let (rows, lost) = read_rows(&source, table, columns);
            self.transaction(|a| {
                let marks = vec!["?"; columns.split(',').count()].join(", ");
                let mut insert = a.conn.prepare(&format!(
                    "INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})"
                ))?;
                for row in &rows {
                    insert.execute(params_from_iter(row.iter()))?;
                }
                Ok(())
            })?;
            out.push(SalvagedTable {
                table,
                rows: rows.len() as u64,
                lost,
            });
        }
        // SQLite checks pages, not what a row says: a state or event that no longer decodes
        // is dropped here (and reported), not left to stop every later command.
        let dropped_states = self.drop_undecodable_states()?;
        let dropped_exported = self.drop_undecodable_exported_sessions()?;
        let dropped_events = self.drop_undecodable_events()?;
        // An export state saved whole by an older version becomes a head and its rows.
        self.transaction(|a| crate::export_state::split_saved_export_state(&a.conn))?;
        for table in &mut out {
            let dropped = match table.table {
                "sync_state" => &dropped_states,
                "export_sessions" => &dropped_exported,
                "ledger_events" => &dropped_events,
                _ => continue,
            };
            if !dropped.is_empty() {
                table.rows -= dropped.len() as u64;
                let note = format!("{} did not decode", dropped.join(", "));
                table.lost = Some(match table.lost.take() {
                    Some(lost) => format!("{lost}; {note}"),
                    None => note,
                });
            }
        }
        let events_lost = out
            .iter()
            .any(|t| matches!(t.table, "sync_state" | "ledger_events") && t.lost.is_some());
        self.transaction(|a| {
            crate::schema::forget_imported_sessions(&a.conn)?;
            if events_lost {
                a.forget_handled_batches()?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every engine state row that does not decode as what it holds is deleted; their names.
    fn drop_undecodable_states(&self) -> Result<Vec<String>> {
        use agentsync_core::Hlc;
        use agentsync_core::ledger::LedgerState;
        use agentsync_core::sync::export::ExportState;
        use agentsync_core::sync::import::ImportState;
        let rows: Vec<(String, String)> = {
            let mut stmt = self.conn.prepare("SELECT name, json FROM sync_state")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut dropped = Vec::new();
        for (name, json) in rows {
            let decodes = match name.as_str() {
                "export" => serde_json::from_str::<ExportState>(&json).is_ok(),
                "import" => serde_json::from_str::<ImportState>(&json).is_ok(),
                "ledger" => serde_json::from_str::<LedgerState>(&json).is_ok(),
                "clock" => serde_json::from_str::<Hlc>(&json).is_ok(),
                _ => serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            };
            if !decodes {
                self.conn
                    .execute("DELETE FROM sync_state WHERE name = ?1", [&name])?;
                dropped.push(format!("state {name}"));
            }
        }
        Ok(dropped)
    }

    /// Every exported-session row that does not decode is deleted; their sessions. (Export
    /// then takes those sessions for new ones and publishes them again: the same artifacts.)
    fn drop_undecodable_exported_sessions(&self) -> Result<Vec<String>> {
        use agentsync_core::NativeId;
        use agentsync_core::sync::export::ExportedSession;
        let rows: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT native_id, json FROM export_sessions")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut dropped = Vec::new();
        for (native, json) in rows {
            if native.parse::<NativeId>().is_err()
                || serde_json::from_str::<ExportedSession>(&json).is_err()
            {
                self.conn.execute(
                    "DELETE FROM export_sessions WHERE native_id = ?1",
                    [&native],
                )?;
                dropped.push(format!("exported session {native}"));
            }
        }
        Ok(dropped)
    }

    /// Every event row that does not decode is deleted; their ids.
    fn drop_undecodable_events(&self) -> Result<Vec<String>> {
        use agentsync_core::ledger::SignedEvent;
        let rows: Vec<(String, String, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT origin, id, json FROM ledger_events")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut dropped = Vec::new();
        for (origin, id, json) in rows {
            if serde_json::from_str::<SignedEvent>(&json).is_err() {
                self.conn.execute(
                    "DELETE FROM ledger_events WHERE origin = ?1 AND id = ?2",
                    [&origin, &id],
                )?;
                dropped.push(format!("event {origin}/{id}"));
            }
        }
        Ok(dropped)
    }

    /// The import state forgets which edit batches it handled, so the next import fetches
    /// them all again: the events they carried may be among what could not be carried over
    /// (replaying an event twice changes nothing).
    fn forget_handled_batches(&self) -> Result<()> {
        use agentsync_core::sync::import::ImportState;
        let Some(mut state) = self.state::<ImportState>("import")? else {
            return Ok(());
        };
        for progress in state.origins.values_mut() {
            progress.events_seen.clear();
            progress.events_root = None;
        }
        self.set_state("import", &state)
    }

    /// Own sessions restored from the store whose manifest is the one the export state last
    /// published get that export's change marker as their revision: export then sees them
    /// unchanged instead of publishing them all again. Every other own session gets a
    /// revision above every marker, so export never takes it for one it published.
    pub fn adopt_export_markers(&self) -> Result<u64> {
        let export = self.export_state()?;
        let markers: Vec<(String, i64, String)> = export
            .iter()
            .flat_map(|e| &e.sessions)
            .filter_map(|(native, exported)| {
                let revision = exported.marker.parse::<i64>().ok()?;
                Some((native.to_string(), revision, exported.manifest.to_string()))
            })
            .collect();
        let above = markers.iter().map(|(_, r, _)| *r).max().unwrap_or(0) + 1;
        self.conn
            .execute("UPDATE sessions SET revision = ?1 WHERE own = 1", [above])?;
        let mut update = self.conn.prepare(
            "UPDATE sessions SET revision = ?1
             WHERE own = 1 AND native_id = ?2 AND manifest = ?3",
        )?;
        let mut adopted = 0;
        for (native, revision, manifest) in &markers {
            adopted += update.execute(rusqlite::params![revision, native, manifest])? as u64;
        }
        Ok(adopted)
    }

    /// Copies the sessions of the old database that this archive lacks (and the ledger has
    /// not purged), with their messages: what the store could not bring back (sessions never
    /// published, a revoked origin's, those whose artifacts are quarantined). Each session is
    /// read on its own; one on a damaged page is reported, not the end of the rest.
    pub fn salvage_missing_sessions(
        &mut self,
        old: &Path,
        purged: &dyn Fn(&SessionGid) -> bool,
    ) -> Result<SalvagedSessions> {
        let mut out = SalvagedSessions::default();
        let source = match Connection::open_with_flags(old, OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(c) => c,
            Err(e) => {
                out.lost = Some(e.to_string());
                return Ok(out);
            }
        };
        let (rows, lost) = read_rows(&source, "sessions", SESSION_COLUMNS);
        out.lost = lost;
        for row in rows {
            let Some(Value::Text(gid)) = row.get(1) else {
                continue;
            };
            let Ok(parsed) = gid.parse::<SessionGid>() else {
                continue;
            };
            if purged(&parsed) || self.has_session(&parsed)? {
                continue;
            }
            let Some(Value::Integer(old_id)) = row.first() else {
                continue;
            };
            let (messages, lost) = read_rows(
                &source,
                &format!("messages WHERE session = {old_id}"),
                MESSAGE_COLUMNS,
            );
            if let Some(lost) = lost {
                out.lost = Some(format!("session {gid}: {lost}"));
            }
            self.transaction(|a| {
                let marks = vec!["?"; SESSION_COLUMNS.split(',').count() - 1].join(", ");
                let columns = SESSION_COLUMNS.split_once(',').map_or("", |(_, rest)| rest);
                let id: i64 = a.conn.query_row(
                    &format!("INSERT INTO sessions ({columns}) VALUES ({marks}) RETURNING id"),
                    params_from_iter(row[1..].iter()),
                    |r| r.get(0),
                )?;
                let marks = vec!["?"; MESSAGE_COLUMNS.split(',').count()].join(", ");
                let mut insert = a.conn.prepare(&format!(
                    "INSERT INTO messages (session, {MESSAGE_COLUMNS}) VALUES (?, {marks})"
                ))?;
                for m in &messages {
                    let values = std::iter::once(Value::Integer(id)).chain(m.iter().cloned());
                    insert.execute(params_from_iter(values))?;
                }
                a.conn.execute(
                    "UPDATE sessions SET message_count =
                         (SELECT count(*) FROM messages WHERE session = ?1) WHERE id = ?1",
                    [id],
                )?;
                a.conn.execute(
                    "INSERT INTO messages_fts (rowid, content, thinking, tools)
                     SELECT id, content, thinking, tool_text(rest_json) FROM messages
                     WHERE session = ?1",
                    [id],
                )?;
                Ok(())
            })?;
            out.sessions += 1;
            out.messages += messages.len() as u64;
        }
        Ok(out)
    }
}

/// The old database's sessions the store did not bring back, copied over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SalvagedSessions {
    pub sessions: u64,
    pub messages: u64,
    /// Why some could not be read (the first reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
}

const SESSION_COLUMNS: &str = "id, gid, origin, native_id, own, agent, project, title, \
    first_message, started_ms, ended_ms, message_count, revision, manifest, session_json, \
    usage_json";
const MESSAGE_COLUMNS: &str = "ordinal, role, timestamp_ms, content, thinking, rest_json";

/// Every row of `table` (a table name, or one with a `WHERE` clause) that can be read, and
/// why the rest could not.
fn read_rows(source: &Connection, table: &str, columns: &str) -> (Vec<Vec<Value>>, Option<String>) {
    let width = columns.split(',').count();
    let mut rows = Vec::new();
    let mut statement = match source.prepare(&format!("SELECT {columns} FROM {table}")) {
        Ok(s) => s,
        // A table an older schema did not have yet holds nothing to lose.
        Err(e) if e.to_string().starts_with("no such table") => return (rows, None),
        Err(e) => return (rows, Some(e.to_string())),
    };
    let mut cursor = match statement.query([]) {
        Ok(c) => c,
        Err(e) => return (rows, Some(e.to_string())),
    };
    loop {
        match cursor.next() {
            Ok(Some(row)) => {
                let values: rusqlite::Result<Vec<Value>> = (0..width).map(|i| row.get(i)).collect();
                match values {
                    Ok(v) => rows.push(v),
                    Err(e) => return (rows, Some(e.to_string())),
                }
            }
            Ok(None) => return (rows, None),
            Err(e) => return (rows, Some(e.to_string())),
        }
    }
}
