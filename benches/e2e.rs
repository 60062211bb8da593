//! End-to-end throughput: a 1-million-row x 10-column MySQL table copied MySQL -> Elasticsearch
//! (into the testkit's bulk endpoint, which parses every request fully and stores nothing) and
//! MySQL -> MySQL (into an empty table of another database on the same server).
//!
//! `cargo bench -p datatrace --bench e2e` (env `BENCH_ROWS`, default 1000000).
//!
//! Each copy runs in its own child process (this binary re-executed), so the CPU seconds
//! (user + system) and the peak RSS (`VmHWM`) printed are those of that copy alone: the
//! DataTrace side. The bulk endpoint runs in a third process, and MariaDB is the testkit's
//! server; their CPU seconds during each copy are printed separately. The MySQL target is
//! checked with `CHECKSUM TABLE` against the source.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, SinkConfig};
use datatrace::mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};
use datatrace::{Pipeline, PipelineConfig, RunReport};
use datatrace_testkit::{child, procstat};

/// Set in children: `endpoint`, `es` or `mysql`.
const ROLE: &str = "DT_E2E_ROLE";

const DDL: &str = "CREATE TABLE t (
    id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT, c VARCHAR(64), d DECIMAL(18,4),
    e DATETIME(6), f TEXT, g INT UNSIGNED, h VARCHAR(32), i DOUBLE) DEFAULT CHARSET=utf8mb4";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("endpoint") => {
            return child::serve_bulk_endpoint(datatrace_testkit::bulk::BulkEndpoint::start())
        }
        Ok(role) => return copy_child(role),
        Err(_) => {}
    }
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = datatrace_testkit::mariadb();
    let src = db.create_database("e2e_src");
    let dst = db.create_database("e2e_dst");
    // A production-like buffer pool (the test server starts with 128 MB, smaller than the
    // two copies of the table), as in datatrace-mysql's copy benchmark.
    db.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    let t0 = Instant::now();
    db.exec(&format!(
        "USE `{src}`; {DDL}; INSERT INTO t SELECT seq, seq % 1000, seq * 7919, CONCAT('name-', seq, ' ü'),
         seq / 3, '2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
         RPAD(CONCAT('text ', MD5(seq)), 200, ' lorem ipsum'), seq % 65536, LEFT(SHA1(seq), 20), seq / 7
         FROM seq_1_to_{rows}; USE `{dst}`; {DDL}; ANALYZE TABLE `{src}`.t;"
    ));
    let size_mb: f64 = db
        .exec(&format!(
            "SELECT DATA_LENGTH / 1e6 FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = '{src}' AND TABLE_NAME = 't'"
        ))
        .trim()
        .parse()
        .unwrap_or(0.0);
    println!(
        "source: {rows} rows x 10 columns (BIGINT key, INT, BIGINT, VARCHAR(64), DECIMAL(18,4), \
         DATETIME(6), ~200-byte TEXT, INT UNSIGNED, VARCHAR(32), DOUBLE), {size_mb:.0} MB of \
         InnoDB data, generated in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let mariadbd = db.pid();
    let (mut endpoint, es_url) = child::spawn_line(ROLE, "endpoint");

    println!();
    println!("| copy | rows/s | MB/s | CPU s / 1M rows (DataTrace) | peak RSS MB (DataTrace) | CPU s / 1M rows (MariaDB) | CPU s / 1M rows (ES endpoint) | time s |");
    println!("|---|---|---|---|---|---|---|---|");
    let env = [
        ("MYSQL_URL", db.url()),
        ("SRC_DB", src.clone()),
        ("DST_DB", dst.clone()),
        ("ES_URL", es_url),
    ];
    for (role, name) in [
        ("es", "MySQL -> ES (bulk endpoint)"),
        ("mysql", "MySQL -> MySQL"),
    ] {
        let server0 = mariadbd.as_deref().map_or(0.0, procstat::cpu_secs);
        let endpoint0 = procstat::cpu_secs(&endpoint.id().to_string());
        let f = child::run_result(ROLE, role, &env);
        let (written, secs, mb, cpu, hwm) = (f[0], f[1], f[2], f[3], f[4]);
        assert_eq!(written as u64, rows, "{name}: rows written");
        let per_m = |c: f64| c / written.max(1.0) * 1e6;
        let server = mariadbd.as_deref().map_or(0.0, procstat::cpu_secs) - server0;
        let ep = procstat::cpu_secs(&endpoint.id().to_string()) - endpoint0;
        let ep = if role == "es" {
            format!("{:.2}", per_m(ep))
        } else {
            "-".into()
        };
        println!(
            "| {name} | {:.0} | {:.1} | {:.2} | {hwm:.0} | {:.2} | {ep} | {secs:.1} |",
            written / secs,
            mb / secs,
            per_m(cpu),
            per_m(server),
        );
    }
    let sum = |d: &str| db.exec(&format!("CHECKSUM TABLE `{d}`.t"));
    let (a, b) = (sum(&src), sum(&dst));
    assert_eq!(
        a.split('\t').nth(1),
        b.split('\t').nth(1),
        "MySQL copy differs"
    );
    println!("\nMySQL target checked: CHECKSUM TABLE equal to the source");
    drop(endpoint.stdin.take());
    let _ = endpoint.wait();
    for d in [&src, &dst] {
        db.exec(&format!("DROP DATABASE `{d}`"));
    }
}

/// The child that runs one copy and prints `RESULT written secs mb cpu_secs peak_rss_mb`.
fn copy_child(role: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let (url, src) = (var("MYSQL_URL"), var("SRC_DB"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cpu0 = procstat::cpu_secs("self");
    let t0 = Instant::now();
    let (report, bytes): (RunReport, u64) = rt.block_on(async {
        let conn = ConnectionConfig::new(format!("{url}/{src}")).max_connections(6);
        let mysql = MySqlConnection::connect(&conn).await.expect("connect");
        let info = table_info(&mysql, &src, "t").await.expect("table");
        let source =
            Arc::new(MySqlSource::new(mysql, info, SourceOptions::default()).expect("source"));
        if role == "es" {
            let es = EsConnection::new([var("ES_URL")]);
            let sink = Arc::new(
                EsSink::connect(
                    &es,
                    SinkConfig {
                        index: "e2e".into(),
                        max_docs: 1000,
                        max_in_flight: 2,
                        ..Default::default()
                    },
                )
                .await
                .expect("es sink"),
            );
            let report = Pipeline::new("e2e", source, sink.clone())
                .config(config(1000, 2))
                .run()
                .await
                .expect("copy to es");
            (report, sink.stats().bytes)
        } else {
            let conn = ConnectionConfig::new(format!("{url}/{}", var("DST_DB"))).max_connections(6);
            let target = MySqlConnection::connect(&conn).await.expect("connect");
            let sink = Arc::new(MySqlSink::new(target, SinkOptions::default()).expect("sink"));
            let report = Pipeline::new("e2e", source, sink)
                .config(config(2000, 3))
                .run()
                .await
                .expect("copy to mysql");
            let bytes = report.bytes;
            (report, bytes)
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let cpu = procstat::cpu_secs("self") - cpu0;
    println!(
        "RESULT {} {secs} {} {cpu} {}",
        report.written,
        bytes as f64 / 1e6,
        procstat::peak_rss_mb()
    );
}

fn config(batch: usize, writers: usize) -> PipelineConfig {
    PipelineConfig {
        batch_size: batch,
        read_parallelism: 2,
        sink_concurrency: writers,
        channel_capacity: 4,
        linger: Duration::from_millis(50),
        ..Default::default()
    }
}
