//! The web UI in a real browser: headless Chromium (Debian's `chromium`) driven by
//! playwright-core. `tests/browser/wizard.mjs` adds data sources, runs the task wizard,
//! starts the task and sees it reach done; a screenshot of the task page is saved to
//! `target/ui-screenshots/monitor.png`. On the way it checks the fixes found by trying the UI:
//! the MySQL form hides the Elasticsearch-only fields, a test result outlives a redraw, the
//! table picker filters, selects all shown, clears and takes patterns, a done unit shows its
//! final count, Start on a done task asks first; then it clones the task under a long name
//! (clipped in the task table), edits the clone and deletes it, and has the test kill the
//! server and start it again while the task page shows "reconnecting". Then it adds a Kafka
//! data source and makes two tasks with the wizard: MySQL -> Kafka (to done) and Kafka ->
//! Elasticsearch (the topic picked from the live cluster; every row written, then stopped).
//! `tests/browser/security.mjs` signs in with a user name and password and walks every
//! page over data full of XSS payloads (tasks, schedules and run history, data sources,
//! alerts, audit log, dead letters, API token names).

#[path = "serve_common.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, TOKEN};
use datatrace_testkit::{engine, mariadb, unique_name};
use serde_json::json;

/// The browser test's directory, once Chromium and playwright-core are there.
fn browser_dir() -> std::path::PathBuf {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let missing: Vec<&str> = [
        (!Path::new("/usr/bin/chromium").exists()).then_some("/usr/bin/chromium"),
        (!browser_dir.join("node_modules/playwright-core").exists())
            .then_some("tests/browser/node_modules/playwright-core"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run scripts/setup-browser.sh",
        missing.join(" and ")
    );
    browser_dir
}

#[test]
fn the_wizard_runs_a_task_to_done_in_chromium() {
    let browser_dir = browser_dir();

    let m = mariadb();
    let db = m.create_database("dtui");
    // another database's table, for the table picker's filter to hide
    let other = m.create_database("dtui_other");
    let user = unique_name("ui");
    let password = "Ui-Pass-4471";
    m.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
         CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}';
         GRANT ALL ON *.* TO '{user}'@'%'; GRANT ALL ON *.* TO '{user}'@'localhost';
         CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2));
         CREATE TABLE {db}.notes (id INT PRIMARY KEY);
         CREATE TABLE {other}.items (id INT PRIMARY KEY);"
    ));
    let rows: Vec<String> = (1..=2000)
        .map(|i| format!("({i}, 'item {i}', {i}.5)"))
        .collect();
    m.exec(&format!("INSERT INTO {db}.items VALUES {}", rows.join(",")));
    // fresh statistics: the unit's estimated total (which the page must not show once done)
    // is the table's row estimate, 0 until InnoDB recounts
    m.exec(&format!("ANALYZE TABLE {db}.items"));

    let dir = common::workdir("browser");
    let mut s = Server::start(&dir);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("monitor.png");
    let _ = std::fs::remove_file(&shot);
    let index = unique_name("uiitems");
    let index2 = unique_name("uievents");
    let prefix = unique_name("uikafka");
    let mut node = Command::new("node");
    node.arg(browser_dir.join("wizard.mjs"))
        .args([
            &s.url(),
            TOKEN,
            &format!("mysql://{user}@127.0.0.1:{}/{db}", m.port()),
            password,
            &format!("{db}.items"),
            &engine().url(),
            &index,
        ])
        .arg(&shot)
        .args([
            format!("kafka://{}", datatrace_testkit::kafka().bootstrap()),
            prefix,
            index2.clone(),
        ])
        .current_dir(&browser_dir);
    let (ok, text) = run_with_outage(node, &mut s, &dir);
    assert!(ok, "wizard.mjs failed:\n{text}\nserver:\n{}", s.output());
    assert!(text.contains("done: written 2,000"), "{text}");
    assert!(
        text.contains("outage: reconnecting shown, live again"),
        "{text}"
    );
    assert!(text.contains("kafka out: written 2,000"), "{text}");
    assert!(text.contains("kafka in: written 2,000"), "{text}");
    assert!(shot.exists(), "no screenshot at {}", shot.display());

    let tasks = s.ok("GET", "/api/tasks", None);
    let task = |name: &str| {
        tasks
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("task {name} in {tasks}"))
            .clone()
    };
    for (name, status) in [
        ("shop-to-search", "done"),
        ("shop-to-events", "done"),
        ("events-to-search", "stopped"),
    ] {
        let t = task(name);
        assert_eq!(t["status"], status, "{t}");
        assert_eq!(t["overall"]["written"], 2000, "{t}");
    }
    assert!(!s.output().contains(password), "the password was printed");
}

/// Runs a browser script that may ask for a server outage: on its line `outage: stop the
/// server` the server is killed; on `outage: start the server` it is started again on the
/// same address and data directory, and the script is told `started` on its stdin.
/// Returns whether the script succeeded, and all it printed.
fn run_with_outage(mut node: Command, s: &mut Server, dir: &Path) -> (bool, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    let mut child = node
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (install nodejs; see scripts/setup-browser.sh)");
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = stderr.read_to_string(&mut e);
        e
    });
    let mut text = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        text.push_str(&line);
        text.push('\n');
        if line == "outage: stop the server" {
            s.kill();
        } else if line == "outage: start the server" {
            let addr = s.addr.clone();
            *s = Server::start_args(dir, &[], &["--listen", &addr])
                .expect("the server starts again");
            let _ = writeln!(stdin, "started");
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    text.push_str(&errors.join().unwrap());
    (status.success(), text)
}

/// What every stored payload contains, and what the page must show as text.
const MARKER: &str = "window.__xss";

