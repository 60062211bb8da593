//! Elasticsearch -> Elasticsearch: copies indices, within one cluster or between two
//! (Elasticsearch and OpenSearch in any mix). Each document is copied as-is (`raw`: its `_id`
//! and `_source`, byte-for-byte equal JSON), and the target index is created with the source
//! index's mapping. Slices are read in parallel; re-running overwrites the same ids.
//!
//! ```sh
//! cargo run --example es_to_es
//! ES_URL=http://old:9200 ES_INDICES='shop-*' TARGET_ES_URL=http://new:9200 \
//!     TARGET_INDEX='{table}-copy' cargo run --example es_to_es
//! ```
//!
//! Environment (defaults in brackets): `ES_URL` [`http://127.0.0.1:9200`], `ES_INDICES`
//! (comma-separated names or patterns) [`shop-products`], `TARGET_ES_URL` [`ES_URL`],
//! `TARGET_INDEX` (name pattern, `{table}` is the source index) [`{table}-copy`].

use std::sync::Arc;

use datatrace::es::{
    ConnectionConfig as EsConnection, EsClient, EsSink, EsSource, SinkConfig, SourceConfig,
};
use datatrace::{BoxError, Job, JobReport, PipelineConfig, UnitSpec};

/// What to copy where.
pub struct Config {
    /// The source node.
    pub es_url: String,
    /// Index names or patterns.
    pub indices: Vec<String>,
    /// The target node.
    pub target_url: String,
    /// The target index name pattern.
    pub target_index: String,
}

impl Config {
    /// Reads the settings through `var` (the environment in `main`), with local defaults.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str, default: &str| var(k).unwrap_or_else(|| default.to_string());
        let es_url = get("ES_URL", "http://127.0.0.1:9200");
        Config {
            indices: get("ES_INDICES", "shop-products")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            target_url: get("TARGET_ES_URL", &es_url),
            target_index: get("TARGET_INDEX", "{table}-copy"),
            es_url,
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
    let source = EsClient::connect(&EsConnection::new([cfg.es_url.as_str()])).await?;
    let target = EsConnection::new([cfg.target_url.as_str()]);
    let sink = Arc::new(
        EsSink::connect(
            &target,
            SinkConfig {
                index: cfg.target_index.clone(),
                ..Default::default()
            },
        )
        .await?,
    );
    let mut job = Job::new("es_to_es").concurrency(2).config(PipelineConfig {
        batch_size: 1000,
        read_parallelism: 2,
        sink_concurrency: 2,
        ..Default::default()
    });
    for index in resolve(&source, &cfg.indices).await? {
        let config = SourceConfig {
            raw: true,
            ..SourceConfig::new(&index)
        };
        let reader = EsSource::new(source.clone(), config)?;
        job = job.unit(UnitSpec::new(index, Arc::new(reader), sink.clone()));
    }
    Ok(job.run().await?)
}

/// One line per unit: rows, time, rate; then the total.
pub fn print_report(report: &JobReport) {
    for u in &report.units {
        match &u.report {
            Some(r) => println!(
                "{:<32} {:>9} docs {:>7.2} s {:>9.0} docs/s  {}",
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
        "total: {} documents in {:.2} s",
        report.written(),
        report.duration.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cfg = Config::from_lookup(|k| std::env::var(k).ok());
    println!(
        "copying {} from {} to {} (index {})",
        cfg.indices.join(","),
        cfg.es_url,
        cfg.target_url,
        cfg.target_index
    );
    let report = run(&cfg).await?;
    print_report(&report);
    if !report.is_complete() {
        std::process::exit(1);
    }
    Ok(())
}
