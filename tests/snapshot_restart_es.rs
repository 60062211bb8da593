//! A MySQL -> search engine copy whose source server restarts in the middle of the snapshot
//! read (`cargo test snapshot_restart`): the read reconnects once the server is back and
//! continues after the last row it read; every row is read once and the index ends up with
//! exactly the table's rows. The MySQL -> MySQL case, with a consistent snapshot and a
//! keyless table as well, is `datatrace-mysql/tests/snapshot_restart.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, SinkConfig};
use datatrace::mysql::{table_info, ConnectionConfig, MySqlConnection, MySqlSource, SourceOptions};
use datatrace::{Pipeline, PipelineConfig, RateLimit, RunStatus};
use datatrace_testkit::{engine, unique_name, MariaDb};

/// Rows in the source table (about 9 MB), read at 6,000 rows/s (some 5 s).
const ROWS: u64 = 30_000;
/// The restart comes once the index holds this many documents.
const RESTART_AT: u64 = 3_000;

/// Documents in `index` (0 while it does not exist yet).
async fn docs(index: &str) -> u64 {
    let index = index.to_string();
    tokio::task::spawn_blocking(move || {
        let es = engine();
        if es
            .request("POST", &format!("/{index}/_refresh"), None)
            .status
            != 200
        {
            return 0;
        }
        let reply = es.request("GET", &format!("/{index}/_count"), None);
        reply.json()["count"].as_u64().unwrap_or(0)
    })
    .await
    .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restart_of_the_source_server_mid_copy_to_the_search_engine() {
    let server = Arc::new(MariaDb::dedicated());
    let src = server.create_database("sre_src");
    server.exec(&format!(
        "USE `{src}`;
         CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(400) NOT NULL);
         INSERT INTO t SELECT seq, CONCAT('v', seq, REPEAT('x', 280 + seq % 13)) FROM seq_1_to_{ROWS};"
    ));
    let index = unique_name("sre");
    let conn = MySqlConnection::connect(&ConnectionConfig::new(server.url_for(&src)))
        .await
        .expect("connect");
    let info = table_info(&conn, &src, "t").await.expect("table info");
    let source = Arc::new(
        MySqlSource::new(
            conn,
            info,
            SourceOptions {
                page_rows: 2000,
                ..Default::default()
            },
        )
        .expect("source"),
    );
    let sink = EsSink::connect(
        &EsConnection::new([engine().url()]),
        SinkConfig {
            index: index.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("sink");
    let run = tokio::spawn(
        Pipeline::new(format!("{src}.t"), source.clone(), Arc::new(sink))
            .config(PipelineConfig {
                batch_size: 200,
                rate_limit: RateLimit {
                    records_per_sec: Some(6000.0),
                    bytes_per_sec: None,
                },
                ..Default::default()
            })
            .run(),
    );

    let started = Instant::now();
    loop {
        let n = docs(&index).await;
        assert!(
            !run.is_finished(),
            "the copy ended before the restart ({n} documents)"
        );
        if n >= RESTART_AT {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {n} documents in a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.restart())
        .await
        .expect("restart");
    assert!(
        docs(&index).await < ROWS,
        "the copy was done by the time the server was back: the restart proves nothing"
    );

    let report = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the copy ends within 2 minutes")
        .expect("join")
        .unwrap_or_else(|e| panic!("the copy failed across the restart: {e}"));
    assert_eq!(report.status, RunStatus::Completed);
    assert!(source.retries() >= 1, "no retry counted across the restart");
    assert_eq!(report.read, ROWS, "every row read once");
    assert_eq!(report.written, ROWS);
    // The documents are the rows: as many, the same ids, the same values.
    assert_eq!(docs(&index).await, ROWS);
    let es = engine();
    let reply = es.request(
        "POST",
        &format!("/{index}/_search"),
        Some(r#"{"size": 0, "aggs": {"ids": {"sum": {"field": "id"}}, "min": {"min": {"field": "id"}}, "max": {"max": {"field": "id"}}}}"#),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let aggs = &reply.json()["aggregations"];
    assert_eq!(
        aggs["ids"]["value"].as_f64(),
        Some((ROWS * (ROWS + 1) / 2) as f64)
    );
    assert_eq!(aggs["min"]["value"].as_f64(), Some(1.0));
    assert_eq!(aggs["max"]["value"].as_f64(), Some(ROWS as f64));
    for id in [1, RESTART_AT, ROWS / 2, ROWS] {
        let doc = es.request("GET", &format!("/{index}/_doc/{id}"), None);
        assert_eq!(doc.status, 200, "document {id}: {}", doc.body);
        let want = format!("v{id}{}", "x".repeat(280 + (id % 13) as usize));
        assert_eq!(
            doc.json()["_source"]["v"].as_str(),
            Some(want.as_str()),
            "document {id}"
        );
    }
}
