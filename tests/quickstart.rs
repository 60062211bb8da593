//! Runs `scripts/quickstart.sh --small` (as CI does) in a private directory, twice (the second
//! run reuses the servers), checks that the copy's document counts equal the row counts and
//! that the sample document is shown, then `scripts/quickstart.sh stop` and checks that both
//! servers are gone and their directory removed. A drop guard runs `stop` even when an
//! assertion fails, so no server is left behind.
//!
//! The script gets `DATATRACE_BIN`: the `datatrace` binary of this build (cargo builds it for
//! datatrace-server's tests; `cargo test` holds the lock of the target directory, so the
//! script must not build it itself). When it is missing (only this package's tests were
//! built), it is built once into a separate target directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the quickstart with `arg` in `dir`; stdout and stderr together.
fn quickstart(dir: &Path, arg: &str) -> (Output, String) {
    quickstart_with(dir, &[arg])
}

/// Runs the quickstart with `args` in `dir`; stdout and stderr together.
fn quickstart_with(dir: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new("bash")
        .arg(root().join("scripts/quickstart.sh"))
        .args(args)
        .env("QUICKSTART_DIR", dir)
        // The client compiler only: the node starts in half the time; the shop is small.
        .env("DATATRACE_ENGINE_JIT", "c1")
        .env("DATATRACE_BIN", datatrace_bin())
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/quickstart.sh");
    let text = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// Stops the quickstart's servers when dropped (also when the test panics).
struct Stop(PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = quickstart(&self.0, "stop");
        }
    }
}

fn datatrace_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/quickstart-HASH
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = profile_dir.join("datatrace");
    if bin.exists() {
        return bin;
    }
    let target = profile_dir
        .parent()
        .unwrap_or(profile_dir)
        .join("quickstart-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "datatrace-server", "--bin", "datatrace"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(root())
        .status()
        .expect("cargo build");
    assert!(status.success(), "building datatrace failed");
    target.join("debug/datatrace")
}

/// Whether a process runs (zombies, which nobody may have reaped yet, count as gone).
fn running(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Checks the counts table: every table with equal, non-zero MySQL and ES counts.
fn check_counts(text: &str) {
    assert!(!text.contains("MISMATCH"), "{text}");
    for table in ["customers", "products", "orders", "order_items"] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no count line for {table}:\n{text}"));
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "{line}");
        let rows: u64 = f[1].parse().expect("rows");
        assert!(rows > 0, "{line}");
        assert_eq!(f[1], f[2], "{table}: rows vs docs:\n{text}");
        assert_eq!(f[3], "ok", "{line}");
    }
}

#[test]
fn quickstart_small_copies_the_shop_and_stop_removes_everything() {
    let dir = std::env::temp_dir().join(datatrace_testkit::unique_name("quickstart"));
    let guard = Stop(dir.clone());

    let (out, text) = quickstart(&dir, "--small");
    assert!(out.status.success(), "quickstart failed:\n{text}");
    check_counts(&text);
    // Live progress (plain lines: no terminal here), the summary and the sample.
    assert!(text.contains("[quickstart] shop.orders: running"), "{text}");
    assert!(
        text.contains("[quickstart] shop.order_items: done"),
        "{text}"
    );
    assert!(text.contains("products row 20 in MySQL:"), "{text}");
    assert!(text.contains("sku: SKU-000020"), "{text}");
    assert!(text.contains("\"sku\": \"SKU-000020\""), "{text}");
    assert!(
        text.contains("\"price\": 186.30"),
        "exact decimal shown:\n{text}"
    );
    assert!(text.contains("scripts/quickstart.sh stop"), "{text}");

    let pid = |f: &str| std::fs::read_to_string(dir.join(f)).expect("pid file");
    let (db_pid, os_pid) = (pid("mariadb/mariadbd.pid"), pid("engine/pid"));
    let (db_pid, os_pid) = (db_pid.trim(), os_pid.trim());
    assert!(running(db_pid) && running(os_pid));

    // Again: the servers are reused, the shop reloaded and copied afresh.
    let (out, text) = quickstart(&dir, "--small");
    assert!(out.status.success(), "second run failed:\n{text}");
    assert!(text.contains("MariaDB already running"), "{text}");
    assert!(text.contains("opensearch already running"), "{text}");
    check_counts(&text);

    let (out, text) = quickstart(&dir, "env");
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("export MYSQL_URL=mysql://root@127.0.0.1:"),
        "{text}"
    );

    let (out, text) = quickstart(&dir, "stop");
    assert!(out.status.success(), "stop failed:\n{text}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while (running(db_pid) || running(os_pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!running(db_pid), "mariadbd {db_pid} still running");
    assert!(!running(os_pid), "opensearch {os_pid} still running");
    assert!(!dir.exists(), "{} not removed", dir.display());
    drop(guard);
}

#[test]
fn quickstart_denormal_documents_build_one_document_per_order() {
    let dir = std::env::temp_dir().join(datatrace_testkit::unique_name("quickstart-docs"));
    let guard = Stop(dir.clone());
    let (out, text) = quickstart_with(&dir, &["--documents", "--small"]);
    assert!(
        out.status.success(),
        "quickstart --documents failed:\n{text}"
    );
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("document "))
        .find(|l| l.split_whitespace().next() == Some("orders"))
        .unwrap_or_else(|| panic!("no count line:\n{text}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{line}");
    assert_eq!(f[1], f[2], "orders vs documents:\n{text}");
    assert!(text.contains("\"items\": [{"), "{text}");
    assert!(text.contains("\"tags\": ["), "{text}");
    assert!(text.contains("quantity >= 3: SQL "), "{text}");
    assert!(text.contains("equal: 1 unit(s) checked"), "{text}");
    let (out, text) = quickstart(&dir, "stop");
    assert!(out.status.success(), "stop failed:\n{text}");
    drop(guard);
}
