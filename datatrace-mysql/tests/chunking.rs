//! Chunk planning and parallel reads: every row exactly once whatever the key.

mod common;

use std::collections::HashSet;

use common::*;
use datatrace_core::{PipelineConfig, RunStatus, Source};
use datatrace_mysql::{SinkOptions, SourceOptions, WriteMode};

fn parallel() -> PipelineConfig {
    PipelineConfig {
        batch_size: 200,
        read_parallelism: 4,
        sink_concurrency: 3,
        max_parts: 16,
        ..Default::default()
    }
}

fn small_chunks() -> SourceOptions {
    SourceOptions {
        chunk_rows: 250,
        page_rows: 97,
        checkpoint_rows: 50,
        ..Default::default()
    }
}

/// Copies with plain INSERTs (a row read twice would be a duplicate-key error) and checks
/// the target equals the source; returns the number of parts.
async fn copy_exactly_once(src: &str, table: &str, order: &str) -> usize {
    let dst = db().create_database("chunk_dst");
    clone_table(src, &dst, table);
    let s = source(src, table, small_chunks()).await;
    let parts = s.split(16).await.expect("split").len();
    // Reading outside a pipeline: each key once.
    let rows = read_all(&s).await;
    let keys: HashSet<String> = rows.iter().map(|r| r.key_string("|")).collect();
    assert_eq!(keys.len(), rows.len(), "a key was read twice in {table}");
    let count: usize = exec(&format!("SELECT COUNT(*) FROM `{src}`.`{table}`"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rows.len(), count, "rows missing in {table}");
    let report = copy(
        src,
        table,
        &dst,
        small_chunks(),
        SinkOptions {
            mode: WriteMode::Insert,
            ..Default::default()
        },
        parallel(),
    )
    .await
    .expect("copy");
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.written as usize, count);
    assert_same(src, &dst, table, order);
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn integer_keys_with_big_gaps() {
    let src = db().create_database("chunk_gaps");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('a', seq) FROM seq_1_to_1000;
         INSERT INTO t SELECT seq * 1000000000, 'far' FROM seq_2_to_400;
         INSERT INTO t VALUES (9223372036854775807, 'max'), (1500, 'gap');"
    ));
    let parts = copy_exactly_once(&src, "t", "id").await;
    assert!(parts >= 5, "expected several chunks, got {parts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dense_and_negative_keys() {
    let src = db().create_database("chunk_neg");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v INT);
         INSERT INTO t SELECT CAST(seq AS SIGNED) - 1000, seq FROM seq_0_to_1999;
         CREATE TABLE x (id INT PRIMARY KEY, v INT);
         INSERT INTO x SELECT CAST(seq AS SIGNED) - 1000, seq FROM seq_0_to_1999;
         INSERT INTO x VALUES (-2147483648, 1), (2147483647, 2);"
    ));
    // Dense: arithmetic ranges; with the extremes: boundary sampling.
    let parts = copy_exactly_once(&src, "t", "id").await;
    assert!(parts >= 5, "{parts}");
    let parts = copy_exactly_once(&src, "x", "id").await;
    assert!(parts >= 5, "{parts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsigned_keys_near_the_top() {
    let src = db().create_database("chunk_u64");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, v INT);
         INSERT INTO t SELECT 18446744073709551615 - seq, seq FROM seq_0_to_999;
         INSERT INTO t VALUES (0, 0), (1, 1);"
    ));
    let parts = copy_exactly_once(&src, "t", "id").await;
    assert!(parts >= 3, "{parts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn composite_keys() {
    let src = db().create_database("chunk_comp");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (region VARCHAR(10), n INT, d DATE, v TEXT, PRIMARY KEY (region, n, d));
         INSERT INTO t SELECT ELT(1 + seq % 3, 'eu', 'us', 'ap'), seq % 100, DATE_ADD('2024-01-01', INTERVAL seq % 7 DAY), REPEAT('v', seq % 50)
           FROM seq_1_to_2100;"
    ));
    let parts = copy_exactly_once(&src, "t", "region, n, d").await;
    assert!(parts >= 4, "{parts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn string_keys() {
    let src = db().create_database("chunk_str");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (k VARCHAR(40) PRIMARY KEY, v INT) DEFAULT CHARSET=utf8mb4;
         INSERT INTO t SELECT CONCAT(ELT(1 + seq % 5, 'a', 'B', 'é', '🎉', 'z'), '-', seq), seq FROM seq_1_to_1500;
         INSERT INTO t VALUES ('', 0), (' x', 1), ('it''s', 2);"
    ));
    let parts = copy_exactly_once(&src, "t", "k").await;
    assert!(parts >= 4, "{parts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_and_one_row_tables() {
    let src = db().create_database("chunk_tiny");
    exec(&format!(
        "USE `{src}`; CREATE TABLE empty_t (id INT PRIMARY KEY); CREATE TABLE one_t (id INT PRIMARY KEY, v INT);
         INSERT INTO one_t VALUES (-7, 1);"
    ));
    assert_eq!(copy_exactly_once(&src, "empty_t", "id").await, 1);
    assert_eq!(copy_exactly_once(&src, "one_t", "id").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_without_key_copy_in_one_scan() {
    let src = db().create_database("chunk_nokey");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (a INT, b VARCHAR(10));
         INSERT INTO t SELECT seq % 10, 'x' FROM seq_1_to_700;"
    ));
    let s = source(&src, "t", small_chunks()).await;
    assert_eq!(s.table().key_source, datatrace_mysql::KeySource::None);
    let parts = s.split(16).await.unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].id, "scan");
    let dst = db().create_database("chunk_nokey_dst");
    clone_table(&src, &dst, "t");
    copy(
        &src,
        "t",
        &dst,
        small_chunks(),
        SinkOptions::default(),
        parallel(),
    )
    .await
    .unwrap();
    assert_same(&src, &dst, "t", "a, b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unique_key_or_configured_columns_replace_a_missing_primary_key() {
    let src = db().create_database("chunk_uk");
    exec(&format!(
        "USE `{src}`; CREATE TABLE u (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY uk (code));
         INSERT INTO u SELECT CONCAT('c', seq), seq FROM seq_1_to_600;
         CREATE TABLE k (a INT NOT NULL, b INT NOT NULL, v INT);
         INSERT INTO k SELECT seq, seq % 3, seq FROM seq_1_to_600;"
    ));
    let s = source(&src, "u", small_chunks()).await;
    assert_eq!(
        s.table().key_source,
        datatrace_mysql::KeySource::Unique("uk".into())
    );
    assert!(s.split(16).await.unwrap().len() > 1);
    copy_exactly_once(&src, "u", "code").await;
    let s = source(
        &src,
        "k",
        SourceOptions {
            key_columns: vec!["a".into()],
            ..small_chunks()
        },
    )
    .await;
    assert_eq!(s.table().schema.primary_key_names(), vec!["a"]);
    assert!(s.split(16).await.unwrap().len() > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_apply_to_every_chunk() {
    let src = db().create_database("chunk_filter");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v INT);
         INSERT INTO t SELECT seq, seq % 10 FROM seq_1_to_3000;"
    ));
    let s = source(
        &src,
        "t",
        SourceOptions {
            filter: Some("v = 3".into()),
            ..small_chunks()
        },
    )
    .await;
    let rows = read_all(&s).await;
    assert_eq!(rows.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn date_keys_with_zero_dates() {
    let src = db().create_database("chunk_dates");
    exec(&format!(
        "USE `{src}`; SET sql_mode=''; CREATE TABLE t (d DATE, n INT, v INT, PRIMARY KEY (d, n));
         INSERT INTO t SELECT '2000-01-01' + INTERVAL (seq % 400) DAY, seq, seq FROM seq_1_to_1200;
         INSERT INTO t VALUES ('0000-00-00', 1, 1), ('0000-00-00', 2, 2), ('2024-00-00', 1, 3);"
    ));
    // Zero dates in a key stay text (comparable), whatever `zero_date` says.
    let parts = copy_exactly_once(&src, "t", "d, n").await;
    assert!(parts >= 4, "{parts}");
    // A page ending on a zero-date key continues after it.
    let s = source(
        &src,
        "t",
        SourceOptions {
            page_rows: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(read_all(&s).await.len(), 1203);
}
