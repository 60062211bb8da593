//! [`FaultProxy`]: a TCP proxy that injects faults between a client and a server.

mod framing;
mod http;
mod tcp;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// A TCP proxy on 127.0.0.1 in front of one upstream server, for testing how clients survive
/// dropped connections, slow links and (for HTTP) error answers such as 429 and 503.
///
/// It runs on its own thread with its own tokio runtime, so it outlives the runtimes of
/// individual tests and can be used from synchronous code too. Dropping it stops it and closes
/// every connection. Faults can be changed at any time and apply from the next connection,
/// request or chunk on; all are off at the start.
///
/// Each connection is classified by who speaks first: when the client opens with an HTTP
/// request line (`GET /`, `POST /x`, ...) the connection is served in **HTTP mode**, otherwise
/// (for instance MySQL, where the server speaks first) bytes are relayed in **TCP mode**.
///
/// | fault | TCP mode | HTTP mode |
/// |---|---|---|
/// | [`set_latency`](Self::set_latency) | every chunk arrives that much later, in both directions | every request is forwarded (or answered) that much later |
/// | [`set_drop_rate`](Self::set_drop_rate) | that share of new connections is closed right after accept | for that share of requests the request reaches the server, but its answer is thrown away and the client's connection closed |
/// | [`drop_connections`](Self::drop_connections) | every open connection is closed now | the same |
/// | [`set_http_error_rate`](Self::set_http_error_rate) | — | that share of requests is answered with the given status and an Elasticsearch-style JSON error, without reaching the server |
/// | [`set_capacity`](Self::set_capacity) | — | requests beyond that many in flight at once are answered 429 `es_rejected_execution_exception` (a full write queue), without reaching the server |
///
/// In HTTP mode, keep-alive connections carrying many requests (with `Content-Length` or
/// chunked bodies) are supported; every forwarded request goes to the server on a fresh
/// connection and its answer is relayed complete.
///
/// ```
/// use datatrace_testkit::{engine, FaultProxy};
///
/// let proxy = FaultProxy::start(engine().addr());
/// proxy.set_http_error_rate(429, 1.0);
/// // Point the client under test at proxy.url() instead of engine().url().
/// let reply = datatrace_testkit::client::request(proxy.addr(), "GET", "/", None).unwrap();
/// assert_eq!(reply.status, 429);
/// assert_eq!(reply.json()["error"]["type"], "es_rejected_execution_exception");
/// assert_eq!(proxy.stats().injected, 1);
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What a [`FaultProxy`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Connections closed by a fault: at accept or per request (drop rate) or by
    /// [`FaultProxy::drop_connections`].
    pub dropped: u64,
    /// HTTP requests answered with an injected error status.
    pub injected: u64,
    /// HTTP requests received (HTTP mode only).
    pub requests: u64,
    /// HTTP requests whose answer from the server was relayed to the client.
    pub forwarded: u64,
}

/// State shared between the handle and the proxy's tasks.
pub(crate) struct Shared {
    upstream: SocketAddr,
    latency_micros: AtomicU64,
    drop_rate: AtomicU64,
    /// `status << 32 | share in millionths`; 0 when off.
    http_error: AtomicU64,
    /// Seconds of the `Retry-After` header of injected errors; 0 for none.
    retry_after_secs: AtomicU64,
    /// HTTP mode: requests in flight at most (0: no limit); more are answered 429.
    capacity: AtomicU64,
    /// HTTP mode: requests in flight now (read, not yet answered).
    busy: AtomicU64,
    /// Bumped by `drop_connections`; every connection task watches it.
    kill: watch::Sender<u64>,
    /// HTTP mode: the `Authorization` values accepted; requests without one of them are
    /// answered 401 (None: no check).
    authorization: std::sync::Mutex<Option<Vec<String>>>,
    connections: AtomicU64,
    dropped: AtomicU64,
    injected: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
}

