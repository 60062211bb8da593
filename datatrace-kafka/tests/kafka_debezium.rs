//! Interop with a real Debezium: Kafka Connect (standalone, connect-runtime 4.3) running
//! Debezium's MySQL connector 3.6.1.Final captures a MariaDB (snapshot, then the binlog) into the
//! testkit's Kafka broker; DataTrace's Kafka source reads those topics as a consumer group and
//! writes them to MySQL (a table of the same definition) and to the real search engine. The
//! MySQL target ends exactly equal to the source, every value of every column (integers at their
//! edges, unsigned 64-bit, decimals of 30 digits, dates, times and datetimes at their ends,
//! negative times, timestamps, doubles, bytes, bits, enums, sets, JSON text, years, booleans,
//! UTF-8 text); the engine holds one document per source row with the latest values, which
//! also proves the versions read from Debezium's `source.file`/`source.pos` order the changes.
//! Changes: snapshot rows, inserts, updates (two of one key in one transaction), key changes,
//! deletes, a TRUNCATE and rows after it, on topics of 3 partitions (the table that sees the TRUNCATE: 1).
//!
//! Debezium runs once for the whole test (its JVM has a 384 MB heap); see
//! `datatrace_testkit::DebeziumConnect` for how it is pointed at MariaDB.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace_core::{MemoryCheckpointStore, Pipeline, PipelineConfig, Sink};
use datatrace_kafka::{KafkaSource, KafkaSourceConfig};
use datatrace_testkit::{debezium_mariadb, mariadb, unique_name, DebeziumConnect, MariaDb};

const ITEMS: &str = "CREATE TABLE items (
    id INT NOT NULL PRIMARY KEY,
    name VARCHAR(40) CHARACTER SET utf8mb4,
    qty BIGINT UNSIGNED,
    neg BIGINT,
    small SMALLINT,
    flag TINYINT(1),
    price DECIMAL(30,6),
    f DOUBLE,
    at DATETIME(6),
    d DATE,
    t TIME(6),
    ts TIMESTAMP(6) NULL DEFAULT NULL,
    y YEAR,
    b VARBINARY(16),
    bl BLOB,
    bits BIT(10),
    e ENUM('red','green','blue'),
    s SET('a','b','c'),
    j JSON,
    txt TEXT
)";

const LOGS: &str = "CREATE TABLE logs (
    k VARCHAR(20) NOT NULL,
    n INT NOT NULL,
    msg VARCHAR(100),
    PRIMARY KEY (k, n)
)";

/// Row `i` of `items` as SQL values, picking values at the edges of each type.
fn item(i: u64) -> String {
    let pick =
        |options: &[&str]| options[(i as usize * 7 + options.len()) % options.len()].to_string();
    let pick2 = |options: &[&str]| options[(i as usize / 3) % options.len()].to_string();
    let cols = [
        i.to_string(),
        pick(&[
            "'plain'",
            "'héllo ✓ \"q\" \\\\ end'",
            "''",
            "NULL",
            "'日本語テキスト'",
        ]),
        pick2(&["18446744073709551615", "0", "9223372036854775808", "NULL"]),
        pick(&["-9223372036854775808", "9223372036854775807", "-1", "0"]),
        pick2(&["-32768", "32767", "0"]),
        pick(&["1", "0", "NULL"]),
        pick2(&[
            "999999999999999999999999.999999",
            "-999999999999999999999999.999999",
            "0.000001",
            "12.5",
            "NULL",
        ]),
        pick(&["1.5e300", "-2.2250738585072014e-308", "0.1", "-0.0", "NULL"]),
        pick2(&[
            "'1000-01-01 00:00:00.000000'",
            "'9999-12-31 23:59:59.999999'",
            "'2024-02-29 12:34:56.123456'",
            "NULL",
        ]),
        pick(&[
            "'1000-01-01'",
            "'9999-12-31'",
            "'1970-01-01'",
            "'2024-02-29'",
        ]),
        pick2(&[
            "'-838:59:59.000000'",
            "'838:59:59.000000'",
            "'00:00:00.000001'",
            "'12:00:00.5'",
        ]),
        pick(&[
            "'1970-01-01 00:00:01.000000'",
            "'2038-01-19 03:14:07.999999'",
            "NULL",
        ]),
        pick2(&["1901", "2155", "2024", "NULL"]),
        pick(&["0x00ff", "X''", "0xdeadbeef00", "NULL"]),
        pick2(&["REPEAT(0x5a, 300)", "0x00", "NULL"]),
        pick(&["b'1010101010'", "b'0'", "b'1111111111'", "b'1'", "NULL"]),
        pick2(&["'red'", "'blue'", "NULL"]),
        pick(&["'a,c'", "''", "'a,b,c'", "NULL"]),
        pick2(&[
            "'{\"a\": [1, 2.5, null], \"u\": \"✓\"}'",
            "'[]'",
            "'\"text\"'",
            "NULL",
        ]),
        pick(&["REPEAT('long text ', 50)", "'t'", "NULL"]),
    ];
    format!("({})", cols.join(", "))
}

