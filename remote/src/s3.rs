//! An S3 bucket (AWS, R2, B2, MinIO, moto) as a target: SigV4-signed requests over reqwest,
//! without the AWS SDK.
//!
//! - put-if-absent is `PUT` with `If-None-Match: *`; a `412` is followed by a `GET` and a byte
//!   comparison (identical: a duplicate; different: `Differs`, for the engine to judge).
//! - listings are ListObjectsV2 pages (`prefix`, `start-after`), 1 000 keys each.
//! - a listing may lag behind writes; the engine treats a `GET` as the truth.

use std::time::{Duration, SystemTime};

use agentsync_core::sync::store::{Bounded, ListPage, Listing, PutOutcome};
use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::{Failure, KEY_PATH, RemoteClient, read_bounded};

/// Query values: everything but the unreserved characters is escaped (SigV4's rule).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Access key, secret and optional session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// A custom endpoint (MinIO, R2, B2, moto); `None`: AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// `None`: requests go unsigned (a public bucket).
    pub credentials: Option<Credentials>,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`.
    pub path_style: bool,
}

pub struct S3Bucket {
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    settings: S3Settings,
    /// The URL of the bucket, without a trailing slash: `https://host/bucket` (path-style)
    /// or `https://bucket.host`.
    base: String,
    client: reqwest::Client,
    /// Sign reads (`GET` without extra headers) in the query string; on by default in a
    /// browser (see [`S3Bucket::request`]).
    query_signed_reads: bool,
    query_expiry: Duration,
}

impl S3Bucket {
    /// `client`: natively one with timeouts and no redirects; in a browser a plain one.
    pub fn new(bucket: &str, prefix: &str, settings: S3Settings, client: reqwest::Client) -> Self {
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", settings.region));
        let base = if settings.path_style {
            format!("{endpoint}/{bucket}")
        } else {
            let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", &endpoint));
            format!("{scheme}://{bucket}.{host}")
        };
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        S3Bucket {
            bucket: bucket.to_owned(),
            prefix,
            settings,
            base,
            client,
            query_signed_reads: cfg!(target_arch = "wasm32"),
            query_expiry: Duration::from_secs(15 * 60),
        }
    }

