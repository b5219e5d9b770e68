//! `agentsync conformance`: runs the conformance vectors (docs/format.md, "Vectors and the runner
//! protocol") with the native core or with the core as a WebAssembly component, prints one
//! result line per vector and checks each against the vector's `expect`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use agentsync_core::conformance::{check, run_vector};
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde_json::Value;

use crate::wasm::CoreComponent;

/// The file listing the vectors allowed to fail, looked up in the first folder by default.
pub const EXPECTED_FAILURES_FILE: &str = "expected-failures.txt";

/// Which build of the core runs the vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// `agentsync_core::conformance::run_vector`, linked into this binary.
    Native,
    /// The `conformance.run-vector` export of the core component, under wasmtime.
    Wasm,
}

enum Engine {
    Native,
    Wasm(Box<CoreComponent>),
}

impl Engine {
    fn run(&mut self, vector: &Value) -> Result<String> {
        match self {
            Engine::Native => Ok(run_vector(vector).to_string()),
            Engine::Wasm(component) => component.run_vector(&vector.to_string()),
        }
    }
}

pub struct Options<'a> {
    pub engine: EngineKind,
    pub component: Option<&'a Path>,
    pub expected_failures: Option<&'a Path>,
    pub paths: &'a [PathBuf],
}

/// What a run found, for the summary.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    expected_failures: usize,
    /// Failures not listed as expected: (vector, file, why).
    failed: Vec<(String, PathBuf, String)>,
    /// Listed as expected failures but passing.
    stale: Vec<String>,
}

/// Runs every vector under `options.paths`, writing one result line each to `out`, and a summary
/// to stderr. Fails unless every vector passes or is listed as an expected failure, and every
/// listed vector that ran still fails.
pub fn run(options: &Options<'_>, out: &mut dyn Write) -> Result<()> {
    if options.paths.is_empty() {
        bail!("name at least one folder (or file) of vectors");
    }
    let files = vector_files(options.paths)?;
    if files.is_empty() {
        bail!("no *.json vector files under the given paths");
    }
    let expected_path = match options.expected_failures {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = options.paths[0].join(EXPECTED_FAILURES_FILE);
            default.is_file().then_some(default)
        }
    };
    let expected = match &expected_path {
        Some(path) => read_expected_failures(path)?,
        None => BTreeSet::new(),
    };

    let mut engine = match options.engine {
        EngineKind::Native => Engine::Native,
        EngineKind::Wasm => {
            let path = match options.component {
                Some(path) => path.to_path_buf(),
                None => crate::wasm::default_component_path()?,
            };
            Engine::Wasm(Box::new(CoreComponent::load(&path)?))
        }
    };

    let mut tally = Tally::default();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in &files {
        for (index, vector) in read_vectors(file)?.iter().enumerate() {
            let name = match vector.get("name").and_then(Value::as_str) {
                Some(name) => name.to_owned(),
                None => bail!("{}: vector {index} has no name", file.display()),
            };
            if let Some(first) = seen.insert(name.clone(), file.clone()) {
                bail!(
                    "vector name {name:?} appears twice ({} and {})",
                    first.display(),
                    file.display()
                );
            }
            let line = engine
                .run(vector)
                .with_context(|| format!("running vector {name:?} of {}", file.display()))?;
            writeln!(out, "{line}").context("writing a result line")?;
            let verdict = serde_json::from_str::<Value>(&line)
                .map_err(|e| format!("the result line is not JSON: {e}"))
                .and_then(|result| check(vector, &result));
            match (verdict, expected.contains(&name)) {
                (Ok(()), false) => tally.passed += 1,
                (Ok(()), true) => tally.stale.push(name),
                (Err(_), true) => tally.expected_failures += 1,
                (Err(why), false) => tally.failed.push((name, file.clone(), why)),
            }
        }
    }
    out.flush().context("writing the result lines")?;

    let engine_name = match options.engine {
        EngineKind::Native => "native",
        EngineKind::Wasm => "wasm",
    };
    for (name, file, why) in &tally.failed {
        eprintln!("FAIL {name} ({}): {why}", file.display());
    }
    let list = expected_path
        .as_deref()
        .map_or_else(String::new, |p| p.display().to_string());
    for name in &tally.stale {
        eprintln!("STALE {name}: listed in {list} as an expected failure, but it passes");
    }
    for name in expected.iter().filter(|n| !seen.contains_key(*n)) {
        eprintln!("note: {name}, listed in {list}, is not among the vectors run");
    }
    eprintln!(
        "conformance ({engine_name}): {} vectors in {} files: {} passed, {} failed, {} expected \
         failures, {} stale expected failures",
        seen.len(),
        files.len(),
        tally.passed,
        tally.failed.len(),
        tally.expected_failures,
        tally.stale.len()
    );
    if !tally.failed.is_empty() || !tally.stale.is_empty() {
        bail!(
            "{} vectors failed unexpectedly and {} listed expected failures pass",
            tally.failed.len(),
            tally.stale.len()
        );
    }
    Ok(())
}

/// Every `*.json` file under `paths` (folders are walked recursively), each folder's sorted by
/// path; a path naming a file is taken as it is.
fn vector_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        walk(path, &mut found)?;
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if kind.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
    Ok(())
}

/// The vectors of one file, `{"description": …, "vectors": [ … ]}`.
fn read_vectors(file: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    match doc.get_mut("vectors").map(Value::take) {
        Some(Value::Array(vectors)) => Ok(vectors),
        _ => bail!(
            "{} is not a vector file: it has no \"vectors\" array",
            file.display()
        ),
    }
}

/// One vector name a line; `#` starts a comment, blank lines are skipped.
fn read_expected_failures(path: &Path) -> Result<BTreeSet<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_failures_skip_comments_and_blank_lines() {
        let dir = std::env::temp_dir().join(format!("agentsync-xfail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(EXPECTED_FAILURES_FILE);
        std::fs::write(&path, "# header\n\nsegment-a  # why\n  hlc-b\n#gone\n").unwrap();
        let names = read_expected_failures(&path).unwrap();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["hlc-b", "segment-a"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
