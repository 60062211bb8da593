//! `datatrace serve`: the REST API, live progress over SSE, Prometheus metrics and the web
//! UI, over the same job files, planning and core jobs as `datatrace run`.
//!
//! - Metadata (data sources, tasks, unit state and checkpoints, logs) in SQLite under
//!   `--data-dir` (default `.datatrace/`), migrated at start.
//! - Secrets encrypted with AES-256-GCM under `DATATRACE_MASTER_KEY` (base64 of 32 bytes or
//!   64 hex digits) or `<data-dir>/master.key` (created 0600 on first start).
//! - Every route but `/healthz`, `/api/login` and the UI's static files needs a caller: a
//!   user's browser session (cookie plus CSRF token), a user's API token or the server
//!   token (`Authorization: Bearer ...`; the SSE route also takes `?access_token=`), and
//!   the route's role (viewer, operator, admin). Changes go to the audit log.

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod checkpoints;
pub mod cors;
pub mod cron;
pub mod crypto;
pub mod datasources;
pub mod dead_letters;
pub mod events;
pub mod headers;
pub mod http;
pub mod listen;
pub mod live;
pub mod manager;
pub mod metrics;
pub mod private;
pub mod retention;
pub mod routes;
pub mod schedules;
pub mod schema;
pub mod sql_store;
pub mod store;
pub mod taskspec;
pub mod unit_status;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{middleware, Json, Router};
use clap::Args;

use crypto::MasterKey;
use manager::Manager;
use sql_store::SqlStore;
use sql_store::Store;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// `datatrace serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start). Plain HTTP is meant
    /// for loopback addresses; elsewhere give --tls-cert and --tls-key.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Where metadata, the master key and dead letters are kept.
    #[arg(long, default_value = ".datatrace")]
    pub data_dir: PathBuf,
    /// Keep metadata in MySQL instead (`mysql://user@host:3306/db`; the password from
    /// DATATRACE_METADATA_PASSWORD). The master key stays in --data-dir (or the env).
    #[arg(long, value_name = "URL")]
    pub metadata_url: Option<String>,
    /// The master key file (default `<data-dir>/master.key`): keep it apart from the
    /// metadata (another disk, a secrets mount) so a copy of one is not a copy of both.
    /// DATATRACE_MASTER_KEY, when set, is used instead.
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// A server token (or DATATRACE_TOKEN): an admin credential that is not a user, for
    /// scripts and the first start; optional once an admin user exists.
    #[arg(long, env = "DATATRACE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Units running at the same time across all tasks.
    #[arg(long, default_value_t = 4)]
    pub max_units: usize,
    /// Allow browser pages of this origin (`https://ui.example.com`) to call the API
    /// (CORS); repeatable. Without it no CORS headers are sent.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Seconds between two checks of every stopped change stream's checkpoint against its
    /// server's binlog retention (the time left before its binlog may be purged, shown in
    /// the task's units and metrics, a warning in its log); 0: no checks.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub retention_check_secs: u64,
    /// Days a replayed or discarded dead letter is kept before it is removed (checked
    /// hourly); new ones are kept until someone replays or discards them. 0: kept forever.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub dead_letter_days: u64,
    /// Seconds between two evaluations of the alert rules over every task (firing and
    /// resolving alerts, delivered to the rules' channels); 0: no alerts.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub alert_check_secs: u64,
}

/// The shared state of the handlers.
pub struct App {
    /// The master key.
    pub key: MasterKey,
    /// Who may call.
    pub authenticator: auth::Authenticator,
    /// The task manager (which owns the store).
    pub manager: Arc<Manager>,
    /// Origins allowed by CORS (none: no CORS headers).
    pub cors_origins: Vec<String>,
    /// Whether the server speaks HTTPS (cookies are `Secure`, HSTS is sent).
    pub tls: bool,
    /// Failed sign-ins per user and address (`429` past the limit).
    pub logins: auth::throttle::LoginThrottle,
}

impl App {
    /// The metadata store.
    pub fn store(&self) -> &Store {
        self.manager.store()
    }
    /// `text` without any data source's secret.
    pub fn scrub(&self, text: &str) -> String {
        self.manager.scrub(text)
    }
    /// Refreshes the secrets [`App::scrub`] removes.
    pub async fn remember_secrets(&self) -> Result<(), http::ApiError> {
        self.manager.remember_secrets().await
    }
}

/// What handlers get.
pub type AppState = Arc<App>;

/// The whole router: the authenticated API, `/healthz` and the UI.
pub fn router(state: AppState) -> Router {
    let api = routes::router(state.clone()).route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::guard::authenticate,
    ));
    Router::new()
        .merge(api)
        .route("/api/login", axum::routing::post(accounts::login))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .merge(web::router())
        .fallback(http::no_route)
        .method_not_allowed_fallback(http::no_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::security_headers,
        ))
        .with_state(state)
}

