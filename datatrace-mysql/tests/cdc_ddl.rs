//! DDL during streaming: the schema cache follows ALTER TABLE ADD / MODIFY / DROP / RENAME
//! COLUMN; the MySQL sink applies added and changed columns (or stops with `fail`); the
//! Elasticsearch sink extends the index mapping; events older than the current schema
//! (a resumed stream) decode with the columns they had.

mod cdc;

use std::sync::Arc;
use std::time::Duration;

use cdc::*;
use datatrace_core::{
    CheckpointStore, MemoryCheckpointStore, Pipeline, PipelineConfig, Sink, Value,
};
use datatrace_mysql::binlog::BinlogSource;
use datatrace_mysql::schema_change::SchemaChanges;
use datatrace_mysql::{MySqlSink, SinkOptions};

const DDL_SCRIPT: &str = "INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2); \
    ALTER TABLE t ADD COLUMN extra INT; \
    INSERT INTO t VALUES (3, 'c', 3, 30); UPDATE t SET extra = 10 WHERE id = 1; \
    ALTER TABLE t MODIFY COLUMN v VARCHAR(200); \
    INSERT INTO t VALUES (4, REPEAT('long', 40), 4, 40); \
    ALTER TABLE t DROP COLUMN n; \
    INSERT INTO t VALUES (5, 'e', 50); \
    ALTER TABLE t RENAME COLUMN extra TO bonus; \
    UPDATE t SET bonus = bonus + 1;";

