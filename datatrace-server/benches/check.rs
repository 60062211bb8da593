//! `datatrace check` of a 1,000,000-row MySQL -> MySQL copy, beside pt-table-checksum-style
//! chunked checksums written by hand in SQL (and `CHECKSUM TABLE`) in the same run.
//!
//! `cargo bench -p datatrace-server --bench check` (release). `BENCH_ROWS` (default
//! 1,000,000), `BENCH_CHUNK` (rows per range, default 10,000). The table is the MySQL copy
//! benchmark's: 10 columns (BIGINT key, INT, BIGINT, VARCHAR(64), DECIMAL(18,4),
//! DATETIME(6), ~200-byte TEXT, INT UNSIGNED, VARCHAR(32), DOUBLE), about 330 MB per
//! million rows; the target is made with `INSERT .. SELECT`. Prints seconds and the peak
//! RSS of the `datatrace check` process (VmHWM, polled), for an equal target and for one
//! with 20 rows changed across the table.

use std::process::{Command, Stdio};
use std::time::Instant;

use datatrace_testkit::procstat;

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `datatrace check` in `dir`: (seconds, peak RSS MB, exit code, stdout).
fn datatrace_check(dir: &std::path::Path, chunk: u64) -> (f64, f64, i32, String) {
    let t0 = Instant::now();
    let child = Command::new(BIN)
        .args(["check", "job.toml", "--recheck-delay", "0", "--chunk-size"])
        .arg(chunk.to_string())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("datatrace starts");
    let watch = procstat::PeakWatch::start(child.id());
    let out = child.wait_with_output().expect("datatrace runs");
    let secs = t0.elapsed().as_secs_f64();
    let peak = watch.finish();
    (
        secs,
        peak,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const COLS: &[&str] = &["id", "a", "b", "c", "d", "e", "f", "g", "h", "i"];

/// pt-table-checksum's per-chunk query, by hand: one script of range queries per server.
fn hand_checksums(db: &datatrace_testkit::MariaDb, d: &str, rows: u64, chunk: u64) -> String {
    let cols = COLS.join(", ");
    let nulls: Vec<String> = COLS.iter().map(|c| format!("ISNULL({c})")).collect();
    let mut sql = format!("USE `{d}`;\n");
    let mut lo = 0;
    while lo < rows {
        let hi = (lo + chunk).min(rows);
        sql.push_str(&format!(
            "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS('#', {cols}, CONCAT({})))), 0) \
             FROM t WHERE id > {lo} AND id <= {hi};\n",
            nulls.join(", ")
        ));
        lo = hi;
    }
    db.exec(&sql)
}

fn main() {
    let rows = env("BENCH_ROWS", 1_000_000);
    let chunk = env("BENCH_CHUNK", 10_000);
    let db = datatrace_testkit::mariadb();
    let src = db.create_database("chkbench_src");
    let dst = db.create_database("chkbench_dst");
    db.exec("SET GLOBAL innodb_buffer_pool_size = 1073741824");
    let ddl = "CREATE TABLE t (
        id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT, c VARCHAR(64), d DECIMAL(18,4),
        e DATETIME(6), f TEXT, g INT UNSIGNED, h VARCHAR(32), i DOUBLE) DEFAULT CHARSET=utf8mb4";
    let t0 = Instant::now();
    db.exec(&format!(
        "USE `{src}`; {ddl}; INSERT INTO t SELECT seq, seq % 1000, seq * 7919, CONCAT('name-', seq), seq / 3,
         '2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
         RPAD(CONCAT('text ', MD5(seq)), 200, ' lorem ipsum'), seq % 65536, LEFT(SHA1(seq), 20), seq / 7
         FROM seq_1_to_{rows}; USE `{dst}`; {ddl}; INSERT INTO t SELECT * FROM `{src}`.t;"
    ));
    println!(
        "generated {rows} rows and their copy in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("dt-check-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("job.toml"),
        format!(
            "name = \"bench\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t\"]\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\ncreate_table = false\n",
            db.url_for(&src),
            db.url_for(&dst)
        ),
    )
    .expect("job file");
    // Warm the buffer pool the same way for everyone.
    db.exec(&format!(
        "CHECKSUM TABLE `{src}`.t; CHECKSUM TABLE `{dst}`.t;"
    ));

    let (secs, peak, code, out) = datatrace_check(&dir, chunk);
    assert_eq!(code, 0, "equal copy: {out}");
    println!(
        "datatrace check (equal):        {secs:6.2} s  {:>9.0} rows/s  peak RSS {peak:.0} MB",
        rows as f64 / secs
    );

    let t = Instant::now();
    let a = hand_checksums(db, &src, rows, chunk);
    let b = hand_checksums(db, &dst, rows, chunk);
    let hand = t.elapsed().as_secs_f64();
    assert_eq!(a, b);
    println!(
        "hand-written chunked CRC32 SQL: {hand:6.2} s  {:>9.0} rows/s  (both servers, one after the other)",
        rows as f64 / hand
    );

    let t = Instant::now();
    let x = db.exec(&format!("CHECKSUM TABLE `{src}`.t"));
    let y = db.exec(&format!("CHECKSUM TABLE `{dst}`.t"));
    let whole = t.elapsed().as_secs_f64();
    assert_eq!(x.split('\t').nth(1), y.split('\t').nth(1));
    println!("CHECKSUM TABLE (whole tables):  {whole:6.2} s  (no chunks, no keys)");

    let step = rows / 20;
    let ids: Vec<String> = (0..20).map(|i| (1 + i * step).to_string()).collect();
    db.exec(&format!(
        "UPDATE `{dst}`.t SET c = 'changed' WHERE id IN ({})",
        ids.join(", ")
    ));
    let (secs, peak, code, out) = datatrace_check(&dir, chunk);
    assert_eq!(code, 1, "corrupted copy: {out}");
    assert!(out.contains("0 missing, 0 extra, 20 different"), "{out}");
    println!(
        "datatrace check (20 changed):   {secs:6.2} s  {:>9.0} rows/s  peak RSS {peak:.0} MB",
        rows as f64 / secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}
