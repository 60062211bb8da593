//! Secrets at rest: AES-256-GCM with a random 96-bit nonce per value, under a master key from
//! `DATATRACE_MASTER_KEY` (base64 of 32 bytes, or 64 hex digits) or `<data-dir>/master.key`
//! (base64, created with mode 0600 on first start).
//!
//! A stored value is `base64(nonce || ciphertext+tag)`. The data directory keeps a key check
//! value (a known text encrypted under the key), so a wrong key fails at start with a clear
//! message instead of producing garbage.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The environment variable holding the master key.
pub const KEY_ENV: &str = "DATATRACE_MASTER_KEY";
/// The text whose encryption is kept as the key check value.
const CHECK_TEXT: &[u8] = b"datatrace master key check v1";

/// A problem with the master key or an encrypted value.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key text is not 32 bytes in base64 or hex.
    #[error("{origin}: expected 32 bytes as base64 (44 characters) or hex (64 digits)")]
    BadKey {
        /// Where the key came from.
        origin: String,
    },
    /// The key file cannot be read or created.
    #[error("master key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The key does not decrypt what was stored with the data directory's key.
    #[error(
        "the master key from {origin} is not the key this metadata store was created with; \
         start with the original key (DATATRACE_MASTER_KEY or the data directory's master.key)"
    )]
    WrongKey {
        /// Where the key came from.
        origin: String,
    },
    /// A stored value does not decrypt.
    #[error("an encrypted value cannot be decrypted (corrupt, or encrypted under another key)")]
    Decrypt,
    /// The store was made with a key that is nowhere to be found.
    #[error(
        "this metadata store was created with a master key, but {KEY_ENV} is not set and \
         {path} does not exist: restore the key file from your backup or set {KEY_ENV} to the \
         original key (a new key cannot read the stored secrets, so none is made)"
    )]
    Missing {
        /// Where the key file was looked for.
        path: String,
    },
    /// Encryption failed (never expected).
    #[error("encryption failed")]
    Encrypt,
}

/// The master key; its bytes are never printed.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    origin: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(from {})", self.origin)
    }
}

impl MasterKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32], origin: impl Into<String>) -> Self {
        MasterKey {
            cipher: Aes256Gcm::new(bytes.into()),
            origin: origin.into(),
        }
    }

    /// A key from its text form: base64 of 32 bytes or 64 hex digits.
    pub fn parse(text: &str, origin: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .ok()
        } else {
            B64.decode(text).ok()
        };
        let bytes: [u8; 32] =
            bytes
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| CryptoError::BadKey {
                    origin: origin.to_owned(),
                })?;
        Ok(MasterKey::from_bytes(&bytes, origin))
    }

    /// The key from `DATATRACE_MASTER_KEY` when set, else from the file `path`; a missing
    /// file is created (random, mode 0600) only when `may_create` (a store with no secrets
    /// yet), otherwise [`CryptoError::Missing`]. Also says whether it was created.
    pub fn load(path: &Path, may_create: bool) -> Result<(Self, bool), CryptoError> {
        MasterKey::load_with(std::env::var(KEY_ENV).ok(), path, may_create)
    }

    fn load_with(
        env: Option<String>,
        path: &Path,
        may_create: bool,
    ) -> Result<(Self, bool), CryptoError> {
        if let Some(text) = env {
            return MasterKey::parse(&text, KEY_ENV).map(|k| (k, false));
        }
        let shown = path.display().to_string();
        let file_err = |e: std::io::Error| CryptoError::KeyFile {
            path: shown.clone(),
            message: e.to_string(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => MasterKey::parse(&text, &shown).map(|k| (k, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !may_create => {
                Err(CryptoError::Missing { path: shown })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::getrandom(&mut bytes).map_err(|e| CryptoError::KeyFile {
                    path: shown.clone(),
                    message: format!("no random numbers: {e}"),
                })?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(file_err)?;
                }
                write_private(path, B64.encode(bytes).as_bytes()).map_err(file_err)?;
                Ok((MasterKey::from_bytes(&bytes, shown), true))
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// Where the key came from (for messages).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Encrypts `plain` with a fresh random nonce: `base64(nonce || ciphertext)`.
    pub fn encrypt(&self, plain: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).map_err(|_| CryptoError::Encrypt)?;
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(B64.encode(out))
    }

    /// Decrypts a value made by [`MasterKey::encrypt`].
    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let raw = B64.decode(stored).map_err(|_| CryptoError::Decrypt)?;
        if raw.len() < 12 + 16 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, sealed) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
    }

    /// A fresh key check value for this key.
    pub fn check_value(&self) -> Result<String, CryptoError> {
        self.encrypt(std::str::from_utf8(CHECK_TEXT).unwrap_or_default())
    }

    /// Whether `stored` (a key check value) was made with this key.
    pub fn verify(&self, stored: &str) -> Result<(), CryptoError> {
        match self.decrypt(stored) {
            Ok(t) if t.as_bytes() == CHECK_TEXT => Ok(()),
            _ => Err(CryptoError::WrongKey {
                origin: self.origin.clone(),
            }),
        }
    }
}

/// Creates `path` readable by its owner only and writes `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let key = MasterKey::from_bytes(&[7; 32], "test");
        let a = key.encrypt("s3cret").unwrap();
        let b = key.encrypt("s3cret").unwrap();
        assert_ne!(a, b, "each value has its own nonce");
        assert!(!a.contains("s3cret"));
        assert_eq!(key.decrypt(&a).unwrap(), "s3cret");
    }

    #[test]
    fn wrong_key_is_refused() {
        let key = MasterKey::from_bytes(&[7; 32], "a");
        let other = MasterKey::from_bytes(&[8; 32], "b");
        let check = key.check_value().unwrap();
        key.verify(&check).unwrap();
        let e = other.verify(&check).unwrap_err().to_string();
        assert!(e.contains("not the key"), "{e}");
        assert!(other.decrypt(&key.encrypt("x").unwrap()).is_err());
    }

    #[test]
    fn a_missing_key_file_is_made_only_for_a_new_store() {
        let dir = std::env::temp_dir().join(format!("dt-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("keys/master.key");
        let e = MasterKey::load_with(None, &path, false).unwrap_err();
        assert!(matches!(e, CryptoError::Missing { .. }), "{e}");
        assert!(!path.exists(), "no key written for an existing store");
        let (k, created) = MasterKey::load_with(None, &path, true).unwrap();
        assert!(created && path.exists());
        let (again, created) = MasterKey::load_with(None, &path, false).unwrap();
        assert!(!created);
        again.verify(&k.check_value().unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_text_forms() {
        let hex = "00".repeat(32);
        MasterKey::parse(&hex, "env").unwrap();
        MasterKey::parse(&B64.encode([1u8; 32]), "env").unwrap();
        let e = MasterKey::parse("short", "DATATRACE_MASTER_KEY").unwrap_err();
        assert!(e.to_string().contains("DATATRACE_MASTER_KEY"));
    }
}
