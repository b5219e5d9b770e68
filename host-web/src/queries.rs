//! The page's questions and edits, answered from the archive in JSON: the same queries the
//! CLI's `sessions`, `search`, `show`, `status` and curation commands use.

use std::collections::BTreeMap;

use agentsync_archive::{Archive, SessionFilter};
use agentsync_core::checkpoint::EventsMark;
use agentsync_core::sync::import::ImportState;
use agentsync_core::{ArtifactKey, Op, OriginId};
use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionsRequest {
    pub starred: bool,
    pub trashed: bool,
    pub tag: Option<String>,
    pub origin: Option<String>,
    pub limit: Option<u64>,
}

pub fn sessions(archive: &Archive, request: SessionsRequest) -> Result<Value> {
    let filter = SessionFilter {
        search: None,
        starred: request.starred,
        trashed: request.trashed,
        tag: request.tag.filter(|t| !t.is_empty()),
        origin: request.origin.filter(|o| !o.is_empty()),
        limit: request.limit,
    };
    let mut conflicts: BTreeMap<String, u64> = BTreeMap::new();
    for row in archive.conflicts(None)? {
        *conflicts.entry(row.session).or_default() += 1;
    }
    let mut listed = serde_json::to_value(archive.sessions(&filter)?)?;
    for summary in listed.as_array_mut().into_iter().flatten() {
        let count = summary["id"]
            .as_str()
            .and_then(|id| conflicts.get(id))
            .copied()
            .unwrap_or(0);
        summary["conflicts"] = json!(count);
    }
    Ok(listed)
}

#[derive(Debug, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default)]
    pub limit: Option<u64>,
}

pub fn search(archive: &Archive, request: SearchRequest) -> Result<Value> {
    if request.query.trim().is_empty() {
        return Ok(json!([]));
    }
    let hits = archive.search(&request.query, request.limit.unwrap_or(100).min(1000))?;
    Ok(serde_json::to_value(hits)?)
}

#[derive(Debug, Deserialize)]
pub struct SessionRequest {
    pub id: String,
}

/// A session with its messages, pins and the conflicts on its fields.
pub fn session(archive: &Archive, request: SessionRequest) -> Result<Value> {
    let gid = archive.resolve(&request.id)?;
    let mut detail = serde_json::to_value(archive.session_detail(&gid)?)?;
    detail["conflicts"] = serde_json::to_value(archive.conflicts(Some(&gid))?)?;
    Ok(detail)
}

/// The machines of the fleet as this archive knows them (sessions and messages held, the newest
/// checkpoint imported, the time of its newest published curation), and what the last sync
/// could not use.
pub fn machines(archive: &Archive) -> Result<Value> {
    let mut origins: BTreeMap<String, Value> = BTreeMap::new();
    for count in archive.origin_counts()? {
        origins.insert(count.origin.clone(), serde_json::to_value(&count)?);
    }
    let import: ImportState = archive.state("import")?.unwrap_or_default();
    for (origin, progress) in &import.origins {
        let entry = origins
            .entry(origin.to_string())
            .or_insert_with(|| json!({ "origin": origin.as_str(), "sessions": 0, "messages": 0 }));
        if let Some(ArtifactKey::Root { seq, .. }) = &progress.root {
            entry["checkpoint"] = json!(seq);
        }
        if let EventsMark::Newest { hlc, .. } = &progress.root_events {
            entry["last_edit_ms"] = json!(hlc.millis);
        }
    }
    Ok(json!({
        "origins": origins.into_values().collect::<Vec<_>>(),
        "problems": archive.problems()?,
        "conflicts": archive.count_conflicts()?,
        "unpublished": archive.unpublished_events()?.len(),
        "last_sync": archive.last_sync()?,
    }))
}

#[derive(Debug, Deserialize)]
pub struct CurateRequest {
    pub id: String,
    pub op: String,
    #[serde(default)]
    pub value: String,
}

