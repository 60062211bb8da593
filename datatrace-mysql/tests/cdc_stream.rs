//! The binlog source against MariaDB: operations and images, transaction boundaries,
//! resume from file/position and from a GTID state, filters, prerequisites.

mod cdc;

use cdc::*;
use datatrace_core::{Op, Value};
use datatrace_mysql::binlog::position::from_position;
use datatrace_mysql::binlog::{check_prerequisites, CdcOptions};
use datatrace_mysql::{ConnectionConfig, MySqlConnection, TableSelector};

const T: &str = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n INT)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_come_with_images_and_checkpoints_only_at_commits() {
    let d = db().create_database("cdc_ops");
    exec(&format!("USE `{d}`; {T}"));
    let start = now().await;
    exec(&format!(
        "USE `{d}`; INSERT INTO t VALUES (1,'a',1); \
         BEGIN; INSERT INTO t VALUES (2,'b',2),(3,'c',3); UPDATE t SET v='B' WHERE id=2; DELETE FROM t WHERE id=3; COMMIT; \
         UPDATE t SET n=10 WHERE id=1;"
    ));
    // Wait for the checkpoint after the sixth record: other tests' commits add checkpoints
    // without records, so a count of checkpoints alone can stop the capture too early.
    let got = capture(opts(&d, &start), None, |c| {
        c.records.len() >= 6 && c.checkpoint_at.iter().any(|&n| n >= 6)
    })
    .await;
    let ops: Vec<Op> = got.records.iter().map(|r| r.op).collect();
    assert_eq!(
        ops,
        [
            Op::Insert,
            Op::Insert,
            Op::Insert,
            Op::Update,
            Op::Delete,
            Op::Update
        ]
    );
    assert_eq!(got.ids(), [1, 2, 3, 2, 3, 1]);
    let up = &got.records[3];
    assert_eq!(up.get("v"), Some(&Value::from("B")));
    assert_eq!(up.before.as_ref().expect("before")[1], Value::from("b"));
    assert_eq!(
        got.records[4].values,
        vec![Value::Int(3), Value::from("c"), Value::Int(3)]
    );
    assert_eq!(up.schema.name(), "t");
    assert_eq!(up.schema.namespace(), Some(d.as_str()));
    // Checkpoints after 1 record (first autocommit), after 5 (the transaction), after 6:
    // never inside the transaction (other tests' commits add checkpoints without records).
    for n in [1, 5, 6] {
        assert!(got.checkpoint_at.contains(&n), "{:?}", got.checkpoint_at);
    }
    assert!(
        !got.checkpoint_at.iter().any(|n| (2..=4).contains(n)),
        "{:?}",
        got.checkpoint_at
    );
    let cps: Vec<_> = got
        .checkpoints
        .iter()
        .map(|p| from_position(p).expect("binlog position"))
        .collect();
    assert!(cps
        .windows(2)
        .all(|w| w[0].pos < w[1].pos || w[0].file < w[1].file));
    assert!(
        cps.iter()
            .all(|p| p.gtid.as_deref().is_some_and(|g| g.contains('-'))),
        "{cps:?}"
    );
    assert!(got
        .checkpoints
        .iter()
        .all(|p| p.ordinal.is_some() && p.ts_ms.is_some()));

    // Resume after the first transaction, by file and offset: the rest, exactly.
    let at =
        |n: usize| got.checkpoints[got.checkpoint_at.iter().position(|&x| x == n).unwrap()].clone();
    let after_first = at(1);
    let again = capture(opts(&d, &start), Some(after_first.clone()), |c| {
        c.records.len() >= 5
    })
    .await;
    assert_eq!(again.ids(), [2, 3, 2, 3, 1]);
    // And by GTID state.
    let o = CdcOptions {
        resume_by_gtid: true,
        ..opts(&d, &start)
    };
    let by_gtid = capture(o, Some(after_first), |c| c.records.len() >= 5).await;
    assert_eq!(by_gtid.ids(), [2, 3, 2, 3, 1]);
    assert_eq!(
        by_gtid
            .records
            .iter()
            .map(|r| r.position.as_ref().unwrap().ordinal)
            .collect::<Vec<_>>(),
        again
            .records
            .iter()
            .map(|r| r.position.as_ref().unwrap().ordinal)
            .collect::<Vec<_>>()
    );
    // Starting from a GTID state in the options.
    let gtid = from_position(&at(5)).unwrap().gtid.unwrap();
    let o = CdcOptions {
        start: datatrace_mysql::binlog::StartAt::Gtid(gtid),
        ..opts(&d, &start)
    };
    let from_gtid = capture(o, None, |c| !c.records.is_empty()).await;
    assert_eq!(from_gtid.ids(), [1]);
    assert_eq!(from_gtid.records[0].op, Op::Update);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_table_and_operation() {
    let d = db().create_database("cdc_filter");
    exec(&format!("USE `{d}`; {T}; CREATE TABLE skip_me (id INT PRIMARY KEY); CREATE TABLE t2 (id INT PRIMARY KEY)"));
    let start = now().await;
    exec(&format!(
        "USE `{d}`; INSERT INTO skip_me VALUES (9); INSERT INTO t VALUES (1,'a',1); INSERT INTO t2 VALUES (5); \
         UPDATE t SET n=2; DELETE FROM t2; DELETE FROM t; INSERT INTO t VALUES (7,'x',7);"
    ));
    let o = CdcOptions {
        tables: TableSelector::include([format!("{d}.*")]).exclude(format!("{d}.skip_me")),
        ops: vec![Op::Insert, Op::Delete],
        ..opts(&d, &start)
    };
    let got = capture(o, None, |c| c.records.len() >= 5).await;
    let seen: Vec<(String, Op, i64)> = got
        .records
        .iter()
        .map(|r| {
            (
                r.schema.name().to_string(),
                r.op,
                r.values[0].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("t".into(), Op::Insert, 1),
            ("t2".into(), Op::Insert, 5),
            ("t2".into(), Op::Delete, 5),
            ("t".into(), Op::Delete, 1),
            ("t".into(), Op::Insert, 7)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prerequisites_name_the_missing_privilege() {
    let ok = check_prerequisites(&connect("mysql").await)
        .await
        .expect("root may stream");
    assert!(ok.full_row_metadata && ok.mariadb);
    let user = datatrace_testkit::unique_name("cdcuser");
    exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO '{user}'@'%'; \
         CREATE USER '{user}'@'localhost' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO '{user}'@'localhost';"
    ));
    let url = format!("mysql://{user}:pw@{}:{}/mysql", db().host(), db().port());
    let conn = MySqlConnection::connect(&ConnectionConfig::new(url.clone()))
        .await
        .expect("connect");
    let e = check_prerequisites(&conn)
        .await
        .expect_err("no replication privileges");
    assert!(e.to_string().contains("REPLICATION SLAVE"), "{e}");
    exec(&format!("GRANT REPLICATION SLAVE ON *.* TO '{user}'@'%'; GRANT REPLICATION SLAVE ON *.* TO '{user}'@'localhost';"));
    let conn = MySqlConnection::connect(&ConnectionConfig::new(url.clone()))
        .await
        .expect("connect");
    let e = check_prerequisites(&conn)
        .await
        .expect_err("no replication client");
    assert!(e.to_string().contains("REPLICATION CLIENT"), "{e}");
    exec(&format!("GRANT REPLICATION CLIENT ON *.* TO '{user}'@'%'; GRANT REPLICATION CLIENT ON *.* TO '{user}'@'localhost';"));
    let conn = MySqlConnection::connect(&ConnectionConfig::new(url))
        .await
        .expect("connect");
    check_prerequisites(&conn).await.expect("all granted");
    assert!(!e.to_string().contains("pw@"));
}
