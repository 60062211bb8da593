//! Users, sessions, API tokens and the audit log in the metadata store. Secrets never
//! reach it in clear: passwords are Argon2id hashes, session ids and API tokens SHA-256
//! digests (see [`crate::serve::auth::secret`]).

use serde::Serialize;
use sqlx::any::AnyRow;

use super::{err, opt_i, opt_s, s, SqlStore};
use crate::serve::store::{now, StoreResult};

/// A user (without the password hash).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserRow {
    /// Its id.
    pub id: i64,
    /// The unique user name.
    pub username: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// An API token (never the token itself).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenRow {
    /// Its id.
    pub id: i64,
    /// The owner.
    pub user_id: i64,
    /// A label given by its owner.
    pub name: String,
    /// Creation time.
    pub created_at: String,
    /// Last use (updated at most once a minute).
    pub last_used_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRow {
    /// Increasing id.
    pub id: i64,
    /// When (RFC 3339).
    pub ts: String,
    /// Who (`alice`, `alice (token 3)`, `token` for the server token, or the user name
    /// tried at a failed login).
    pub actor: String,
    /// What (`login`, `task.start`, `datasource.update`, ...).
    pub action: String,
    /// On what (`task 3`, `user bob`).
    pub target: Option<String>,
    /// Further detail (never a secret).
    pub detail: Option<String>,
    /// `ok` or `denied` / `failed`.
    pub outcome: String,
}

/// Which audit records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor (exact, or this user through any of its API tokens).
    pub actor: Option<String>,
    /// Only actions starting with this (`task` finds `task.start`, ...).
    pub action: Option<String>,
    /// Only ids below this (older pages).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

const USER_SELECT: &str = "SELECT id, username, role, created_at, updated_at FROM users";

fn user_row(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        username: s(r, 1)?,
        role: s(r, 2)?,
        created_at: s(r, 3)?,
        updated_at: s(r, 4)?,
    })
}

fn token_row(r: &AnyRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: opt_i(r, 0)?.unwrap_or(0),
        user_id: opt_i(r, 1)?.unwrap_or(0),
        name: s(r, 2)?,
        created_at: s(r, 3)?,
        last_used_at: opt_s(r, 4)?,
        revoked_at: opt_s(r, 5)?,
    })
}

/// `text` for a `LIKE` pattern with `!` as the escape character.
fn like_escaped(text: &str) -> String {
    let mut p = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p
}

