//! [`TlsTerminator`]: https in front of a plain server (the test search engine runs without
//! its security plugin), optionally demanding a client certificate.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::TestPki;

/// Whether a [`TlsTerminator`] demands a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Any client may connect.
    None,
    /// The client must present a certificate signed by the [`TestPki`]'s CA; the handshake
    /// fails otherwise.
    Required,
}

/// A TLS server on a free port of 127.0.0.1 that decrypts and relays every connection to a
/// plain `upstream` (the test search engine, or a [`FaultProxy`](crate::FaultProxy) in front
/// of it, which can also demand an `Authorization` header). Its certificate is the
/// [`TestPki`]'s server certificate. Like the proxy it runs on its own thread and stops when
/// dropped.
///
/// ```
/// use datatrace_testkit::{osmem, ClientAuth, TestPki, TlsTerminator};
///
/// let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
/// let tls = TlsTerminator::start(osmem().addr(), &pki, ClientAuth::None);
/// assert!(tls.url().starts_with("https://"));
/// ```
pub struct TlsTerminator {
    addr: SocketAddr,
    host: String,
    stats: Arc<Stats>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Stats {
    handshakes: AtomicU64,
    failed: AtomicU64,
}

impl TlsTerminator {
    /// Starts the terminator. Panics when the certificates cannot be loaded or no port or
    /// thread can be had.
    pub fn start(upstream: SocketAddr, pki: &TestPki, client_auth: ClientAuth) -> TlsTerminator {
        let config = server_config(pki, client_auth)
            .unwrap_or_else(|e| panic!("TlsTerminator: cannot set up TLS: {e}"));
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .unwrap_or_else(|e| panic!("TlsTerminator: cannot listen on 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("TlsTerminator: no local address: {e}"));
        let host = if pki.server_names().iter().any(|n| n == "localhost") {
            "localhost".to_string()
        } else {
            "127.0.0.1".to_string()
        };
        let stats = Arc::new(Stats::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("TlsTerminator: cannot build a tokio runtime: {e}"));
        let (shutdown, stop) = oneshot::channel();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tls-terminator-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(accept_loop(listener, acceptor, upstream, task_stats, stop))
            })
            .unwrap_or_else(|e| panic!("TlsTerminator: cannot start its thread: {e}"));
        TlsTerminator {
            addr,
            host,
            stats,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://localhost:PORT` (or `https://127.0.0.1:PORT` when the certificate has no
    /// `localhost`).
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.host, self.addr.port())
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> u64 {
        self.stats.handshakes.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed (a client that did not trust the certificate, or presented
    /// no or a wrong client certificate).
    pub fn failed_handshakes(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for TlsTerminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTerminator")
            .field("addr", &self.addr)
            .field("handshakes", &self.handshakes())
            .field("failed", &self.failed_handshakes())
            .finish()
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server_config(pki: &TestPki, client_auth: ClientAuth) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert_pem, key_pem) = pki.server_pems();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pki.ca_pem().as_bytes()) {
                roots
                    .add(c.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())
}

async fn accept_loop(
    listener: StdListener,
    acceptor: TlsAcceptor,
    upstream: SocketAddr,
    stats: Arc<Stats>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let stats = stats.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    let mut tls = match acceptor.accept(client).await {
                        Ok(tls) => tls,
                        Err(_) => {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    stats.handshakes.fetch_add(1, Ordering::Relaxed);
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        }
    }
}
