//! Store upkeep: `gc`, `verify`, `inspect`, `compact`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use agentsync_archive::Archive;
use agentsync_core::names::ROOTS_PREFIX;
use agentsync_core::sync::export::ExportState;
use agentsync_core::sync::gc;
use agentsync_core::sync::import::ImportState;
use agentsync_core::sync::problem::ProblemClass;
use agentsync_core::sync::store::{Store, list_all};
use agentsync_core::{Artifact, ArtifactId, ArtifactKey, OriginId, PublicKey};
use anyhow::{Context as _, Result, anyhow};
use serde::Serialize;
use serde_json::json;

use super::{Context, Output, now_ms};
use crate::config::parse_duration_ms;
use crate::store::FolderStore;
use crate::target::{Target, TargetSpec};

/// Deletes this origin's unreachable artifacts older than the grace window, from the local
/// mirror and the target. Never events, never another origin's artifacts.
pub fn gc(
    ctx: &Context,
    target: Option<&Path>,
    grace: Option<&str>,
    dry_run: bool,
) -> Result<Output> {
    let archive = ctx.archive()?;
    let (origin, _) = ctx.identity(&archive)?;
    let grace_ms = match grace {
        Some(text) => parse_duration_ms(text).map_err(|_| {
            super::UsageError("--grace takes 30s, 15m, 12h, 7d, 2w or milliseconds")
        })?,
        None => parse_duration_ms(&ctx.config.gc.grace)?,
    };
    let export: Option<ExportState> = archive.export_state()?;
    let (root, reachable) = match &export {
        Some(e) => (e.root.clone(), e.reachable()),
        None => (None, BTreeSet::new()),
    };
    let mirror_dir = ctx.home.mirror_dir();
    let mut stores: Vec<(String, String, Box<dyn Target>)> = vec![(
        "mirror".to_owned(),
        mirror_dir.display().to_string(),
        Box::new(FolderStore::new(&mirror_dir)),
    )];
    let mut text = String::new();
    if let Some(spec) = ctx.target(target)? {
        // An unmounted share is not an empty store: say so instead of "nothing to delete".
        if let TargetSpec::Folder(t) = &spec
            && !t.is_dir()
        {
            anyhow::bail!(
                "the target {} is not a folder (not mounted?): nothing was collected",
                t.display()
            );
        }
        let store = ctx.open_target(&spec)?;
        if store.can_delete() {
            stores.push((spec.to_string(), spec.to_string(), store));
        } else {
            text.push_str(&format!(
                "{spec}: an HTTP peer collects what it holds with its own gc\n"
            ));
        }
    }
    let mut results = Vec::new();
    // Per store: the unreachable keys earlier GCs saw, and since when (two observations).
    let mut observed: BTreeMap<String, BTreeMap<String, u64>> =
        archive.state("gc")?.unwrap_or_default();
    let mut next_observed: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    // The mirror's copies of other origins first: what no newest root references any more.
    let mirror_id = ctx.home.mirror_dir().display().to_string();
    let mirror_seen = observed.get(&mirror_id).cloned().unwrap_or_default();
    // Two machines writing as one origin each see the other's artifacts as unreachable:
    // collecting them would delete what the other published.
    let duplicated = duplicated_origins(&archive)?;
    for origin in &duplicated {
        text.push_str(&format!(
            "{origin}: not collected: two machines write as it (see `agentsync status`)\n"
        ));
    }
    let plans = foreign_mirror_plans(ctx, &archive, &origin, &mirror_seen, grace_ms)?;
    for (other, plan) in plans.into_iter().filter(|(o, _)| !duplicated.contains(o)) {
        let mut store = FolderStore::new(ctx.home.mirror_dir());
        let mut failed = Vec::new();
        if !dry_run {
            for key in &plan.delete {
                if let Err(e) = Store::delete(&mut store, key) {
                    failed.push(e.to_string());
                }
            }
        }
        if !plan.delete.is_empty() || plan.kept_young > 0 {
            text.push_str(&format!(
                "mirror, copies of {other}: {} {} unreachable artifact(s); {} kept\n",
                if dry_run { "would delete" } else { "deleted" },
                plan.delete.len() - failed.len(),
                plan.kept_young
            ));
        }
        results.push(json!({
            "store": "mirror",
            "origin": other.as_str(),
            "delete": plan.delete,
            "kept_young": plan.kept_young,
            "waiting": plan.observed.keys().collect::<Vec<_>>(),
            "failed": failed,
            "dry_run": dry_run,
        }));
        next_observed
            .entry(mirror_id.clone())
            .or_default()
            .extend(plan.observed);
    }
    let stores = if duplicated.contains(&origin) {
        Vec::new()
    } else {
        stores
    };
    for (name, store_id, mut store) in stores {
        let store: &mut dyn Store = &mut *store;
        let mut listing = list_all(store, &format!("{origin}/"), None)?;
        listing.extend(list_all(store, &ArtifactKey::roots_prefix(&origin), None)?);
        let seen = observed.remove(&store_id).unwrap_or_default();
        let plan = gc::plan(
            &origin,
            root.as_ref(),
            &reachable,
            &listing,
            &seen,
            now_ms(),
            grace_ms,
        );
        next_observed
            .entry(store_id)
            .or_default()
            .extend(plan.observed.clone());
        let mut failed = Vec::new();
        if !dry_run {
            for key in &plan.delete {
                if let Err(e) = store.delete(key) {
                    failed.push(e.to_string());
                }
            }
        }
        text.push_str(&format!(
            "{name}: {} {} unreachable artifact(s); {} kept (inside the grace window, or not yet \
             seen unreachable a grace window ago)\n",
            if dry_run { "would delete" } else { "deleted" },
            plan.delete.len() - failed.len(),
            plan.kept_young
        ));
        for f in &failed {
            text.push_str(&format!("  failed: {f}\n"));
        }
        results.push(json!({
            "store": name,
            "delete": plan.delete,
            "kept_young": plan.kept_young,
            "waiting": plan.observed.keys().collect::<Vec<_>>(),
            "failed": failed,
            "dry_run": dry_run,
        }));
    }
    if root.is_none() {
        text.push_str("nothing published yet: gc keeps everything until the first sync\n");
    }
    text.push_str(&format!(
        "grace window {} plus {} min for clock skew and listing lag\n",
        format_grace(grace_ms),
        gc::SKEW_MARGIN_MS / 60_000
    ));
    archive.set_state("gc", &next_observed)?;
    archive.set_state("gc_ran", &now_ms())?;
    Output::new(&results, text)
}

