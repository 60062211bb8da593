//! TLS of https connections: which server certificates are trusted (the system's roots, a
//! CA file, or, in the insecure mode, any) and the client certificate, if any.

use std::path::Path;

use elasticsearch::auth::{ClientCertificate, Credentials};
use elasticsearch::cert::{Certificate, CertificateValidation};

use crate::config::TlsConfig;
use crate::errors::EsError;

/// How server certificates are checked. The insecure mode (`verify = false`) is logged as a
/// warning naming the nodes every time a client is built.
pub(crate) fn validation(tls: &TlsConfig, urls: &str) -> Result<CertificateValidation, EsError> {
    if !tls.verify {
        tracing::warn!(
            %urls,
            "INSECURE: tls.verify = false: the cluster's certificate is not checked, so anyone on the network path can read and change the data and the credentials; give the cluster's CA in tls.ca_cert instead"
        );
        return Ok(CertificateValidation::None);
    }
    match &tls.ca_cert {
        None => Ok(CertificateValidation::Default),
        Some(path) => {
            let pem = read(path, "tls.ca_cert")?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                EsError::Config(format!(
                    "tls.ca_cert: {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            Ok(CertificateValidation::Full(cert))
        }
    }
}

/// The client certificate and key as the transport's credential, if configured.
pub(crate) fn client_certificate(tls: &TlsConfig) -> Result<Option<Credentials>, EsError> {
    let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) else {
        return Ok(None);
    };
    let mut pem = read(cert, "tls.client_cert")?;
    if !contains_block(&pem, "CERTIFICATE") {
        return Err(EsError::Config(format!(
            "tls.client_cert: {} holds no PEM certificate",
            cert.display()
        )));
    }
    let key_pem = read(key, "tls.client_key")?;
    if !contains_block(&key_pem, "PRIVATE KEY") {
        return Err(EsError::Config(format!(
            "tls.client_key: {} holds no PEM private key",
            key.display()
        )));
    }
    pem.push(b'\n');
    pem.extend_from_slice(&key_pem);
    Ok(Some(Credentials::Certificate(ClientCertificate::Pem(pem))))
}

fn read(path: &Path, setting: &str) -> Result<Vec<u8>, EsError> {
    std::fs::read(path)
        .map_err(|e| EsError::Config(format!("{setting}: cannot read {}: {e}", path.display())))
}

fn contains_block(pem: &[u8], label: &str) -> bool {
    String::from_utf8_lossy(pem)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .any(|l| l.contains(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_naming_the_setting() {
        let mut tls = TlsConfig::default();
        assert!(matches!(
            validation(&tls, "x"),
            Ok(CertificateValidation::Default)
        ));
        tls.verify = false;
        assert!(matches!(
            validation(&tls, "x"),
            Ok(CertificateValidation::None)
        ));
        tls.verify = true;
        tls.ca_cert = Some("/nonexistent/ca.pem".into());
        let e = match validation(&tls, "x") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a missing CA file must fail"),
        };
        assert!(
            e.contains("tls.ca_cert") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("dt-es-tls-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").unwrap();
        tls.ca_cert = Some(dir.clone());
        assert!(validation(&tls, "x").is_err());
        tls.client_cert = Some(dir.clone());
        tls.client_key = Some(dir.clone());
        let e = client_certificate(&tls).unwrap_err().to_string();
        assert!(e.contains("tls.client_cert"), "{e}");
        let _ = std::fs::remove_file(dir);
        assert!(client_certificate(&TlsConfig::default()).unwrap().is_none());
    }
}
