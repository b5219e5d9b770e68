//! Where an S3 target's endpoint, region and credentials come from: the variables and files
//! the AWS CLI reads, in its order.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use ini::Ini;

pub use agentsync_remote::{Credentials, S3Settings};

/// The variables the settings are read from, so tests can pass their own.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// The settings as the AWS CLI would read them from this process's environment.
pub fn settings_from_env() -> Result<S3Settings> {
    settings_from(&ProcessEnv)
}

/// Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else
/// the profile (`AWS_PROFILE`, default `default`) in `~/.aws/credentials`
/// (`AWS_SHARED_CREDENTIALS_FILE`), else in `~/.aws/config` (`AWS_CONFIG_FILE`). Region:
/// `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`. Endpoint:
/// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`. Addressing:
/// `AGENTSYNC_S3_ADDRESSING` = `path` or `virtual`; by default path-style with a custom
/// endpoint, virtual-hosted on AWS.
pub fn settings_from(env: &dyn Env) -> Result<S3Settings> {
    let home = env.var("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| -> Option<PathBuf> {
        env.var(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let explicit_profile = env.var("AWS_PROFILE");
    let profile = explicit_profile.clone().unwrap_or_else(|| "default".into());
    let credentials_file = load(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))?;
    let config_file = load(file("AWS_CONFIG_FILE", "config"))?;
    let in_credentials = credentials_file
        .as_ref()
        .and_then(|f| f.section(Some(profile.as_str())));
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let in_config = config_file
        .as_ref()
        .and_then(|f| f.section(Some(config_section.as_str())));
    if explicit_profile.is_some() && in_credentials.is_none() && in_config.is_none() {
        bail!("AWS_PROFILE={profile}: no such profile in ~/.aws/credentials or ~/.aws/config");
    }
    let from_profile = |key: &str| -> Option<String> {
        in_credentials
            .and_then(|s| s.get(key))
            .or_else(|| in_config.and_then(|s| s.get(key)))
            .map(str::to_owned)
    };
    let credentials = match (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key), Some(secret_key)) => Some(Credentials {
            access_key,
            secret_key,
            session_token: env.var("AWS_SESSION_TOKEN"),
        }),
        (Some(_), None) | (None, Some(_)) => {
            bail!("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
        }
        (None, None) => match (
            from_profile("aws_access_key_id"),
            from_profile("aws_secret_access_key"),
        ) {
            (Some(access_key), Some(secret_key)) => Some(Credentials {
                access_key,
                secret_key,
                session_token: from_profile("aws_session_token"),
            }),
            _ => None,
        },
    };
    let region = env
        .var("AWS_REGION")
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .or_else(|| in_config.and_then(|s| s.get("region")).map(str::to_owned))
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = env
        .var("AWS_ENDPOINT_URL_S3")
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
        .or_else(|| {
            in_config
                .and_then(|s| s.get("endpoint_url"))
                .map(str::to_owned)
        })
        .map(|e| e.trim_end_matches('/').to_owned());
    let path_style = match env.var("AGENTSYNC_S3_ADDRESSING").as_deref() {
        Some("path") => true,
        Some("virtual") => false,
        Some(other) => bail!("AGENTSYNC_S3_ADDRESSING={other}: use path or virtual"),
        None => endpoint.is_some(),
    };
    Ok(S3Settings {
        endpoint,
        region,
        credentials,
        path_style,
    })
}

fn load(path: Option<PathBuf>) -> Result<Option<Ini>> {
    match path {
        Some(p) if p.is_file() => Ini::load_from_file(&p)
            .map(Some)
            .with_context(|| format!("reading {}", p.display())),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Vars(BTreeMap<&'static str, String>);

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    #[test]
    fn variables_win_over_profiles_and_profiles_are_read_like_the_aws_cli() {
        let dir = std::env::temp_dir().join(format!("agentsync-aws-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(
            dir.join(".aws/credentials"),
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\
             [work]\naws_access_key_id = W\naws_secret_access_key = WS\naws_session_token = WT\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(".aws/config"),
            "[default]\nregion = eu-west-1\n[profile work]\nregion = us-west-2\n\
             endpoint_url = http://127.0.0.1:9000/\n",
        )
        .unwrap();
        let home = dir.display().to_string();
        let vars = |pairs: &[(&'static str, &str)]| {
            let mut m: BTreeMap<&'static str, String> = BTreeMap::new();
            m.insert("HOME", home.clone());
            for (k, v) in pairs {
                m.insert(k, (*v).to_owned());
            }
            Vars(m)
        };

        let s = settings_from(&vars(&[])).unwrap();
        assert_eq!(s.credentials.as_ref().unwrap().access_key, "D");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!((s.endpoint, s.path_style), (None, false));

        let s = settings_from(&vars(&[("AWS_PROFILE", "work")])).unwrap();
        let c = s.credentials.unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.session_token.as_deref()),
            ("W", Some("WT"))
        );
        assert_eq!(s.region, "us-west-2");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s.path_style, "a custom endpoint is path-style by default");

        let s = settings_from(&vars(&[
            ("AWS_PROFILE", "work"),
            ("AWS_ACCESS_KEY_ID", "E"),
            ("AWS_SECRET_ACCESS_KEY", "ES"),
            ("AWS_REGION", "ap-south-1"),
            ("AWS_ENDPOINT_URL", "http://a"),
            ("AWS_ENDPOINT_URL_S3", "http://b"),
            ("AGENTSYNC_S3_ADDRESSING", "virtual"),
        ]))
        .unwrap();
        assert_eq!(s.credentials.unwrap().access_key, "E");
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(s.endpoint.as_deref(), Some("http://b"));
        assert!(!s.path_style);

        let err = settings_from(&vars(&[("AWS_PROFILE", "nope")])).unwrap_err();
        assert!(err.to_string().contains("no such profile"), "{err}");
        let err = settings_from(&vars(&[("AWS_ACCESS_KEY_ID", "only")])).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
