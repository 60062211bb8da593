//! [`MySqlConnection`]: a connection pool with the session settings every reader and writer
//! relies on.
//!
//! Each session runs `SET NAMES utf8mb4`, `SET time_zone = '+00:00'` (TIMESTAMP values are
//! read and written as exact UTC instants, whatever the server's zone) and an explicit
//! `sql_mode` of `STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,NO_AUTO_VALUE_ON_ZERO,
//! NO_ENGINE_SUBSTITUTION` (bad data is an error instead of a silent truncation, string
//! literals only escape quotes, a 0 key in an AUTO_INCREMENT column stays 0, and zero dates
//! may be written back).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::config::ConnectionConfig;
use crate::error::{Context, MySqlError, Result};
use crate::tls::TlsSettings;

/// The statements run on every new (or reset) session.
pub const SESSION_SETUP: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
];

/// How long a returned session stays open in the pool for the next batch or page. Without
/// it the driver keeps none (its pools hold idle sessions only up to their lower bound, 0
/// here), and every batch opened a new connection: a TCP handshake, authentication and the
/// setup statements, then a `Quit`, for each 1,000 rows. Idle sessions beyond the lower bound
/// are closed once they have idled this long (checked every 30 s), so a finished job holds
/// none for long.
const IDLE_SESSION_TTL: Duration = Duration::from_secs(60);

/// Lets a session whose work ended cleanly go back to the pool without the driver's reset
/// (`COM_RESET_CONNECTION`, then [`SESSION_SETUP`] again and a new prepare of each statement:
/// five more commands for the server per batch or per checksummed range). Clean means the
/// last statement succeeded and the server says no transaction is open and autocommit is on
/// (the status flags of its last OK packet, which ends a result set too); callers change no
/// other session state, or restore it before that statement (the sink's `bulk_session` and
/// `skip_binlog`). A session left after an error, a cancelled call (it never reaches this) or
/// an open transaction keeps the reset.
pub(crate) fn keep_warm(c: &mut Conn) {
    use mysql_async::consts::StatusFlags;
    let clean = c.last_ok_packet().is_some_and(|ok| {
        let flags = ok.status_flags();
        !flags.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
            && flags.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
    });
    if clean {
        c.reset_connection(false);
    }
}

/// Facts about the server learned at connect time.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `SELECT VERSION()`.
    pub version: String,
    /// Whether it is MariaDB.
    pub is_mariadb: bool,
    /// `@@max_allowed_packet` in bytes.
    pub max_allowed_packet: usize,
}

/// A pool of sessions to one server, cheap to clone.
#[derive(Clone)]
pub struct MySqlConnection {
    pool: Pool,
    opts: Opts,
    info: ServerInfo,
    endpoint: String,
    database: Option<String>,
    encrypted: bool,
}

impl std::fmt::Debug for MySqlConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlConnection")
            .field("endpoint", &self.endpoint)
            .field("database", &self.database)
            .field("encrypted", &self.encrypted)
            .field("info", &self.info)
            .finish()
    }
}

