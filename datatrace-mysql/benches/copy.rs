//! MySQL -> MySQL copy of N rows x 10 columns from one MariaDB (the testkit's) to another (a
//! dedicated one, so that the target server's CPU is measured apart from the source's reads):
//! DataTrace with default settings (its `LOAD DATA LOCAL INFILE` bulk path), the same with
//! `bulk_session = true` (`unique_checks = 0, foreign_key_checks = 0` on the fresh table),
//! DataTrace's multi-row `INSERT` path, `mariadb-dump | mariadb`, `mydumper` then `myloader`
//! (default threads, 100k-row chunks; when mydumper is installed: `scripts/bench-peers.sh`
//! installs it), and the target server's own `LOAD DATA INFILE` of a file the source wrote
//! with `SELECT .. INTO OUTFILE`, run interleaved (round robin, `BENCH_ROUNDS` rounds) into
//! the same emptied target table, so the machine's noise falls on all of them; after each
//! copy the target's dirty pages are written and the server left to go idle, so that each
//! copy is charged its own server work.
//!
//! `cargo bench -p datatrace-mysql --bench copy` (`BENCH_ROWS` 1000000, `BENCH_ROUNDS` 3;
//! `BENCH_BATCH`, `BENCH_READERS`, `BENCH_WRITERS`, `BENCH_CHANNEL`, `BENCH_BATCH_BYTES`
//! override the pipeline's defaults; `BENCH_WORKERS` sets the runtime's threads, 2; with
//! `BENCH_ALT_BATCH`, `BENCH_ALT_READERS` or `BENCH_ALT_WRITERS` a second DataTrace contender
//! runs with those settings, for an A/B comparison within each round). Prints, per
//! contender, the median rows/s, the client's CPU seconds per million rows (this process for
//! DataTrace, the pipe's processes for the dump), the target and the source servers'
//! (`mariadbd`) CPU seconds per million rows, and DataTrace's peak RSS (VmHWM); every copy is
//! checked against the source with `CHECKSUM TABLE`, and its table's pages are printed (how
//! full the copy left them). Last, DataTrace's rate and target CPU over `LOAD DATA INFILE`'s
//! (and the alternative's over both) within each round (median and range): the machine's
//! speed drifts between rounds, and a ratio within a round cancels most of that drift.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace_core::{Pipeline, PipelineConfig};
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};
use datatrace_testkit::procstat;

fn checksum(db: &datatrace_testkit::MariaDb, d: &str) -> String {
    let out = db.exec(&format!("CHECKSUM TABLE `{d}`.t"));
    out.split('\t').nth(1).unwrap_or("").trim().to_string()
}

/// Writes the target's dirty pages out and waits for the server to go idle (the deferred work
/// of the copy just done), so that its CPU counts for that copy and not for the next one.
fn settle(target: &datatrace_testkit::MariaDb) {
    let pct = target.exec("SELECT @@GLOBAL.innodb_max_dirty_pages_pct");
    target.exec("SET GLOBAL innodb_max_dirty_pages_pct = 0");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let dirty: u64 = target
            .exec("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'")
            .trim()
            .parse()
            .unwrap_or(0);
        if dirty < 1000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    target.exec(&format!(
        "SET GLOBAL innodb_max_dirty_pages_pct = {}",
        pct.trim()
    ));
    // Then whatever else the server still does in the background (purge, log writes):
    // until it has been idle for half a second.
    if let Some(pid) = target.pid() {
        for _ in 0..120 {
            let before = procstat::cpu_secs(&pid);
            std::thread::sleep(Duration::from_millis(500));
            if procstat::cpu_secs(&pid) - before < 0.02 {
                break;
            }
        }
    }
}

