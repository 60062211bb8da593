//! The authentication and authorization layers: `authenticate` finds the caller (a
//! session cookie, an API token, or the server token) and checks the CSRF token of
//! cookie-authenticated changes; `require(role)` on each route refuses callers whose role
//! is below the route's.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::principal::{Principal, Via};
use super::Role;
use crate::serve::http::{bearer, constant_time_eq, ApiError};
use crate::serve::AppState;

/// The header the UI sends with the session's CSRF token on every change.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Finds the caller or answers `401`; cookie sessions must send their CSRF token (and a
/// same-origin `Origin`) on unsafe methods, else `403`.
pub async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let (headers, uri) = (req.headers().clone(), req.uri().clone());
    let principal = match app.authenticator.resolve(&app, &headers, &uri).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return unauthorized(
                "authentication required: sign in, or send an API token as \
                 'Authorization: Bearer <token>'",
            )
        }
        Err(e) => return e.into_response(),
    };
    if let Via::Session { csrf, .. } = &principal.via {
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            if let Err(e) = check_csrf(&req, csrf) {
                // A refused change is audited like those the role check refuses.
                let action = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|p| {
                        crate::serve::audit::action(
                            &req.method().as_str().to_ascii_lowercase(),
                            p.as_str(),
                        )
                    })
                    .unwrap_or_else(|| "unknown".into());
                let detail = "no valid CSRF token or another site's page";
                if let Err(err) = app
                    .store()
                    .audit(&principal.actor(), &action, None, Some(detail), "denied")
                    .await
                {
                    eprintln!("error: {err}");
                }
                return e.into_response();
            }
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

fn check_csrf(req: &Request, csrf: &str) -> Result<(), ApiError> {
    let forbidden = |m: &str| ApiError {
        status: StatusCode::FORBIDDEN,
        message: m.to_owned(),
        field: None,
    };
    let given = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), csrf.as_bytes()) {
        return Err(forbidden(
            "the CSRF token is missing or wrong: send the session's token as X-CSRF-Token",
        ));
    }
    // Browsers send Origin on cross-site requests: it must be this server.
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |x| x.1);
        if !origin_host.eq_ignore_ascii_case(host) {
            return Err(forbidden("a request from another site's page is refused"));
        }
    }
    Ok(())
}

/// The caller of a request that passed [`authenticate`].
pub fn principal(req: &Request) -> Option<&Principal> {
    req.extensions().get::<Principal>()
}

/// Refuses callers below `role` with `403`.
pub async fn require_role(role: Role, req: Request, next: Next) -> Response {
    match principal(&req) {
        Some(p) if p.role.allows(role) => next.run(req).await,
        Some(p) => ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!("this needs the {role} role; {} is {}", p.username, p.role),
            field: None,
        }
        .into_response(),
        None => unauthorized("authentication required"),
    }
}

/// `401` with `WWW-Authenticate: Bearer`.
pub fn unauthorized(message: &str) -> Response {
    let mut r = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: message.into(),
        field: None,
    }
    .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The bearer credentials of a request: the `Authorization` header, or for the event
/// stream (browsers' EventSource sends no headers) `?access_token=`.
pub fn bearer_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
    {
        return Some(t.to_owned());
    }
    if !uri.path().ends_with("/events") {
        return None;
    }
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}
