//! One sync of the browser's archive with its bucket: the core's engine, the archive's host
//! half answering everything but the stores, the mirror table as the local mirror, and the
//! bucket's requests of each round run concurrently. The same run as the CLI's, with `fetch`.
//!
//! The archive is borrowed only between awaits, so the page can list and search while a sync
//! waits for the network.

use std::cell::RefCell;

use agentsync_archive::{Archive, HostStep, SyncRun};
use agentsync_core::sync::engine::{Input, Progress, Stages, SyncConfig, SyncEngine};
use agentsync_core::sync::store::{merge_round, target_requests};
use agentsync_core::{OriginId, OriginKey};
use agentsync_remote::{Fatal, RemoteClient, answer_round};
use anyhow::{Result, bail};
use serde_json::{Value, json};

/// How often self-heal lists all of the browser's own keys in the bucket.
const HEAL_EVERY_MS: u64 = 60 * 60 * 1000;

/// Who is syncing, with what, where.
pub struct SyncRequest<'a, C> {
    pub origin: &'a OriginId,
    pub key: &'a OriginKey,
    pub bucket: &'a C,
    /// `s3://bucket/prefix`, recorded with the run.
    pub target_name: String,
    /// The host's clock, in milliseconds since the epoch.
    pub now_ms: &'a dyn Fn() -> u64,
}

