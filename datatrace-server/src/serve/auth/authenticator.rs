//! Resolving a request's credentials to a [`Principal`]: the server token, a user's API
//! token (`Authorization: Bearer dtk_...`), or a browser session cookie.

use axum::http::{header, HeaderMap, Uri};

use super::guard::bearer_of;
use super::principal::{Principal, Via};
use super::secret::{digest, TOKEN_PREFIX};
use super::Role;
use crate::serve::http::{constant_time_eq, ApiError};
use crate::serve::store::StoreError;
use crate::serve::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dt_session";

/// Knows the server token (and, through the store, users' tokens and sessions).
pub struct Authenticator {
    server_token: Option<String>,
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

impl Authenticator {
    /// With the server's own token, when one is configured.
    pub fn new(server_token: Option<String>) -> Self {
        Authenticator { server_token }
    }

    /// Whether a server token is configured.
    pub fn has_server_token(&self) -> bool {
        self.server_token.is_some()
    }

    /// The caller of a request (its headers and URI), if its credentials are valid.
    pub async fn resolve(
        &self,
        app: &AppState,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Option<Principal>, ApiError> {
        if let Some(given) = bearer_of(headers, uri) {
            if let Some(server) = &self.server_token {
                if constant_time_eq(given.as_bytes(), server.as_bytes()) {
                    return Ok(Some(Principal::server_token()));
                }
            }
            if !given.starts_with(TOKEN_PREFIX) {
                return Ok(None);
            }
            let found = app
                .store()
                .token_user(&digest(&given))
                .await
                .map_err(store_error)?;
            return Ok(found.and_then(|(user, id)| {
                Some(Principal {
                    user_id: Some(user.id),
                    role: Role::parse(&user.role)?,
                    username: user.username,
                    via: Via::Token { id },
                })
            }));
        }
        let Some(session) = session_cookie(headers) else {
            return Ok(None);
        };
        let id = digest(&session);
        let found = app.store().session(&id).await.map_err(store_error)?;
        Ok(found.and_then(|(user, csrf)| {
            Some(Principal {
                user_id: Some(user.id),
                role: Role::parse(&user.role)?,
                username: user.username,
                via: Via::Session { id, csrf },
            })
        }))
    }
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}
