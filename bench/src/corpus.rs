//! The corpus: who the user is, which projects they work in, and the sessions, drawn one after
//! another until the target size is reached; and appending to one session, as a live agent does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::claude::{self, Chain, Era};
use crate::codex;
use crate::ids;
use crate::logfile::FileStats;
use crate::project::Project;
use crate::rng::Rng;
use crate::text;
use crate::time;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusSpec {
    pub seed: u64,
    /// Total bytes of all logs. Sessions stop early when the budget runs out, so the corpus
    /// ends at most a few records past it.
    pub target_bytes: u64,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorpusSummary {
    pub seed: u64,
    pub target_bytes: u64,
    /// Sessions a user started (Claude Code sessions, Codex threads not spawned by another).
    pub sessions: u64,
    pub claude_sessions: u64,
    pub codex_sessions: u64,
    /// Sessions started by another session's tool call, each in its own log.
    pub subagent_sessions: u64,
    /// Log files written: one per session and subagent session.
    pub files: u64,
    pub bytes: u64,
    /// Messages our parsers make of all the logs.
    pub messages: u64,
    pub tool_calls: u64,
    /// Messages in the median and in the longest log of a user-started session.
    pub median_session_messages: u64,
    pub max_session_messages: u64,
    pub largest_file_bytes: u64,
}

/// What [`append`] added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub messages: u64,
}

/// Streams of the seed: the user and projects, one per session, appends.
const STREAM_WORLD: u64 = 1;
const STREAM_SESSION: u64 = 2;
const STREAM_APPEND: u64 = 3;

/// About the average session's bytes, subagents included (`shape.rs` sets the real value):
/// the corpus has a project per 25 sessions expected.
const MEAN_SESSION_BYTES: u64 = 100_000;

/// The span session start times are drawn from: 2025-06-01 to 2026-03-01 (UTC).
const START_MS: i64 = 1_748_736_000_000;
const SPAN_MS: u64 = 273 * 86_400_000;

/// Claude Code versions and models by date, newest last: (from, versions, models).
const CLAUDE_RELEASES: &[(&str, &[&str], &[&str])] = &[
    (
        "2025-06-01",
        &["1.0.31", "1.0.44", "1.0.51"],
        &[
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-20250514",
            "claude-opus-4-20250514",
        ],
    ),
    (
        "2025-08-05",
        &["1.0.72", "1.0.88", "1.0.110", "1.0.128"],
        &["claude-sonnet-4-20250514", "claude-opus-4-1-20250805"],
    ),
    (
        "2025-10-01",
        &["2.0.5", "2.0.28", "2.0.37", "2.0.42", "2.0.55"],
        &[
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5-20250929",
            "claude-opus-4-1-20250805",
        ],
    ),
    (
        "2025-12-10",
        &["2.1.3", "2.1.19", "2.1.42"],
        &["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929"],
    ),
];

/// Codex CLI versions and models by date.
const CODEX_RELEASES: &[(&str, &[&str], &[&str])] = &[
    (
        "2025-06-01",
        &["0.10.0", "0.20.0"],
        &["codex-mini-latest", "o4-mini"],
    ),
    (
        "2025-08-08",
        &["0.30.0", "0.36.0", "0.46.0"],
        &["gpt-5", "gpt-5-codex"],
    ),
    (
        "2025-11-15",
        &["0.63.0", "0.77.0", "0.88.0"],
        &["gpt-5.1-codex", "gpt-5.2-codex"],
    ),
];

const HOMES: &[&str] = &[
    "/home/dev",
    "/Users/sam",
    "/home/alex",
    "/Users/jordan.lee",
    "/home/kim",
];
const SLUG_WORDS: &[&str] = &[
    "humble",
    "doodling",
    "wolf",
    "quiet",
    "spinning",
    "otter",
    "brave",
    "sleepy",
    "falcon",
    "gentle",
    "wandering",
    "maple",
    "lucky",
    "hidden",
    "river",
    "bright",
    "crimson",
    "badger",
];

