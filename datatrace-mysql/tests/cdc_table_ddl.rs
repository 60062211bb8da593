//! Table DDL during streaming: TRUNCATE, DROP TABLE and RENAME TABLE (also
//! `ALTER TABLE ... RENAME TO`) of streamed tables become table changes in order with the
//! rows; the MySQL sink applies them (or stops with `fail`, or ignores them), idempotently.

mod cdc;

use std::sync::Arc;
use std::time::Duration;

use cdc::*;
use datatrace_core::{
    CheckpointStore, MemoryCheckpointStore, Pipeline, PipelineConfig, Schema, Sink, TableChange,
    TableChangeKind, TableChanges,
};
use datatrace_mysql::binlog::position::ordinal;
use datatrace_mysql::binlog::BinlogSource;
use datatrace_mysql::{MySqlSink, SinkOptions};

fn kind(c: &TableChange) -> String {
    c.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_ddl_is_captured_in_order_with_the_rows() {
    let src = db().create_database("tddl_src");
    let other = db().create_database("tddl_other");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); \
         CREATE TABLE u (id INT PRIMARY KEY); CREATE TABLE w (id INT PRIMARY KEY); \
         CREATE TABLE x (id INT PRIMARY KEY); CREATE TABLE live (id INT PRIMARY KEY, v VARCHAR(20)); \
         USE `{other}`; CREATE TABLE o (id INT PRIMARY KEY);"
    ));
    let start = now().await;
    exec(&format!(
        "USE `{src}`; INSERT INTO t VALUES (1, 'a'), (2, 'b'); TRUNCATE TABLE t; \
         INSERT INTO t VALUES (3, 'c'); RENAME TABLE t TO t2; INSERT INTO t2 VALUES (4, 'd'); \
         ALTER TABLE t2 RENAME TO t3; INSERT INTO t3 VALUES (5, 'e'); \
         DROP TABLE u, w; TRUNCATE `{other}`.o; RENAME TABLE x TO `{other}`.x; \
         DROP TABLE `{other}`.o; INSERT INTO t3 VALUES (6, 'f');"
    ));
    // Read afterwards: t is gone by the time its rows are decoded (the table map describes
    // them); the changes still come in binlog order.
    let got = capture(opts(&src, &start), None, |c| {
        c.records.len() >= 6 && c.table_changes.len() >= 6
    })
    .await;
    assert_eq!(got.ids(), vec![1, 2, 3, 4, 5, 6]);
    // The table map's FULL metadata names the columns and the primary key.
    for r in &got.records {
        assert_eq!(r.schema.primary_key_names(), ["id"], "{}", r.schema.name());
        assert_eq!(r.schema.columns()[1].name, "v");
    }
    let names: Vec<String> = got
        .records
        .iter()
        .map(|r| r.schema.qualified_name())
        .collect();
    assert_eq!(
        names,
        [
            format!("{src}.t"),
            format!("{src}.t"),
            format!("{src}.t"),
            format!("{src}.t2"),
            format!("{src}.t3"),
            format!("{src}.t3")
        ]
    );
    let changes: Vec<String> = got.table_changes.iter().map(kind).collect();
    assert_eq!(
        changes,
        [
            format!("TRUNCATE {src}.t"),
            format!("RENAME TABLE {src}.t TO {src}.t2"),
            format!("RENAME TABLE {src}.t2 TO {src}.t3"),
            format!("DROP TABLE {src}.u"),
            format!("DROP TABLE {src}.w"),
            // Either name streamed is enough for a rename; `other` is not streamed.
            format!("RENAME TABLE {src}.x TO {other}.x"),
        ]
    );
    assert_eq!(got.table_change_at, vec![2, 3, 4, 5, 5, 5]);
    // Each change carries its query event's position, and comes before that event's
    // checkpoint; rows before it have smaller ordinals, rows after larger.
    for (i, c) in got.table_changes.iter().enumerate() {
        let p = c.position.as_ref().expect("position");
        let ord = p.ordinal.expect("ordinal");
        assert!(p.ts_ms.is_some_and(|t| t > 0), "{p:?}");
        let cp = &got.checkpoints[got.table_change_after_checkpoints[i]];
        assert_eq!(cp.ordinal, Some(ord), "checkpoint after {c}");
        let at = got.table_change_at[i];
        if at > 0 {
            assert!(got.records[at - 1].position.as_ref().unwrap().ordinal < Some(ord));
        }
        if at < got.records.len() {
            assert!(got.records[at].position.as_ref().unwrap().ordinal > Some(ord));
        }
        assert_eq!(c.target, None);
        if let TableChangeKind::Rename { to, .. } = &c.kind {
            assert_eq!(to.columns(), c.schema.columns(), "{c}");
        }
    }
    // The two DROPs of one statement share its position.
    assert_eq!(got.table_changes[3].position, got.table_changes[4].position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_names_the_columns_of_a_table_it_has_read() {
    let src = db().create_database("tddl_live");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))"
    ));
    let start = now().await;
    exec(&format!("USE `{src}`; INSERT INTO t VALUES (1, 'a')"));
    let src2 = src.clone();
    let mut ran = false;
    let got = capture_via(
        connect("mysql").await,
        opts(&src, &start),
        None,
        |c| c.table_changes.len() >= 2,
        move |c| {
            // Once the row is read (the table's shape cached), rename and truncate it.
            if !ran && !c.records.is_empty() {
                ran = true;
                exec(&format!(
                    "USE `{src2}`; ALTER TABLE t RENAME AS t_new; TRUNCATE t_new"
                ));
            }
        },
    )
    .await;
    let c = &got.table_changes[0];
    assert_eq!(kind(c), format!("RENAME TABLE {src}.t TO {src}.t_new"));
    let cols = |s: &Schema| {
        s.columns()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(cols(&c.schema), ["id", "v"]);
    let TableChangeKind::Rename { to, .. } = &c.kind else {
        panic!("{c}")
    };
    assert_eq!(to.namespace(), Some(src.as_str()));
    assert_eq!(cols(to), ["id", "v"]);
    assert_eq!(to.primary_key_names(), ["id"]);
    assert_eq!(kind(&got.table_changes[1]), format!("TRUNCATE {src}.t_new"));
}

