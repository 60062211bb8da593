//! Who is calling: the principal found by authentication, kept in the request's
//! extensions for the role checks, the handlers and the audit log.

use super::Role;

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session (cookie); unsafe methods need its CSRF token.
    Session {
        /// The session's digest (its id in the store).
        id: String,
        /// The CSRF token of the session.
        csrf: String,
    },
    /// A user's API token.
    Token {
        /// The token's id.
        id: i64,
    },
    /// The server's own token (`--token` / `DATATRACE_TOKEN`): an administrator that is
    /// not a user.
    ServerToken,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id (`None` for the server token).
    pub user_id: Option<i64>,
    /// The user name (`token` for the server token).
    pub username: String,
    /// What it may do.
    pub role: Role,
    /// How it signed in.
    pub via: Via,
}

impl Principal {
    /// The server token's principal.
    pub fn server_token() -> Principal {
        Principal {
            user_id: None,
            username: "token".into(),
            role: Role::Admin,
            via: Via::ServerToken,
        }
    }

    /// How the audit log names the caller: `alice`, `alice (token 3)`, `token`.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Token { id } => format!("{} (token {id})", self.username),
            _ => self.username.clone(),
        }
    }
}
