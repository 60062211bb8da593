//! `datatrace serve`: the REST API, live progress over SSE, Prometheus metrics and the web
//! UI, over the same job files, planning and core jobs as `datatrace run`.
//!
//! - Metadata (data sources, tasks, unit state and checkpoints, logs) in SQLite under
//!   `--data-dir` (default `.datatrace/`), migrated at start.
//! - Secrets encrypted with AES-256-GCM under `DATATRACE_MASTER_KEY` (base64 of 32 bytes or
//!   64 hex digits) or `<data-dir>/master.key` (created 0600 on first start).
//! - Every route but `/healthz` and the UI's static files needs `Authorization: Bearer
//!   <token>` (`--token` or `DATATRACE_TOKEN`); the SSE route also takes `?access_token=`.

pub mod api;
pub mod checkpoints;
pub mod cors;
pub mod crypto;
pub mod datasources;
pub mod http;
pub mod live;
pub mod manager;
pub mod metrics;
pub mod mysql_store;
pub mod routes;
pub mod sqlite;
pub mod store;
pub mod taskspec;
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
use sqlite::SqliteStore;
use store::Store;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// `datatrace serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where metadata, the master key and dead letters are kept.
    #[arg(long, default_value = ".datatrace")]
    pub data_dir: PathBuf,
    /// Keep metadata in MySQL instead (`mysql://user@host:3306/db`; the password from
    /// DATATRACE_METADATA_PASSWORD). The master key stays in --data-dir (or the env).
    #[arg(long, value_name = "URL")]
    pub metadata_url: Option<String>,
    /// The bearer token every API call must send (or DATATRACE_TOKEN).
    #[arg(long, env = "DATATRACE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Units running at the same time across all tasks.
    #[arg(long, default_value_t = 4)]
    pub max_units: usize,
    /// Allow browser pages of this origin (`https://ui.example.com`) to call the API
    /// (CORS); repeatable. Without it no CORS headers are sent.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
}

/// The shared state of the handlers.
pub struct App {
    /// The master key.
    pub key: MasterKey,
    /// The bearer token.
    pub token: String,
    /// The task manager (which owns the store).
    pub manager: Arc<Manager>,
    /// Origins allowed by CORS (none: no CORS headers).
    pub cors_origins: Vec<String>,
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
    pub fn remember_secrets(&self) -> Result<(), http::ApiError> {
        self.manager.remember_secrets()
    }
}

/// What handlers get.
pub type AppState = Arc<App>;

/// The whole router: the authenticated API, `/healthz` and the UI.
pub fn router(state: AppState) -> Router {
    let api = routes::router().route_layer(middleware::from_fn_with_state(
        state.clone(),
        http::require_token,
    ));
    Router::new()
        .merge(api)
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .merge(web::router())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
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
pub fn open(args: &ServeArgs) -> Result<AppState, StartError> {
    let token = match args.token.as_deref().map(str::trim) {
        Some(t) if t.len() >= 8 => t.to_owned(),
        Some(_) => {
            return Err(StartError::Config(
                "the token must have at least 8 characters".into(),
            ))
        }
        None => {
            return Err(StartError::Config(
                "a bearer token is required: pass --token or set DATATRACE_TOKEN".into(),
            ))
        }
    };
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        StartError::Config(format!(
            "cannot create the data directory {}: {e}",
            args.data_dir.display()
        ))
    })?;
    let key = MasterKey::load(&args.data_dir)?;
    let store: Store = match &args.metadata_url {
        Some(url) if url.starts_with("mysql://") => {
            Arc::new(mysql_store::MySqlStore::open(url).map_err(|e| {
                StartError::Config(format!(
                    "--metadata-url: {e} (the password goes in {})",
                    mysql_store::PASSWORD_ENV
                ))
            })?)
        }
        Some(_) => {
            return Err(StartError::Config(
                "--metadata-url: expected mysql://user@host:3306/database".into(),
            ))
        }
        None => Arc::new(SqliteStore::open(&args.data_dir)?),
    };
    match store.meta("key_check")? {
        Some(check) => key.verify(&check)?,
        None => store.set_meta("key_check", &key.check_value()?)?,
    }
    let manager = Manager::new(store, key.clone(), args.data_dir.clone(), args.max_units);
    manager
        .remember_secrets()
        .map_err(|e| StartError::Config(e.message))?;
    Ok(Arc::new(App {
        key,
        token,
        manager,
        cors_origins: args.cors_origins.clone(),
    }))
}

/// Runs the server until Ctrl-C or SIGTERM; returns the exit code.
pub async fn serve(args: &ServeArgs) -> u8 {
    let app = match open(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --listen {}: {e}", args.listen);
            return 2;
        }
    };
    let addr = listener
        .local_addr()
        .map_or(args.listen.clone(), |a| a.to_string());
    println!(
        "datatrace serve: listening on http://{addr} (data in {})",
        args.data_dir.display()
    );
    app.manager.log(
        None,
        "system",
        "info",
        None,
        &format!("server started on {addr}"),
    );
    app.manager.resume_interrupted().await;
    let manager = app.manager.clone();
    let shutdown = async move {
        shutdown_signal().await;
        manager.log(
            None,
            "system",
            "info",
            None,
            "stopping: tasks write what they read and save checkpoints",
        );
        manager.shutdown(Duration::from_secs(20)).await;
    };
    if let Err(e) = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
    {
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
