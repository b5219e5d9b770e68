//! `agentsync inspect`: any stored artifact as pretty JSON.

use std::path::{Component, Path};

use agentsync_core::{Artifact, ArtifactKey, frame};
use anyhow::{Context, Result};

/// Opens the artifact stored in `path` and returns it as pretty JSON.
///
/// With `key`, or when the path ends in a valid key (`<origin>/segments/<id>.ndjson.zst`,
/// `roots/<origin>/<seq>-<id>.root`, ...), the artifact is checked against its name: kind, id,
/// origin, sequence. Otherwise only the frame's own header is trusted.
pub fn inspect(path: &Path, key: Option<&str>) -> Result<String> {
    let stored = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let key = match key {
        Some(text) => Some(
            text.parse::<ArtifactKey>()
                .with_context(|| format!("--key {text:?} is not an artifact key"))?,
        ),
        None => key_from_path(path),
    };
    let artifact = match &key {
        Some(key) => Artifact::open(key, &stored).with_context(|| {
            format!(
                "{} is not a valid {} artifact named {key}",
                path.display(),
                key.kind().name()
            )
        })?,
        None => {
            let opened = frame::open(&stored, None, None)
                .with_context(|| format!("{} is not a valid artifact", path.display()))?;
            Artifact::decode(opened.header.kind, &opened.canonical).with_context(|| {
                format!(
                    "{} does not decode as a {} artifact",
                    path.display(),
                    opened.header.kind.name()
                )
            })?
        }
    };
    serde_json::to_string_pretty(&artifact).context("rendering the artifact as JSON")
}

/// The key spelled by the last three components of `path`, if they spell one.
pub fn key_from_path(path: &Path) -> Option<ArtifactKey> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    let tail = parts.get(parts.len().checked_sub(3)?..)?;
    tail.join("/").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_last_three_path_components() {
        let id = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        let seg = format!("/tmp/store/laptop-a1b2c3/segments/{id}.ndjson.zst");
        let key = key_from_path(Path::new(&seg)).unwrap();
        assert_eq!(
            key.to_string(),
            format!("laptop-a1b2c3/segments/{id}.ndjson.zst")
        );
        let root = format!("store/roots/laptop-a1b2c3/00000000000000000001-{id}.root");
        let key = key_from_path(Path::new(&root)).unwrap();
        assert_eq!(key.kind().name(), "root");
        assert!(key_from_path(Path::new("x.root")).is_none());
        assert!(key_from_path(Path::new("/tmp/a/b/c")).is_none());
    }
}
