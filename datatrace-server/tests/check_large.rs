//! A large equal table checks with bounded memory: `datatrace check` runs as a child
//! process and its peak resident memory (`VmHWM`, polled from /proc) must stay under a
//! generous bound whatever the table size.
//!
//! Rows: `CHECK_LARGE_ROWS` (default 200,000: large enough that holding the table would
//! show, small enough for a debug build in well under two minutes; the benchmark
//! `benches/check.rs` runs 1,000,000 in release).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use datatrace_testkit::{mariadb, procstat};
use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");
/// Peak RSS allowed, in kB.
const MAX_RSS_KB: u64 = 200 * 1024;

fn rows() -> u64 {
    std::env::var("CHECK_LARGE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

/// Runs `datatrace check` in `dir`, returns its exit code, JSON report and peak RSS (kB).
fn check_with_peak(dir: &PathBuf) -> (i32, Json, u64) {
    let child = Command::new(BIN)
        .args([
            "check",
            "job.toml",
            "--format",
            "json",
            "--recheck-delay",
            "0",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("datatrace starts");
    let watch = procstat::PeakWatch::start(child.id());
    let out = child.wait_with_output().expect("datatrace runs");
    let peak = watch.finish_kb();
    let report: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report, peak)
}

#[test]
fn large_equal_table_checks_with_bounded_memory() {
    let n = rows();
    let src = mariadb().create_database("chkbig");
    let dst = mariadb().create_database("chkbig");
    mariadb().exec(&format!(
        "CREATE TABLE {src}.t (id BIGINT PRIMARY KEY, a INT, b VARCHAR(32), c DECIMAL(10,2), \
           d DATETIME);
         INSERT INTO {src}.t SELECT seq, seq % 1000, CONCAT('row ', seq), seq / 100, \
           TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM {src}.seq_1_to_{n};
         CREATE TABLE {dst}.t LIKE {src}.t;
         INSERT INTO {dst}.t SELECT * FROM {src}.t;"
    ));
    let dir = std::env::temp_dir().join(format!("dt-check-large-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"big\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t\"]\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\ncreate_table = false\n\
             [checkpoints]\ndir = \"cp\"\n",
            mariadb().url_for(&src),
            mariadb().url_for(&dst)
        ),
    )
    .unwrap();

    let (code, report, peak) = check_with_peak(&dir);
    assert_eq!(code, 0, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["method"], "checksum");
    assert_eq!(u["source_rows"], n);
    assert_eq!(u["target_rows"], n);
    assert!(peak > 0, "VmHWM was read");
    assert!(peak < MAX_RSS_KB, "peak RSS {peak} kB for {n} rows");

    // One row changed and one deleted in the middle: found exactly, memory still bounded.
    let mid = n / 2;
    mariadb().exec(&format!(
        "UPDATE {dst}.t SET b = 'changed' WHERE id = {mid}; DELETE FROM {dst}.t WHERE id = {};",
        mid + 1
    ));
    let (code, report, peak) = check_with_peak(&dir);
    assert_eq!(code, 1, "{report}");
    let u = &report["units"][0];
    assert_eq!(u["different"], 1);
    assert_eq!(u["missing"], 1);
    assert_eq!(u["extra"], 0);
    assert_eq!(u["diffs"][0]["key"], mid.to_string());
    assert_eq!(u["diffs"][0]["fields"][0]["field"], "b");
    assert_eq!(u["missing_keys"][0], (mid + 1).to_string());
    assert!(u["chunks_differing"].as_u64().unwrap() <= 2, "{u}");
    assert!(peak < MAX_RSS_KB, "peak RSS {peak} kB for {n} rows");
    eprintln!("check of {n} rows: peak RSS {peak} kB");
}
