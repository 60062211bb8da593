//! One plain look at a server before the pool opens: its greeting says whether it offers TLS,
//! and (when asked) a TLS handshake shows the names its certificate was issued for. Nothing
//! is sent but the TLS request; the connection is closed right after.

use std::sync::Arc;
use std::time::Duration;

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::HandshakePacket;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{MySqlError, Result};

/// What a server's greeting (and TLS handshake) told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The server announces TLS (`CLIENT_SSL`).
    pub offers_tls: bool,
    /// DNS names of the server's certificate (subject alternative names), when asked for.
    pub certificate_names: Vec<String>,
}

/// Opens a connection to `host:port`, reads the greeting and, with `certificate`, completes
/// a TLS handshake (accepting any certificate: nothing is sent over it) to read the
/// certificate's names. Unreachable servers are [`MySqlError::Transient`]; a server that
/// answers with an error packet (too many connections, host blocked) is that server error.
pub async fn probe(
    host: &str,
    port: u16,
    timeout: Duration,
    certificate: bool,
) -> Result<Greeting> {
    let endpoint = format!("{host}:{port}");
    let context = || format!("connecting to {endpoint}");
    let lost = |message: String| MySqlError::Transient {
        context: context(),
        message,
    };
    let work = async {
        let mut stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| lost(format!("cannot connect: {e}")))?;
        let payload = read_packet(&mut stream)
            .await
            .map_err(|e| lost(format!("reading the greeting: {e}")))?;
        if payload.first() == Some(&0xff) {
            let code = payload
                .get(1..3)
                .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
            // After the code: an optional `#` and 5-character SQL state, then the message.
            let rest = payload.get(3..).unwrap_or_default();
            let rest = match rest.first() {
                Some(b'#') => rest.get(6..).unwrap_or_default(),
                _ => rest,
            };
            let text = String::from_utf8_lossy(rest).into_owned();
            return Err(MySqlError::from_server(context(), code, text));
        }
        let handshake = ParseBuf(&payload)
            .parse::<HandshakePacket>(())
            .map_err(|e| MySqlError::Driver {
                context: context(),
                message: format!("not a MySQL greeting: {e}"),
            })?;
        let offers_tls = handshake
            .capabilities()
            .contains(CapabilityFlags::CLIENT_SSL);
        if !offers_tls || !certificate {
            return Ok(Greeting {
                offers_tls,
                certificate_names: Vec::new(),
            });
        }
        stream
            .write_all(&ssl_request())
            .await
            .map_err(|e| lost(format!("asking for TLS: {e}")))?;
        let names = certificate_names(stream, host)
            .await
            .map_err(|message| MySqlError::Tls {
                context: context(),
                message,
            })?;
        Ok(Greeting {
            offers_tls,
            certificate_names: names,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| lost(format!("no answer within {} s", timeout.as_secs())))?
}

/// Reads one protocol packet's payload (3-byte length, sequence number, payload).
async fn read_packet(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok(payload)
}

/// The `SSLRequest` packet: capabilities, max packet size, utf8mb4, 23 zero bytes; sequence 1.
fn ssl_request() -> Vec<u8> {
    let caps = CapabilityFlags::CLIENT_SSL
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_LONG_PASSWORD;
    let mut p = Vec::with_capacity(36);
    p.extend_from_slice(&[32, 0, 0, 1]);
    p.extend_from_slice(&caps.bits().to_le_bytes());
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(45); // utf8mb4_general_ci
    p.extend_from_slice(&[0u8; 23]);
    p
}

/// Completes a TLS handshake and returns the DNS names of the server's certificate.
async fn certificate_names(
    stream: TcpStream,
    host: &str,
) -> std::result::Result<Vec<String>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("probe.invalid").expect("a valid name"));
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        return Ok(Vec::new());
    };
    let names = webpki::EndEntityCert::try_from(cert)
        .map(|ee| ee.valid_dns_names().map(str::to_string).collect())
        .unwrap_or_default();
    Ok(names)
}

/// Accepts any certificate (its signatures are still checked): the probe only reads names.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssl_request_is_32_bytes_with_sequence_1() {
        let p = ssl_request();
        assert_eq!(p.len(), 36);
        assert_eq!(&p[..4], &[32, 0, 0, 1]);
        let caps = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        assert_ne!(caps & CapabilityFlags::CLIENT_SSL.bits(), 0);
        assert_ne!(caps & CapabilityFlags::CLIENT_PROTOCOL_41.bits(), 0);
    }
}
