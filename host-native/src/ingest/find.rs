//! Which logs an ingest reads: every agent's folders (configured, or where the agent keeps
//! them by default), or the files and folders named on the command line.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use agentsync_logs::agent::{self, Agent, HEAD_BYTES, Places};
use agentsync_logs::discover;

/// A log file and the agent whose log it is.
pub type Log = (PathBuf, &'static Agent);

/// Folders under a folder given on the command line where an agent's logs may sit besides
/// its default places relative to a home (`.claude/projects`): the layouts this CLI accepted
/// before every agent had its entry.
fn legacy_subfolders(agent: &Agent) -> &'static [&'static str] {
    match agent.name {
        "claude" => &["projects", "claude/projects"],
        "codex" => &["sessions", "codex/sessions"],
        _ => &[],
    }
}

/// Every log of `agents` under the folders `roots_of` gives each (its configured folders, or
/// its default ones).
pub fn configured_logs(
    agents: &[&'static Agent],
    roots_of: impl Fn(&'static Agent) -> Vec<PathBuf>,
) -> io::Result<Vec<Log>> {
    let mut out = Vec::new();
    for &agent in agents {
        for root in roots_of(agent) {
            out.extend((agent.discover)(&root)?.into_iter().map(|p| (p, agent)));
        }
    }
    Ok(dedup(out))
}

/// The logs named on the command line. A file is read as `only`'s log when given, else as
/// the log of the agent that recognizes it (a file no agent recognizes is refused with its
/// name). A folder is searched for every agent's logs (or `only`'s): as a folder of that
/// agent's layout, and as a home holding the agent's default folders (`.claude/projects`,
/// `.gemini/tmp`, ...).
pub fn named_logs(paths: &[PathBuf], only: Option<&'static Agent>) -> io::Result<Vec<Log>> {
    let agents: Vec<&'static Agent> = match only {
        Some(agent) => vec![agent],
        None => agent::ALL.to_vec(),
    };
    let mut out = Vec::new();
    for path in paths {
        // Absolute, so that a log has one key however it was named, and a parser that names
        // a session after the folders holding its log sees them.
        let path = &std::path::absolute(path)?;
        if path.is_file() {
            let agent = match only {
                Some(agent) => agent,
                None => recognize(path)?,
            };
            out.push((path.clone(), agent));
        } else if path.is_dir() {
            let home = Places::under(path, None, None, None);
            for &agent in &agents {
                let mut roots = vec![path.clone()];
                roots.extend((agent.default_roots)(&home));
                roots.extend(legacy_subfolders(agent).iter().map(|s| path.join(s)));
                for root in roots {
                    out.extend((agent.discover)(&root)?.into_iter().map(|p| (p, agent)));
                }
            }
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is neither a file nor a folder", path.display()),
            ));
        }
    }
    Ok(dedup(out))
}

/// The agent whose log the file at `path` is, from its name and first bytes.
fn recognize(path: &Path) -> io::Result<&'static Agent> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)?;
    agent::recognize(path, &head).ok_or_else(|| {
        let names: Vec<&str> = agent::ALL.iter().map(|a| a.product).collect();
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is no log of a known agent ({}); name the agent with --agent if it is one",
                path.display(),
                names.join(", ")
            ),
        )
    })
}

/// Sorted by path, each file once: a file two agents' folders both hold goes to the agent
/// that recognizes it (the first one otherwise).
fn dedup(mut logs: Vec<Log>) -> Vec<Log> {
    logs.sort_by_cached_key(|(path, agent)| (discover::path_order_key(path), agent.name));
    logs.dedup_by(|b, a| a.0 == b.0 && a.1.name == b.1.name);
    let mut out: Vec<Log> = Vec::with_capacity(logs.len());
    let mut i = 0;
    while i < logs.len() {
        let same = logs[i..].iter().take_while(|l| l.0 == logs[i].0).count();
        if same == 1 {
            out.push(logs[i].clone());
        } else {
            let candidates = &logs[i..i + same];
            let chosen = recognize(&candidates[0].0)
                .ok()
                .and_then(|a| candidates.iter().find(|c| c.1.name == a.name))
                .unwrap_or(&candidates[0]);
            out.push(chosen.clone());
        }
        i += same;
    }
    out
}
