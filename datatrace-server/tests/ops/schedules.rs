//! Schedules, the run history and the drift watch: a schedule really fires and its run is
//! recorded with its rows and result; a busy task's firing is skipped and recorded; a drift
//! check on tables made to differ reports the count in the history and the metrics, and a
//! check with repair makes them equal; wrong schedules are refused naming the field.

use datatrace_testkit::{mariadb, unique_name};
use serde_json::{json, Value};

use crate::common::{wait_for, workdir, Server};
use crate::fixtures::{count, items, mysql_ds, user};

const PASSWORD: &str = "Sched-Pw-8812";

/// A MySQL -> MySQL copy of `db.items` into `dst`; `settings` as given.
fn copy_task(s: &Server, ds: i64, db: &str, dst: &str, settings: Value) -> i64 {
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": unique_name("sched"),
                     "source": {"datasource": ds, "tables": [format!("{db}.items")]},
                     "target": {"datasource": ds, "database": dst}, "settings": settings})),
    );
    t["id"].as_i64().unwrap()
}

fn schedule(s: &Server, body: Value) -> Value {
    let (st, v) = s.call("POST", "/api/schedules", Some(&body));
    assert_eq!(st, 201, "{v}");
    v
}

fn runs(s: &Server, task: i64) -> Vec<Value> {
    s.ok("GET", &format!("/api/tasks/{task}/runs"), None)["runs"]
        .as_array()
        .unwrap()
        .clone()
}

/// Runs schedule `sid` now and waits for its run to end; the run.
fn run_now(s: &Server, task: i64, sid: i64) -> Value {
    let (st, v) = s.call("POST", &format!("/api/schedules/{sid}/run"), None);
    assert_eq!(st, 202, "{v}");
    let run = v["run"]["id"].as_i64().expect("the run is recorded");
    let mut last = Value::Null;
    wait_for(180, "the run ends", || {
        last = runs(s, task)
            .into_iter()
            .find(|r| r["id"] == run)
            .unwrap_or(Value::Null);
        last["result"] != "running"
    });
    last
}

