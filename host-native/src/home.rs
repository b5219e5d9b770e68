//! Where a machine keeps its archive, its local mirror of the store, and its config.
//!
//! `--data-dir` wins, then `$AGENTSYNC_HOME`; both hold everything (config included), so several
//! "machines" can run side by side. Otherwise the platform's directories apply (XDG on Linux:
//! `~/.local/share/agentsync` and `~/.config/agentsync/config.toml`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

#[derive(Debug, Clone)]
pub struct Home {
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
}

impl Home {
    pub fn locate(data_dir: Option<&Path>) -> Result<Home> {
        let explicit = data_dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("AGENTSYNC_HOME").map(PathBuf::from));
        if let Some(dir) = explicit {
            return Ok(Home {
                config_file: dir.join("config.toml"),
                data_dir: dir,
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "agentsync").ok_or_else(|| {
            anyhow!("no home directory found: pass --data-dir or set AGENTSYNC_HOME")
        })?;
        Ok(Home {
            data_dir: dirs.data_dir().to_path_buf(),
            config_file: dirs.config_dir().join("config.toml"),
        })
    }

    pub fn archive_path(&self) -> PathBuf {
        self.data_dir.join("archive.db")
    }

    /// Every artifact this machine wrote or fetched: export writes here, import reads here,
    /// and `sync` exchanges it with the target.
    pub fn mirror_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))
    }
}