#[test]
fn xss_payloads_in_every_rendered_string_execute_nothing_in_chromium() {
    let browser_dir = browser_dir();
    let m = mariadb();
    let db = m.create_database("dtxss");
    let dst = m.create_database("dtxss_dst");
    let user = unique_name("xss");
    let password = "Xss-Pass-9913";
    // A column named with markup (it reaches every rejection's error and log line), and
    // values that are markup or javascript: URLs (the dead letters' values).
    let col = "<img src=x onerror=window.__xss=6>";
    m.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
         CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}';
         GRANT ALL ON *.* TO '{user}'@'%'; GRANT ALL ON *.* TO '{user}'@'localhost';
         CREATE TABLE {db}.items (id INT PRIMARY KEY, `{col}` VARCHAR(64));
         CREATE TABLE {dst}.items (id INT PRIMARY KEY, `{col}` VARCHAR(6));
         INSERT INTO {db}.items VALUES (1, '\"><script>window.__xss=7</script>'),
           (2, 'javascript:window.__xss=8'), (3, '<svg onload=window.__xss=10>');"
    ));
    let dir = common::workdir("browser-xss");
    let s = Server::start(&dir);
    let ds = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({"name": "\"><script>window.__xss=3</script>", "type": "mysql",
                     "url": format!("mysql://{user}@127.0.0.1:{}/{db}", m.port()), "password": password})),
    );
    let es = s.ok(
        "POST",
        "/api/datasources",
        Some(
            &json!({"name": "es <img src=x onerror=window.__xss=4>", "type": "elasticsearch",
                     "url": "http://127.0.0.1:9/\"><img src=x onerror=window.__xss=5>"}),
        ),
    );
    let t = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "<img src=x onerror=\"window.__xss=1\">",
                     "description": "\"><script>window.__xss=2</script>",
                     "source": {"datasource": ds["id"], "tables": [format!("{db}.items")]},
                     "target": {"datasource": ds["id"], "database": dst},
                     "settings": {"error_policy": "dead-letter"}})),
    );
    let id = t["id"].as_i64().unwrap();
    s.ok("POST", &format!("/api/tasks/{id}/start"), None);
    common::wait_for(60, "done", || {
        s.ok("GET", &format!("/api/tasks/{id}"), None)["status"] == "done"
    });
    let view = s.ok("GET", &format!("/api/tasks/{id}"), None);
    assert_eq!(view["overall"]["rejected"], 3, "{view}");
    // A schedule on that task (its page lists it next to the run history), and a second
    // task whose check fails to reach its target: that run's error names the marked-up URL.
    s.ok(
        "POST",
        "/api/schedules",
        Some(&json!({"task_id": id, "cron": "0 3 * * *", "timezone": "UTC", "action": "check"})),
    );
    let failing = s.ok(
        "POST",
        "/api/tasks",
        Some(&json!({"name": "<svg onload=window.__xss=14>",
                     "source": {"datasource": ds["id"], "tables": [format!("{db}.items")]},
                     "target": {"datasource": es["id"], "index": "items"}})),
    );
    let failing = failing["id"].as_i64().unwrap();
    let (st, _) = s.call("POST", &format!("/api/tasks/{failing}/verify"), None);
    assert!(
        st >= 400,
        "a check against an unreachable target answered {st}"
    );
    let runs = s.ok("GET", &format!("/api/tasks/{failing}/runs"), None);
    assert!(
        runs.to_string().contains(MARKER),
        "the failed run's error lacks the URL: {runs}"
    );
    // An alert channel and a rule named with markup (the Alerts page lists both, the rule
    // form its channels and the history filter its rules).
    let ch = s.ok(
        "POST",
        "/api/alerts/channels",
        Some(
            &json!({"name": "<img src=x onerror=window.__xss=11>", "kind": "webhook",
                     "url": "http://127.0.0.1:9/hook"}),
        ),
    );
    s.ok(
        "POST",
        "/api/alerts/rules",
        Some(
            &json!({"name": "\"><script>window.__xss=12</script>", "kind": "lag",
                     "task_id": id, "level": "warning", "channels": [ch["id"]]}),
        ),
    );
    // A sign-in attempt with markup as the user name: the audit log shows it.
    let (st, _) = s.call(
        "POST",
        "/api/login",
        Some(&json!({"username": "<svg onload=window.__xss=9>", "password": "whatever-it-is"})),
    );
    assert_eq!(st, 401);
    let admin = "ui-admin";
    let admin_pw = "Ui-Admin-Pass-4410";
    s.ok(
        "POST",
        "/api/users",
        Some(&json!({"username": admin, "password": admin_pw, "role": "admin"})),
    );

    let out = Command::new("node")
        .arg(browser_dir.join("security.mjs"))
        .args([&s.url(), admin, admin_pw, &id.to_string(), MARKER])
        .arg(failing.to_string())
        .current_dir(&browser_dir)
        .output()
        .expect("node runs (install nodejs; see scripts/setup-browser.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "security.mjs failed:\n{text}\nserver:\n{}",
        s.output()
    );
    assert!(text.contains("xss: nothing executed"), "{text}");
    // The discard made in the browser went through the session and was audited.
    let audit = s.ok("GET", "/api/audit?actor=ui-admin&action=dead_letter", None);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "ok"),
        "{audit}"
    );
    let counts = s.ok("GET", &format!("/api/tasks/{id}/dead-letters"), None)["counts"].clone();
    assert_eq!(counts, json!({"new": 2, "replayed": 0, "discarded": 1}));
    // The API token named with markup in the browser was made.
    let made = s.ok("GET", "/api/audit?actor=ui-admin&action=token.create", None);
    assert!(
        made.as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "ok"),
        "{made}"
    );
}
