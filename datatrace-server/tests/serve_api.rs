//! `datatrace serve` against a real MariaDB and osmem-server: CRUD, auth on every route,
//! secrets never shown, a task run over the API with SSE progress to 100%, and a server
//! killed mid-task that resumes it after a restart.

#[path = "serve_common.rs"]
mod common;

use common::{request, wait_for, Events, Server, TOKEN};
use datatrace_testkit::{engine, mariadb, unique_name};
use serde_json::{json, Value};

const PASSWORD: &str = "Pw-9f3Kq!zz-secret";
const API_KEY: &str = "ApiKey-77xQ-secret";

/// A MariaDB user with a password, and a database with a table of `n` rows.
fn seed(n: u32) -> (String, String) {
    let m = mariadb();
    let db = m.create_database("dtserve");
    let user = unique_name("u");
    m.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}';
         CREATE USER '{user}'@'localhost' IDENTIFIED BY '{PASSWORD}';
         GRANT ALL ON *.* TO '{user}'@'%'; GRANT ALL ON *.* TO '{user}'@'localhost';
         CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2));"
    ));
    let mut rows = Vec::new();
    for i in 1..=n {
        rows.push(format!("({i}, 'item {i}', {i}.25)"));
        if rows.len() == 1000 || i == n {
            m.exec(&format!("INSERT INTO {db}.items VALUES {}", rows.join(",")));
            rows.clear();
        }
    }
    (db, user)
}

fn mysql_ds(s: &Server, user: &str, db: &str) -> i64 {
    let m = mariadb();
    let v = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({
            "name": unique_name("mysql"), "type": "mysql",
            "url": format!("mysql://{user}@127.0.0.1:{}/{db}", m.port()),
            "password": PASSWORD
        })),
    );
    v["id"].as_i64().unwrap()
}

fn es_ds(s: &Server) -> i64 {
    let v = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({ "name": unique_name("es"), "type": "elasticsearch", "url": engine().url() })),
    );
    v["id"].as_i64().unwrap()
}

fn assert_no_secrets(s: &Server, what: &str, text: &str) {
    for secret in [PASSWORD, API_KEY] {
        assert!(!text.contains(secret), "{what} holds a secret: {text}");
    }
    let _ = s;
}

#[test]
fn every_route_needs_the_token_and_the_document_matches_the_routes() {
    let dir = common::workdir("auth");
    let s = Server::start(&dir);
    let (st, health) = request(&s.addr, "GET", "/healthz", None, None);
    assert_eq!((st, health.contains("ok")), (200, true));

    let doc = s.ok("GET", "/api/openapi.json", None);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{paths:?}");
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let m = method.to_uppercase();
            let p = path.replace("{id}", "999");
            let body = (m == "POST" || m == "PUT").then_some("{}");
            if op.get("security") == Some(&json!([])) {
                continue; // /healthz, /api/login
            }
            let (st, text) = request(&s.addr, &m, &p, None, body);
            assert_eq!(st, 401, "{m} {p} without a token: {text}");
            assert!(text.contains("authentication required"), "{text}");
            let (st, _) = request(&s.addr, &m, &p, Some("wrong-token-xxxxxxxx"), body);
            assert_eq!(st, 401, "{m} {p} with a wrong token");
            // With the token the route exists: not axum's bare 404 / 405.
            let (st, text) = request(&s.addr, &m, &p, Some(TOKEN), body);
            assert!(
                st != 405 && !(st == 404 && text.is_empty()),
                "{m} {p} is documented but not routed: {st}"
            );
        }
    }
    // Undocumented methods on documented paths are not routed.
    let (st, _) = request(&s.addr, "PATCH", "/api/tasks", Some(TOKEN), Some("{}"));
    assert_eq!(st, 405);
    // No CORS headers unless configured.
    let (_, text) = request_with(&s.addr, "GET", "/healthz", &["Origin: http://ui.example"]);
    assert!(!text.to_lowercase().contains("access-control"), "{text}");
}

