//! Secrets of a job file: values of keys named like `password`, `api_key`, `token` (and the
//! environment variables a file takes), replaced by `***` in every message.

use serde_json::Value;

/// Key names whose values are secrets, wherever they are.
const SECRET_KEYS: &[&str] = &["password", "api_key", "apikey", "secret", "token"];

/// Adds the secret values of `v` (and of everything below a secret key) to `out`.
pub fn collect_secrets(v: &Value, secret: bool, out: &mut Vec<String>) {
    match v {
        Value::String(s) if secret => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| collect_secrets(i, secret, out)),
        Value::Object(map) => {
            for (k, item) in map {
                let k = k.to_ascii_lowercase();
                let is_secret = secret || SECRET_KEYS.iter().any(|s| k.contains(s));
                collect_secrets(item, is_secret, out);
            }
        }
        _ => {}
    }
}

/// `text` with every one of `secrets` replaced (see [`crate::secrets::scrub`]: by value,
/// never short common words, and by shape).
pub fn scrub_text(secrets: &[String], text: &str) -> String {
    crate::secrets::scrub(secrets, text)
}
