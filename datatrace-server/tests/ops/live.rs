//! What a watcher sees: events replayed after a reconnect, logs since a line, a run with
//! rejected records, and data sources that do not change under a running task.

use datatrace_testkit::mariadb;
use serde_json::json;

use crate::common::{wait_for, workdir, Events, Server};
use crate::fixtures::{items, mysql_ds, user};

const PASSWORD: &str = "Live-Pw-8802";

#[test]
fn a_reconnecting_stream_gets_what_it_missed() {
    let dir = workdir("replay");
    let s = Server::start(&dir);
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "gen", "source": {"type": "generator", "rows": 2000},
                     "target": {"type": "discard"},
                     "settings": {"batch_size": 100, "rate_limit": {"records_per_sec": 4000}, "progress_interval": 100}})),
    );
    let id = t["id"].as_i64().unwrap();
    let path = format!("/api/tasks/{id}/events");
    let mut ev = Events::open(&s.addr, &path, false);
    let (first_id, name, _) = ev.next_with_id().unwrap();
    assert_eq!(name, "snapshot");
    let first_id = first_id.expect("events carry ids");
    drop(ev);
    // Meanwhile the task runs to the end; its log lines are sent to nobody.
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "done", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "done"
    });
    // Back with the last id seen: every missed event, in order, ids increasing, no snapshot.
    let last = format!("Last-Event-ID: {first_id}");
    let mut ev = Events::open_with(&s.addr, &path, false, &[&last]);
    let mut names = Vec::new();
    let mut logs = Vec::new();
    let mut prev: u64 = first_id.split('.').nth(1).unwrap().parse().unwrap();
    loop {
        let (id2, name, data) = ev.next_with_id().unwrap();
        let seq: u64 = id2.unwrap().split('.').nth(1).unwrap().parse().unwrap();
        assert!(seq > prev, "ids increase: {seq} after {prev}");
        prev = seq;
        if name == "log" {
            logs.push(data["message"].as_str().unwrap().to_owned());
        }
        names.push(name.clone());
        if name == "status" && data["status"] == "done" {
            break;
        }
    }
    assert!(!names.contains(&"snapshot".to_owned()), "{names:?}");
    assert!(logs.iter().any(|l| l.starts_with("started:")), "{logs:?}");
    // An id of another server process (or too old): a fresh snapshot instead.
    let mut ev = Events::open_with(&s.addr, &path, false, &["Last-Event-ID: 1.5"]);
    assert_eq!(ev.next_event().unwrap().0, "snapshot");

    // Logs since a line, oldest first, and searched.
    let page = s.ok("GET", &format!("/api/tasks/{id}/logs?limit=1000"), None);
    let lines = page["lines"].as_array().unwrap();
    let oldest = lines.last().unwrap()["id"].as_i64().unwrap();
    let since = s.ok("GET", &format!("/api/tasks/{id}/logs?after={oldest}"), None);
    let ids: Vec<i64> = since["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), lines.len() - 1);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    let found = s.ok("GET", &format!("/api/tasks/{id}/logs?q=STARTED%3A"), None);
    let found = found["lines"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let none = s.ok("GET", &format!("/api/tasks/{id}/logs?q=100%25"), None);
    assert!(
        none["lines"].as_array().unwrap().is_empty(),
        "% is literal: {none}"
    );
}

#[test]
fn a_run_with_rejected_records_says_so() {
    let dir = workdir("rejects");
    let s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(300);
    let dst = mariadb().create_database("dtops_rej");
    // Names longer than six characters ("item 10" on) do not fit.
    mariadb().exec(&format!(
        "CREATE TABLE {dst}.items (id INT PRIMARY KEY, name VARCHAR(6), price DECIMAL(10,2))"
    ));
    let src = mysql_ds(&s, &u, PASSWORD, &db);
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "rejects", "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"datasource": src, "database": dst},
                     "settings": {"error_policy": "skip", "batch_size": 50}})),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "finished", || {
        let st = s.ok("GET", &format!("/api/tasks/{id}"), None)["status"].clone();
        st == "done" || st == "failed"
    });
    let view = s.ok("GET", &format!("/api/tasks/{id}"), None);
    assert_eq!(view["status"], "done", "{view}");
    assert_eq!(view["overall"]["rejected"], 291, "{view}");
    // The reason is in the error log, with the first key, and on the unit.
    let errors = s.ok("GET", &format!("/api/tasks/{id}/logs?category=error"), None);
    let text = errors.to_string();
    assert!(text.contains("records rejected"), "{text}");
    assert!(text.contains("done with 291 rejected record(s)"), "{text}");
    // Batches may be written in parallel: the first rejection is one of the long names
    // (ids 10 to 300), whichever batch came back first.
    let rejected_key = |t: &str| {
        t.split("key ")
            .skip(1)
            .filter_map(|r| {
                r.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .any(|k| (10..=300).contains(&k))
    };
    assert!(
        rejected_key(&text) && text.to_lowercase().contains("too long"),
        "{text}"
    );
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    assert!(
        rejected_key(units[0]["first_rejection"].as_str().unwrap()),
        "{units}"
    );
}

#[test]
fn a_data_source_does_not_change_under_a_running_task() {
    let dir = workdir("busy-ds");
    let s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(3000);
    let dst = mariadb().create_database("dtops_busy");
    let src = mysql_ds(&s, &u, PASSWORD, &db);
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "busy", "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"datasource": src, "database": dst},
                     "settings": {"batch_size": 100, "rate_limit": {"records_per_sec": 500}}})),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "running", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "running"
    });
    let ds = s.ok("GET", &format!("/api/datasources/{src}"), None);
    let (st, e) = s.call(
        "PUT",
        &format!("/api/datasources/{src}"),
        Some(&json!({"name": "renamed", "type": "mysql", "url": ds["url"]})),
    );
    assert_eq!(st, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("busy"), "{e}");
    let (st, _) = s.call("POST", &format!("/api/tasks/{id}/verify"), None);
    assert_eq!(st, 409, "no verify while it runs");
    s.ok("POST", &format!("/api/tasks/{id}/stop"), None);
    wait_for(60, "stopped", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "stopped"
    });
    s.ok(
        "PUT",
        &format!("/api/datasources/{src}"),
        Some(&json!({"name": "renamed", "type": "mysql", "url": ds["url"]})),
    );
}
