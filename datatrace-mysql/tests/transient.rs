//! Transient sink failures are retried by the runner: a writer whose connection is killed
//! mid-statement (lost connection) and a lock wait timeout, then the copy completes exactly
//! (snapshot batches: on the `LOAD DATA` path).

mod common;

use std::time::Duration;

use common::*;
use datatrace_core::{PipelineConfig, RetryPolicy, RunStatus};
use datatrace_mysql::{SinkOptions, SourceOptions};
use mysql_async::prelude::Queryable;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_connections_and_lock_waits_are_retried() {
    // This binary has its own server: the short lock wait timeout affects only this test.
    exec("SET GLOBAL innodb_lock_wait_timeout = 2");
    let src = db().create_database("tr_src");
    let dst = db().create_database("tr_dst");
    exec(&format!(
        "USE `{src}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_500;"
    ));
    clone_table(&src, &dst, "t");
    exec(&format!("INSERT INTO `{dst}`.t VALUES (5, 'old')"));

    // Another session holds the lock on row 5 of the target.
    let mut holder = mysql_async::Conn::from_url(db().url_for(&dst))
        .await
        .unwrap();
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder
        .query_drop("UPDATE t SET v = 'locked' WHERE id = 5")
        .await
        .unwrap();

    let waits_before = lock_waits();
    let killer = {
        let dst = dst.clone();
        tokio::task::spawn_blocking(move || {
            // Kill the writer while it waits for the lock: a lost connection mid-transaction.
            for _ in 0..500 {
                let id = exec(&format!(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO `{dst}`.`t`%' \
                     OR INFO LIKE 'LOAD DATA LOCAL INFILE%INTO TABLE `{dst}`.`t`%' LIMIT 1"
                ));
                if let Ok(id) = id.trim().parse::<u64>() {
                    // The writer may have ended between the two statements (its lock wait
                    // timed out and the pool dropped the connection): look again.
                    match db().exec_at(db().addr(), &format!("KILL CONNECTION {id}")) {
                        Ok(_) => return true,
                        Err(e) if e.contains("Unknown thread id") => {}
                        Err(e) => panic!("KILL CONNECTION {id}: {e}"),
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        })
    };
    let copy = tokio::spawn({
        let (src, dst) = (src.clone(), dst.clone());
        async move {
            copy(
                &src,
                "t",
                &dst,
                SourceOptions::default(),
                SinkOptions::default(),
                PipelineConfig {
                    batch_size: 50,
                    retry: RetryPolicy::new(
                        20,
                        Duration::from_millis(100),
                        Duration::from_millis(500),
                    ),
                    ..Default::default()
                },
            )
            .await
        }
    });
    assert!(killer.await.unwrap(), "no writer was seen waiting");
    // Keep the lock until the retried statement has waited, timed out (2 s) and a third
    // attempt waits again: two failures, however slow the machine (a fixed hold of a few
    // seconds let a slow reconnect miss the timeout).
    let waited = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        while lock_waits() < waits_before + 3 {
            if started.elapsed() > Duration::from_secs(120) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    });
    assert!(
        waited.await.unwrap(),
        "the retry never waited for the lock again"
    );
    holder.query_drop("COMMIT").await.unwrap();
    let report = copy
        .await
        .unwrap()
        .expect("the copy completes after retries");
    assert_eq!(report.status, RunStatus::Completed);
    assert!(report.retried >= 2, "retried {}", report.retried);
    assert_same(&src, &dst, "t", "id");
}

/// How many times a statement of this server has waited for a row lock (each attempt of the
/// blocked writer counts once, when it starts waiting).
fn lock_waits() -> u64 {
    let out = exec("SHOW GLOBAL STATUS LIKE 'Innodb_row_lock_waits'");
    out.split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Innodb_row_lock_waits: {out:?}"))
}
