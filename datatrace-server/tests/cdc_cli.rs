//! `datatrace run` on a MySQL -> MySQL job with `mode = "snapshot+cdc"` while the source is
//! written to: killed with SIGKILL mid-stream, run again, stopped with Ctrl-C once caught
//! up: the target equals the source.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

fn db() -> &'static datatrace_testkit::MariaDb {
    datatrace_testkit::mariadb()
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-cdc-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(dir: &Path) -> Child {
    Command::new(BIN)
        .args(["run", "job.toml", "--log-every", "0.5"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("datatrace runs")
}

/// `(file sequence << 32) | pos` of the server's current binlog position.
fn current_ordinal() -> u64 {
    let out = db().exec("SHOW MASTER STATUS");
    let f: Vec<&str> = out.lines().next().unwrap_or("").split('\t').collect();
    let seq: u64 = f[0].rsplit('.').next().unwrap().parse().unwrap();
    (seq << 32) | f[1].parse::<u64>().unwrap()
}

fn checkpoint_ordinal(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["parts"][0]["position"]["ordinal"].as_u64())
        .unwrap_or(0)
}

#[test]
fn snapshot_and_cdc_survive_kill_9_and_stop_on_ctrl_c() {
    let src = db().create_database("cli_cdc_src");
    let dst = db().create_database("cli_cdc_dst");
    let mut seed =
        format!("USE `{src}`; CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), qty INT);");
    for i in 1..=500 {
        seed.push_str(&format!("INSERT INTO items VALUES ({i}, 'item {i}', {i});"));
    }
    db().exec(&seed);
    let dir = workdir("kill9");
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"cdc\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"items\"]\nmode = \"snapshot+cdc\"\n\
             cdc = {{ server_id = 9301, heartbeat_secs = 1 }}\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\n[settings]\nsink_concurrency = 3\nlinger = 20\ncheckpoint_interval = 50\n",
            db().url_for(&src),
            db().url_for(&dst)
        ),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (src, stop) = (src.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = 1 + (i * 7919) % 700;
                db().exec(&format!(
                    "USE `{src}`; BEGIN; INSERT INTO items VALUES ({id}, 'new {i}', 0) ON DUPLICATE KEY UPDATE qty = qty + 1, name = 'upd {i}'; \
                     DELETE FROM items WHERE id = {}; COMMIT;",
                    1 + (i * 104729) % 700
                ));
            }
        })
    };
    let cp = dir.join(".datatrace/cdc/binlog.json");
    // Killed twice mid-run, restarted each time.
    for pause in [2500u64, 2500] {
        let mut child = run(&dir);
        std::thread::sleep(Duration::from_millis(pause));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let child = run(&dir);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let end = current_ordinal();
    let started = Instant::now();
    while checkpoint_ordinal(&cp) < end {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the stream did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    // Progress of the stream shows its lag.
    assert!(
        stderr.contains(", lag ") || stdout.contains(", lag "),
        "{stdout}{stderr}"
    );
    let q = |d: &str| db().exec(&format!("SELECT * FROM `{d}`.items ORDER BY id"));
    let (a, b) = (q(&src), q(&dst));
    assert!(a.lines().count() > 100);
    assert!(
        a == b,
        "source {} rows, target {} rows\n{stdout}",
        a.lines().count(),
        b.lines().count()
    );
    // The stopped job: `validate` tells where its checkpoint stands against the binlogs.
    let out = Command::new(BIN)
        .args(["validate", "job.toml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stream:       binlog position ") && text.contains("not at risk of purging"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_mode_or_cdc_setting_is_named() {
    let dir = workdir("badmode");
    let job = |extra: &str| {
        format!(
            "name = \"cdc\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"items\"]\n{extra}\n[target]\ntype = \"discard\"\n",
            db().url_for("mysql")
        )
    };
    for (extra, want) in [
        (
            "mode = \"stream\"",
            "source.mode: unknown mode \"stream\": expected \"full\", \"cdc\" or \"snapshot+cdc\"",
        ),
        ("mode = \"cdc\"\ncdc = { server_idd = 3 }", "source.cdc"),
        (
            "mode = \"cdc\"\ncdc = { server_id = 0 }",
            "server_id must be above 0",
        ),
    ] {
        std::fs::write(dir.join("job.toml"), job(extra)).unwrap();
        let out = Command::new(BIN)
            .args(["validate", "job.toml"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0));
        assert!(stderr.contains(want), "{extra}: {stderr}");
    }
}

/// Waits until the stream's checkpoint has passed everything written so far.
fn catch_up(cp: &Path) {
    let end = current_ordinal();
    let started = Instant::now();
    while checkpoint_ordinal(cp) < end {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the stream did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn table_ddl_reaches_the_tables_the_target_pattern_names() {
    let src = db().create_database("cli_ddl_src");
    let dst = db().create_database("cli_ddl_dst");
    db().exec(&format!(
        "USE `{src}`; CREATE TABLE t_a (id INT PRIMARY KEY, v VARCHAR(20)); \
         CREATE TABLE t_b (id INT PRIMARY KEY, v VARCHAR(20)); CREATE TABLE t_gone (id INT PRIMARY KEY);"
    ));
    let dir = workdir("tableddl");
    let job = |policy: &str| {
        format!(
            "name = \"ddl\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t_*\"]\nmode = \"cdc\"\n\
             cdc = {{ server_id = 9302, heartbeat_secs = 1 }}\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\ntable = \"copy_{{table}}\"\ntable_changes = \"{policy}\"\n\
             [settings]\nsink_concurrency = 3\nlinger = 20\n",
            db().url_for(&src),
            db().url_for(&dst)
        )
    };
    std::fs::write(dir.join("job.toml"), job("apply")).unwrap();
    let cp = dir.join(".datatrace/ddl/binlog.json");
    let child = run(&dir);
    let started = Instant::now();
    while checkpoint_ordinal(&cp) == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = |sql: &str| db().exec(&format!("USE `{src}`; {sql}"));
    s("INSERT INTO t_a VALUES (1,'a1'),(2,'a2'); INSERT INTO t_b VALUES (1,'b1'); INSERT INTO t_gone VALUES (1)");
    s("TRUNCATE TABLE t_a");
    s("INSERT INTO t_a VALUES (3,'a3')");
    s("RENAME TABLE t_b TO t_c");
    s("INSERT INTO t_c VALUES (2,'c2')");
    s("DROP TABLE t_gone");
    catch_up(&cp);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = |sql: &str| db().exec(&format!("USE `{dst}`; {sql}"));
    assert_eq!(d("SELECT id, v FROM copy_t_a ORDER BY id"), "3\ta3\n");
    assert_eq!(
        d("SELECT id, v FROM copy_t_c ORDER BY id"),
        "1\tb1\n2\tc2\n"
    );
    assert_eq!(d("SHOW TABLES"), "copy_t_a\ncopy_t_c\n");

    // Under "fail", the next TRUNCATE stops the run, naming the change and the setting; the
    // rows after it are not written and the run resumes at it.
    std::fs::write(dir.join("job.toml"), job("fail")).unwrap();
    let child = run(&dir);
    s("INSERT INTO t_a VALUES (4,'a4'); TRUNCATE TABLE t_c; INSERT INTO t_c VALUES (5,'c5')");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TRUNCATE"), "{stderr}");
    assert!(stderr.contains("table_changes = \"fail\""), "{stderr}");
    assert_eq!(d("SELECT id FROM copy_t_a ORDER BY id"), "3\n4\n");
    assert_eq!(d("SELECT id FROM copy_t_c ORDER BY id"), "1\n2\n");
}

#[test]
fn a_full_job_switched_to_snapshot_and_cdc_is_refused_rather_than_left_stale() {
    let src = db().create_database("cli_switch_src");
    let dst = db().create_database("cli_switch_dst");
    db().exec(&format!(
        "USE `{src}`; CREATE TABLE items (id INT PRIMARY KEY); INSERT INTO items VALUES (1),(2);"
    ));
    let dir = workdir("switch");
    let job = |mode: &str| {
        format!(
            "name = \"switch\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"items\"]\nmode = \"{mode}\"\n\
             cdc = {{ server_id = 9303 }}\n[target]\ntype = \"mysql\"\nurl = \"{}\"\n",
            db().url_for(&src),
            db().url_for(&dst)
        )
    };
    std::fs::write(dir.join("job.toml"), job("full")).unwrap();
    let out = run(&dir).wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Changed after the copy: a stream started now would never see this delete.
    db().exec(&format!("USE `{src}`; DELETE FROM items WHERE id = 1"));
    std::fs::write(dir.join("job.toml"), job("snapshot+cdc")).unwrap();
    let out = run(&dir).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("was copied by an earlier run without a change stream"),
        "{stderr}"
    );
}

#[test]
fn table_ddl_reaches_elasticsearch_indices() {
    let es = datatrace_testkit::engine();
    let src = db().create_database("cli_ddl_es");
    db().exec(&format!(
        "USE `{src}`; CREATE TABLE t_a (id INT PRIMARY KEY, v VARCHAR(20)); \
         CREATE TABLE t_b (id INT PRIMARY KEY, v VARCHAR(20)); CREATE TABLE t_gone (id INT PRIMARY KEY);"
    ));
    let dir = workdir("tableddl-es");
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"ddles\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t_*\"]\nmode = \"cdc\"\n\
             cdc = {{ server_id = 9304, heartbeat_secs = 1 }}\n\
             [target]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{{db}}-{{table}}\"\nversion = \"position\"\n\
             [settings]\nsink_concurrency = 3\nlinger = 20\n",
            db().url_for(&src),
            es.url()
        ),
    )
    .unwrap();
    let cp = dir.join(".datatrace/ddles/binlog.json");
    let child = run(&dir);
    let started = Instant::now();
    while checkpoint_ordinal(&cp) == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = |sql: &str| db().exec(&format!("USE `{src}`; {sql}"));
    s("INSERT INTO t_a VALUES (1,'a1'),(2,'a2'); INSERT INTO t_b VALUES (1,'b1'); INSERT INTO t_gone VALUES (1)");
    s("TRUNCATE TABLE t_a");
    s("INSERT INTO t_a VALUES (3,'a3')");
    s("RENAME TABLE t_b TO t_c");
    s("INSERT INTO t_c VALUES (2,'c2')");
    s("DROP TABLE t_gone");
    catch_up(&cp);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = |t: &str| format!("{src}-{t}").to_lowercase();
    let ids = |t: &str| {
        es.request("POST", &format!("/{}/_refresh", index(t)), None);
        let reply = es.request(
            "POST",
            &format!("/{}/_search", index(t)),
            Some(r#"{"size": 100, "sort": [{"id": "asc"}]}"#),
        );
        assert_eq!(reply.status, 200, "{}: {}", index(t), reply.body);
        reply.json()["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("t_a"), vec!["3"]);
    assert_eq!(ids("t_c"), vec!["1", "2"]);
    for gone in ["t_b", "t_gone"] {
        let reply = es.request("HEAD", &format!("/{}", index(gone)), None);
        assert_eq!(reply.status, 404, "index {} still exists", index(gone));
    }
}
