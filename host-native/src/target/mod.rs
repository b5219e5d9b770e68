//! Where a machine syncs to: a shared folder, another machine's `agentsync serve`, or an S3
//! bucket. Each is a dumb store behind the core's [`Store`] trait; the engine decides
//! everything, a target only lists, gets, puts if absent, replaces and deletes.

pub mod aws;
mod remote;

use std::fmt;
use std::path::{Path, PathBuf};

use agentsync_core::sync::store::{Request, Response, Store};
use anyhow::{Result, bail};

use crate::store::FolderStore;

pub use agentsync_remote::{HttpPeer, S3Bucket, S3Settings};
pub use remote::{Remote, http_client, install_crypto};

/// A target as the user names it: a path, `http(s)://host:port`, or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Folder(PathBuf),
    Http(String),
    S3 { bucket: String, prefix: String },
}

impl TargetSpec {
    pub fn parse(text: &str) -> Result<TargetSpec> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("{text:?}: an S3 target is s3://BUCKET or s3://BUCKET/PREFIX");
            }
            return Ok(TargetSpec::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(TargetSpec::Http(text.trim_end_matches('/').to_owned()));
        }
        if text.contains("://") {
            bail!(
                "{text:?}: unknown target scheme (use a folder, http(s)://HOST:PORT or s3://BUCKET/PREFIX)"
            );
        }
        Ok(TargetSpec::Folder(PathBuf::from(text)))
    }

    pub fn folder(&self) -> Option<&Path> {
        match self {
            TargetSpec::Folder(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Folder(p) => write!(f, "{}", p.display()),
            TargetSpec::Http(url) => f.write_str(url),
            TargetSpec::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            TargetSpec::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A store the sync answers the engine's requests from.
pub trait Target: Store + Send {
    /// Answers independent requests, in order. Remote targets run them concurrently.
    fn answer_all(&mut self, requests: &[Request]) -> Vec<Response>;

    /// Makes what was written durable (a folder's `syncfs`; remote stores answer only once
    /// their write is durable).
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Whether the store lets this machine delete (GC). An HTTP peer does not.
    fn can_delete(&self) -> bool {
        true
    }

    /// Why the run must stop, once it must (the store refused this machine's credentials,
    /// or cannot be reached at all).
    fn refused(&self) -> Option<String> {
        None
    }
}

impl Target for FolderStore {
    fn answer_all(&mut self, requests: &[Request]) -> Vec<Response> {
        self.answer_round(requests)
    }

    fn flush(&self) -> Result<()> {
        FolderStore::flush(self)
    }
}

/// The token for HTTP targets: `$AGENTSYNC_TOKEN`, else the config's `http.token`.
fn http_peer_token(config_token: Option<&str>) -> Option<String> {
    std::env::var("AGENTSYNC_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| config_token.map(str::to_owned))
}

/// Opens a target for a sync, GC or verify. `http_token`: the config's token for HTTP peers
/// (`$AGENTSYNC_TOKEN` wins).
pub fn open(spec: &TargetSpec, http_token: Option<&str>) -> Result<Box<dyn Target>> {
    Ok(match spec {
        TargetSpec::Folder(p) => Box::new(FolderStore::new(p)),
        TargetSpec::Http(url) => {
            let Some(token) = http_peer_token(http_token) else {
                bail!(
                    "{url}: an HTTP target needs the peer's token (set $AGENTSYNC_TOKEN, or \
                     `token` under [http] in the config; `agentsync serve` prints it)"
                );
            };
            Box::new(Remote::new(HttpPeer::new(url, token, http_client()?))?)
        }
        TargetSpec::S3 { bucket, prefix } => {
            let settings = aws::settings_from_env()?;
            Box::new(Remote::new(S3Bucket::new(
                bucket,
                prefix,
                settings,
                http_client()?,
            ))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_by_scheme() {
        assert_eq!(
            TargetSpec::parse("s3://bucket/some/prefix/").unwrap(),
            TargetSpec::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            TargetSpec::parse("s3://bucket").unwrap().to_string(),
            "s3://bucket"
        );
        assert_eq!(
            TargetSpec::parse("http://10.0.0.2:8787/").unwrap(),
            TargetSpec::Http("http://10.0.0.2:8787".into())
        );
        assert_eq!(
            TargetSpec::parse("/mnt/share").unwrap(),
            TargetSpec::Folder("/mnt/share".into())
        );
        assert!(TargetSpec::parse("s3:///x").is_err());
        assert!(TargetSpec::parse("ftp://x").is_err());
    }
}