    fn object_url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.base,
            utf8_percent_encode(&format!("{}{key}", self.prefix), KEY_PATH)
        )
    }

    /// A request signed with the settings' credentials (unsigned without any).
    ///
    /// In a browser, a request without extra headers (a read) is signed in its query string
    /// instead of `Authorization`: it is then a CORS "simple" request, with no preflight per
    /// key (a browser caches preflights per URL, so each object would cost two requests).
    fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&'static str, String)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<reqwest::RequestBuilder, Failure> {
        let Some(c) = &self.settings.credentials else {
            return Ok(with_headers(self.client.request(method, url), headers));
        };
        let in_query = self.query_signed_reads && headers.is_empty() && method == Method::GET;
        let identity = AwsCredentials::new(
            &c.access_key,
            &c.secret_key,
            c.session_token.clone(),
            None,
            "agentsync",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if in_query {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(self.query_expiry);
        } else {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.settings.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| Failure::permanent(format!("signing: {e}")))?
            .into();
        let body = if in_query {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(body)
        };
        let signable = SignableRequest::new(
            method.as_str(),
            url,
            headers.iter().map(|(n, v)| (*n, v.as_str())),
            body,
        )
        .map_err(|e| Failure::permanent(format!("signing {url}: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| Failure::permanent(format!("signing {url}: {e}")))?
            .into_parts();
        let (signature_headers, signature_params) = instructions.into_parts();
        let mut signed_url = url.to_owned();
        for (i, (name, value)) in signature_params.iter().enumerate() {
            let separator = if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            };
            signed_url.push(separator);
            signed_url.push_str(name);
            signed_url.push('=');
            signed_url.extend(utf8_percent_encode(value, QUERY_VALUE));
        }
        let mut builder = with_headers(self.client.request(method, signed_url), headers);
        for h in signature_headers {
            builder = builder.header(h.name(), h.value());
        }
        Ok(builder)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> Result<reqwest::Response, Failure> {
        let mut builder = self.request(method, url, headers, body, now())?;
        if !body.is_empty() {
            builder = builder.body(body.to_vec());
        }
        builder
            .send()
            .await
            .map_err(|e| Failure::of_request(&e, url))
    }

    async fn failed(&self, what: &str, response: reqwest::Response) -> Failure {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let code = xml_field(&body, "Code").unwrap_or_default();
        let message = xml_field(&body, "Message").unwrap_or_default();
        let detail = format!(
            "{what} in s3://{}/{}: HTTP {status} {code} {message}",
            self.bucket, self.prefix
        );
        match (status.as_u16(), code.as_str()) {
            (403, "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "InvalidToken")
            | (400, "InvalidToken" | "ExpiredToken") => {
                Failure::denied(format!("{detail} ({})", Hint::CREDENTIALS))
            }
            // A bucket that denies listing denies reading a missing key too (403, not 404):
            // only a refused listing stops the run.
            (403, _) if what == "reading" => {
                Failure::permanent(format!("{detail} (access denied)"))
            }
            // Keys that may read but not write (a viewer's, a read-only machine's): everything
            // else goes on; what could not be written stays local and is reported.
            (403, "AccessDenied") if what != "listing" => Failure::permanent(format!(
                "{detail} (these credentials may not write here: this machine's own sessions \
                 and edits stay local until they can)"
            )),
            (403, _) => Failure::denied(format!("{detail} (access denied)")),
            (404, "NoSuchBucket") => Failure::denied(format!("{detail} (no such bucket)")),
            // The bucket lives in another region than the one requests are signed for.
            (301 | 400, "PermanentRedirect" | "AuthorizationHeaderMalformed") => {
                Failure::denied(format!(
                    "{detail} (the bucket is in another region: {})",
                    Hint::REGION
                ))
            }
            (_, "SlowDown" | "InternalError" | "RequestTimeout" | "ServiceUnavailable") => {
                Failure::transient(detail)
            }
            // Two conditional writes of one key raced (AWS): the retry sees the winner.
            (409, "ConditionalRequestConflict" | "OperationAborted") => Failure::transient(detail),
            (s, _) if s >= 500 || s == 429 => Failure::transient(detail),
            _ => Failure::permanent(detail),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<Object>,
    #[serde(default)]
    is_truncated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Object {
    key: String,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    size: u64,
}

impl RemoteClient for S3Bucket {
    async fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<ListPage, Failure> {
        let full = format!("{}{prefix}", self.prefix);
        let mut query = vec![("list-type", "2".to_owned()), ("prefix", full.clone())];
        if let Some(after) = start_after {
            query.push(("start-after", format!("{}{after}", self.prefix)));
        }
        query.sort();
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
            .collect();
        let url = format!("{}/?{}", self.base, query.join("&"));
        let response = self.send(Method::GET, &url, &[], &[]).await?;
        if response.status() != StatusCode::OK {
            return Err(self.failed("listing", response).await);
        }
        let text = response.text().await.map_err(|e| Failure::of(&e))?;
        let result: ListBucketResult = quick_xml::de::from_str(&text).map_err(|e| {
            Failure::permanent(format!(
                "the bucket's listing is not ListObjectsV2 XML: {e}"
            ))
        })?;
        let entries = result
            .contents
            .into_iter()
            .filter_map(|o| {
                Some(Listing {
                    key: o.key.strip_prefix(&self.prefix)?.to_owned(),
                    modified_ms: o.last_modified.as_deref().and_then(rfc3339_ms),
                    size: o.size,
                })
            })
            .collect();
        Ok(ListPage {
            entries,
            truncated: result.is_truncated,
        })
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Bounded, Failure> {
        let response = self
            .send(Method::GET, &self.object_url(key), &[], &[])
            .await?;
        match response.status() {
            StatusCode::OK => read_bounded(response, max_bytes).await,
            StatusCode::NOT_FOUND => Ok(Bounded::Missing),
            _ => Err(self.failed("reading", response).await),
        }
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, Failure> {
        let url = self.object_url(key);
        let response = self
            .send(Method::PUT, &url, &[("if-none-match", "*".into())], bytes)
            .await?;
        match response.status() {
            StatusCode::OK | StatusCode::CREATED => Ok(PutOutcome::Created),
            StatusCode::PRECONDITION_FAILED => {
                match self.get(key, bytes.len() as u64).await? {
                    Bounded::Bytes(stored) if stored == bytes => Ok(PutOutcome::Exists),
                    Bounded::Bytes(_) | Bounded::TooLarge(_) => Ok(PutOutcome::Differs),
                    // Deleted between the two requests: try again.
                    Bounded::Missing => Err(Failure::transient(format!(
                        "{key}: exists, then vanished before it could be compared"
                    ))),
                }
            }
            _ => Err(self.failed("writing", response).await),
        }
    }

    async fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), Failure> {
        let response = self
            .send(Method::PUT, &self.object_url(key), &[], bytes)
            .await?;
        match response.status() {
            StatusCode::OK | StatusCode::CREATED => Ok(()),
            _ => Err(self.failed("replacing", response).await),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Failure> {
        let response = self
            .send(Method::DELETE, &self.object_url(key), &[], &[])
            .await?;
        match response.status() {
            StatusCode::OK | StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.failed("deleting", response).await),
        }
    }

    fn can_delete(&self) -> bool {
        true
    }
}

fn with_headers(
    mut builder: reqwest::RequestBuilder,
    headers: &[(&'static str, String)],
) -> reqwest::RequestBuilder {
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
}

/// Where the user fixes credentials and region: the CLI reads them as the AWS CLI does, the
/// browser viewer from its Settings.
struct Hint;

impl Hint {
    #[cfg(not(target_arch = "wasm32"))]
    const CREDENTIALS: &str = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile";
    #[cfg(target_arch = "wasm32")]
    const CREDENTIALS: &str = "check the access key id, secret and session token in Settings";
    #[cfg(not(target_arch = "wasm32"))]
    const REGION: &str = "set AWS_REGION, or the profile's region";
    #[cfg(target_arch = "wasm32")]
    const REGION: &str = "set its region in Settings";
}

/// The text of the first `<name>` element (S3 error bodies are flat).
fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_owned())
}

/// S3's `LastModified` (RFC 3339, UTC) as milliseconds since the epoch.
fn rfc3339_ms(text: &str) -> Option<u64> {
    agentsync_core::timestamp::parse_rfc3339_ms(text).and_then(|ms| u64::try_from(ms).ok())
}

/// The signing time. `SystemTime::now()` panics in a browser: the page's clock is `Date.now()`.
#[cfg(not(target_arch = "wasm32"))]
fn now() -> SystemTime {
    SystemTime::now()
}

#[cfg(target_arch = "wasm32")]
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(js_sys::Date::now() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's own example of a presigned GET ("Authenticating Requests: Using Query
    /// Parameters", S3 API reference): the URL must carry exactly its signature.
    #[test]
    fn reads_signed_in_the_query_match_the_aws_example() {
        let settings = S3Settings {
            endpoint: Some("https://s3.amazonaws.com".into()),
            region: "us-east-1".into(),
            credentials: Some(Credentials {
                access_key: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            }),
            path_style: false,
        };
        // reqwest is built without a default TLS provider (the CLI installs ring's at start).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut bucket = S3Bucket::new("examplebucket", "", settings, reqwest::Client::new());
        bucket.query_signed_reads = true;
        bucket.query_expiry = Duration::from_secs(86_400);
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24
        let url = bucket.object_url("test.txt");
        let request = bucket
            .request(Method::GET, &url, &[], &[], time)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            request.url().as_str(),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert!(request.headers().get("authorization").is_none());

        // A write keeps its signature in headers (it carries If-None-Match anyway).
        let put = bucket
            .request(
                Method::PUT,
                &url,
                &[("if-none-match", "*".into())],
                b"x",
                time,
            )
            .unwrap()
            .build()
            .unwrap();
        assert!(put.headers().get("authorization").is_some());
        assert!(!put.url().as_str().contains("X-Amz-Signature"));
    }

    #[test]
    fn s3_times_parse() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2026-12-02T06:15:05.123Z"),
            Some(1_796_192_105_123)
        );
        assert_eq!(rfc3339_ms("2026-12-02T06:15:05Z"), Some(1_796_192_105_000));
        assert_eq!(rfc3339_ms("garbage"), None);
    }

    #[test]
    fn listings_parse() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/roots/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/roots/a/1.root</Key><LastModified>2026-12-02T06:15:05.000Z</LastModified><ETag>"x"</ETag><Size>10</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>p/roots/b/2.root</Key><LastModified>2026-12-02T06:15:06.000Z</LastModified><Size>12</Size></Contents>
</ListBucketResult>"#;
        let r: ListBucketResult = quick_xml::de::from_str(xml).unwrap();
        assert!(r.is_truncated);
        assert_eq!(r.contents.len(), 2);
        assert_eq!(r.contents[1].key, "p/roots/b/2.root");
        assert_eq!(r.contents[1].size, 12);
        let empty: ListBucketResult = quick_xml::de::from_str(
            "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
        )
        .unwrap();
        assert!(empty.contents.is_empty());
        assert_eq!(
            xml_field("<Error><Code>SlowDown</Code></Error>", "Code").as_deref(),
            Some("SlowDown")
        );
    }
}
