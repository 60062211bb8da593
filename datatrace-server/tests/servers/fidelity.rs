//! Fidelity at the command line: a table without a key copied again with `--restart` is
//! emptied first and the run says so (before, its rows were duplicated); `validate` refuses
//! such a table into Elasticsearch naming the table and the `key` setting.

use datatrace_testkit::{engine, mariadb};

use crate::common::*;

#[test]
fn fidelity_restart_of_a_keyless_copy_empties_the_target_and_says_so() {
    let dir = workdir("fid-keyless");
    let src = mariadb().create_database("fid_cli_src");
    let dst = mariadb().create_database("fid_cli_dst");
    mariadb().exec(&format!(
        "CREATE TABLE `{src}`.bag (a INT, b VARCHAR(5)); INSERT INTO `{src}`.bag VALUES (1,'x'), (1,'x'), (2,NULL);"
    ));
    let job = format!(
        "name = \"fidkl\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"bag\"]\n\
         [target]\ntype = \"mysql\"\nurl = \"{}\"\n",
        mariadb().url_for(&src),
        mariadb().url_for(&dst)
    );
    for args in [
        &["run", "job.toml"][..],
        &["run", "job.toml", "--restart"][..],
    ] {
        let out = datatrace(&dir, &job, args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(
            stderr.contains("emptying the target table")
                || stdout.contains("emptying the target table"),
            "{stdout}{stderr}"
        );
        assert_eq!(rows(&dst, "bag"), rows(&src, "bag"));
    }
    // Into an index it needs a key: refused before anything moves, naming table and setting.
    let job = format!(
        "name = \"fidkles\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"bag\"]\n\
         [target]\ntype = \"elasticsearch\"\nurl = \"{}\"\n",
        mariadb().url_for(&src),
        engine().url()
    );
    let out = datatrace(&dir, &job, &["validate", "job.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{src}.bag")) && stderr.contains("source.key"),
        "{stderr}"
    );
}

/// A stream of a keyless table into MySQL may change a row twice after a crash (replayed
/// changes find rows by their values): `validate` says so, naming the table and the `key`
/// setting, and `run` logs it at start; with a `key`, or in a copy, it does not.
#[test]
fn fidelity_validate_and_run_warn_of_a_keyless_table_in_a_stream() {
    let dir = workdir("fid-keyless-stream");
    let src = mariadb().create_database("fid_cliw_src");
    let dst = mariadb().create_database("fid_cliw_dst");
    mariadb().exec(&format!(
        "CREATE TABLE `{src}`.bag (a INT NOT NULL, b VARCHAR(5));"
    ));
    let job = |extra: &str| {
        format!(
            "name = \"fidklw\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"bag\"]\n{extra}\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\n",
            mariadb().url_for(&src),
            mariadb().url_for(&dst)
        )
    };
    let cdc = "cdc = { server_id = 9417, heartbeat_secs = 1 }";
    let out = datatrace(
        &dir,
        &job(&format!("mode = \"cdc\"\n{cdc}")),
        &["validate", "job.toml"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let warned: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warned.len(), 1, "{stdout}");
    assert!(
        warned[0].contains(&format!("{src}.bag")) && warned[0].contains("`key`"),
        "{stdout}"
    );
    for extra in [
        format!("mode = \"cdc\"\nkey = {{ bag = [\"a\"] }}\n{cdc}"),
        String::new(),
    ] {
        let out = datatrace(&dir, &job(&extra), &["validate", "job.toml"]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        assert!(!stdout.contains("warning:"), "{extra}: {stdout}");
    }
    // `run` logs the same warning once, at start: before the snapshot of the keyless table
    // empties the target table (a line it logs), after which the running stream is killed.
    mariadb().exec(&format!("INSERT INTO `{src}`.bag VALUES (1,'x'), (1,'x');"));
    std::fs::write(
        dir.join("job.toml"),
        job("mode = \"snapshot+cdc\"\ncdc = { server_id = 9418, heartbeat_secs = 1 }"),
    )
    .unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["run", "job.toml", "--progress", "plain"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut before = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap())) {
        let line = line.unwrap();
        if line.contains("emptying the target table") {
            break;
        }
        before.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let warned: Vec<&String> = before
        .iter()
        .filter(|l| l.contains(&format!("{src}.bag")) && l.contains("changed twice"))
        .collect();
    assert_eq!(warned.len(), 1, "{before:#?}");
    assert!(
        warned[0].contains("WARN") && warned[0].contains("`key`"),
        "{before:#?}"
    );
}