impl Shared {
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::Relaxed))
    }

    /// Draws whether the next connection (TCP mode) or request (HTTP mode) is dropped.
    pub(crate) fn draw_drop(&self) -> bool {
        let share = f64::from_bits(self.drop_rate.load(Ordering::Relaxed));
        share > 0.0 && fastrand::f64() < share
    }

    /// Draws whether the next HTTP request gets an injected error, and which status.
    pub(crate) fn draw_http_error(&self) -> Option<u16> {
        let packed = self.http_error.load(Ordering::Relaxed);
        let status = (packed >> 32) as u16;
        let share = (packed & 0xffff_ffff) as f64 / 1e6;
        (status != 0 && share > 0.0 && fastrand::f64() < share).then_some(status)
    }

    /// Whether an HTTP request with this `Authorization` value (if any) may pass.
    pub(crate) fn authorized(&self, value: Option<&str>) -> bool {
        match &*self.authorization.lock().unwrap_or_else(|e| e.into_inner()) {
            None => true,
            Some(allowed) => value.is_some_and(|v| allowed.iter().any(|a| a == v)),
        }
    }

    /// The `Retry-After` seconds of injected errors, if set.
    pub(crate) fn retry_after(&self) -> Option<u64> {
        Some(self.retry_after_secs.load(Ordering::Relaxed)).filter(|s| *s > 0)
    }

    /// Takes room for one HTTP request in flight; `None` when the capacity is exhausted.
    pub(crate) fn enter(&self) -> Option<Busy<'_>> {
        let cap = self.capacity.load(Ordering::Relaxed);
        let now = self.busy.fetch_add(1, Ordering::Relaxed) + 1;
        let busy = Busy(&self.busy);
        (cap == 0 || now <= cap).then_some(busy)
    }

    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One HTTP request in flight through the proxy (released on drop).
pub(crate) struct Busy<'a>(&'a AtomicU64);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `upstream`.
    ///
    /// Panics when no port or thread can be had (nothing a test could recover from).
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .unwrap_or_else(|e| panic!("FaultProxy: cannot listen on 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("FaultProxy: no local address: {e}"));
        let shared = Arc::new(Shared {
            upstream,
            latency_micros: AtomicU64::new(0),
            drop_rate: AtomicU64::new(0f64.to_bits()),
            http_error: AtomicU64::new(0),
            retry_after_secs: AtomicU64::new(0),
            capacity: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            kill: watch::Sender::new(0),
            authorization: std::sync::Mutex::new(None),
            connections: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("FaultProxy: cannot build a tokio runtime: {e}"));
        let (shutdown, stop) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || runtime.block_on(accept_loop(listener, task_shared, stop)))
            .unwrap_or_else(|e| panic!("FaultProxy: cannot start its thread: {e}"));
        FaultProxy {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the URL of the proxy for HTTP clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Delays every chunk (TCP mode) or request (HTTP mode) by `d`; zero turns it off.
    pub fn set_latency(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_micros.store(micros, Ordering::Relaxed);
    }

    /// Drops that share (0.0 to 1.0) of new connections (TCP mode) or of requests (HTTP mode:
    /// the request reaches the server, its answer is lost and the connection closed).
    pub fn set_drop_rate(&self, share: f64) {
        let share = share.clamp(0.0, 1.0);
        self.shared
            .drop_rate
            .store(share.to_bits(), Ordering::Relaxed);
    }

    /// Closes every connection that is open right now (both sides). New connections work.
    pub fn drop_connections(&self) {
        self.shared.kill.send_modify(|generation| *generation += 1);
    }

    /// HTTP mode: answers that share (0.0 to 1.0) of requests with `status` and a JSON body like
    /// Elasticsearch's (`{"error":{"type":"...","reason":"..."},"status":429}`) instead of
    /// forwarding them; share 0 turns it off.
    pub fn set_http_error_rate(&self, status: u16, share: f64) {
        let millionths = (share.clamp(0.0, 1.0) * 1e6).round() as u64;
        let packed = if millionths == 0 {
            0
        } else {
            (u64::from(status) << 32) | millionths
        };
        self.shared.http_error.store(packed, Ordering::Relaxed);
    }

    /// HTTP mode: lets through only requests whose `Authorization` header is one of
    /// `values` (for instance `Basic ZWxhc3RpYzpwdw==`, `ApiKey ...`, `Bearer ...`), answering
    /// others 401 like a secured cluster; `None` lets everything through. For testing
    /// credentials against an engine that runs without its security plugin.
    pub fn require_authorization<S: Into<String>>(&self, values: Option<Vec<S>>) {
        *self
            .shared
            .authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            values.map(|v| v.into_iter().map(Into::into).collect());
    }

    /// HTTP mode: injected errors carry `Retry-After: <secs>` (the delay a server under load
    /// asks its clients to wait); `None` leaves the header out (the default).
    pub fn set_retry_after(&self, secs: Option<u64>) {
        self.shared
            .retry_after_secs
            .store(secs.unwrap_or(0), Ordering::Relaxed);
    }

    /// HTTP mode: at most `n` requests in flight at once (from the end of a request to the
    /// end of its answer, the latency included); more are answered 429 with an
    /// `es_rejected_execution_exception`, like a cluster whose write queue is full, without
    /// reaching the server. `None` (the default) lets any number through.
    pub fn set_capacity(&self, n: Option<u64>) {
        self.shared
            .capacity
            .store(n.unwrap_or(0), Ordering::Relaxed);
    }

    /// Turns every fault off (latency, drops, HTTP errors, `Retry-After`, capacity).
    pub fn clear(&self) {
        self.set_capacity(None);
        self.set_latency(Duration::ZERO);
        self.set_drop_rate(0.0);
        self.set_http_error_rate(0, 0.0);
        self.set_retry_after(None);
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            connections: s.connections.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            injected: s.injected.load(Ordering::Relaxed),
            requests: s.requests.load(Ordering::Relaxed),
            forwarded: s.forwarded.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: StdListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                Shared::count(&shared.connections);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let mut kill = shared.kill.subscribe();
                    let killed = async {
                        let _ = kill.changed().await;
                        // Counted before the sockets close, so the count is there when the
                        // client notices.
                        Shared::count(&shared.dropped);
                    };
                    tokio::select! {
                        () = serve(client, &shared) => {}
                        () = killed => {}
                    }
                });
            }
        }
    }
    // Returning drops the runtime, which drops every connection task and closes its sockets.
}