/// A MySQL sink into `dst` creating tables, with `policy`.
async fn sink(dst: &str, policy: TableChanges) -> MySqlSink {
    MySqlSink::new(
        connect(dst).await,
        SinkOptions {
            database: Some(dst.to_string()),
            create_table: true,
            ..Default::default()
        },
    )
    .unwrap()
    .table_changes(policy)
}

/// A stream of `src` from `start` into `sink`, with parallel key-partitioned writers.
fn pipeline(
    src_conn: datatrace_mysql::MySqlConnection,
    src: &str,
    start: &datatrace_mysql::BinlogPosition,
    sink: Arc<dyn Sink>,
    store: Arc<dyn CheckpointStore>,
) -> Pipeline {
    Pipeline::new(
        "binlog",
        Arc::new(BinlogSource::new(src_conn, opts(src, start)).unwrap()),
        sink,
    )
    .job("tddl")
    .checkpoints(store)
    .config(PipelineConfig {
        partition_by_key: true,
        sink_concurrency: 3,
        batch_size: 7,
        linger: Duration::from_millis(5),
        checkpoint_interval: Duration::from_millis(20),
        ..Default::default()
    })
}

fn rows(database: &str, table: &str) -> String {
    exec(&format!("SELECT * FROM `{database}`.`{table}` ORDER BY id"))
}

fn tables(database: &str) -> Vec<String> {
    exec(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' ORDER BY TABLE_NAME"
    ))
    .lines()
    .map(str::to_string)
    .collect()
}