fn insert_items(db: &MariaDb, schema: &str, ids: impl Iterator<Item = u64>) {
    let rows: Vec<String> = ids.map(item).collect();
    db.exec(&format!(
        "INSERT INTO `{schema}`.items VALUES {}",
        rows.join(", ")
    ));
}

/// Every row of a table, ordered by key, as text (hex for binary columns).
fn rows(db: &MariaDb, schema: &str, table: &str) -> String {
    let select = match table {
        "items" => "SELECT id, name, qty, neg, small, flag, price, f, at, d, t, ts, y, HEX(b), \
                    HEX(bl), HEX(bits), e, s, j, txt FROM items ORDER BY id"
            .to_string(),
        _ => "SELECT k, n, msg FROM logs ORDER BY k, n".to_string(),
    };
    db.exec(&format!("USE `{schema}`; {select}"))
}

/// Reads the Debezium topics into `sink` as a consumer group, until the task is aborted.
fn worker(
    rt: &tokio::runtime::Runtime,
    group: &str,
    topics: &str,
    sink: Arc<dyn Sink>,
) -> tokio::task::JoinHandle<()> {
    let mut c = KafkaSourceConfig::new(common::brokers(), group, &[topics]);
    c.wait_for_topics_ms = 120_000;
    let source = Arc::new(KafkaSource::new(c).expect("source"));
    let group = group.to_string();
    rt.spawn(async move {
        let r = Pipeline::new(&group, source, sink)
            .checkpoints(Arc::new(MemoryCheckpointStore::new()))
            .config(PipelineConfig {
                batch_size: 100,
                partition_by_key: true,
                sink_concurrency: 2,
                linger: Duration::from_millis(20),
                ..Default::default()
            })
            .run()
            .await;
        if let Err(e) = r {
            panic!("the worker of {group} failed: {e}");
        }
    })
}

