//! A private osmem-server (an in-memory, OpenSearch-compatible server) for the tests of one
//! test binary.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::binaries;
use crate::client::{self, HttpReply};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A private `osmem-server` started by [`osmem()`], listening on a free port on 127.0.0.1.
///
/// osmem-server implements the OpenSearch REST API (it answers `GET /` with OpenSearch 3.x
/// version information, and has OpenSearch's point-in-time API, not Elasticsearch's `_pit`).
/// It watches its standard input and the test process id, and exits when either goes away.
pub struct Osmem {
    port: u16,
    _child: Child,
    _lifeline: ChildStdin,
}

/// The osmem-server shared by every test of this test binary, started on first use.
///
/// The binary is taken from `$OSMEM_SERVER_BIN`, else from the workspace's Python venv
/// (`.venv`, where `scripts/test.sh` installs the `osmem-server` package), else from `PATH`.
/// Panics (in every test that calls it) when it cannot be started; the message names
/// `scripts/test.sh`.
///
/// ```
/// let es = datatrace_testkit::osmem();
/// let index = datatrace_testkit::unique_name("products");
/// let reply = es.request("PUT", &format!("/{index}/_doc/1?refresh=true"), Some(r#"{"name":"x"}"#));
/// assert_eq!(reply.status, 201);
/// let url = es.url(); // http://127.0.0.1:PORT
/// # let _ = url;
/// ```
pub fn osmem() -> &'static Osmem {
    static SERVER: OnceLock<Result<Osmem, String>> = OnceLock::new();
    match SERVER.get_or_init(Osmem::start) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

impl Osmem {
    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's address, for [`FaultProxy::start`](crate::FaultProxy::start).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The base URL: `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one request (`path` starts with `/`; a body is sent as JSON, or as NDJSON for paths
    /// containing `_bulk`) and returns the reply, whatever its status. Handy in tests for
    /// refreshing, counting and fetching documents without a client library.
    ///
    /// Panics only when the server cannot be reached.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> HttpReply {
        client::request(self.addr(), method, path, body)
            .unwrap_or_else(|e| panic!("osmem-server {method} {path}: {e}"))
    }

    fn start() -> Result<Osmem, String> {
        let binary = binaries::find(
            "OSMEM_SERVER_BIN",
            &["osmem-server"],
            &binaries::osmem_dirs(),
        )?;
        let mut child = Command::new(&binary)
            .args(["-no-ja", "-addr", "127.0.0.1:0", "-parent-pid"])
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let lifeline = child
            .stdin
            .take()
            .ok_or_else(|| "osmem-server has no stdin pipe".to_string())?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&stderr_tail);
            std::thread::spawn(move || drain_into(stderr, &tail));
        }
        // It prints one JSON line with its URL when ready; keep draining stdout afterwards so
        // the pipe never fills up.
        let (ready_tx, ready_rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut ready_tx = Some(ready_tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = ready_port(&line) {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(port);
                        }
                    }
                }
            });
        }
        let failure = |what: String, child: &mut Child| {
            let _ = child.kill();
            let _ = child.wait();
            let tail: Vec<String> = stderr_tail
                .lock()
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default();
            format!(
                "osmem-server ({}) {what}; its stderr:\n{}",
                binary.display(),
                tail.join("\n")
            )
        };
        let port = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(failure(
                    format!("did not report ready within {START_TIMEOUT:?}"),
                    &mut child,
                ))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(failure("exited during startup".to_string(), &mut child))
            }
        };
        // Ready means listening; make sure it really answers the REST API.
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match client::request(addr, "GET", "/", None) {
            Ok(reply) if reply.status == 200 => Ok(Osmem {
                port,
                _child: child,
                _lifeline: lifeline,
            }),
            Ok(reply) => Err(failure(
                format!("answered GET / with {}: {}", reply.status, reply.body),
                &mut child,
            )),
            Err(e) => Err(failure(format!("does not answer GET /: {e}"), &mut child)),
        }
    }
}

impl std::fmt::Debug for Osmem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Osmem")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The port from osmem-server's ready line `{"url":"http://127.0.0.1:PORT",...}`.
fn ready_port(line: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let url = value.get("url")?.as_str()?;
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

fn drain_into(stream: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == 50 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ready_port;

    #[test]
    fn parses_the_ready_line() {
        let line = r#"{"url":"http://127.0.0.1:38833","pid":1,"version":"3.8.0","indices":[]}"#;
        assert_eq!(ready_port(line), Some(38833));
        assert_eq!(ready_port("starting"), None);
    }
}
