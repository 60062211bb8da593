//! Making sure a server and its temporary directory die with the test process, however that
//! process ends.
//!
//! Statics are never dropped in Rust, so a server held in a `OnceLock` cannot be stopped by a
//! destructor. Instead every temporary directory gets a [`Guard`]: a small `sh` process holding
//! the read end of a *lifeline* pipe whose write end only the test process has (std opens it
//! close-on-exec, so no other child inherits it). When the test process exits, panics, is
//! killed with SIGKILL or crashes, the kernel closes the write end; the guard reads end-of-file,
//! kills (SIGKILL: the data is thrown away anyway) every process whose command line refers to
//! a path inside the directory (`mariadb-install-db` and its bootstrap `mariadbd`, the server),
//! waits until they are gone and deletes the directory. Matching by the unique directory name
//! also catches processes started a moment before the test process died, and can never hit
//! an unrelated process. The guard runs in its own process group and ignores SIGINT, SIGHUP
//! and SIGTERM, so a Ctrl-C in the terminal stops the tests but not the cleanup.
//!
//! How to check that nothing is left behind (done by hand; a test cannot watch its own exit):
//! ```text
//! cargo test -p datatrace-testkit --test smoke; sleep 1
//! ps -eo pid,args | grep -E 'datatrace-|osmem-server' | grep -v grep   # nothing of ours
//! ls -d ${TMPDIR:-/tmp}/datatrace-*                                    # nothing
//! # and the same after `kill -KILL` / `kill -INT` of a test binary in the middle of its run
//! ```

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The guard: `$1` is the directory. It waits for end-of-file on stdin (the lifeline).
const GUARD: &str = r#"
dir=$1
trap '' INT HUP TERM
while read -r _; do :; done
# "$dir/" as a pattern that does not match itself, so grep does not find its own command line.
last=${dir#"${dir%?}"}
pattern="${dir%?}[$last]/"
users() {
  [ -d /proc/self ] || return 0
  grep -la -- "$pattern" /proc/[0-9]*/cmdline 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p' | grep -vx "$$"
}
i=0
while [ "$i" -lt 100 ]; do
  pids=$(users)
  [ -z "$pids" ] && break
  kill -KILL $pids 2>/dev/null
  sleep 0.05
  i=$((i+1))
done
rm -rf "$dir"
"#;

/// Deletes a directory, and kills every process using paths in it, when the test process
/// ends or when the guard is dropped.
pub(crate) struct Guard {
    reaper: Child,
    lifeline: Option<ChildStdin>,
}

impl Guard {
    /// Guards `dir` (which should have a name no other path starts with).
    pub(crate) fn new(dir: &Path) -> Result<Guard, String> {
        let mut reaper = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("datatrace-guard")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start the cleanup guard (sh) for {}: {e}",
                    dir.display()
                )
            })?;
        let lifeline = reaper.stdin.take();
        Ok(Guard { reaper, lifeline })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.reaper.wait();
    }
}

/// A server process with stdout and stderr going to a log file, in its own process group (so
/// a Ctrl-C meant for the tests does not reach it). Dropping it kills it.
pub(crate) struct Server {
    child: Child,
}

impl Server {
    /// Starts `program args`, appending its output to `log`.
    pub(crate) fn spawn(program: &Path, args: &[String], log: &Path) -> Result<Self, String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        Ok(Server { child })
    }

    /// True while the process has not exited.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound to port 0, then released for the server to take).
pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Creates a fresh directory `$TMPDIR/datatrace-<kind>-<pid>-<n>` (in `/tmp` when `$TMPDIR` is
/// so long that a Unix socket path inside it would not fit the 107 bytes allowed).
pub(crate) fn temp_dir(kind: &str) -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 60 {
        base = PathBuf::from("/tmp");
    }
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("datatrace-{kind}-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
}

/// True when the test process runs as root (servers then need `--user=root`).
pub(crate) fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
