//! A blob store in a local folder, shaped like the WIT `store` interface (`wit/agentsync.wit`):
//! `list-keys(prefix, start-after)`, `get`, `put-if-absent`, `delete`.
//!
//! Keys are `/`-separated and map to paths under the root folder. A write goes to an unnamed
//! file in the key's folder first (`O_TMPFILE` on Linux; a synced `.tmp-…` file elsewhere) and
//! is then linked into place, which fails rather than overwrite, so a reader never sees a
//! partial artifact and two racing writers cannot both win. Temporary files are invisible to
//! listings.
//!
//! A key, once written, only changes to heal it: when an artifact key holds bytes that fail
//! verification and a writer offers bytes that pass, the good copy replaces the bad one (edge case
//! 13 in DESIGN.md). Two valid copies of one artifact may differ byte for byte (encoders compress
//! differently; ids hash the uncompressed bytes), so they are compared by what they hold.
//!
//! The store never reads or writes through a symbolic link below its root: a link would let a
//! GC `delete` or a relayed `put` reach files outside the store. Each folder is checked once
//! per store (and its clones) and then used through its open descriptor on Linux ([`Folder`]).

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use agentsync_core::ArtifactKey;
use agentsync_core::sync::store::{
    Bounded, ListPage, Listing, PutOutcome, Request, Response, Store, StoreError, answer_one,
};
use anyhow::{Context, Result, bail};

#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
    /// Files written but not yet made durable (shared by clones of the store).
    unsynced: Arc<Mutex<Unsynced>>,
    /// The folders this store (and its clones) inspected and opened, by their key prefix
    /// (see [`Folder`]).
    opened: Arc<Mutex<HashMap<String, Folder>>>,
}

/// At most this many folders are kept open; a store with more (a mirror of many origins, served
/// for days) opens them again as it needs them.
const OPEN_FOLDERS: usize = 256;

