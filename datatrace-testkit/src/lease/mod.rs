//! One slow-starting server (a JVM broker or search engine) per test run, shared by every test
//! process through a lease directory, `<target>/datatrace-shared/<name>/`:
//!
//! - `lock`: taken (flock) by whoever reads or changes the rest;
//! - `server.json`: the running server: `{"keeper":K,"server":S,"ready":{...},"home":"..."}`;
//! - `leases/PID`: one file per leaseholder, holding its start time (so a reused process id
//!   is no leaseholder): every test process that asks for the server, and the `cargo` process
//!   that runs it, which keeps the server up between test binaries.
//!
//! The first process finds no live server, starts a keeper (`keeper.sh`, detached in its own
//! process group, immune to Ctrl-C) that starts the server as its child, waits for the server's
//! `HOME/ready.json` and records `server.json`. The keeper stops the server and deletes its
//! data [`GRACE_SECS`] seconds after the last lease went away; the server halts by itself if the
//! keeper is killed (it watches the pid the keeper passes in an environment variable).
//! Separate workspaces (clones) have separate target directories, so separate servers.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::{workspace_root, SETUP_HINT};
use crate::watchdog::temp_dir;

const KEEPER: &str = include_str!("keeper.sh");
/// How long a server stays up with no leaseholder (cargo runs test binaries one after another).
const GRACE_SECS: u32 = 5;
/// Long enough for a cold JVM on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// How to install, run and probe one kind of shared server.
pub(crate) struct ServerSpec<'a> {
    /// The lease directory's name (`kafka`, `engine-opensearch`).
    pub name: &'a str,
    /// The script under `scripts/` that installs and runs it: `bash SCRIPT install ARGS`, then
    /// `bash SCRIPT run-node ARGS HOME SETTINGS` under the keeper; `run-node` must write
    /// `HOME/ready.json` with at least `{"port":P,"pid":N}` once the server serves.
    pub script: &'a str,
    /// Arguments naming what to install and run (a flavor).
    pub args: &'a [&'a str],
    /// Settings passed after the home directory.
    pub settings: &'a [&'a str],
    /// The variable through which the server learns its keeper's pid.
    pub keeper_var: &'a str,
    /// Extra environment for the server.
    pub env: &'a [(&'a str, &'a str)],
    /// Whether the server named by a ready file still serves (a cheap probe).
    pub serves: fn(&serde_json::Value) -> bool,
}

/// The ready file of the shared server of `spec`, started if need be.
pub(crate) fn shared(spec: &ServerSpec<'_>) -> Result<serde_json::Value, String> {
    let script = workspace_root().join("scripts").join(spec.script);
    install(&script, spec)?;
    let dir = lease_dir(spec.name);
    fs::create_dir_all(dir.join("leases"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|e| format!("cannot open {}/lock: {e}", dir.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}/lock: {e}", dir.display()))?;
    take_lease(&dir, std::process::id())?;
    if let Some(cargo) = cargo_parent() {
        take_lease(&dir, cargo)?;
    }
    if let Some(ready) = running(&dir, spec) {
        return Ok(ready);
    }
    let ready = start(&script, &dir, spec)?;
    drop(lock);
    Ok(ready)
}

/// Runs `SCRIPT install` (fetches the jars once, compiles the launcher once).
fn install(script: &Path, spec: &ServerSpec<'_>) -> Result<(), String> {
    let name = spec.name;
    if !script.exists() {
        return Err(format!(
            "datatrace-testkit: {} is missing; {SETUP_HINT}",
            script.display()
        ));
    }
    let out = Command::new("bash")
        .arg(script)
        .arg("install")
        .args(spec.args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "datatrace-testkit: cannot run bash {}: {e}",
                script.display()
            )
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "datatrace-testkit: could not install {name} ({} install failed: {}); {SETUP_HINT}\n{}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn lease_dir(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("datatrace-shared").join(name)
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(") ")? + 2..];
    after_comm.split(' ').nth(19).map(str::to_string)
}

fn take_lease(dir: &Path, pid: u32) -> Result<(), String> {
    let Some(started) = start_time(pid) else {
        return Ok(());
    };
    let path = dir.join("leases").join(pid.to_string());
    fs::write(&path, started).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The `cargo` (or `cargo-nextest`) process running this test binary, if that is the parent.
fn cargo_parent() -> Option<u32> {
    let parent = std::os::unix::process::parent_id();
    let comm = fs::read_to_string(format!("/proc/{parent}/comm")).ok()?;
    comm.trim().starts_with("cargo").then_some(parent)
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The ready file of the server `server.json` names, if its keeper and server are alive and
/// it serves.
fn running(dir: &Path, spec: &ServerSpec<'_>) -> Option<serde_json::Value> {
    let text = fs::read_to_string(dir.join("server.json")).ok()?;
    let info: serde_json::Value = serde_json::from_str(&text).ok()?;
    if !alive(info["keeper"].as_u64()?) || !alive(info["server"].as_u64()?) {
        return None;
    }
    let ready = info["ready"].clone();
    (spec.serves)(&ready).then_some(ready)
}

fn start(script: &Path, dir: &Path, spec: &ServerSpec<'_>) -> Result<serde_json::Value, String> {
    let home = temp_dir(spec.name)?;
    let began = Instant::now();
    let mut keeper = Command::new("sh");
    keeper
        .arg("-c")
        .arg(KEEPER)
        .arg(format!("datatrace-{}-keeper", spec.name))
        .arg(dir)
        .arg(&home)
        .arg(GRACE_SECS.to_string())
        .arg(spec.keeper_var)
        .arg("bash")
        .arg(script)
        .arg("run-node")
        .args(spec.args)
        .arg(&home)
        .args(spec.settings)
        .envs(spec.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut keeper = keeper
        .spawn()
        .map_err(|e| format!("cannot start the {} keeper (sh): {e}", spec.name))?;
    let log = home.join("server.log");
    let failure = |what: String| {
        let log_text = fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log_text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "datatrace-testkit: {} {what}; {SETUP_HINT}\nits log ({}):\n{}",
            spec.name,
            log.display(),
            tail.join("\n")
        )
    };
    let ready_path = home.join("ready.json");
    let ready = loop {
        if let Ok(text) = fs::read_to_string(&ready_path) {
            if let Ok(info) = serde_json::from_str::<serde_json::Value>(&text) {
                break info;
            }
        }
        if !matches!(keeper.try_wait(), Ok(None)) {
            return Err(failure("keeper exited during start-up".into()));
        }
        let pid = fs::read_to_string(home.join("server.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<u64>() {
            if !alive(pid) {
                return Err(failure("exited during start-up".into()));
            }
        }
        if began.elapsed() > START_TIMEOUT {
            let _ = keeper.kill();
            return Err(failure(format!("did not start within {START_TIMEOUT:?}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let server = ready["pid"].as_u64().unwrap_or(0);
    // `"keeper":K,` is what the keeper greps for before removing the file: keep it first.
    let text = format!(
        "{{\"keeper\":{},\"server\":{server},\"start_ms\":{},\"ready\":{ready},\"home\":{}}}\n",
        keeper.id(),
        began.elapsed().as_millis(),
        serde_json::Value::from(home.display().to_string()),
    );
    write_atomically(&dir.join("server.json"), &text)?;
    Ok(ready)
}

fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut file =
        File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))
}

#[cfg(test)]
mod tests {
    use super::start_time;

    #[test]
    fn reads_a_process_start_time() {
        let started = start_time(std::process::id()).expect("own start time");
        assert!(started.parse::<u64>().is_ok(), "{started}");
        assert_eq!(start_time(u32::MAX), None);
    }
}
