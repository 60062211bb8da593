//! [`EsClient`]: the connection to a cluster (several nodes, basic auth or API key, TLS,
//! timeouts), flavour and version detection, and raw requests with retries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use elasticsearch::http::headers::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use elasticsearch::http::request::Body;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, Transport, TransportBuilder,
};
use elasticsearch::http::{Method, Url};

use crate::config::ConnectionConfig;
use crate::errors::{error_reason, EsError};

mod cluster;

pub use cluster::{ClusterInfo, Flavor, PitApi};

/// An HTTP answer: status and body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
    /// The delay the server asked for before another attempt (`Retry-After`, in seconds).
    pub retry_after: Option<std::time::Duration>,
}

impl RawResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request body already serialized.
struct RawBody(Bytes);

impl Body for RawBody {
    fn bytes(&self) -> Option<Bytes> {
        Some(self.0.clone())
    }
    fn write(&self, bytes: &mut bytes::BytesMut) -> Result<(), elasticsearch::Error> {
        bytes.extend_from_slice(&self.0);
        Ok(())
    }
}

struct Inner {
    transport: Transport,
    /// Node URLs for messages (never with credentials).
    display: String,
    info: ClusterInfo,
    config: ConnectionConfig,
}

/// A connection to an Elasticsearch or OpenSearch cluster; cheap to clone.
///
/// `Debug` shows the node URLs and the flavour, never credentials.
#[derive(Clone)]
pub struct EsClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for EsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsClient")
            .field("urls", &self.inner.display)
            .field("cluster", &self.inner.info.to_string())
            .finish()
    }
}

/// Builds the transport for a configuration (no request is sent): the nodes (or the
/// Elastic Cloud endpoint), TLS (`crate::tls`) and the `Authorization` header
/// (`crate::auth`).
pub fn build_transport(config: &ConnectionConfig) -> Result<Transport, EsError> {
    config.validate()?;
    let urls: Vec<Url> = config
        .node_urls()?
        .iter()
        .map(|u| Url::parse(u).map_err(|e| EsError::Config(format!("urls: {u:?}: {e}"))))
        .collect::<Result<_, _>>()?;
    let display = urls.iter().map(Url::as_str).collect::<Vec<_>>().join(",");
    let mut builder = if urls.len() == 1 {
        TransportBuilder::new(SingleNodeConnectionPool::new(urls[0].clone()))
    } else {
        TransportBuilder::new(MultiNodeConnectionPool::round_robin(urls, None))
    };
    builder = builder
        .timeout(Duration::from_millis(config.timeout_ms))
        .request_body_compression(config.gzip)
        .enable_meta_header(false)
        .disable_proxy();
    if let Some(auth) = crate::auth::authorization(config)? {
        builder = builder.header(AUTHORIZATION, auth);
    }
    if let Some(cert) = crate::tls::client_certificate(&config.tls)? {
        builder = builder.auth(cert);
    }
    builder = builder.cert_validation(crate::tls::validation(&config.tls, &display)?);
    builder
        .build()
        .map_err(|e| EsError::Config(format!("cannot build the HTTP client: {e}")))
}

/// The message of a transport error with its causes ("connection refused").
fn transport_reason(e: &elasticsearch::Error) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

impl EsClient {
    /// Connects: builds the transport and asks `GET /` for the flavour and version (with
    /// retries on transient failures). Fails with [`EsError::Auth`] on wrong credentials and
    /// [`EsError::Unreachable`] when no node answers.
    pub async fn connect(config: &ConnectionConfig) -> Result<EsClient, EsError> {
        let transport = build_transport(config)?;
        let display = config.node_urls()?.join(",");
        let probe = Inner {
            transport,
            display,
            info: ClusterInfo {
                flavor: Flavor::Elasticsearch,
                version: String::new(),
                semver: (0, 0, 0),
                cluster_name: String::new(),
                build_flavor: String::new(),
            },
            config: config.clone(),
        };
        let mut client = EsClient {
            inner: Arc::new(probe),
        };
        let r = client
            .request_retry("connection test", Method::Get, "/", &[], None)
            .await?;
        let r = client.check(r, "connection test")?;
        let info = ClusterInfo::parse(&r.body)?;
        let inner = Arc::get_mut(&mut client.inner).ok_or_else(|| EsError::Protocol {
            context: "connect".into(),
            reason: "client shared during connect".into(),
        })?;
        inner.info = info;
        tracing::info!(urls = %client.inner.display, cluster = %client.inner.info, "connected");
        Ok(client)
    }

    /// The flavour and version found at connect time.
    pub fn info(&self) -> &ClusterInfo {
        &self.inner.info
    }

    /// The node URLs, comma-separated (for messages).
    pub fn urls(&self) -> &str {
        &self.inner.display
    }