/// Serves one client connection in the mode its first bytes call for.
async fn serve(mut client: TcpStream, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let mut first = Vec::new();
    let upstream = tokio::select! {
        http = sniff(&mut client, &mut first) => {
            if http {
                http::serve(client, first, shared).await;
                return;
            }
            match TcpStream::connect(shared.upstream).await {
                Ok(upstream) => upstream,
                Err(_) => return,
            }
        }
        upstream = connect_and_wait_for_greeting(shared.upstream) => match upstream {
            Some(upstream) => upstream,
            // The server is unreachable: serve HTTP clients (they get 502s), close others.
            None => {
                let sniffed = tokio::time::timeout(Duration::from_secs(2), sniff(&mut client, &mut first));
                if let Ok(true) = sniffed.await {
                    http::serve(client, first, shared).await;
                }
                return;
            }
        },
    };
    if shared.draw_drop() {
        Shared::count(&shared.dropped);
        return;
    }
    tcp::relay(client, upstream, first, shared).await;
}

/// Reads the client's first bytes into `first`; true when they start an HTTP request line.
async fn sniff(client: &mut TcpStream, first: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(http) = framing::looks_like_http(first) {
            return http;
        }
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => first.extend_from_slice(&buf[..n]),
        }
    }
}

/// Connects to the server and waits until it sends its first bytes (a server that speaks first,
/// like MySQL); None when it cannot be reached.
async fn connect_and_wait_for_greeting(upstream: SocketAddr) -> Option<TcpStream> {
    let stream = TcpStream::connect(upstream).await.ok()?;
    let _ = stream.set_nodelay(true);
    match stream.readable().await {
        Ok(()) => Some(stream),
        Err(_) => None,
    }
}
