//! Finding agents' session logs on disk.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Claude Code logs under `projects` (`~/.claude/projects`): `<project>/*.jsonl` and
/// `<project>/<session>/subagents/*.jsonl`, sorted. A missing folder has none. The rest of a
/// session's folder is not walked: `tool-results/` holds outputs saved beside the log, read
/// with the result that names them (`claude.rs`), never as logs.
pub fn claude_logs(projects: &Path) -> io::Result<Vec<PathBuf>> {
    let mut logs = Vec::new();
    for project in subdirectories(projects)? {
        logs.extend(jsonl_files(&project)?);
        for session in subdirectories(&project)? {
            logs.extend(jsonl_files(&session.join("subagents"))?);
        }
    }
    sort_paths(&mut logs);
    Ok(logs)
}

/// Codex rollouts under `sessions` (`~/.codex/sessions`): `rollout-*.jsonl` at any depth (the
/// `YYYY/MM/DD` folders, or flat in older versions), sorted. A missing folder has none.
pub fn codex_rollouts(sessions: &Path) -> io::Result<Vec<PathBuf>> {
    // Deep enough for `YYYY/MM/DD`, bounded so a symlink loop cannot recurse forever.
    const MAX_DEPTH: usize = 6;
    let mut rollouts = Vec::new();
    let mut folders = vec![(sessions.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        if depth < MAX_DEPTH {
            folders.extend(subdirectories(&folder)?.into_iter().map(|d| (d, depth + 1)));
        }
        rollouts.extend(jsonl_files(&folder)?.into_iter().filter(|p| is_rollout(p)));
    }
    sort_paths(&mut rollouts);
    Ok(rollouts)
}

/// Whether a file is named like a Codex rollout (`rollout-*`).
pub fn is_rollout(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("rollout-"))
}

/// OpenCode databases under `root` (`~/.local/share/opencode`, or a folder holding such folders):
/// `opencode.db`, and the channel databases `opencode-<channel>.db` of other builds, sorted. The
/// folders OpenCode fills with many small files (`storage`, `snapshot`, `log`, `bin`) are not
/// walked. A missing folder has none.
pub fn opencode_databases(root: &Path) -> io::Result<Vec<PathBuf>> {
    const MAX_DEPTH: usize = 3;
    const NOT_WALKED: [&str; 5] = ["storage", "snapshot", "log", "bin", "tool-output"];
    let mut databases = Vec::new();
    let mut folders = vec![(root.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        for entry in entries(&folder)? {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if depth < MAX_DEPTH && !NOT_WALKED.contains(&name.as_ref()) {
                    folders.push((path, depth + 1));
                }
            } else if path.is_file() && is_opencode_database(&path) {
                databases.push(path);
            }
        }
    }
    sort_paths(&mut databases);
    Ok(databases)
}

/// Whether a file is named like an OpenCode database (`opencode.db`, `opencode-<channel>.db`).
pub fn is_opencode_database(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| {
            name == "opencode.db"
                || name
                    .strip_prefix("opencode-")
                    .and_then(|rest| rest.strip_suffix(".db"))
                    .is_some_and(|channel| !channel.is_empty())
        })
}

