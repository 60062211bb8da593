//! [`IndexPattern`]: index names from a pattern such as `{prefix}-{table}` or
//! `logs-{table}-{now:yyyy.MM.dd}`, parsed by the core's one template engine
//! ([`datatrace_core::template`]).

use datatrace_core::template::{Segment, Template};
use datatrace_core::Timestamp;

use crate::errors::EsError;

/// A parsed index name pattern.
///
/// Placeholders: `{table}` (the record's routed target or its schema name), `{db}` (the
/// schema's namespace, empty when none), `{prefix}` (the sink's `prefix`), `{now:FORMAT}`
/// (the UTC date of the write; `yyyy`, `MM`, `dd`, `HH` in the format). The result is
/// lower-cased, as Elasticsearch requires, and checked for characters indices may not have.
///
/// ```
/// use datatrace_es::naming::IndexPattern;
/// let p = IndexPattern::parse("{prefix}-{db}.{table}").unwrap();
/// assert_eq!(p.render("Orders", Some("shop"), "dt").unwrap(), "dt-shop.orders");
/// assert!(IndexPattern::parse("{tabel}").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPattern {
    template: Template,
}

impl IndexPattern {
    /// Parses a pattern; unknown placeholders and unbalanced braces are errors.
    pub fn parse(pattern: &str) -> Result<IndexPattern, EsError> {
        let template = Template::parse(pattern)
            .map_err(|e| EsError::Config(format!("index pattern {pattern:?}: {}", e.reason)))?;
        for s in template.segments() {
            if let Segment::Placeholder { name, arg } = s {
                let known = matches!(
                    (name.as_str(), arg),
                    ("table" | "db" | "prefix", None) | ("now", Some(_))
                );
                if !known {
                    let shown = match arg {
                        Some(a) => format!("{name}:{a}"),
                        None => name.clone(),
                    };
                    return Err(EsError::Config(format!(
                        "index pattern {pattern:?}: unknown placeholder {{{shown}}} (expected table, db, prefix or now:FORMAT)"
                    )));
                }
            }
        }
        Ok(IndexPattern { template })
    }

    /// Whether the pattern uses `{now:...}` (names then change over time).
    pub fn is_time_based(&self) -> bool {
        self.template.uses("now")
    }

    /// Whether the pattern uses `{table}`, i.e. gives each table (or routed target) an index
    /// of its own. Without it, several tables may share one index.
    pub fn has_table(&self) -> bool {
        self.template.uses("table")
    }

    /// The index name for a table, namespace and prefix, at the current time.
    pub fn render(&self, table: &str, db: Option<&str>, prefix: &str) -> Result<String, EsError> {
        let out = self.template.render(|name, arg, out| match name {
            "table" => out.push_str(table),
            "db" => out.push_str(db.unwrap_or("")),
            "prefix" => out.push_str(prefix),
            _ => out.push_str(&format_now(arg.unwrap_or(""), Timestamp::now())),
        });
        let name = out.to_lowercase();
        check_index_name(&name)?;
        Ok(name)
    }
}

fn format_now(format: &str, now: Timestamp) -> String {
    let Some(dt) = now.to_utc() else {
        return String::new();
    };
    let d = dt.date();
    let (h, _, _, _) = dt.time_parts();
    format
        .replace("yyyy", &format!("{:04}", d.year()))
        .replace("MM", &format!("{:02}", d.month()))
        .replace("dd", &format!("{:02}", d.day()))
        .replace("HH", &format!("{h:02}"))
}

/// Checks Elasticsearch's rules for index names.
pub fn check_index_name(name: &str) -> Result<(), EsError> {
    let bad = |why: &str| Err(EsError::Config(format!("index name {name:?}: {why}")));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if name == "." || name == ".." {
        return bad("not allowed");
    }
    if name.starts_with(['-', '_', '+']) {
        return bad("may not start with '-', '_' or '+'");
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
        )
    }) {
        return bad(&format!("may not contain {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_checks() {
        let p = IndexPattern::parse("{prefix}-{table}").unwrap();
        assert_eq!(p.render("Users", None, "dt").unwrap(), "dt-users");
        assert!(!p.is_time_based());
        assert!(p.has_table());
        assert!(!IndexPattern::parse("{db}-all").unwrap().has_table());
        let p = IndexPattern::parse("logs-{now:yyyy.MM.dd}").unwrap();
        assert!(p.is_time_based());
        let now = Timestamp::from_unix_micros(1_709_168_523_000_000); // 2024-02-29T01:02:03Z
        assert_eq!(format_now("yyyy.MM.dd-HH", now), "2024.02.29-01");
        assert!(p.render("x", None, "").unwrap().starts_with("logs-20"));
        assert!(IndexPattern::parse("{table").is_err());
        assert!(IndexPattern::parse("a}").is_err());
        let e = IndexPattern::parse("{x}").unwrap_err().to_string();
        assert!(e.contains("{x}"), "{e}");
        let p = IndexPattern::parse("{table}").unwrap();
        assert!(p.render("a b", None, "").is_err());
        assert!(p.render("_x", None, "").is_err());
    }
}