/// The engine's documents of `index`: `_id` -> `_source`.
fn documents(index: &str) -> BTreeMap<String, serde_json::Value> {
    let engine = datatrace_testkit::engine();
    let _ = engine.request("POST", &format!("/{index}/_refresh"), None);
    let reply = engine.request(
        "GET",
        &format!("/{index}/_search?size=10000&sort=_doc"),
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    v["hits"]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|h| {
                    (
                        h["_id"].as_str().unwrap_or_default().to_string(),
                        h["_source"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kafka_debezium_mysql_connector_events_reach_mysql_and_the_engine_exactly() {
    let kafka = datatrace_testkit::kafka();
    let src_db = debezium_mariadb();
    let src = "shop";
    src_db.exec(&format!(
        "CREATE DATABASE {src}; USE {src}; {ITEMS}; {LOGS};"
    ));
    // snapshot rows: there before Debezium starts
    insert_items(&src_db, src, 1..=60);
    src_db.exec(&format!(
        "INSERT INTO {src}.logs VALUES ('a', 1, 'first'), ('a', 2, 'second'), ('b', 1, 'x')"
    ));
    let dst = mariadb().create_database("dbz_dst");
    mariadb().exec(&format!("USE `{dst}`; {ITEMS}; {LOGS};"));

    let prefix = unique_name("dbz");
    let logs_topic = format!("{}\\.{src}\\.logs", prefix.replace('.', "\\."));
    let connect = DebeziumConnect::start(
        kafka,
        &src_db,
        &prefix,
        &[src],
        3,
        &[
            ("bigint.unsigned.handling.mode", "precise"),
            ("decimal.handling.mode", "precise"),
            ("time.precision.mode", "adaptive_time_microseconds"),
            ("binary.handling.mode", "bytes"),
            // TRUNCATE is skipped by default: carry it
            ("skipped.operations", "none"),
            // Debezium writes a TRUNCATE to one partition: a table that sees them gets a
            // topic of one partition, so that its rows after it come after it (see the README)
            ("topic.creation.groups", "single"),
            ("topic.creation.single.include", &logs_topic),
            ("topic.creation.single.partitions", "1"),
            ("topic.creation.single.replication.factor", "1"),
        ],
    );
    connect.wait_streaming(Duration::from_secs(240));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let topics = format!("^{}\\.{src}\\..*", prefix.replace('.', "\\."));
    let mysql_sink: Arc<dyn Sink> = rt.block_on(async {
        let conn = datatrace_mysql::MySqlConnection::connect(
            &datatrace_mysql::ConnectionConfig::new(mariadb().url_for(&dst)),
        )
        .await
        .expect("connect to the target");
        Arc::new(
            datatrace_mysql::MySqlSink::new(
                conn,
                datatrace_mysql::SinkOptions {
                    database: Some(dst.clone()),
                    ..Default::default()
                },
            )
            .expect("mysql sink"),
        )
    });
    let index = format!("{prefix}-{{table}}");
    let es_sink: Arc<dyn Sink> = rt.block_on(async {
        Arc::new(
            datatrace_es::EsSink::connect(
                &datatrace_es::ConnectionConfig::new([datatrace_testkit::engine().url()]),
                datatrace_es::SinkConfig {
                    index: index.clone(),
                    version: Some(datatrace_es::VersionSource::Position),
                    ..Default::default()
                },
            )
            .await
            .expect("es sink"),
        )
    });
    let to_mysql = worker(&rt, &format!("{prefix}-mysql"), &topics, mysql_sink);
    let to_engine = worker(&rt, &format!("{prefix}-engine"), &topics, es_sink);

    // the stream: inserts, updates, key changes, deletes, a truncate, and rows after it
    insert_items(&src_db, src, 61..=120);
    src_db.exec(&format!(
        "USE {src}; BEGIN; UPDATE items SET name = 'once', qty = qty + 0 WHERE id = 5; \
         UPDATE items SET name = 'twice in one transaction', price = 1.000001 WHERE id = 5; COMMIT;"
    ));
    for i in 0..40u64 {
        let id = 1 + (i * 37) % 120;
        src_db.exec(&format!(
            "USE {src}; UPDATE items SET name = 'update {i}', f = {i}.25, at = '2030-01-01 00:00:{:02}.5', \
             j = '{{\"i\": {i}}}', bits = b'1100110011' WHERE id = {id};",
            i % 60
        ));
    }
    src_db.exec(&format!(
        "USE {src}; UPDATE items SET id = 1000 WHERE id = 7; UPDATE items SET id = id + 2000 WHERE id BETWEEN 90 AND 95; \
         DELETE FROM items WHERE id IN (3, 33, 63, 99); DELETE FROM items WHERE id BETWEEN 100 AND 104;"
    ));
    src_db.exec(&format!(
        "USE {src}; INSERT INTO logs VALUES ('c', 1, 'before the truncate'); TRUNCATE logs; \
         INSERT INTO logs VALUES ('a', 1, 'after the truncate'), ('d', 9, 'new');"
    ));
    insert_items(&src_db, src, 121..=150);
    src_db.exec(&format!(
        "USE {src}; UPDATE items SET name = 'last' WHERE id = 150; DELETE FROM items WHERE id = 149;"
    ));

    let want_items = rows(&src_db, src, "items");
    let want_logs = rows(&src_db, src, "logs");
    assert!(want_items.lines().count() > 100, "{want_items}");
    let started = Instant::now();
    loop {
        let got_items = rows(mariadb(), &dst, "items");
        let got_logs = rows(mariadb(), &dst, "logs");
        if got_items == want_items && got_logs == want_logs {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) || to_mysql.is_finished() {
            let diff: Vec<String> = want_items
                .lines()
                .zip(got_items.lines())
                .filter(|(a, b)| a != b)
                .take(5)
                .map(|(a, b)| format!("source: {a}\ntarget: {b}"))
                .collect();
            panic!(
                "the MySQL target did not become equal to the source: {} / {} item lines, logs:\n{want_logs}\n---\n{got_logs}\nfirst differences:\n{}\n--- Debezium:\n{}",
                want_items.lines().count(),
                got_items.lines().count(),
                diff.join("\n"),
                connect.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // the engine: one document per row, each with the row's latest name and price
    let expected = src_db.exec(&format!(
        "USE {src}; SELECT id, IFNULL(name, '<null>'), IFNULL(CAST(price AS CHAR), '<null>') FROM items ORDER BY id"
    ));
    let expected: BTreeMap<String, (String, String)> = expected
        .lines()
        .map(|l| {
            // the client's batch output escapes backslashes
            let f: Vec<String> = l.split('\t').map(|f| f.replace("\\\\", "\\")).collect();
            (f[0].clone(), (f[1].clone(), f[2].clone()))
        })
        .collect();
    let items_index = index.replace("{table}", "items");
    let started = Instant::now();
    loop {
        let docs = documents(&items_index);
        let got: BTreeMap<String, (String, String)> = docs
            .iter()
            .map(|(id, d)| {
                let text = |v: &serde_json::Value| match v {
                    serde_json::Value::Null => "<null>".to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (id.clone(), (text(&d["name"]), text(&d["price"])))
            })
            .collect();
        if got == expected {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) || to_engine.is_finished() {
            let missing: Vec<_> = expected
                .keys()
                .filter(|k| !got.contains_key(*k))
                .take(5)
                .collect();
            let extra: Vec<_> = got
                .keys()
                .filter(|k| !expected.contains_key(*k))
                .take(5)
                .collect();
            let stale: Vec<_> = expected
                .iter()
                .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
                .take(5)
                .map(|(k, v)| format!("{k}: want {v:?}, got {:?}", got[k]))
                .collect();
            panic!(
                "the engine's documents differ from the source: {} documents, {} rows; missing {missing:?}, extra {extra:?}, stale {stale:?}",
                got.len(),
                expected.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    to_mysql.abort();
    to_engine.abort();
    drop(rt);
    drop(connect);
}
