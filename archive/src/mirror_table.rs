//! A machine's local mirror of artifacts kept in the archive database, for hosts without a
//! file system of their own (the browser keeps its database in OPFS). The CLI keeps its mirror
//! in a folder instead; both are the same dumb [`Store`] to the engine.

use agentsync_core::sync::store::{Bounded, ListPage, Listing, PutOutcome, Store, StoreError};
use rusqlite::{OptionalExtension, params};

use crate::Archive;

/// Keys per listing page, as an S3 bucket pages them.
const PAGE: i64 = 1000;

/// The mirror table of an open archive. `now_ms` stamps what it writes (the host's clock).
pub struct MirrorTable<'a> {
    archive: &'a Archive,
    now_ms: u64,
}

impl Archive {
    pub fn mirror_table(&self, now_ms: u64) -> MirrorTable<'_> {
        MirrorTable {
            archive: self,
            now_ms,
        }
    }
}

fn failed(op: &str, key: &str, e: rusqlite::Error) -> StoreError {
    StoreError {
        op: op.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
        transient: false,
    }
}

impl Store for MirrorTable<'_> {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError> {
        let after = start_after.unwrap_or("");
        let mut stmt = self
            .archive
            .conn
            .prepare_cached(
                "SELECT key, modified_ms, length(bytes) FROM mirror
                 WHERE key > ?1 AND key >= ?2 AND key < ?2 || char(65535)
                 ORDER BY key LIMIT ?3",
            )
            .map_err(|e| failed("list", prefix, e))?;
        let mut entries = stmt
            .query_map(params![after, prefix, PAGE + 1], |r| {
                Ok(Listing {
                    key: r.get(0)?,
                    modified_ms: Some(r.get::<_, i64>(1)?.max(0) as u64),
                    size: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| failed("list", prefix, e))?;
        let truncated = entries.len() as i64 > PAGE;
        entries.truncate(PAGE as usize);
        Ok(ListPage { entries, truncated })
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.archive
            .conn
            .query_row("SELECT bytes FROM mirror WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| failed("get", key, e))
    }

    fn get_bounded(&mut self, key: &str, max_bytes: u64) -> Result<Bounded, StoreError> {
        let size: Option<i64> = self
            .archive
            .conn
            .query_row(
                "SELECT length(bytes) FROM mirror WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| failed("get", key, e))?;
        match size {
            None => Ok(Bounded::Missing),
            Some(size) if size.max(0) as u64 > max_bytes => Ok(Bounded::TooLarge(size as u64)),
            Some(_) => Ok(self.get(key)?.map_or(Bounded::Missing, Bounded::Bytes)),
        }
    }

    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let created = self
            .archive
            .conn
            .execute(
                "INSERT INTO mirror (key, bytes, modified_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO NOTHING",
                params![key, bytes, self.now_ms as i64],
            )
            .map_err(|e| failed("put", key, e))?;
        if created == 1 {
            return Ok(PutOutcome::Created);
        }
        Ok(match self.get(key)? {
            Some(stored) if stored == bytes => PutOutcome::Exists,
            _ => PutOutcome::Differs,
        })
    }

    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.archive
            .conn
            .execute(
                "INSERT INTO mirror (key, bytes, modified_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET bytes = excluded.bytes,
                     modified_ms = excluded.modified_ms",
                params![key, bytes, self.now_ms as i64],
            )
            .map(|_| ())
            .map_err(|e| failed("replace", key, e))
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.archive
            .conn
            .execute("DELETE FROM mirror WHERE key = ?1", [key])
            .map(|_| ())
            .map_err(|e| failed("delete", key, e))
    }
}