/// Streams `src` into `sink` while DDL_SCRIPT runs; returns the stream's result.
async fn stream_ddl(
    src: &str,
    sink: Arc<dyn Sink>,
) -> datatrace_core::Result<datatrace_core::RunReport> {
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n INT)"
    ));
    let start = now().await;
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let p = Pipeline::new(
        "binlog",
        Arc::new(BinlogSource::new(connect(src).await, opts(src, &start)).unwrap()),
        sink,
    )
    .job("ddl")
    .checkpoints(store.clone())
    .config(PipelineConfig {
        partition_by_key: true,
        linger: Duration::from_millis(10),
        checkpoint_interval: Duration::from_millis(20),
        ..Default::default()
    });
    let cancel = p.canceller();
    let running = tokio::spawn(p.run());
    tokio::time::sleep(Duration::from_millis(300)).await;
    exec(&format!("USE `{src}`; {DDL_SCRIPT}"));
    let end = now().await;
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        wait_for_checkpoint(&store, "ddl", "binlog", &end),
    )
    .await;
    cancel.cancel();
    let r = running.await.expect("join");
    if waited.is_err() && r.is_ok() {
        panic!("the stream did not catch up: {r:?}");
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mysql_target_follows_added_changed_and_renamed_columns() {
    let src = db().create_database("ddl_src");
    let dst = db().create_database("ddl_dst");
    let sink = MySqlSink::new(
        connect(&dst).await,
        SinkOptions {
            database: Some(dst.clone()),
            create_table: true,
            ..Default::default()
        },
    )
    .unwrap()
    .schema_changes(SchemaChanges::Apply);
    stream_ddl(&src, Arc::new(sink)).await.expect("stream");
    // Every source column, in the target, with the source's values.
    let q = |d: &str| exec(&format!("SELECT id, v, bonus FROM `{d}`.t ORDER BY id"));
    assert_eq!(q(&src), q(&dst));
    let ty = exec(&format!(
        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{dst}' AND TABLE_NAME = 't' AND COLUMN_NAME = 'v'"
    ));
    assert_eq!(ty.trim(), "varchar(200)");
    // Dropped (n) and renamed-away (extra) columns stay in the target with their old data.
    assert_eq!(
        exec(&format!("SELECT n, extra FROM `{dst}`.t WHERE id = 2")).trim(),
        "2\tNULL"
    );
    assert_eq!(
        exec(&format!("SELECT n, extra FROM `{dst}`.t WHERE id = 3")).trim(),
        "3\t30"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mysql_target_can_refuse_schema_changes() {
    let src = db().create_database("ddl_fail");
    let dst = db().create_database("ddl_fail_dst");
    let sink = MySqlSink::new(
        connect(&dst).await,
        SinkOptions {
            database: Some(dst.clone()),
            create_table: true,
            ..Default::default()
        },
    )
    .unwrap()
    .schema_changes(SchemaChanges::Fail);
    let e = stream_ddl(&src, Arc::new(sink))
        .await
        .expect_err("must stop");
    let m = e.to_string();
    // Which change is met first depends on whether the stream reads the events before or
    // after the DDL ran (the table shape is read when its first event is decoded).
    assert!(
        m.contains(&format!("{dst}.t"))
            && m.contains("source schema changed")
            && m.contains("schema_changes = \"fail\""),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elasticsearch_mapping_is_extended() {
    use datatrace_es::{ConnectionConfig, EsSink, SinkConfig, VersionSource};
    let src = db().create_database("ddl_es");
    let prefix = datatrace_testkit::unique_name("ddl");
    let cfg = SinkConfig {
        index: format!("{prefix}-{{table}}"),
        version: Some(VersionSource::Position),
        ..Default::default()
    };
    let sink = EsSink::connect(
        &ConnectionConfig::new([datatrace_testkit::engine().url()]),
        cfg,
    )
    .await
    .unwrap();
    stream_ddl(&src, Arc::new(sink)).await.expect("stream");
    let os = datatrace_testkit::engine();
    let index = format!("{prefix}-t");
    let m: serde_json::Value = os
        .request("GET", &format!("/{index}/_mapping"), None)
        .json();
    let props = &m[&index]["mappings"]["properties"];
    for f in ["id", "v", "n", "extra", "bonus"] {
        assert!(props.get(f).is_some(), "{f} not mapped: {props}");
    }
    assert_eq!(props["bonus"]["type"], "long", "{props}");
    os.request("POST", &format!("/{index}/_refresh"), None);
    let doc: serde_json::Value = os.request("GET", &format!("/{index}/_doc/1"), None).json();
    assert_eq!(doc["_source"]["bonus"], 11, "{doc}");
    let doc: serde_json::Value = os.request("GET", &format!("/{index}/_doc/5"), None).json();
    assert_eq!(doc["_source"]["v"], "e", "{doc}");
    assert!(doc["_source"].get("n").is_none(), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_events_decode_with_the_columns_they_had() {
    let src = db().create_database("ddl_old");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n INT)"
    ));
    let start = now().await;
    exec(&format!("USE `{src}`; {DDL_SCRIPT}"));
    // Read afterwards: the current table has (id, v, bonus); the events are older.
    let got = capture(opts(&src, &start), None, |c| c.records.len() >= 10).await;
    let cols = |i: usize| {
        got.records[i]
            .schema
            .columns()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    // Before ADD COLUMN extra (renamed bonus since): the columns the event has, `n` (dropped
    // since) included, typed from the table map.
    assert_eq!(cols(0), "id,v,n");
    assert_eq!(
        got.records[0].values,
        vec![Value::Int(1), Value::from("a"), Value::Int(1)]
    );
    let third = got
        .records
        .iter()
        .find(|r| r.values[0] == Value::Int(3))
        .unwrap();
    assert_eq!(
        third
            .schema
            .columns()
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["id", "v", "n", "extra"]
    );
    assert_eq!(third.get("extra"), Some(&Value::Int(30)));
    // After the rename: the current shape.
    let last = got.records.last().unwrap();
    assert_eq!(cols(got.records.len() - 1), "id,v,bonus");
    assert_eq!(last.values[0], Value::Int(5));
    assert_eq!(last.get("bonus"), Some(&Value::Int(51)));
    assert!(got
        .records
        .iter()
        .all(|r| r.values.len() == r.schema.columns().len()));
}
