//! The export engine's state, kept as its head (a `sync_state` row) and one row per exported
//! session (`export_sessions`). At 10 k sessions the state is megabytes of JSON; a sync that
//! appends one message changes one session of it, and writes just that row and the head
//! ([`ExportChange`]).

use agentsync_core::NativeId;
use agentsync_core::sync::export::{ExportChange, ExportState, ExportedSession};
use rusqlite::{Connection, OptionalExtension, params};

use crate::Archive;
use crate::error::{Result, decode, encode};

/// The `sync_state` row of the head.
const HEAD: &str = "export";

pub(crate) const EXPORT_SESSIONS: &str = "
CREATE TABLE IF NOT EXISTS export_sessions (
    native_id TEXT PRIMARY KEY,
    json TEXT NOT NULL
);
";

impl Archive {
    /// The export state as the last run left it (`None` before the first export).
    pub fn export_state(&self) -> Result<Option<ExportState>> {
        let Some(head) = self.state::<ExportState>(HEAD)? else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT native_id, json FROM export_sessions")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut sessions = Vec::new();
        for row in rows {
            let (native, json) = row?;
            let native: NativeId = native.parse()?;
            let exported: ExportedSession = decode("exported session", &json)?;
            sessions.push((native, exported));
        }
        Ok(Some(ExportState::from_parts(head, sessions)))
    }

    /// Persists what an export run changed ([`ExportChange`]); call it in a transaction.
    pub(crate) fn store_export_change(&self, change: &ExportChange) -> Result<()> {
        // A run that started without a state exported every session it keeps: rows left by a
        // state that is gone (dropped by a salvage as undecodable) must not come back with it.
        if self.state::<serde_json::Value>(HEAD)?.is_none() {
            self.conn.execute("DELETE FROM export_sessions", [])?;
        }
        self.set_state(HEAD, &change.head)?;
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO export_sessions (native_id, json) VALUES (?1, ?2)
             ON CONFLICT (native_id) DO UPDATE SET json = excluded.json",
        )?;
        let mut delete = self
            .conn
            .prepare_cached("DELETE FROM export_sessions WHERE native_id = ?1")?;
        for (native, exported) in &change.sessions {
            match exported {
                Some(exported) => upsert.execute(params![
                    native.as_str(),
                    encode("exported session", exported)?
                ])?,
                None => delete.execute([native.as_str()])?,
            };
        }
        Ok(())
    }
}

/// Issue 14: an export state saved whole (one `sync_state` row) becomes its head and one row
/// per session. A row that does not decode is left as it is, for a rebuild to report.
pub(crate) fn split_saved_export_state(conn: &Connection) -> Result<()> {
    conn.execute_batch(EXPORT_SESSIONS)?;
    let json: Option<String> = conn
        .query_row("SELECT json FROM sync_state WHERE name = ?1", [HEAD], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(state) = json.and_then(|j| serde_json::from_str::<ExportState>(&j).ok()) else {
        return Ok(());
    };
    let mut insert =
        conn.prepare("INSERT OR REPLACE INTO export_sessions (native_id, json) VALUES (?1, ?2)")?;
    for (native, exported) in &state.sessions {
        insert.execute(params![
            native.as_str(),
            encode("exported session", exported)?
        ])?;
    }
    conn.execute(
        "UPDATE sync_state SET json = ?2 WHERE name = ?1",
        params![HEAD, encode(HEAD, &state.head())?],
    )?;
    Ok(())
}