fn release<'a>(
    table: &'a [(&str, &'a [&'a str], &'a [&'a str])],
    ms: i64,
) -> (&'a [&'a str], &'a [&'a str]) {
    let mut found = (table[0].1, table[0].2);
    for (from, versions, models) in table {
        if time::parse_rfc3339(&format!("{from}T00:00:00Z")).is_some_and(|t| t <= ms) {
            found = (versions, models);
        }
    }
    found
}

/// The user: a home folder and the projects they work in.
struct World {
    projects: Vec<Project>,
}

impl World {
    fn new(seed: u64, target_bytes: u64) -> World {
        let mut rng = Rng::derive(seed, STREAM_WORLD, 0);
        let home = *rng.pick(HOMES);
        let sessions = (target_bytes / MEAN_SESSION_BYTES).max(1);
        let count = (sessions / 25).clamp(3, 400) as usize;
        let mut names: Vec<String> = Vec::with_capacity(count);
        while names.len() < count {
            let mut name = text::noun(&mut rng).to_owned();
            if rng.chance(0.6) {
                name.push('-');
                name.push_str(text::noun(&mut rng));
            }
            if names.contains(&name) {
                name.push_str(&format!("-{}", names.len()));
            }
            names.push(name);
        }
        let projects = names
            .iter()
            .map(|name| {
                let parent = *rng.pick(&["src", "work", "code", "projects"]);
                Project::new(&format!("{home}/{parent}/{name}"))
            })
            .collect();
        World { projects }
    }
}

fn branch(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=5 => "main".to_owned(),
        6..=7 => format!("feat/{}-{}", text::verb(rng), text::noun(rng)),
        _ => format!("fix/{}-{}", text::noun(rng), text::noun(rng)),
    }
}

