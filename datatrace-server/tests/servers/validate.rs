//! `validate` against real servers: unreachable servers, missing tables and indices, secrets.

use std::process::Command;

use datatrace_testkit::{engine, mariadb, unique_name};

use crate::common::*;

#[test]
fn validate_names_an_unreachable_mysql_server() {
    let dir = workdir("unreachable-mysql");
    let port = closed_port();
    let job = format!(
        "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"mysql://root:hunter2@127.0.0.1:{port}/shop\"\n\
         tables = [\"shop.*\"]\nconnect_timeout_secs = 2\n[target]\ntype = \"discard\"\n"
    );
    let out = datatrace(&dir, &job, &["validate", "job.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "error: job.toml: source.url: cannot connect to mysql://root:***@127.0.0.1:{port}/shop: \
         connecting to 127.0.0.1:{port}: "
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!text(&out.stdout).contains("hunter2"));
}

#[test]
fn validate_names_an_unreachable_elasticsearch_server() {
    let dir = workdir("unreachable-es");
    let port = closed_port();
    let job = format!(
        "name = \"j\"\n[source]\ntype = \"generator\"\n[target]\ntype = \"elasticsearch\"\n\
         url = \"http://127.0.0.1:{port}\"\nretry = {{ max_attempts = 1, initial_backoff = 10, max_backoff = 10 }}\n"
    );
    let out = datatrace(&dir, &job, &["validate", "job.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected =
        format!("error: job.toml: target.url: cannot reach the cluster at http://127.0.0.1:{port}");
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn validate_names_a_missing_table_and_an_empty_pattern() {
    let dir = workdir("missing-table");
    let db = source_db(3);
    let url = mariadb().url_for(&db);
    let job = |tables: &str| {
        format!(
            "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"{url}\"\ntables = {tables}\n\
             [target]\ntype = \"discard\"\n"
        )
    };
    let out = datatrace(
        &dir,
        &job(&format!("[\"{db}.users\", \"{db}.nope\"]")),
        &["validate", "job.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: job.toml: source.tables[1]: selecting table {db}.nope: table not found: \
             Table '{db}.nope' doesn't exist\n"
        )
    );
    let out = datatrace(&dir, &job("[\"zz_*\"]"), &["validate", "job.toml"]);
    assert_eq!(
        text(&out.stderr),
        format!("error: job.toml: source.tables[0]: no table matches \"zz_*\" on {url}\n")
    );
    let out = datatrace(
        &dir,
        &job("[\"users\", \"orders\"]"),
        &["validate", "job.toml"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "units:        2\n  {db}.users -> {db}.users (discarded)"
        )),
        "{stdout}"
    );
}

#[test]
fn validate_names_a_missing_index_and_lists_the_indices_of_a_pattern() {
    let dir = workdir("missing-index");
    let a = source_index(3);
    let missing = unique_name("nope");
    let job = |indices: &str, exclude: &str| {
        format!(
            "name = \"j\"\n[source]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindices = {indices}\n{exclude}\
             [target]\ntype = \"discard\"\n",
            engine().url()
        )
    };
    let out = datatrace(
        &dir,
        &job(&format!("[\"{a}\", \"{missing}\"]"), ""),
        &["validate", "job.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("error: job.toml: source.indices[1]: index {missing} does not exist\n")
    );
    // A pattern: every matching index is a unit; `exclude` leaves some out.
    let b = source_index(2);
    let common = common_prefix(&a, &b);
    let out = datatrace(
        &dir,
        &job(&format!("[\"{common}*\"]"), ""),
        &["validate", "job.toml"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("  {a} -> {a} (discarded), ~3 rows")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  {b} -> {b} (discarded), ~2 rows")),
        "{stdout}"
    );
    let out = datatrace(
        &dir,
        &job(&format!("[\"{a}\"]"), &format!("exclude = [\"{a}\"]\n")),
        &["validate", "job.toml"],
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: job.toml: source.indices[0]: no index matches \"{a}\" (after exclude) on {}\n",
            engine().url()
        )
    );
}

#[test]
fn passwords_from_the_environment_never_show() {
    let dir = workdir("secret");
    let job = format!(
        "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\npassword = \"${{DT_TEST_MYSQL_PASSWORD}}\"\n\
         tables = [\"mysql.user\"]\n[target]\ntype = \"discard\"\n",
        mariadb().url()
    );
    std::fs::write(dir.join("job.toml"), &job).unwrap();
    let run = |env: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(["validate", "job.toml"]).current_dir(&dir);
        match env {
            Some(v) => c.env("DT_TEST_MYSQL_PASSWORD", v),
            None => c.env_remove("DT_TEST_MYSQL_PASSWORD"),
        };
        c.output().unwrap()
    };
    let out = run(None);
    assert_eq!(
        text(&out.stderr),
        "error: job.toml: source.password: environment variable DT_TEST_MYSQL_PASSWORD is not set\n"
    );
    let out = run(Some("Sw0rdfish-zz"));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: job.toml: source.url: cannot connect to {}: connecting to 127.0.0.1:{}: access denied",
            mariadb().url(),
            mariadb().port()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Sw0rdfish") && !stdout.contains("Sw0rdfish"),
        "{stdout}{stderr}"
    );
}

#[test]
fn validate_checks_mysql_targets_before_the_run() {
    let dir = workdir("mysql-target");
    let src = source_db(2);
    let dst = mariadb().create_database("dtnotab");
    let job = |target: &str| {
        format!(
            "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"users\"]\n\
             [target]\ntype = \"mysql\"\n{target}\n",
            mariadb().url_for(&src)
        )
    };
    let out = datatrace(
        &dir,
        &job(&format!(
            "url = \"{}\"\ncreate_table = false",
            mariadb().url_for(&dst)
        )),
        &["validate", "job.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: job.toml: target.table: selecting table {dst}.users: table not found: Table \
             '{dst}.users' doesn't exist (create_table = false: the target table must exist)\n"
        )
    );
    let out = datatrace(
        &dir,
        &job(&format!("url = \"{}\"", mariadb().url_for(&src))),
        &["validate", "job.toml"],
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: job.toml: target: the target table {src}.users is the source table: write to \
             another database or set `table` (e.g. \"{{table}}_copy\")\n"
        )
    );
    let out = datatrace(
        &dir,
        &job(&format!("url = \"{}\"", mariadb().url())),
        &["validate", "job.toml"],
    );
    assert_eq!(
        text(&out.stderr),
        "error: job.toml: target: no target database: name one in the URL (mysql://host:3306/db) or in `database`\n"
    );
    let out = datatrace(&dir, &job("url = 5"), &["validate", "job.toml"]);
    assert_eq!(
        text(&out.stderr),
        "error: job.toml: target.url: expected a string, found integer `5`\n"
    );
    let out = datatrace(
        &dir,
        &job(&format!(
            "url = \"{}\"\ntable = \"{{tbl}}\"",
            mariadb().url()
        )),
        &["validate", "job.toml"],
    );
    assert_eq!(
        text(&out.stderr),
        "error: job.toml: target.table: unknown placeholder {tbl} in \"{tbl}\": expected {table} or {db}\n"
    );
}
