//! Consistent snapshots: every chunk sees one point in time, and its binlog position is
//! recorded (for the CDC handoff), also in the parts so a resumed unit knows it.

mod common;

use std::sync::Arc;

use common::*;
use datatrace_core::{Pipeline, PipelineConfig, Source};
use datatrace_mysql::chunk::ChunkSpec;
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSource, SinkOptions, SourceOptions,
};

fn opts() -> SourceOptions {
    SourceOptions {
        consistent_snapshot: true,
        snapshot_connections: 3,
        chunk_rows: 500,
        page_rows: 200,
        ..Default::default()
    }
}

fn setup(prefix: &str) -> (String, String, String) {
    let src = db().create_database(prefix);
    let exp = db().create_database(&format!("{prefix}_exp"));
    let dst = db().create_database(&format!("{prefix}_dst"));
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n INT);
         INSERT INTO t SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_3000;"
    ));
    clone_table(&src, &exp, "t");
    clone_table(&src, &dst, "t");
    exec(&format!("INSERT INTO `{exp}`.t SELECT * FROM `{src}`.t"));
    (src, exp, dst)
}

fn change_everything(src: &str) {
    exec(&format!(
        "USE `{src}`; INSERT INTO t SELECT seq, 'new', seq FROM seq_3001_to_3500;
         DELETE FROM t WHERE id <= 100; UPDATE t SET v = 'changed' WHERE id BETWEEN 500 AND 2600;"
    ));
}

async fn copy_from(s: Arc<MySqlSource>, dst: &str) {
    let k = sink(dst, SinkOptions::default()).await;
    Pipeline::new("snap", s, k)
        .config(PipelineConfig {
            read_parallelism: 3,
            batch_size: 100,
            ..Default::default()
        })
        .run()
        .await
        .expect("copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_chunks_see_one_point_in_time_and_its_binlog_position() {
    let (src, exp, dst) = setup("snap");
    let s = source(&src, "t", opts()).await;
    let pos = s.begin_snapshot().await.unwrap().expect("binlog position");
    assert!(pos.file.starts_with("binlog") && pos.pos > 0, "{pos:?}");
    let gtid = pos.gtid.clone().expect("gtid");
    assert_eq!(gtid.split('-').count(), 3, "{gtid}");
    // The position is an event boundary the CDC reader can start from.
    exec(&format!(
        "SHOW BINLOG EVENTS IN '{}' FROM {} LIMIT 1",
        pos.file, pos.pos
    ));
    change_everything(&src);
    // Our own changes come after the recorded position.
    let events = exec(&format!(
        "SHOW BINLOG EVENTS IN '{}' FROM {}",
        pos.file, pos.pos
    ));
    assert!(
        events.contains(&src),
        "changes after the snapshot are not after its position"
    );
    let parts = s.split(16).await.unwrap();
    assert!(parts.len() >= 5);
    for p in &parts {
        assert_eq!(
            ChunkSpec::from_part(p).unwrap().snapshot.as_ref(),
            Some(&pos)
        );
    }
    copy_from(s.clone(), &dst).await;
    assert_same(&exp, &dst, "t", "id");
    assert_eq!(s.snapshot_position(), Some(pos));
    s.end_snapshot().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_reload_privilege_one_session_keeps_it_consistent() {
    let (src, exp, dst) = setup("snap_ro");
    let user = datatrace_testkit::unique_name("snap");
    let mut sql = String::new();
    for host in ["%", "localhost", "127.0.0.1"] {
        sql.push_str(&format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw'; GRANT SELECT ON `{src}`.* TO '{user}'@'{host}';"
        ));
    }
    exec(&sql);
    let url = format!("mysql://{user}:pw@{}:{}/{src}", db().host(), db().port());
    let conn = MySqlConnection::connect(&ConnectionConfig::new(url))
        .await
        .unwrap();
    let info = table_info(&conn, &src, "t").await.unwrap();
    let s = Arc::new(MySqlSource::new(conn, info, opts()).unwrap());
    let pos = s
        .begin_snapshot()
        .await
        .unwrap()
        .expect("binlog position from the session");
    assert!(pos.pos > 0);
    change_everything(&src);
    copy_from(s.clone(), &dst).await;
    assert_same(&exp, &dst, "t", "id");
}