/// A raw request with extra headers; returns status and the whole answer (head and body).
fn request_with(addr: &str, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

#[test]
fn cors_only_for_configured_origins() {
    let dir = common::workdir("cors");
    let s = Server::start_args(&dir, &[], &["--cors-origin", "http://ui.example"]).unwrap();
    let (st, text) = request_with(
        &s.addr,
        "OPTIONS",
        "/api/tasks",
        &[
            "Origin: http://ui.example",
            "Access-Control-Request-Method: GET",
        ],
    );
    assert_eq!(st, 204, "{text}");
    assert!(
        text.to_lowercase()
            .contains("access-control-allow-origin: http://ui.example"),
        "{text}"
    );
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (st, text) = request_with(
        &s.addr,
        "GET",
        "/api/tasks",
        &["Origin: http://ui.example", &auth],
    );
    assert_eq!(st, 200);
    assert!(
        text.to_lowercase()
            .contains("access-control-allow-origin: http://ui.example"),
        "{text}"
    );
    let (st, text) = request_with(
        &s.addr,
        "GET",
        "/api/tasks",
        &["Origin: http://evil.example", &auth],
    );
    assert_eq!(st, 200);
    assert!(!text.to_lowercase().contains("access-control"), "{text}");
    let (st, _) = request_with(&s.addr, "GET", "/api/tasks", &["Origin: http://ui.example"]);
    assert_eq!(st, 401, "CORS does not replace the token");
}

#[test]
fn data_sources_crud_test_connection_and_secrets_stay_secret() {
    let dir = common::workdir("crud");
    let mut s = Server::start(&dir);
    let (db, user) = seed(10);
    let mut seen = String::new();

    let id = mysql_ds(&s, &user, &db);
    let es = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "search", "type": "opensearch", "url": engine().url(), "api_key": API_KEY})),
    );
    seen.push_str(&es.to_string());
    assert_eq!(es["has_api_key"], true);
    assert_eq!(es["type"], "elasticsearch");

    let got = s.ok("GET", &format!("/api/datasources/{id}"), None);
    seen.push_str(&got.to_string());
    assert_eq!(got["has_password"], true);
    assert!(got.get("password").is_none());

    let test = s.ok("POST", &format!("/api/datasources/{id}/test"), None);
    seen.push_str(&test.to_string());
    assert_eq!(test["ok"], true, "{test}");
    assert_eq!(test["flavor"], "mariadb");
    assert!(
        test["version"].as_str().unwrap().contains("MariaDB"),
        "{test}"
    );
    assert!(test["details"].to_string().contains("GRANT"), "{test}");
    let units = s.ok("GET", &format!("/api/datasources/{id}/units"), None);
    assert!(
        units
            .as_array()
            .unwrap()
            .contains(&json!(format!("{db}.items"))),
        "{units}"
    );

    // Update without a password keeps it (the test still connects).
    let upd = s.ok(
        "PUT",
        &format!("/api/datasources/{id}"),
        Some(&json!({"name": "renamed", "type": "mysql", "url": got["url"]})),
    );
    assert_eq!(
        (upd["name"].as_str(), upd["has_password"].as_bool()),
        (Some("renamed"), Some(true))
    );
    assert_eq!(
        s.ok("POST", &format!("/api/datasources/{id}/test"), None)["ok"],
        true
    );

    // A wrong password: a clear failure, without the password.
    let bad = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "bad", "type": "mysql", "url": format!("mysql://{user}@127.0.0.1:{}/", mariadb().port()), "password": format!("{PASSWORD}-nope")})),
    );
    let t = s.ok(
        "POST",
        &format!("/api/datasources/{}/test", bad["id"]),
        None,
    );
    seen.push_str(&t.to_string());
    assert_eq!(t["ok"], false);
    assert!(
        t["error"].as_str().unwrap().contains("cannot connect"),
        "{t}"
    );

    // Bad input: 400 naming the field.
    let (st, e) = s.call(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "x", "type": "mysql", "url": 5})),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("url")), "{e}");
    let (st, e) = s.call(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "x", "type": "mysql", "url": "mysql://a:b@h/d"})),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("url")), "{e}");
    let (st, e) = s.call(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "x", "type": "mysql", "url": "mysql://a@h/d", "colour": 1})),
    );
    assert_eq!(st, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("colour"), "{e}");
    let (st, e) = s.call("POST", "/api/datasources", Some(&json!({"name": "x", "type": "mysql", "url": "mysql://a@h/d", "options": {"max_connectionz": 3}})));
    assert_eq!(
        (st, e["field"].as_str()),
        (400, Some("options.max_connectionz")),
        "{e}"
    );
    let (st, _) = request(
        &s.addr,
        "POST",
        "/api/datasources",
        Some(TOKEN),
        Some("{not json"),
    );
    assert_eq!(st, 400);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (st, _) = request(&s.addr, "POST", "/api/datasources", Some(TOKEN), Some(&big));
    assert_eq!(st, 413);
    let (st, _) = s.call(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "renamed", "type": "mysql", "url": "mysql://a@h/d"})),
    );
    assert_eq!(st, 409, "duplicate names are refused");

    // Tasks: checked like job files, fields named.
    let es_id = es["id"].as_i64().unwrap();
    let task = json!({"name": "t", "source": {"datasource": id, "tables": [format!("{db}.*")]},
                      "target": {"datasource": es_id, "index": "{table}"}, "settings": {"batch_size": "big"}});
    let (st, e) = s.call("POST", "/api/tasks", Some(&task));
    assert_eq!(
        (st, e["field"].as_str()),
        (400, Some("settings.batch_size")),
        "{e}"
    );
    let mut task = task;
    task["settings"] = json!({});
    task["source"]["mode"] = json!("cdc");
    let (st, e) = s.call("POST", "/api/tasks", Some(&task));
    assert_eq!((st, e["field"].as_str()), (400, Some("source.mode")), "{e}");
    task["source"].as_object_mut().unwrap().remove("mode");
    let es_source = json!({"name": "from-es", "mode": "incremental",
                           "source": {"datasource": es_id, "indices": ["x"]}, "target": {"type": "discard"}});
    let (st, e) = s.call("POST", "/api/tasks", Some(&es_source));
    assert_eq!((st, e["field"].as_str()), (400, Some("mode")), "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("need a source that has one (MySQL / MariaDB)"),
        "{e}"
    );
    task["source"]["password"] = json!("x");
    let (st, e) = s.call("POST", "/api/tasks", Some(&task));
    assert_eq!(
        (st, e["field"].as_str()),
        (400, Some("source.password")),
        "{e}"
    );
    task["source"].as_object_mut().unwrap().remove("password");
    let t = s.ok("POST", "/api/tasks", Some(&task));
    seen.push_str(&t.to_string());
    let (st, _) = s.call("DELETE", &format!("/api/datasources/{id}"), None);
    assert_eq!(st, 409, "a data source in use is kept");
    s.ok("DELETE", &format!("/api/tasks/{}", t["id"]), None);
    s.ok("DELETE", &format!("/api/datasources/{id}"), None);
    let (st, _) = s.call("GET", &format!("/api/datasources/{id}"), None);
    assert_eq!(st, 404);
    seen.push_str(&s.ok("GET", "/api/datasources", None).to_string());
    seen.push_str(&s.ok("GET", "/api/logs", None).to_string());

    // Nothing shown, printed or stored in clear.
    assert_no_secrets(&s, "API answers", &seen);
    assert_no_secrets(&s, "server output", &s.output());
    s.kill();
    let dbfile = std::fs::read(dir.join("data/metadata.sqlite")).unwrap();
    let wal = std::fs::read(dir.join("data/metadata.sqlite-wal")).unwrap_or_default();
    for bytes in [&dbfile, &wal] {
        assert_no_secrets(&s, "metadata store", &String::from_utf8_lossy(bytes));
    }

    // The key file is private, and a wrong key is refused at start.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("data/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = Server::start_with(&dir, &[("DATATRACE_MASTER_KEY", &"ab".repeat(32))])
        .err()
        .expect("a wrong key is refused");
    assert!(
        err.contains("is not the key this metadata store was created with"),
        "{err}"
    );
    let mut again = Server::start(&dir);
    assert_eq!(
        again
            .ok("GET", "/api/datasources", None)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    again.kill();
}