/// The 16 KiB pages of the target table's clustered index (after `ANALYZE TABLE`, run once the
/// copy's server CPU is read): how full the copy left its pages (concurrent writers of adjacent
/// key ranges split pages in the middle).
fn pages(target: &datatrace_testkit::MariaDb, d: &str) -> String {
    target
        .exec(&format!(
            "ANALYZE TABLE `{d}`.t; SELECT DATA_LENGTH DIV 16384 FROM information_schema.TABLES WHERE TABLE_SCHEMA='{d}' AND TABLE_NAME='t'"
        ))
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[derive(Clone, Copy, PartialEq)]
enum Contender {
    /// DataTrace, default settings (LOAD DATA LOCAL INFILE).
    Ours,
    /// DataTrace with `bulk_session = true` (session settings on the fresh table).
    OursSession,
    /// DataTrace with `load_data = false` (multi-row INSERT).
    OursInsert,
    /// `mariadb-dump | mariadb`.
    Dump,
    /// `mydumper` then `myloader`.
    MyDumper,
    /// The server's `LOAD DATA INFILE` of its own file.
    ServerLoad,
    /// DataTrace, defaults but for `BENCH_ALT_BATCH` / `BENCH_ALT_READERS` /
    /// `BENCH_ALT_WRITERS` (run only when one of them is set).
    OursAlt,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Ours => "DataTrace (defaults: LOAD DATA LOCAL)",
            Contender::OursSession => "DataTrace (bulk_session = true)",
            Contender::OursInsert => "DataTrace (load_data = false: INSERT)",
            Contender::Dump => "mariadb-dump | mariadb",
            Contender::MyDumper => "mydumper + myloader",
            Contender::ServerLoad => "server LOAD DATA INFILE (file ready)",
            Contender::OursAlt => "DataTrace (BENCH_ALT_* settings)",
        }
    }
}

/// One copy's measures: seconds, client CPU seconds, target and source server CPU seconds.
type Run = (f64, f64, f64, f64);

