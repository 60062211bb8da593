//! Security headers on every answer: a Content-Security-Policy (the UI loads only its own
//! script and style; API answers may load nothing), no framing, no referrer, no MIME
//! sniffing, `Cache-Control: no-store` on API answers (they hold data), and HSTS over TLS.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// The UI's policy: its own script, style and API only; no inline script, no plugins, no
/// framing, forms post only to the server itself.
pub const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// The policy of API answers (JSON, text): nothing may load or run.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Whether a path is one of the UI's static files (cacheable, the UI's CSP).
fn is_ui_asset(path: &str) -> bool {
    matches!(path, "/" | "/favicon.ico") || path.starts_with("/ui/")
}

/// Adds the headers after the handler ran; `tls` adds `Strict-Transport-Security`.
pub async fn security_headers(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let ui = is_ui_asset(req.uri().path());
    let mut resp = next.run(req).await;
    apply(resp.headers_mut(), ui, app.tls);
    resp
}

fn set(h: &mut HeaderMap, name: HeaderName, value: &'static str) {
    h.insert(name, HeaderValue::from_static(value));
}

/// The headers of an answer (`ui`: a static file of the UI).
pub fn apply(h: &mut HeaderMap, ui: bool, tls: bool) {
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        if ui { UI_CSP } else { API_CSP },
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if ui {
        if !h.contains_key(header::CACHE_CONTROL) {
            set(h, header::CACHE_CONTROL, "no-cache");
        }
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
        set(h, header::PRAGMA, "no-cache");
    }
    if tls {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_answers_are_not_cached_and_load_nothing() {
        let mut h = HeaderMap::new();
        apply(&mut h, false, false);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"));
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        let mut h = HeaderMap::new();
        apply(&mut h, true, true);
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }
}
