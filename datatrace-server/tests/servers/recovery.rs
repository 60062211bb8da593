//! Crashes and rejected rows: kill -9 then resume, dead letters replayed.

use std::process::Command;

use datatrace_testkit::mariadb;

use crate::common::*;

#[test]
fn kill_9_during_a_multi_table_job_then_run_again_gives_an_exact_copy() {
    let dir = workdir("kill9");
    let src = mariadb().create_database("dtkill");
    let dst = mariadb().create_database("dtkilldst");
    for t in ["t1", "t2", "t3"] {
        mariadb().exec(&format!(
            "CREATE TABLE {src}.{t} (id INT PRIMARY KEY, v VARCHAR(32), n DECIMAL(8,2));
             INSERT INTO {src}.{t} SELECT seq, CONCAT('{t}-', seq), seq / 4 FROM {src}.seq_1_to_1500;"
        ));
    }
    let job = |limit: &str| {
        format!(
            "name = \"kill9\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t*\"]\n\
             page_rows = 300\ncheckpoint_rows = 100\n[target]\ntype = \"mysql\"\nurl = \"{}\"\n\
             [settings]\nbatch_size = 100\ncheckpoint_interval = 20\n{limit}",
            mariadb().url_for(&src),
            mariadb().url_for(&dst)
        )
    };
    // About 1.5 s per table, one table at a time; killed somewhere in the 4.5 s.
    std::fs::write(
        dir.join("job.toml"),
        job("rate_limit = { records_per_sec = 600 }\n"),
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
            let cp = dir.join(format!(".datatrace/kill9/{src}.{t}.json"));
            std::fs::read_to_string(cp).is_ok_and(|s| s.contains("\"state\": \"done\""))
        })
        .map(|t| format!("{src}.{t}"))
        .collect();
    let out = datatrace(&dir, &job(""), &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    eprintln!("done before the kill: {done_before:?}\n{stdout}");
    for t in ["t1", "t2", "t3"] {
        assert_eq!(rows(&src, t), rows(&dst, t), "table {t}");
        let unit = format!("{src}.{t}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{unit} ")))
            .unwrap_or_else(|| panic!("no row for {unit}: {stdout}"));
        if done_before.contains(&unit) {
            assert!(
                line.contains("done before"),
                "finished units are not redone: {stdout}"
            );
        }
    }
    assert_eq!(rows(&dst, "t2").lines().count(), 1500);
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
