//! Ingest progress per log file: what was read, so an unchanged file costs one `stat` and an
//! appended one is read from where the last pass stopped.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use crate::Archive;
use crate::error::Result;

/// What the last pass over one log file saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub path: String,
    /// `claude` or `codex`.
    pub format: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub native_id: Option<String>,
    /// The parser's resume state, as JSON (the host owns its shape).
    pub resume_json: String,
    /// Messages wait in the resume state to be published once the file settles.
    pub holding: bool,
}

/// What the last pass saw of a file without its resume state: enough to tell that it is
/// unchanged, which is all a pass needs of most files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStamp {
    pub format: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub holding: bool,
}

impl SourceRow {
    pub fn stamp(&self) -> SourceStamp {
        SourceStamp {
            format: self.format.clone(),
            size: self.size,
            mtime_ns: self.mtime_ns,
            inode: self.inode,
            holding: self.holding,
        }
    }
}

/// A `sources` row selected as `path, format, size, mtime_ns, inode, native_id, resume_json,
/// holding`.
fn source_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SourceRow> {
    Ok(SourceRow {
        path: r.get(0)?,
        format: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        mtime_ns: r.get(3)?,
        inode: r.get::<_, i64>(4)? as u64,
        native_id: r.get(5)?,
        resume_json: r.get(6)?,
        holding: r.get(7)?,
    })
}

impl Archive {
    pub fn source(&self, path: &str) -> Result<Option<SourceRow>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT path, format, size, mtime_ns, inode, native_id, resume_json, holding
                 FROM sources WHERE path = ?1",
            )?
            .query_row([path], source_row)
            .optional()?)
    }

    /// Every log read, by path.
    pub fn sources(&self) -> Result<Vec<SourceRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, format, size, mtime_ns, inode, native_id, resume_json, holding
             FROM sources ORDER BY path",
        )?;
        let rows = stmt.query_map([], source_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every log read, by path, without resume states (a few KB each: most of a no-op pass's
    /// reading when it loaded them all).
    pub fn source_stamps(&self) -> Result<HashMap<String, SourceStamp>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, format, size, mtime_ns, inode, holding FROM sources")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                SourceStamp {
                    format: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    mtime_ns: r.get(3)?,
                    inode: r.get::<_, i64>(4)? as u64,
                    holding: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_source(&self, row: &SourceRow) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO sources (path, format, size, mtime_ns, inode, native_id,
                     resume_json, holding)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (path) DO UPDATE SET format = excluded.format,
                     size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,
                     native_id = excluded.native_id, resume_json = excluded.resume_json,
                     holding = excluded.holding",
            )?
            .execute(params![
                row.path,
                row.format,
                row.size as i64,
                row.mtime_ns,
                row.inode as i64,
                row.native_id,
                row.resume_json,
                row.holding
            ])?;
        Ok(())
    }
}
