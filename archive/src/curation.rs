//! Curation: the ledger's state, the local edits that extend it, and its projection onto rows
//! (names, stars, trash, tags, pins, notes) and conflicts.
//!
//! The core decides every winner ([`LedgerState`]); this module stores the state and mirrors the
//! winners into tables a list can join. Conflicts are stored per field and replaced whenever a
//! replay touches the field, so they are always the register's own conflict set.

use agentsync_core::ledger::SignedEvent;
use agentsync_core::ledger::{Entry, PinValue, Register, Value};
use agentsync_core::{
    Anchor, Field, Hlc, HlcClock, LedgerState, Op, OriginId, Projection, Replay, SessionGid,
};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::Archive;
use crate::error::{ArchiveError, Result, decode, encode};

/// A pinned message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRow {
    /// `uuid:<source uuid>` or `ord:<ordinal>`.
    pub anchor: String,
    pub ordinal: Option<u64>,
    pub source_uuid: String,
    pub note: String,
}

/// One side of a conflict: the value and who wrote it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictSide {
    pub value: serde_json::Value,
    pub hlc: String,
    pub origin: String,
}

/// A concurrent edit that lost, kept visible. The same on every machine with the same events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRow {
    pub session: String,
    pub field: String,
    pub winner: ConflictSide,
    pub loser: ConflictSide,
}

/// A value as users read it: text, a flag, a pin (or `null` when unpinned).
fn plain(value: &Value) -> serde_json::Value {
    match value {
        Value::Text(t) => serde_json::Value::String(t.clone()),
        Value::Flag(f) => serde_json::Value::Bool(*f),
        Value::Pin(None) => serde_json::Value::Null,
        Value::Pin(Some(pin)) => serde_json::json!({
            "ordinal": pin.anchor.ordinal,
            "source_uuid": pin.anchor.source_uuid,
            "note": pin.note,
        }),
    }
}

/// The value a field has before any event wrote it.
fn is_default(value: &Value) -> bool {
    match value {
        Value::Text(t) => t.is_empty(),
        Value::Flag(f) => !f,
        Value::Pin(p) => p.is_none(),
    }
}

fn side(entry: &Entry) -> ConflictSide {
    ConflictSide {
        value: plain(&entry.value),
        hlc: entry.key.hlc.to_string(),
        origin: entry.key.origin.to_string(),
    }
}

impl Archive {
    /// The ledger as of the last replay or edit.
    pub fn ledger(&self) -> Result<LedgerState> {
        Ok(self.state("ledger")?.unwrap_or_default())
    }

    /// The HLC clock, resumed after the last time it handed out or observed.
    pub fn clock(&self) -> Result<HlcClock> {
        Ok(match self.state::<Hlc>("clock")? {
            Some(last) => HlcClock::resume(last),
            None => HlcClock::default(),
        })
    }

    fn save_ledger(&self, ledger: &LedgerState, clock: &HlcClock) -> Result<()> {
        self.set_state("ledger", ledger)?;
        self.set_state("clock", &clock.last())
    }

    /// Records a local edit: one event, applied through the ledger like a remote one, and kept
    /// unpublished until the next sync writes it out. An edit that changes nothing (starring a
    /// starred session, removing an absent tag) records nothing and returns `None`, unless the
    /// field is in conflict: then it is the user's way of confirming the value, and is kept.
    pub fn edit(
        &mut self,
        origin: &OriginId,
        wall_ms: u64,
        session: &SessionGid,
        op: Op,
    ) -> Result<Option<SignedEvent>> {
        self.transaction(|a| {
            if !a.has_session(session)? {
                return Err(ArchiveError::NoSuchSession(session.to_string()));
            }
            // Compared as the ledger will record it (`-Bug` removes `bug`).
            let op = op
                .normalized()
                .map_err(agentsync_core::ledger::EditError::Invalid)?;
            let mut ledger = a.ledger()?;
            if let Some((field, value)) = agentsync_core::ledger::field_value(&op) {
                let unchanged = match ledger.register(session, &field) {
                    Some(r) => r.winner.value == value && r.conflicts().next().is_none(),
                    None => is_default(&value),
                };
                if unchanged {
                    return Ok(None);
                }
            }
            let mut clock = a.clock()?;
            let event = ledger.edit(&mut clock, wall_ms, origin, session.clone(), op)?;
            a.insert_events(std::slice::from_ref(&event), false)?;
            match agentsync_core::ledger::field_value(&event.event.op) {
                Some((Field::Purged, _)) => a.purge_rows(session)?,
                Some((field, _)) => a.refresh_field(&ledger, session, &field)?,
                None => {}
            }
            a.save_ledger(&ledger, &clock)?;
            Ok(Some(event))
        })
    }

