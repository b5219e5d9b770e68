//! The corpus is deterministic, the size asked for, and shaped with a heavy tail.

use std::fs;
use std::path::{Path, PathBuf};

use agentsync_bench::{CorpusSpec, CorpusSummary, append, generate};

/// A fresh folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("agentsync-bench-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every file under `root`, relative, sorted.
fn files(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// BLAKE3 over every file's path and bytes, in path order.
fn tree_hash(root: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    for file in files(root) {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(&[0]);
        let bytes = fs::read(root.join(&file)).unwrap();
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hasher.finalize()
}

fn corpus(name: &str, seed: u64, target_bytes: u64) -> (TempDir, CorpusSummary) {
    let dir = TempDir::new(name);
    let summary = generate(&dir.0, &CorpusSpec { seed, target_bytes }).unwrap();
    (dir, summary)
}

#[test]
fn the_same_seed_and_size_write_the_same_tree() {
    let (a, summary_a) = corpus("det-a", 42, 2_000_000);
    let (b, summary_b) = corpus("det-b", 42, 2_000_000);
    assert_eq!(summary_a, summary_b);
    assert_eq!(files(&a.0), files(&b.0));
    assert_eq!(tree_hash(&a.0), tree_hash(&b.0));

    let (c, _) = corpus("det-c", 43, 2_000_000);
    assert_ne!(
        tree_hash(&a.0),
        tree_hash(&c.0),
        "another seed, another corpus"
    );

    // Appending is deterministic too.
    let appended_a = append(&a.0, 7, 5).unwrap();
    let appended_b = append(&b.0, 7, 5).unwrap();
    assert_eq!(
        appended_a.path.strip_prefix(&a.0).unwrap(),
        appended_b.path.strip_prefix(&b.0).unwrap()
    );
    assert_eq!(appended_a.messages, 5);
    assert_eq!(tree_hash(&a.0), tree_hash(&b.0));
}

#[test]
fn the_corpus_has_the_size_asked_for() {
    for (seed, target) in [(1, 2_000_000u64), (2, 5_000_000), (3, 300_000)] {
        let (dir, summary) = corpus(&format!("size-{seed}"), seed, target);
        let on_disk: u64 = files(&dir.0)
            .iter()
            .map(|f| fs::metadata(dir.0.join(f)).unwrap().len())
            .sum();
        assert_eq!(on_disk, summary.bytes);
        assert_eq!(files(&dir.0).len() as u64, summary.files);
        let ratio = summary.bytes as f64 / target as f64;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "seed {seed}: {} of {target} bytes",
            summary.bytes
        );
        assert_eq!(summary.files, summary.sessions + summary.subagent_sessions);
        assert_eq!(
            summary.sessions,
            summary.claude_sessions + summary.codex_sessions
        );
    }
}

#[test]
fn session_lengths_have_a_heavy_tail() {
    let (_dir, summary) = corpus("tail", 9, 5_000_000);
    assert!(summary.sessions >= 20, "{summary:?}");
    assert!(
        summary.max_session_messages >= 8 * summary.median_session_messages.max(1),
        "longest session {} messages, median {}",
        summary.max_session_messages,
        summary.median_session_messages
    );
    // About 80% of sessions are Claude Code's.
    let claude = summary.claude_sessions as f64 / summary.sessions as f64;
    assert!((0.65..=0.92).contains(&claude), "{summary:?}");
    assert!(summary.subagent_sessions > 0, "{summary:?}");
}

#[test]
fn a_corpus_is_never_written_over_another() {
    let (dir, _) = corpus("twice", 1, 300_000);
    let again = generate(
        &dir.0,
        &CorpusSpec {
            seed: 1,
            target_bytes: 300_000,
        },
    );
    assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
}
