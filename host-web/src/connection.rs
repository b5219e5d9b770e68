//! Where the viewer syncs from: an S3 endpoint, bucket and prefix, and the credentials to
//! sign with. Kept in the worker's own database, never sent anywhere but the endpoint.

use agentsync_archive::Archive;
use agentsync_remote::{Credentials, S3Settings};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The archive state that holds the connection.
const STATE: &str = "viewer_connection";

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub endpoint: String,
    #[serde(default)]
    pub region: String,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub access_key_id: String,
    /// Empty in a request: keep the stored one.
    #[serde(default)]
    pub secret_access_key: String,
    /// Empty in a request: keep the stored one (unless the access key changed).
    #[serde(default)]
    pub session_token: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What the page may see of the connection: everything but the secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionView {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key_id: String,
    pub has_secret: bool,
    pub has_session_token: bool,
}

impl Connection {
    pub fn load(archive: &Archive) -> Result<Option<Connection>> {
        Ok(archive.state(STATE)?)
    }

    /// Checks `request`, fills what it leaves empty from the stored connection, and saves it.
    pub fn save(archive: &Archive, request: Connection) -> Result<Connection> {
        let stored = Self::load(archive)?.unwrap_or_default();
        let mut c = request;
        c.endpoint = c.endpoint.trim().trim_end_matches('/').to_owned();
        c.bucket = c.bucket.trim().to_owned();
        c.prefix = c.prefix.trim().trim_matches('/').to_owned();
        c.region = match c.region.trim() {
            "" => "us-east-1".to_owned(),
            r => r.to_owned(),
        };
        c.access_key_id = c.access_key_id.trim().to_owned();
        if !(c.endpoint.starts_with("https://") || c.endpoint.starts_with("http://")) {
            bail!("the endpoint must be an http(s) URL, e.g. https://s3.us-east-1.amazonaws.com");
        }
        if c.bucket.is_empty() || c.bucket.contains('/') {
            bail!("give the bucket's name alone (the prefix has its own field)");
        }
        let same_key = c.access_key_id == stored.access_key_id;
        if c.secret_access_key.is_empty() && same_key {
            c.secret_access_key = stored.secret_access_key;
        }
        if c.session_token.is_empty() && same_key {
            c.session_token = stored.session_token;
        }
        if c.access_key_id.is_empty() != c.secret_access_key.is_empty() {
            bail!("give both the access key id and its secret, or neither (a public bucket)");
        }
        archive.set_state(STATE, &c)?;
        Ok(c)
    }

    pub fn view(&self) -> ConnectionView {
        ConnectionView {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            access_key_id: self.access_key_id.clone(),
            has_secret: !self.secret_access_key.is_empty(),
            has_session_token: !self.session_token.is_empty(),
        }
    }

    /// The S3 settings for the shared client: path-style addressing, as every S3-compatible
    /// store accepts and a browser's CORS rule on the bucket needs.
    pub fn s3_settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: self.region.clone(),
            credentials: (!self.access_key_id.is_empty()).then(|| Credentials {
                access_key: self.access_key_id.clone(),
                secret_key: self.secret_access_key.clone(),
                session_token: (!self.session_token.is_empty()).then(|| self.session_token.clone()),
            }),
            path_style: true,
        }
    }

    /// `s3://bucket/prefix`, as the CLI names the same target.
    pub fn target_name(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Connection {
        Connection {
            endpoint: " http://127.0.0.1:9000/ ".into(),
            bucket: "archive".into(),
            prefix: "/team/".into(),
            access_key_id: "AKIA".into(),
            secret_access_key: "s3cret".into(),
            ..Connection::default()
        }
    }

    #[test]
    fn a_connection_is_cleaned_saved_and_keeps_its_secret() {
        let archive = Archive::open_in_memory().unwrap();
        let saved = Connection::save(&archive, request()).unwrap();
        assert_eq!(saved.endpoint, "http://127.0.0.1:9000");
        assert_eq!(saved.prefix, "team");
        assert_eq!(saved.region, "us-east-1");
        assert_eq!(saved.target_name(), "s3://archive/team");

        // The form sends an empty secret to keep the stored one.
        let again = Connection::save(
            &archive,
            Connection {
                secret_access_key: String::new(),
                ..request()
            },
        )
        .unwrap();
        assert_eq!(again.secret_access_key, "s3cret");
        let view = Connection::load(&archive).unwrap().unwrap().view();
        assert!(view.has_secret);
        assert!(!serde_json::to_string(&view).unwrap().contains("s3cret"));
        assert!(!format!("{again:?}").contains("s3cret"));
    }

    #[test]
    fn bad_connections_are_refused_with_what_to_fix() {
        let archive = Archive::open_in_memory().unwrap();
        let no_scheme = Connection {
            endpoint: "s3.amazonaws.com".into(),
            ..request()
        };
        let err = Connection::save(&archive, no_scheme)
            .unwrap_err()
            .to_string();
        assert!(err.contains("http(s) URL"), "{err}");
        let with_prefix = Connection {
            bucket: "archive/team".into(),
            ..request()
        };
        assert!(Connection::save(&archive, with_prefix).is_err());
        let new_key_no_secret = Connection {
            access_key_id: "OTHER".into(),
            secret_access_key: String::new(),
            ..request()
        };
        Connection::save(&archive, request()).unwrap();
        let err = Connection::save(&archive, new_key_no_secret)
            .unwrap_err()
            .to_string();
        assert!(err.contains("both"), "{err}");
        assert!(Connection::load(&archive).unwrap().unwrap().access_key_id == "AKIA");
    }
}