/// One edit by this browser: recorded at once, published by the next sync.
pub fn curate(
    archive: &mut Archive,
    origin: &OriginId,
    now_ms: u64,
    request: CurateRequest,
) -> Result<Value> {
    let gid = archive.resolve(&request.id)?;
    let value = request.value;
    let ordinal = || -> Result<u64> {
        value
            .trim()
            .parse()
            .with_context(|| format!("{value:?} is not a message number"))
    };
    let op = match request.op.as_str() {
        "rename" => Op::Rename {
            name: value.trim().to_owned(),
        },
        "star" => Op::Star,
        "unstar" => Op::Unstar,
        "trash" => Op::Trash,
        "restore" => Op::Restore,
        "tag" => Op::TagAdd { tag: value.clone() },
        "untag" => Op::TagRemove { tag: value.clone() },
        "note" => Op::SetNote {
            note: value.clone(),
        },
        "pin" => Op::Pin {
            anchor: archive.pin_anchor(&gid, ordinal()?)?,
            note: String::new(),
        },
        "unpin" => Op::Unpin {
            anchor: archive.pin_anchor(&gid, ordinal()?)?,
        },
        other => bail!(
            "unknown edit {other:?} (rename, star, unstar, trash, restore, tag, untag, note, pin, unpin)"
        ),
    };
    let event = archive.edit(origin, now_ms, &gid, op)?;
    Ok(json!({ "changed": event.is_some() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    fn archive_with_one_session() -> (Archive, OriginId) {
        let mut archive = Archive::open_in_memory().unwrap();
        let origin: OriginId = "laptop-0a0b0c".parse().unwrap();
        fixture::own_session(
            &mut archive,
            &origin,
            "s1",
            &["hello zebra 0", "hello zebra 1", "hello zebra 2"],
        );
        (archive, origin)
    }

    fn curate_one(archive: &mut Archive, me: &OriginId, op: &str, value: &str) -> Result<Value> {
        curate(
            archive,
            me,
            1_000,
            CurateRequest {
                id: "laptop-0a0b0c~s1".into(),
                op: op.into(),
                value: value.into(),
            },
        )
    }

    #[test]
    fn the_page_lists_searches_reads_and_edits() {
        let (mut archive, _) = archive_with_one_session();
        let me: OriginId = "web-0d0e0f".parse().unwrap();
        let listed = sessions(&archive, SessionsRequest::default()).unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 1);
        let hits = search(
            &archive,
            SearchRequest {
                query: "zebra".into(),
                limit: None,
            },
        )
        .unwrap();
        assert_eq!(hits.as_array().unwrap().len(), 3);
        assert!(hits[0]["snippet"].as_str().unwrap().contains("[zebra]"));

        assert_eq!(
            curate_one(&mut archive, &me, "star", "").unwrap()["changed"],
            true
        );
        assert_eq!(
            curate_one(&mut archive, &me, "star", "").unwrap()["changed"],
            false
        );
        curate_one(&mut archive, &me, "rename", "named in the page").unwrap();
        curate_one(&mut archive, &me, "pin", "2").unwrap();
        curate_one(&mut archive, &me, "tag", "keep").unwrap();
        let detail = session(
            &archive,
            SessionRequest {
                id: "laptop-0a0b0c~s1".into(),
            },
        )
        .unwrap();
        assert_eq!(detail["display_name"], "named in the page");
        assert_eq!(detail["starred"], true);
        assert_eq!(detail["tags"], json!(["keep"]));
        assert_eq!(detail["pins"][0]["ordinal"], 2);
        assert_eq!(detail["messages"].as_array().unwrap().len(), 3);
        assert_eq!(detail["conflicts"], json!([]));
        assert_eq!(machines(&archive).unwrap()["unpublished"], 4);

        let starred = sessions(
            &archive,
            SessionsRequest {
                starred: true,
                ..SessionsRequest::default()
            },
        )
        .unwrap();
        assert_eq!(starred.as_array().unwrap().len(), 1);
    }

    #[test]
    fn bad_edits_are_refused_with_a_reason_and_record_nothing() {
        let (mut archive, _) = archive_with_one_session();
        let me: OriginId = "web-0d0e0f".parse().unwrap();
        let long_name = "x".repeat(2_000);
        let cases = [
            ("rename", long_name.as_str(), "bytes"),
            ("pin", "7", "no message #7"),
            ("pin", "two", "not a message number"),
            ("tag", " ", "empty"),
            ("explode", "", "unknown edit"),
        ];
        for (op, value, expected) in cases {
            let err = curate_one(&mut archive, &me, op, value).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(expected), "{op} {value:?}: {text}");
        }
        assert!(archive.unpublished_events().unwrap().is_empty());
        let err = session(
            &archive,
            SessionRequest {
                id: "nobody~x".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("no session"), "{err}");
    }
}
