//! Where and how the server listens: HTTPS with a certificate and key (rustls, the `ring`
//! provider), or plain HTTP, which is meant for loopback use only (a warning is printed
//! and logged when plain HTTP listens on any other address).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Seconds a new connection may take to send its first request (or finish its TLS
/// handshake), so idle connections cannot pile up.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The TLS files given on the command line.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Both files or neither; one alone is an error naming the missing option.
    pub fn from_args(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<TlsFiles>, String> {
        match (cert, key) {
            (Some(c), Some(k)) => Ok(Some(TlsFiles {
                cert: c.to_owned(),
                key: k.to_owned(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err("--tls-cert needs --tls-key (the certificate's private key)".into())
            }
            (None, Some(_)) => Err("--tls-key needs --tls-cert (the certificate chain)".into()),
        }
    }

    /// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1 over ALPN.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| format!("--tls-cert {}: {e}", self.cert.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--tls-cert {}: {e}", self.cert.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--tls-cert {}: no certificate in the file (expected PEM \
                 '-----BEGIN CERTIFICATE-----')",
                self.cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            format!(
                "--tls-key {}: {e} (expected a PEM private key)",
                self.key.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!("--tls-cert / --tls-key: {e} (is the key the certificate's own key?)")
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The configuration for the server, reloadable.
    pub fn rustls(&self) -> Result<RustlsConfig, String> {
        Ok(RustlsConfig::from_config(self.server_config()?))
    }
}

/// Whether every address `addr` listens on is a loopback address.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The warning for plain HTTP on `addr`, when it is not a loopback address.
pub fn plain_http_warning(addr: &SocketAddr) -> Option<String> {
    (!is_loopback(addr)).then(|| {
        format!(
            "warning: listening on {addr} over plain HTTP: passwords, session cookies and API \
             tokens cross the network unencrypted. Plain HTTP is meant for loopback \
             (127.0.0.1) only; give --tls-cert and --tls-key to serve HTTPS"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_or_not() {
        for a in [
            "127.0.0.1:80",
            "127.8.0.1:1",
            "[::1]:80",
            "[::ffff:127.0.0.1]:80",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            assert!(is_loopback(&a), "{a}");
            assert!(plain_http_warning(&a).is_none());
        }
        for a in ["0.0.0.0:80", "10.0.0.1:80", "[::]:80"] {
            let a: SocketAddr = a.parse().unwrap();
            assert!(!is_loopback(&a), "{a}");
            assert!(plain_http_warning(&a).unwrap().contains("--tls-cert"));
        }
    }

    #[test]
    fn one_file_alone_is_refused() {
        let e = TlsFiles::from_args(Some(Path::new("c.pem")), None).unwrap_err();
        assert!(e.contains("--tls-key"));
        let e = TlsFiles::from_args(None, Some(Path::new("k.pem"))).unwrap_err();
        assert!(e.contains("--tls-cert"));
        let missing = TlsFiles::from_args(
            Some(Path::new("/nonexistent/c.pem")),
            Some(Path::new("/nonexistent/k.pem")),
        )
        .unwrap()
        .unwrap();
        let e = missing.server_config().unwrap_err();
        assert!(e.contains("--tls-cert /nonexistent/c.pem"), "{e}");
    }
}
