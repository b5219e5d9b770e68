//! What only this machine knows: its identity, the engines' persisted states, the event log,
//! the problems of the last sync and the history of syncs. None of it is derived; a rebuild of
//! the derived tables keeps it all.

use agentsync_core::ledger::SignedEvent;
use agentsync_core::sync::import::ImportState;
use agentsync_core::sync::problem::{Disposition, Problem};
use agentsync_core::{KeyRing, OriginId, OriginKey};
use rusqlite::{OptionalExtension, params};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Archive;
use crate::error::{Result, decode, encode};

/// An artifact the last sync could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemRow {
    pub key: String,
    /// Quarantined (corrupt: never used until a good copy arrives) or deferred (not yet
    /// usable: missing, or of a newer version).
    pub state: Disposition,
    pub class: String,
    pub reason: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

/// One finished sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRun {
    pub target: String,
    pub finished_ms: i64,
    pub report: serde_json::Value,
}

impl Archive {
    /// This machine's origin and signing key, once created.
    pub fn identity(&self) -> Result<Option<(OriginId, OriginKey)>> {
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT origin, secret FROM identity WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((origin, secret)) = row else {
            return Ok(None);
        };
        let origin: OriginId = origin.parse()?;
        let secret: [u8; 32] = secret
            .try_into()
            .map_err(|_| crate::ArchiveError::BadIdentity)?;
        Ok(Some((origin, OriginKey::from_secret(secret))))
    }

    /// Stores the identity unless one exists; returns the one that is stored. Two processes
    /// racing here end with the same identity: the first insert wins, the second reads it.
    pub fn create_identity(
        &self,
        origin: &OriginId,
        key: &OriginKey,
        now_ms: i64,
    ) -> Result<(OriginId, OriginKey)> {
        self.conn.execute(
            "INSERT OR IGNORE INTO identity (id, origin, secret, created_ms) VALUES (1, ?1, ?2, ?3)",
            params![origin.as_str(), key.secret().to_vec(), now_ms],
        )?;
        self.identity()?
            .ok_or_else(|| crate::ArchiveError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// A persisted engine state (`export`, `import`, `ledger`, `clock`, …).
    pub fn state<T: DeserializeOwned>(&self, name: &'static str) -> Result<Option<T>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT json FROM sync_state WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        json.map(|j| decode(name, &j)).transpose()
    }

    pub fn set_state<T: Serialize>(&self, name: &'static str, value: &T) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sync_state (name, json) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET json = excluded.json",
            params![name, encode(name, value)?],
        )?;
        Ok(())
    }

    pub fn clear_state(&self, name: &'static str) -> Result<()> {
        self.conn
            .execute("DELETE FROM sync_state WHERE name = ?1", [name])?;
        Ok(())
    }

    /// The pinned origin keys: trust on first use, and the user's decisions since.
    pub fn keyring(&self) -> Result<KeyRing> {
        Ok(self
            .state::<ImportState>("import")?
            .unwrap_or_default()
            .keyring)
    }

    /// Records a trust decision ([`ImportState::trust`], [`ImportState::revoke`]) in one
    /// transaction; the pinned keys after it.
    pub fn decide_trust(&mut self, decide: impl FnOnce(&mut ImportState)) -> Result<KeyRing> {
        self.transaction(|a| {
            let mut import: ImportState = a.state("import")?.unwrap_or_default();
            decide(&mut import);
            a.set_state("import", &import)?;
            Ok(import.keyring)
        })
    }

    /// Adds events to the log (duplicates are ignored). Own events start unpublished.
    pub fn insert_events(&self, events: &[SignedEvent], published: bool) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO ledger_events (origin, id, hlc, json, published)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut added = 0;
        for e in events {
            added += stmt.execute(params![
                e.origin.as_str(),
                e.id.to_string(),
                e.event.hlc.to_string(),
                encode("event", e)?,
                published,
            ])?;
        }
        Ok(added)
    }

    /// Own events not yet written to a store, in HLC order.
    pub fn unpublished_events(&self) -> Result<Vec<SignedEvent>> {
        self.events_where("published = 0")
    }

