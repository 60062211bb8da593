//! Elasticsearch -> MySQL: copies indices into MySQL tables, one table per index, created
//! from the index mapping (`_id` becomes the primary key, fields outside the mapping land in
//! an `_extra` JSON column). Reads use a point-in-time with `search_after` (scroll on old
//! clusters); rows are upserted by `_id`, so a second run changes nothing.
//!
//! ```sh
//! cargo run --example es_to_mysql
//! ES_URL=http://127.0.0.1:9200 ES_INDICES='shop-*' MYSQL_URL=mysql://root@127.0.0.1:3306 \
//!     TARGET_DB=shop_from_es cargo run --example es_to_mysql
//! ```
//!
//! Environment (defaults in brackets): `ES_URL` [`http://127.0.0.1:9200`], `ES_INDICES`
//! (comma-separated names or patterns) [`shop-*`], `MYSQL_URL`
//! [`mysql://root@127.0.0.1:3306`], `TARGET_DB` [`shop_from_es`; created when missing].
//! Table names are the index names with `-` and `.` replaced by `_`.

use std::sync::Arc;

use datatrace::es::{ConnectionConfig as EsConnection, EsClient, EsSource, SourceConfig};
use datatrace::mysql::{ConnectionConfig, MySqlConnection, MySqlSink, SinkOptions};
use datatrace::{BoxError, Job, JobReport, PipelineConfig, UnitSpec};
use mysql_async::prelude::Queryable;

/// What to copy where.
pub struct Config {
    /// The Elasticsearch / OpenSearch node.
    pub es_url: String,
    /// Index names or patterns.
    pub indices: Vec<String>,
    /// The MySQL server.
    pub mysql_url: String,
    /// The target database (created when missing).
    pub target_database: String,
}

impl Config {
    /// Reads the settings through `var` (the environment in `main`), with local defaults.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str, default: &str| var(k).unwrap_or_else(|| default.to_string());
        Config {
            es_url: get("ES_URL", "http://127.0.0.1:9200"),
            indices: get("ES_INDICES", "shop-*")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            mysql_url: get("MYSQL_URL", "mysql://root@127.0.0.1:3306"),
            target_database: get("TARGET_DB", "shop_from_es"),
        }
    }
}

/// The indices matching the names or patterns, sorted, without hidden ones.
async fn resolve(client: &EsClient, patterns: &[String]) -> Result<Vec<String>, BoxError> {
    let mut names = Vec::new();
    for p in patterns {
        let mapping = client.get_mapping(p).await?;
        let found: Vec<String> = mapping
            .as_object()
            .map(|m| m.keys().filter(|k| !k.starts_with('.')).cloned().collect())
            .unwrap_or_default();
        if found.is_empty() {
            return Err(format!("no index matches {p:?}").into());
        }
        names.extend(found);
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Runs the copy: one unit per index, two at a time.
pub async fn run(cfg: &Config) -> Result<JobReport, BoxError> {
    let client = EsClient::connect(&EsConnection::new([cfg.es_url.as_str()])).await?;
    let mysql = MySqlConnection::connect(&ConnectionConfig::new(&cfg.mysql_url)).await?;
    let mut conn = mysql.get().await?;
    let db = cfg.target_database.replace('`', "``");
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{db}`"))
        .await?;
    drop(conn);

    let mut job = Job::new("es_to_mysql")
        .concurrency(2)
        .config(PipelineConfig {
            batch_size: 1000,
            read_parallelism: 2,
            sink_concurrency: 2,
            ..Default::default()
        });
    for index in resolve(&client, &cfg.indices).await? {
        let source = EsSource::new(client.clone(), SourceConfig::new(&index))?;
        let options = SinkOptions {
            database: Some(cfg.target_database.clone()),
            table: Some(index.replace(['-', '.'], "_")),
            create_table: true,
            ..Default::default()
        };
        let sink = MySqlSink::new(mysql.clone(), options)?;
        job = job.unit(UnitSpec::new(index, Arc::new(source), Arc::new(sink)));
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
        "copying {} from {} to database {} at {}",
        cfg.indices.join(","),
        cfg.es_url,
        cfg.target_database,
        ConnectionConfig::new(&cfg.mysql_url).redacted_url()
    );
    let report = run(&cfg).await?;
    print_report(&report);
    if !report.is_complete() {
        std::process::exit(1);
    }
    Ok(())
}
