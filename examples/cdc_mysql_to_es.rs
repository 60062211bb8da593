//! MySQL -> Elasticsearch, kept in sync: copies every table of a database into one index per
//! table, then streams every change from the binlog (`snapshot+cdc` with no gap: the stream
//! starts at a position taken before the copies and replays what happened during them).
//! Documents carry the binlog position as their external version, so a replayed change never
//! overwrites a newer one. Checkpoints are files under `CHECKPOINT_DIR`: stop it with Ctrl-C
//! and run it again, it continues where it stopped (the copies are not done twice).
//!
//! The server needs the binlog in ROW format with full row images (`log_bin`,
//! `binlog_format=ROW`, `binlog_row_image=FULL`) and a user with REPLICATION SLAVE and
//! REPLICATION CLIENT; the errors say what is missing.
//!
//! ```sh
//! cargo run --example cdc_mysql_to_es
//! # after scripts/quickstart.sh: eval "$(scripts/quickstart.sh env)" first
//! MYSQL_URL=mysql://root@127.0.0.1:3306 MYSQL_DB=shop ES_URL=http://127.0.0.1:9200 \
//!     cargo run --example cdc_mysql_to_es
//! ```
//!
//! Environment (defaults in brackets): `MYSQL_URL` [`mysql://root@127.0.0.1:3306`],
//! `MYSQL_DB` [`shop`], `MYSQL_TABLES` (a pattern within the database) [`*`], `ES_URL`
//! [`http://127.0.0.1:9200`], `ES_INDEX` (name pattern: `{db}`, `{table}`)
//! [`{db}-{table}-live`], `CHECKPOINT_DIR` [`.datatrace`], `SERVER_ID` (the replica id the
//! stream uses; unique per stream on a server) [`6402`].

use std::sync::Arc;

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, SinkConfig, VersionSource};
use datatrace::mysql::binlog::CdcOptions;
use datatrace::mysql::{
    ConnectionConfig, MySqlConnection, SnapshotCdc, SourceOptions, TableSelector,
};
use datatrace::{
    BoxError, CancellationToken, CheckpointStore, FileCheckpointStore, JobReport, ProgressKind,
    ProgressSender,
};

/// What to copy and follow, and where.
#[derive(Clone)]
pub struct Config {
    /// The MySQL server.
    pub mysql_url: String,
    /// The database whose tables are copied and followed.
    pub database: String,
    /// Which of its tables (`*` any run of characters, `?` one).
    pub tables: String,
    /// The Elasticsearch / OpenSearch node.
    pub es_url: String,
    /// The index name pattern.
    pub index: String,
    /// Where checkpoints are kept (the job's own store: the snapshot-to-stream handoff keeps
    /// its start position there too).
    pub checkpoint_dir: String,
    /// The replica id of the binlog stream.
    pub server_id: u32,
}

impl Config {
    /// Reads the settings through `var` (the environment in `main`), with local defaults.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str, default: &str| var(k).unwrap_or_else(|| default.to_string());
        Config {
            mysql_url: get("MYSQL_URL", "mysql://root@127.0.0.1:3306"),
            database: get("MYSQL_DB", "shop"),
            tables: get("MYSQL_TABLES", "*"),
            es_url: get("ES_URL", "http://127.0.0.1:9200"),
            index: get("ES_INDEX", "{db}-{table}-live"),
            checkpoint_dir: get("CHECKPOINT_DIR", ".datatrace"),
            server_id: get("SERVER_ID", "6402").parse().unwrap_or(6402),
        }
    }
}

/// Copies the tables, then streams their changes until `stop` is cancelled; progress events
/// go to `progress` when given. Returns the job's report (the stream unit ends `running`: it
/// resumes on the next run).
pub async fn run(
    cfg: &Config,
    stop: CancellationToken,
    progress: Option<ProgressSender>,
) -> Result<JobReport, BoxError> {
    let mysql = MySqlConnection::connect(&ConnectionConfig::new(&cfg.mysql_url)).await?;
    let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(&cfg.checkpoint_dir));
    // The tables' snapshot units and the stream unit, on the job's checkpoint store.
    let plan = SnapshotCdc::discover(
        &mysql,
        &TableSelector::include([format!("{}.{}", cfg.database, cfg.tables)]),
        SourceOptions::default(),
        CdcOptions {
            server_id: cfg.server_id,
            ..Default::default()
        },
        store,
        format!("cdc-{}", cfg.database),
    )
    .await?;
    // Documents versioned by binlog position: replays after a crash, and changes made
    // during the copies, land in order whatever order they arrive in.
    let sink = Arc::new(
        EsSink::connect(
            &EsConnection::new([cfg.es_url.as_str()]),
            SinkConfig {
                index: cfg.index.clone(),
                version: Some(VersionSource::Position),
                ..Default::default()
            },
        )
        .await?,
    );
    let mut job = plan.into_job(sink).cancel_token(stop);
    if let Some(p) = progress {
        job = job.progress(p);
    }
    Ok(job.run().await?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cfg = Config::from_lookup(|k| std::env::var(k).ok());
    println!(
        "copying {}.{} from {} to {} (index {}), then following its changes; Ctrl-C stops",
        cfg.database, cfg.tables, cfg.mysql_url, cfg.es_url, cfg.index
    );
    let stop = CancellationToken::new();
    let on_ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_ctrl_c.cancel();
    });
    let (tx, mut rx) = datatrace::progress_channel(1024);
    tokio::spawn(async move {
        while let Ok(e) = rx.recv().await {
            if let ProgressKind::State { state, error } = e.kind {
                match error {
                    Some(error) => println!("{}: {state}: {error}", e.unit),
                    None => println!("{}: {state}", e.unit),
                }
            }
        }
    });
    let report = run(&cfg, stop, Some(tx)).await?;
    for u in &report.units {
        let written = u.report.as_ref().map_or(0, |r| r.written);
        println!("{:<32} {:>9} rows  {}", u.unit, written, u.state);
        if let Some(e) = &u.error {
            println!("    error: {e}");
        }
    }
    Ok(())
}
