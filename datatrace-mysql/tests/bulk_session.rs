//! Session settings of the bulk path: `unique_checks = 0, foreign_key_checks = 0` only on
//! tables the sink created or emptied in this run that have no unique or foreign key to check
//! (`bulk_session`, the default), and `sql_log_bin = 0` only when asked (`skip_binlog`).
//! On a dedicated MariaDB with its general log in a table, to see every session's statements.

use std::sync::Arc;

use datatrace_core::{Pipeline, PipelineConfig};
use datatrace_mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};
use datatrace_testkit::MariaDb;

async fn connect(m: &MariaDb, db: &str) -> MySqlConnection {
    MySqlConnection::connect(&ConnectionConfig::new(m.url_for(db)))
        .await
        .expect("connect")
}

/// Copies `s.t` into `dst.t`; returns the rows that went through LOAD DATA.
async fn copy(m: &MariaDb, dst: &str, opts: SinkOptions) -> u64 {
    let src = connect(m, "s").await;
    let info = table_info(&src, "s", "t").await.expect("table");
    let source = Arc::new(MySqlSource::new(src, info, SourceOptions::default()).unwrap());
    let sink = Arc::new(
        MySqlSink::new(
            connect(m, dst).await,
            SinkOptions {
                database: Some(dst.into()),
                ..opts
            },
        )
        .unwrap(),
    );
    let report = Pipeline::new(format!("{dst}.t"), source, sink.clone())
        .config(PipelineConfig {
            batch_size: 100,
            ..Default::default()
        })
        .run()
        .await
        .expect("copy");
    assert_eq!(report.written, 500);
    sink.loaded_rows()
}

/// Statements of the general log since the last call that start with `prefix`.
fn logged(m: &MariaDb, prefix: &str) -> u64 {
    let n = m
        .exec(&format!(
            "SELECT COUNT(*) FROM mysql.general_log WHERE argument LIKE '{prefix}%'"
        ))
        .trim()
        .parse()
        .unwrap();
    m.exec("TRUNCATE TABLE mysql.general_log");
    n
}

/// Table map events of `db.t` in the current binlog.
fn binlogged(m: &MariaDb, db: &str) -> usize {
    let status = m.exec("SHOW MASTER STATUS");
    let file = status.split('\t').next().unwrap().trim().to_string();
    m.exec(&format!("SHOW BINLOG EVENTS IN '{file}'"))
        .lines()
        .filter(|l| l.contains(&format!("({db}.t)")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relaxed_checks_on_fresh_tables_only_and_binlog_skipped_only_when_asked() {
    let m = MariaDb::dedicated();
    m.exec(
        "CREATE DATABASE s; USE s; CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL);
         INSERT INTO s.t SELECT seq, CONCAT('v', seq) FROM seq_1_to_500;
         SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1",
    );
    let relaxed = "SET SESSION unique_checks = 0, foreign_key_checks = 0";
    logged(&m, relaxed);

    // Created by the sink: relaxed (nothing to check), restored after each batch.
    m.exec("CREATE DATABASE created");
    let create = SinkOptions {
        create_table: true,
        ..Default::default()
    };
    assert_eq!(copy(&m, "created", create.clone()).await, 500);
    assert_eq!(logged(&m, relaxed), 5, "one per batch");

    // An existing table the job does not empty: never.
    m.exec("CREATE DATABASE kept; CREATE TABLE kept.t LIKE s.t");
    assert_eq!(copy(&m, "kept", SinkOptions::default()).await, 500);
    assert_eq!(logged(&m, relaxed), 0);

    // Emptied by the job (truncate): relaxed.
    m.exec("CREATE DATABASE emptied; CREATE TABLE emptied.t LIKE s.t; INSERT INTO emptied.t VALUES (9999, 'old')");
    let truncate = SinkOptions {
        truncate: true,
        ..Default::default()
    };
    assert_eq!(copy(&m, "emptied", truncate.clone()).await, 500);
    assert_eq!(logged(&m, relaxed), 5);

    // Emptied, but with a secondary unique key to check: not relaxed.
    m.exec("CREATE DATABASE unique_kept; CREATE TABLE unique_kept.t LIKE s.t; ALTER TABLE unique_kept.t ADD UNIQUE KEY (v)");
    copy(&m, "unique_kept", truncate).await;
    assert_eq!(logged(&m, relaxed), 0);

    // bulk_session = false: never.
    m.exec("CREATE DATABASE plain");
    copy(
        &m,
        "plain",
        SinkOptions {
            bulk_session: false,
            ..create.clone()
        },
    )
    .await;
    assert_eq!(logged(&m, relaxed), 0);

    // The binlog has the copied rows unless skip_binlog asks otherwise.
    m.exec("FLUSH BINARY LOGS; CREATE DATABASE nolog");
    copy(
        &m,
        "nolog",
        SinkOptions {
            skip_binlog: true,
            ..create.clone()
        },
    )
    .await;
    assert_eq!(
        logged(&m, &format!("{relaxed}, sql_log_bin = 0")),
        5,
        "one per batch"
    );
    assert_eq!(binlogged(&m, "nolog"), 0);
    m.exec("CREATE DATABASE logged");
    copy(&m, "logged", create).await;
    assert!(binlogged(&m, "logged") >= 5);
    for d in ["created", "kept", "emptied", "plain", "nolog", "logged"] {
        assert_eq!(
            m.exec(&format!("CHECKSUM TABLE {d}.t")).split('\t').nth(1),
            m.exec("CHECKSUM TABLE s.t").split('\t').nth(1),
            "{d}"
        );
    }
}