/// Data artifacts are written without an fsync each: a root (or an event batch, or any key
/// that is not a data artifact) is a barrier that first makes everything written before it
/// durable, in one `syncfs` on Linux. So the order "data before references" holds on disk
/// too, at the cost of one flush per root instead of two fsyncs per file. Data lost to a
/// power cut before its root is harmless: nothing references it yet, and the next export
/// writes it again (a damaged leftover copy is replaced by the valid one).
#[derive(Debug, Default)]
struct Unsynced {
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How often a read or write is retried when the file under a key changes while it is used
/// (a racing writer, healer or GC); more than that means something keeps replacing it.
const ATTEMPTS: usize = 3;

/// What walking a key's folders found.
enum Folders {
    /// Every folder exists and none is a symbolic link.
    Present(PathBuf),
    /// A folder does not exist, so neither does anything below it.
    Missing,
    /// This path is a symbolic link.
    Symlink(PathBuf),
    /// This path is not a folder.
    NotAFolder(PathBuf),
}

impl FolderStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderStore {
            root: root.into(),
            unsynced: Arc::default(),
            opened: Arc::default(),
        }
    }

    /// Answers requests of one round on every core, in their order. A first sync puts ~43 000
    /// files, and the kernel's work of creating each is most of its time. The requests of a
    /// round are independent (the engine's contract), and a root comes in a later round than
    /// the data it reaches, so its barrier ([`Unsynced`]) still makes that data durable first.
    pub fn answer_round<R: Borrow<Request> + Sync>(&self, requests: &[R]) -> Vec<Response> {
        use rayon::prelude::*;
        requests
            .par_iter()
            .map_init(
                || self.clone(),
                |store, request| answer_one(store, request.borrow()),
            )
            .collect()
    }

    /// Makes every file written so far durable (see [`Unsynced`]).
    pub fn flush(&self) -> Result<()> {
        let mut unsynced = self
            .unsynced
            .lock()
            .map_err(|_| anyhow::anyhow!("a writer of {} panicked", self.root.display()))?;
        if unsynced.files.is_empty() {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let root = File::open(&self.root)
                .with_context(|| format!("opening {}", self.root.display()))?;
            // SAFETY: `syncfs` only reads the descriptor, which `root` keeps open.
            if unsafe { libc::syncfs(root.as_raw_fd()) } != 0 {
                return Err(io::Error::last_os_error())
                    .with_context(|| format!("flushing {}", self.root.display()));
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            for file in &unsynced.files {
                if let Ok(f) = File::open(file) {
                    f.sync_all()
                        .with_context(|| format!("flushing {}", file.display()))?;
                }
            }
            for dir in &unsynced.dirs {
                sync_dir(dir);
            }
        }
        unsynced.files.clear();
        unsynced.dirs.clear();
        Ok(())
    }

    fn defer_sync(&self, file: PathBuf, dir: &Path) {
        if let Ok(mut unsynced) = self.unsynced.lock() {
            unsynced.files.push(file);
            unsynced.dirs.insert(dir.to_path_buf());
        }
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
    /// order, without temporary files or symbolic links.
    #[cfg(test)]
    pub fn list_keys(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>> {
        Ok(self
            .list_page(prefix, start_after, usize::MAX)?
            .entries
            .into_iter()
            .map(|l| l.key)
            .collect())
    }

    /// The bytes under `key`, or `None` if there are none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(match self.get_bounded(key, u64::MAX)? {
            Bounded::Bytes(bytes) => Some(bytes),
            Bounded::Missing | Bounded::TooLarge(_) => None,
        })
    }

    /// The bytes under `key` if they are at most `max_bytes`: a larger file is never read.
    pub fn get_bounded(&self, key: &str, max_bytes: u64) -> Result<Bounded> {
        self.path_of(key)?;
        match self.folder(key, false)? {
            Some(folder) => folder.read(key, file_name(key), max_bytes),
            None => Ok(Bounded::Missing),
        }
    }

    /// Writes `bytes` under `key` unless it exists; an existing key keeps its bytes. The store
    /// knows nothing of the format: healing a corrupt copy is the sync engine's decision
    /// ([`FolderStore::replace`]).
    pub fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome> {
        let path = self.path_of(key)?;
        if ArtifactKey::is_temporary(key) {
            // It would be invisible to listings and could collide with a writer's temp file.
            bail!("store key {key:?} has a temporary file's name");
        }
        let folder = self.create_folder(key)?;
        match self.put_in(&folder, key, &path, bytes) {
            // The folder may have been removed since this store opened it (by hand: no writer
            // removes folders), which the kernel reports in more than one way: look up the
            // path again, once.
            Err(_) => {
                self.forget_folder(key);
                let folder = self.create_folder(key)?;
                self.put_in(&folder, key, &path, bytes)
            }
            outcome => outcome,
        }
    }

    fn put_in(&self, folder: &Folder, key: &str, path: &Path, bytes: &[u8]) -> Result<PutOutcome> {
        let name = file_name(key);
        // Most keys put are new, which one look says; anything but "nothing there" is read
        // and judged by `read`.
        let absent = matches!(folder.inspect(name), Ok(None));
        if !absent && let Bounded::Bytes(existing) = folder.read(key, name, u64::MAX)? {
            return Ok(settle(&existing, bytes));
        }
        let barrier = is_barrier(key);
        if barrier {
            self.flush()?;
        }
        let staged = folder.stage(bytes, barrier)?;
        for _ in 0..ATTEMPTS {
            match publish(path, bytes, barrier, |_| folder.link(&staged, name)) {
                Ok(()) => {
                    if barrier {
                        folder.sync();
                    } else {
                        self.defer_sync(path.to_path_buf(), &folder.path);
                    }
                    return Ok(PutOutcome::Created);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // Another writer got there first (or a symlink or folder sits there, which
                    // `read` refuses with a clear error).
                    if let Bounded::Bytes(existing) = folder.read(key, name, u64::MAX)? {
                        return Ok(settle(&existing, bytes));
                    }
                    // ...and was deleted again before we could read it: try once more.
                }
                Err(e) => return Err(e).with_context(|| format!("placing {}", path.display())),
            }
        }
        bail!(
            "{} kept appearing and disappearing while being written",
            path.display()
        )
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        self.path_of(key)?;
        match self.folder(key, false)? {
            Some(folder) => folder.remove(key, file_name(key)),
            None => Ok(()),
        }
    }

    /// At most `limit` keys under `prefix` after `start_after`, in byte order, and whether
    /// more follow: the folders are walked in key order and the walk stops there, so a page
    /// costs what it lists, not the whole store (`serve` pages through large mirrors). Keys
    /// come with the metadata of the walk itself, so that a key deleted mid-listing is simply
    /// absent rather than an error.
    pub fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let dir_prefix = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let dir = if dir_prefix.is_empty() {
            self.root.clone()
        } else {
            // Validates the prefix's folder part as a key would be.
            self.path_of(dir_prefix)?;
            // A prefix through a symlink or a file has no keys under it.
            match self.folders(&format!("{dir_prefix}/"), false)? {
                Folders::Present(dir) => dir,
                Folders::Missing | Folders::Symlink(_) | Folders::NotAFolder(_) => {
                    return Ok(ListPage::default());
                }
            }
        };
        let mut walk = PageWalk {
            wanted: prefix,
            after: start_after,
            // One more than asked: whether more follow.
            limit: limit.saturating_add(1),
            out: Vec::new(),
        };
        walk.folder(&dir, dir_prefix)
            .with_context(|| format!("listing {}", dir.display()))?;
        let truncated = walk.out.len() > limit;
        walk.out.truncate(limit);
        Ok(ListPage {
            entries: walk.out,
            truncated,
        })
    }

    /// Walks the folders holding `key` (every part but the last) from the root, refusing to
    /// pass through a symbolic link. The root itself may be a link: the user chose it.
    fn folders(&self, key: &str, create: bool) -> Result<Folders> {
        let parts: Vec<&str> = key.split('/').collect();
        let folder_parts = &parts[..parts.len().saturating_sub(1)];
        if create {
            if !self.root.is_dir() {
                fs::create_dir_all(&self.root)
                    .with_context(|| format!("creating {}", self.root.display()))?;
                if let Some(parent) = self.root.parent() {
                    sync_dir(parent);
                }
            }
        } else {
            match fs::metadata(&self.root) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Ok(Folders::NotAFolder(self.root.clone())),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Folders::Missing),
                Err(e) => {
                    return Err(e).with_context(|| format!("inspecting {}", self.root.display()));
                }
            }
        }
        let mut dir = self.root.clone();
        for part in folder_parts {
            let parent = dir.clone();
            dir.push(part);
            let meta = match fs::symlink_metadata(&dir) {
                Ok(meta) => meta,
                Err(e) if e.kind() == ErrorKind::NotFound && !create => {
                    return Ok(Folders::Missing);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => match fs::create_dir(&dir) {
                    Ok(()) => {
                        // The new folder's name must be durable before anything in it is.
                        sync_dir(&parent);
                        continue;
                    }
                    // A racing writer created it: check what it is like any existing path.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => fs::symlink_metadata(&dir)
                        .with_context(|| format!("inspecting {}", dir.display()))?,
                    Err(e) => {
                        return Err(e).with_context(|| format!("creating {}", dir.display()));
                    }
                },
                Err(e) => return Err(e).with_context(|| format!("inspecting {}", dir.display())),
            };
            if meta.file_type().is_symlink() {
                return Ok(Folders::Symlink(dir));
            }
            if !meta.is_dir() {
                return Ok(Folders::NotAFolder(dir));
            }
        }
        Ok(Folders::Present(dir))
    }

    /// Creates the folders holding `key` and returns the innermost one.
    fn create_folders(&self, key: &str) -> Result<PathBuf> {
        match self.folders(key, true)? {
            Folders::Present(dir) => Ok(dir),
            Folders::Symlink(at) => Err(symlink_refused(key, &at)),
            Folders::NotAFolder(at) => Err(not_a_folder(key, &at)),
            Folders::Missing => bail!("the folders of {key:?} vanished while being created"),
        }
    }

    /// The folder holding `key`, opened ([`Folder`]); `None` if it does not exist.
    fn folder(&self, key: &str, create: bool) -> Result<Option<Folder>> {
        let prefix = folder_prefix(key);
        let known = self.opened.lock().ok().and_then(|o| o.get(prefix).cloned());
        if let Some(folder) = known {
            return Ok(Some(folder));
        }
        let path = match self.folders(key, create)? {
            Folders::Present(path) => path,
            Folders::Missing => return Ok(None),
            Folders::Symlink(at) => return Err(symlink_refused(key, &at)),
            Folders::NotAFolder(at) => return Err(not_a_folder(key, &at)),
        };
        // The root may be a link (the user chose it); a folder below it was just checked not to
        // be one, and opening it refuses one swapped in since.
        let folder = match Folder::open(&path, prefix.is_empty()) {
            Ok(folder) => folder,
            Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        if let Ok(mut opened) = self.opened.lock() {
            if opened.len() >= OPEN_FOLDERS {
                opened.clear();
            }
            opened.insert(prefix.to_owned(), folder.clone());
        }
        Ok(Some(folder))
    }

    fn create_folder(&self, key: &str) -> Result<Folder> {
        self.folder(key, true)?
            .with_context(|| format!("the folders of {key:?} vanished while being created"))
    }

    fn forget_folder(&self, key: &str) {
        if let Ok(mut opened) = self.opened.lock() {
            opened.remove(folder_prefix(key));
        }
    }

    /// Atomically replaces whatever is under `key` with `bytes`.
    pub fn replace_key(&self, key: &str, bytes: &[u8]) -> Result<()> {
        if ArtifactKey::is_temporary(key) {
            bail!("store key {key:?} has a temporary file's name");
        }
        let path = self.path_of(key)?;
        if let Folders::Symlink(at) = self.folders(key, false)? {
            return Err(symlink_refused(key, &at));
        }
        if is_barrier(key) {
            self.flush()?;
        }
        self.replace(key, &path, bytes)
    }

    /// Atomically replaces the file under `key` with `bytes` (which the caller verified).
    fn replace(&self, key: &str, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = self.create_folders(key)?;
        let tmp = TempFile::write(&dir, bytes, true)?;
        // `rename` replaces a symlink itself, never its target, so no check is needed here.
        fs::rename(&tmp.path, path).with_context(|| format!("replacing {}", path.display()))?;
        sync_dir(&dir);
        Ok(())
    }
}

