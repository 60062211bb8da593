//! Session settings of the bulk path: `unique_checks = 0, foreign_key_checks = 0` only on
//! fresh tables (the sink created or emptied them in this run, or found them empty) that have
//! no unique or foreign key to check (`bulk_session = true`; off by default), and `sql_log_bin = 0` only
//! when asked (`skip_binlog`); fresh tables load without `REPLACE`.
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
            // One writer: with several, the bulk insert mode's table lock makes concurrent
            // loads into the empty table deadlock now and then (retried), which would add
            // statements to the counts.
            sink_concurrency: 1,
            ..Default::default()
        })
        .run()
        .await
        .expect("copy");
    assert_eq!(report.written, 500);
    sink.loaded_rows()
}

/// Plain loads, `REPLACE` loads and relaxing statements of the general log since the last
/// call.
fn loads(m: &MariaDb) -> (u64, u64, u64) {
    let plain = m.statements("LOAD DATA LOCAL INFILE ''datatrace'' INTO");
    let replace = m.statements("LOAD DATA LOCAL INFILE ''datatrace'' REPLACE INTO");
    let relaxed = m.take_statements("SET SESSION unique_checks = 0, foreign_key_checks = 0");
    (plain, replace, relaxed)
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
         INSERT INTO s.t SELECT seq, CONCAT('v', seq) FROM seq_1_to_500",
    );
    m.log_statements();
    let relaxed = "SET SESSION unique_checks = 0, foreign_key_checks = 0";
    m.take_statements(relaxed);

    // Created by the sink: relaxed (nothing to check), restored after each batch.
    m.exec("CREATE DATABASE created");
    let session = SinkOptions {
        bulk_session: true,
        ..Default::default()
    };
    let create = SinkOptions {
        create_table: true,
        ..session.clone()
    };
    assert_eq!(copy(&m, "created", create.clone()).await, 500);
    assert_eq!(m.take_statements(relaxed), 5, "one per batch");

    // Fresh tables load with a plain LOAD DATA (cheaper for the server than REPLACE).
    m.exec("CREATE DATABASE created2");
    m.take_statements("");
    assert_eq!(copy(&m, "created2", create.clone()).await, 500);
    assert_eq!(loads(&m), (5, 0, 5));

    // An existing table with rows the job does not empty: never relaxed, and REPLACE keeps
    // a resumed chunk idempotent.
    m.exec("CREATE DATABASE kept; CREATE TABLE kept.t LIKE s.t; INSERT INTO kept.t VALUES (9999, 'old')");
    assert_eq!(copy(&m, "kept", session.clone()).await, 500);
    assert_eq!(m.take_statements(relaxed), 0);
    m.exec("USE kept; DELETE FROM kept.t; INSERT INTO kept.t VALUES (9999, 'old')");
    m.exec("TRUNCATE TABLE mysql.general_log");
    assert_eq!(copy(&m, "kept", SinkOptions::default()).await, 500);
    assert_eq!(loads(&m), (0, 5, 0));

    // An existing table that is empty when the copy starts: fresh, so relaxed and plain.
    m.exec("CREATE DATABASE empty; CREATE TABLE empty.t LIKE s.t");
    assert_eq!(copy(&m, "empty", session.clone()).await, 500);
    assert_eq!(
        m.statements("SELECT 1 FROM `empty`.`t` LIMIT 1"),
        1,
        "emptiness probe"
    );
    assert_eq!(m.take_statements(relaxed), 5);
    assert_eq!(
        m.exec("SELECT COUNT(*) FROM empty.t WHERE v = CONCAT('v', id)")
            .trim(),
        "500"
    );
    m.exec("TRUNCATE TABLE empty.t; TRUNCATE TABLE mysql.general_log");
    assert_eq!(copy(&m, "empty", SinkOptions::default()).await, 500);
    assert_eq!(loads(&m), (5, 0, 0));

    // Emptied by the job (truncate): relaxed.
    m.exec("CREATE DATABASE emptied; CREATE TABLE emptied.t LIKE s.t; INSERT INTO emptied.t VALUES (9999, 'old')");
    let truncate = SinkOptions {
        truncate: true,
        ..session.clone()
    };
    assert_eq!(copy(&m, "emptied", truncate.clone()).await, 500);
    // Known to be empty once truncated: not probed.
    assert_eq!(m.statements("SELECT 1 FROM `emptied`.`t`"), 0);
    assert_eq!(m.take_statements(relaxed), 5);

    // Emptied, but with a secondary unique key to check: not relaxed.
    m.exec("CREATE DATABASE unique_kept; CREATE TABLE unique_kept.t LIKE s.t; ALTER TABLE unique_kept.t ADD UNIQUE KEY (v)");
    copy(&m, "unique_kept", truncate).await;
    assert_eq!(m.take_statements(relaxed), 0);

    // bulk_session = false (the default): never, and still plain loads on a fresh table.
    m.exec("CREATE DATABASE plain");
    m.take_statements("");
    copy(
        &m,
        "plain",
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(loads(&m), (5, 0, 0));

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
        m.take_statements(&format!("{relaxed}, sql_log_bin = 0")),
        5,
        "one per batch"
    );
    assert_eq!(binlogged(&m, "nolog"), 0);
    m.exec("CREATE DATABASE logged");
    copy(&m, "logged", create).await;
    assert!(binlogged(&m, "logged") >= 5);
    // kept.t keeps its own row besides the copy.
    m.exec("DELETE FROM kept.t WHERE id = 9999");
    for d in [
        "created", "created2", "kept", "empty", "emptied", "plain", "nolog", "logged",
    ] {
        assert_eq!(
            m.exec(&format!("CHECKSUM TABLE {d}.t")).split('\t').nth(1),
            m.exec("CHECKSUM TABLE s.t").split('\t').nth(1),
            "{d}"
        );
    }
}
