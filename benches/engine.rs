//! MySQL -> Elasticsearch into a real engine, beside that engine's own `_bulk` ceiling; and
//! Elasticsearch -> MySQL reads in the default order (`_seq_no` on OpenSearch, `_shard_doc`
//! on Elasticsearch) beside the former `_id` order.
//!
//! `cargo bench -p datatrace --bench engine` (env `BENCH_ROWS`, default 1000000;
//! `DATATRACE_SEARCH_ENGINE` picks the engine, default OpenSearch 2.19.6). The engine is the
//! testkit's ([`datatrace_testkit::engine`]) started here with a 1 GB heap and the full JIT.
//!
//! 1. A MySQL table of `BENCH_ROWS` rows x 10 columns (the `e2e` bench's table).
//! 2. DataTrace copies it into index `dt` (2 shards, no replica, refresh off: the mapping is the
//!    one the sink derives from the table, taken from a 10-row sample copy).
//! 3. The ceiling: the same documents, read back from `dt` and pre-built into `_bulk` bodies of
//!    the same size (1,000 documents) before the clock starts, sent to index `raw` (same
//!    mapping, same settings) by as many parallel connections as the sink uses (2).
//!    Then DataTrace again into index `dt2`, with the engine as warm as it was for the ceiling;
//!    the ratio is taken from that run.
//! 4. Elasticsearch -> MySQL: index `dt` into a new MySQL table, once in the default order and
//!    once ordered by `_id` (the order before; fielddata on `_id` enabled for that run only).
//!
//! Each DataTrace copy runs in a child process (this binary re-executed), so its CPU seconds
//! and peak RSS are DataTrace's alone; the engine's CPU comes from `_nodes/stats`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, EsSource, SinkConfig, SourceConfig};
use datatrace::mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};
use datatrace::{Pipeline, PipelineConfig, RunReport};
use datatrace_testkit::{bench_table, child, engine, mariadb, procstat, SearchEngine};
use serde_json::json;

const ROLE: &str = "DT_ENGINE_BENCH_ROLE";
const BATCH: usize = 1000;
const WRITERS: usize = 2;

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role);
    }
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // The testkit passes these on to the node it starts (benchmarks want the full JIT).
    std::env::set_var("DATATRACE_ENGINE_HEAP", "1g");
    std::env::set_var("DATATRACE_ENGINE_JIT", "full");
    let es = engine();
    let db = mariadb();
    let src = db.create_database("eng_src");
    let dst = db.create_database("eng_dst");
    db.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    let t0 = Instant::now();
    bench_table::create(db, &src, "t", rows);
    bench_table::create(db, &src, "sample", 10);
    println!(
        "{} {} (heap 1 GB), {rows} rows x 10 columns generated in MySQL in {:.1} s",
        es.flavor(),
        es.version(),
        t0.elapsed().as_secs_f64()
    );
    let p = datatrace_testkit::unique_name("bench");
    let env = |index: &str, table: &str| {
        vec![
            ("MYSQL_URL", db.url()),
            ("SRC_DB", src.clone()),
            ("DST_DB", dst.clone()),
            ("ES_URL", es.url()),
            ("ES_INDEX", index.to_string()),
            ("TABLE", table.to_string()),
        ]
    };
    // The sink's mapping for this table, from a 10-row copy.
    let sample = format!("{p}-sample");
    run_child("to_es", &env(&sample, "sample"));
    let mapping = es
        .request("GET", &format!("/{sample}/_mapping"), None)
        .json()[&sample]["mappings"]
        .clone();
    let create = |index: &str| {
        let body = json!({"settings": {"number_of_shards": 2, "number_of_replicas": 0,
            "refresh_interval": "-1"}, "mappings": mapping});
        let r = es.request("PUT", &format!("/{index}"), Some(&body.to_string()));
        assert_eq!(r.status, 200, "{}", r.body);
    };

    println!();
    println!("| run | docs/s | CPU s / 1M docs (DataTrace) | peak RSS MB (DataTrace) | CPU s / 1M docs (engine) | time s |");
    println!("|---|---|---|---|---|---|");
    let (dt, raw) = (format!("{p}-dt"), format!("{p}-raw"));
    create(&dt);
    let cpu0 = es.process_cpu_secs();
    let copy = run_child("to_es", &env(&dt, "t"));
    let engine_cpu_dt = es.process_cpu_secs() - cpu0;
    assert_eq!(es.count(&dt), rows, "documents in {dt}");
    copy.print("MySQL -> ES, DataTrace", engine_cpu_dt);

    let bodies = es.bulk_bodies(&dt, BATCH);
    create(&raw);
    let cpu0 = es.process_cpu_secs();
    let secs = es.send_bulk(&raw, &bodies, WRITERS);
    let engine_cpu_raw = es.process_cpu_secs() - cpu0;
    drop(bodies);
    assert_eq!(es.count(&raw), rows, "documents in {raw}");
    let per_m = |c: f64| c / rows as f64 * 1e6;
    println!(
        "| raw `_bulk`, pre-built bodies ({WRITERS} connections) | {:.0} | - | - | {:.2} | {secs:.1} |",
        rows as f64 / secs,
        per_m(engine_cpu_raw)
    );
    // Once more now that the engine's JIT is as warm as it was for the ceiling.
    let dt2 = format!("{p}-dt2");
    create(&dt2);
    let cpu0 = es.process_cpu_secs();
    let again = run_child("to_es", &env(&dt2, "t"));
    let engine_cpu_dt2 = es.process_cpu_secs() - cpu0;
    assert_eq!(es.count(&dt2), rows, "documents in {dt2}");
    again.print(
        "MySQL -> ES, DataTrace, again (warm engine)",
        engine_cpu_dt2,
    );
    println!(
        "\nDataTrace reaches {:.0}% of the engine's own `_bulk` ceiling (second run; {:.0}% cold).",
        100.0 * secs / again.secs,
        100.0 * secs / copy.secs
    );
    es.request("DELETE", &format!("/{dt2}"), None);

    println!("\n| ES -> MySQL read order | rows/s | CPU s / 1M rows (DataTrace) | peak RSS MB (DataTrace) | CPU s / 1M rows (engine) | time s |");
    println!("|---|---|---|---|---|---|");
    for (name, table, tiebreaker) in [
        (
            "default (`_seq_no` per shard / `_shard_doc`)",
            "back_default",
            "",
        ),
        ("`_id` (before)", "back_id", "_id"),
    ] {
        let mut vars = env(&dt, table);
        vars.push(("TIEBREAKER", tiebreaker.to_string()));
        set_id_fielddata(es, !tiebreaker.is_empty());
        let cpu0 = es.process_cpu_secs();
        let back = run_child("to_mysql", &vars);
        let cpu = es.process_cpu_secs() - cpu0;
        set_id_fielddata(es, false);
        let n: u64 = db
            .exec(&format!("SELECT COUNT(*) FROM `{dst}`.`{table}`"))
            .trim()
            .parse()
            .unwrap_or(0);
        assert_eq!(n, rows, "rows in {dst}.{table}");
        back.print(name, cpu);
    }
    for index in [&sample, &dt, &raw] {
        es.request("DELETE", &format!("/{index}"), None);
    }
    for d in [&src, &dst] {
        db.exec(&format!("DROP DATABASE `{d}`"));
    }
}

