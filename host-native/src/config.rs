//! The one config file (TOML). Every key is optional; a missing file is the defaults.
//!
//! ```toml
//! target = "/mnt/shared/agentsync"   # where `sync`, `gc` and `verify` go by default
//! claude_projects = ["~/.claude/projects"]
//! codex_sessions = ["~/.codex/sessions"]
//! [agents]                           # where each agent's logs are (default: where it keeps them)
//! gemini = ["~/.gemini/tmp"]         # [] reads none of that agent's logs
//! [watch]
//! interval_secs = 300                # re-sync at least this often under --watch
//! debounce_ms = 2000
//! [gc]
//! grace = "7d"
//! every = "1d"                       # `sync` runs `gc` when the last one is older; "off"
//! [heal]
//! every = "1h"                       # how often `sync` re-reads all own keys in the target
//! [http]
//! token = "…"                        # the token of the HTTP peer in `target`
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentsync_logs::agent::{Agent, Places};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Claude Code project folders (default `~/.claude/projects`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_projects: Option<Vec<String>>,
    /// Codex session folders (default `~/.codex/sessions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codex_sessions: Option<Vec<String>>,
    /// Folders of an agent's logs, by agent name (`claude_projects` and `codex_sessions` are
    /// older names for two of them). An agent not named reads its default places.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub watch: WatchConfig,
    #[serde(default)]
    pub gc: GcConfig,
    #[serde(default)]
    pub heal: HealConfig,
    #[serde(default)]
    pub http: HttpConfig,
}

/// An HTTP peer target's token (`$AGENTSYNC_TOKEN` wins). This machine's own `serve` token
/// is kept in the data folder, not here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Self-heal: every `sync` checks this machine's roots in the target (they come with the one
/// listing of `roots/`); its other keys are listed and checked this often, since a full
/// listing costs a request per thousand keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealConfig {
    /// A duration, or `always` (every sync).
    pub every: String,
}

impl Default for HealConfig {
    fn default() -> Self {
        HealConfig { every: "1h".into() }
    }
}

impl HealConfig {
    pub fn every_ms(&self) -> Result<u64> {
        match self.every.trim() {
            "always" => Ok(0),
            text => parse_duration_ms(text),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    pub interval_secs: u64,
    pub debounce_ms: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            interval_secs: 300,
            debounce_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    pub grace: String,
    /// How often `sync` runs a `gc` after itself (`off`: never; run `gc` by hand).
    pub every: String,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace: "7d".into(),
            every: "1d".into(),
        }
    }
}

impl GcConfig {
    /// The interval of the automatic GC, or `None` when it is off.
    pub fn every_ms(&self) -> Result<Option<u64>> {
        match self.every.trim() {
            "off" | "never" => Ok(None),
            text => parse_duration_ms(text).map(Some),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("reading the config file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = toml::to_string_pretty(self).context("rendering the config")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        // It may hold an HTTP peer's token: readable by its owner only.
        #[cfg(unix)]
        if self.http.token.is_some() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
        Ok(())
    }

    /// The folders `agent`'s logs are read from: configured, or where it keeps them.
    pub fn agent_roots(&self, agent: &Agent) -> Vec<PathBuf> {
        let configured = self.agents.get(agent.name).or(match agent.name {
            "claude" => self.claude_projects.as_ref(),
            "codex" => self.codex_sessions.as_ref(),
            _ => None,
        });
        match configured {
            Some(list) => list.iter().map(|p| expand_home(p)).collect(),
            None => Places::of_this_user()
                .map(|places| (agent.default_roots)(&places))
                .unwrap_or_default(),
        }
    }
}

/// `~/x` → `$HOME/x`, `~` → `$HOME`.
pub fn expand_home(path: &str) -> PathBuf {
    let rest = if path == "~" {
        Some("")
    } else {
        path.strip_prefix("~/")
    };
    match (rest, directories::BaseDirs::new()) {
        (Some(rest), Some(base)) => base.home_dir().join(rest),
        _ => PathBuf::from(path),
    }
}

/// `30s`, `15m`, `12h`, `7d`, `2w` or plain milliseconds → milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let Ok(n) = number.parse::<u64>() else {
        bail!("{text:?} is not a duration (examples: 90s, 15m, 12h, 7d)");
    };
    let scale: u64 = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => bail!("{text:?}: unknown unit {unit:?} (use ms, s, m, h, d or w)"),
    };
    Ok(n.saturating_mul(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_duration_ms("7d").expect("7d"), 7 * 86_400_000);
        assert_eq!(parse_duration_ms("90s").expect("90s"), 90_000);
        assert_eq!(parse_duration_ms("250").expect("ms"), 250);
        assert!(parse_duration_ms("7 days").is_err());
        assert!(parse_duration_ms("d").is_err());
    }

    #[test]
    fn config_round_trips_and_rejects_unknown_keys() {
        let config = Config {
            target: Some("/tmp/shared".into()),
            ..Config::default()
        };
        let text = toml::to_string_pretty(&config).expect("render");
        assert_eq!(toml::from_str::<Config>(&text).expect("parse"), config);
        assert!(toml::from_str::<Config>("targte = \"x\"").is_err());
        assert_eq!(
            toml::from_str::<Config>("")
                .expect("empty")
                .watch
                .interval_secs,
            300
        );
    }
}