fn es_count(index: &str) -> u64 {
    request(
        &engine().url().replace("http://", ""),
        "POST",
        &format!("/{index}/_refresh"),
        None,
        None,
    );
    let (st, body) = request(
        &engine().url().replace("http://", ""),
        "GET",
        &format!("/{index}/_count"),
        None,
        None,
    );
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["count"].as_u64().unwrap()
}

#[test]
fn a_task_runs_to_done_with_sse_progress_to_100() {
    let dir = common::workdir("run");
    let s = Server::start(&dir);
    let (db, user) = seed(3000);
    let src = mysql_ds(&s, &user, &db);
    let dst = es_ds(&s);
    let index = unique_name("items");
    // 1,000 rows/s with one second of burst: the copy takes about two seconds, long
    // enough for several coalesced progress events.
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "to-es", "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"datasource": dst, "index": index},
                     "settings": {"batch_size": 200, "progress_interval": 100, "rate_limit": {"records_per_sec": 1000}}})),
    );
    let id = t["id"].as_i64().unwrap();
    assert_eq!(t["status"], "idle");
    let mut events = Events::open(&s.addr, &format!("/api/tasks/{id}/events"), true);
    let (name, snap) = events.next_event().unwrap();
    assert_eq!(
        (name.as_str(), snap["status"].as_str()),
        ("snapshot", Some("idle"))
    );
    let started = std::time::Instant::now();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    let (st, _) = s.call("POST", &format!("/api/tasks/{id}/start"), None);
    assert!(st == 409 || st == 202);
    let mut percents = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    let mut progress = 0u128;
    loop {
        let (name, data) = events.next_event().expect("the stream stays open");
        names.insert(name.clone());
        if name == "progress" {
            progress += 1;
        }
        if let Some(p) = data["overall"]["percent"].as_f64() {
            percents.push(p);
        }
        if name == "status" && data["status"] == "done" {
            break;
        }
        assert_ne!(data["status"], "failed", "{data}");
    }
    let elapsed = started.elapsed();
    assert_eq!(percents.last().copied(), Some(100.0), "{percents:?}");
    assert!(progress >= 2, "{progress} progress events in {elapsed:?}");
    // The pipeline reports every 100 ms; the stream sends at most one progress event per
    // 250 ms. Every one was sent between the start request and the done status, an interval
    // this clock brackets, so the count is bounded however late each one arrives here (their
    // arrival times, which a loaded machine bunches up, prove nothing). One more for the
    // flush when the task ends; without coalescing there would be one per 100 ms.
    let most = elapsed.as_millis() / 250 + 2;
    assert!(
        progress <= most,
        "{progress} progress events in {elapsed:?}: not coalesced"
    );
    assert!(
        names.contains("progress") && names.contains("unit") && names.contains("log"),
        "{names:?}"
    );
    let view = s.ok("GET", &format!("/api/tasks/{id}"), None);
    assert_eq!(
        (view["status"].as_str(), view["overall"]["written"].as_u64()),
        (Some("done"), Some(3000))
    );
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    assert_eq!(units[0]["state"], "done");
    assert_eq!(es_count(&index), 3000);
    let check = s.ok("POST", &format!("/api/tasks/{id}/verify"), None);
    assert_eq!(check["equal"], true, "{check}");
    mariadb().exec(&format!(
        "UPDATE {db}.items SET name = 'changed' WHERE id = 7"
    ));
    let check = s.ok("POST", &format!("/api/tasks/{id}/verify"), None);
    assert_eq!(
        (
            check["equal"].as_bool(),
            check["units"][0]["different"].as_u64()
        ),
        (Some(false), Some(1)),
        "{check}"
    );
    // Logs by category, paged.
    let all = s.ok(
        "GET",
        &format!("/api/tasks/{id}/logs?category=realtime&limit=2"),
        None,
    );
    assert_eq!(all["lines"].as_array().unwrap().len(), 2);
    let before = all["next_before"].as_i64().unwrap();
    let older = s.ok(
        "GET",
        &format!("/api/tasks/{id}/logs?before={before}"),
        None,
    );
    assert!(older["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["id"].as_i64().unwrap() < before));
    let errors = s.ok("GET", &format!("/api/tasks/{id}/logs?category=error"), None);
    assert!(errors["lines"].as_array().unwrap().is_empty(), "{errors}");
    let (st, e) = s.call("GET", &format!("/api/tasks/{id}/logs?category=nope"), None);
    assert_eq!((st, e["field"].as_str()), (400, Some("category")));
    // Metrics.
    let (st, m) = request(&s.addr, "GET", "/metrics", Some(TOKEN), None);
    assert_eq!(st, 200);
    assert!(
        m.contains(&format!(
            "datatrace_unit_rows_written_total{{task=\"{id}\",unit=\"{db}.items\"}} 3000"
        )),
        "{m}"
    );
    assert_no_secrets(&s, "server output", &s.output());
}

#[test]
fn a_server_killed_mid_task_resumes_it_after_restart() {
    killed_mid_task_then_resumed("resume", &[]);
}

#[test]
fn with_mysql_metadata_a_killed_server_resumes_too_and_secrets_stay_encrypted() {
    let meta = mariadb().create_database("dtmeta");
    let url = format!("mysql://root@127.0.0.1:{}/{meta}", mariadb().port());
    killed_mid_task_then_resumed("resume-mysql", &["--metadata-url", &url]);
    let tables = mariadb().exec(&format!(
        "SELECT version FROM {meta}.schema_version; SELECT * FROM {meta}.datasources; \
         SELECT * FROM {meta}.tasks; SELECT * FROM {meta}.task_units; SELECT * FROM {meta}.logs;"
    ));
    assert!(tables.contains("items"), "{tables}");
    assert!(
        !tables.contains(PASSWORD),
        "a secret in clear in the metadata database"
    );
    assert!(
        tables
            .lines()
            .any(|l| l.contains("resuming from the checkpoints")),
        "{tables}"
    );
}

fn killed_mid_task_then_resumed(name: &str, args: &[&str]) {
    let dir = common::workdir(name);
    let mut s = Server::start_args(&dir, &[], args).unwrap();
    let (db, user) = seed(4000);
    let src = mysql_ds(&s, &user, &db);
    let dst = mysql_ds(&s, &user, &db);
    let target_db = mariadb().create_database("dtserve_dst");
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "slow", "source": {"datasource": src, "tables": [format!("{db}.items")], "checkpoint_rows": 200},
                     "target": {"datasource": dst, "database": target_db},
                     "settings": {"batch_size": 100, "rate_limit": {"records_per_sec": 800}, "checkpoint_interval": 100}})),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "some rows written", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["overall"]["written"]
            .as_u64()
            .unwrap_or(0)
            >= 800
    });
    s.kill();
    let count = |db: &str| {
        mariadb()
            .exec(&format!("SELECT COUNT(*) FROM {db}.items"))
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = count(&target_db);
    assert!(
        before > 0 && before < 4000,
        "killed mid-task: {before} rows"
    );

    let s = Server::start_args(&dir, &[], args).unwrap();
    wait_for(120, "the task resumes and finishes", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "done"
    });
    assert_eq!(count(&target_db), 4000);
    let logs = s
        .ok(
            "GET",
            &format!("/api/tasks/{id}/logs?category=system&limit=1000"),
            None,
        )
        .to_string();
    assert!(logs.contains("resuming from the checkpoints"), "{logs}");
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    assert_eq!(units[0]["state"], "done");
}

