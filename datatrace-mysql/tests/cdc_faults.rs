//! Lost connections mid-stream: the dump thread killed on the server (KILL CONNECTION) and
//! every connection dropped by a proxy. The stream reconnects from the last committed
//! transaction and skips what it already emitted: every change arrives exactly once.

mod cdc;

use cdc::*;
use datatrace_mysql::{ConnectionConfig, MySqlConnection};
use datatrace_testkit::FaultProxy;

const T: &str = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(300), n INT)";

fn exactly_once(ids: &[i64]) {
    let want: Vec<i64> = (1..=40300).collect();
    let first_bad = ids.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        ids == want.as_slice(),
        "{} changes for 40300 rows; first out of place at index {first_bad:?}",
        ids.len()
    );
}

/// Writes 200 one-row transactions and one of 40000 rows (10 MB, more than the socket buffers) into `d.t`, streams them through
/// `conn`, runs `fault` in the middle of the big transaction, then writes 100 more rows;
/// returns the ids seen and the reconnects.
async fn stream_through_fault(d: &str, conn: MySqlConnection, fault: impl Fn()) -> (Vec<i64>, u64) {
    let start = now().await;
    // 200 single-row transactions and one of 40000 rows (10 MB, more than the socket buffers) (several rows events).
    let mut sql = format!("USE `{d}`;");
    for i in 1..=200 {
        sql.push_str(&format!("INSERT INTO t VALUES ({i}, 'x', {i});"));
    }
    sql.push_str("INSERT INTO t SELECT seq, REPEAT('y', 250), seq FROM seq_201_to_40200;");
    exec(&sql);
    let mut faulted = false;
    let got = capture_via(
        conn,
        opts(d, &start),
        None,
        |c| c.records.len() >= 40300 && c.checkpoints.len() > 1,
        |c| {
            if !faulted && c.records.len() >= 1000 {
                faulted = true;
                fault();
                let mut sql = format!("USE `{d}`;");
                for i in 40201..=40300 {
                    sql.push_str(&format!("INSERT INTO t VALUES ({i}, 'z', {i});"));
                }
                exec(&sql);
            }
        },
    )
    .await;
    (got.ids(), got.reconnects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dump_thread_is_resumed_without_duplicates() {
    let d = db().create_database("cdc_kill");
    exec(&format!("USE `{d}`; {T}"));
    let (ids, reconnects) = stream_through_fault(&d, connect("mysql").await, || {
        let threads =
            exec("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
        let ids: Vec<&str> = threads.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!ids.is_empty(), "no dump thread to kill");
        for id in ids {
            let _ = std::panic::catch_unwind(|| exec(&format!("KILL CONNECTION {id}")));
        }
    })
    .await;
    exactly_once(&ids);
    assert!(reconnects >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_resumed_without_duplicates() {
    let d = db().create_database("cdc_drop");
    exec(&format!("USE `{d}`; {T}"));
    let upstream: std::net::SocketAddr =
        format!("{}:{}", db().host(), db().port()).parse().unwrap();
    let proxy = FaultProxy::start(upstream);
    let url = format!("mysql://root@{}/mysql", proxy.addr());
    let conn = MySqlConnection::connect(&ConnectionConfig::new(url))
        .await
        .expect("connect via proxy");
    let (ids, reconnects) = stream_through_fault(&d, conn, || proxy.drop_connections()).await;
    exactly_once(&ids);
    assert!(proxy.stats().dropped > 0, "{:?}", proxy.stats());
    assert!(reconnects >= 1);
}
