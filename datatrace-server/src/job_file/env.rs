//! `${VAR}` in job file strings, replaced from the environment before anything else reads
//! the file: `password = "${MYSQL_PASSWORD}"`. `$${` writes a literal `${`.

use serde_json::Value;

use super::error::{join, JobFileError};

/// Whether a variable's name says it holds a secret (`MYSQL_PASSWORD`, `ES_API_KEY`, ...).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "PWD"]
        .iter()
        .any(|s| n.contains(s))
}

/// Replaces `${VAR}` in every string of `value` (at key path `at`) with the variable's value,
/// using `lookup` (the process environment in production). Returns the values of variables
/// whose names say they are secrets, so they can be kept out of messages.
pub fn substitute(
    file: &str,
    at: &str,
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, JobFileError> {
    let mut used = Vec::new();
    walk(file, at, value, lookup, &mut used)?;
    Ok(used)
}

fn walk(
    file: &str,
    at: &str,
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut Vec<String>,
) -> Result<(), JobFileError> {
    match value {
        Value::String(s) if s.contains('$') => {
            *s = expand(s, lookup, used).map_err(|m| JobFileError::new(file, at, m))?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(file, &join(at, &format!("[{i}]")), item, lookup, used)?;
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                walk(file, &join(at, k), item, lookup, used)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands one string.
pub fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            let end = r.find('}').ok_or_else(|| {
                "unclosed \"${\": write ${NAME} for an environment variable, $${ for a literal \"${\""
                    .to_owned()
            })?;
            let name = &r[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "invalid environment variable name {name:?} in \"${{...}}\" (letters, digits and _)"
                ));
            }
            let v =
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&v);
            if !v.is_empty() && is_secret_name(name) {
                used.push(v);
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        matches!(name, "PW" | "HOST").then(|| "s3cret".to_owned())
    }

    #[test]
    fn expands_and_reports() {
        let mut used = Vec::new();
        assert_eq!(expand("a${PW}b", &env, &mut used).unwrap(), "as3cretb");
        assert!(used.is_empty(), "PW is not a secret's name");
        expand("${HOST}", &env, &mut used).unwrap();
        assert!(used.is_empty());
        assert!(is_secret_name("MYSQL_PASSWORD") && is_secret_name("es_api_key"));
        assert_eq!(expand("$5 $${PW}", &env, &mut used).unwrap(), "$5 ${PW}");
        assert_eq!(
            expand("${NOPE}", &env, &mut used).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(expand("${PW", &env, &mut used)
            .unwrap_err()
            .starts_with("unclosed"));
        assert!(expand("${P-W}", &env, &mut used)
            .unwrap_err()
            .starts_with("invalid environment"));
    }
}
