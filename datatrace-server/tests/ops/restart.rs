//! Stopping and starting the server: what keeps running, what is held back.

use datatrace_testkit::mariadb;
use serde_json::{json, Value};

use crate::common::{wait_for, workdir, Server};
use crate::fixtures::{count, items, mysql_ds, user};

const PASSWORD: &str = "Restart-Pw-5521";

fn slow_copy(s: &Server, src: i64, db: &str, dst_db: &str, extra_settings: Value) -> i64 {
    let name = datatrace_testkit::unique_name("slow");
    let mut settings = json!({"batch_size": 100, "rate_limit": {"records_per_sec": 600}});
    for (k, v) in extra_settings.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(
            &json!({"name": name, "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"datasource": src, "database": dst_db}, "settings": settings}),
        ),
    );
    t["id"].as_i64().unwrap()
}

fn status(s: &Server, id: i64) -> Value {
    s.ok("GET", &format!("/api/tasks/{id}"), None)
}

#[test]
fn a_graceful_stop_resumes_the_running_tasks_at_the_next_start() {
    let dir = workdir("sigterm");
    let mut s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(3000);
    let dst = mariadb().create_database("dtops_term");
    let src = mysql_ds(&s, &u, PASSWORD, &db);
    let id = slow_copy(&s, src, &db, &dst, json!({}));
    // A second task stopped by hand stays stopped.
    let idle = slow_copy(
        &s,
        src,
        &db,
        &mariadb().create_database("dtops_hand"),
        json!({}),
    );
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    s.ok("POST", &format!("/api/tasks/{idle}/start"), None);
    wait_for(60, "rows written", || {
        status(&s, id)["overall"]["written"].as_u64().unwrap_or(0) >= 300
    });
    s.ok("POST", &format!("/api/tasks/{idle}/stop"), None);
    wait_for(60, "stopped by hand", || {
        status(&s, idle)["status"] == "stopped"
    });

    let exit = s.terminate();
    assert!(exit.success(), "SIGTERM exits cleanly: {exit:?}");
    let out = s.output();
    assert!(out.contains("interrupted by the server's stop"), "{out}");

    let s = Server::start(&dir);
    wait_for(120, "resumed and done", || {
        status(&s, id)["status"] == "done"
    });
    assert_eq!(count(&dst, "items"), 3000);
    let logs = s
        .ok(
            "GET",
            &format!("/api/tasks/{id}/logs?category=system&limit=1000"),
            None,
        )
        .to_string();
    assert!(
        logs.contains("server restarted: resuming from the checkpoints"),
        "{logs}"
    );
    // The run history: the run the stop interrupted, then the server's resume, which wrote
    // the rest (the two together wrote every row at least once).
    let runs = s.ok("GET", &format!("/api/tasks/{id}/runs"), None)["runs"].clone();
    let seen: Vec<(&str, &str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_str().unwrap();
            (f("kind"), f("origin"), f("result"))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("resume", "restart", "done"),
            ("sync", "manual", "interrupted")
        ],
        "{runs}"
    );
    let written: u64 = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rows_written"].as_u64().unwrap())
        .sum();
    assert!(written >= 3000, "{runs}");
    // The task stopped by hand is still stopped, and none of its units shows running.
    let t = status(&s, idle);
    assert_eq!(t["status"], "stopped", "{t}");
    let units = s.ok("GET", &format!("/api/tasks/{idle}/units"), None);
    for u in units.as_array().unwrap() {
        assert_ne!(
            u["state"], "running",
            "a running unit under a stopped task: {units}"
        );
    }
}

#[test]
fn a_task_that_keeps_killing_the_server_is_held_and_counters_restart_from_the_checkpoint() {
    let dir = workdir("crashloop");
    let mut s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(4000);
    let dst = mariadb().create_database("dtops_crash");
    let src = mysql_ds(&s, &u, PASSWORD, &db);
    // Checkpoints far apart: what was written before a kill is ahead of the checkpoint.
    let id = slow_copy(
        &s,
        src,
        &db,
        &dst,
        json!({"checkpoint_interval": 600000, "rate_limit": {"records_per_sec": 400}}),
    );
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "rows written", || {
        status(&s, id)["overall"]["written"].as_u64().unwrap_or(0) >= 200
    });
    let shown_before = status(&s, id)["overall"]["written"].as_u64().unwrap();
    s.kill();

    // First crash: resumed, with counters from the checkpoint, not from before the crash.
    let mut s = Server::start(&dir);
    wait_for(60, "resumed", || status(&s, id)["status"] == "running");
    let logs = s
        .ok(
            "GET",
            &format!("/api/tasks/{id}/logs?category=system&limit=1000"),
            None,
        )
        .to_string();
    assert!(logs.contains("after a crash: resuming"), "{logs}");
    let resumed_line = s.ok(
        "GET",
        &format!("/api/tasks/{id}/logs?q=running+%28&limit=1"),
        None,
    );
    let line = resumed_line["lines"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let n: u64 = line
        .trim_start_matches("running (")
        .split(' ')
        .next()
        .unwrap_or("x")
        .parse()
        .unwrap_or(u64::MAX);
    assert!(
        n < shown_before,
        "the resume reports the checkpoint ({line}), not the {shown_before} shown before the crash"
    );
    // Killed again while the resumed run cannot write anything (the source table is locked
    // by another session).
    s.kill();
    let lock = crate::fixtures::TableLock::new(&db, "items");
    let mut s = Server::start(&dir);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let seen = status(&s, id);
    s.kill();
    drop(lock);
    assert_ne!(seen["status"], "done", "{seen}");

    // Twice in a row without progress: held, with the reason, and the server stays up.
    let s = Server::start(&dir);
    wait_for(30, "held", || status(&s, id)["status"] == "failed");
    let t = status(&s, id);
    assert!(t["error"].as_str().unwrap().contains("not resumed"), "{t}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        status(&s, id)["status"],
        "failed",
        "not started behind our back"
    );
    // Resumed by hand, it finishes.
    s.ok("POST", &format!("/api/tasks/{id}/resume"), None);
    wait_for(120, "done", || status(&s, id)["status"] == "done");
    assert_eq!(count(&dst, "items"), 4000);
}