    /// A pin's anchor for message `ordinal`: its source uuid, with the ordinal as fallback.
    pub fn pin_anchor(&self, session: &SessionGid, ordinal: u64) -> Result<Anchor> {
        match self.messages(session, ordinal)?.into_iter().next() {
            Some(message) if message.ordinal == ordinal => Ok(Anchor {
                source_uuid: message.source_uuid,
                ordinal: Some(ordinal),
            }),
            _ => Err(ArchiveError::NoSuchMessage {
                session: session.clone(),
                ordinal,
            }),
        }
    }

    /// Drops one of this machine's unpublished edits (named by its HLC or event id): an edit
    /// that can never be published (over a reader's limit, written by an older version) would
    /// otherwise be reported on every sync. The ledger is replayed from scratch without it, so
    /// every field shows what the remaining events make of it.
    pub fn drop_unpublished_edit(&mut self, which: &str, wall_ms: u64) -> Result<SignedEvent> {
        self.transaction(|a| {
            let event = a
                .all_events()?
                .into_iter()
                .find(|e| e.event.hlc.to_string() == which || e.id.to_string() == which)
                .ok_or_else(|| ArchiveError::NoSuchEdit(which.to_owned()))?;
            let published: bool = a.conn.query_row(
                "SELECT published FROM ledger_events WHERE origin = ?1 AND id = ?2",
                params![event.origin.as_str(), event.id.to_string()],
                |r| r.get(0),
            )?;
            if published {
                return Err(ArchiveError::EditPublished(which.to_owned()));
            }
            a.conn.execute(
                "DELETE FROM ledger_events WHERE origin = ?1 AND id = ?2",
                params![event.origin.as_str(), event.id.to_string()],
            )?;
            let ledger = a.replay_from_scratch(wall_ms)?;
            if let Some((field, _)) = agentsync_core::ledger::field_value(&event.event.op) {
                a.refresh_field(&ledger, &event.event.session, &field)?;
            }
            Ok(event)
        })
    }

    /// Replays every event of the log into a new ledger and stores it (the clock only moves
    /// forward). Replay is order-free, so this is the ledger any machine holding the same
    /// events has, whatever the stored ledger state said.
    pub fn replay_from_scratch(&self, wall_ms: u64) -> Result<LedgerState> {
        let mut ledger = LedgerState::default();
        let mut clock = self.clock()?;
        let events = self.all_events()?;
        let replay = ledger.replay(&mut clock, wall_ms, events.clone(), &|g| {
            self.has_session(g).unwrap_or(false)
        });
        self.record_replay(&ledger, &clock, &replay, &events)?;
        Ok(ledger)
    }

    /// Stores the outcome of a replay: the new ledger and clock, the rows of every touched
    /// field, purges, and which of the `offered` events are deferred.
    pub fn record_replay(
        &self,
        ledger: &LedgerState,
        clock: &HlcClock,
        replay: &Replay,
        offered: &[SignedEvent],
    ) -> Result<()> {
        for (session, field) in &replay.touched {
            self.refresh_field(ledger, session, field)?;
        }
        for projection in &replay.projections {
            if let Projection::Purge { session } = projection {
                self.purge_rows(session)?;
            }
        }
        let reasons: std::collections::BTreeMap<_, _> =
            replay.deferred.iter().map(|d| (d.key.clone(), d)).collect();
        let deferred: Vec<(SignedEvent, serde_json::Value)> = offered
            .iter()
            .filter_map(|e| {
                let d = reasons.get(&e.key())?;
                Some((e.clone(), serde_json::to_value(&d.reason).ok()?))
            })
            .collect();
        self.set_deferred_events(&deferred)?;
        self.save_ledger(ledger, clock)
    }

    /// Rewrites every curation row and conflict from the ledger (after a rebuild).
    pub fn reproject(&self, ledger: &LedgerState) -> Result<()> {
        self.conn.execute_batch(
            "DELETE FROM curation; DELETE FROM curation_tags; DELETE FROM curation_pins;
             DELETE FROM conflicts;",
        )?;
        for (session, field, _) in ledger.registers() {
            self.refresh_field(ledger, session, field)?;
        }
        for session in ledger.purged() {
            self.purge_rows(session)?;
        }
        Ok(())
    }

    fn purge_rows(&self, session: &SessionGid) -> Result<()> {
        let gid = session.to_string();
        self.delete_session(session)?;
        for table in ["curation", "curation_tags", "curation_pins"] {
            self.conn
                .execute(&format!("DELETE FROM {table} WHERE gid = ?1"), [&gid])?;
        }
        self.conn
            .execute("DELETE FROM conflicts WHERE session = ?1", [&gid])?;
        Ok(())
    }

