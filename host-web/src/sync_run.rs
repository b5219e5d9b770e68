//! One sync of the browser's archive with its bucket: the core's engine, the archive's host
//! half answering everything but the stores, the mirror table as the local mirror, and the
//! bucket's requests of each round run concurrently. The same run as the CLI's, with `fetch`.
//!
//! The archive is borrowed only between awaits, so the page can list and search while a sync
//! waits for the network.

use std::cell::RefCell;

use agentsync_archive::{Archive, HostStep, SyncRun};
use agentsync_core::sync::engine::{Input, Progress, Stages, SyncConfig, SyncEngine};
use agentsync_core::sync::store::{Request, StoreId, answer_one};
use agentsync_core::{OriginId, OriginKey};
use agentsync_remote::{Fatal, RemoteClient, answer_round};
use anyhow::{Result, anyhow, bail};
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
    let mut engine = SyncEngine::new(config, state);
    let fatal = Fatal::default();
    let report = loop {
        let output = engine.poll()?;
        let step = archive.borrow_mut().take_output(request.origin, output)?;
        match step {
            HostStep::Answer(input) => engine.handle(input)?,
            HostStep::Stored => {}
            HostStep::Progress(p) => on_progress(&p),
            HostStep::Store(requests) => {
                let to_bucket: Vec<Request> = requests
                    .iter()
                    .filter(|r| r.store == StoreId::Target)
                    .map(|r| r.request.clone())
                    .collect();
                let mut from_bucket = answer_round(request.bucket, &fatal, &to_bucket)
                    .await
                    .into_iter();
                let responses = {
                    let a = archive.borrow();
                    // The round's mirror writes in one transaction (one sync to OPFS, not one
                    // per artifact); a failed write is an answer, never a rollback of the rest.
                    a.atomically(|a| {
                        let mut mirror = a.mirror_table((request.now_ms)());
                        Ok(requests
                            .iter()
                            .map(|r| match r.store {
                                StoreId::Mirror => Some(answer_one(&mut mirror, &r.request)),
                                StoreId::Target => from_bucket.next(),
                            })
                            .collect::<Vec<_>>())
                    })?
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow!("the bucket answered fewer requests than asked"))?
                };
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
