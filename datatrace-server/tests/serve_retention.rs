//! The retention guard of stopped tasks in `datatrace serve` (`cargo test binlog_retention`):
//! a change-stream task is stopped, the server moves on to a newer binlog file, and the
//! server's periodic check shows the time left before the binlog at the task's checkpoint
//! may be purged (units view, the metric, a warning in the task's log); once the binlog is
//! purged the figure is 0 and the warning names the gap. Own MariaDB: the expiry setting
//! and the purge are global.

#[path = "serve_common.rs"]
mod common;

use common::{wait_for, Server};
use datatrace_testkit::MariaDb;
use serde_json::{json, Value};

fn stream_unit(s: &Server, id: i64) -> Value {
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    units
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "binlog")
        .cloned()
        .unwrap_or(Value::Null)
}

fn warnings(s: &Server, id: i64) -> Vec<String> {
    let page = s.ok("GET", &format!("/api/tasks/{id}/logs"), None);
    page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "warn")
        .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn metric(s: &Server, id: i64) -> Option<f64> {
    let (status, text) = common::request(&s.addr, "GET", "/metrics", Some(common::TOKEN), None);
    assert_eq!(status, 200, "{text}");
    let prefix =
        format!("datatrace_unit_binlog_retention_seconds{{task=\"{id}\",unit=\"binlog\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
fn binlog_retention_of_a_stopped_task_is_watched_by_the_server() {
    let db = MariaDb::dedicated();
    db.exec(
        "SET GLOBAL binlog_expire_logs_seconds = 7200;
         CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(20));",
    );
    let dir = common::workdir("retention");
    let s = Server::start_args(&dir, &[], &["--retention-check-secs", "1"]).expect("serve");
    let ds = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "src", "type": "mysql", "url": db.url_for("s")})),
    )["id"]
        .as_i64()
        .unwrap();
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "live", "mode": "incremental",
                     "source": {"datasource": ds, "tables": ["s.t"],
                                "cdc": {"server_id": 9481, "heartbeat_secs": 1}},
                     "target": {"type": "discard"}})),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "the stream runs", || {
        stream_unit(&s, id)["state"] == "running"
    });
    // The stream takes the server's position once connected, a moment after the unit runs:
    // rows go in until some reach it.
    let mut next = 0;
    wait_for(60, "rows streamed", || {
        db.exec(&format!(
            "USE s; INSERT INTO t SELECT seq, 'x' FROM seq_{}_to_{}",
            next + 1,
            next + 10
        ));
        next += 10;
        std::thread::sleep(std::time::Duration::from_millis(500));
        stream_unit(&s, id)["written"].as_u64() > Some(0)
    });
    s.ok("POST", &format!("/api/tasks/{id}/stop"), None);
    wait_for(60, "stopped", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "stopped"
    });
    // The checkpoint is in the file being written: nothing at risk, no warning.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(stream_unit(&s, id)["retention_secs"], Value::Null);
    assert!(warnings(&s, id).is_empty(), "{:?}", warnings(&s, id));

    // The server moves on to a newer file: the stopped task's binlog may be purged within
    // the expiry (2 h), under the default warning threshold (6 h).
    db.exec("FLUSH BINARY LOGS; INSERT INTO s.t VALUES (1000, 'after');");
    wait_for(60, "the time left shows in the units view", || {
        stream_unit(&s, id)["retention_secs"].as_i64().is_some()
    });
    let left = stream_unit(&s, id)["retention_secs"].as_i64().unwrap();
    assert!((6000..=7200).contains(&left), "{left}");
    let m = metric(&s, id).expect("the gauge of the stopped task's stream");
    assert!((6000.0..=7200.0).contains(&m), "{m}");
    wait_for(30, "a warning in the task's log", || {
        warnings(&s, id)
            .iter()
            .any(|w| w.contains("may be purged in"))
    });
    let w = warnings(&s, id);
    assert!(
        w[0].contains("binlog_expire_logs_seconds = 7200") && w[0].contains("start the task"),
        "{w:?}"
    );

    // Purged: a gap, 0 left, a warning naming the missing file.
    let file = db
        .exec("SHOW BINARY LOGS")
        .lines()
        .last()
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    db.exec(&format!("PURGE BINARY LOGS TO '{file}'"));
    wait_for(60, "the gap shows", || {
        stream_unit(&s, id)["retention_secs"].as_i64() == Some(0)
    });
    assert_eq!(metric(&s, id), Some(0.0));
    wait_for(30, "a warning naming the gap", || {
        warnings(&s, id).iter().any(|w| w.contains("resnapshot"))
    });
    // Once an hour at most while it lasts: two warnings, not one a second.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(warnings(&s, id).len(), 2, "{:?}", warnings(&s, id));
}