    /// Mirrors one field's winner into its row, and replaces its stored conflicts.
    fn refresh_field(
        &self,
        ledger: &LedgerState,
        session: &SessionGid,
        field: &Field,
    ) -> Result<()> {
        let gid = session.to_string();
        let register = ledger.register(session, field);
        let value = register.map(|r| &r.winner.value);
        self.conn
            .execute("INSERT OR IGNORE INTO curation (gid) VALUES (?1)", [&gid])?;
        let text = |v: Option<&Value>| match v {
            Some(Value::Text(t)) => t.clone(),
            _ => String::new(),
        };
        let flag = |v: Option<&Value>| matches!(v, Some(Value::Flag(true)));
        match field {
            Field::DisplayName => self.conn.execute(
                "UPDATE curation SET display_name = ?2 WHERE gid = ?1",
                params![gid, text(value)],
            )?,
            Field::Note => self.conn.execute(
                "UPDATE curation SET note = ?2 WHERE gid = ?1",
                params![gid, text(value)],
            )?,
            Field::Starred => self.conn.execute(
                "UPDATE curation SET starred = ?2 WHERE gid = ?1",
                params![gid, flag(value)],
            )?,
            Field::Trashed => self.conn.execute(
                "UPDATE curation SET trashed = ?2 WHERE gid = ?1",
                params![gid, flag(value)],
            )?,
            Field::Tag(tag) if flag(value) => self.conn.execute(
                "INSERT OR IGNORE INTO curation_tags (gid, tag) VALUES (?1, ?2)",
                params![gid, tag],
            )?,
            Field::Tag(tag) => self.conn.execute(
                "DELETE FROM curation_tags WHERE gid = ?1 AND tag = ?2",
                params![gid, tag],
            )?,
            Field::Pin(anchor) => match value {
                Some(Value::Pin(Some(pin))) => self.conn.execute(
                    "INSERT INTO curation_pins (gid, anchor, json) VALUES (?1, ?2, ?3)
                     ON CONFLICT (gid, anchor) DO UPDATE SET json = excluded.json",
                    params![gid, anchor, encode("pin", pin)?],
                )?,
                _ => self.conn.execute(
                    "DELETE FROM curation_pins WHERE gid = ?1 AND anchor = ?2",
                    params![gid, anchor],
                )?,
            },
            Field::Purged => 0,
        };
        self.replace_conflicts(session, field, register)
    }

    fn replace_conflicts(
        &self,
        session: &SessionGid,
        field: &Field,
        register: Option<&Register>,
    ) -> Result<()> {
        let (gid, field_name) = (session.to_string(), field.to_string());
        self.conn.execute(
            "DELETE FROM conflicts WHERE session = ?1 AND field = ?2",
            params![gid, field_name],
        )?;
        let Some(register) = register else {
            return Ok(());
        };
        let mut insert = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO conflicts
                 (session, field, loser_hlc, loser_origin, loser_event, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for loser in register.conflicts() {
            let row = ConflictRow {
                session: gid.clone(),
                field: field_name.clone(),
                winner: side(&register.winner),
                loser: side(loser),
            };
            insert.execute(params![
                gid,
                field_name,
                loser.key.hlc.to_string(),
                loser.key.origin.as_str(),
                loser.key.event.to_string(),
                encode("conflict", &row)?,
            ])?;
        }
        Ok(())
    }

    /// Conflicts, of one session or all, in session, field and loser order.
    pub fn conflicts(&self, session: Option<&SessionGid>) -> Result<Vec<ConflictRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT json FROM conflicts WHERE ?1 IS NULL OR session = ?1
             ORDER BY session, field, loser_hlc, loser_origin, loser_event",
        )?;
        let rows = stmt.query_map([session.map(|s| s.to_string())], |r| r.get::<_, String>(0))?;
        rows.map(|json| decode("conflict", &json?)).collect()
    }

    pub fn count_conflicts(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM conflicts", [], |r| r.get(0))?)
    }

    /// A session's pins, in anchor order.
    pub fn pins(&self, session: &SessionGid) -> Result<Vec<PinRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT anchor, json FROM curation_pins WHERE gid = ?1 ORDER BY anchor",
        )?;
        let rows = stmt.query_map([session.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (anchor, json) = row?;
            let pin: PinValue = decode("pin", &json)?;
            out.push(PinRow {
                anchor,
                ordinal: pin.anchor.ordinal,
                source_uuid: pin.anchor.source_uuid,
                note: pin.note,
            });
        }
        Ok(out)
    }
}
