//! The Elasticsearch side of the peer benchmark: DataTrace with default settings (the
//! library's defaults, one copy per child process) beside the tools people use today, on the same generated data, against a real OpenSearch node,
//! interleaved (round robin, the order rotated each round) so the machine's noise falls on
//! all of them. Run by `scripts/bench-peers.sh`, which installs the peers into private
//! directories and passes them in `PEERS_PYTHON` (a virtualenv's python with opensearch-py
//! and pymysql) and `PEERS_ELASTICDUMP`; without them this panics naming the script.
//!
//! `cargo bench -p datatrace --bench peers` (`BENCH_ROWS`, default 200000;
//! `BENCH_ROUNDS`, default 3, after one uncounted warm-up round; `BENCH_GROUPS`, a comma list of `mysql-es`, `es-es`,
//! `es-mysql`, default all; `BENCH_READERS` / `BENCH_WRITERS` set DataTrace's
//! `read_parallelism` / `sink_concurrency`, for experiments). The engine is the testkit's (OpenSearch 2.19 unless
//! `DATATRACE_SEARCH_ENGINE` says otherwise) with a 1 GB heap and the full JIT; MySQL is the
//! testkit's MariaDB with a 1 GB buffer pool. The table is the other benchmarks' (10 columns:
//! BIGINT key, INT, BIGINT, VARCHAR(64), DECIMAL(18,4), DATETIME(6), ~200-byte TEXT, INT
//! UNSIGNED, VARCHAR(32), DOUBLE).
//!
//! 1. MySQL -> ES, into a fresh index per run (2 shards, no replica, refresh off, the mapping
//!    DataTrace derives from the table, the same for every contender): DataTrace; the
//!    engine's own `_bulk` ceiling (the documents pre-built into bodies of 1,000 before the
//!    clock starts, sent over 2 connections (DataTrace's adaptive concurrency starts at 2)
//!    and over 4);
//!    a Python script with `helpers.bulk`, and with `helpers.parallel_bulk` (4 threads).
//! 2. ES -> ES, from the index of an untimed DataTrace copy: DataTrace, elasticdump
//!    (`--limit 1000`), opensearch-py's `helpers.reindex` (scroll + bulk through the client)
//!    and the engine's own `_reindex` (started and awaited by opensearch-py).
//! 3. ES -> MySQL into a truncated table of the same DDL: DataTrace (`id_column` and
//!    `extra_column` off: the documents back into the table's shape) and a Python scroll
//!    script (`helpers.scan`, `executemany` and a commit per page of 1,000); each copy is
//!    compared with the source table by `CHECKSUM TABLE`.
//!
//! A copy into an index ends when its documents are searchable: each contender's clock (and
//! its engine CPU) runs until a `_refresh` of the index, which the bench sends after every
//! contender (DataTrace refreshes at the end of its bulk load by itself, the others do not; a
//! copy timed without it would leave writing its indexing buffer into segments to the next
//! contender). After the clock stops the bench waits for the engine to go idle and charges
//! the CPU it spent meanwhile (merges, flushes) to the same contender.
//!
//! Every contender is a child process: its CPU seconds are its own (user + system, waited
//! for), its peak RSS is polled from /proc. The engine's CPU comes from `_nodes/stats`,
//! MariaDB's from /proc. Medians over the rounds; the ratio is DataTrace's rate over each
//! contender's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, EsSource, SinkConfig, SourceConfig};
use datatrace::mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};
use datatrace::{Pipeline, Sink, Source};
use datatrace_testkit::{
    bench_table, engine, mariadb, procstat, unique_name, MariaDb, SearchEngine,
};
use serde_json::json;

/// Set in the child that runs one DataTrace copy: `mysql-es`, `es-es` or `es-mysql`.
const ROLE: &str = "DT_PEERS_ROLE";
/// Documents per bulk request or page, for every contender (DataTrace's default `max_docs`).
const CHUNK: usize = 1000;
/// Bulk requests in flight for the raw ceiling: DataTrace's starting concurrency (its adaptive
/// limit starts at 2) and twice that.
const CONNECTIONS: [usize; 2] = [2, 4];

