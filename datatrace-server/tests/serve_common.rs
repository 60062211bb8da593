//! Helpers of the `datatrace serve` tests: the real binary on a free port with a temp data
//! directory, and a small HTTP/1.1 client (requests and SSE streams).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_datatrace");
pub const TOKEN: &str = "test-token-0123456789";

pub fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `datatrace serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
    /// `http` or `https`.
    pub scheme: String,
}

impl Server {
    /// Starts the server on a free port with `dir/data` as its data directory.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[]).expect("the server starts")
    }

    /// Starts it with extra env vars; `Err(stderr)` when it exits at start.
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
        Server::start_args(dir, env, &[])
    }

    /// Starts it with extra env vars and arguments; `Err(stderr)` when it exits at start.
    pub fn start_args(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<Server, String> {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let out = dir.join(format!("stdout-{n}.log"));
        let err = dir.join(format!("stderr-{n}.log"));
        let mut cmd = Command::new(BIN);
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--token", TOKEN])
            .args(args)
            .env_remove("DATATRACE_MASTER_KEY")
            .env_remove("DATATRACE_TOKEN")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("datatrace starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap();
                let (scheme, addr) = url.split_once("://").unwrap();
                return Ok(Server {
                    child,
                    addr: addr.to_owned(),
                    dir: dir.to_owned(),
                    scheme: scheme.to_owned(),
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                return Err(std::fs::read_to_string(&err).unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops the server as a service manager does (SIGTERM) and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A request with the token; returns status and JSON (Null when not JSON).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (s, text) = request(
            &self.addr,
            method,
            path,
            Some(TOKEN),
            body.map(|b| b.to_string()).as_deref(),
        );
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like `call`, panicking unless the status is 2xx.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        let mut all = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".log") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request with extra header lines; returns status, the head (lower-cased) and body.
pub fn request_full(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("content-type"))
        {
            req.push_str("Content-Type: application/json\r\n");
        }
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, head, body)
}

/// One HTTP/1.1 request (Connection: close); returns status and body text.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An open SSE stream.
pub struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    /// Opens `path` (token as `?access_token=` when `query_token`, else the header).
    pub fn open(addr: &str, path: &str, query_token: bool) -> Events {
        Events::open_with(addr, path, query_token, &[])
    }

    /// Like `open`, with extra header lines (`Last-Event-ID: ...`).
    pub fn open_with(addr: &str, path: &str, query_token: bool, extra: &[&str]) -> Events {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let (path, mut auth) = if query_token {
            (format!("{path}?access_token={TOKEN}"), String::new())
        } else {
            (
                path.to_owned(),
                format!("Authorization: Bearer {TOKEN}\r\n"),
            )
        };
        for h in extra {
            auth.push_str(h);
            auth.push_str("\r\n");
        }
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Accept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "SSE status: {line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Events { reader }
    }

    /// The next event: (name, data as JSON). Chunk-size lines are skipped.
    pub fn next_event(&mut self) -> Option<(String, Value)> {
        self.next_with_id().map(|(_, n, d)| (n, d))
    }

    /// The next event with its id: (id, name, data as JSON).
    pub fn next_with_id(&mut self) -> Option<(Option<String>, String, Value)> {
        let mut id = None;
        let mut name = String::new();
        let mut data = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("id:") {
                id = Some(v.trim().to_owned());
            } else if let Some(v) = l.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if l.is_empty() && !data.is_empty() {
                return Some((id, name, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
}

/// Waits until `f` is true (panics after `secs`).
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