fn metric(s: &Server, name: &str, task: i64) -> Option<f64> {
    let (_, text) =
        crate::common::request(&s.addr, "GET", "/metrics", Some(crate::common::TOKEN), None);
    let prefix = format!("{name}{{task=\"{task}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
fn a_schedule_fires_and_its_run_is_recorded() {
    let dir = workdir("sched-fire");
    let s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(500);
    let dst = mariadb().create_database("dtops_sched");
    let ds = mysql_ds(&s, &u, PASSWORD, &db);
    let id = copy_task(&s, ds, &db, &dst, json!({}));
    // Every minute, read in Berlin time: the next firings are shown in that zone.
    let sched = schedule(
        &s,
        json!({"task_id": id, "cron": "* * * * *", "timezone": "Europe/Berlin", "action": "resync"}),
    );
    let sid = sched["id"].as_i64().unwrap();
    let fires = sched["next_fires"].as_array().unwrap();
    assert_eq!(fires.len(), 3, "{sched}");
    assert!(
        fires[0]["local"].as_str().unwrap().ends_with("CET"),
        "{sched}"
    );
    assert_eq!(
        sched["task"].as_str(),
        s.ok("GET", &format!("/api/tasks/{id}"), None)["name"].as_str()
    );
    // It fires within the minute, by itself; the run goes to the history with its rows.
    let mut run = Value::Null;
    wait_for(150, "the schedule fired and its run ended", || {
        run = runs(&s, id)
            .into_iter()
            .find(|r| r["origin"] == "schedule" && r["result"] != "running")
            .unwrap_or(Value::Null);
        !run.is_null()
    });
    assert_eq!(run["result"], "done", "{run}");
    assert_eq!(run["kind"], "sync", "{run}");
    assert_eq!(run["schedule_id"], sid, "{run}");
    assert_eq!(run["rows_read"], 500, "{run}");
    assert_eq!(run["rows_written"], 500, "{run}");
    assert!(run["bytes_written"].as_u64().unwrap() > 0, "{run}");
    assert_eq!(run["rejected"], 0, "{run}");
    assert!(run["finished_at"].is_string(), "{run}");
    assert_eq!(count(&dst, "items"), 500);
    let after = s.ok("GET", &format!("/api/schedules/{sid}"), None);
    assert!(after["last_fire"].is_string(), "{after}");
    assert!(
        after["next_fire"].as_str() > after["last_fire"].as_str(),
        "{after}"
    );
    // Across tasks too, and filtered by kind.
    let all = s.ok("GET", &format!("/api/runs?task={id}&kind=sync"), None);
    assert!(
        all["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run["id"]),
        "{all}"
    );
    // Disabled: no next firing; changes are audited.
    let off = s.ok(
        "PUT",
        &format!("/api/schedules/{sid}"),
        Some(&json!({"enabled": false})),
    );
    assert_eq!(off["next_fires"], json!([]), "{off}");
    assert!(off["next_fire"].is_null(), "{off}");
    assert_eq!(off["cron"], "* * * * *", "absent fields are kept: {off}");
    let audit = s
        .ok("GET", "/api/audit?action=schedule.&limit=100", None)
        .to_string();
    for action in ["schedule.create", "schedule.update"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    s.ok("DELETE", &format!("/api/schedules/{sid}"), None);
    let audit = s
        .ok("GET", "/api/audit?action=schedule.&limit=100", None)
        .to_string();
    assert!(audit.contains("schedule.delete"), "{audit}");
    assert_eq!(s.call("GET", &format!("/api/schedules/{sid}"), None).0, 404);
}

#[test]
fn wrong_schedules_are_refused_naming_the_field() {
    let dir = workdir("sched-wrong");
    let s = Server::start(&dir);
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "gen", "source": {"type": "generator", "rows": 1}, "target": {"type": "discard"}})),
    );
    let id = t["id"].as_i64().unwrap();
    for (body, field) in [
        (
            json!({"task_id": id, "cron": "61 * * * *", "action": "check"}),
            "cron",
        ),
        (
            json!({"task_id": id, "cron": "* * * * * *", "action": "check"}),
            "cron",
        ),
        (
            json!({"task_id": id, "cron": "0 2 * * *", "timezone": "Mars/Olympus", "action": "check"}),
            "timezone",
        ),
        (
            json!({"task_id": id, "cron": "0 2 * * *", "action": "copy"}),
            "action",
        ),
        (
            json!({"task_id": id, "cron": "0 2 * * *", "action": "check", "repair": true}),
            "repair",
        ),
        (
            json!({"task_id": id, "cron": "0 2 * * *", "action": "check", "delete_extra": true}),
            "delete_extra",
        ),
        (
            json!({"task_id": 999_999, "cron": "0 2 * * *", "action": "check"}),
            "task_id",
        ),
        (json!({"cron": "0 2 * * *", "action": "check"}), "task_id"),
    ] {
        let (st, v) = s.call("POST", "/api/schedules", Some(&body));
        assert_eq!((st, v["field"].as_str()), (400, Some(field)), "{body}: {v}");
    }
    let ok = schedule(
        &s,
        json!({"task_id": id, "cron": "0 2 * * *", "action": "check"}),
    );
    assert_eq!(ok["timezone"], "UTC", "{ok}");
    let (st, v) = s.call(
        "PUT",
        &format!("/api/schedules/{}", ok["id"]),
        Some(&json!({"timezone": "Nowhere/Land"})),
    );
    assert_eq!((st, v["field"].as_str()), (400, Some("timezone")), "{v}");
    let (st, v) = s.call("GET", &format!("/api/tasks/{id}/runs?kind=nope"), None);
    assert_eq!((st, v["field"].as_str()), (400, Some("kind")), "{v}");
}

#[test]
fn a_busy_task_skips_its_firing_and_the_history_says_why() {
    let dir = workdir("sched-busy");
    let s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(3000);
    let dst = mariadb().create_database("dtops_busy");
    let ds = mysql_ds(&s, &u, PASSWORD, &db);
    // About 15 s of copying: the task is running when its schedules are run.
    let id = copy_task(
        &s,
        ds,
        &db,
        &dst,
        json!({"batch_size": 100, "rate_limit": {"records_per_sec": 200}}),
    );
    let resync = schedule(
        &s,
        json!({"task_id": id, "cron": "0 3 1 1 *", "action": "resync"}),
    );
    let check = schedule(
        &s,
        json!({"task_id": id, "cron": "0 3 1 1 *", "action": "drift_check"}),
    );
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    for sched in [&resync, &check] {
        let (st, v) = s.call("POST", &format!("/api/schedules/{}/run", sched["id"]), None);
        assert_eq!(st, 202, "{v}");
        assert_eq!(v["run"]["result"], "skipped", "{v}");
        assert!(
            v["run"]["error"].as_str().unwrap().contains("running"),
            "{v}"
        );
    }
    wait_for(120, "the copy ends", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "done"
    });
    let history = runs(&s, id);
    let results: Vec<(&str, &str)> = history
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [
            ("drift_check", "skipped"),
            ("sync", "skipped"),
            ("sync", "done")
        ],
        "{history:?}"
    );
    assert_eq!(history[2]["origin"], "manual");
    assert_eq!(history[2]["rows_written"], 3000);
}