/// A startup problem, shown as `error: ...`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// The master key.
    #[error(transparent)]
    Key(#[from] crypto::CryptoError),
    /// The metadata store.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Opens the data directory and the store, checks the key and the token.
pub async fn open(args: &ServeArgs) -> Result<AppState, StartError> {
    let token = match args.token.as_deref().map(str::trim) {
        Some(t) if t.len() >= 8 => Some(t.to_owned()),
        Some(_) => {
            return Err(StartError::Config(
                "the token must have at least 8 characters".into(),
            ))
        }
        None => None,
    };
    let narrowed = private::private_dir(&args.data_dir).map_err(|e| {
        StartError::Config(format!(
            "cannot create the data directory {}: {e}",
            args.data_dir.display()
        ))
    })?;
    if let Some(note) = narrowed {
        eprintln!("note: {note}");
    }
    let store: Store = match &args.metadata_url {
        Some(url) if url.starts_with("mysql://") => {
            Arc::new(SqlStore::open_mysql(url).await.map_err(|e| {
                StartError::Config(format!(
                    "--metadata-url: {e} (the password goes in {})",
                    sql_store::PASSWORD_ENV
                ))
            })?)
        }
        Some(_) => {
            return Err(StartError::Config(
                "--metadata-url: expected mysql://user@host:3306/database".into(),
            ))
        }
        None => Arc::new(SqlStore::open_sqlite(&args.data_dir).await?),
    };
    if token.is_none() && store.count_role("admin").await? == 0 {
        return Err(StartError::Config(
            "no way to sign in: create the first admin with `datatrace user add --role admin \
             --username NAME` (same --data-dir / --metadata-url), or pass --token (or set \
             DATATRACE_TOKEN)"
                .into(),
        ));
    }
    let key_file = args
        .master_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("master.key"));
    let check = store.meta("key_check").await?;
    let (key, created) = MasterKey::load(&key_file, check.is_none())?;
    match check {
        Some(check) => key.verify(&check)?,
        None => store.set_meta("key_check", &key.check_value()?).await?,
    }
    if created {
        eprintln!(
            "note: created a new master key in {}: back it up, apart from the metadata; \
             without it the stored secrets cannot be read",
            key_file.display()
        );
    }
    let manager = Manager::new(store, key.clone(), args.data_dir.clone(), args.max_units);
    manager
        .remember_secrets()
        .await
        .map_err(|e| StartError::Config(e.message))?;
    Ok(Arc::new(App {
        key,
        authenticator: auth::Authenticator::new(token),
        manager,
        cors_origins: args.cors_origins.clone(),
        tls: args.tls_cert.is_some(),
        logins: auth::throttle::LoginThrottle::new(),
    }))
}

/// Runs the server until Ctrl-C or SIGTERM; returns the exit code.
pub async fn serve(args: &ServeArgs) -> u8 {
    let tls = match listen::TlsFiles::from_args(args.tls_cert.as_deref(), args.tls_key.as_deref())
        .and_then(|f| f.map(|f| f.rustls()).transpose())
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let app = match open(args).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen)
        .await
        .and_then(|l| l.into_std())
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --listen {}: {e}", args.listen);
            return 2;
        }
    };
    let Ok(addr) = listener.local_addr() else {
        eprintln!("error: --listen {}: no local address", args.listen);
        return 2;
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "datatrace serve: listening on {scheme}://{addr} (data in {})",
        args.data_dir.display()
    );
    app.manager
        .log(
            None,
            "system",
            "info",
            None,
            &format!("server started on {scheme}://{addr}"),
        )
        .await;
    if tls.is_none() {
        if let Some(w) = listen::plain_http_warning(&addr) {
            eprintln!("{w}");
            app.manager.log(None, "system", "warn", None, &w).await;
        }
    }
    // In the background: planning a resumed task may wait on its servers. The retention
    // checks of stopped streams begin once the interrupted tasks run again.
    // Runs still open in the history ended with the previous start (a crash, or a stop
    // that did not wait for them); the tasks among them resume below as new runs.
    match app.store().interrupt_open_runs().await {
        Ok(0) => {}
        Ok(n) => eprintln!("note: {n} run(s) of the previous start are recorded as interrupted"),
        Err(e) => eprintln!("error: {e}"),
    }
    tokio::spawn(schedules::scheduler::run(app.manager.clone()));
    let resumer = app.manager.clone();
    let retention_every = args.retention_check_secs;
    tokio::spawn(async move {
        resumer.resume_interrupted().await;
        if retention_every > 0 {
            retention::guard_stopped(resumer, Duration::from_secs(retention_every)).await;
        }
    });
    if args.dead_letter_days > 0 {
        let keep = Duration::from_secs(args.dead_letter_days.saturating_mul(86_400));
        tokio::spawn(dead_letters::replay::prune_decided(
            app.manager.clone(),
            keep,
        ));
    }
    if args.alert_check_secs > 0 {
        let every = Duration::from_secs(args.alert_check_secs);
        tokio::spawn(alerts::evaluator::run(
            app.manager.clone(),
            app.key.clone(),
            every,
        ));
    }
    let handle = axum_server::Handle::new();
    let manager = app.manager.clone();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        manager.log(
            None,
            "system",
            "info",
            None,
            "stopping: tasks write what they read and save checkpoints; they resume at the next start",
        ).await;
        manager.shutdown(Duration::from_secs(20)).await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    // The peer's address reaches the handlers (sign-in throttling).
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = match tls {
        Some(config) => match axum_server::from_tcp_rustls(listener, config) {
            Ok(s) => {
                s.handle(handle)
                    .first_request_timeout(listen::FIRST_REQUEST_TIMEOUT)
                    .serve(service)
                    .await
            }
            Err(e) => Err(e),
        },
        None => match axum_server::from_tcp(listener) {
            Ok(s) => {
                s.handle(handle)
                    .first_request_timeout(listen::FIRST_REQUEST_TIMEOUT)
                    .serve(service)
                    .await
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        eprintln!("error: {e}");
        return 1;
    }
    0
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
