//! The accounts API: signing in and out (a session cookie plus its CSRF token), who I am,
//! users and their roles (admin), API tokens (each user's own), and the audit log (admin).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authenticator::SESSION_COOKIE;
use super::auth::secret::{
    check_password, digest, dummy_hash, hash_password, random_secret, verify_password, TOKEN_PREFIX,
};
use super::auth::{Principal, Role, Via};
use super::http::{ApiError, Body, Id, QueryParams};
use super::sql_store::accounts::epoch_now;
use super::sql_store::{AuditFilter, AuditRow, TokenRow, UserRow};
use super::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// How long a browser session lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// The longest user or token name.
const MAX_NAME: usize = 64;

/// `POST /api/login` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// Runs the slow password hash off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("hashing: {e}")))
}

fn cookie(app: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if app.tls { "; Secure" } else { "" };
    let c = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn me_json(p: &Principal) -> Value {
    let csrf = match &p.via {
        Via::Session { csrf, .. } => Some(csrf.clone()),
        _ => None,
    };
    json!({"username": p.username, "role": p.role, "user_id": p.user_id, "csrf": csrf})
}

/// `POST /api/login`: checks the password; sets the session cookie (HttpOnly, SameSite,
/// Secure over HTTPS) and answers the CSRF token the UI sends with every change.
///
/// Repeated failures of one user name from one address (or many from one address) are
/// refused with `429` and `Retry-After` for a while ([`super::auth::throttle`]).
pub async fn login(
    State(app): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Body(input): Body<LoginInput>,
) -> Response {
    let addr = peer.map(|Extension(ConnectInfo(a))| a.ip());
    match login_inner(&app, input, addr).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// `429` with `Retry-After` (whole seconds, rounded up).
fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut r = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!("too many failed sign-ins: try again in {secs} s"),
        field: None,
    }
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

async fn login_inner(
    app: &AppState,
    input: LoginInput,
    addr: Option<IpAddr>,
) -> ApiResult<Response> {
    let username = input.username.trim().to_owned();
    if let Err(wait) = app.logins.check(&username, addr) {
        let who: String = username.chars().take(MAX_NAME).collect();
        app.store()
            .audit(
                &who,
                "login",
                None,
                Some("too many failed sign-ins"),
                "denied",
            )
            .await?;
        return Ok(too_many(wait));
    }
    let found = if username.len() <= MAX_NAME {
        app.store().user_for_login(&username).await?
    } else {
        None
    };
    let password = input.password;
    let hash = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |(_, h)| h.clone());
    // A wrong user name costs as much as a wrong password.
    let ok = blocking(move || verify_password(&password, &hash)).await?;
    let user = match (found, ok) {
        (Some((user, _)), true) if Role::parse(&user.role).is_some() => user,
        _ => {
            let who: String = username.chars().take(MAX_NAME).collect();
            app.store()
                .audit(&who, "login", None, None, "denied")
                .await?;
            // The next attempt finds the lock, if this one set it.
            app.logins.failed(&username, addr);
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "wrong user name or password".into(),
                field: None,
            });
        }
    };
    app.logins.succeeded(&username, addr);
    let secret = random_secret("").map_err(ApiError::internal)?;
    let csrf = random_secret("").map_err(ApiError::internal)?;
    app.store()
        .add_session(
            &digest(&secret),
            user.id,
            &csrf,
            epoch_now() + SESSION_SECONDS,
        )
        .await?;
    app.store()
        .audit(&user.username, "login", None, None, "ok")
        .await?;
    let body =
        json!({"username": user.username, "role": user.role, "user_id": user.id, "csrf": csrf});
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(app, &secret, SESSION_SECONDS));
    Ok(r)
}

/// `POST /api/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    if let Via::Session { id, .. } = &p.via {
        app.store().end_session(id).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&app, "", 0));
    Ok(r)
}

/// `GET /api/me`: the caller, its role and (for a session) its CSRF token.
pub async fn me(Extension(p): Extension<Principal>) -> Json<Value> {
    Json(me_json(&p))
}

/// `POST /api/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// The user name (letters, digits, `.`, `-`, `_`, `@`; at most 64).
    pub username: Option<String>,
    /// The password (10 to 256 characters).
    pub password: Option<String>,
    /// `viewer`, `operator` or `admin`.
    pub role: Option<String>,
}

fn check_username(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            "username",
            "1 to 64 letters, digits, '.', '-', '_' or '@'",
        ))
    }
}

fn parse_role(role: Option<&str>) -> ApiResult<Option<Role>> {
    role.map(|r| {
        Role::parse(r).ok_or_else(|| ApiError::bad("role", "expected viewer, operator or admin"))
    })
    .transpose()
}

