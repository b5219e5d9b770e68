//! A blob store in a local folder, shaped like the WIT `store` interface (`wit/agentsync.wit`):
//! `list-keys(prefix, start-after)`, `get`, `put-if-absent`, `delete`.
//!
//! Keys are `/`-separated and map to paths under the root folder. Writes go to a `.tmp-…` file
//! in the target folder first and are then linked into place without overwriting, so a reader
//! never sees a partial artifact and a key, once written, never changes. Temporary files are
//! invisible to listings.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::UNIX_EPOCH;

use agentsync_core::ArtifactKey;
use agentsync_core::sync::store::{ListPage, Listing, PutOutcome, Store, StoreError};
use anyhow::{Context, Result, bail};

/// What `put_if_absent` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The key did not exist and now holds the bytes.
    Written,
    /// The key already held exactly these bytes: nothing to do.
    AlreadyPresent,
}

#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FolderStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderStore { root: root.into() }
    }

    /// The path of a key. Keys must be relative, `/`-separated and free of `.`/`..` parts.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        let mut path = self.root.clone();
        for part in key.split('/') {
            if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
                bail!("invalid store key {key:?}");
            }
            path.push(part);
        }
        Ok(path)
    }

    /// Keys under `prefix` (which should end in `/`) that sort after `start_after`, in byte
    /// order, without temporary files.
    pub fn list_keys(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>> {
        let dir_prefix = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let dir = if dir_prefix.is_empty() {
            self.root.clone()
        } else {
            self.path_of(dir_prefix)?
        };
        let mut keys = Vec::new();
        collect_keys(&dir, dir_prefix, &mut keys)
            .with_context(|| format!("listing {}", dir.display()))?;
        keys.retain(|k| {
            k.starts_with(prefix)
                && !ArtifactKey::is_temporary(k)
                && start_after.is_none_or(|after| k.as_str() > after)
        });
        keys.sort();
        Ok(keys)
    }

    /// The bytes under `key`, or `None` if there are none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(key)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes `bytes` under `key` unless it exists. Writing the same bytes again is a no-op;
    /// different bytes under an existing key are an error (artifacts are write-once).
    pub fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<Put> {
        let path = self.path_of(key)?;
        if let Some(existing) = self.get(key)? {
            return same_or_conflict(key, &existing, bytes);
        }
        let dir = path
            .parent()
            .with_context(|| format!("store key {key:?} has no folder"))?;
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        let placed = place_without_overwrite(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match placed {
            Ok(()) => Ok(Put::Written),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Another writer won the race; it must have written the same bytes.
                let existing =
                    fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                same_or_conflict(key, &existing, bytes)
            }
            Err(e) => Err(e).with_context(|| format!("placing {}", path.display())),
        }
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
        }
    }
}

/// The core's sync engine over the folder (natively, and behind the component's imported WIT
/// `store`). A listing is one page; a conflicting write is an error, not `Exists`.
impl Store for FolderStore {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError> {
        let failed = |e: anyhow::Error| store_error("list", prefix, e);
        let keys = FolderStore::list_keys(self, prefix, start_after).map_err(failed)?;
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let path = self.path_of(&key).map_err(failed)?;
            let meta = fs::metadata(&path)
                .with_context(|| format!("reading {}", path.display()))
                .map_err(failed)?;
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .and_then(|d| u64::try_from(d.as_millis()).ok());
            entries.push(Listing {
                key,
                modified_ms,
                size: meta.len(),
            });
        }
        Ok(ListPage {
            entries,
            truncated: false,
        })
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        FolderStore::get(self, key).map_err(|e| store_error("get", key, e))
    }

    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        match FolderStore::put_if_absent(self, key, bytes) {
            Ok(Put::Written) => Ok(PutOutcome::Created),
            Ok(Put::AlreadyPresent) => Ok(PutOutcome::Exists),
            Err(e) => Err(store_error("put", key, e)),
        }
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        FolderStore::delete(self, key).map_err(|e| store_error("delete", key, e))
    }
}

fn store_error(op: &str, key: &str, e: anyhow::Error) -> StoreError {
    StoreError {
        op: op.into(),
        key: key.into(),
        reason: format!("{e:#}"),
        transient: false,
    }
}

fn same_or_conflict(key: &str, existing: &[u8], bytes: &[u8]) -> Result<Put> {
    if existing == bytes {
        Ok(Put::AlreadyPresent)
    } else {
        bail!("{key} already exists with different bytes (artifacts are write-once)")
    }
}

/// Hard-links `tmp` to `path`, which fails if `path` exists. File systems without hard links
/// fall back to a rename after an existence check.
fn place_without_overwrite(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if path.exists() {
                return Err(io::Error::from(ErrorKind::AlreadyExists));
            }
            fs::rename(tmp, path)
        }
    }
}

fn collect_keys(dir: &Path, key_prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: cannot be a key
        };
        let key = if key_prefix.is_empty() {
            name
        } else {
            format!("{key_prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            collect_keys(&entry.path(), &key, out)?;
        } else {
            out.push(key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(name: &str) -> FolderStore {
        let dir = std::env::temp_dir().join(format!(
            "agentsync-store-test-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        FolderStore::new(dir)
    }

    #[test]
    fn put_get_list_delete() {
        let store = temp_store("basic");
        assert_eq!(store.put_if_absent("a/x/1", b"one").unwrap(), Put::Written);
        assert_eq!(store.put_if_absent("a/x/2", b"two").unwrap(), Put::Written);
        assert_eq!(
            store.put_if_absent("b/x/1", b"three").unwrap(),
            Put::Written
        );
        assert_eq!(
            store.put_if_absent("a/x/1", b"one").unwrap(),
            Put::AlreadyPresent
        );
        assert!(store.put_if_absent("a/x/1", b"other").is_err());
        assert_eq!(store.get("a/x/2").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(store.get("a/x/3").unwrap(), None);
        fs::write(store.path_of("a/x/.tmp-9").unwrap(), b"partial").unwrap();
        assert_eq!(store.list_keys("a/", None).unwrap(), ["a/x/1", "a/x/2"]);
        assert_eq!(store.list_keys("a/x/", Some("a/x/1")).unwrap(), ["a/x/2"]);
        assert_eq!(store.list_keys("c/", None).unwrap(), Vec::<String>::new());
        store.delete("a/x/1").unwrap();
        store.delete("a/x/1").unwrap();
        assert_eq!(store.list_keys("", None).unwrap(), ["a/x/2", "b/x/1"]);
        fs::remove_dir_all(&store.root).unwrap();
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = temp_store("escape");
        for bad in ["../x", "a/../../x", "/x", "a//b", "a/./b", "a\\..\\b"] {
            assert!(store.path_of(bad).is_err(), "{bad}");
        }
    }
}
