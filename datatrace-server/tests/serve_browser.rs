//! The web UI in a real browser: headless Chromium (Debian's `chromium`) driven by
//! playwright-core (`tests/browser/wizard.mjs`) adds data sources, runs the task wizard,
//! starts the task and sees it reach done; a screenshot of the task page is saved to
//! `target/ui-screenshots/monitor.png`.

#[path = "serve_common.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, TOKEN};
use datatrace_testkit::{mariadb, osmem, unique_name};

#[test]
fn the_wizard_runs_a_task_to_done_in_chromium() {
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

    let m = mariadb();
    let db = m.create_database("dtui");
    let user = unique_name("ui");
    let password = "Ui-Pass-4471";
    m.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
         CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}';
         GRANT ALL ON *.* TO '{user}'@'%'; GRANT ALL ON *.* TO '{user}'@'localhost';
         CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2));"
    ));
    let rows: Vec<String> = (1..=2000)
        .map(|i| format!("({i}, 'item {i}', {i}.5)"))
        .collect();
    m.exec(&format!("INSERT INTO {db}.items VALUES {}", rows.join(",")));

    let dir = common::workdir("browser");
    let s = Server::start(&dir);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("monitor.png");
    let _ = std::fs::remove_file(&shot);
    let index = unique_name("uiitems");
    let out = Command::new("node")
        .arg(browser_dir.join("wizard.mjs"))
        .args([
            &s.url(),
            TOKEN,
            &format!("mysql://{user}@127.0.0.1:{}/{db}", m.port()),
            password,
            &format!("{db}.items"),
            &osmem().url(),
            &index,
        ])
        .arg(&shot)
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
        "wizard.mjs failed:\n{text}\nserver:\n{}",
        s.output()
    );
    assert!(text.contains("done: written 2,000"), "{text}");
    assert!(shot.exists(), "no screenshot at {}", shot.display());

    let tasks = s.ok("GET", "/api/tasks", None);
    assert_eq!(tasks[0]["status"], "done", "{tasks}");
    assert_eq!(tasks[0]["overall"]["written"], 2000);
    assert!(!s.output().contains(password), "the password was printed");
}