#[test]
fn stop_resume_and_retry_failed_units() {
    let dir = common::workdir("stop");
    let s = Server::start(&dir);
    let (db, user) = seed(3000);
    let src = mysql_ds(&s, &user, &db);
    let count = |db: &str| {
        mariadb()
            .exec(&format!("SELECT COUNT(*) FROM {db}.items"))
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let status = |id: i64| s.ok("GET", &format!("/api/tasks/{id}"), None);

    // Stop mid-way, then resume to the end.
    let dst = mariadb().create_database("dtserve_stop");
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "stoppable", "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"datasource": src, "database": dst},
                     "settings": {"batch_size": 100, "rate_limit": {"records_per_sec": 1000}}})),
    );
    let id = t["id"].as_i64().unwrap();
    let (st, _) = s.call("POST", &format!("/api/tasks/{id}/stop"), None);
    assert_eq!(st, 409, "stopping a task that does not run");
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "rows written", || {
        status(id)["overall"]["written"].as_u64().unwrap_or(0) >= 300
    });
    let (st, _) = s.call("PUT", &format!("/api/tasks/{id}"), Some(&t["config"]));
    assert_eq!(st, 409, "a running task cannot be changed");
    s.ok("POST", &format!("/api/tasks/{id}/stop"), None);
    wait_for(60, "stopped", || status(id)["status"] == "stopped");
    let at_stop = count(&dst);
    assert!(at_stop < 3000, "stopped mid-way: {at_stop}");
    s.ok("POST", &format!("/api/tasks/{id}/resume"), None);
    wait_for(60, "done", || status(id)["status"] == "done");
    assert_eq!(count(&dst), 3000);
    let logs = s
        .ok(
            "GET",
            &format!("/api/tasks/{id}/logs?category=system&limit=1000"),
            None,
        )
        .to_string();
    assert!(logs.contains("stopping"), "{logs}");

    // A unit that fails (a target column too narrow), fixed, then retried.
    let dst = mariadb().create_database("dtserve_retry");
    mariadb().exec(&format!(
        "CREATE TABLE {dst}.items (id INT PRIMARY KEY, name VARCHAR(6), price DECIMAL(10,2))"
    ));
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "narrow", "source": {"datasource": src, "tables": [format!("{db}.items")]},
                     "target": {"datasource": src, "database": dst},
                     "settings": {"retry": {"max_attempts": 2, "initial_backoff": 10, "max_backoff": 20}}})),
    );
    let id = t["id"].as_i64().unwrap();
    let (st, _) = s.call("POST", &format!("/api/tasks/{id}/retry"), None);
    assert_eq!(st, 409, "nothing failed yet");
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "failed", || status(id)["status"] == "failed");
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    assert_eq!(units[0]["state"], "failed", "{units}");
    assert!(
        !units[0]["error"].as_str().unwrap_or("").is_empty(),
        "{units}"
    );
    let errors = s.ok("GET", &format!("/api/tasks/{id}/logs?category=error"), None);
    assert!(!errors["lines"].as_array().unwrap().is_empty(), "{errors}");
    mariadb().exec(&format!("ALTER TABLE {dst}.items MODIFY name VARCHAR(64)"));
    s.ok("POST", &format!("/api/tasks/{id}/retry"), None);
    wait_for(60, "done after retry", || status(id)["status"] == "done");
    assert_eq!(count(&dst), 3000);
    assert_no_secrets(&s, "server output", &s.output());
}