/// Amp threads under `threads` (`~/.local/share/amp/threads`): `T-<id>.json` files, directly
/// in it or in folders below (a `--from` folder holding copies of several machines' `threads`),
/// at most 4 levels down, sorted. A missing folder has none.
pub fn amp_threads(threads: &Path) -> io::Result<Vec<PathBuf>> {
    // Bounded so a symlink loop cannot recurse forever.
    const MAX_DEPTH: usize = 4;
    let mut found = Vec::new();
    let mut folders = vec![(threads.to_path_buf(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        for entry in entries(&folder)? {
            let path = entry.path();
            if path.is_dir() {
                if depth < MAX_DEPTH {
                    folders.push((path, depth + 1));
                }
            } else if path.is_file() && is_amp_thread(&path) {
                found.push(path);
            }
        }
    }
    sort_paths(&mut found);
    Ok(found)
}

/// Whether a file is named like an Amp thread: `T-<id>.json`, the id starting with a letter or
/// digit and made of letters, digits, `-` and `_`.
pub fn is_amp_thread(path: &Path) -> bool {
    let Some(id) = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_suffix(".json"))
    else {
        return false;
    };
    is_amp_thread_id(id)
}

/// `T-` followed by a letter or digit, then letters, digits, `-` and `_` (Amp's `T-<uuid>`).
pub fn is_amp_thread_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("T-") else {
        return false;
    };
    rest.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The entries of a folder. A folder that is missing, is no folder, or may not be read holds
/// no logs this user can read: none, never an error that would stop the ingest of every other
/// folder (an unreadable folder somewhere under `--from ~`).
pub(crate) fn entries(folder: &Path) -> io::Result<Vec<fs::DirEntry>> {
    match fs::read_dir(folder) {
        // An entry that vanished or cannot be read while listing is left out likewise.
        Ok(entries) => Ok(entries.filter_map(Result::ok).collect()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// The paths in a folder (see [`entries`]).
pub(crate) fn paths(folder: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(entries(folder)?
        .into_iter()
        .map(|entry| entry.path())
        .collect())
}

/// Bytes that sort as `Path` does, component by component: the path's bytes with each
/// separator made the smallest byte. Comparing these is a `memcmp`; comparing paths splits
/// both into components at every comparison, which was a tenth of a no-op sync at 10 k logs.
pub fn path_order_key(path: &Path) -> Vec<u8> {
    let mut key = path.as_os_str().as_encoded_bytes().to_vec();
    for byte in &mut key {
        if std::path::is_separator(char::from(*byte)) {
            *byte = 0;
        }
    }
    key
}

fn sort_paths(paths: &mut [PathBuf]) {
    paths.sort_by_cached_key(|p| path_order_key(p));
}

pub(crate) fn subdirectories(folder: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(entries(folder)?
        .into_iter()
        .filter(|entry| is_kind(entry, fs::FileType::is_dir, Path::is_dir))
        .map(|entry| entry.path())
        .collect())
}

fn jsonl_files(folder: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(entries(folder)?
        .into_iter()
        .filter(|entry| {
            Path::new(&entry.file_name())
                .extension()
                .is_some_and(|ext| ext == "jsonl")
                && is_kind(entry, fs::FileType::is_file, Path::is_file)
        })
        .map(|entry| entry.path())
        .collect())
}

/// Whether a listed entry is of a kind, a link counting as what it points to. The listing
/// says the kind on most file systems, so this costs a `stat` only for links (and where it
/// does not): a walk of ten thousand logs used to spend most of a no-op sync on them.
fn is_kind(
    entry: &fs::DirEntry,
    listed: fn(&fs::FileType) -> bool,
    followed: fn(&Path) -> bool,
) -> bool {
    match entry.file_type() {
        Ok(kind) if !kind.is_symlink() => listed(&kind),
        _ => followed(&entry.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name a folder listing gives (never `.` or `..`).
    fn name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        "[a-c.\\-]{1,4}".prop_filter("a listed name", |n| n != "." && n != "..")
    }

    proptest::proptest! {
        #[test]
        fn path_order_keys_sort_as_paths_do(
            a in proptest::collection::vec(name(), 1..4),
            b in proptest::collection::vec(name(), 1..4),
            absolute in proptest::bool::ANY,
        ) {
            let path = |parts: &[String]| {
                let joined = parts.join("/");
                PathBuf::from(if absolute { format!("/{joined}") } else { joined })
            };
            let (a, b) = (path(&a), path(&b));
            proptest::prop_assert_eq!(path_order_key(&a).cmp(&path_order_key(&b)), a.cmp(&b));
        }
    }

    #[test]
    fn finds_sessions_subagents_and_rollouts() {
        let root = std::env::temp_dir().join(format!("agentsync-discover-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let files = [
            "claude/p1/s1.jsonl",
            "claude/p1/agent-a1.jsonl",
            "claude/p1/s1/subagents/agent-a2.jsonl",
            "claude/p1/s1/subagents/agent-a2.meta.json",
            "claude/p1/s1/tool-results/toolu_01.txt",
            "claude/p1/s1/tool-results/toolu_02.json",
            // Whatever a saved output is named, it is no log.
            "claude/p1/s1/tool-results/b7x2k9q.jsonl",
            "claude/p2/notes.txt",
            "codex/2025/09/14/rollout-2025-09-14T10-02-11-x.jsonl",
            "codex/rollout-flat.jsonl",
            "codex/2025/09/14/other.jsonl",
        ];
        for file in files {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "").unwrap();
        }
        let relative = |paths: Vec<PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| {
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/")
                })
                .collect()
        };
        assert_eq!(
            relative(claude_logs(&root.join("claude")).unwrap()),
            [
                "claude/p1/agent-a1.jsonl",
                "claude/p1/s1/subagents/agent-a2.jsonl",
                "claude/p1/s1.jsonl"
            ]
        );
        assert_eq!(
            relative(codex_rollouts(&root.join("codex")).unwrap()),
            [
                "codex/2025/09/14/rollout-2025-09-14T10-02-11-x.jsonl",
                "codex/rollout-flat.jsonl"
            ]
        );
        assert!(claude_logs(&root.join("missing")).unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();
    }
}