/// Origins the last sync found signing two roots with one sequence number.
fn duplicated_origins(archive: &Archive) -> Result<BTreeSet<OriginId>> {
    Ok(archive
        .problems()?
        .iter()
        .filter(|p| p.class == ProblemClass::DuplicateSequence.name())
        .filter_map(|p| p.key.parse::<ArtifactKey>().ok())
        .map(|key| key.origin().clone())
        .collect())
}

fn format_grace(ms: u64) -> String {
    match ms {
        0 => "0".into(),
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms => format!("{}s", ms as f64 / 1000.0),
    }
}

/// Refuses a folder that holds something other than an agentsync store at its top: every
/// entry must be `roots` or an origin id (dot files of sync tools aside).
fn not_a_store(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "roots" {
            continue;
        }
        if name.parse::<OriginId>().is_err() || !entry.path().is_dir() {
            anyhow::bail!(
                "{} is not an agentsync store: it holds {name:?}, which is neither `roots` nor \
                 an origin's folder",
                dir.display()
            );
        }
    }
    Ok(())
}

/// GC plans for the mirror's copies of other origins. Only origins whose newest root in the
/// mirror is the one fully imported: then the import state knows exactly what that root
/// reaches (its buckets, and every session's manifest and segments). Origins still importing
/// are left alone: the mirror must never hold a root whose data it lacks.
fn foreign_mirror_plans(
    ctx: &Context,
    archive: &Archive,
    local: &OriginId,
    observed: &BTreeMap<String, u64>,
    grace_ms: u64,
) -> Result<Vec<(OriginId, gc::GcPlan)>> {
    let import: ImportState = archive.state("import")?.unwrap_or_default();
    let mut store = FolderStore::new(ctx.home.mirror_dir());
    let mut newest: BTreeMap<OriginId, ArtifactKey> = BTreeMap::new();
    for entry in list_all(&mut store, ROOTS_PREFIX, None)? {
        if let Ok(key @ ArtifactKey::Root { .. }) = entry.key.parse::<ArtifactKey>()
            && key.origin() != local
            && newest.get(key.origin()).is_none_or(|k| *k < key)
        {
            newest.insert(key.origin().clone(), key);
        }
    }
    let mut plans = Vec::new();
    for (other, root) in newest {
        let Some(progress) = import.origins.get(&other) else {
            continue;
        };
        if progress.root.as_ref() != Some(&root) {
            continue;
        }
        let mut reachable: BTreeSet<ArtifactId> = progress.buckets.values().copied().collect();
        for session in progress.sessions.values() {
            reachable.insert(session.manifest);
            reachable.extend(session.segments.iter().copied());
        }
        let mut listing = list_all(&mut store, &format!("{other}/"), None)?;
        listing.extend(list_all(
            &mut store,
            &ArtifactKey::roots_prefix(&other),
            None,
        )?);
        let plan = gc::plan(
            &other,
            Some(&root),
            &reachable,
            &listing,
            observed,
            now_ms(),
            grace_ms,
        );
        plans.push((other, plan));
    }
    Ok(plans)
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub store: String,
    pub artifacts: usize,
    pub roots_checked: usize,
    pub problems: Vec<VerifyProblem>,
    /// Files that are not artifact keys (a sync tool's own files, for example).
    pub ignored: usize,
    pub database: String,
}