#[test]
fn units_are_bounded_across_tasks() {
    let dir = common::workdir("bound");
    let s = Server::start_args(&dir, &[], &["--max-units", "1"]).unwrap();
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let t = s.ok(
            "POST",
            "/api/tasks",
            Some(
                // 8,000 rows at 2,000/s: the first task runs for about 3 s, so both statuses
                // are read while it is still running (2,000 rows fit in the limiter's
                // one-second burst and could finish between the two reads).
                &json!({"name": name, "source": {"type": "generator", "rows": 8000},
                         "target": {"type": "discard"},
                         "settings": {"batch_size": 100, "rate_limit": {"records_per_sec": 2000}}}),
            ),
        );
        ids.push(t["id"].as_i64().unwrap());
    }
    for id in &ids {
        s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    }
    let status = |id: i64| s.ok("GET", &format!("/api/tasks/{id}"), None)["status"].clone();
    wait_for(30, "one running", || {
        status(ids[0]) == "running" || status(ids[1]) == "running"
    });
    let both = (status(ids[0]), status(ids[1]));
    assert!(
        both == (json!("running"), json!("queued")) || both == (json!("queued"), json!("running")),
        "with --max-units 1 one task waits: {both:?}"
    );
    wait_for(60, "both done", || {
        status(ids[0]) == "done" && status(ids[1]) == "done"
    });
}

