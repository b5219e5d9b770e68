//! Rebuilding an archive whose database is damaged or gone (DESIGN edge case 15: a rebuild
//! must not lose sync state). What only this machine knows (its identity, the engines'
//! states, the event log, sync history) is copied out of the old database table by table,
//! each as far as it can be read; everything else comes back from the local store (the
//! host runs an import that includes this machine's own sessions) and from the logs.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde::Serialize;

use crate::Archive;
use crate::error::Result;

/// The sync-state tables a rebuild carries over, with their columns. `conflicts` and
/// `problems` are left behind: the ledger replay and the next sync make them again.
const CARRIED: &[(&str, &str)] = &[
    ("identity", "id, origin, secret, created_ms"),
    ("sync_state", "name, json"),
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
        self.transaction(|a| crate::schema::forget_imported_sessions(&a.conn))?;
        Ok(out)
    }

    /// Own sessions restored from the store whose manifest is the one the export state last
    /// published get that export's change marker as their revision: export then sees them
    /// unchanged instead of publishing them all again.
    pub fn adopt_export_markers(&self) -> Result<u64> {
        use agentsync_core::sync::export::ExportState;
        let Some(export) = self.state::<ExportState>("export")? else {
            return Ok(0);
        };
        let mut update = self.conn.prepare(
            "UPDATE sessions SET revision = ?1
             WHERE own = 1 AND native_id = ?2 AND manifest = ?3",
        )?;
        let mut adopted = 0;
        for (native, exported) in &export.sessions {
            let Ok(revision) = exported.marker.parse::<i64>() else {
                continue;
            };
            adopted += update.execute(rusqlite::params![
                revision,
                native.as_str(),
                exported.manifest.to_string()
            ])? as u64;
        }
        Ok(adopted)
    }
}

/// Every row of `table` that can be read, and why the rest could not.
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
