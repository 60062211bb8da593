//! TLS to MySQL and MariaDB, with the options of MySQL's own client: `ssl-mode`, `ssl-ca`,
//! `ssl-cert` and `ssl-key`, given as URL query parameters
//! (`mysql://u@db:3306/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/db/ca.pem`) or as the
//! [`ConnectionConfig`](crate::ConnectionConfig) fields `ssl_mode`, `ssl_ca`, `ssl_cert` and
//! `ssl_key` (job-file keys of the same names).
//!
//! | `ssl-mode` | encrypted | server certificate checked |
//! | --- | --- | --- |
//! | `DISABLED` | never | - |
//! | `PREFERRED` (the default) | when the server offers TLS | no |
//! | `REQUIRED` | always; a server without TLS is an error | no |
//! | `VERIFY_CA` | always | signed by `ssl-ca` (else the public web roots) |
//! | `VERIFY_IDENTITY` | always | as `VERIFY_CA`, and issued for the host connected to |
//!
//! As with MySQL's client, an `ssl-ca` without an `ssl-mode` means `VERIFY_CA`. `ssl-cert`
//! and `ssl-key` (both or neither; unencrypted PEM) present a client certificate, for users
//! created with `REQUIRE X509` or `REQUIRE SUBJECT`. Files are read and checked when the
//! connection opens: a missing or unreadable file, or one without a PEM certificate or key,
//! is an error naming the setting and the path. The TLS implementation is rustls.
//!
//! `PREFERRED` and `VERIFY_CA` first open one plain connection to read the server's greeting
//! (does it offer TLS?) and, for `VERIFY_CA`, the names its certificate was issued for, so
//! that the certificate's chain is verified against the CA whatever name the host was
//! reached by (an IP address, a tunnel).

pub(crate) mod mode;
mod probe;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql_async::{ClientIdentity, OptsBuilder, SslOpts};

use crate::config::ConnectionConfig;
use crate::error::{MySqlError, Result};

pub use mode::SslMode;
pub use probe::{probe, Greeting};

/// The TLS settings of a connection, from its URL and its fields together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// The mode.
    pub mode: SslMode,
    /// CA certificates (PEM) that sign the server's certificate.
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM, with its chain).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (unencrypted PEM).
    pub key: Option<PathBuf>,
}

/// The TLS parameters of a URL (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`, also written
/// with `_`, and the driver's own `require_ssl`, `verify_ca`, `verify_identity`), and the URL
/// without them.
#[derive(Debug, Default)]
struct UrlTls {
    mode: Option<SslMode>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    /// `require_ssl`, `verify_ca`, `verify_identity` of the driver's URL syntax.
    legacy: Vec<(String, bool)>,
}

/// Splits the TLS parameters off `url`; returns the URL the driver gets and the parameters.
fn split_url(url: &str) -> Result<(String, UrlTls)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), UrlTls::default()));
    };
    let mut tls = UrlTls::default();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = k.to_ascii_lowercase().replace('_', "-");
        let value = percent_decode(v)
            .map_err(|m| MySqlError::Config(format!("connection url parameter {k}: {m}")))?;
        let path = |what: &str| {
            if value.is_empty() {
                Err(MySqlError::Config(format!(
                    "connection url parameter {k}: expected the path of {what}"
                )))
            } else {
                Ok(Some(PathBuf::from(&value)))
            }
        };
        match key.as_str() {
            "ssl-mode" => {
                tls.mode = Some(value.parse().map_err(|m| {
                    MySqlError::Config(format!("connection url parameter {k}: {m}"))
                })?)
            }
            "ssl-ca" => tls.ca = path("a PEM file of CA certificates")?,
            "ssl-cert" => tls.cert = path("a PEM client certificate")?,
            "ssl-key" => tls.key = path("a PEM private key")?,
            "require-ssl" | "verify-ca" | "verify-identity" => {
                let on = match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => {
                        return Err(MySqlError::Config(format!(
                            "connection url parameter {k}: expected true or false, found {value:?}"
                        )))
                    }
                };
                tls.legacy.push((key.replace('-', "_"), on));
            }
            "built-in-roots" => {
                return Err(MySqlError::Config(format!(
                    "connection url parameter {k}: not supported; give the CA with ssl-ca (then only it is trusted)"
                )))
            }
            _ => rest.push(pair),
        }
    }
    let driver_url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((driver_url, tls))
}