/// Adds a user (the API and `datatrace user add`): checks the name, role and password,
/// hashes it; its id.
pub async fn add_user(
    store: &super::sql_store::Store,
    username: &str,
    password: String,
    role: Role,
) -> ApiResult<i64> {
    check_username(username)?;
    check_password(&password, username).map_err(|m| ApiError::bad("password", m))?;
    let hash = blocking(move || hash_password(&password))
        .await?
        .map_err(ApiError::internal)?;
    store
        .add_user(username, role.as_str(), &hash)
        .await
        .map_err(|e| {
            if e.conflict {
                ApiError {
                    status: StatusCode::CONFLICT,
                    message: format!("a user named {username:?} exists"),
                    field: Some("username".into()),
                }
            } else {
                e.into()
            }
        })
}

/// `GET /api/users`
pub async fn list_users(State(app): State<AppState>) -> ApiResult<Json<Vec<UserRow>>> {
    Ok(Json(app.store().users().await?))
}

/// `POST /api/users`
pub async fn create_user(
    State(app): State<AppState>,
    Body(input): Body<UserInput>,
) -> ApiResult<(StatusCode, Json<UserRow>)> {
    let username = input.username.unwrap_or_default();
    let role = parse_role(input.role.as_deref())?
        .ok_or_else(|| ApiError::bad("role", "missing: viewer, operator or admin"))?;
    let password = input
        .password
        .ok_or_else(|| ApiError::bad("password", "missing"))?;
    let id = add_user(app.store(), username.trim(), password, role).await?;
    let user = app
        .store()
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PUT /api/users/{id}`: a new role and/or password (which ends the user's sessions).
pub async fn update_user(
    State(app): State<AppState>,
    Id(id): Id,
    Body(input): Body<UserInput>,
) -> ApiResult<Json<UserRow>> {
    let user = app
        .store()
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    if input
        .username
        .as_deref()
        .is_some_and(|n| n.trim() != user.username)
    {
        return Err(ApiError::bad("username", "a user name cannot change"));
    }
    let role = parse_role(input.role.as_deref())?;
    if user.role == "admin" && role.is_some_and(|r| r != Role::Admin) {
        last_admin_guard(&app).await?;
    }
    let hash = match input.password {
        Some(p) => {
            check_password(&p, &user.username).map_err(|m| ApiError::bad("password", m))?;
            Some(
                blocking(move || hash_password(&p))
                    .await?
                    .map_err(ApiError::internal)?,
            )
        }
        None => None,
    };
    app.store()
        .update_user(id, role.map(Role::as_str), hash.as_deref())
        .await?;
    let user = app
        .store()
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(user))
}

async fn last_admin_guard(app: &AppState) -> ApiResult<()> {
    if app.store().count_role("admin").await? <= 1 && !app.authenticator.has_server_token() {
        return Err(ApiError::conflict(
            "this is the last admin: make another user admin first",
        ));
    }
    Ok(())
}

/// `DELETE /api/users/{id}`: the user with its sessions and tokens.
pub async fn delete_user(State(app): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    let user = app
        .store()
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    if user.role == "admin" {
        last_admin_guard(&app).await?;
    }
    app.store().delete_user(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// A label (what the token is for).
    pub name: String,
}

fn user_of(p: &Principal) -> ApiResult<i64> {
    p.user_id.ok_or_else(|| {
        ApiError::bad(
            "",
            "the server token is not a user: sign in as a user to manage API tokens",
        )
    })
}

/// `GET /api/tokens`: the caller's tokens (never the tokens themselves).
pub async fn list_tokens(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<TokenRow>>> {
    Ok(Json(app.store().tokens(user_of(&p)?).await?))
}

/// `POST /api/tokens`: a new token of the caller, shown this once.
pub async fn create_token(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(input): Body<TokenInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = user_of(&p)?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad("name", "1 to 64 characters"));
    }
    let token = random_secret(TOKEN_PREFIX).map_err(ApiError::internal)?;
    let id = app.store().add_token(user, name, &digest(&token)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": name, "token": token,
                    "note": "shown once: keep it now; only its digest is stored"})),
    ))
}

/// `DELETE /api/tokens/{id}`: revokes one of the caller's tokens (an admin: anyone's).
pub async fn revoke_token(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    let owner = if p.role == Role::Admin {
        None
    } else {
        Some(user_of(&p)?)
    };
    if app.store().revoke_token(id, owner).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("live token {id}")))
    }
}

/// `GET /api/audit` query.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only actions starting with this.
    pub action: Option<String>,
    /// Older records than this id.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// `GET /api/audit`: newest first.
pub async fn audit_log(
    State(app): State<AppState>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> ApiResult<Json<Vec<AuditRow>>> {
    let filter = AuditFilter {
        actor: q.actor.filter(|a| !a.is_empty()),
        action: q.action.filter(|a| !a.is_empty()),
        before: q.before,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    Ok(Json(app.store().audit_log(&filter).await?))
}