/// Refuses to write into a corpus already there: files are created, never overwritten, and
/// a tree mixing two corpora would be neither.
fn check_empty(folder: &Path) -> io::Result<()> {
    match fs::read_dir(folder) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is not empty: remove it first", folder.display()),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a corpus under `out`: `claude/projects/...` and `codex/sessions/...`. The same
/// spec always writes the same files with the same bytes.
pub fn generate(out: &Path, spec: &CorpusSpec) -> io::Result<CorpusSummary> {
    let projects_dir = out.join("claude").join("projects");
    let sessions_dir = out.join("codex").join("sessions");
    check_empty(&out.join("claude"))?;
    check_empty(&out.join("codex"))?;
    fs::create_dir_all(&projects_dir)?;
    fs::create_dir_all(&sessions_dir)?;

    let world = World::new(spec.seed, spec.target_bytes);
    // A small corpus still gets several sessions; a large one has long sessions of tens of
    // megabytes, as real archives do.
    let session_cap = (spec.target_bytes / 16).clamp(256 * 1024, 64 * 1024 * 1024);
    let mut summary = CorpusSummary {
        seed: spec.seed,
        target_bytes: spec.target_bytes,
        ..CorpusSummary::default()
    };
    let mut session_messages = Vec::new();
    // The last Codex thread of a version taken to have subagent threads (0.60 on):
    // (id, start, project, version).
    let mut last_codex: Option<(String, i64, usize, &str)> = None;
    let mut index = 0u64;
    while summary.bytes < spec.target_bytes {
        let mut rng = Rng::derive(spec.seed, STREAM_SESSION, index);
        index += 1;
        let budget = session_cap.min(spec.target_bytes - summary.bytes);
        let mut start_ms = START_MS + rng.below(SPAN_MS) as i64;
        let mut project_index = rng.skewed(world.projects.len());
        let git_branch = branch(&mut rng);
        let files: Vec<FileStats> = if rng.chance(0.2) {
            let (versions, models) = release(CODEX_RELEASES, start_ms);
            let mut version = *rng.pick(versions);
            let mut parent = None;
            if let Some((parent_id, parent_start, parent_project, parent_version)) = &last_codex
                && rng.chance(0.15)
            {
                // A thread spawned by that one: same project and version, minutes later.
                parent = Some(parent_id.clone());
                start_ms = parent_start + 60_000 + rng.below(1_200_000) as i64;
                project_index = *parent_project;
                version = parent_version;
            }
            let id = ids::uuid_v7(&mut rng, start_ms);
            let spec = codex::Spec {
                sessions_dir: &sessions_dir,
                project: &world.projects[project_index],
                id: id.clone(),
                start_ms,
                version,
                model: rng.pick::<&str>(models),
                git_branch,
                parent: parent.clone(),
                budget,
            };
            let stats = codex::write_session(&spec, &mut rng)?;
            if parent.is_none() && codex::runs_exec_command(version) {
                last_codex = Some((id, start_ms, project_index, version));
            }
            vec![stats]
        } else {
            let (versions, models) = release(CLAUDE_RELEASES, start_ms);
            let version = *rng.pick(versions);
            let project = &world.projects[project_index];
            let folder = projects_dir.join(project.claude_folder());
            let session_id = ids::uuid_v4(&mut rng);
            let era = claude::era(version);
            let slug = (era == Era::Nested).then(|| {
                format!(
                    "{}-{}-{}",
                    rng.pick(SLUG_WORDS),
                    rng.pick(SLUG_WORDS),
                    rng.pick(SLUG_WORDS)
                )
            });
            let mut chain = Chain {
                session_id: session_id.clone(),
                cwd: project.cwd.clone(),
                version: version.to_owned(),
                git_branch,
                slug,
                agent_id: None,
                sidechain: false,
                parent: None,
                clock: start_ms,
                model: (*rng.pick(models)).to_owned(),
                context_tokens: 14_000,
            };
            let mut log = claude::Log::create(&folder.join(format!("{session_id}.jsonl")), false)?;
            let mut session = claude::Session::new(project, rng, era, &folder, budget);
            session.write(&mut log, &mut chain)?;
            let mut files = vec![log.file.finish()?];
            files.append(&mut session.subagents);
            files
        };
        for (i, stats) in files.iter().enumerate() {
            summary.files += 1;
            summary.bytes += stats.bytes;
            summary.messages += stats.messages;
            summary.tool_calls += stats.tool_calls;
            summary.largest_file_bytes = summary.largest_file_bytes.max(stats.bytes);
            if stats.subagent {
                summary.subagent_sessions += 1;
            } else {
                summary.sessions += 1;
                session_messages.push(stats.messages);
                if i == 0 && stats.path.starts_with(&sessions_dir) {
                    summary.codex_sessions += 1;
                } else {
                    summary.claude_sessions += 1;
                }
            }
        }
    }
    session_messages.sort_unstable();
    summary.median_session_messages = session_messages
        .get(session_messages.len() / 2)
        .copied()
        .unwrap_or(0);
    summary.max_session_messages = session_messages.last().copied().unwrap_or(0);
    Ok(summary)
}

/// The main logs of Claude Code sessions under `projects` (not subagent logs), sorted.
fn claude_session_logs(projects: &Path) -> io::Result<Vec<PathBuf>> {
    let mut logs = Vec::new();
    for project in fs::read_dir(projects)? {
        let project = project?.path();
        if !project.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&project)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_file() && name.ends_with(".jsonl") && !name.starts_with("agent-") {
                logs.push(path);
            }
        }
    }
    logs.sort();
    Ok(logs)
}

