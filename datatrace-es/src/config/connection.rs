//! How to reach a cluster: node URLs or a Cloud ID, authentication, TLS, timeouts, retries.

use std::path::PathBuf;

use datatrace_core::RetryPolicy;
use serde::{Deserialize, Serialize};

use crate::errors::EsError;
use crate::secret::Secret;

/// TLS settings for `https://` URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file with the CA certificate(s) that signed the cluster's certificate, trusted in
    /// addition to the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Verify the server certificate (default `true`). `false` is the insecure mode: any
    /// certificate is accepted (anyone on the path can read and change the data); only for
    /// test clusters, it must be set explicitly and every connect logs a warning.
    pub verify: bool,
    /// A PEM client certificate (with its chain), for clusters that authenticate clients by
    /// certificate (PKI realm) or demand one at the TLS layer.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's unencrypted PEM private key.
    pub client_key: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_cert: None,
            verify: true,
            client_cert: None,
            client_key: None,
        }
    }
}

/// How to reach a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Node URLs (`http://host:9200`); requests go round-robin over them. Credentials do not
    /// belong in URLs (they would end up in messages): use `username`/`password` or `api_key`.
    pub urls: Vec<String>,
    /// User for basic authentication.
    pub username: Option<String>,
    /// Password for basic authentication.
    pub password: Option<Secret>,
    /// API key: either the base64 `id:key` form Elasticsearch returns as `encoded`, or
    /// `id:key` in clear (it is encoded then).
    pub api_key: Option<Secret>,
    /// A bearer token (`Authorization: Bearer ...`): an OAuth2 / OpenID Connect access token
    /// or an Elasticsearch service account token.
    pub bearer_token: Option<Secret>,
    /// Elastic Cloud: the deployment's Cloud ID (`name:base64...` from the console), in place
    /// of `urls`; it decodes to the deployment's https endpoint.
    pub cloud_id: Option<String>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Timeout of one request, in milliseconds (bulk requests and search pages included).
    pub timeout_ms: u64,
    /// Compress request bodies with gzip (saves network at some CPU cost on both sides).
    pub gzip: bool,
    /// Retries of transient failures (connection errors, 429, 502/503/504) for searches and
    /// administrative requests; the bulk sink leaves retries to the pipeline's policy.
    pub retry: RetryPolicy,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            urls: vec!["http://127.0.0.1:9200".into()],
            username: None,
            password: None,
            api_key: None,
            bearer_token: None,
            cloud_id: None,
            tls: TlsConfig::default(),
            timeout_ms: 60_000,
            gzip: false,
            retry: RetryPolicy::new(
                6,
                std::time::Duration::from_millis(200),
                std::time::Duration::from_secs(10),
            ),
        }
    }
}

impl ConnectionConfig {
    /// A configuration for these node URLs with defaults otherwise.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        ConnectionConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// A configuration for an Elastic Cloud deployment (see [`ConnectionConfig::cloud_id`]).
    pub fn cloud(cloud_id: impl Into<String>) -> Self {
        ConnectionConfig {
            urls: Vec::new(),
            cloud_id: Some(cloud_id.into()),
            ..Default::default()
        }
    }

    /// The node URLs: `urls`, or the endpoint `cloud_id` decodes to.
    pub fn node_urls(&self) -> Result<Vec<String>, EsError> {
        match &self.cloud_id {
            Some(id) => Ok(vec![crate::cloud::endpoint(id)?]),
            None => Ok(self.urls.clone()),
        }
    }

    /// Checks the settings; the error names the wrong one.
    pub fn validate(&self) -> Result<(), EsError> {
        // `urls` left at its default does not count as given.
        let defaulted = self.urls == ConnectionConfig::default().urls;
        if self.cloud_id.is_some() && !self.urls.is_empty() && !defaulted {
            return Err(EsError::Config(
                "cloud_id: give either urls or cloud_id, not both".into(),
            ));
        }
        let urls = self.node_urls()?;
        if urls.is_empty() {
            return Err(EsError::Config(
                "urls: at least one node URL (or a cloud_id) is needed".into(),
            ));
        }
        for u in &urls {
            check_node_url(u)?;
        }
        self.check_auth()?;
        match (&self.tls.client_cert, &self.tls.client_key) {
            (Some(_), None) => {
                return Err(EsError::Config(
                    "tls.client_key: a client certificate (tls.client_cert) needs its key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(EsError::Config(
                    "tls.client_cert: tls.client_key is set without its certificate".into(),
                ))
            }
            _ => {}
        }
        datatrace_core::limits::check_range(
            "timeout_ms",
            self.timeout_ms,
            1,
            datatrace_core::limits::DAY_MS,
        )
        .map_err(EsError::Config)?;
        if self.retry.max_attempts == 0 {
            return Err(EsError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// One authentication at most, with values a header can carry.
    fn check_auth(&self) -> Result<(), EsError> {
        if self.password.is_some() && self.username.is_none() {
            return Err(EsError::Config(
                "password is set but username is not".into(),
            ));
        }
        let schemes = [
            self.username.is_some(),
            self.api_key.is_some(),
            self.bearer_token.is_some(),
        ];
        if schemes.iter().filter(|s| **s).count() > 1 {
            return Err(EsError::Config(
                "username, api_key and bearer_token: set one of them (one authentication)".into(),
            ));
        }
        if let Some(t) = &self.bearer_token {
            let t = t.expose();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(EsError::Config(
                    "bearer_token must be printable ASCII without spaces".into(),
                ));
            }
        }
        if let Some(u) = &self.username {
            if u.contains(':') || u.chars().any(char::is_control) {
                return Err(EsError::Config(
                    "username may not contain ':' or control characters".into(),
                ));
            }
        }
        if let Some(k) = &self.api_key {
            let k = k.expose();
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(EsError::Config(
                    "api_key must be printable ASCII without spaces".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A node URL: http(s), without credentials in it.
fn check_node_url(u: &str) -> Result<(), EsError> {
    let url = elasticsearch::http::Url::parse(u)
        .map_err(|e| EsError::Config(format!("urls: {u:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EsError::Config(format!(
            "urls: {u:?} must start with http:// or https://"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EsError::Config(format!(
            "urls: {} carries credentials; put them in username/password or api_key",
            url.host_str().unwrap_or("?")
        )));
    }
    Ok(())
}
