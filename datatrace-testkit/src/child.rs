//! A benchmark binary re-executed as its own child, so that the CPU seconds and peak memory
//! one run reports ([`crate::procstat`]) are that run's alone: the parent sets an environment
//! variable naming the child's role, the child does its one job and prints a
//! `RESULT v1 v2 ...` line, and the parent reads the numbers back. Also the testkit's bulk
//! endpoint served from such a child, so its CPU is not the client's.
//!
//! ```no_run
//! use datatrace_testkit::child;
//!
//! const ROLE: &str = "MY_BENCH_ROLE";
//! if std::env::var(ROLE).is_ok() {
//!     // ... one copy ...
//!     println!("RESULT {} {}", 1000, datatrace_testkit::procstat::peak_rss_mb());
//!     return;
//! }
//! let result = child::run_result(ROLE, "copy", &[("SRC", "db1".to_string())]);
//! let (written, rss) = (result[0], result[1]);
//! # let _ = (written, rss);
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn this_binary(role_var: &str, role: &str) -> Command {
    let exe = std::env::current_exe().expect("the path of this benchmark binary");
    let mut cmd = Command::new(exe);
    cmd.env(role_var, role);
    cmd
}

/// Runs this binary with `role_var=role` and `env`, its standard error passed through, and
/// returns the numbers of the `RESULT ...` line it prints (a value that is not a number reads
/// as 0). Panics, with the child's output, when it fails or prints no such line.
pub fn run_result(role_var: &str, role: &str, env: &[(&str, String)]) -> Vec<f64> {
    let out = this_binary(role_var, role)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::inherit())
        .output()
        .expect("run the benchmark's child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{role} failed:\n{text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{role}: no RESULT line:\n{text}"));
    line.split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect()
}

/// Starts this binary with `role_var=role`, standard input and output piped, and returns it
/// with the first line it prints (an address, say). The child runs until its standard input
/// is closed (`drop(child.stdin.take())`) if it serves like [`serve_bulk_endpoint`].
pub fn spawn_line(role_var: &str, role: &str) -> (Child, String) {
    let mut child = this_binary(role_var, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the benchmark's child");
    let out = child.stdout.take().expect("the child's stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("the child's first line");
    (child, line.trim().to_string())
}

/// In a child started by [`spawn_line`]: serves `ep` (a [`crate::bulk::BulkEndpoint`]),
/// prints its URL, and returns when standard input closes (the parent is done or gone).
pub fn serve_bulk_endpoint(ep: crate::bulk::BulkEndpoint) {
    println!("{}", ep.url());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
