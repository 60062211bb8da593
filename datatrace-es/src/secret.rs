//! [`Secret`]: a password, API key or token, given in the configuration, taken from an
//! environment variable, or read from a file (Docker and Kubernetes secrets).
//!
//! ```
//! use datatrace_es::Secret;
//!
//! std::env::set_var("DOC_ES_PASSWORD", "s3cret");
//! let inline: Secret = serde_json::from_str(r#""s3cret""#).unwrap();
//! let from_env: Secret = serde_json::from_str(r#"{"env": "DOC_ES_PASSWORD"}"#).unwrap();
//! assert_eq!(inline.expose(), from_env.expose());
//! assert_eq!(format!("{from_env:?}"), "Secret(***)");
//! // Written back as given: the variable's name, not its value.
//! assert_eq!(serde_json::to_string(&from_env).unwrap(), r#"{"env":"DOC_ES_PASSWORD"}"#);
//! let missing = serde_json::from_str::<Secret>(r#"{"file": "/nonexistent/pw"}"#).unwrap_err();
//! assert!(missing.to_string().contains("/nonexistent/pw"));
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
enum From {
    Inline,
    Env(String),
    File(PathBuf),
}

/// A password, API key or bearer token. In configuration it is a string (`"s3cret"`), an
/// environment variable (`{ env = "ES_PASSWORD" }`) or a file (`{ file =
/// "/run/secrets/es_password" }`, its content without the trailing line break), read when
/// the configuration is read. It is written back as given (the variable's name or the file's
/// path, not the value), and `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    from: From,
}

impl Secret {
    /// A secret given as text.
    pub fn new(s: impl Into<String>) -> Self {
        Secret {
            value: s.into(),
            from: From::Inline,
        }
    }

    /// The value of environment variable `name`; an error naming it when unset.
    pub fn from_env(name: &str) -> Result<Self, String> {
        let value =
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
        Ok(Secret {
            value,
            from: From::Env(name.to_string()),
        })
    }

    /// The content of the file at `path` without its trailing line break; an error naming
    /// the path when it cannot be read.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, String> {
        let path = path.into();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
        let value = text.trim_end_matches(['\n', '\r']).to_string();
        Ok(Secret {
            value,
            from: From::File(path),
        })
    }

    /// The secret text (for building credentials only).
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Form {
    Inline(String),
    Env { env: String },
    File { file: PathBuf },
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.from {
            From::Inline => Form::Inline(self.value.clone()),
            From::Env(env) => Form::Env { env: env.clone() },
            From::File(file) => Form::File { file: file.clone() },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a string, { env = \"VARIABLE\" } or { file = \"/path/to/secret\" }",
            )
        })?;
        match form {
            Form::Inline(s) => Ok(Secret::new(s)),
            Form::Env { env } => Secret::from_env(&env).map_err(serde::de::Error::custom),
            Form::File { file } => Secret::from_file(file).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_lose_their_line_break_and_errors_name_the_source() {
        let path = std::env::temp_dir().join(format!("dt-secret-{}", std::process::id()));
        std::fs::write(&path, "key-123\n").unwrap();
        let s: Secret = serde_json::from_value(serde_json::json!({ "file": path })).unwrap();
        assert_eq!(s.expose(), "key-123");
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({ "file": path })
        );
        let _ = std::fs::remove_file(&path);
        let e = serde_json::from_str::<Secret>(r#"{"env": "DT_SURELY_UNSET_VAR_42"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DT_SURELY_UNSET_VAR_42"), "{e}");
        let e = serde_json::from_str::<Secret>("42")
            .unwrap_err()
            .to_string();
        assert!(e.contains("env"), "{e}");
    }
}