/// One timed copy: seconds, client CPU seconds, client peak RSS (MB, `None` for in-process),
/// engine CPU seconds, MariaDB CPU seconds, and whether the MySQL target equals the source.
#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    cpu: f64,
    rss: Option<f64>,
    engine: f64,
    mysql: f64,
    exact: Option<bool>,
}

/// What every contender needs to know.
struct Bench {
    es: &'static SearchEngine,
    db: &'static MariaDb,
    src_db: String,
    dst_db: String,
    mapping: serde_json::Value,
    dir: PathBuf,
    python: String,
    elasticdump: String,
    script: PathBuf,
    want: String,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run this benchmark through scripts/bench-peers.sh, which installs the peers")
    })
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        return copy_child(&role);
    }
    let rows = env_or("BENCH_ROWS", 200_000);
    let rounds = env_or("BENCH_ROUNDS", 3).max(1) as usize;
    let groups = std::env::var("BENCH_GROUPS").unwrap_or_else(|_| "mysql-es,es-es,es-mysql".into());
    let (python, elasticdump) = (required("PEERS_PYTHON"), required("PEERS_ELASTICDUMP"));
    // The testkit passes these on to the node it starts (benchmarks want the full JIT).
    std::env::set_var("DATATRACE_ENGINE_HEAP", "1g");
    std::env::set_var("DATATRACE_ENGINE_JIT", "full");
    let (es, db) = (engine(), mariadb());
    let src_db = db.create_database("peers_src");
    let dst_db = db.create_database("peers_dst");
    db.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    let t0 = Instant::now();
    bench_table::create(db, &src_db, "t", rows);
    bench_table::create(db, &src_db, "sample", 10);
    bench_table::create(db, &dst_db, "back", 0);
    let want = checksum(db, &format!("`{src_db}`.t"));
    let dir = std::env::temp_dir().join(unique_name("datatrace-peers"));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/peers/es_peers.py");
    let mut bench = Bench {
        es,
        db,
        src_db,
        dst_db,
        mapping: json!(null),
        dir,
        python,
        elasticdump,
        script,
        want,
    };
    println!(
        "{} {} (heap 1 GB, full JIT), MariaDB with a 1 GB buffer pool; {rows} rows x 10 columns \
         generated in {:.1} s; {rounds} interleaved rounds",
        es.flavor(),
        es.version(),
        t0.elapsed().as_secs_f64()
    );
    // The mapping DataTrace derives from the table, from a 10-row copy; then the source index
    // of the ES -> ES and ES -> MySQL runs (untimed; it also warms the engine's JIT).
    let sample = unique_name("peers-sample");
    bench.datatrace("mysql-es", "sample", &sample);
    bench.mapping = es
        .request("GET", &format!("/{sample}/_mapping"), None)
        .json()[&sample]["mappings"]
        .clone();
    es.request("DELETE", &format!("/{sample}"), None);
    let source = unique_name("peers-source");
    bench.create_index(&source);
    bench.datatrace("mysql-es", "t", &source);
    bench.settle();
    assert_eq!(es.count(&source), rows, "documents in {source}");
    let bench = bench;

    if groups.contains("mysql-es") {
        let bodies = es.bulk_bodies(&source, CHUNK);
        let contenders = [
            "DataTrace (defaults)",
            "raw `_bulk` ceiling (pre-built bodies, 2 connections)",
            "raw `_bulk` ceiling (pre-built bodies, 4 connections)",
            "Python pymysql + helpers.bulk",
            "Python pymysql + helpers.parallel_bulk (4 threads)",
        ];
        let runs = interleave(&contenders, rounds, rows, |c| {
            let index = unique_name("peers-to-es");
            bench.create_index(&index);
            let run = bench.measure(Some(&index), || match c {
                0 => bench.datatrace("mysql-es", "t", &index),
                1 | 2 => bench.in_process(|| {
                    es.send_bulk(&index, &bodies, CONNECTIONS[c - 1]);
                }),
                3 => bench.python("mysql-es-bulk", "", &index),
                _ => bench.python("mysql-es-parallel", "", &index),
            });
            copied_all(es.count(&index), rows, c, contenders[c]);
            es.request("DELETE", &format!("/{index}"), None);
            run
        });
        report("MySQL -> ES", &contenders, &runs, rows);
    }
    if groups.contains("es-es") {
        let contenders = [
            "DataTrace (defaults)",
            "elasticdump (--limit 1000)",
            "opensearch-py helpers.reindex",
            "the engine's own `_reindex` (opensearch-py)",
        ];
        let runs = interleave(&contenders, rounds, rows, |c| {
            let index = unique_name("peers-es-es");
            bench.create_index(&index);
            let run = bench.measure(Some(&index), || match c {
                0 => bench.datatrace("es-es", &source, &index),
                1 => bench.elasticdump(&source, &index),
                2 => bench.python("es-es-reindex", &source, &index),
                _ => bench.python("es-es-server", &source, &index),
            });
            copied_all(es.count(&index), rows, c, contenders[c]);
            es.request("DELETE", &format!("/{index}"), None);
            run
        });
        report("ES -> ES", &contenders, &runs, rows);
    }
    if groups.contains("es-mysql") {
        let contenders = [
            "DataTrace (defaults; id_column, extra_column off)",
            "Python helpers.scan (scroll) + pymysql executemany",
        ];
        let back = format!("`{}`.back", bench.dst_db);
        let runs = interleave(&contenders, rounds, rows, |c| {
            db.exec(&format!("TRUNCATE TABLE {back}"));
            let mut run = bench.measure(None, || match c {
                0 => bench.datatrace("es-mysql", &source, "back"),
                _ => bench.python("es-mysql-scroll", &source, ""),
            });
            let n = db.exec(&format!("SELECT COUNT(*) FROM {back}"));
            assert_eq!(n.trim(), rows.to_string(), "{}: rows", contenders[c]);
            run.exact = Some(checksum(db, &back) == bench.want);
            run
        });
        report("ES -> MySQL", &contenders, &runs, rows);
    }
    es.request("DELETE", &format!("/{source}"), None);
    for d in [&bench.src_db, &bench.dst_db] {
        db.exec(&format!("DROP DATABASE `{d}`"));
    }
    let _ = std::fs::remove_dir_all(&bench.dir);
}