fn inserts(table: &str, ids: std::ops::RangeInclusive<i32>) -> String {
    let values: Vec<String> = ids.map(|i| format!("({i}, 'v{i}', {i})")).collect();
    format!("INSERT INTO {table} VALUES {};", values.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mysql_target_follows_truncate_rename_and_drop() {
    let src = db().create_database("tddl_pipe");
    let dst = db().create_database("tddl_pipe_dst");
    exec(&format!(
        "USE `{src}`; CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(40), n INT); \
         CREATE TABLE c (id INT PRIMARY KEY, v VARCHAR(40), n INT); \
         CREATE TABLE d (id INT PRIMARY KEY, v VARCHAR(40), n INT);"
    ));
    let start = now().await;
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let p = pipeline(
        connect(&src).await,
        &src,
        &start,
        Arc::new(sink(&dst, TableChanges::Apply).await),
        store.clone(),
    );
    let cancel = p.canceller();
    let running = tokio::spawn(p.run());
    tokio::time::sleep(Duration::from_millis(300)).await;
    exec(&format!(
        "USE `{src}`; {} {} {} UPDATE a SET v = 'upd' WHERE id < 10;",
        inserts("a", 1..=60),
        inserts("d", 1..=10),
        inserts("c", 1..=10)
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    exec(&format!(
        "USE `{src}`; TRUNCATE TABLE a; {} DELETE FROM a WHERE id = 105; \
         UPDATE a SET n = n + 1 WHERE id > 120;",
        inserts("a", 100..=130)
    ));
    exec(&format!(
        "USE `{src}`; RENAME TABLE a TO b; {} UPDATE b SET v = 'x' WHERE id IN (101, 201); \
         DELETE FROM b WHERE id = 110; DROP TABLE d; {} ALTER TABLE c RENAME TO c2; {} \
         UPDATE c2 SET n = 0 WHERE id < 5;",
        inserts("b", 200..=220),
        inserts("c", 11..=20),
        inserts("c2", 21..=25)
    ));
    let end = now().await;
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        wait_for_checkpoint(&store, "tddl", "binlog", &end),
    )
    .await;
    cancel.cancel();
    let r = running.await.expect("join");
    assert!(waited.is_ok(), "the stream did not catch up: {r:?}");
    r.expect("stream");
    assert_eq!(tables(&src), ["b", "c2"]);
    assert_eq!(tables(&dst), tables(&src));
    assert_eq!(rows(&dst, "b"), rows(&src, "b"));
    assert_eq!(rows(&dst, "c2"), rows(&src, "c2"));
    assert_eq!(rows(&dst, "c2").lines().count(), 25);
    // 31 after the TRUNCATE, one deleted, 21 more, one deleted.
    assert_eq!(rows(&dst, "b").lines().count(), 31 - 1 + 21 - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_stops_before_the_change_and_resumes_at_it() {
    let src = db().create_database("tddl_fail");
    let dst = db().create_database("tddl_fail_dst");
    exec(&format!(
        "USE `{src}`; CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(40), n INT);"
    ));
    let start = now().await;
    exec(&format!("USE `{src}`; {}", inserts("a", 1..=5)));
    let before = now().await;
    exec(&format!(
        "USE `{src}`; TRUNCATE TABLE a; {}",
        inserts("a", 6..=8)
    ));
    let end = now().await;
    // Where the TRUNCATE's query event ends (other tests write to the binlog meanwhile).
    let events = exec(&format!(
        "SHOW BINLOG EVENTS IN '{}' FROM {}",
        before.file, before.pos
    ));
    let truncated_at = events
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[5].contains(&format!("`{src}`; TRUNCATE TABLE a")))
        .map(|f| ordinal(&before.file, f[4].parse().expect("End_log_pos")))
        .unwrap_or_else(|| panic!("no TRUNCATE event after {before:?}:\n{events}"));
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let run = |policy| {
        let (src, dst, store, start) = (src.clone(), dst.clone(), store.clone(), start.clone());
        async move {
            let p = pipeline(
                connect(&src).await,
                &src,
                &start,
                Arc::new(sink(&dst, policy).await),
                store,
            );
            let cancel = p.canceller();
            let running = tokio::spawn(p.run());
            tokio::time::timeout(Duration::from_secs(120), async {
                loop {
                    if running.is_finished() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .ok();
            cancel.cancel();
            running.await.expect("join")
        }
    };
    let checkpoint = || async {
        store
            .load("tddl", "binlog")
            .await
            .unwrap()
            .and_then(|c| c.parts.first().and_then(|p| p.position.clone()))
            .and_then(|p| p.ordinal)
            .unwrap_or(0)
    };
    for _ in 0..2 {
        let e = run(TableChanges::Fail).await.expect_err("must stop");
        let m = e.to_string();
        assert!(
            m.contains(&format!(
                "TRUNCATE {src}.a: target table {dst}.a is left as it is"
            )) && m.contains("table_changes = \"fail\"")
                && m.contains("table_changes = \"apply\"")
                && m.contains("table_changes = \"ignore\""),
            "{m}"
        );
        // The rows before the change are written, nothing after it; the checkpoint is not
        // past it, so a second run stops at the same change.
        let written = rows(&dst, "a");
        assert_eq!(written.lines().count(), 5, "{written}");
        assert!(checkpoint().await < truncated_at);
    }
    // Applying it continues the stream past the change.
    let p = pipeline(
        connect(&src).await,
        &src,
        &start,
        Arc::new(sink(&dst, TableChanges::Apply).await),
        store.clone(),
    );
    let cancel = p.canceller();
    let running = tokio::spawn(p.run());
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        wait_for_checkpoint(&store, "tddl", "binlog", &end),
    )
    .await;
    cancel.cancel();
    let r = running.await.expect("join");
    assert!(waited.is_ok(), "the stream did not catch up: {r:?}");
    assert_eq!(rows(&dst, "a"), rows(&src, "a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_keeps_the_target_and_goes_on() {
    let src = db().create_database("tddl_ign");
    let dst = db().create_database("tddl_ign_dst");
    exec(&format!(
        "USE `{src}`; CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(40), n INT);"
    ));
    let start = now().await;
    exec(&format!(
        "USE `{src}`; {} TRUNCATE TABLE a; {}",
        inserts("a", 1..=5),
        inserts("a", 6..=8)
    ));
    let end = now().await;
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let p = pipeline(
        connect(&src).await,
        &src,
        &start,
        Arc::new(sink(&dst, TableChanges::Ignore).await),
        store.clone(),
    );
    let cancel = p.canceller();
    let running = tokio::spawn(p.run());
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        wait_for_checkpoint(&store, "tddl", "binlog", &end),
    )
    .await;
    cancel.cancel();
    let r = running.await.expect("join");
    assert!(waited.is_ok(), "the stream did not catch up: {r:?}");
    let ids = exec(&format!(
        "SELECT GROUP_CONCAT(id ORDER BY id) FROM `{dst}`.a"
    ));
    assert_eq!(ids.trim(), "1,2,3,4,5,6,7,8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_change_again_is_harmless() {
    let dst = db().create_database("tddl_idem");
    exec(&format!(
        "USE `{dst}`; CREATE TABLE p (id INT PRIMARY KEY); INSERT INTO p VALUES (1), (2); \
         CREATE TABLE q (id INT PRIMARY KEY); CREATE TABLE r (id INT PRIMARY KEY);"
    ));
    let s = sink(&dst, TableChanges::Apply).await;
    let schema = |name: &str| Arc::new(Schema::new(name, Vec::new()).with_namespace("src"));
    let truncate = TableChange::new(TableChangeKind::Truncate, schema("p"));
    let rename = |from: &str, to: &str| {
        TableChange::new(
            TableChangeKind::Rename {
                to: schema(to),
                to_target: None,
            },
            schema(from),
        )
    };
    let drop = TableChange::new(TableChangeKind::Drop, schema("p2"));
    for c in [&truncate, &truncate] {
        s.table_change(c).await.expect("truncate");
    }
    assert_eq!(rows(&dst, "p"), "");
    for _ in 0..2 {
        s.table_change(&rename("p", "p2")).await.expect("rename");
        assert_eq!(tables(&dst), ["p2", "q", "r"]);
    }
    for _ in 0..2 {
        s.table_change(&drop).await.expect("drop");
        assert_eq!(tables(&dst), ["q", "r"]);
    }
    // A TRUNCATE replayed after a later DROP: nothing to empty.
    s.table_change(&truncate)
        .await
        .expect("truncate of a missing table");
    // Neither name exists: nothing to do.
    s.table_change(&rename("p", "p3"))
        .await
        .expect("rename of a missing table");
    // Both exist: refused, naming both, nothing overwritten.
    let e = s
        .table_change(&rename("q", "r"))
        .await
        .expect_err("must refuse");
    let datatrace_core::SinkError::Fatal(m) = e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains(&format!("{dst}.q")) && m.contains(&format!("{dst}.r")),
        "{m}"
    );
    assert_eq!(tables(&dst), ["q", "r"]);
    // A routed target wins over the schema's name.
    exec(&format!("USE `{dst}`; INSERT INTO q VALUES (7)"));
    let mut routed = TableChange::new(TableChangeKind::Truncate, schema("whatever"));
    routed.target = Some("q".into());
    s.table_change(&routed).await.expect("routed truncate");
    assert_eq!(rows(&dst, "q"), "");
    let mut routed = rename("x", "y");
    routed.target = Some("q".into());
    if let TableChangeKind::Rename { to_target, .. } = &mut routed.kind {
        *to_target = Some("q_renamed".into());
    }
    s.table_change(&routed).await.expect("routed rename");
    assert_eq!(tables(&dst), ["q_renamed", "r"]);
    // Ignore leaves the target; fail names the change, the target and the setting.
    exec(&format!("USE `{dst}`; INSERT INTO r VALUES (1)"));
    let r = TableChange::new(TableChangeKind::Truncate, schema("r"));
    sink(&dst, TableChanges::Ignore)
        .await
        .table_change(&r)
        .await
        .expect("ignored");
    assert_eq!(rows(&dst, "r"), "1\n");
    let e = sink(&dst, TableChanges::Fail)
        .await
        .table_change(&r)
        .await
        .expect_err("fail");
    let datatrace_core::SinkError::Fatal(m) = e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains(&format!(
            "TRUNCATE src.r: target table {dst}.r is left as it is because table_changes = \"fail\""
        )),
        "{m}"
    );
    assert_eq!(rows(&dst, "r"), "1\n");
}
