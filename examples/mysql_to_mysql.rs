//! MySQL -> MySQL: copies every table of one database into another database (on the same
//! server or another one). Target tables are created with the source's exact column types,
//! charsets and keys; rows are upserted by primary key, so a second run changes nothing.
//! Tables are read in primary-key chunks, two at a time, with constant memory.
//!
//! ```sh
//! cargo run --example mysql_to_mysql
//! MYSQL_URL=mysql://root@127.0.0.1:3306 MYSQL_DB=shop TARGET_MYSQL_URL=mysql://root@10.0.0.2:3306 \
//!     TARGET_DB=shop_copy cargo run --example mysql_to_mysql
//! ```
//!
//! Environment (defaults in brackets): `MYSQL_URL` [`mysql://root@127.0.0.1:3306`],
//! `MYSQL_DB` [`shop`], `MYSQL_TABLES` (a pattern within the database) [`*`],
//! `TARGET_MYSQL_URL` [`MYSQL_URL`], `TARGET_DB` [`shop_copy`; created when missing].

use std::sync::Arc;

use datatrace::mysql::{
    discover_tables, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions, TableSelector,
};
use datatrace::{BoxError, Job, JobReport, PipelineConfig, UnitSpec};
use mysql_async::prelude::Queryable;

/// What to copy where.
pub struct Config {
    /// The source server.
    pub mysql_url: String,
    /// The source database.
    pub database: String,
    /// Which of its tables (`*` any run of characters, `?` one).
    pub tables: String,
    /// The target server.
    pub target_url: String,
    /// The target database (created when missing).
    pub target_database: String,
}

impl Config {
    /// Reads the settings through `var` (the environment in `main`), with local defaults.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str, default: &str| var(k).unwrap_or_else(|| default.to_string());
        let mysql_url = get("MYSQL_URL", "mysql://root@127.0.0.1:3306");
        Config {
            database: get("MYSQL_DB", "shop"),
            tables: get("MYSQL_TABLES", "*"),
            target_url: get("TARGET_MYSQL_URL", &mysql_url),
            target_database: get("TARGET_DB", "shop_copy"),
            mysql_url,
        }
    }
}

/// Runs the copy: one unit per table, two at a time.
pub async fn run(cfg: &Config) -> Result<JobReport, BoxError> {
    let source = MySqlConnection::connect(&ConnectionConfig::new(&cfg.mysql_url)).await?;
    let target = MySqlConnection::connect(&ConnectionConfig::new(&cfg.target_url)).await?;
    let mut conn = target.get().await?;
    let db = cfg.target_database.replace('`', "``");
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{db}`"))
        .await?;
    drop(conn);

    let selector = TableSelector::include([format!("{}.{}", cfg.database, cfg.tables)]);
    let tables = discover_tables(&source, &selector).await?;
    if tables.is_empty() {
        return Err(format!("no table matches {}.{}", cfg.database, cfg.tables).into());
    }
    // One sink for every unit: each record goes to the table of its source's name.
    let options = SinkOptions {
        database: Some(cfg.target_database.clone()),
        create_table: true,
        ..Default::default()
    };
    let sink = Arc::new(MySqlSink::new(target, options)?);
    let mut job = Job::new("mysql_to_mysql")
        .concurrency(2)
        .config(PipelineConfig {
            batch_size: 2000,
            read_parallelism: 2,
            sink_concurrency: 2,
            ..Default::default()
        });
    for table in tables {
        let unit = table.qualified_name();
        let reader = MySqlSource::new(source.clone(), table, SourceOptions::default())?;
        job = job.unit(UnitSpec::new(unit, Arc::new(reader), sink.clone()));
    }
    Ok(job.run().await?)
}

/// One line per unit: rows, time, rate; then the total.
pub fn print_report(report: &JobReport) {
    for u in &report.units {
        match &u.report {
            Some(r) => println!(
                "{:<32} {:>9} rows {:>7.2} s {:>9.0} rows/s  {}",
                u.unit,
                r.written,
                r.duration.as_secs_f64(),
                r.rows_per_sec(),
                u.state
            ),
            None => println!("{:<32} {}", u.unit, u.state),
        }
        if let Some(e) = &u.error {
            println!("    error: {e}");
        }
    }
    println!(
        "total: {} rows in {:.2} s",
        report.written(),
        report.duration.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cfg = Config::from_lookup(|k| std::env::var(k).ok());
    println!(
        "copying {}.{} from {} to database {} at {}",
        cfg.database,
        cfg.tables,
        ConnectionConfig::new(&cfg.mysql_url).redacted_url(),
        cfg.target_database,
        ConnectionConfig::new(&cfg.target_url).redacted_url()
    );
    let report = run(&cfg).await?;
    print_report(&report);
    if !report.is_complete() {
        std::process::exit(1);
    }
    Ok(())
}