/// Decodes `%XX` escapes (and `+` as a space) of a URL query value.
fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad %-escape in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// The mode the driver's own URL flags stand for (`require_ssl=true` verifies everything
/// unless `verify_ca=false` or `verify_identity=false` say otherwise).
fn legacy_mode(flags: &[(String, bool)]) -> Option<SslMode> {
    let get = |name: &str| flags.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    match get("require_ssl") {
        Some(true) => Some(match (get("verify_ca"), get("verify_identity")) {
            (Some(false), _) => SslMode::Required,
            (_, Some(false)) => SslMode::VerifyCa,
            _ => SslMode::VerifyIdentity,
        }),
        Some(false) => Some(SslMode::Disabled),
        None => None,
    }
}

/// One setting given twice (URL and field) with different values is an error naming both.
fn one_of<T: PartialEq + fmt::Debug>(
    name: &str,
    url: Option<T>,
    field: Option<T>,
) -> Result<Option<T>> {
    match (url, field) {
        (Some(a), Some(b)) if a != b => Err(MySqlError::Config(format!(
            "{name} is set both in the connection url ({a:?}) and as {} ({b:?}): keep one",
            name.replace('-', "_")
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

impl TlsSettings {
    /// The TLS settings of `cfg` (URL parameters and fields), and the URL for the driver
    /// without them. Errors name the setting: an unknown mode, a value given twice
    /// differently, a certificate without its key.
    pub fn of(cfg: &ConnectionConfig) -> Result<(String, TlsSettings)> {
        let (url, from_url) = split_url(&cfg.url)?;
        let legacy = legacy_mode(&from_url.legacy);
        if legacy.is_some() && from_url.mode.is_some() {
            return Err(MySqlError::Config(
                "connection url: give either ssl-mode or require_ssl/verify_ca/verify_identity, not both".into(),
            ));
        }
        if legacy.is_none() && !from_url.legacy.is_empty() {
            return Err(MySqlError::Config(
                "connection url: verify_ca and verify_identity need require_ssl=true; prefer ssl-mode=VERIFY_CA / VERIFY_IDENTITY".into(),
            ));
        }
        let mode = one_of("ssl-mode", from_url.mode.or(legacy), cfg.ssl_mode)?;
        let ca = one_of("ssl-ca", from_url.ca, cfg.ssl_ca.clone())?;
        let cert = one_of("ssl-cert", from_url.cert, cfg.ssl_cert.clone())?;
        let key = one_of("ssl-key", from_url.key, cfg.ssl_key.clone())?;
        match (&cert, &key) {
            (Some(_), None) => return Err(MySqlError::Config(
                "ssl-cert is set but ssl-key is not: a client certificate needs its private key"
                    .into(),
            )),
            (None, Some(_)) => {
                return Err(MySqlError::Config(
                    "ssl-key is set but ssl-cert is not: give the client certificate too".into(),
                ))
            }
            _ => {}
        }
        // MySQL's client: a CA without a mode means "verify the server against it".
        let mode = mode.unwrap_or(if ca.is_some() {
            SslMode::VerifyCa
        } else {
            SslMode::Preferred
        });
        if mode == SslMode::Disabled && (ca.is_some() || cert.is_some()) {
            return Err(MySqlError::Config(
                "ssl-mode is DISABLED but ssl-ca or ssl-cert is set: remove them or choose another ssl-mode".into(),
            ));
        }
        Ok((
            url,
            TlsSettings {
                mode,
                ca,
                cert,
                key,
            },
        ))
    }

    /// Applies the settings to the driver's options for `host:port`: reads and checks the
    /// files, asks the server whether it offers TLS (`PREFERRED`) and which names its
    /// certificate carries (`VERIFY_CA`). Returns the options and whether the connection is
    /// encrypted.
    pub async fn apply(
        &self,
        builder: OptsBuilder,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<(OptsBuilder, bool)> {
        if self.mode == SslMode::Disabled {
            return Ok((builder.ssl_opts(None::<SslOpts>), false));
        }
        let ca = match &self.ca {
            Some(p) => Some(read_pem(p, "ssl-ca", "CERTIFICATE")?),
            None => None,
        };
        let identity = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => {
                let cert = read_pem(c, "ssl-cert", "CERTIFICATE")?;
                let key = read_pem(k, "ssl-key", "PRIVATE KEY")?;
                Some(ClientIdentity::new(cert.into(), key.into()))
            }
            _ => None,
        };
        if self.mode == SslMode::Required && ca.is_some() {
            tracing::warn!(
                "ssl-mode is REQUIRED: the server's certificate is not checked, ssl-ca is unused; set ssl-mode=VERIFY_CA to check it"
            );
        }
        let greeting = match self.mode {
            SslMode::Preferred | SslMode::VerifyCa => {
                Some(probe(host, port, timeout, self.mode == SslMode::VerifyCa).await?)
            }
            _ => None,
        };
        if self.mode == SslMode::Preferred && greeting.as_ref().is_some_and(|g| !g.offers_tls) {
            tracing::info!(%host, port, "the server offers no TLS: connecting unencrypted (ssl-mode PREFERRED)");
            return Ok((builder.ssl_opts(None::<SslOpts>), false));
        }
        let mut ssl = SslOpts::default().with_client_identity(identity);
        match self.mode {
            SslMode::Preferred | SslMode::Required => {
                ssl = ssl.with_danger_accept_invalid_certs(true);
            }
            SslMode::VerifyCa | SslMode::VerifyIdentity => {
                if let Some(ca) = ca {
                    ssl = ssl
                        .with_root_certs(vec![ca.into()])
                        .with_disable_built_in_roots(true);
                }
                if self.mode == SslMode::VerifyCa {
                    // The chain is checked as for VERIFY_IDENTITY, against a name the
                    // certificate itself carries.
                    let names = greeting.map(|g| g.certificate_names).unwrap_or_default();
                    if let Some(name) = name_to_verify(host, &names) {
                        ssl = ssl.with_danger_tls_hostname_override(Some(name));
                    }
                }
            }
            SslMode::Disabled => {}
        }
        Ok((builder.ssl_opts(ssl), true))
    }
}

/// For `VERIFY_CA`: the name to check the certificate for, when `host` is not one of its
/// names: its first DNS name (a wildcard's with a label in place of `*`). `None` keeps the
/// host (an IP address the certificate may carry).
fn name_to_verify(host: &str, names: &[String]) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let matches = |n: &String| {
        let n = n.to_ascii_lowercase();
        n == host
            || n.strip_prefix("*.").is_some_and(|suffix| {
                host.split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
            })
    };
    if names.iter().any(matches) {
        return None;
    }
    let first = names.first()?;
    Some(match first.strip_prefix("*.") {
        Some(suffix) => format!("verify-ca.{suffix}"),
        None => first.clone(),
    })
}

/// Reads a PEM file for `setting`, checking that it holds a block whose label contains
/// `label` (`CERTIFICATE`, `PRIVATE KEY`).
fn read_pem(path: &Path, setting: &str, label: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        MySqlError::Config(format!("{setting}: cannot read {}: {e}", path.display()))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .any(|l| l.contains(label));
    if !found {
        return Err(MySqlError::Config(format!(
            "{setting}: {} holds no PEM block \"-----BEGIN ...{label}-----\"",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> ConnectionConfig {
        ConnectionConfig::new(url)
    }

    #[test]
    fn modes_parse_like_mysql() {
        assert_eq!("verify_ca".parse::<SslMode>(), Ok(SslMode::VerifyCa));
        assert_eq!(
            "VERIFY-IDENTITY".parse::<SslMode>(),
            Ok(SslMode::VerifyIdentity)
        );
        assert_eq!("Disabled".parse::<SslMode>(), Ok(SslMode::Disabled));
        let e = "strict".parse::<SslMode>().unwrap_err();
        assert!(e.contains("strict") && e.contains("VERIFY_CA"), "{e}");
        let m: SslMode = serde_json::from_str("\"required\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"REQUIRED\"");
    }

    #[test]
    fn url_parameters_are_taken_off_the_driver_url() {
        let (url, t) = TlsSettings::of(&cfg(
            "mysql://u@h:3306/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=%2Fetc%2Fca.pem&stmt_cache_size=8&ssl_cert=/c.pem&ssl-key=/k.pem",
        ))
        .unwrap();
        assert_eq!(url, "mysql://u@h:3306/db?stmt_cache_size=8");
        assert_eq!(t.mode, SslMode::VerifyIdentity);
        assert_eq!(t.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(t.cert.as_deref(), Some(Path::new("/c.pem")));
        assert_eq!(t.key.as_deref(), Some(Path::new("/k.pem")));
    }

    #[test]
    fn defaults_follow_mysqls_client() {
        let (_, t) = TlsSettings::of(&cfg("mysql://u@h/db")).unwrap();
        assert_eq!(t.mode, SslMode::Preferred);
        let (_, t) = TlsSettings::of(&cfg("mysql://u@h/db?ssl-ca=/ca.pem")).unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa, "a CA alone means VERIFY_CA");
        let (_, t) = TlsSettings::of(&cfg("mysql://u@h/db?require_ssl=true")).unwrap();
        assert_eq!(t.mode, SslMode::VerifyIdentity);
        let (_, t) =
            TlsSettings::of(&cfg("mysql://u@h/db?require_ssl=true&verify_ca=false")).unwrap();
        assert_eq!(t.mode, SslMode::Required);
        let (_, t) = TlsSettings::of(&cfg(
            "mysql://u@h/db?require_ssl=true&verify_identity=false",
        ))
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
    }

    #[test]
    fn fields_and_url_combine_and_conflicts_are_named() {
        let mut c = cfg("mysql://u@h/db?ssl-mode=REQUIRED");
        c.ssl_mode = Some(SslMode::Required);
        assert_eq!(TlsSettings::of(&c).unwrap().1.mode, SslMode::Required);
        c.ssl_mode = Some(SslMode::Disabled);
        let e = TlsSettings::of(&c).unwrap_err().to_string();
        assert!(e.contains("ssl-mode") && e.contains("ssl_mode"), "{e}");
        let mut c = cfg("mysql://u@h/db");
        c.ssl_cert = Some("/c.pem".into());
        let e = TlsSettings::of(&c).unwrap_err().to_string();
        assert!(e.contains("ssl-key"), "{e}");
        let e = TlsSettings::of(&cfg("mysql://u@h/db?ssl-mode=on")).unwrap_err();
        assert!(e.to_string().contains("unknown ssl-mode \"on\""), "{e}");
        let e = TlsSettings::of(&cfg("mysql://u@h/db?ssl-mode=DISABLED&ssl-ca=/x")).unwrap_err();
        assert!(e.to_string().contains("DISABLED"), "{e}");
        let e = TlsSettings::of(&cfg("mysql://u@h/db?ssl-ca=")).unwrap_err();
        assert!(e.to_string().contains("ssl-ca"), "{e}");
        let e =
            TlsSettings::of(&cfg("mysql://u@h/db?ssl-mode=REQUIRED&require_ssl=true")).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = TlsSettings::of(&cfg("mysql://u@h/db?ssl-ca=%zz")).unwrap_err();
        assert!(e.to_string().contains("ssl-ca"), "{e}");
    }

    #[test]
    fn verify_ca_checks_against_a_name_of_the_certificate() {
        let names = vec!["db.internal".to_string(), "*.db.example".to_string()];
        assert_eq!(name_to_verify("db.internal", &names), None);
        assert_eq!(name_to_verify("a.db.example", &names), None);
        assert_eq!(
            name_to_verify("127.0.0.1", &names),
            Some("db.internal".to_string())
        );
        let wild = vec!["*.db.example".to_string()];
        assert_eq!(
            name_to_verify("10.0.0.1", &wild),
            Some("verify-ca.db.example".to_string())
        );
        assert_eq!(name_to_verify("10.0.0.1", &[]), None);
    }

    /// MySQL 8's `caching_sha2_password`: the fast path's scramble is what the server checks
    /// against its cache (`SHA256(SHA256(password))`); MySQL 5.7's `mysql_native_password`
    /// likewise with SHA1. The full path depends on TLS: the driver sends the password over an
    /// encrypted session, or RSA-encrypted with the server's public key otherwise, so which
    /// one a connection takes is its `ssl-mode`.
    #[test]
    fn caching_sha2_and_native_password_scrambles_pass_the_servers_checks() {
        use sha2::{Digest, Sha256};
        let password = "s3cret-é".as_bytes();
        let nonce = *b"0123456789abcdefghij";
        let stored = Sha256::digest(Sha256::digest(password));
        let scramble = mysql_common::scramble::scramble_sha256(&nonce, password).unwrap();
        let mask = Sha256::new()
            .chain_update(stored)
            .chain_update(nonce)
            .finalize();
        let candidate: Vec<u8> = scramble
            .iter()
            .zip(mask.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(Sha256::digest(&candidate), stored, "the server accepts it");
        let wrong = mysql_common::scramble::scramble_sha256(&nonce, b"other").unwrap();
        let candidate: Vec<u8> = wrong.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_ne!(Sha256::digest(&candidate), stored);

        use sha1::Sha1;
        let stored = Sha1::digest(Sha1::digest(password));
        let scramble = mysql_common::scramble::scramble_native(&nonce, password).unwrap();
        let mask = Sha1::new()
            .chain_update(nonce)
            .chain_update(stored)
            .finalize();
        let candidate: Vec<u8> = scramble
            .iter()
            .zip(mask.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(Sha1::digest(&candidate), stored);
    }

    #[tokio::test]
    async fn the_ssl_mode_decides_between_tls_and_rsa_for_full_authentication() {
        let opts = |mode: SslMode| async move {
            let t = TlsSettings {
                mode,
                ..Default::default()
            };
            let (b, encrypted) = t
                .apply(
                    OptsBuilder::default(),
                    "127.0.0.1",
                    1,
                    Duration::from_secs(1),
                )
                .await
                .unwrap();
            (mysql_async::Opts::from(b).ssl_opts().is_some(), encrypted)
        };
        // REQUIRED: TLS, so caching_sha2_password's full path sends the password over it.
        assert_eq!(opts(SslMode::Required).await, (true, true));
        // DISABLED: no TLS; the full path asks for the server's RSA key instead.
        assert_eq!(opts(SslMode::Disabled).await, (false, false));
    }

    #[test]
    fn pem_files_are_checked_with_the_setting_named() {
        let dir = std::env::temp_dir().join(format!("dt-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "hello").unwrap();
        let e = read_pem(&bad, "ssl-ca", "CERTIFICATE")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssl-ca") && e.contains("bad.pem"), "{e}");
        let e = read_pem(&dir.join("missing.pem"), "ssl-key", "PRIVATE KEY")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssl-key") && e.contains("missing.pem"), "{e}");
        let good = dir.join("good.pem");
        std::fs::write(
            &good,
            "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        read_pem(&good, "ssl-key", "PRIVATE KEY").unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