/// Seconds since the epoch.
pub fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl SqlStore {
    /// Every user, by id.
    pub async fn users(&self) -> StoreResult<Vec<UserRow>> {
        self.rows_by_id(USER_SELECT, user_row, "listing users")
            .await
    }

    /// One user.
    pub async fn user(&self, id: i64) -> StoreResult<Option<UserRow>> {
        self.row_by_id(USER_SELECT, id, user_row, "reading a user")
            .await
    }

    /// A user and its password hash, by name (for a login).
    pub async fn user_for_login(&self, username: &str) -> StoreResult<Option<(UserRow, String)>> {
        let what = "reading a user";
        let row = sqlx::query(
            "SELECT id, username, role, created_at, updated_at, password_hash FROM users
             WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(err(what))?;
        row.map(|r| Ok((user_row(&r)?, s(&r, 5)?)))
            .transpose()
            .map_err(err(what))
    }

    /// Adds a user; its id (a taken name is a conflict).
    pub async fn add_user(&self, username: &str, role: &str, hash: &str) -> StoreResult<i64> {
        let what = "adding a user";
        let ts = now();
        let sql = self.returning_id(
            "INSERT INTO users (username, role, password_hash, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?)",
        );
        let id = self
            .insert_id(
                sqlx::query(&sql)
                    .bind(username)
                    .bind(role)
                    .bind(hash)
                    .bind(&ts)
                    .bind(&ts),
                what,
            )
            .await?;
        Ok(id)
    }

    /// Changes a user's role and/or password hash; whether it exists. A new password
    /// ends the user's sessions.
    pub async fn update_user(
        &self,
        id: i64,
        role: Option<&str>,
        hash: Option<&str>,
    ) -> StoreResult<bool> {
        let what = "changing a user";
        let r = sqlx::query(
            "UPDATE users SET role = COALESCE(?, role), password_hash = COALESCE(?, password_hash),
               updated_at = ? WHERE id = ?",
        )
        .bind(role)
        .bind(hash)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(err(what))?;
        if hash.is_some() {
            self.end_sessions_of(id).await?;
        }
        Ok(r.rows_affected() > 0)
    }

    /// Deletes a user with its sessions and tokens; whether it existed.
    pub async fn delete_user(&self, id: i64) -> StoreResult<bool> {
        let what = "deleting a user";
        let mut tx = self.pool.begin().await.map_err(err(what))?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = ?",
            "DELETE FROM api_tokens WHERE user_id = ?",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(err(what))?;
        }
        let r = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err(what))?;
        tx.commit().await.map_err(err(what))?;
        Ok(r.rows_affected() > 0)
    }

    /// How many users have `role`.
    pub async fn count_role(&self, role: &str) -> StoreResult<i64> {
        let what = "counting users";
        let row = sqlx::query("SELECT COUNT(*) FROM users WHERE role = ?")
            .bind(role)
            .fetch_one(&self.pool)
            .await
            .map_err(err(what))?;
        Ok(opt_i(&row, 0).map_err(err(what))?.unwrap_or(0))
    }

    // ---- sessions ----

    /// Records a session (its id's digest) for `user` until `expires_at` (epoch seconds).
    pub async fn add_session(
        &self,
        digest: &str,
        user: i64,
        csrf: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let what = "starting a session";
        // Expired sessions go whenever a new one starts.
        sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
            .bind(epoch_now())
            .execute(&self.pool)
            .await
            .map_err(err(what))?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(digest)
        .bind(user)
        .bind(csrf)
        .bind(now())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(err(what))
        .map(|_| ())
    }

    /// The user and CSRF token of a live session.
    pub async fn session(&self, digest: &str) -> StoreResult<Option<(UserRow, String)>> {
        let what = "reading a session";
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.created_at, u.updated_at, s.csrf
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = ? AND s.expires_at > ?",
        )
        .bind(digest)
        .bind(epoch_now())
        .fetch_optional(&self.pool)
        .await
        .map_err(err(what))?;
        row.map(|r| Ok((user_row(&r)?, s(&r, 5)?)))
            .transpose()
            .map_err(err(what))
    }

    /// Ends one session.
    pub async fn end_session(&self, digest: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(err("ending a session"))
            .map(|_| ())
    }

    /// Ends every session of a user.
    pub async fn end_sessions_of(&self, user: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(err("ending sessions"))
            .map(|_| ())
    }

    // ---- API tokens ----

    /// Records an API token (its digest) of `user`; its id.
    pub async fn add_token(&self, user: i64, name: &str, digest: &str) -> StoreResult<i64> {
        let what = "creating a token";
        let sql = self.returning_id(
            "INSERT INTO api_tokens (user_id, name, digest, created_at) VALUES (?, ?, ?, ?)",
        );
        let id = self
            .insert_id(
                sqlx::query(&sql)
                    .bind(user)
                    .bind(name)
                    .bind(digest)
                    .bind(now()),
                what,
            )
            .await?;
        Ok(id)
    }

    /// The tokens of a user (revoked ones too), by id.
    pub async fn tokens(&self, user: i64) -> StoreResult<Vec<TokenRow>> {
        let what = "listing tokens";
        let rows = sqlx::query(
            "SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens
             WHERE user_id = ? ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(token_row)
            .collect::<Result<_, _>>()
            .map_err(err(what))
    }

    /// The user and token id of a live (not revoked) token digest; stamps its use.
    pub async fn token_user(&self, digest: &str) -> StoreResult<Option<(UserRow, i64)>> {
        let what = "reading a token";
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.created_at, u.updated_at, t.id, t.last_used_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.digest = ? AND t.revoked_at IS NULL",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(err(what))?;
        let Some(r) = row else { return Ok(None) };
        let user = user_row(&r).map_err(err(what))?;
        let id = opt_i(&r, 5).map_err(err(what))?.unwrap_or(0);
        let last = opt_s(&r, 6).map_err(err(what))?;
        let ts = now();
        // At most one write a minute per token (timestamps sort as text).
        if last.as_deref().is_none_or(|l| l.get(..16) != ts.get(..16)) {
            sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                .bind(&ts)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(err(what))?;
        }
        Ok(Some((user, id)))
    }

    /// Revokes a token of `user` (`None`: of anyone); whether a live one was revoked.
    pub async fn revoke_token(&self, id: i64, user: Option<i64>) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = ?
             WHERE id = ? AND (? IS NULL OR user_id = ?) AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .bind(user)
        .bind(user)
        .execute(&self.pool)
        .await
        .map_err(err("revoking a token"))
        .map(|r| r.rows_affected() > 0)
    }

    // ---- audit ----

    /// Appends an audit record.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
        outcome: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (ts, actor, action, target, detail, outcome)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(now())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(outcome)
        .execute(&self.pool)
        .await
        .map_err(err("writing the audit log"))
        .map(|_| ())
    }

    /// Audit records passing `filter`, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        let what = "reading the audit log";
        let action = filter
            .action
            .as_ref()
            .map(|a| format!("{}%", like_escaped(a)));
        // A user's actions through its API tokens: `alice (token 3)`.
        let by_token = filter
            .actor
            .as_ref()
            .map(|a| format!("{} (token %", like_escaped(a)));
        let rows = sqlx::query(
            "SELECT id, ts, actor, action, target, detail, outcome FROM audit_log
             WHERE (? IS NULL OR actor = ? OR actor LIKE ? ESCAPE '!')
               AND (? IS NULL OR action LIKE ? ESCAPE '!')
               AND (? IS NULL OR id < ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(&filter.actor)
        .bind(&filter.actor)
        .bind(&by_token)
        .bind(&action)
        .bind(&action)
        .bind(filter.before)
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err(what))?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: opt_i(r, 0)?.unwrap_or(0),
                    ts: s(r, 1)?,
                    actor: s(r, 2)?,
                    action: s(r, 3)?,
                    target: opt_s(r, 4)?,
                    detail: opt_s(r, 5)?,
                    outcome: s(r, 6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err(what))
    }
}
