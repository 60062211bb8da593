//! Crashes and rejected rows: kill -9 then resume, dead letters replayed.

use std::process::Command;

use datatrace_testkit::{engine, mariadb, unique_name};

use crate::common::*;

/// Three tables of 1,500 rows in a fresh database.
fn three_tables(prefix: &str) -> String {
    let src = mariadb().create_database(prefix);
    for t in ["t1", "t2", "t3"] {
        mariadb().exec(&format!(
            "CREATE TABLE {src}.{t} (id INT PRIMARY KEY, v VARCHAR(32), n DECIMAL(8,2));
             INSERT INTO {src}.{t} SELECT seq, CONCAT('{t}-', seq), seq / 4 FROM {src}.seq_1_to_1500;"
        ));
    }
    src
}

/// Runs job `name` (tables t1..t3 of `src` into `target`, a `[target]` body) rate-limited,
/// kills it with SIGKILL at a random point, runs it again unlimited and checks that it
/// succeeds and that units finished before the kill are not redone. Returns the summary.
fn kill_9_then_resume(name: &str, src: &str, target: &str, rate: u32) -> String {
    let dir = workdir(name);
    let job = |limit: &str| {
        format!(
            "name = \"{name}\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t*\"]\n\
             page_rows = 300\ncheckpoint_rows = 100\n[target]\n{target}\n\
             [settings]\nbatch_size = 100\ncheckpoint_interval = 20\n{limit}",
            mariadb().url_for(src),
        )
    };
    // About 4.5 s in all at `rate`, one table at a time; killed somewhere in between.
    std::fs::write(
        dir.join("job.toml"),
        job(&format!("rate_limit = {{ records_per_sec = {rate} }}\n")),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "job.toml"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500 + jitter(3500)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let done_before: Vec<String> = ["t1", "t2", "t3"]
        .iter()
        .filter(|t| {
            let cp = dir.join(format!(".datatrace/{name}/{src}.{t}.json"));
            std::fs::read_to_string(cp).is_ok_and(|s| s.contains("\"state\": \"done\""))
        })
        .map(|t| format!("{src}.{t}"))
        .collect();
    let out = datatrace(&dir, &job(""), &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    eprintln!("done before the kill: {done_before:?}\n{stdout}");
    for unit in &done_before {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{unit} ")))
            .unwrap_or_else(|| panic!("no row for {unit}: {stdout}"));
        assert!(
            line.contains("done before"),
            "finished units are not redone: {stdout}"
        );
    }
    stdout
}

#[test]
fn kill_9_during_a_multi_table_job_then_run_again_gives_an_exact_copy() {
    let src = three_tables("dtkill");
    let dst = mariadb().create_database("dtkilldst");
    let target = format!("type = \"mysql\"\nurl = \"{}\"", mariadb().url_for(&dst));
    kill_9_then_resume("kill9", &src, &target, 600);
    for t in ["t1", "t2", "t3"] {
        assert_eq!(rows(&src, t), rows(&dst, t), "table {t}");
    }
    assert_eq!(rows(&dst, "t2").lines().count(), 1500);
}

#[test]
fn kill_9_during_a_job_into_elasticsearch_then_run_again_gives_every_document_once() {
    let src = three_tables("dtkilles");
    let prefix = unique_name("dtk");
    let target = format!(
        "type = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{{prefix}}-{{table}}\"\nprefix = \"{prefix}\"",
        engine().url()
    );
    kill_9_then_resume("kill9es", &src, &target, 600);
    for t in ["t1", "t2", "t3"] {
        let index = format!("{prefix}-{t}");
        engine().request("POST", &format!("/{index}/_refresh"), None);
        let found = engine()
            .request("GET", &format!("/{index}/_search?size=2000&sort=id"), None)
            .json();
        assert_eq!(
            found["hits"]["total"]["value"], 1500,
            "no duplicates, nothing lost in {index}"
        );
        let docs: Vec<String> = found["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let d = &h["_source"];
                format!("{}\t{}\t{}", d["id"], d["v"].as_str().unwrap(), d["n"])
            })
            .collect();
        let expected: Vec<String> = rows(&src, t)
            .lines()
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                let n: f64 = c[2].parse().unwrap();
                format!("{}\t{}\t{}", c[0], c[1], serde_json::json!(n))
            })
            .collect();
        assert_eq!(docs, expected, "index {index}");
    }
}

#[test]
fn rows_the_target_rejects_go_to_dead_letters_and_replay_once_fixed() {
    let dir = workdir("dlq-mysql");
    let src = mariadb().create_database("dtdlq");
    let dst = mariadb().create_database("dtdlqdst");
    mariadb().exec(&format!(
        "CREATE TABLE {src}.items (id INT PRIMARY KEY, code VARCHAR(20));
         INSERT INTO {src}.items VALUES (1, 'ok'), (2, 'much-too-long'), (3, 'ok3'), (4, 'also-too-long');
         CREATE TABLE {dst}.items (id INT PRIMARY KEY, code VARCHAR(4));"
    ));
    let job = format!(
        "name = \"dlq\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"items\"]\n\
         [target]\ntype = \"mysql\"\nurl = \"{}\"\ncreate_table = false\n\
         [settings]\nerror_policy = \"dead-letter\"\nretry = {{ max_attempts = 2, initial_backoff = 10, max_backoff = 10 }}\n",
        mariadb().url_for(&src),
        mariadb().url_for(&dst)
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 record(s) went to the dead-letter queue"),
        "{stdout}"
    );
    assert_eq!(rows(&dst, "items"), "1\tok\n3\tok3\n");

    let out = datatrace(&dir, &job, &["dlq", "list", "job.toml", "--format", "json"]);
    let entries: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["unit"], format!("{src}.items"));
    assert_eq!(entries[0]["stage"], "sink");
    let error = entries[0]["error"].as_str().unwrap();
    assert!(
        error.contains("code"),
        "the error names the column: {error}"
    );

    // Still too narrow: the replay keeps them.
    let out = datatrace(&dir, &job, &["dlq", "replay", "job.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("0 written, 2 rejected again"),
        "{}",
        text(&out.stdout)
    );

    mariadb().exec(&format!("ALTER TABLE {dst}.items MODIFY code VARCHAR(20)"));
    let out = datatrace(&dir, &job, &["dlq", "replay", "job.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("replayed 2 dead letter(s): 2 written, 0 rejected again"));
    assert_eq!(rows(&src, "items"), rows(&dst, "items"));
    let out = datatrace(&dir, &job, &["dlq", "list", "job.toml"]);
    assert!(text(&out.stdout).starts_with("0 dead letter(s)"));
}
