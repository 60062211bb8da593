//! MySQL -> Elasticsearch: copies every table of a MySQL database into Elasticsearch (or
//! OpenSearch), one index per table, created with a mapping derived from the table's columns.
//! Documents are keyed by the primary key, so running it again overwrites instead of
//! duplicating.
//!
//! ```sh
//! cargo run --example mysql_to_es
//! # after scripts/quickstart.sh: eval "$(scripts/quickstart.sh env)" first
//! MYSQL_URL=mysql://root@127.0.0.1:3306 MYSQL_DB=shop ES_URL=http://127.0.0.1:9200 \
//!     ES_INDEX='{db}-{table}' cargo run --example mysql_to_es
//! ```
//!
//! Environment (defaults in brackets): `MYSQL_URL` [`mysql://root@127.0.0.1:3306`],
//! `MYSQL_DB` [`shop`], `MYSQL_TABLES` (a pattern within the database) [`*`], `ES_URL`
//! [`http://127.0.0.1:9200`], `ES_INDEX` (name pattern: `{db}`, `{table}`) [`{db}-{table}`].

use std::sync::Arc;

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, SinkConfig};
use datatrace::mysql::{
    discover_tables, ConnectionConfig, MySqlConnection, MySqlSource, SourceOptions, TableSelector,
};
use datatrace::{BoxError, Job, JobReport, PipelineConfig, UnitSpec};

/// What to copy where.
pub struct Config {
    /// The MySQL server (a database in the URL is not needed).
    pub mysql_url: String,
    /// The database whose tables are copied.
    pub database: String,
    /// Which of its tables (`*` any run of characters, `?` one).
    pub tables: String,
    /// The Elasticsearch / OpenSearch node.
    pub es_url: String,
    /// The index name pattern.
    pub index: String,
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
            index: get("ES_INDEX", "{db}-{table}"),
        }
    }
}

/// Runs the copy: one unit per table, two at a time.
pub async fn run(cfg: &Config) -> Result<JobReport, BoxError> {
    let mysql = MySqlConnection::connect(&ConnectionConfig::new(&cfg.mysql_url)).await?;
    let selector = TableSelector::include([format!("{}.{}", cfg.database, cfg.tables)]);
    let tables = discover_tables(&mysql, &selector).await?;
    if tables.is_empty() {
        return Err(format!("no table matches {}.{}", cfg.database, cfg.tables).into());
    }
    // One bulk sink for every unit: it creates each index from its table's schema.
    let es = EsConnection::new([cfg.es_url.as_str()]);
    let sink = Arc::new(
        EsSink::connect(
            &es,
            SinkConfig {
                index: cfg.index.clone(),
                ..Default::default()
            },
        )
        .await?,
    );
    let mut job = Job::new("mysql_to_es")
        .concurrency(2)
        .config(PipelineConfig {
            batch_size: 1000,
            read_parallelism: 2,
            sink_concurrency: 2,
            ..Default::default()
        });
    for table in tables {
        let unit = table.qualified_name();
        let source = MySqlSource::new(mysql.clone(), table, SourceOptions::default())?;
        job = job.unit(UnitSpec::new(unit, Arc::new(source), sink.clone()));
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
        "copying {}.{} from {} to {} (index {})",
        cfg.database,
        cfg.tables,
        ConnectionConfig::new(&cfg.mysql_url).redacted_url(),
        cfg.es_url,
        cfg.index
    );
    let report = run(&cfg).await?;
    print_report(&report);
    if !report.is_complete() {
        std::process::exit(1);
    }
    Ok(())
}