/// The core's sync engine over the folder (natively, and behind the component's imported WIT
/// `store`). A listing is one page; a conflicting or invalid write is an error, not `Exists`.
impl Store for FolderStore {
    fn list_keys(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<ListPage, StoreError> {
        self.list_page(prefix, start_after, usize::MAX)
            .map_err(|e| store_error("list", prefix, e))
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        FolderStore::get(self, key).map_err(|e| store_error("get", key, e))
    }

    /// Looks at the file's size before reading it: a file over the bound is never read.
    fn get_bounded(&mut self, key: &str, max_bytes: u64) -> Result<Bounded, StoreError> {
        FolderStore::get_bounded(self, key, max_bytes).map_err(|e| store_error("get", key, e))
    }

    fn put_if_absent(&mut self, key: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        FolderStore::put_if_absent(self, key, bytes).map_err(|e| store_error("put", key, e))
    }

    fn replace(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        FolderStore::replace_key(self, key, bytes).map_err(|e| store_error("replace", key, e))
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

fn symlink_refused(key: &str, at: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "store key {key:?}: {} is a symbolic link, which the store does not follow",
        at.display()
    )
}

fn not_a_folder(key: &str, at: &Path) -> anyhow::Error {
    anyhow::anyhow!("store key {key:?}: {} is not a folder", at.display())
}

/// A write to a key that already holds `existing`: the store never judges bytes, it only says
/// whether they are the same (the sync engine decides what a difference means).
fn settle(existing: &[u8], bytes: &[u8]) -> PutOutcome {
    if existing == bytes {
        PutOutcome::Exists
    } else {
        PutOutcome::Differs
    }
}

/// Publishes the synced temp file `tmp` at `path` without ever replacing what is there:
/// `link` (a hard link) fails with `AlreadyExists` if `path` exists. File systems without hard
/// links (FAT, some network shares) fall back to creating `path` exclusively and writing it
/// there, where a racing reader can see a partial file; for artifacts such a copy fails
/// verification and a later writer heals it.
fn publish(
    path: &Path,
    bytes: &[u8],
    sync: bool,
    link: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    match link(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
            let written = file
                .write_all(bytes)
                .and_then(|()| if sync { file.sync_all() } else { Ok(()) });
            if let Err(e) = written {
                drop(file);
                // Never leave a partial file behind under a write-once key.
                let _ = fs::remove_file(path);
                return Err(e);
            }
            Ok(())
        }
    }
}

/// Bytes written to a file that has no name yet, for [`publish`] to link under a key.
enum Staged {
    /// On Linux, a file created without a name (`O_TMPFILE`): naming it changes the folder
    /// once, where a named temporary changes it three times (create, link, remove). A first
    /// sync places ~43 000 files, on every core into the same few folders, and each change
    /// takes the folder's lock.
    #[cfg(target_os = "linux")]
    Unnamed(File),
    Named(TempFile),
}

/// The last part of a key: its file's name in its folder.
fn file_name(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, name)| name)
}