#[derive(Debug, Serialize)]
pub struct VerifyProblem {
    pub key: String,
    pub problem: String,
}

/// Writes the archive database again without its free pages, in this version's page size.
pub fn compact(ctx: &Context) -> Result<Output> {
    let archive = ctx.archive()?;
    let spinner = ctx.progress.spinner("compacting the archive…");
    let compacted = archive.compact();
    spinner.finish();
    let compacted =
        compacted.with_context(|| format!("compacting {}", ctx.home.archive_path().display()))?;
    let mb = |bytes: u64| bytes as f64 / 1e6;
    // A file made by another program may have pages under 1 KiB.
    let page = |size: u32| match size {
        0..1024 => format!("{size} bytes"),
        _ => format!("{} KiB", size / 1024),
    };
    Output::new(
        compacted,
        format!(
            "compacted {}: {:.1} MB → {:.1} MB, pages of {} → {}",
            ctx.home.archive_path().display(),
            mb(compacted.bytes_before),
            mb(compacted.bytes_after),
            page(compacted.page_size_before),
            page(compacted.page_size_after),
        ),
    )
}

/// Checks every artifact of a store (id, decoding, signature, pinned key) and every reference
/// of each origin's newest root, plus the archive database's integrity.
pub fn verify(ctx: &Context, target: Option<&Path>) -> Result<Output> {
    let archive = ctx.archive()?;
    let (origin, key) = ctx.identity(&archive)?;
    let import: ImportState = archive.state("import")?.unwrap_or_default();
    let own_key = key.public();
    let pinned = |o: &OriginId| -> Option<PublicKey> {
        if *o == origin {
            Some(own_key)
        } else {
            import.keyring.get(o).copied()
        }
    };
    let (name, mut store): (String, Box<dyn Target>) = match target {
        None => {
            let dir = ctx.home.mirror_dir();
            (dir.display().to_string(), Box::new(FolderStore::new(&dir)))
        }
        Some(arg) => {
            let spec = TargetSpec::parse(&arg.to_string_lossy())?;
            if let TargetSpec::Folder(dir) = &spec {
                if !dir.is_dir() {
                    anyhow::bail!("{} is not a folder: nothing to verify", dir.display());
                }
                not_a_store(dir)?;
            }
            (spec.to_string(), ctx.open_target(&spec)?)
        }
    };
    let store: &mut dyn Store = &mut *store;
    let mut report = VerifyReport {
        store: name,
        database: archive.integrity_check()?,
        ..VerifyReport::default()
    };
    let listing = list_all(store, "", None)?;
    // Segments are checked, then dropped (`None`): only structure is kept in memory.
    let mut valid: BTreeMap<ArtifactKey, Option<Artifact>> = BTreeMap::new();
    let bar = ctx.progress.bar("verify", listing.len() as u64);
    for entry in &listing {
        bar.inc(1);
        let Ok(key) = entry.key.parse::<ArtifactKey>() else {
            report.ignored += 1;
            continue;
        };
        report.artifacts += 1;
        let problem = match store.get(&entry.key) {
            Ok(Some(bytes)) => match Artifact::open(&key, &bytes) {
                Ok(artifact) => match signer_problem(&artifact, &pinned) {
                    Some(p) => Some(p),
                    None => {
                        let keep = !matches!(artifact, Artifact::Segment(_));
                        valid.insert(key.clone(), keep.then_some(artifact));
                        None
                    }
                },
                Err(e) => Some(format!("{}: {e}", e.class())),
            },
            Ok(None) => Some("listed but gone".into()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            report.problems.push(VerifyProblem {
                key: entry.key.clone(),
                problem,
            });
        }
    }
    bar.finish();
    check_references(&valid, &mut report);
    let partial = !report.problems.is_empty() || report.database != "ok";
    let mut text = format!(
        "{}: {} artifacts, {} newest roots checked, {} problem(s); database {}",
        report.store,
        report.artifacts,
        report.roots_checked,
        report.problems.len(),
        report.database
    );
    for p in &report.problems {
        text.push_str(&format!("\n  {}: {}", p.key, p.problem));
    }
    if report.database != "ok" {
        text.push_str(&format!("\n{}", super::DAMAGED_HINT));
    }
    let mut out = Output::new(&report, text)?;
    out.partial = partial;
    Ok(out)
}

fn signer_problem(
    artifact: &Artifact,
    pinned: &dyn Fn(&OriginId) -> Option<PublicKey>,
) -> Option<String> {
    let origin = match artifact {
        Artifact::Root { root, .. } => &root.origin,
        Artifact::Events(batch) => &batch.batch.origin,
        _ => return None,
    };
    let signer = artifact.signer()?;
    match pinned(origin) {
        Some(key) if key != *signer => Some(format!(
            "signed by {}, but {origin}'s pinned key is {}",
            signer.to_hex(),
            key.to_hex()
        )),
        _ => None,
    }
}

/// Every origin's newest valid root must reach only artifacts that are present and valid.
fn check_references(valid: &BTreeMap<ArtifactKey, Option<Artifact>>, report: &mut VerifyReport) {
    let mut newest: BTreeMap<OriginId, (&ArtifactKey, &Artifact)> = BTreeMap::new();
    for (key, artifact) in valid {
        if let (ArtifactKey::Root { origin, .. }, Some(artifact)) = (key, artifact) {
            // Keys sort by sequence within an origin: the last one wins.
            newest.insert(origin.clone(), (key, artifact));
        }
    }
    for (origin, (root_key, artifact)) in newest {
        let Artifact::Root { root, .. } = artifact else {
            continue;
        };
        report.roots_checked += 1;
        let mut missing = |what: ArtifactKey, from: &str| {
            if !valid.contains_key(&what) {
                report.problems.push(VerifyProblem {
                    key: what.to_string(),
                    problem: format!("referenced by {from}, missing or invalid"),
                });
                false
            } else {
                true
            }
        };
        for bucket_ref in &root.buckets {
            let bucket_key = ArtifactKey::Bucket {
                origin: origin.clone(),
                id: bucket_ref.id,
            };
            if !missing(bucket_key.clone(), &root_key.to_string()) {
                continue;
            }
            let Some(Some(Artifact::Bucket(bucket))) = valid.get(&bucket_key) else {
                continue;
            };
            for entry in &bucket.entries {
                let manifest_key = ArtifactKey::Manifest {
                    origin: origin.clone(),
                    id: entry.manifest,
                };
                if !missing(manifest_key.clone(), &bucket_key.to_string()) {
                    continue;
                }
                let Some(Some(Artifact::Manifest(manifest))) = valid.get(&manifest_key) else {
                    continue;
                };
                for segment in &manifest.segments {
                    missing(
                        ArtifactKey::Segment {
                            origin: origin.clone(),
                            id: segment.id,
                        },
                        &manifest_key.to_string(),
                    );
                }
            }
        }
    }
}

/// Any artifact as JSON: a file, or a key in the local mirror or target.
pub fn inspect(ctx: &Context, what: &str, key: Option<&str>) -> Result<Output> {
    let path = Path::new(what);
    let text = if path.is_file() {
        crate::inspect::inspect(path, key)?
    } else {
        let parsed: ArtifactKey = what
            .parse()
            .map_err(|e| anyhow!("{what:?} is neither a file nor an artifact key: {e}"))?;
        let mut dirs = vec![ctx.home.mirror_dir()];
        if let Some(TargetSpec::Folder(dir)) = ctx.target(None)? {
            dirs.push(dir);
        }
        let file = dirs
            .iter()
            .map(|d| FolderStore::new(d).path_of(what))
            .find_map(|p| p.ok().filter(|p| p.is_file()))
            .with_context(|| format!("{parsed} is not in the local mirror or the target"))?;
        crate::inspect::inspect(&file, Some(what))?
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.clone()));
    Output::new(value, text)
}
