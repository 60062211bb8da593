//! Denormalized documents: every order of the quickstart shop as one document with its
//! customer, its lines (a `nested` array), each line's product and the product's tags,
//! copied from MySQL and then kept exact by the binlog stream for a while.
//!
//! ```sh
//! scripts/quickstart.sh --documents --small   # the shop, with tags, and its servers
//! eval "$(scripts/quickstart.sh env)"
//! STREAM_SECONDS=30 cargo run --example denormalized
//! # meanwhile, in another shell: UPDATE shop.products SET name = 'Decaf' WHERE id = 3;
//! # and every order holding product 3 is rebuilt.
//! ```
//!
//! Environment (defaults in brackets): `MYSQL_URL` [`mysql://root@127.0.0.1:3306`],
//! `MYSQL_DB` [`shop`], `ES_URL` [`http://127.0.0.1:9200`], `ES_INDEX` (name pattern:
//! `{db}`, `{table}` = the document's name) [`{db}-{table}-docs`], `STREAM_SECONDS` (how
//! long to stream changes after the copy; 0: copy only) [`0`].

use std::sync::Arc;
use std::time::Duration;

use datatrace::denormal::{DocumentSpec, Documents, RelationSpec};
use datatrace::es::{ConnectionConfig as EsConnection, EsSink};
use datatrace::mysql::binlog::{current_position, CdcOptions, StartAt};
use datatrace::mysql::{ConnectionConfig, MySqlConnection};
use datatrace::{BoxError, Pipeline, PipelineConfig, RunReport};

/// What to build where.
pub struct Config {
    /// The MySQL server (a database in the URL is not needed).
    pub mysql_url: String,
    /// The shop's database.
    pub database: String,
    /// The Elasticsearch / OpenSearch node.
    pub es_url: String,
    /// The index name pattern.
    pub index: String,
    /// Seconds of change streaming after the copy.
    pub stream_seconds: u64,
}

impl Config {
    /// Reads the settings through `var` (the environment in `main`), with local defaults.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str, default: &str| var(k).unwrap_or_else(|| default.to_string());
        Config {
            mysql_url: get("MYSQL_URL", "mysql://root@127.0.0.1:3306"),
            database: get("MYSQL_DB", "shop"),
            es_url: get("ES_URL", "http://127.0.0.1:9200"),
            index: get("ES_INDEX", "{db}-{table}-docs"),
            stream_seconds: get("STREAM_SECONDS", "0").parse().unwrap_or(0),
        }
    }
}

/// The order document: `orders` with its customer, its lines (nested), each line's product
/// and the product's tag names.
pub fn orders(database: &str) -> DocumentSpec {
    DocumentSpec::new("orders", format!("{database}.orders"))
        .relation(
            RelationSpec::many_to_one("customer", "customers", ["customer_id"])
                .columns(["id", "name", "country"]),
        )
        .relation(
            RelationSpec::one_to_many("items", "order_items", ["order_id"])
                .columns(["line_no", "quantity", "unit_price", "discount"])
                .nested(),
        )
        .relation(
            RelationSpec::many_to_one("product", "products", ["product_id"])
                .under("items")
                .columns(["id", "sku", "name", "category"]),
        )
        .relation(
            RelationSpec::many_to_many("tags", "tags", "product_tags", ["product_id"], ["tag_id"])
                .under("product")
                .scalar("name"),
        )
}

/// What a run did: the copy, and the stream when there was one.
pub struct Report {
    /// The snapshot of the documents.
    pub copy: RunReport,
    /// The stream, when `stream_seconds` > 0: documents rebuilt.
    pub rebuilt: u64,
}

/// Copies the documents, then streams changes for `stream_seconds`.
pub async fn run(cfg: &Config) -> Result<Report, BoxError> {
    let url = format!("{}/{}", cfg.mysql_url.trim_end_matches('/'), cfg.database);
    let mysql = MySqlConnection::connect(&ConnectionConfig::new(url)).await?;
    let sink = Arc::new(
        EsSink::connect(
            &EsConnection::new([cfg.es_url.as_str()]),
            Documents::sink_config(&cfg.index),
        )
        .await?,
    );
    let docs = Documents::resolve(&mysql, vec![orders(&cfg.database)], &sink).await?;
    // The stream starts where the copy starts: nothing changed meanwhile is missed.
    let start = current_position(&mysql).await?;
    let config = PipelineConfig {
        read_parallelism: 2,
        sink_concurrency: 2,
        ..Default::default()
    };
    let copy = Pipeline::new("orders", Arc::new(docs.snapshot("orders")?), sink.clone())
        .config(config.clone())
        .run()
        .await?;
    let mut rebuilt = 0;
    if cfg.stream_seconds > 0 {
        let cdc = CdcOptions {
            start: StartAt::Position {
                file: start.file,
                pos: start.pos,
            },
            ..Default::default()
        };
        let stream = docs.binlog_stream("documents", cdc)?;
        let stats = stream.stats();
        let pipeline =
            Pipeline::new("documents", Arc::new(stream), sink.clone()).config(PipelineConfig {
                partition_by_key: true,
                ..config
            });
        let stop = pipeline.canceller();
        let task = tokio::spawn(pipeline.run());
        tokio::time::sleep(Duration::from_secs(cfg.stream_seconds)).await;
        stop.cancel();
        match task.await? {
            Ok(_) | Err(datatrace::Error::Cancelled) => {}
            Err(e) => return Err(e.into()),
        }
        rebuilt = stats.documents.load(std::sync::atomic::Ordering::Relaxed);
    }
    Ok(Report { copy, rebuilt })
}

/// One line for the copy, one for the stream.
pub fn print_report(r: &Report) {
    println!(
        "orders: {} documents in {:.2} s ({:.0} documents/s)",
        r.copy.written,
        r.copy.duration.as_secs_f64(),
        r.copy.rows_per_sec()
    );
    println!("stream: {} documents rebuilt", r.rebuilt);
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cfg = Config::from_lookup(|k| std::env::var(k).ok());
    println!(
        "building orders documents of {} from {} into {} (index {})",
        cfg.database,
        ConnectionConfig::new(&cfg.mysql_url).redacted_url(),
        cfg.es_url,
        cfg.index
    );
    let report = run(&cfg).await?;
    print_report(&report);
    Ok(())
}