fn checksum(db: &MariaDb, table: &str) -> String {
    let out = db.exec(&format!("CHECKSUM TABLE {table}"));
    out.split('\t').nth(1).unwrap_or("").trim().to_string()
}

/// Runs every contender `rounds` times, round robin, each round starting one further along,
/// after one warm-up round that is printed but not counted: the first copies into a new
/// group's indices cost the engine more (35-37 engine CPU s against 19-22 for the same copy
/// later), and without it the first contender of round 0, always DataTrace, paid for that.
fn interleave(
    contenders: &[&str],
    rounds: usize,
    rows: u64,
    mut run: impl FnMut(usize) -> Run,
) -> Vec<(usize, Run)> {
    let mut runs = Vec::new();
    for round in 0..=rounds {
        let warm_up = round == 0;
        for k in 0..contenders.len() {
            let c = (k + round) % contenders.len();
            let r = run(c);
            let label = if warm_up {
                "warm-up".to_string()
            } else {
                format!("round {}", round - 1)
            };
            println!(
                "{label}: {:<55} {:>8.0} rows/s  client {:5.1} CPU s  engine {:5.1} CPU s  MariaDB {:5.1} CPU s",
                contenders[c],
                rows as f64 / r.secs,
                r.cpu,
                r.engine,
                r.mysql
            );
            if !warm_up {
                runs.push((c, r));
            }
        }
    }
    runs
}

/// Checks a copy's document count: DataTrace must copy every row (the bench stops otherwise);
/// a peer that loses documents is reported on its own line, and its run still counts.
fn copied_all(got: u64, rows: u64, c: usize, name: &str) {
    if c == 0 {
        assert_eq!(got, rows, "{name}: documents");
    } else if got != rows {
        println!("!! {name} copied {got} of {rows} documents in this run");
    }
}

