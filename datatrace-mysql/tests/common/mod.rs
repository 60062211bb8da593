//! Helpers shared by the integration tests (real MariaDB from the testkit).
#![allow(dead_code)]

use std::sync::Arc;

use datatrace_core::{CheckpointStore, MemoryCheckpointStore, Pipeline, PipelineConfig, RunReport};
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};

pub fn db() -> &'static datatrace_testkit::MariaDb {
    datatrace_testkit::mariadb()
}

pub fn exec(sql: &str) -> String {
    db().exec(sql)
}

pub async fn connect(database: &str) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(db().url_for(database)))
        .await
        .expect("connect")
}

/// A source for `database.table`.
pub async fn source(database: &str, table: &str, opts: SourceOptions) -> Arc<MySqlSource> {
    let conn = connect(database).await;
    let info = table_info(&conn, database, table)
        .await
        .expect("table info");
    Arc::new(MySqlSource::new(conn, info, opts).expect("source"))
}

/// A sink into `database`.
pub async fn sink(database: &str, opts: SinkOptions) -> Arc<MySqlSink> {
    let conn = connect(database).await;
    Arc::new(
        MySqlSink::new(
            conn,
            SinkOptions {
                database: Some(database.to_string()),
                ..opts
            },
        )
        .expect("sink"),
    )
}

/// Copies `src.table` into `dst` (same table name) with a pipeline.
pub async fn copy(
    src: &str,
    table: &str,
    dst: &str,
    source_opts: SourceOptions,
    sink_opts: SinkOptions,
    config: PipelineConfig,
) -> datatrace_core::Result<RunReport> {
    copy_with(
        src,
        table,
        dst,
        source_opts,
        sink_opts,
        config,
        Arc::new(MemoryCheckpointStore::new()),
    )
    .await
}

pub async fn copy_with(
    src: &str,
    table: &str,
    dst: &str,
    source_opts: SourceOptions,
    sink_opts: SinkOptions,
    config: PipelineConfig,
    store: Arc<dyn CheckpointStore>,
) -> datatrace_core::Result<RunReport> {
    let s = source(src, table, source_opts).await;
    let k = sink(dst, sink_opts).await;
    Pipeline::new(format!("{src}.{table}"), s, k)
        .config(config)
        .checkpoints(store)
        .run()
        .await
}

/// `CHECKSUM TABLE` of `db.table`.
pub fn checksum(database: &str, table: &str) -> String {
    let out = exec(&format!("CHECKSUM TABLE `{database}`.`{table}`"));
    out.split('\t').nth(1).unwrap_or("").trim().to_string()
}

/// Every row as text, ordered by `order`.
pub fn dump(database: &str, table: &str, order: &str) -> String {
    exec(&format!(
        "SELECT * FROM `{database}`.`{table}` ORDER BY {order}"
    ))
}

/// Asserts two tables hold identical rows.
pub fn assert_same(a_db: &str, b_db: &str, table: &str, order: &str) {
    let (a, b) = (dump(a_db, table, order), dump(b_db, table, order));
    if a != b {
        let al: Vec<&str> = a.lines().collect();
        let bl: Vec<&str> = b.lines().collect();
        for (i, (x, y)) in al.iter().zip(&bl).enumerate() {
            assert_eq!(
                x, y,
                "row {i} differs between {a_db}.{table} and {b_db}.{table}"
            );
        }
        assert_eq!(al.len(), bl.len(), "row counts differ for {table}");
    }
    assert_eq!(
        checksum(a_db, table),
        checksum(b_db, table),
        "CHECKSUM TABLE differs for {table}"
    );
}

/// Creates the same table (by `SHOW CREATE TABLE`) in `dst`.
pub fn clone_table(src: &str, dst: &str, table: &str) {
    let out = exec(&format!("SHOW CREATE TABLE `{src}`.`{table}`"));
    let ddl = out
        .split_once('\t')
        .map(|(_, d)| d)
        .unwrap_or("")
        .replace("\\n", "\n");
    exec(&format!("USE `{dst}`; {ddl}"));
}

/// Reads every part of a source outside a pipeline.
pub async fn read_all(s: &Arc<MySqlSource>) -> Vec<datatrace_core::Record> {
    use datatrace_core::{Emitted, Emitter, Source};
    let parts = s.split(16).await.expect("split");
    let mut out = Vec::new();
    for p in parts {
        let (mut em, mut rx) = Emitter::for_test(100, 1_000_000);
        let reader = {
            let s = s.clone();
            tokio::spawn(async move {
                let r = s.read(&p, None, &mut em).await;
                em.flush().await.expect("flush");
                r
            })
        };
        let mut got = Vec::new();
        while let Some(m) = rx.recv().await {
            if let Emitted::Records(r) = m {
                got.extend(r);
            }
        }
        reader.await.expect("join").expect("read");
        out.extend(got);
    }
    out
}