#[test]
fn full_plus_incremental_copies_then_streams_changes_until_stopped() {
    let dir = common::workdir("cdc");
    let s = Server::start(&dir);
    let (db, user) = seed(500);
    let src = mysql_ds(&s, &user, &db);
    let dst = mariadb().create_database("dtserve_cdc");
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "live", "mode": "full+incremental",
                     "source": {"datasource": src, "tables": [format!("{db}.items")],
                                "cdc": {"server_id": 9471, "heartbeat_secs": 1}},
                     "target": {"datasource": src, "database": dst}})),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    let rows = |q: &str| mariadb().exec(q).trim().to_owned();
    wait_for(60, "the snapshot copied", || {
        rows(&format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{dst}'"
        )) == "1"
            && rows(&format!("SELECT COUNT(*) FROM {dst}.items")) == "500"
    });
    mariadb().exec(&format!(
        "INSERT INTO {db}.items VALUES (9001, 'live row', 1.5); UPDATE {db}.items SET name = 'changed' WHERE id = 3; \
         DELETE FROM {db}.items WHERE id = 4"
    ));
    wait_for(60, "the changes streamed", || {
        rows(&format!("SELECT COUNT(*) FROM {dst}.items")) == "500"
            && rows(&format!("SELECT name FROM {dst}.items WHERE id = 3")) == "changed"
            && rows(&format!("SELECT name FROM {dst}.items WHERE id = 9001")) == "live row"
    });
    let task = s.ok("GET", &format!("/api/tasks/{id}"), None);
    assert_eq!(
        task["status"], "running",
        "a change stream never finishes: {task}"
    );
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    assert!(
        units.as_array().unwrap().len() >= 2,
        "table unit and stream unit: {units}"
    );
    s.ok("POST", &format!("/api/tasks/{id}/stop"), None);
    wait_for(60, "stopped", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "stopped"
    });
    // The snapshot-to-stream handoff keeps its start in the metadata store, like every other
    // checkpoint: nothing under the data directory's checkpoint files.
    let files = dir.join("data").join("checkpoints");
    let written: Vec<_> = walk(&files);
    assert!(written.is_empty(), "checkpoint files written: {written:?}");

    // Started again: the copy is not made again, the stream continues where it stopped.
    mariadb().exec(&format!(
        "UPDATE {db}.items SET name = 'while stopped' WHERE id = 5"
    ));
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    wait_for(60, "the change made while stopped streamed", || {
        rows(&format!("SELECT name FROM {dst}.items WHERE id = 5")) == "while stopped"
    });
    let units = s.ok("GET", &format!("/api/tasks/{id}/units"), None);
    let table = units
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == json!(format!("{db}.items")))
        .cloned()
        .unwrap_or_default();
    assert_eq!(table["state"], "done", "{units}");
    assert_eq!(rows(&format!("SELECT COUNT(*) FROM {dst}.items")), "500");
    s.ok("POST", &format!("/api/tasks/{id}/stop"), None);
    wait_for(60, "stopped again", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "stopped"
    });
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