/// Prints the medians of each contender and DataTrace's (the first's) rate over theirs.
fn report(title: &str, contenders: &[&str], runs: &[(usize, Run)], rows: u64) {
    let per_m = |v: f64| v / rows as f64 * 1e6;
    let of = |c: usize, f: &dyn Fn(&Run) -> f64| {
        procstat::median(
            runs.iter()
                .filter(|(k, _)| *k == c)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    let rate = |c: usize| rows as f64 / of(c, &|r| r.secs);
    println!("\n| {title} ({rows} rows, medians) | rows/s | DataTrace's rate / this | client CPU s / 1M rows | engine CPU s / 1M rows | MariaDB CPU s / 1M rows | client peak RSS MB |{}", if title.ends_with("MySQL") { " same CHECKSUM as the source |" } else { "" });
    println!(
        "|---|---|---|---|---|---|---|{}",
        if title.ends_with("MySQL") { "---|" } else { "" }
    );
    for (c, name) in contenders.iter().enumerate() {
        let rss = runs
            .iter()
            .filter(|(k, _)| *k == c)
            .filter_map(|(_, r)| r.rss)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let exact = runs
            .iter()
            .filter(|(k, _)| *k == c)
            .filter_map(|(_, r)| r.exact)
            .fold(None, |a: Option<bool>, e| Some(a.unwrap_or(true) && e));
        println!(
            "| {name} | {:.0} | {:.2}x | {:.2} | {:.2} | {:.2} | {} |{}",
            rate(c),
            rate(0) / rate(c),
            per_m(of(c, &|r| r.cpu)),
            per_m(of(c, &|r| r.engine)),
            per_m(of(c, &|r| r.mysql)),
            rss.map_or("-".into(), |v| format!("{v:.0}")),
            exact.map_or(String::new(), |e| format!(
                " {} |",
                if e { "yes" } else { "no" }
            )),
        );
    }
    println!();
}

impl Bench {
    /// Times `copy` (which returns the client's CPU seconds and peak RSS) and charges the
    /// engine's and MariaDB's CPU over the same interval and until the engine is idle again
    /// ([`Bench::settle`]). A copy into an index ends when its
    /// documents are searchable: `searchable` names that index, refreshed inside the timed
    /// interval for every contender (DataTrace refreshes at the end of its bulk load, the
    /// raw bodies and the peers do not; without this their indexing buffers would be written
    /// into segments after the clock stopped, by the next contender's refresh or count).
    fn measure(&self, searchable: Option<&str>, copy: impl FnOnce() -> (f64, Option<f64>)) -> Run {
        let mysqld = self.db.pid().unwrap_or_default();
        let (engine0, mysql0) = (self.es.process_cpu_secs(), procstat::cpu_secs(&mysqld));
        let t = Instant::now();
        let (cpu, rss) = copy();
        if let Some(index) = searchable {
            self.es.refresh(index);
        }
        let secs = t.elapsed().as_secs_f64();
        self.settle();
        Run {
            secs,
            cpu,
            rss,
            engine: self.es.process_cpu_secs() - engine0,
            mysql: procstat::cpu_secs(&mysqld) - mysql0,
            exact: None,
        }
    }

    /// Waits until the engine has been idle for half a second (the merges and flushes a copy
    /// leaves behind), so that their CPU is charged to the copy that caused them and not to
    /// the next contender; the clock has stopped by then.
    fn settle(&self) {
        let mut before = self.es.process_cpu_secs();
        for _ in 0..240 {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let now = self.es.process_cpu_secs();
            if now - before < 0.05 {
                break;
            }
            before = now;
        }
    }

    /// Runs `cmd` to completion: its CPU seconds (children waited for) and peak RSS.
    fn child(&self, mut cmd: Command) -> (f64, Option<f64>) {
        let cpu0 = procstat::children_cpu_secs("self");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let watch = procstat::PeakWatch::start(child.id());
        let out = std::io::read_to_string(child.stdout.take().expect("stdout")).unwrap_or_default();
        let status = child.wait().expect("wait for the contender");
        let rss = watch.finish();
        assert!(status.success(), "{cmd:?} failed ({status}):\n{out}");
        (procstat::children_cpu_secs("self") - cpu0, Some(rss))
    }

    /// Work done in this process: its CPU seconds over the call, no RSS of its own.
    fn in_process(&self, work: impl FnOnce()) -> (f64, Option<f64>) {
        let cpu0 = procstat::cpu_secs("self");
        work();
        (procstat::cpu_secs("self") - cpu0, None)
    }

    /// One DataTrace copy (library defaults) in a child process: `role` is `mysql-es`,
    /// `es-es` or `es-mysql`; `src` a table or index, `dst` an index or table.
    fn datatrace(&self, role: &str, src: &str, dst: &str) -> (f64, Option<f64>) {
        let mut cmd = Command::new(std::env::current_exe().expect("this benchmark's path"));
        cmd.env(ROLE, role)
            .env("MYSQL_URL", self.db.url())
            .env("SRC_DB", &self.src_db)
            .env("DST_DB", &self.dst_db)
            .env("ES_URL", self.es.url())
            .env("SRC", src)
            .env("DST", dst);
        self.child(cmd)
    }

    fn python(&self, mode: &str, src: &str, dst: &str) -> (f64, Option<f64>) {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .arg(mode)
            .env("ES_URL", self.es.url())
            .env("MYSQL_HOST", self.db.host())
            .env("MYSQL_PORT", self.db.port().to_string())
            .env(
                "MYSQL_DB",
                if src.is_empty() {
                    &self.src_db
                } else {
                    &self.dst_db
                },
            )
            .env("TABLE", if src.is_empty() { "t" } else { "back" })
            .env("SRC_INDEX", src)
            .env("DST_INDEX", dst)
            .env("CHUNK", CHUNK.to_string());
        self.child(cmd)
    }

    fn elasticdump(&self, src: &str, dst: &str) -> (f64, Option<f64>) {
        let url = self.es.url();
        let mut cmd = Command::new(&self.elasticdump);
        cmd.arg(format!("--input={url}/{src}"))
            .arg(format!("--output={url}/{dst}"))
            .args(["--type=data", "--limit=1000", "--quiet"]);
        self.child(cmd)
    }

    /// An index with the table's mapping: 2 shards, no replica, refresh off.
    fn create_index(&self, index: &str) {
        let body = json!({"settings": {"number_of_shards": 2, "number_of_replicas": 0,
            "refresh_interval": "-1"}, "mappings": self.mapping});
        let r = self
            .es
            .request("PUT", &format!("/{index}"), Some(&body.to_string()));
        assert_eq!(r.status, 200, "create {index}: {}", r.body);
    }
}

/// The child of [`Bench::datatrace`]: one copy with the library's default settings
/// (`PipelineConfig`, `SinkConfig`, `SourceConfig`, `SourceOptions`, `SinkOptions`), on a
/// multi-threaded runtime as `datatrace run` has.
fn copy_child(role: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let report = rt.block_on(async {
        let es = EsConnection::new([var("ES_URL")]);
        let mysql = |db: String| async move {
            let url = format!("{}/{db}", var("MYSQL_URL"));
            MySqlConnection::connect(&ConnectionConfig::new(url))
                .await
                .expect("connect to MySQL")
        };
        let source: Arc<dyn Source> = if role == "mysql-es" {
            let conn = mysql(var("SRC_DB")).await;
            let info = table_info(&conn, &var("SRC_DB"), &var("SRC"))
                .await
                .expect("the table");
            Arc::new(MySqlSource::new(conn, info, SourceOptions::default()).expect("source"))
        } else {
            let mut cfg = SourceConfig::new(var("SRC"));
            if role == "es-mysql" {
                // Back into the table's shape: no `_id` and `_extra` columns.
                (cfg.id_column, cfg.extra_column) = (None, None);
            }
            Arc::new(EsSource::connect(&es, cfg).await.expect("ES source"))
        };
        let sink: Arc<dyn Sink> = if role == "es-mysql" {
            let options = SinkOptions {
                table: Some(var("DST")),
                ..Default::default()
            };
            let conn = mysql(var("DST_DB")).await;
            Arc::new(MySqlSink::new(conn, options).expect("MySQL sink"))
        } else {
            let cfg = SinkConfig {
                index: var("DST"),
                ..Default::default()
            };
            Arc::new(EsSink::connect(&es, cfg).await.expect("ES sink"))
        };
        // BENCH_READERS / BENCH_WRITERS (experiments): 0 or unset keeps the automatic numbers.
        let config = datatrace::PipelineConfig {
            read_parallelism: env_or("BENCH_READERS", 0) as usize,
            sink_concurrency: env_or("BENCH_WRITERS", 0) as usize,
            ..Default::default()
        };
        Pipeline::new(role, source, sink)
            .config(config)
            .run()
            .await
            .expect("copy")
    });
    println!("RESULT {}", report.written);
}