fn main() {
    let rows: u64 = env("BENCH_ROWS").map_or(1_000_000, |r| r as u64);
    let rounds = env("BENCH_ROUNDS").unwrap_or(3).max(1);
    let db = datatrace_testkit::mariadb();
    let target = datatrace_testkit::MariaDb::dedicated();
    let src = db.create_database("bench_src");
    let dst = target.create_database("bench_dst");
    let ddl = "CREATE TABLE t (
        id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT, c VARCHAR(64), d DECIMAL(18,4),
        e DATETIME(6), f TEXT, g INT UNSIGNED, h VARCHAR(32), i DOUBLE) DEFAULT CHARSET=utf8mb4";
    // A production-like buffer pool (the test server starts with the 128 MB default, smaller
    // than the two copies of the table); the same for every contender.
    db.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    target.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    let t0 = Instant::now();
    db.exec(&format!(
        "USE `{src}`; {ddl}; INSERT INTO t SELECT seq, seq % 1000, seq * 7919, CONCAT('name-', seq), seq / 3,
         '2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
         RPAD(CONCAT('text ', MD5(seq)), 200, ' lorem ipsum'), seq % 65536, LEFT(SHA1(seq), 20), seq / 7
         FROM seq_1_to_{rows};"
    ));
    target.exec(&format!("USE `{dst}`; {ddl};"));
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
    let want = checksum(db, &src);
    // The server's own file for its LOAD DATA INFILE, written before any timing.
    let outfile = db.datadir().join(format!("{src}.tsv"));
    let _ = std::fs::remove_file(&outfile);
    db.exec(&format!(
        "SELECT * FROM `{src}`.t INTO OUTFILE '{}'",
        outfile.display()
    ));
    let source_pid = db.pid().expect("the source server's pid file");
    let target_pid = target.pid().expect("the target server's pid file");
    let base = PipelineConfig::default();
    let config = PipelineConfig {
        batch_size: env("BENCH_BATCH").unwrap_or(base.batch_size),
        read_parallelism: env("BENCH_READERS").unwrap_or(base.read_parallelism),
        sink_concurrency: env("BENCH_WRITERS").unwrap_or(base.sink_concurrency),
        channel_capacity: env("BENCH_CHANNEL").unwrap_or(base.channel_capacity),
        max_batch_bytes: env("BENCH_BATCH_BYTES").or(base.max_batch_bytes),
        ..base
    };
    let alt = PipelineConfig {
        batch_size: env("BENCH_ALT_BATCH").unwrap_or(config.batch_size),
        read_parallelism: env("BENCH_ALT_READERS").unwrap_or(config.read_parallelism),
        sink_concurrency: env("BENCH_ALT_WRITERS").unwrap_or(config.sink_concurrency),
        ..config.clone()
    };
    let with_alt = ["BENCH_ALT_BATCH", "BENCH_ALT_READERS", "BENCH_ALT_WRITERS"]
        .iter()
        .any(|v| env(v).is_some());
    println!(
        "generated {rows} rows x 10 columns ({size_mb:.0} MB of InnoDB data) in {:.1} s; \
         DataTrace: batch {} / readers {} / writers {}; {rounds} interleaved rounds",
        t0.elapsed().as_secs_f64(),
        config.batch_size,
        config.read_parallelism,
        config.sink_concurrency,
    );
    if with_alt {
        println!(
            "DataTrace (BENCH_ALT_*): batch {} / readers {} / writers {}",
            alt.batch_size, alt.read_parallelism, alt.sink_concurrency
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env("BENCH_WORKERS").unwrap_or(2))
        .enable_all()
        .build()
        .expect("runtime");
    let ours = |load_data: bool, bulk_session: bool, config: &PipelineConfig| {
        rt.block_on(async {
            let connect = |url: String| {
                let cfg = ConnectionConfig::new(url);
                async move { MySqlConnection::connect(&cfg).await.expect("connect") }
            };
            let src_conn = connect(db.url_for(&src)).await;
            let info = table_info(&src_conn, &src, "t").await.expect("table");
            let source = Arc::new(
                MySqlSource::new(src_conn, info, SourceOptions::default()).expect("source"),
            );
            let opts = SinkOptions {
                load_data,
                bulk_session,
                ..Default::default()
            };
            let sink =
                Arc::new(MySqlSink::new(connect(target.url_for(&dst)).await, opts).expect("sink"));
            let report = Pipeline::new("bench", source, sink.clone())
                .config(config.clone())
                .run()
                .await
                .expect("copy");
            assert_eq!(report.written, rows);
            let loaded = if load_data { rows } else { 0 };
            assert_eq!(sink.loaded_rows(), loaded, "rows through LOAD DATA");
        })
    };
    let conn = format!("--no-defaults -h {} -P {} -uroot", db.host(), db.port());
    let conn_short = format!("-h {} -P {} -u root", db.host(), db.port());
    let to = format!(
        "--no-defaults -h {} -P {} -uroot",
        target.host(),
        target.port()
    );
    let to_short = format!("-h {} -P {} -u root", target.host(), target.port());
    let shell = |script: String| {
        let status = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .status()
            .expect("bash");
        assert!(status.success(), "{script} failed");
    };
    let mydumper = Command::new("mydumper")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !mydumper {
        println!(
            "mydumper is not installed: its row is left out (scripts/bench-peers.sh installs it)"
        );
    }
    let dump_dir = std::env::temp_dir().join(format!("datatrace-bench-{src}.mydumper"));
    let mut order = vec![
        Contender::Ours,
        Contender::Dump,
        Contender::ServerLoad,
        Contender::OursSession,
        Contender::OursInsert,
    ];
    if mydumper {
        order.insert(2, Contender::MyDumper);
    }
    if with_alt {
        order.push(Contender::OursAlt);
    }
    // BENCH_ONLY=quick: DataTrace's bulk path and the server's LOAD DATA INFILE alone (for
    // trying settings with BENCH_READERS / BENCH_WRITERS).
    // With BENCH_ALT_*, the default and the alternative settings are compared alone.
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "quick") {
        order.retain(|c| match c {
            Contender::Ours | Contender::ServerLoad | Contender::OursAlt => true,
            Contender::OursSession => !with_alt,
            _ => false,
        });
    }
    settle(&target);
    let mut runs: Vec<(Contender, Run)> = Vec::new();
    for round in 0..rounds {
        // Rotate the order, reversed every other round, so that no contender always runs
        // first or after the same one (a rotation alone keeps the neighbours).
        for k in 0..order.len() {
            let n = order.len();
            let at = (k + round) % n;
            let c = order[if round % 2 == 0 { at } else { n - 1 - at }];
            target.exec(&format!("TRUNCATE TABLE `{dst}`.t"));
            let (target0, source0, self0, kids0) = (
                procstat::cpu_secs(&target_pid),
                procstat::cpu_secs(&source_pid),
                procstat::cpu_secs("self"),
                procstat::children_cpu_secs("self"),
            );
            let t = Instant::now();
            match c {
                Contender::Ours => ours(true, false, &config),
                Contender::OursSession => ours(true, true, &config),
                Contender::OursInsert => ours(false, false, &config),
                Contender::OursAlt => ours(true, false, &alt),
                Contender::Dump => shell(format!(
                    "set -o pipefail; mariadb-dump {conn} --single-transaction --no-create-info --skip-triggers {src} t | mariadb {to} {dst}"
                )),
                Contender::MyDumper => {
                    let dir = dump_dir.display();
                    shell(format!(
                        "rm -rf {dir} && mydumper {conn_short} -B {src} -T t -m -r 100000 -o {dir} && \
                         myloader {to_short} -d {dir} -B {dst} && rm -rf {dir}"
                    ))
                }
                Contender::ServerLoad => {
                    target.exec(&format!(
                        "LOAD DATA INFILE '{}' INTO TABLE `{dst}`.t",
                        outfile.display()
                    ));
                }
            }
            let secs = t.elapsed().as_secs_f64();
            let client = if matches!(
                c,
                Contender::Ours
                    | Contender::OursSession
                    | Contender::OursInsert
                    | Contender::OursAlt
            ) {
                procstat::cpu_secs("self") - self0
            } else {
                procstat::children_cpu_secs("self") - kids0
            };
            // The pages the copy left dirty are written now, and their cost is the copy's.
            settle(&target);
            let server = procstat::cpu_secs(&target_pid) - target0;
            let source = procstat::cpu_secs(&source_pid) - source0;
            assert_eq!(checksum(&target, &dst), want, "{}: copy differs", c.name());
            println!(
                "round {round}: {:<46} {:>8.0} rows/s  client {client:5.1} CPU s  target server {server:5.1} CPU s  source server {source:5.1} CPU s  target pages {}",
                c.name(),
                rows as f64 / secs,
                pages(&target, &dst)
            );
            runs.push((c, (secs, client, server, source)));
        }
    }
    let per_m = |v: f64| v / rows as f64 * 1e6;
    println!();
    println!("| copy ({rows} rows, medians of {rounds} interleaved rounds) | rows/s | client CPU s / 1M rows | target server CPU s / 1M rows | source server CPU s / 1M rows |");
    println!("|---|---|---|---|---|");
    let rate = |c: Contender| {
        if !runs.iter().any(|(k, _)| *k == c) {
            return f64::NAN;
        }
        let of = |f: fn(&Run) -> f64| {
            procstat::median(
                runs.iter()
                    .filter(|(k, _)| *k == c)
                    .map(|(_, r)| f(r))
                    .collect(),
            )
        };
        let secs = of(|r| r.0);
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            c.name(),
            rows as f64 / secs,
            per_m(of(|r| r.1)),
            per_m(of(|r| r.2)),
            per_m(of(|r| r.3))
        );
        rows as f64 / secs
    };
    let ours_rate = rate(Contender::Ours);
    rate(Contender::OursSession);
    let insert_rate = rate(Contender::OursInsert);
    let dump_rate = rate(Contender::Dump);
    let load_rate = rate(Contender::ServerLoad);
    let mydumper_rate = mydumper.then(|| rate(Contender::MyDumper));
    if with_alt {
        rate(Contender::OursAlt);
    }
    println!(
        "\nDataTrace (defaults) / dump pipe: {:.2}x; / server LOAD DATA INFILE: {:.2}x; / its INSERT path: {:.2}x{}; DataTrace peak RSS {:.0} MB",
        ours_rate / dump_rate,
        ours_rate / load_rate,
        ours_rate / insert_rate,
        mydumper_rate.map_or(String::new(), |r| format!("; / mydumper + myloader: {:.2}x", ours_rate / r)),
        procstat::peak_rss_mb()
    );
    // The machine's speed drifts between rounds; a ratio within each round cancels most of it.
    let paired = |ours: Contender, base: Contender, f: fn(&Run) -> f64| {
        let ratios: Vec<f64> = runs
            .chunks(order.len())
            .filter_map(|round| {
                let of = |c| round.iter().find(|(k, _)| *k == c).map(|(_, r)| f(r));
                Some(of(ours)? / of(base)?)
            })
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{:.2}x ({lo:.2}-{hi:.2})", procstat::median(ratios))
    };
    let mut pairs = vec![(Contender::Ours, Contender::ServerLoad)];
    if with_alt {
        pairs.push((Contender::OursAlt, Contender::ServerLoad));
        pairs.push((Contender::OursAlt, Contender::Ours));
    }
    for (c, base) in pairs {
        println!(
            "{} / {} within each round, median (range): rate {}, target server CPU {}",
            c.name(),
            base.name(),
            paired(c, base, |r| 1.0 / r.0),
            paired(c, base, |r| r.2)
        );
    }
    let _ = std::fs::remove_file(&outfile);
    db.exec(&format!("DROP DATABASE `{src}`"));
}
