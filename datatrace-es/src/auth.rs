//! Authentication: the `Authorization` header of every request, for basic auth, API keys and
//! bearer tokens (client certificates are TLS, see `tls`). The header is built here, once,
//! and marked sensitive (never logged).

use base64::Engine;
use elasticsearch::http::headers::HeaderValue;

use crate::config::ConnectionConfig;
use crate::errors::EsError;

/// The `Authorization` header of a configuration, if it has credentials.
pub(crate) fn authorization(config: &ConnectionConfig) -> Result<Option<HeaderValue>, EsError> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let text = if let Some(user) = &config.username {
        let pass = config.password.as_ref().map_or("", |p| p.expose());
        format!("Basic {}", b64(&format!("{user}:{pass}")))
    } else if let Some(key) = &config.api_key {
        let key = key.expose();
        // `id:key` in clear is encoded; the `encoded` form is sent as it is.
        match key.contains(':') {
            true => format!("ApiKey {}", b64(key)),
            false => format!("ApiKey {key}"),
        }
    } else if let Some(token) = &config.bearer_token {
        format!("Bearer {}", token.expose())
    } else {
        return Ok(None);
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        EsError::Config(
            "credentials: not usable in an HTTP header (control characters or non-ASCII)".into(),
        )
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn header(c: &ConnectionConfig) -> String {
        authorization(c)
            .unwrap()
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn every_scheme_becomes_its_header() {
        let mut c = ConnectionConfig::new(["https://a:9200"]);
        assert_eq!(header(&c), "");
        c.username = Some("elastic".into());
        c.password = Some(Secret::new("pw"));
        assert_eq!(header(&c), "Basic ZWxhc3RpYzpwdw==");
        c.username = None;
        c.password = None;
        c.api_key = Some(Secret::new("id:key"));
        assert_eq!(header(&c), "ApiKey aWQ6a2V5");
        c.api_key = Some(Secret::new("aWQ6a2V5"));
        assert_eq!(header(&c), "ApiKey aWQ6a2V5");
        c.api_key = None;
        c.bearer_token = Some(Secret::new("tok.en"));
        assert_eq!(header(&c), "Bearer tok.en");
        assert!(authorization(&c).unwrap().unwrap().is_sensitive());
        c.bearer_token = Some(Secret::new("bad\ntoken"));
        assert!(authorization(&c).is_err());
    }
}
