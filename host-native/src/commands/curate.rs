//! Curation commands: each edit is one ledger event, applied locally at once and published by
//! the next sync.

use agentsync_archive::Archive;
use agentsync_core::{Op, SessionGid};
use anyhow::{Result, bail};
use serde_json::json;

use super::{Context, Output, now_ms};

/// Applies `ops(session)` to every session named (a bulk star emits one event per session).
pub fn edit(
    ctx: &Context,
    sessions: &[String],
    ops: impl Fn(&Archive, &SessionGid) -> Result<Vec<Op>>,
) -> Result<Output> {
    let mut archive = ctx.archive()?;
    let (origin, _) = ctx.identity(&archive)?;
    // Resolve every id first: a typo in the fifth id must not leave four edits behind.
    let gids: Vec<SessionGid> = sessions
        .iter()
        .map(|s| archive.resolve(s))
        .collect::<Result<_, _>>()?;
    let mut events = Vec::new();
    for gid in &gids {
        for op in ops(&archive, gid)? {
            let Some(event) = archive.edit(&origin, now_ms(), gid, op)? else {
                continue;
            };
            events.push(json!({
                "session": gid.to_string(),
                "op": event.event.op,
                "hlc": event.event.hlc.to_string(),
            }));
        }
    }
    let text = if events.is_empty() {
        "nothing to change: the sessions already look like that".to_owned()
    } else {
        format!(
            "{} recorded on {} (published by the next sync)",
            super::count(events.len(), "edit"),
            super::count(gids.len(), "session")
        )
    };
    Output::new(&events, text)
}

/// Drops an unpublished edit of this machine (see `Archive::drop_unpublished_edit`).
pub fn drop_edit(ctx: &Context, hlc: &str) -> Result<Output> {
    let mut archive = ctx.archive()?;
    ctx.identity(&archive)?;
    let dropped = archive.drop_unpublished_edit(hlc, now_ms())?;
    // A problem recorded for it by the last sync is resolved.
    archive.forget_problem(&agentsync_core::sync::engine::unpublishable_key(&dropped))?;
    let text = format!(
        "dropped the unpublished {} of {} at {}",
        dropped.event.op.name(),
        dropped.event.session,
        dropped.event.hlc
    );
    Output::new(
        json!({
            "dropped": {
                "session": dropped.event.session.to_string(),
                "hlc": dropped.event.hlc.to_string(),
                "op": dropped.event.op.name(),
            }
        }),
        text,
    )
}

/// `+tag` adds, `-tag` removes, a bare `tag` adds.
pub fn tag_ops(changes: &[String]) -> Result<Vec<Op>> {
    changes
        .iter()
        .map(|change| {
            let (add, tag) = match change.as_bytes().first() {
                Some(b'+') => (true, &change[1..]),
                Some(b'-') => (false, &change[1..]),
                _ => (true, change.as_str()),
            };
            let tag = tag.trim();
            if tag.is_empty() {
                bail!("empty tag in {change:?}");
            }
            // `tag S +x --json` hands `--json` over as a change: refuse it rather than remove
            // a tag "-json" on every machine.
            if tag.starts_with('-') {
                bail!("{change:?} looks like an option: put options before the session");
            }
            // Every tag of the command is checked before any is recorded: one bad tag
            // records none.
            let tag = agentsync_core::normalize_tag(tag)
                .map_err(agentsync_core::ledger::EditError::Invalid)?;
            Ok(if add {
                Op::TagAdd { tag }
            } else {
                Op::TagRemove { tag }
            })
        })
        .collect()
}