/// The folder part of a key (`""` for a key at the root).
fn folder_prefix(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// A folder of the store, checked once to be reached from the root through no symbolic link,
/// then used by name relative to it. On Linux it is held open: a file is inspected, read,
/// written, linked or removed relative to the open folder, so a folder swapped for a link since
/// cannot redirect anything outside the store, and none of a first sync's ~43 000 puts looks
/// up the folders of its path again (each look was a walk from `/`).
#[derive(Debug, Clone)]
struct Folder {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    fd: Arc<std::os::fd::OwnedFd>,
}

/// What a name in a folder is, without following a symbolic link.
struct Entry {
    symlink: bool,
    file: bool,
    len: u64,
    /// Device and inode: an opened file is the one inspected.
    id: (u64, u64),
}

impl Entry {
    fn is(&self, opened: &Metadata) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            self.id == (opened.dev(), opened.ino())
        }
        #[cfg(not(unix))]
        {
            opened.is_file()
        }
    }
}

#[cfg(target_os = "linux")]
impl Folder {
    fn open(path: &Path, follow: bool) -> io::Result<Folder> {
        use rustix::fs::{Mode, OFlags};
        let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Folder {
            path: path.to_path_buf(),
            fd: Arc::new(fd),
        })
    }

    fn inspect(&self, name: &str) -> io::Result<Option<Entry>> {
        use rustix::fs::{AtFlags, FileType};
        match rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => {
                let kind = FileType::from_raw_mode(stat.st_mode);
                Ok(Some(Entry {
                    symlink: kind == FileType::Symlink,
                    file: kind == FileType::RegularFile,
                    len: u64::try_from(stat.st_size).unwrap_or(0),
                    id: (stat.st_dev, stat.st_ino),
                }))
            }
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a file without following a link (a link swapped in since it was inspected fails
    /// to open, and is inspected again), and without blocking on anything but a file.
    fn open_file(&self, name: &str) -> io::Result<File> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match rustix::fs::openat(&*self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(File::from(fd)),
            Err(rustix::io::Errno::LOOP) => Err(ErrorKind::NotFound.into()),
            Err(e) => Err(e.into()),
        }
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &*self.fd,
            name,
            rustix::fs::AtFlags::empty(),
        )?)
    }

    /// Writes `bytes` to a new unnamed file here; `None` where that cannot work: the file
    /// system has no unnamed files, or /proc (which links them) is not mounted.
    fn write_unnamed(&self, bytes: &[u8], sync: bool) -> io::Result<Option<File>> {
        use rustix::fs::{Mode, OFlags};
        use rustix::io::Errno;
        static PROC_FDS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if !*PROC_FDS.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
            return Ok(None);
        }
        let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
        let mut file = match rustix::fs::openat(&*self.fd, ".", flags, Mode::from_raw_mode(0o666)) {
            Ok(fd) => File::from(fd),
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        Ok(Some(file))
    }

    /// Gives the staged bytes the name `name` here, failing with `AlreadyExists` if it is
    /// taken.
    fn link(&self, staged: &Staged, name: &str) -> io::Result<()> {
        use rustix::fs::{AtFlags, CWD, linkat};
        match staged {
            Staged::Unnamed(file) => {
                use std::os::fd::AsRawFd;
                // The descriptor's entry in /proc names the file; following it links the file.
                let source = format!("/proc/self/fd/{}", file.as_raw_fd());
                linkat(
                    CWD,
                    source.as_str(),
                    &*self.fd,
                    name,
                    AtFlags::SYMLINK_FOLLOW,
                )?;
            }
            Staged::Named(tmp) => linkat(CWD, &tmp.path, &*self.fd, name, AtFlags::empty())?,
        }
        Ok(())
    }

    /// Makes the folder's entries durable (best effort, as [`sync_dir`]).
    fn sync(&self) {
        let _ = rustix::fs::fsync(&*self.fd);
    }
}

#[cfg(not(target_os = "linux"))]
impl Folder {
    fn open(path: &Path, _follow: bool) -> io::Result<Folder> {
        Ok(Folder {
            path: path.to_path_buf(),
        })
    }

