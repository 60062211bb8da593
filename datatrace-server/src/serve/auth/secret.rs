//! Credentials at rest: passwords as Argon2id PHC strings (the `argon2` crate, OWASP's
//! parameters: 19 MiB, 2 passes, 1 lane), and random secrets (session ids, API tokens)
//! of 256 bits kept only as their SHA-256 (they are not guessable, so a fast hash is
//! enough and lookups stay cheap).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// The longest password accepted (hashing cost is bounded).
pub const MAX_PASSWORD: usize = 256;
/// What API tokens start with (so they can be recognised in a leak scan).
pub const TOKEN_PREFIX: &str = "dtk_";

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Whether a password is acceptable for `username`; the reason when not.
pub fn check_password(password: &str, username: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD} characters"
        ));
    }
    if n > MAX_PASSWORD {
        return Err(format!(
            "the password must have at most {MAX_PASSWORD} characters"
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err("the password must not be the user name".into());
    }
    Ok(())
}

/// The Argon2id PHC string of `password` (slow on purpose: run it off the async threads).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC string `stored`.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so a wrong user name takes as
/// long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

/// 256 random bits, URL-safe base64, with `prefix`; `Err` only without an OS random source.
pub fn random_secret(prefix: &str) -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| format!("no random numbers from the operating system: {e}"))?;
    Ok(format!("{prefix}{}", B64URL.encode(bytes)))
}

/// The SHA-256 of a random secret, hex: what the store keeps.
pub fn digest(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_and_are_salted() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a salt per hash");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_password("x", dummy_hash()));
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_password("short", "bob").is_err());
        assert!(check_password("AdministratorX", "administratorx").is_err());
        assert!(check_password("long enough pass", "bob").is_ok());
    }

    #[test]
    fn secrets_are_random_and_kept_as_digests() {
        let a = random_secret(TOKEN_PREFIX).unwrap();
        assert!(a.starts_with("dtk_") && a.len() > 40);
        assert_ne!(a, random_secret(TOKEN_PREFIX).unwrap());
        assert_eq!(digest(&a).len(), 64);
        assert_eq!(digest(&a), digest(&a));
    }
}
