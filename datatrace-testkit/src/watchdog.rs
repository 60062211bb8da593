//! Running a server so that it dies with the test process, however that process ends.
//!
//! Statics are never dropped in Rust, so a server held in a `OnceLock` cannot be stopped by a
//! destructor. Instead every server gets a *lifeline*: a pipe whose write end only the test
//! process holds (std opens it close-on-exec, so no other child inherits it). When the test
//! process exits, panics, is killed with SIGKILL or crashes, the kernel closes the write end
//! and a small `sh` watchdog reading the other end sees end-of-file, kills the server with
//! SIGKILL (the data is thrown away anyway) and deletes the server's temporary directory.
//! The watchdog and server run in their own process group, so a Ctrl-C in the terminal reaches
//! only the test process and the watchdog is still there to clean up.
//!
//! How to check that nothing is left behind (done by hand; a test cannot watch its own exit):
//! ```text
//! cargo test -p datatrace-testkit; sleep 1
//! ps -eo pid,args | grep -E 'mariadbd|osmem-server' | grep -v grep   # only servers started by others
//! ls -d ${TMPDIR:-/tmp}/datatrace-*                                  # nothing
//! ```

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The watchdog: `$1` is the directory to delete, the rest is the server command line. It keeps
/// the lifeline (stdin) on fd 3 for a background subshell, then `exec`s the server, so the
/// server has the pid the test process sees. The subshell blocks on the lifeline, and once it
/// reads EOF it kills the server, waits until it is gone (or a zombie) and removes `$1`.
const WATCHDOG: &str = r#"
dir=$1; shift
server=$$
exec 3<&0
(
  trap '' INT HUP TERM
  read -r _ <&3
  kill -KILL "$server" 2>/dev/null
  gone() {
    if [ -d /proc/self ]; then
      [ ! -d "/proc/$server" ] || grep -q '^State:[[:space:]]*Z' "/proc/$server/status" 2>/dev/null
    else
      ! kill -0 "$server" 2>/dev/null
    fi
  }
  i=0
  while ! gone && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  rm -rf "$dir"
) 0</dev/null 1>/dev/null 2>&1 &
exec "$@" 0</dev/null 3<&-
"#;

/// A server started under the watchdog. Dropping it kills the server and deletes its directory
/// (what also happens, without any destructor, when the test process ends).
pub(crate) struct Supervised {
    pub(crate) child: Child,
    lifeline: Option<ChildStdin>,
}

impl Supervised {
    /// Starts `program args` under the watchdog, with stdout and stderr appended to `log`;
    /// `dir` is deleted once the server is gone.
    pub(crate) fn spawn(
        program: &Path,
        args: &[String],
        dir: &Path,
        log: &Path,
    ) -> Result<Self, String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("datatrace-watchdog")
            .arg(dir)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {} under sh: {e}", program.display()))?;
        let lifeline = child.stdin.take();
        Ok(Supervised { child, lifeline })
    }

    /// True while the server process has not exited.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        drop(self.lifeline.take());
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

/// Creates a fresh directory `$TMPDIR/datatrace-<kind>-<pid>-<n>`.
pub(crate) fn temp_dir(kind: &str) -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("datatrace-{kind}-{}-{n}", std::process::id()));
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
