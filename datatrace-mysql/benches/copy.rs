//! MySQL -> MySQL copy of N rows x 10 columns within one MariaDB (the testkit's), beside
//! `mysqldump | mariadb` of the same table in the same run.
//!
//! `cargo bench -p datatrace-mysql --bench copy` (BENCH_ROWS=1000000 by default). Prints rows/s,
//! MB/s and the peak RSS of this process (VmHWM), and checks that both targets equal the
//! source (CHECKSUM TABLE).

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use datatrace_core::{Pipeline, PipelineConfig};
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};

fn vm_hwm_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process so far.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn checksum(db: &datatrace_testkit::MariaDb, d: &str) -> String {
    let out = db.exec(&format!("CHECKSUM TABLE `{d}`.t"));
    out.split('\t').nth(1).unwrap_or("").trim().to_string()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = datatrace_testkit::mariadb();
    let src = db.create_database("bench_src");
    let dst = db.create_database("bench_dst");
    let dump_dst = db.create_database("bench_dump");
    let ddl = "CREATE TABLE t (
        id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT, c VARCHAR(64), d DECIMAL(18,4),
        e DATETIME(6), f TEXT, g INT UNSIGNED, h VARCHAR(32), i DOUBLE) DEFAULT CHARSET=utf8mb4";
    // A production-like buffer pool (the test server starts with the 128 MB default, smaller
    // than the two copies of the table); the same for both contenders.
    db.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    let t0 = Instant::now();
    db.exec(&format!(
        "USE `{src}`; {ddl}; INSERT INTO t SELECT seq, seq % 1000, seq * 7919, CONCAT('name-', seq), seq / 3,
         '2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
         RPAD(CONCAT('text ', MD5(seq)), 200, ' lorem ipsum'), seq % 65536, LEFT(SHA1(seq), 20), seq / 7
         FROM seq_1_to_{rows}; USE `{dst}`; {ddl}; USE `{dump_dst}`; {ddl};"
    ));
    let size_mb: f64 = db
        .exec(&format!(
            "ANALYZE TABLE `{src}`.t; SELECT DATA_LENGTH / 1e6 FROM information_schema.TABLES WHERE TABLE_SCHEMA='{src}' AND TABLE_NAME='t'"
        ))
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .parse()
        .unwrap_or(0.0);
    println!(
        "generated {rows} rows x 10 columns ({size_mb:.0} MB of InnoDB data) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // DataTrace.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cpu0 = cpu_secs();
    let report = rt.block_on(async {
        let src_conn =
            MySqlConnection::connect(&ConnectionConfig::new(db.url_for(&src)).max_connections(6))
                .await
                .expect("connect");
        let dst_conn =
            MySqlConnection::connect(&ConnectionConfig::new(db.url_for(&dst)).max_connections(6))
                .await
                .expect("connect");
        let info = table_info(&src_conn, &src, "t").await.expect("table");
        let source = Arc::new(
            MySqlSource::new(
                src_conn,
                info,
                SourceOptions {
                    chunk_rows: 100_000,
                    ..Default::default()
                },
            )
            .expect("source"),
        );
        let sink = Arc::new(MySqlSink::new(dst_conn, SinkOptions::default()).expect("sink"));
        Pipeline::new("bench", source, sink)
            .config(PipelineConfig {
                batch_size: env("BENCH_BATCH", 2000),
                read_parallelism: env("BENCH_READERS", 2),
                sink_concurrency: env("BENCH_WRITERS", 3),
                channel_capacity: 4,
                ..Default::default()
            })
            .run()
            .await
            .expect("copy")
    });
    let ours = report.duration.as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let hwm = vm_hwm_mb();
    assert_eq!(report.written, rows);
    assert_eq!(
        checksum(db, &src),
        checksum(db, &dst),
        "DataTrace copy differs"
    );

    // mysqldump | mariadb.
    let conn = format!("--no-defaults -h {} -P {} -uroot", db.host(), db.port());
    let pipe = format!(
        "set -o pipefail; mysqldump {conn} --single-transaction --no-create-info --skip-triggers {src} t | mariadb {conn} {dump_dst}"
    );
    let t1 = Instant::now();
    let status = Command::new("bash")
        .arg("-c")
        .arg(&pipe)
        .status()
        .expect("mysqldump pipe");
    let dump = t1.elapsed().as_secs_f64();
    assert!(status.success(), "mysqldump | mariadb failed");
    assert_eq!(
        checksum(db, &src),
        checksum(db, &dump_dst),
        "dump copy differs"
    );

    println!(
        "datatrace:          {rows} rows in {ours:.2} s = {:.0} rows/s, {:.1} MB/s (values), peak RSS {hwm:.0} MB, {cpu:.1} CPU s",
        rows as f64 / ours,
        report.mb_per_sec()
    );
    println!(
        "mysqldump | mariadb: {rows} rows in {dump:.2} s = {:.0} rows/s",
        rows as f64 / dump
    );
    println!("speed-up: {:.2}x", dump / ours);
    for d in [&src, &dst, &dump_dst] {
        db.exec(&format!("DROP DATABASE `{d}`"));
    }
}
