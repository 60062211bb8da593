//! [`SslMode`]: how a connection uses TLS (MySQL's `--ssl-mode`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a connection uses TLS (MySQL's `--ssl-mode`; see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum SslMode {
    /// Never encrypt.
    Disabled,
    /// Encrypt when the server offers TLS, without checking its certificate.
    #[default]
    Preferred,
    /// Always encrypt, without checking the server's certificate.
    Required,
    /// Always encrypt; the server's certificate must be signed by the CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must be issued for the host connected to.
    VerifyIdentity,
}

impl SslMode {
    /// The name as MySQL writes it (`VERIFY_CA`).
    pub fn as_str(&self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    /// Whether the server's certificate is checked against a CA.
    pub fn verifies(&self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyIdentity)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;
    /// Case-insensitive; `-` and `_` are the same (`verify-ca`, `VERIFY_CA`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => Ok(SslMode::Disabled),
            "PREFERRED" => Ok(SslMode::Preferred),
            "REQUIRED" => Ok(SslMode::Required),
            "VERIFY_CA" => Ok(SslMode::VerifyCa),
            "VERIFY_IDENTITY" => Ok(SslMode::VerifyIdentity),
            _ => Err(format!(
                "unknown ssl-mode {s:?}: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
            )),
        }
    }
}

impl Serialize for SslMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SslMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
