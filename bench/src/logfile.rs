//! A log file being written: buffered, counting its bytes and the messages it will parse into.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::json::Json;

/// What one written log holds.
#[derive(Debug, Clone, Default)]
pub struct FileStats {
    pub path: PathBuf,
    pub bytes: u64,
    /// Messages our parsers make of it (records that become messages; tool results and
    /// bookkeeping records do not).
    pub messages: u64,
    pub tool_calls: u64,
    /// A subagent's log (a session started by another session's tool call).
    pub subagent: bool,
}

pub struct LogFile {
    out: BufWriter<File>,
    pub stats: FileStats,
}

impl LogFile {
    /// A new file at `path` (its folders created); an existing file is an error, so a corpus
    /// never silently mixes with an older one.
    pub fn create(path: &Path, subagent: bool) -> io::Result<LogFile> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(LogFile {
            out: BufWriter::with_capacity(256 * 1024, file),
            stats: FileStats {
                path: path.to_owned(),
                subagent,
                ..FileStats::default()
            },
        })
    }

    /// An existing file, to append to.
    pub fn append(path: &Path) -> io::Result<LogFile> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(LogFile {
            out: BufWriter::new(file),
            stats: FileStats {
                path: path.to_owned(),
                ..FileStats::default()
            },
        })
    }

    /// Writes the record in `json` as one line.
    pub fn line(&mut self, json: &Json) -> io::Result<()> {
        self.out.write_all(&json.buf)?;
        self.out.write_all(b"\n")?;
        self.stats.bytes += json.buf.len() as u64 + 1;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.stats.bytes
    }

    pub fn finish(mut self) -> io::Result<FileStats> {
        self.out.flush()?;
        Ok(self.stats)
    }
}
