//! Reading a job file's text (TOML, or JSON when the name ends in `.json` or the text starts
//! with `{`) into one JSON tree, so every later step works the same for both formats.

use serde_json::{Map, Number, Value};

use super::error::JobFileError;

/// Parses `text` of `file` into a JSON object.
pub fn parse(file: &str, text: &str) -> Result<Map<String, Value>, JobFileError> {
    let is_json = file.ends_with(".json") || text.trim_start().starts_with('{');
    let value = if is_json {
        serde_json::from_str::<Value>(text)
            .map_err(|e| JobFileError::new(file, "", format!("invalid JSON: {e}")))?
    } else {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| JobFileError::new(file, "", toml_message(&e, text)))?;
        toml_to_json(file, "", toml::Value::Table(table))?
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JobFileError::new(
            file,
            "",
            "expected a table (an object) at the top level",
        )),
    }
}

/// `invalid TOML at line 3, column 7: ...` on one line, without the echo of the line
/// (which might hold a secret).
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let what = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            format!("invalid TOML at line {line}, column {col}: {what}")
        }
        None => format!("invalid TOML: {what}"),
    }
}

fn toml_to_json(file: &str, at: &str, v: toml::Value) -> Result<Value, JobFileError> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::Number(i.into()),
        toml::Value::Float(f) => Value::Number(Number::from_f64(f).ok_or_else(|| {
            JobFileError::new(file, at, format!("expected a finite number, found {f}"))
        })?),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    toml_to_json(file, &super::error::join(at, &format!("[{i}]")), item)
                })
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.into_iter()
                .map(|(k, item)| {
                    let sub = super::error::join(at, &k);
                    toml_to_json(file, &sub, item).map(|v| (k, v))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}