#[test]
fn a_drift_check_reports_the_drift_and_a_check_with_repair_removes_it() {
    let dir = workdir("sched-drift");
    let s = Server::start(&dir);
    let u = user(PASSWORD);
    let db = items(300);
    let dst = mariadb().create_database("dtops_drift");
    let ds = mysql_ds(&s, &u, PASSWORD, &db);
    let id = copy_task(&s, ds, &db, &dst, json!({}));
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(120, "copied", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "done"
    });
    assert!(s
        .ok("GET", &format!("/api/tasks/{id}/drift"), None)
        .is_null());
    // The target drifts: 3 rows gone, 2 changed, 1 that the source never had.
    mariadb().exec(&format!(
        "DELETE FROM {dst}.items WHERE id IN (10, 20, 30);
         UPDATE {dst}.items SET price = 0.5 WHERE id IN (40, 50);
         INSERT INTO {dst}.items VALUES (9001, 'stray', 1.00);"
    ));
    // A drift_found rule on the task: the drift check raises it through the alerts.
    let rule = s.ok(
        "POST",
        "/api/alerts/rules",
        Some(
            &json!({"name": "drift", "kind": "drift_found", "task_id": id,
                     "level": "warning", "channels": []}),
        ),
    );
    let rule_id = rule["id"].as_i64().unwrap();
    // Never due on its own (1 January, 03:00): run by hand.
    let watch = schedule(
        &s,
        json!({"task_id": id, "cron": "0 3 1 1 *", "action": "drift_check"}),
    );
    let run = run_now(&s, id, watch["id"].as_i64().unwrap());
    assert_eq!(run["result"], "differs", "{run}");
    assert_eq!(run["kind"], "drift_check", "{run}");
    assert_eq!(
        (run["diff_found"].as_u64(), run["diff_left"].as_u64()),
        (Some(6), Some(6)),
        "{run}"
    );
    let unit = &run["detail"]["units"][0];
    assert_eq!(
        (
            unit["missing"].as_u64(),
            unit["different"].as_u64(),
            unit["extra"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{run}"
    );
    assert_eq!(metric(&s, "datatrace_drift_rows", id), Some(6.0));
    let checked = metric(&s, "datatrace_drift_last_checked_seconds", id).expect("last checked");
    assert!(checked > 1.7e9, "{checked}");
    let drift = s.ok("GET", &format!("/api/tasks/{id}/drift"), None);
    assert_eq!(
        (drift["rows_differing"].as_u64(), &drift["run_id"]),
        (Some(6), &run["id"]),
        "{drift}"
    );
    assert_eq!(count(&dst, "items"), 298);
    let firing = format!("/api/alerts/history?rule={rule_id}&state=firing");
    wait_for(60, "the drift_found alert fires", || {
        !s.ok("GET", &firing, None).as_array().unwrap().is_empty()
    });
    let alert = s.ok("GET", &firing, None)[0].clone();
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("6 row(s) differing"),
        "{alert}"
    );

    // A check with repair (extras deleted too) makes them equal.
    let repair = schedule(
        &s,
        json!({"task_id": id, "cron": "0 3 1 1 *", "action": "check_repair", "delete_extra": true}),
    );
    let run = run_now(&s, id, repair["id"].as_i64().unwrap());
    assert_eq!(run["result"], "repaired", "{run}");
    assert_eq!(
        (run["diff_found"].as_u64(), run["diff_left"].as_u64()),
        (Some(6), Some(0)),
        "{run}"
    );
    assert_eq!(
        run["rows_written"], 6,
        "3 rewritten missing, 2 rewritten different, 1 deleted: {run}"
    );
    assert_eq!(count(&dst, "items"), 300);
    assert_eq!(
        mariadb()
            .exec(&format!(
                "SELECT COUNT(*) FROM {dst}.items WHERE price = 0.5"
            ))
            .trim(),
        "0"
    );
    assert_eq!(metric(&s, "datatrace_drift_rows", id), Some(0.0));
    // And the watch finds nothing now.
    let run = run_now(&s, id, watch["id"].as_i64().unwrap());
    assert_eq!(
        (run["result"].as_str(), run["diff_found"].as_u64()),
        (Some("equal"), Some(0)),
        "{run}"
    );
    // The API's verify is a check in the history too.
    s.ok("POST", &format!("/api/tasks/{id}/verify"), None);
    assert_eq!(runs(&s, id)[0]["kind"], "check");
    assert_eq!(runs(&s, id)[0]["origin"], "manual");
}