/// Runs one sync and returns its report. Local work is kept when the bucket fails; a bucket
/// that refused the credentials or could not be reached then fails the run with the cause.
pub async fn run<C: RemoteClient>(
    archive: &RefCell<Archive>,
    request: SyncRequest<'_, C>,
    mut on_progress: impl FnMut(&Progress),
    mut on_listed: impl FnMut(usize),
) -> Result<Value> {
    let now = (request.now_ms)();
    let (config, state) = {
        let a = archive.borrow();
        let config = SyncConfig {
            origin: request.origin.clone(),
            key: OriginKey::from_secret(request.key.secret()),
            now_ms: now,
            target: true,
            stages: Stages::ALL,
            last_sync_ms: a.last_sync_ms()?,
            heal_every_ms: HEAL_EVERY_MS,
        };
        (config, a.sync_state()?)
    };
    // The page lists sessions while their messages are on the way.
    let mut engine = SyncEngine::new(config, state).listing_ahead();
    let fatal = Fatal::default();
    let report = loop {
        let output = engine.poll()?;
        let step = archive.borrow_mut().take_output(request.origin, output)?;
        match step {
            HostStep::Answer(input) => engine.handle(input)?,
            HostStep::Stored => {}
            HostStep::Progress(p) => on_progress(&p),
            HostStep::Listed(added) => on_listed(added),
            HostStep::Store(requests) => {
                let to_bucket = target_requests(&requests);
                let from_bucket = answer_round(request.bucket, &fatal, &to_bucket).await;
                // The round's mirror writes in one transaction (one sync to OPFS, not one
                // per artifact); a failed write is an answer, never a rollback of the rest.
                let responses = archive.borrow().atomically(|a| {
                    let mut mirror = a.mirror_table((request.now_ms)());
                    Ok(merge_round(&requests, &mut mirror, from_bucket))
                })??;
                engine.handle(Input::Store(responses))?;
            }
            HostStep::Done(report) => break report,
        }
    };

    let mut a = archive.borrow_mut();
    let outcome = a.finish_sync(&report, now)?;
    let summary = json!({
        "target": request.target_name,
        "exported": report.exported,
        "events_published": report.events_published,
        "sent": report.sent,
        "fetched": report.fetched,
        "imported_sessions": report.imported_sessions,
        "imported_messages": report.imported_messages,
        "events_applied": report.events_applied,
        "events_deferred": outcome.events_deferred,
        "conflicts": outcome.conflicts,
        "quarantined": outcome.quarantined,
        "deferred": outcome.deferred,
        "requests": report.requests,
    });
    if let Some(reason) = fatal.reason() {
        bail!("{reason} (the local archive is intact: the next sync goes on from here)");
    }
    a.record_sync(&SyncRun {
        target: request.target_name,
        finished_ms: i64::try_from((request.now_ms)()).unwrap_or(i64::MAX),
        report: summary.clone(),
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use agentsync_core::sync::store::{Bounded, ListPage, PutOutcome, Store};
    use agentsync_core::{Op, SessionGid};
    use agentsync_remote::Failure;
    use serde_json::json;

    use super::*;
    use crate::{fixture, queries};

    /// The bucket played by another archive's mirror table (a real SQLite store), so the
    /// browser's run is checked natively; the e2e test runs it against S3 in Chromium.
    struct SharedArchive<'a>(&'a Archive);

    fn failure(e: agentsync_core::sync::store::StoreError) -> Failure {
        Failure::permanent(e.to_string())
    }

    impl RemoteClient for SharedArchive<'_> {
        async fn list(&self, prefix: &str, after: Option<&str>) -> Result<ListPage, Failure> {
            self.0
                .mirror_table(0)
                .list_keys(prefix, after)
                .map_err(failure)
        }
        async fn get(&self, key: &str, max_bytes: u64) -> Result<Bounded, Failure> {
            self.0
                .mirror_table(0)
                .get_bounded(key, max_bytes)
                .map_err(failure)
        }
        async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, Failure> {
            self.0
                .mirror_table(0)
                .put_if_absent(key, bytes)
                .map_err(failure)
        }
        async fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), Failure> {
            self.0.mirror_table(0).replace(key, bytes).map_err(failure)
        }
        async fn delete(&self, key: &str) -> Result<(), Failure> {
            self.0.mirror_table(0).delete(key).map_err(failure)
        }
        fn can_delete(&self) -> bool {
            true
        }
    }

    fn sync(archive: &RefCell<Archive>, name: &str, seed: u8, shared: &Archive, now: u64) -> Value {
        let origin: OriginId = name.parse().unwrap();
        let key = OriginKey::from_secret([seed; 32]);
        let bucket = SharedArchive(shared);
        let clock = move || now;
        let mut stages = Vec::new();
        let request = SyncRequest {
            origin: &origin,
            key: &key,
            bucket: &bucket,
            target_name: "s3://shared".into(),
            now_ms: &clock,
        };
        let report =
            futures_executor::block_on(run(archive, request, |p| stages.push(p.stage), |_| {}))
                .unwrap();
        assert!(!stages.is_empty(), "no progress reported");
        report
    }

    #[test]
    fn the_page_lists_a_machines_sessions_before_their_messages_arrive() {
        let shared = Archive::open_in_memory().unwrap();
        let laptop = RefCell::new(Archive::open_in_memory().unwrap());
        let browser = RefCell::new(Archive::open_in_memory().unwrap());
        let laptop_origin: OriginId = "laptop-0a0b0c".parse().unwrap();
        for i in 0..20 {
            fixture::own_session(
                &mut laptop.borrow_mut(),
                &laptop_origin,
                &format!("s{i:02}"),
                &["a quokka", "in the logs"],
            );
        }
        sync(&laptop, "laptop-0a0b0c", 1, &shared, 10_000);

        // What the page would show when the run says sessions were listed.
        let web: OriginId = "web-0d0e0f".parse().unwrap();
        let key = OriginKey::from_secret([2; 32]);
        let bucket = SharedArchive(&shared);
        let clock = || 11_000;
        let request = SyncRequest {
            origin: &web,
            key: &key,
            bucket: &bucket,
            target_name: "s3://shared".into(),
            now_ms: &clock,
        };
        let mut seen = Vec::new();
        let report = futures_executor::block_on(run(
            &browser,
            request,
            |_| {},
            |added| {
                let a = browser.borrow();
                let list = queries::sessions(&a, queries::SessionsRequest::default()).unwrap();
                let hits = queries::search(
                    &a,
                    queries::SearchRequest {
                        query: "quokka".into(),
                        limit: None,
                    },
                )
                .unwrap();
                seen.push((added, list, hits));
            },
        ))
        .unwrap();
        assert_eq!(report["imported_sessions"], 20, "{report}");

        let (added, list, hits) = &seen[0];
        assert_eq!(*added, 20);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 20, "every session listed at once");
        for row in list {
            assert_eq!(row["pending"], true, "{row}");
            assert_eq!(row["message_count"], 2, "{row}");
            assert_eq!(row["agent"], "claude-code", "{row}");
        }
        assert_eq!(hits.as_array().unwrap().len(), 0, "no message is there yet");

        let after =
            queries::sessions(&browser.borrow(), queries::SessionsRequest::default()).unwrap();
        assert_eq!(after.as_array().unwrap().len(), 20);
        for row in after.as_array().unwrap() {
            assert!(row.get("pending").is_none(), "imported: {row}");
        }
        let id = after[0]["id"].as_str().unwrap().to_owned();
        let detail = queries::session(&browser.borrow(), queries::SessionRequest { id }).unwrap();
        assert_eq!(detail["messages"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_browsers_run_converges_with_a_machine_and_keeps_conflicts_visible() {
        let shared = Archive::open_in_memory().unwrap();
        let laptop = RefCell::new(Archive::open_in_memory().unwrap());
        let browser = RefCell::new(Archive::open_in_memory().unwrap());
        let laptop_origin: OriginId = "laptop-0a0b0c".parse().unwrap();
        fixture::own_session(
            &mut laptop.borrow_mut(),
            &laptop_origin,
            "s1",
            &["a quokka in the logs"],
        );

        sync(&laptop, "laptop-0a0b0c", 1, &shared, 10_000);
        let report = sync(&browser, "web-0d0e0f", 2, &shared, 11_000);
        assert_eq!(report["imported_sessions"], 1, "{report}");
        assert_eq!(report["quarantined"], json!([]));
        let hits = queries::search(
            &browser.borrow(),
            queries::SearchRequest {
                query: "quokka".into(),
                limit: None,
            },
        )
        .unwrap();
        assert_eq!(hits.as_array().unwrap().len(), 1);

        // Both rename the session before they see each other's edit.
        let gid: SessionGid = "laptop-0a0b0c~s1".parse().unwrap();
        let web: OriginId = "web-0d0e0f".parse().unwrap();
        laptop
            .borrow_mut()
            .edit(
                &laptop_origin,
                12_000,
                &gid,
                Op::Rename {
                    name: "laptop's".into(),
                },
            )
            .unwrap();
        browser
            .borrow_mut()
            .edit(
                &web,
                12_001,
                &gid,
                Op::Rename {
                    name: "browser's".into(),
                },
            )
            .unwrap();
        sync(&laptop, "laptop-0a0b0c", 1, &shared, 13_000);
        sync(&browser, "web-0d0e0f", 2, &shared, 14_000);
        sync(&laptop, "laptop-0a0b0c", 1, &shared, 15_000);

        for archive in [&laptop, &browser] {
            let listed =
                queries::sessions(&archive.borrow(), queries::SessionsRequest::default()).unwrap();
            assert_eq!(
                listed[0]["display_name"], "browser's",
                "the later rename wins"
            );
            assert_eq!(listed[0]["conflicts"], 1, "the losing rename stays visible");
        }
        let machines = queries::machines(&browser.borrow()).unwrap();
        let laptop_row = machines["origins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["origin"] == "laptop-0a0b0c")
            .unwrap()
            .clone();
        assert_eq!(laptop_row["sessions"], 1);
        assert!(
            laptop_row["checkpoint"].as_u64().unwrap() >= 2,
            "{laptop_row}"
        );
        assert_eq!(laptop_row["last_edit_ms"], 12_000);
        assert_eq!(machines["unpublished"], 0);
    }
}