/// The conversation state at the end of a Claude Code log: its last main-chain record, and the
/// model last used.
fn chain_at_end(path: &Path) -> io::Result<Chain> {
    let text = fs::read_to_string(path)?;
    let mut last: Option<serde_json::Map<String, Value>> = None;
    let mut model = None;
    for line in text.lines().rev() {
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let conversational = matches!(
            record.get("type").and_then(Value::as_str),
            Some("user" | "assistant" | "system")
        );
        if !conversational || record.get("isSidechain").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if model.is_none() {
            model = record
                .get("message")
                .and_then(|m| m.get("model"))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if last.is_none() {
            last = Some(record);
        }
        if model.is_some() {
            break;
        }
    }
    let record = last.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no conversation records", path.display()),
        )
    })?;
    let field = |key: &str| {
        record
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Chain {
        session_id: field("sessionId"),
        cwd: field("cwd"),
        version: field("version"),
        git_branch: field("gitBranch"),
        slug: record
            .get("slug")
            .and_then(Value::as_str)
            .map(str::to_owned),
        agent_id: None,
        sidechain: false,
        parent: Some(field("uuid")),
        clock: time::parse_rfc3339(&field("timestamp")).unwrap_or(START_MS),
        model: model.unwrap_or_else(|| "claude-sonnet-4-5-20250929".to_owned()),
        context_tokens: 40_000,
    })
}

/// Appends exactly `n_messages` messages (prompts, tool calls, answers; a tool result is no
/// message of its own) to one Claude Code session of the corpus at `out`, chosen by `seed`,
/// continuing its chain and clock. The same corpus, seed and count append the same bytes; the
/// same seed again appends more to the same session.
pub fn append(out: &Path, seed: u64, n_messages: usize) -> io::Result<AppendSummary> {
    let logs = claude_session_logs(&out.join("claude").join("projects"))?;
    let path = logs
        .get(Rng::derive(seed, STREAM_APPEND, 0).index(logs.len()))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no Claude Code sessions to append to",
            )
        })?
        .clone();
    // The text comes from the seed and the log's length: appending again with the same seed
    // grows the same session with new records (new uuids), still deterministically.
    let length = fs::metadata(&path)?.len();
    let rng = Rng::derive(seed, STREAM_APPEND, length + 1);
    let mut chain = chain_at_end(&path)?;
    let project = Project::new(&chain.cwd);
    let folder = path.parent().unwrap_or(out).to_owned();
    let mut session = claude::Session::new(
        &project,
        rng,
        claude::era(&chain.version),
        &folder,
        u64::MAX,
    );
    let mut log = claude::Log::append(&path)?;
    claude::append_messages(&mut session, &mut log, &mut chain, n_messages)?;
    let stats = log.file.finish()?;
    Ok(AppendSummary {
        path,
        bytes: stats.bytes,
        messages: stats.messages,
    })
}

/// A size: bytes, or a number with `KB`/`MB`/`GB` (powers of 1000) or `KiB`/`MiB`/`GiB`
/// (powers of 1024), case-insensitive, a fraction allowed (`1.5GB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let scale: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} in {text:?} (use B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = if let Some((whole, fraction)) = number.split_once('.') {
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|e| format!("{text:?}: {e}"))?
        };
        let digits = fraction.len().min(9) as u32;
        let fraction: u64 = if digits == 0 {
            0
        } else {
            fraction[..digits as usize]
                .parse()
                .map_err(|e| format!("{text:?}: {e}"))?
        };
        whole * scale + fraction * scale / 10u64.pow(digits)
    } else {
        number
            .parse::<u64>()
            .map_err(|e| format!("{text:?}: {e}"))?
            * scale
    };
    if bytes == 0 {
        return Err(format!("{text:?}: the size must be more than 0 bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("100mb"), Ok(100_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("12345"), Ok(12345));
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("MB").is_err());
    }

    #[test]
    fn releases_follow_dates() {
        let (versions, _) = release(CLAUDE_RELEASES, START_MS);
        assert!(versions[0].starts_with("1.0."));
        let (versions, _) = release(CLAUDE_RELEASES, START_MS + SPAN_MS as i64 - 1);
        assert!(versions[0].starts_with("2.1."));
    }
}