    /// Every event in the log (for a replay from scratch).
    pub fn all_events(&self) -> Result<Vec<SignedEvent>> {
        self.events_where("1")
    }

    /// Events the last replay deferred, to offer again.
    pub fn deferred_events(&self) -> Result<Vec<SignedEvent>> {
        self.events_where("deferred IS NOT NULL")
    }

    fn events_where(&self, condition: &str) -> Result<Vec<SignedEvent>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT json FROM ledger_events WHERE {condition} ORDER BY hlc, origin, id"
        ))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|json| decode("event", &json?)).collect()
    }

    pub fn mark_published(&self, events: &[SignedEvent]) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE ledger_events SET published = 1 WHERE origin = ?1 AND id = ?2",
        )?;
        for e in events {
            stmt.execute(params![e.origin.as_str(), e.id.to_string()])?;
        }
        Ok(())
    }

    /// Records which events the last replay deferred (and why); clears the rest.
    pub fn set_deferred_events(&self, deferred: &[(SignedEvent, serde_json::Value)]) -> Result<()> {
        self.conn.execute(
            "UPDATE ledger_events SET deferred = NULL WHERE deferred IS NOT NULL",
            [],
        )?;
        let mut stmt = self.conn.prepare_cached(
            "UPDATE ledger_events SET deferred = ?3 WHERE origin = ?1 AND id = ?2",
        )?;
        for (e, reason) in deferred {
            stmt.execute(params![
                e.origin.as_str(),
                e.id.to_string(),
                reason.to_string()
            ])?;
        }
        Ok(())
    }

    pub fn count_deferred_events(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM ledger_events WHERE deferred IS NOT NULL",
            [],
            |r| r.get(0),
        )?)
    }

    /// Replaces the problem list with what the last sync found, keeping when each was first
    /// seen. A key that is no longer a problem (a good copy arrived) disappears.
    pub fn set_problems(&self, problems: &[Problem], now_ms: i64) -> Result<()> {
        self.conn
            .execute("UPDATE problems SET last_seen_ms = -1", [])?;
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO problems (key, state, class, reason, first_seen_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (key) DO UPDATE SET state = excluded.state, class = excluded.class,
                 reason = excluded.reason, last_seen_ms = excluded.last_seen_ms",
        )?;
        // A key both quarantined (by one pass) and deferred (by another) is quarantined.
        for state in [Disposition::Deferred, Disposition::Quarantined] {
            for p in problems.iter().filter(|p| p.disposition == state) {
                stmt.execute(params![
                    p.key,
                    state.name(),
                    p.class.name(),
                    p.reason,
                    now_ms
                ])?;
            }
        }
        self.conn
            .execute("DELETE FROM problems WHERE last_seen_ms = -1", [])?;
        Ok(())
    }

    /// Forgets a recorded problem that was resolved by hand (an unpublishable edit dropped).
    pub fn forget_problem(&self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM problems WHERE key = ?1", params![key])?;
        Ok(())
    }

    pub fn problems(&self) -> Result<Vec<ProblemRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, state, class, reason, first_seen_ms, last_seen_ms FROM problems
             ORDER BY state, key",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ProblemRow {
                key: r.get(0)?,
                state: r.get::<_, String>(1)?.parse().map_err(|e: String| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?,
                class: r.get(2)?,
                reason: r.get(3)?,
                first_seen_ms: r.get(4)?,
                last_seen_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn record_sync(&self, run: &SyncRun) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sync_runs (target, finished_ms, report) VALUES (?1, ?2, ?3)",
            params![run.target, run.finished_ms, run.report.to_string()],
        )?;
        Ok(())
    }

    pub fn last_sync(&self) -> Result<Option<SyncRun>> {
        let row: Option<(String, i64, String)> = self
            .conn
            .query_row(
                "SELECT target, finished_ms, report FROM sync_runs ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(target, finished_ms, report)| {
            Ok(SyncRun {
                target,
                finished_ms,
                report: decode("sync report", &report)?,
            })
        })
        .transpose()
    }
}
