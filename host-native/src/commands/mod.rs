//! The CLI's commands, one module per group. Each returns an [`Output`]: data for `--json`,
//! text for people, and whether the run was partial (exit code 3).

pub mod browse;
pub mod curate;
pub mod maintain;
pub mod rebuild;
pub mod setup;
pub mod sync;
pub mod trust;

use std::path::Path;

use agentsync_archive::Archive;
use agentsync_core::{OriginId, OriginKey};
use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::config::Config;
use crate::home::Home;
use crate::progress::Progress;
use crate::target::{Target, TargetSpec};

/// What every command gets: where the machine lives, its config, and how to print.
pub struct Context {
    pub home: Home,
    pub config: Config,
    pub json: bool,
    pub progress: Progress,
}

impl Context {
    pub fn new(data_dir: Option<&Path>, json: bool) -> Result<Context> {
        let home = Home::locate(data_dir)?;
        let config = Config::load(&home.config_file)?;
        Ok(Context {
            home,
            config,
            json,
            progress: Progress::new(json),
        })
    }

    pub fn archive(&self) -> Result<Archive> {
        self.home.create()?;
        let path = self.home.archive_path();
        // A data folder whose identity has a recovery copy had an archive: a new, empty one
        // would hide what only the store still holds (see `rebuild`).
        if !path.exists()
            && let Some((origin, _)) = crate::origin::read_recovery_copy(&self.home.data_dir)?
        {
            anyhow::bail!(
                "the archive database {} is missing, but this data folder is origin {origin}'s: \
                 `agentsync rebuild` restores it from the local store",
                path.display()
            );
        }
        // An archive made by an earlier version is brought up to date first: seconds at 1 GB
        // when a migration re-indexes messages.
        let spinner = match Archive::upgrade_pending(&path) {
            Ok(true) => self
                .progress
                .spinner("upgrading the archive to this version (once)…"),
            _ => crate::progress::Bar::hidden(),
        };
        let archive =
            Archive::open(&path).with_context(|| format!("opening the archive {}", path.display()));
        spinner.finish();
        archive
    }

    /// The machine's identity, minted by the first command that needs it.
    pub fn identity(&self, archive: &Archive) -> Result<(OriginId, OriginKey)> {
        crate::origin::ensure(archive, &self.home.data_dir, None, now_ms() as i64)
    }

    /// The sync target: the argument, else the config's.
    pub fn target(&self, arg: Option<&Path>) -> Result<Option<TargetSpec>> {
        let text = arg
            .map(|p| p.to_string_lossy().into_owned())
            .or_else(|| self.config.target.clone());
        let Some(text) = text else { return Ok(None) };
        Ok(Some(match TargetSpec::parse(&text)? {
            // A `~` the shell left alone (quoted, from a GUI or a script) means the home
            // folder, never a folder named `~` here.
            TargetSpec::Folder(p) => {
                TargetSpec::Folder(crate::config::expand_home(&p.to_string_lossy()))
            }
            remote => remote,
        }))
    }

    /// Opens a target (an HTTP peer's token comes from `$AGENTSYNC_TOKEN` or the config).
    pub fn open_target(&self, spec: &TargetSpec) -> Result<Box<dyn Target>> {
        crate::target::open(spec, self.config.http.token.as_deref())
    }
}

/// A target as the config stores it: a folder absolute (and `~` expanded, created), so
/// commands run from anywhere agree; a URL as given.
pub fn absolute_target(spec: &TargetSpec) -> Result<String> {
    let TargetSpec::Folder(path) = spec else {
        return Ok(spec.to_string());
    };
    let path = &crate::config::expand_home(&path.to_string_lossy());
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    let absolute =
        std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    Ok(absolute.display().to_string())
}

/// What to do about a damaged archive database (`verify`, and any command that meets one).
pub const DAMAGED_HINT: &str = "the archive database is damaged: `agentsync rebuild` restores it \
     from the local store and keeps the damaged file aside";

/// A command's result.
pub struct Output {
    pub value: serde_json::Value,
    pub text: String,
    /// Exit with 3: the work is done except for deferred or quarantined items.
    pub partial: bool,
    /// The command printed its output as it went (`sync --watch`): print nothing more.
    pub printed: bool,
}

impl Output {
    pub fn new(value: impl Serialize, text: String) -> Result<Output> {
        Ok(Output {
            value: serde_json::to_value(value)?,
            text,
            partial: false,
            printed: false,
        })
    }
}

/// `1 session`, `2 sessions`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `2026-11-25 14:03` (UTC) for a time in milliseconds.
pub fn format_time(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".into();
    };
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_render_in_utc() {
        assert_eq!(super::format_time(Some(0)), "1970-01-01 00:00");
        assert_eq!(
            super::format_time(Some(1_764_079_380_000)),
            "2025-11-25 14:03"
        );
        assert_eq!(super::format_time(None), "-");
    }
}

/// A command line that parses but asks for something that needs more (exit code 2, like
/// clap's own usage errors).
#[derive(Debug)]
pub struct UsageError(pub &'static str);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for UsageError {}
