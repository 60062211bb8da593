//! The built `datatrace` binary on generator -> discard jobs: validate, run with progress and
//! summary, exit codes, Ctrl-C and resume, dead letters listed and replayed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

/// A fresh directory for one test's job file and checkpoints.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_job(dir: &Path, text: &str) {
    std::fs::write(dir.join("job.toml"), text).unwrap();
}

fn datatrace(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("datatrace runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

#[test]
fn validate_describes_a_good_job() {
    let dir = workdir("validate");
    write_job(
        &dir,
        r#"
name = "gen"
[source]
type = "generator"
units = ["a", "b"]
rows = 1000
[target]
type = "discard"
[[transforms]]
type = "drop"
fields = ["c2"]
[settings]
concurrency = 2
"#,
    );
    let out = datatrace(&dir, &["validate", "job.toml"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("job:          gen\n"), "{stdout}");
    assert!(stdout.contains("transforms:   drop\n"), "{stdout}");
    assert!(
        stdout.contains("units:        2\n  a -> a (discarded), ~1,000 rows, 10 columns\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("job.toml: ok\n"), "{stdout}");
}

#[test]
fn validate_reports_errors_with_file_key_and_expectation() {
    let dir = workdir("validate-bad");
    write_job(&dir, "name = \"gen\"\n[source]\ntype = \"generator\"\nrows = \"many\"\n[target]\ntype = \"discard\"\n");
    let out = datatrace(&dir, &["validate", "job.toml"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        text(&out.stderr),
        "error: job.toml: source.rows: expected a non-negative integer, found string \"many\"\n"
    );
    // A transform that does not fit the unit's schema is found before the run.
    write_job(&dir, "name = \"gen\"\n[source]\ntype = \"generator\"\nunits = [\"a\"]\ncolumns = 3\n[target]\ntype = \"discard\"\n[[transforms]]\ntype = \"drop\"\nfields = [\"nope\"]\n");
    let out = datatrace(&dir, &["validate", "job.toml"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        text(&out.stderr),
        "error: job.toml: transforms[0]: unit \"a\": drop: unknown field \"nope\" in generated \
         (fields: id, c1, c2)\n"
    );
    let out = datatrace(&dir, &["run", "job.toml"]);
    assert_eq!(code(&out), 2, "run checks the same before starting");
    assert!(text(&out.stderr).contains("unknown field \"nope\""));
    // A missing file.
    let out = datatrace(&dir, &["validate", "nope.toml"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).starts_with("error: nope.toml: cannot read the file: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_prints_progress_and_a_summary_and_skips_done_units_next_time() {
    let dir = workdir("run");
    write_job(
        &dir,
        "name = \"gen\"\n[source]\ntype = \"generator\"\nunits = [\"a\", \"b\", \"c\"]\nrows = 20000\n\
         [target]\ntype = \"discard\"\n[settings]\nconcurrency = 2\n",
    );
    let out = datatrace(&dir, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 0, "{stdout}{stderr}");
    for u in ["a", "b", "c"] {
        assert!(
            stderr.contains(&format!("[gen] {u}: running\n")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("[gen] {u}: done, 20,000/20,000 rows (100%)\n")),
            "{stderr}"
        );
        assert_eq!(
            row(&stdout, u)[..5],
            [u, "done", "20,000", "20,000", "0"],
            "{stdout}"
        );
    }
    assert!(stdout.starts_with("unit   state "), "{stdout}");
    assert_eq!(
        row(&stdout, "total")[..5],
        ["total", "done", "60,000", "60,000", "0"]
    );
    assert!(dir.join(".datatrace/gen/a.json").exists());

    let out = datatrace(&dir, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 0);
    assert!(
        stderr.contains("3 unit(s) done before (skipped)"),
        "{stderr}"
    );
    assert_eq!(
        row(&stdout, "a")[..3],
        ["a", "done before", "-"],
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, "total")[..4],
        ["total", "done", "0", "0"],
        "{stdout}"
    );

    let out = datatrace(&dir, &["run", "--restart", "job.toml"]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        row(&text(&out.stdout), "total")[..4],
        ["total", "done", "60,000", "60,000"]
    );
}

#[test]
fn a_failing_unit_makes_the_run_fail_and_names_the_record() {
    let dir = workdir("fail");
    // c2 holds letters: casting it to int rejects the first record; policy fail.
    write_job(
        &dir,
        "name = \"gen\"\n[source]\ntype = \"generator\"\nunits = [\"a\"]\nrows = 100\ncolumns = 3\n\
         [target]\ntype = \"discard\"\n[[transforms]]\ntype = \"cast\"\nfields = { c2 = \"int\" }\n",
    );
    let out = datatrace(&dir, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 1, "{stdout}{stderr}");
    assert_eq!(row(&stdout, "a")[1], "failed", "{stdout}");
    assert_eq!(row(&stdout, "total")[1], "failed", "{stdout}");
    assert!(
        stdout.contains(
            "unit a failed: unit a: record with key 0 rejected (transform): cast of field \"c2\""
        ),
        "{stdout}"
    );
    assert!(stderr.contains("[gen] a: failed: "), "{stderr}");
}

#[test]
fn dead_letters_are_kept_listed_and_replayed() {
    let dir = workdir("dlq");
    // c3 is i * 0.5: casting it to int rejects the odd rows.
    write_job(
        &dir,
        "name = \"gen\"\n[source]\ntype = \"generator\"\nunits = [\"a\"]\nrows = 10\ncolumns = 4\n\
         [target]\ntype = \"discard\"\n[[transforms]]\ntype = \"cast\"\nfields = { c3 = \"int\" }\n\
         [settings]\nerror_policy = \"dead-letter\"\n",
    );
    let out = datatrace(&dir, &["run", "job.toml"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert_eq!(
        row(&stdout, "a")[..5],
        ["a", "done", "10", "5", "5"],
        "{stdout}"
    );
    assert!(
        stdout.contains("5 record(s) went to the dead-letter queue .datatrace/gen/dead-letters.ndjson: see `datatrace dlq list job.toml`"),
        "{stdout}"
    );

    let out = datatrace(&dir, &["dlq", "list", "job.toml"]);
    let listed = text(&out.stdout);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[0].starts_with("#  unit  key  stage      attempts  time"),
        "{listed}"
    );
    assert!(
        lines[1].starts_with("1  a     1    transform  1         "),
        "{listed}"
    );
    assert!(
        lines[1].ends_with("cast of field \"c3\" in generated: float 0.5 is not an exact int"),
        "{listed}"
    );
    assert_eq!(lines.len(), 7, "{listed}");
    assert_eq!(
        lines[6],
        "5 dead letter(s) in .datatrace/gen/dead-letters.ndjson"
    );

    let out = datatrace(&dir, &["dlq", "list", "job.toml", "--format", "json"]);
    let keys: Vec<i64> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["unit"], "a");
            v["record"]["values"][0]["value"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(keys, [1, 3, 5, 7, 9]);

    let out = datatrace(&dir, &["dlq", "replay", "job.toml"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "replayed 5 dead letter(s): 5 written, 0 rejected again (kept in .datatrace/gen/dead-letters.ndjson)\n"
    );
    let out = datatrace(&dir, &["dlq", "list", "job.toml"]);
    assert_eq!(
        text(&out.stdout),
        "0 dead letter(s) in .datatrace/gen/dead-letters.ndjson\n"
    );
}

#[test]
fn ctrl_c_stops_gracefully_and_the_next_run_resumes() {
    let dir = workdir("sigint");
    let job = |rate: &str| {
        format!(
            "name = \"gen\"\n[source]\ntype = \"generator\"\nunits = [\"a\", \"b\"]\nrows = 40000\n\
             [target]\ntype = \"discard\"\n[settings]\nbatch_size = 500\ncheckpoint_interval = 50\n{rate}"
        )
    };
    // 40,000 rows at 4,000 rows/s: about 10 s per unit, one unit at a time.
    write_job(&dir, &job("rate_limit = { records_per_sec = 4000 }\n"));
    let child = Command::new(BIN)
        .args(["run", "job.toml", "--log-every", "0.5"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    wait_for_progress(&dir.join(".datatrace/gen/a.json"), started);
    std::thread::sleep(Duration::from_millis(1000));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 130, "{stdout}{stderr}");
    assert!(
        stderr.contains("stopping: writing what was read and saving checkpoints"),
        "{stderr}"
    );
    assert_eq!(row(&stdout, "a")[1], "stopped", "{stdout}");
    assert_eq!(row(&stdout, "b")[1..3], ["pending", "-"], "{stdout}");
    assert!(
        stdout.contains("run `datatrace run job.toml` again to resume"),
        "{stdout}"
    );
    let first: u64 = written_of(&stdout, "a");
    assert!(first > 0 && first < 40_000, "{stdout}");

    write_job(&dir, &job(""));
    let out = datatrace(&dir, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("0 unit(s) done before (skipped), 1 continue from their checkpoints"),
        "{stderr}"
    );
    assert_eq!(row(&stdout, "a")[1], "done (resumed)", "{stdout}");
    assert!(
        stderr.contains("[gen] a: running, resumed from its checkpoint\n"),
        "{stderr}"
    );
    let second = written_of(&stdout, "a");
    // The resumed run starts at the last checkpoint: nothing is lost, and only the rows
    // after the last source position of a part (the generator marks one every 1,000 rows)
    // are written again.
    assert!(second < 40_000, "resumed, not restarted: {stdout}");
    assert!(first + second >= 40_000, "nothing lost: {first} + {stdout}");
    assert!(
        first + second <= 40_000 + 1_000,
        "a bounded replay: {first} + {stdout}"
    );
    assert_eq!(written_of(&stdout, "b"), 40_000, "{stdout}");
}

#[test]
fn sigterm_stops_gracefully_too() {
    let dir = workdir("sigterm");
    write_job(
        &dir,
        "name = \"gen\"\n[source]\ntype = \"generator\"\nrows = 100000\n[target]\ntype = \"discard\"\n\
         [settings]\nbatch_size = 500\nrate_limit = { records_per_sec = 5000 }\n",
    );
    let child = Command::new(BIN)
        .args(["run", "job.toml"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    wait_for_progress(&dir.join(".datatrace/gen/generated.json"), started);
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 130, "{stdout}{}", text(&out.stderr));
    assert_eq!(row(&stdout, "generated")[1], "stopped", "{stdout}");
}

/// Waits until the unit's checkpoint shows a finished part (rows were written).
fn wait_for_progress(checkpoint: &Path, started: Instant) {
    while !std::fs::read_to_string(checkpoint).is_ok_and(|s| s.contains("\"done\": true")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress was checkpointed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The cells of a unit's summary row (columns are separated by two spaces or more):
/// unit, state, read, written, rejected, duration, rows/s.
fn row(summary: &str, unit: &str) -> Vec<String> {
    let line = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some(unit))
        .unwrap_or_else(|| panic!("no row for {unit} in {summary}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// The `written` column of a unit's summary row.
fn written_of(summary: &str, unit: &str) -> u64 {
    row(summary, unit)[3].replace(',', "").parse().unwrap()
}

#[test]
fn serve_refuses_to_start_without_a_token_or_an_admin() {
    let dir = workdir("serve-no-token");
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .env_remove("DATATRACE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr)
            .contains("no way to sign in: create the first admin with `datatrace user add"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_example_job_files_are_valid() {
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&jobs).unwrap() {
        let path = entry.unwrap().path();
        let out = Command::new(BIN)
            .args(["validate", "--offline"])
            .arg(&path)
            .envs([
                ("MYSQL_PASSWORD", "x"),
                ("SOURCE_PASSWORD", "x"),
                ("TARGET_PASSWORD", "x"),
                ("ES_SOURCE_PASSWORD", "x"),
                ("ES_TARGET_API_KEY", "id:key"),
            ])
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(
            code(&out),
            0,
            "{}: {stdout}{}",
            path.display(),
            text(&out.stderr)
        );
        assert!(
            stdout.contains("units:        not discovered (--offline)\n"),
            "{stdout}"
        );
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn dlq_list_of_a_missing_queue_is_empty() {
    let dir = workdir("dlq-file");
    let out = datatrace(&dir, &["dlq", "list", "--file", "nothing.ndjson"]);
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout), "0 dead letter(s) in nothing.ndjson\n");
    let out = datatrace(&dir, &["dlq", "list"]);
    assert_eq!(code(&out), 2, "a job file or --file is required");
}
