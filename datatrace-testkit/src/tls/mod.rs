//! TLS for tests: certificates generated at run time ([`TestPki`]; no key is ever committed)
//! and a TLS terminator in front of a plain server ([`TlsTerminator`]).

mod terminator;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub use terminator::{ClientAuth, TlsTerminator};

use crate::watchdog::{self, Guard};

/// A throw-away public key infrastructure for one test: a CA, a server certificate it signed
/// (for the names given), a client certificate it signed, and a second, unrelated CA (the
/// "wrong CA" of a test). All are PEM files (ECDSA P-256) in a private temporary directory
/// that is deleted with the value, or when the test process ends however it ends.
///
/// ```
/// let pki = datatrace_testkit::TestPki::generate(&["localhost", "127.0.0.1"]);
/// assert!(std::fs::read_to_string(pki.ca()).unwrap().contains("BEGIN CERTIFICATE"));
/// assert!(std::fs::read_to_string(pki.server_key()).unwrap().contains("PRIVATE KEY"));
/// ```
pub struct TestPki {
    dir: PathBuf,
    server_names: Vec<String>,
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    _guard: Guard,
}

impl TestPki {
    /// Generates the CA and certificates; the server certificate is issued for
    /// `server_names` (DNS names, or IP addresses such as `127.0.0.1`).
    ///
    /// Panics when the files cannot be written (nothing a test could recover from).
    pub fn generate(server_names: &[&str]) -> TestPki {
        Self::try_generate(server_names).unwrap_or_else(|e| panic!("TestPki: {e}"))
    }

    fn try_generate(server_names: &[&str]) -> Result<TestPki, String> {
        let dir = watchdog::temp_dir("pki")?;
        let guard = Guard::new(&dir)?;
        let e = |e: rcgen::Error| e.to_string();
        let (ca, ca_key) = new_ca("DataTrace test CA").map_err(e)?;
        let (other_ca, _) = new_ca("Another test CA").map_err(e)?;

        let names: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
        let mut server = CertificateParams::new(names.clone()).map_err(e)?;
        let cn = names
            .iter()
            .find(|n| n.parse::<IpAddr>().is_err())
            .cloned()
            .unwrap_or_else(|| "datatrace-test-server".into());
        server.distinguished_name.push(DnType::CommonName, cn);
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let server_key = KeyPair::generate().map_err(e)?;
        let server_cert = server.signed_by(&server_key, &ca, &ca_key).map_err(e)?;

        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        client
            .distinguished_name
            .push(DnType::CommonName, "datatrace-test-client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let client_key = KeyPair::generate().map_err(e)?;
        let client_cert = client.signed_by(&client_key, &ca, &ca_key).map_err(e)?;

        let pki = TestPki {
            dir,
            server_names: names,
            ca_pem: ca.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            _guard: guard,
        };
        let files = [
            ("ca.pem", pki.ca_pem.clone()),
            ("server.pem", pki.server_cert_pem.clone()),
            ("server-key.pem", pki.server_key_pem.clone()),
            ("client.pem", client_cert.pem()),
            ("client-key.pem", client_key.serialize_pem()),
            ("other-ca.pem", other_ca.pem()),
        ];
        for (name, text) in files {
            let path = pki.dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(pki)
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names the server certificate was issued for.
    pub fn server_names(&self) -> &[String] {
        &self.server_names
    }

    /// The CA certificate (PEM) that signed the server and client certificates.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server certificate's private key (PEM, PKCS#8).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }

    /// A client certificate (PEM, common name `datatrace-test-client`) signed by the CA.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// The client certificate's private key (PEM, PKCS#8).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }

    /// A CA that signed nothing here: verifying the server against it must fail.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    pub(crate) fn server_pems(&self) -> (&str, &str) {
        (&self.server_cert_pem, &self.server_key_pem)
    }

    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir)
            .field("server_names", &self.server_names)
            .finish_non_exhaustive()
    }
}

/// A self-signed CA certificate and its key.
fn new_ca(name: &str) -> Result<(Certificate, KeyPair), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert, key))
}