/// What a child reports: `RESULT written secs cpu_secs peak_rss_mb`.
struct Copy {
    written: f64,
    secs: f64,
    cpu: f64,
    rss: f64,
}

impl Copy {
    fn print(&self, name: &str, engine_cpu: f64) {
        let per_m = |c: f64| c / self.written.max(1.0) * 1e6;
        println!(
            "| {name} | {:.0} | {:.2} | {:.0} | {:.2} | {:.1} |",
            self.written / self.secs,
            per_m(self.cpu),
            self.rss,
            per_m(engine_cpu),
            self.secs
        );
    }
}

fn run_child(role: &str, env: &[(&str, String)]) -> Copy {
    let f = child::run_result(ROLE, role, env);
    Copy {
        written: f[0],
        secs: f[1],
        cpu: f[2],
        rss: f[3],
    }
}

/// One copy in this (child) process.
fn child(role: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let url = var("MYSQL_URL");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cpu0 = procstat::cpu_secs("self");
    let t0 = Instant::now();
    let config = PipelineConfig {
        batch_size: BATCH,
        read_parallelism: 2,
        sink_concurrency: WRITERS,
        channel_capacity: 4,
        linger: Duration::from_millis(50),
        ..Default::default()
    };
    let report: RunReport = rt.block_on(async {
        let es = EsConnection::new([var("ES_URL")]);
        if role == "to_es" {
            let src = var("SRC_DB");
            let conn = ConnectionConfig::new(format!("{url}/{src}")).max_connections(6);
            let mysql = MySqlConnection::connect(&conn).await.expect("connect");
            let info = table_info(&mysql, &src, &var("TABLE"))
                .await
                .expect("table");
            let source =
                Arc::new(MySqlSource::new(mysql, info, SourceOptions::default()).expect("source"));
            let cfg = SinkConfig {
                index: var("ES_INDEX"),
                max_docs: BATCH,
                max_in_flight: WRITERS,
                ..Default::default()
            };
            let sink = Arc::new(EsSink::connect(&es, cfg).await.expect("es sink"));
            Pipeline::new("to-es", source, sink)
                .config(config)
                .run()
                .await
                .expect("copy to es")
        } else {
            let tiebreaker = var("TIEBREAKER");
            let cfg = SourceConfig {
                tiebreaker: (!tiebreaker.is_empty()).then_some(tiebreaker),
                page_size: BATCH,
                ..SourceConfig::new(var("ES_INDEX"))
            };
            let source = Arc::new(EsSource::connect(&es, cfg).await.expect("es source"));
            let conn = ConnectionConfig::new(format!("{url}/{}", var("DST_DB"))).max_connections(6);
            let target = MySqlConnection::connect(&conn).await.expect("connect");
            let options = SinkOptions {
                table: Some(var("TABLE")),
                create_table: true,
                ..Default::default()
            };
            let sink = Arc::new(MySqlSink::new(target, options).expect("sink"));
            Pipeline::new("to-mysql", source, sink)
                .config(config)
                .run()
                .await
                .expect("copy to mysql")
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "RESULT {} {secs} {} {}",
        report.written,
        procstat::cpu_secs("self") - cpu0,
        procstat::peak_rss_mb()
    );
}

/// Allows (for the `_id`-ordered run) or refuses sorting on `_id`.
fn set_id_fielddata(es: &SearchEngine, enabled: bool) {
    let body = json!({"transient": {"indices.id_field_data.enabled": enabled}}).to_string();
    let r = es.request("PUT", "/_cluster/settings", Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
}