impl MySqlConnection {
    /// Opens a pool and checks the credentials with one session.
    ///
    /// Errors: [`MySqlError::AccessDenied`] for a wrong user or password,
    /// [`MySqlError::UnknownDatabase`] for a database that does not exist,
    /// [`MySqlError::Transient`] when the server cannot be reached.
    pub async fn connect(cfg: &ConnectionConfig) -> Result<Self> {
        cfg.validate()?;
        let (driver_url, tls) = TlsSettings::of(cfg)?;
        let base = Opts::from_url(&driver_url).map_err(|e| {
            MySqlError::Config(format!("connection url {}: {e}", cfg.redacted_url()))
        })?;
        let host = base.ip_or_hostname().to_string();
        let port = base.tcp_port();
        let endpoint = format!("{host}:{port}");
        let timeout = Duration::from_secs(cfg.connect_timeout_secs.max(1));
        let database = base.db_name().map(str::to_string);
        let constraints = PoolConstraints::new(0, cfg.max_connections)
            .ok_or_else(|| MySqlError::Config("max_connections must be at least 1".into()))?;
        let mut builder = OptsBuilder::from_opts(base)
            .setup(SESSION_SETUP.to_vec())
            .prefer_socket(false)
            .stmt_cache_size(64)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(IDLE_SESSION_TTL),
            );
        if let Some(pw) = &cfg.password {
            builder = builder.pass(Some(pw.clone()));
        }
        let (builder, encrypted) = tls.apply(builder, &host, port, timeout).await?;
        let opts: Opts = builder.into();
        let pool = Pool::new(opts.clone());
        let context = || format!("connecting to {endpoint}");
        let mut conn = tokio::time::timeout(timeout, pool.get_conn())
            .await
            .map_err(|_| MySqlError::Transient {
                context: context(),
                message: format!("no answer within {} s", cfg.connect_timeout_secs),
            })?
            .map_err(|e| match MySqlError::from_driver(context(), e) {
                MySqlError::Tls { context, message } => MySqlError::Tls {
                    context: format!("{context} (ssl-mode {})", tls.mode),
                    message,
                },
                other => other,
            })?;
        let (version, packet): (String, u64) = conn
            .query_first("SELECT VERSION(), @@max_allowed_packet")
            .await
            .ctx(context)?
            .ok_or_else(|| MySqlError::Driver {
                context: context(),
                message: "no answer to SELECT VERSION()".into(),
            })?;
        drop(conn);
        let info = ServerInfo {
            is_mariadb: version.to_ascii_lowercase().contains("mariadb"),
            version,
            max_allowed_packet: usize::try_from(packet).unwrap_or(usize::MAX),
        };
        tracing::debug!(%endpoint, version = %info.version, encrypted, "connected to MySQL");
        Ok(MySqlConnection {
            pool,
            opts,
            info,
            endpoint,
            database,
            encrypted,
        })
    }

    /// Connects like [`MySqlConnection::connect`]; when the database the URL names does not
    /// exist, creates it first (`CREATE DATABASE IF NOT EXISTS`, from a session without a
    /// default database) and says so in the second value. For targets that create what they
    /// write to.
    pub async fn connect_creating_database(cfg: &ConnectionConfig) -> Result<(Self, bool)> {
        match MySqlConnection::connect(cfg).await {
            Err(MySqlError::UnknownDatabase { .. }) => {}
            other => return other.map(|c| (c, false)),
        }
        let base = Opts::from_url(&cfg.url).map_err(|e| {
            MySqlError::Config(format!("connection url {}: {e}", cfg.redacted_url()))
        })?;
        let Some(db) = base.db_name().map(str::to_string) else {
            return MySqlConnection::connect(cfg).await.map(|c| (c, false));
        };
        let mut builder = OptsBuilder::from_opts(base)
            .db_name(None::<String>)
            .prefer_socket(false);
        if let Some(pw) = &cfg.password {
            builder = builder.pass(Some(pw.clone()));
        }
        let context = || format!("creating database {db}");
        let mut c = Conn::new(Opts::from(builder)).await.ctx(context)?;
        c.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            crate::sql::ident(&db)
        ))
        .await
        .ctx(context)?;
        let _ = c.disconnect().await;
        tracing::info!(database = %db, "created the target database");
        MySqlConnection::connect(cfg).await.map(|c| (c, true))
    }

    /// A pooled session (returned to the pool on drop).
    pub async fn get(&self) -> Result<Conn> {
        self.pool
            .get_conn()
            .await
            .ctx(|| format!("connecting to {}", self.endpoint))
    }

    /// A session outside the pool, for work that holds it for long (consistent snapshots).
    pub async fn dedicated(&self) -> Result<Conn> {
        Conn::new(self.opts.clone())
            .await
            .ctx(|| format!("connecting to {}", self.endpoint))
    }

    /// What the server told at connect time.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The database named in the URL, if any.
    pub fn default_database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// Whether sessions are encrypted with TLS (see [`crate::tls`]).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// `host:port`, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Closes the pool once every session is returned.
    pub async fn close(self) -> Result<()> {
        self.pool
            .disconnect()
            .await
            .ctx(|| format!("closing the pool to {}", self.endpoint))
    }
}