    fn inspect(&self, name: &str) -> io::Result<Option<Entry>> {
        match fs::symlink_metadata(self.path.join(name)) {
            Ok(meta) => Ok(Some(Entry {
                symlink: meta.file_type().is_symlink(),
                file: meta.is_file(),
                len: meta.len(),
                id: {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::MetadataExt;
                        (meta.dev(), meta.ino())
                    }
                    #[cfg(not(unix))]
                    {
                        (0, 0)
                    }
                },
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_file(&self, name: &str) -> io::Result<File> {
        File::open(self.path.join(name))
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path.join(name))
    }

    fn link(&self, staged: &Staged, name: &str) -> io::Result<()> {
        let Staged::Named(tmp) = staged;
        fs::hard_link(&tmp.path, self.path.join(name))
    }

    fn sync(&self) {
        sync_dir(&self.path);
    }
}

impl Folder {
    /// Stages `bytes` for [`Folder::link`]: unnamed where it can, else a named temporary.
    fn stage(&self, bytes: &[u8], sync: bool) -> Result<Staged> {
        #[cfg(target_os = "linux")]
        if let Some(file) = self
            .write_unnamed(bytes, sync)
            .with_context(|| format!("writing an unnamed file in {}", self.path.display()))?
        {
            return Ok(Staged::Unnamed(file));
        }
        TempFile::write(&self.path, bytes, sync).map(Staged::Named)
    }

    /// Reads the regular file `name` (of `key`) unless it is over `max_bytes`, refusing
    /// symbolic links. The file is inspected before it is opened (so nothing else, e.g. a FIFO,
    /// is read) and the opened file is checked to be the one inspected (so a file replaced in
    /// between, by a healing writer or a link, is looked at again).
    fn read(&self, key: &str, name: &str, max_bytes: u64) -> Result<Bounded> {
        let path = || self.path.join(name);
        for _ in 0..ATTEMPTS {
            let before = match self.inspect(name) {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(Bounded::Missing),
                Err(e) => {
                    return Err(e).with_context(|| format!("inspecting {}", path().display()));
                }
            };
            if before.symlink {
                return Err(symlink_refused(key, &path()));
            }
            if !before.file {
                bail!("{} is not a file", path().display());
            }
            if before.len > max_bytes {
                return Ok(Bounded::TooLarge(before.len));
            }
            let mut file = match self.open_file(name) {
                Ok(file) => file,
                // Deleted or replaced by a link since it was inspected: the next look says so.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("opening {}", path().display())),
            };
            let opened = file
                .metadata()
                .with_context(|| format!("inspecting {}", path().display()))?;
            if !before.is(&opened) {
                continue;
            }
            let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
            file.read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", path().display()))?;
            if bytes.len() as u64 > max_bytes {
                return Ok(Bounded::TooLarge(bytes.len() as u64));
            }
            return Ok(Bounded::Bytes(bytes));
        }
        bail!("{} kept changing while being read", path().display())
    }

    /// Removes the file `name` (of `key`); a missing file is not an error, a link or a folder
    /// is refused.
    fn remove(&self, key: &str, name: &str) -> Result<()> {
        let path = || self.path.join(name);
        match self.inspect(name) {
            Ok(Some(entry)) if entry.symlink => return Err(symlink_refused(key, &path())),
            Ok(Some(entry)) if !entry.file => bail!("{} is not a file", path().display()),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", path().display())),
        }
        match self.unlink(name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {}", path().display())),
        }
    }
}

/// A synced temporary file, removed when dropped (after publishing, the hard link keeps the
/// data).
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn write(dir: &Path, bytes: &[u8], sync: bool) -> Result<TempFile> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for _ in 0..16 {
            // The pid and counter are unique among live writers; the time guards against a
            // stale file left by a crashed process with a recycled pid.
            let path = dir.join(format!(
                ".tmp-{}-{}-{nanos:09}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            };
            let tmp = TempFile { path };
            file.write_all(bytes)
                .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
                .with_context(|| format!("writing {}", tmp.path.display()))?;
            return Ok(tmp);
        }
        bail!("no free temporary file name in {}", dir.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Keys written durably, after everything before them: roots and event batches (what readers
/// start from), and anything that is not a data artifact.
fn is_barrier(key: &str) -> bool {
    !matches!(
        key.parse::<ArtifactKey>(),
        Ok(ArtifactKey::Segment { .. } | ArtifactKey::Manifest { .. } | ArtifactKey::Bucket { .. })
    )
}

/// Makes a folder's entries durable. Best effort: some platforms (Windows) cannot open a folder
/// as a file and some file systems reject syncing one, and neither is worth failing a write.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// A walk of a folder tree in byte order of keys (see [`FolderStore::list_page`]).
struct PageWalk<'a> {
    wanted: &'a str,
    after: Option<&'a str>,
    limit: usize,
    out: Vec<Listing>,
}

impl PageWalk<'_> {
    fn full(&self) -> bool {
        self.out.len() >= self.limit
    }

    fn folder(&mut self, dir: &Path, key_prefix: &str) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // Children in key order: a folder's keys continue with `/`, so it sorts as `name/`.
        let mut children: Vec<(String, fs::DirEntry, bool)> = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // `DirEntry::file_type` and `metadata` do not follow symbolic links.
            let file_type = entry.file_type()?;
            if file_type.is_symlink() {
                continue;
            }
            let key = if key_prefix.is_empty() {
                name
            } else {
                format!("{key_prefix}/{name}")
            };
            if file_type.is_dir() {
                children.push((format!("{key}/"), entry, true));
            } else if file_type.is_file() && !ArtifactKey::is_temporary(&key) {
                children.push((key, entry, false));
            }
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, entry, is_dir) in children {
            if self.full() {
                break;
            }
            if is_dir {
                let inside = key.starts_with(self.wanted) || self.wanted.starts_with(&key);
                // Every key in it sorts before `after` when the folder does and `after` is
                // not inside it.
                let passed = self
                    .after
                    .is_some_and(|a| key.as_str() < a && !a.starts_with(&key));
                if inside && !passed {
                    self.folder(&entry.path(), key.trim_end_matches('/'))?;
                }
            } else if key.starts_with(self.wanted) && self.after.is_none_or(|a| key.as_str() > a) {
                match entry.metadata() {
                    Ok(meta) => self.out.push(Listing {
                        modified_ms: meta
                            .modified()
                            .ok()
                            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                            .and_then(|d| u64::try_from(d.as_millis()).ok()),
                        size: meta.len(),
                        key,
                    }),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use agentsync_core::{Artifact, Compressor, Encoded, Message, OriginId, RuzstdCompressor};

    use super::*;

    /// A store in a fresh folder under the system temp dir, removed when dropped.
    struct TestStore {
        store: FolderStore,
        base: PathBuf,
    }

    impl TestStore {
        fn new(name: &str) -> Self {
            let base = std::env::temp_dir().join(format!(
                "agentsync-store-test-{name}-{}-{}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(&base).unwrap();
            TestStore {
                store: FolderStore::new(base.join("root")),
                base,
            }
        }

        /// A folder next to the store's root, outside it.
        fn outside(&self) -> PathBuf {
            let dir = self.base.join("outside");
            fs::create_dir_all(&dir).unwrap();
            dir
        }
    }

    impl std::ops::Deref for TestStore {
        type Target = FolderStore;
        fn deref(&self) -> &FolderStore {
            &self.store
        }
    }

    impl Drop for TestStore {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    /// The C zstd library, as the native host seals with (`crate::compress` is not in scope
    /// when tests/engine.rs compiles this file on its own).
    struct CZstd;

    impl Compressor for CZstd {
        fn compress(&self, canonical: &[u8]) -> agentsync_core::Result<Vec<u8>> {
            Ok(zstd::bulk::compress(canonical, 3).unwrap())
        }
    }

    /// A listing holds every key in byte order, and `list_page` pages through the same keys,
    /// with folder names that sort differently from their keys (`laptop` vs `laptop-2`: a key
    /// `laptop-2/x` sorts before `laptop/x`), for every page size and every prefix.
    #[test]
    fn pages_follow_key_order() {
        let store = TestStore::new("pages");
        let id = |n: u8| format!("{:064x}", n);
        let mut keys = Vec::new();
        for origin in ["laptop", "laptop-2", "lap", "z-9"] {
            for n in 0..3u8 {
                keys.push(format!("{origin}/segments/{}.ndjson.zst", id(n)));
                keys.push(format!("{origin}/manifests/{}.manifest", id(n + 10)));
            }
            keys.push(format!("roots/{origin}/{:020}-{}.root", 1, id(40)));
        }
        for key in &keys {
            store.put_if_absent(key, key.as_bytes()).unwrap();
        }
        let mut store = store;
        for prefix in [
            "",
            "roots/",
            "laptop/",
            "laptop-2/segments/",
            "lap",
            "nothing/",
        ] {
            let whole: Vec<String> = Store::list_keys(&mut store.store, prefix, None)
                .unwrap()
                .entries
                .into_iter()
                .map(|l| l.key)
                .collect();
            let mut expected: Vec<String> = keys
                .iter()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            expected.sort();
            assert_eq!(
                whole, expected,
                "prefix {prefix:?}: every key, in byte order"
            );
            for limit in 1..=4 {
                let mut paged = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = store.list_page(prefix, after.as_deref(), limit).unwrap();
                    assert!(page.entries.len() <= limit);
                    paged.extend(page.entries.iter().map(|l| l.key.clone()));
                    match (page.truncated, page.entries.last()) {
                        (true, Some(last)) => after = Some(last.key.clone()),
                        _ => break,
                    }
                }
                assert_eq!(paged, whole, "prefix {prefix:?}, pages of {limit}");
            }
        }
    }

    /// Data is written without an fsync each; the next root (a barrier) first flushes it all,
    /// so what a root references is durable before the root is.
    #[test]
    fn a_root_flushes_the_data_written_before_it() {
        let store = TestStore::new("barrier");
        let pending = |s: &FolderStore| s.unsynced.lock().unwrap().files.len();
        let data = "laptop-0a1b2c/segments/".to_owned() + &"ab".repeat(32) + ".ndjson.zst";
        store.put_if_absent(&data, b"data").unwrap();
        let clone = store.store.clone();
        assert_eq!(pending(&clone), 1, "clones share what is pending");
        let root = format!("roots/laptop-0a1b2c/{:020}-{}.root", 1, "cd".repeat(32));
        store.put_if_absent(&root, b"root").unwrap();
        assert_eq!(pending(&store), 0, "the root flushed the data first");
        store
            .put_if_absent(&data.replace("ab", "ef"), b"more")
            .unwrap();
        store.flush().unwrap();
        assert_eq!(pending(&store), 0);
    }

    /// A segment artifact: its key and its canonical bytes.
    fn segment() -> Encoded {
        let messages: Vec<Message> = (0..20)
            .map(|i| Message {
                ordinal: i,
                role: "user".into(),
                content: format!("message {i}: the quick brown fox jumps over the lazy dog. ")
                    .repeat(4),
                ..Message::default()
            })
            .collect();
        let origin: OriginId = "test-0a0b0c".parse().unwrap();
        let segment = agentsync_core::segment_messages(&messages)
            .unwrap()
            .remove(0);
        Encoded::segment(&origin, segment)
    }

    fn temp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".tmp-"))
            .collect()
    }

    #[test]
    fn the_folder_store_keeps_the_store_contract() {
        let store = TestStore::new("contract");
        let mut folder: FolderStore = store.store.clone();
        agentsync_core::sync::store::check_contract(&mut folder).unwrap();
    }

    #[test]
    fn put_get_list_delete() {
        let store = TestStore::new("basic");
        assert_eq!(store.get("a/x/1").unwrap(), None);
        assert_eq!(store.list_keys("", None).unwrap(), Vec::<String>::new());
        assert_eq!(
            store.put_if_absent("a/x/1", b"one").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store.put_if_absent("a/x/2", b"two").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store.put_if_absent("b/x/1", b"three").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store.put_if_absent("a/x/1", b"one").unwrap(),
            PutOutcome::Exists
        );
        assert_eq!(store.get("a/x/2").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(store.get("a/x/3").unwrap(), None);
        assert_eq!(store.get("a/y/3").unwrap(), None);
        assert_eq!(store.list_keys("a/", None).unwrap(), ["a/x/1", "a/x/2"]);
        assert_eq!(store.list_keys("a/x/", Some("a/x/1")).unwrap(), ["a/x/2"]);
        assert_eq!(store.list_keys("a/x/2", None).unwrap(), ["a/x/2"]);
        assert_eq!(store.list_keys("c/", None).unwrap(), Vec::<String>::new());
        assert_eq!(
            store.list_keys("a/x/1/", None).unwrap(),
            Vec::<String>::new()
        );
        // No temp file is left behind by a successful write.
        assert!(temp_files(&store.path_of("a/x").unwrap()).is_empty());
        store.delete("a/x/1").unwrap();
        store.delete("a/x/1").unwrap();
        store.delete("q/r/s").unwrap();
        assert_eq!(store.get("a/x/1").unwrap(), None);
        assert_eq!(store.list_keys("", None).unwrap(), ["a/x/2", "b/x/1"]);
    }

    #[test]
    fn keys_are_write_once() {
        let store = TestStore::new("write-once");
        assert_eq!(
            store.put_if_absent("a/b", b"first").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store.put_if_absent("a/b", b"first").unwrap(),
            PutOutcome::Exists
        );
        assert_eq!(
            store.put_if_absent("a/b", b"second").unwrap(),
            PutOutcome::Differs
        );
        assert_eq!(store.get("a/b").unwrap().as_deref(), Some(&b"first"[..]));
        let mut as_trait: FolderStore = store.store.clone();
        assert_eq!(
            Store::put_if_absent(&mut as_trait, "a/b", b"second").unwrap(),
            PutOutcome::Differs
        );
        assert_eq!(store.get("a/b").unwrap().as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = TestStore::new("escape");
        for bad in [
            "../x",
            "a/../../x",
            "/x",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "",
            "a/",
        ] {
            assert!(store.path_of(bad).is_err(), "{bad}");
            assert!(store.put_if_absent(bad, b"x").is_err(), "{bad}");
            assert!(store.get(bad).is_err(), "{bad}");
            assert!(store.delete(bad).is_err(), "{bad}");
        }
        assert!(store.put_if_absent("a/.tmp-1", b"x").is_err());
        assert!(!store.base.join("x").exists());
    }

    #[test]
    fn temp_files_are_not_listed() {
        let store = TestStore::new("temp");
        store.put_if_absent("a/x/1", b"one").unwrap();
        let dir = store.path_of("a/x").unwrap();
        fs::write(dir.join(".tmp-9"), b"partial").unwrap();
        fs::write(dir.join(".tmp-123-4-000000001"), b"partial").unwrap();
        assert_eq!(store.list_keys("a/", None).unwrap(), ["a/x/1"]);
        assert_eq!(store.list_keys("", None).unwrap(), ["a/x/1"]);
        let mut as_trait = store.store.clone();
        let page = Store::list_keys(&mut as_trait, "a/x/", None).unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].key, "a/x/1");
        assert_eq!(page.entries[0].size, 3);
        assert!(page.entries[0].modified_ms.is_some());
        assert!(!page.truncated);
    }

    #[test]
    fn the_store_never_judges_bytes_it_holds() {
        // Another valid encoding, a corrupt copy, another artifact: the store leaves what it
        // holds alone and says it differs; the sync engine decides (core sync::placement).
        let store = TestStore::new("encodings");
        let encoded = segment();
        let key = encoded.key.to_string();
        let by_c = encoded.seal(Some(&CZstd)).unwrap();
        let by_rust = encoded.seal(Some(&RuzstdCompressor)).unwrap();
        let bad = by_c[..by_c.len() / 2].to_vec();
        assert_ne!(by_c, by_rust);
        assert_eq!(
            store.put_if_absent(&key, &by_c).unwrap(),
            PutOutcome::Created
        );
        for other in [&by_rust, &bad] {
            assert_eq!(
                store.put_if_absent(&key, other).unwrap(),
                PutOutcome::Differs
            );
            assert_eq!(store.get(&key).unwrap().as_ref(), Some(&by_c));
        }
    }

    #[test]
    fn replace_swaps_a_corrupt_copy_atomically() {
        let encoded = segment();
        let key = encoded.key.to_string();
        let good = encoded.seal(Some(&CZstd)).unwrap();
        let truncated = good[..good.len() - 7].to_vec();
        let store = TestStore::new("replace");
        let path = store.path_of(&key).unwrap();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &truncated).unwrap();
        assert!(Artifact::open(&encoded.key, &truncated).is_err());

        store.replace_key(&key, &good).unwrap();
        assert_eq!(store.get(&key).unwrap().as_ref(), Some(&good));
        assert!(temp_files(path.parent().unwrap()).is_empty());
        assert_eq!(
            store.list_keys("", None).unwrap(),
            std::slice::from_ref(&key)
        );
        assert!(store.replace_key(".tmp-x", b"x").is_err());
    }

    #[test]
    fn publishing_without_hard_links_creates_exclusively() {
        let store = TestStore::new("no-links");
        let dir = store.create_folders("a/b").unwrap();
        let tmp = TempFile::write(&dir, b"bytes", true).unwrap();
        let path = dir.join("b");
        let unsupported = |_: &Path| Err(io::Error::from(ErrorKind::Unsupported));
        publish(&path, b"bytes", true, unsupported).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"bytes");
        let err = publish(&path, b"other", true, unsupported).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"bytes");
        let denied = |_: &Path| Err(io::Error::from(ErrorKind::PermissionDenied));
        publish(&dir.join("c"), b"more", true, denied).unwrap();
        assert_eq!(fs::read(dir.join("c")).unwrap(), b"more");
        drop(tmp);
        assert!(temp_files(&dir).is_empty());
        assert_eq!(store.list_keys("a/", None).unwrap(), ["a/b", "a/c"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn puts_stage_in_an_unnamed_file_on_linux() {
        let store = TestStore::new("unnamed");
        let folder = store.create_folder("a/b").unwrap();
        let dir = folder.path.clone();
        // Where the file system has unnamed files (every Linux file system this runs on
        // today), a put must use one; elsewhere it falls back to a named temporary.
        let supported = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_TMPFILE)
                .open(&dir)
                .is_ok()
        };
        let staged = folder.stage(b"bytes", false).unwrap();
        assert_eq!(matches!(staged, Staged::Unnamed(_)), supported);
        if supported {
            assert!(
                fs::read_dir(&dir).unwrap().next().is_none(),
                "nothing named yet"
            );
        }
        folder.link(&staged, "b").unwrap();
        assert_eq!(fs::read(dir.join("b")).unwrap(), b"bytes");
        let other = folder.stage(b"other", false).unwrap();
        let taken = folder.link(&other, "b").unwrap_err();
        assert_eq!(taken.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.join("b")).unwrap(), b"bytes");
        drop((staged, other));
        assert_eq!(store.list_keys("a/", None).unwrap(), ["a/b"]);
    }

    #[test]
    fn concurrent_puts_of_one_key_create_it_once() {
        let store = TestStore::new("concurrent");
        let encoded = segment();
        let key = encoded.key.to_string();
        let bytes = encoded.seal(Some(&CZstd)).unwrap();
        let barrier = Arc::new(Barrier::new(8));
        let outcomes: Vec<PutOutcome> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.store.clone();
                    let barrier = Arc::clone(&barrier);
                    let (key, bytes) = (&key, &bytes);
                    s.spawn(move || {
                        barrier.wait();
                        store.put_if_absent(key, bytes).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created = outcomes
            .iter()
            .filter(|o| **o == PutOutcome::Created)
            .count();
        assert_eq!(created, 1, "{outcomes:?}");
        assert_eq!(store.get(&key).unwrap().as_ref(), Some(&bytes));
        assert!(Artifact::open(&encoded.key, &bytes).is_ok());
        let path = store.path_of(&key).unwrap();
        assert!(temp_files(path.parent().unwrap()).is_empty());
        assert_eq!(store.list_keys("", None).unwrap(), [key]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_file_is_refused_and_not_listed() {
        use std::os::unix::fs::symlink;

        let store = TestStore::new("symlink-file");
        store.put_if_absent("a/x/1", b"one").unwrap();
        let secret = store.outside().join("secret");
        fs::write(&secret, b"outside").unwrap();
        let link = store.path_of("a/x/2").unwrap();
        symlink(&secret, &link).unwrap();
        let dangling = store.path_of("a/x/3").unwrap();
        symlink(store.outside().join("nothing"), &dangling).unwrap();

        let err = store.get("a/x/2").unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        assert!(store.get("a/x/3").is_err());
        assert_eq!(store.list_keys("", None).unwrap(), ["a/x/1"]);
        assert_eq!(
            store.list_keys("a/x/2", None).unwrap(),
            Vec::<String>::new()
        );

        let err = store.put_if_absent("a/x/2", b"new").unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        let err = store.put_if_absent("a/x/3", b"new").unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        assert!(!store.outside().join("nothing").exists());
        assert!(store.delete("a/x/2").is_err());
        assert_eq!(fs::read(&secret).unwrap(), b"outside");
        assert!(fs::symlink_metadata(&link).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_folder_is_not_followed() {
        use std::os::unix::fs::symlink;

        let store = TestStore::new("symlink-dir");
        store.put_if_absent("a/x/1", b"one").unwrap();
        let outside = store.outside();
        fs::create_dir_all(outside.join("x")).unwrap();
        fs::write(outside.join("x/1"), b"outside").unwrap();
        symlink(&outside, store.path_of("b").unwrap()).unwrap();
        symlink(outside.join("x"), store.path_of("a/y").unwrap()).unwrap();

        assert_eq!(store.list_keys("", None).unwrap(), ["a/x/1"]);
        assert_eq!(store.list_keys("b/", None).unwrap(), Vec::<String>::new());
        assert_eq!(store.list_keys("b/x/", None).unwrap(), Vec::<String>::new());
        assert_eq!(store.list_keys("a/y/", None).unwrap(), Vec::<String>::new());
        for key in ["b/x/1", "a/y/1"] {
            let err = store.get(key).unwrap_err();
            assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
            assert!(store.delete(key).is_err(), "{key}");
            assert!(store.put_if_absent(key, b"outside").is_err(), "{key}");
        }
        assert!(store.put_if_absent("b/x/2", b"new").is_err());
        assert!(store.put_if_absent("b/z/2", b"new").is_err());
        assert!(store.put_if_absent("a/y/2", b"new").is_err());
        assert_eq!(fs::read(outside.join("x/1")).unwrap(), b"outside");
        assert!(!outside.join("x/2").exists());
        assert!(!outside.join("z").exists());
        assert!(temp_files(&outside.join("x")).is_empty());
    }

    /// A folder is opened once and used through its descriptor: one swapped for a link to a
    /// folder outside the store later is not followed by a read, a write or a delete.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_folder_swapped_for_a_link_after_it_was_opened_is_not_followed() {
        let store = TestStore::new("swapped");
        store.put_if_absent("a/x/1", b"one").unwrap();
        let outside = store.outside();
        fs::write(outside.join("2"), b"outside").unwrap();
        let x = store.path_of("a/x").unwrap();
        fs::rename(&x, store.base.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, &x).unwrap();

        assert_eq!(store.get("a/x/2").unwrap(), None);
        store.delete("a/x/2").unwrap();
        assert_eq!(fs::read(outside.join("2")).unwrap(), b"outside");
        store.put_if_absent("a/x/3", b"three").unwrap();
        assert!(!outside.join("3").exists());
        assert_eq!(fs::read(store.base.join("moved/3")).unwrap(), b"three");
        // A store that looks again (a new run) refuses the link.
        let fresh = FolderStore::new(store.root.clone());
        let err = fresh.get("a/x/2").unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
    }

    /// A folder removed by hand while the store has it open is made again by the next put.
    #[test]
    fn a_folder_removed_after_it_was_opened_is_made_again() {
        let store = TestStore::new("removed");
        store.put_if_absent("a/x/1", b"one").unwrap();
        fs::remove_dir_all(store.path_of("a").unwrap()).unwrap();
        assert_eq!(store.get("a/x/1").unwrap(), None);
        assert_eq!(
            store.put_if_absent("a/x/2", b"two").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(fs::read(store.path_of("a/x/2").unwrap()).unwrap(), b"two");
        assert_eq!(store.list_keys("", None).unwrap(), ["a/x/2"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_root_is_used() {
        use std::os::unix::fs::symlink;

        let store = TestStore::new("symlink-root");
        let target = store.outside();
        symlink(&target, &store.root).unwrap();
        store.put_if_absent("a/1", b"one").unwrap();
        assert_eq!(fs::read(target.join("a/1")).unwrap(), b"one");
        assert_eq!(store.list_keys("", None).unwrap(), ["a/1"]);
    }
}
