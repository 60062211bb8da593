//! [`DedicatedEngine`]: a search engine node of one test's own, which the test may stop and
//! start again (on the same port, with the same data), to see what clients do when the real
//! engine restarts under them. The shared [`engine()`](super::engine) must never be restarted:
//! other tests use it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{EngineFlavor, SearchEngine};
use crate::binaries::{workspace_root, SETUP_HINT};
use crate::client;

/// Long enough for a cold JVM on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// A private OpenSearch (or Elasticsearch) node: the flavor `DATATRACE_SEARCH_ENGINE` selects,
/// OpenSearch when it selects osmem-server (which keeps nothing across a restart).
///
/// It dereferences to a [`SearchEngine`] (`url()`, `request()`, `count()`, ...). The node is a
/// child of the test process and watches it: it halts and deletes its data when the test
/// process is gone, however it went; dropping the handle does the same at once. Starting a
/// JVM node takes seconds (tens on a busy machine): use it only where a test must restart the
/// engine.
///
/// ```no_run
/// let es = datatrace_testkit::DedicatedEngine::start();
/// es.request("PUT", "/x/_doc/1?refresh=true", Some(r#"{"a":1}"#));
/// es.restart(); // SIGTERM, then the same port and data again
/// assert_eq!(es.count("x"), 1);
/// ```
pub struct DedicatedEngine {
    engine: SearchEngine,
    home: PathBuf,
    child: Mutex<Option<Child>>,
}

impl DedicatedEngine {
    /// Starts a node and waits until it answers. Panics when it cannot be started, naming
    /// `scripts/test.sh`, which installs everything.
    pub fn start() -> DedicatedEngine {
        let flavor = match EngineFlavor::selected() {
            EngineFlavor::Osmem => EngineFlavor::OpenSearch,
            f => f,
        };
        let home = crate::watchdog::temp_dir("dedicated-engine").unwrap_or_else(|e| panic!("{e}"));
        let (child, port) = launch(flavor, &home, None).unwrap_or_else(|e| panic!("{e}"));
        let version = version(port).unwrap_or_default();
        DedicatedEngine {
            engine: SearchEngine {
                flavor,
                version,
                port,
            },
            home,
            child: Mutex::new(Some(child)),
        }
    }

    /// Stops the node gracefully (SIGTERM: it closes its indices) and waits until its process
    /// has exited. Clients get connection errors until [`start_again`](Self::start_again).
    /// Nothing happens when it is stopped already.
    pub fn stop(&self) {
        self.end("-TERM");
    }

    /// Kills the node (SIGKILL: no shutdown at all) and waits until its process is gone.
    pub fn kill(&self) {
        self.end("-KILL");
    }

    /// Starts a stopped node again on the same port with the same data, and waits until it
    /// answers `GET /` (its shards may still be recovering). Panics when it cannot.
    pub fn start_again(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        assert!(child.is_none(), "start_again: the node is running");
        let (c, _) = launch(self.engine.flavor, &self.home, Some(self.engine.port))
            .unwrap_or_else(|e| panic!("{e}"));
        *child = Some(c);
    }

    /// [`stop`](Self::stop), then [`start_again`](Self::start_again).
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Whether the node's process is running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends `signal` (a `kill` argument) and waits until the process is gone.
    fn end(&self, signal: &str) {
        let Some(mut c) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let _ = Command::new("kill")
            .args([signal, &c.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if !matches!(c.try_wait(), Ok(None)) {
                return;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl std::ops::Deref for DedicatedEngine {
    type Target = SearchEngine;

    fn deref(&self) -> &SearchEngine {
        &self.engine
    }
}

impl Drop for DedicatedEngine {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Runs `search-engine.sh run-node` with `home` (on `port`, else a free one) and waits until
/// the node answers; returns the process and its port.
fn launch(flavor: EngineFlavor, home: &Path, port: Option<u16>) -> Result<(Child, u16), String> {
    let script = workspace_root().join("scripts").join("search-engine.sh");
    let node_home = home.join("home");
    let ready = node_home.join("ready.json");
    let _ = std::fs::remove_file(&ready);
    let log = home.join("node.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .args(["run-node", flavor.name()])
        .arg(&node_home)
        // As the shared node: sorting on `_id` is refused, as Elasticsearch 8 does.
        .arg("indices.id_field_data.enabled=false")
        .env(
            "DATATRACE_ENGINE_KEEPER_PID",
            std::process::id().to_string(),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if std::env::var_os("DATATRACE_ENGINE_JIT").is_none() {
        cmd.env("DATATRACE_ENGINE_JIT", "c1");
    }
    if let Some(p) = port {
        cmd.arg(format!("http.port={p}"));
    }
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "datatrace-testkit: cannot run bash {}: {e}; {SETUP_HINT}",
            script.display()
        )
    })?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(port) = std::fs::read_to_string(&ready)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
        {
            if version(port).is_some() {
                return Ok((child, port));
            }
        }
        let tail = || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "datatrace-testkit: the dedicated {flavor} node exited ({status}); {SETUP_HINT}\n{}",
                tail()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "datatrace-testkit: the dedicated {flavor} node did not start in {} s\n{}",
                START_TIMEOUT.as_secs(),
                tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The version a node on `port` reports on `GET /`, once it answers 200.
fn version(port: u16) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let reply = client::request(addr, "GET", "/", None).ok()?;
    if reply.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
    Some(
        v["version"]["number"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}