    /// The connection settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.inner.config
    }

    /// Asks `GET /` again and returns what it says: a connection test.
    pub async fn test_connection(&self) -> Result<ClusterInfo, EsError> {
        let r = self
            .request_retry("connection test", Method::Get, "/", &[], None)
            .await?;
        let r = self.check(r, "connection test")?;
        ClusterInfo::parse(&r.body)
    }

    /// Sends one request (no retry). `Err` only when no answer came; every HTTP status is
    /// an `Ok`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<RawResponse, EsError> {
        self.request_with_type(method, path, query, body, "application/json")
            .await
    }

    /// Like [`EsClient::request`] with a content type (`application/x-ndjson` for bulk).
    pub async fn request_with_type(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Bytes>,
        content_type: &'static str,
    ) -> Result<RawResponse, EsError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let q = if query.is_empty() { None } else { Some(query) };
        let resp = self
            .inner
            .transport
            .send(method, path, headers, q, body.map(RawBody), None)
            .await
            .map_err(|e| EsError::Unreachable {
                url: self.inner.display.clone(),
                reason: transport_reason(&e),
            })?;
        let status = resp.status_code().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        let body = resp.bytes().await.map_err(|e| EsError::Unreachable {
            url: self.inner.display.clone(),
            reason: format!("reading the answer: {}", transport_reason(&e)),
        })?;
        Ok(RawResponse {
            status,
            body,
            retry_after,
        })
    }

    /// Sends a request, retrying transient failures (no answer, 429, 502/503/504) with
    /// exponential backoff and jitter per the connection's retry policy.
    pub async fn request_retry(
        &self,
        context: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<RawResponse, EsError> {
        let mut retry = self.inner.config.retry.start();
        loop {
            let result = self.request(method, path, query, body.clone()).await;
            let (transient, suggested) = match &result {
                Err(e) => (e.is_transient(), None),
                Ok(r) => (crate::errors::is_retryable_status(r.status), r.retry_after),
            };
            let delay = if transient {
                retry.failed(suggested)
            } else {
                None
            };
            let Some(delay) = delay else {
                return result.map_err(|e| match e {
                    EsError::Unreachable { url, reason } => EsError::Unreachable {
                        url,
                        reason: format!("{context}: {reason}"),
                    },
                    other => other,
                });
            };
            tracing::debug!(
                context,
                attempt = retry.failures(),
                "transient failure, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Turns a non-2xx answer into an error naming `context`.
    pub fn check(&self, r: RawResponse, context: &str) -> Result<RawResponse, EsError> {
        if r.is_success() {
            return Ok(r);
        }
        Err(self.status_error(&r, context, None))
    }

    /// The error for a non-2xx answer; `index` turns a 404 into [`EsError::IndexNotFound`].
    pub fn status_error(&self, r: &RawResponse, context: &str, index: Option<&str>) -> EsError {
        match r.status {
            401 | 403 => EsError::Auth {
                context: context.to_string(),
                url: self.inner.display.clone(),
                status: r.status,
            },
            404 if index.is_some() && error_reason(&r.body).contains("index_not_found") => {
                EsError::IndexNotFound {
                    index: index.unwrap_or_default().to_string(),
                }
            }
            status => EsError::Http {
                context: context.to_string(),
                status,
                reason: error_reason(&r.body),
            },
        }
    }

    /// Sends a JSON request with retries and decodes a 2xx JSON answer.
    pub async fn json(
        &self,
        context: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        index: Option<&str>,
    ) -> Result<serde_json::Value, EsError> {
        let body = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default()));
        let r = self
            .request_retry(context, method, path, query, body)
            .await?;
        if !r.is_success() {
            return Err(self.status_error(&r, context, index));
        }
        if r.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&r.body).map_err(|e| EsError::Protocol {
            context: context.to_string(),
            reason: format!("not JSON: {e}"),
        })
    }

    /// Whether an index (or alias) exists.
    pub async fn index_exists(&self, index: &str) -> Result<bool, EsError> {
        let path = format!("/{}", encode_path(index));
        let r = self
            .request_retry(
                &format!("checking index {index}"),
                Method::Head,
                &path,
                &[],
                None,
            )
            .await?;
        match r.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(&r, &format!("checking index {index}"), Some(index))),
        }
    }

    /// The mapping of an index: `{index_name: {"mappings": {...}}}` (several entries for a
    /// pattern or alias).
    pub async fn get_mapping(&self, index: &str) -> Result<serde_json::Value, EsError> {
        let path = format!("/{}/_mapping", encode_path(index));
        self.json(
            &format!("reading the mapping of index {index}"),
            Method::Get,
            &path,
            &[],
            None,
            Some(index),
        )
        .await
    }
}

/// Percent-encodes what may not appear in a path segment (index names are mostly plain).
pub fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b',' | b'+' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn config_refuses_bad_settings_and_hides_secrets() {
        let mut c = ConnectionConfig::new(["http://user:pw@host:9200"]);
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("carries credentials") && !e.contains("pw"),
            "{e}"
        );
        c.urls = vec!["ftp://x".into()];
        assert!(c.validate().is_err());
        c.urls = vec!["https://localhost:9200".into()];
        c.username = Some("elastic".into());
        c.password = Some(Secret::new("hunter2"));
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        c.api_key = Some(Secret::new("abc"));
        assert!(c.validate().is_err());
        c.username = None;
        c.password = None;
        c.api_key = Some(Secret::new("bad key"));
        assert!(c.validate().is_err());
    }

    #[test]
    fn builds_transports_for_every_auth_and_tls_option() {
        let mut c = ConnectionConfig::new(["https://a:9200", "https://b:9200"]);
        c.api_key = Some(Secret::new("id:key"));
        build_transport(&c).unwrap();
        c.api_key = None;
        c.bearer_token = Some(Secret::new("token"));
        build_transport(&c).unwrap();
        c.tls.verify = false;
        build_transport(&c).unwrap();
        c.tls.verify = true;
        c.tls.ca_cert = Some("/nonexistent/ca.pem".into());
        let e = build_transport(&c).unwrap_err().to_string();
        assert!(
            e.contains("tls.ca_cert") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let cloud = ConnectionConfig::cloud("x:ZXhhbXBsZS5jb20kYWJj");
        build_transport(&cloud).unwrap();
        let mut both = cloud.clone();
        both.urls = vec!["https://a:9200".into()];
        assert!(build_transport(&both)
            .unwrap_err()
            .to_string()
            .contains("cloud_id"));
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(encode_path("logs-2024.01.01"), "logs-2024.01.01");
        assert_eq!(encode_path("a b/c"), "a%20b%2Fc");
    }
}
