//! The one template engine of DataTrace: text patterns with `{name}` placeholders, used for
//! every target name (the [`Route`](crate::transforms::Route) transform, job files' target
//! table patterns ([`NamePattern`]), Elasticsearch index patterns) and by
//! [`SetField::template`](crate::transforms::SetField::template).
//!
//! One grammar, one parser ([`Template::parse`]): `{name}` is a placeholder, `{name:arg}` one
//! with an argument (`{now:yyyy.MM.dd}`), `{{` and `}}` are literal braces. What a name means
//! is up to the user of the pattern, which checks the names it knows
//! ([`Template::check_names`]) and renders ([`Template::render`]).
//!
//! ```
//! use datatrace_core::template::{Segment, Template};
//!
//! let t = Template::parse("logs-{table}-{now:yyyy.MM}").unwrap();
//! assert!(t.uses("table"));
//! assert_eq!(t.segments()[3], Segment::Placeholder { name: "now".into(), arg: Some("yyyy.MM".into()) });
//! let name = t.render(|name, arg, out| match (name, arg) {
//!     ("table", _) => out.push_str("orders"),
//!     ("now", _) => out.push_str("2024.02"),
//!     _ => {}
//! });
//! assert_eq!(name, "logs-orders-2024.02");
//! assert!(Template::parse("{table").is_err());
//! ```

use std::fmt::Write as _;

use crate::value::Value;

/// A pattern that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {reason}")]
pub struct TemplateError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A piece of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text (escaped braces resolved).
    Text(String),
    /// `{name}` or `{name:arg}`.
    Placeholder {
        /// The name (trimmed).
        name: String,
        /// What follows the first `:`, if any.
        arg: Option<String>,
    },
}

/// A parsed pattern, not yet tied to anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// A piece of a pattern tied to a schema.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// Literal text (including resolved variables such as the table name).
    Text(String),
    /// The value of the field at this position.
    Field(usize),
}

/// A pattern tied to one schema.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `pattern`; the error names what is wrong (an unclosed or stray brace, an empty
    /// placeholder).
    pub fn parse(pattern: &str) -> Result<Template, TemplateError> {
        let fail = |reason| TemplateError {
            pattern: pattern.to_string(),
            reason,
        };
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(fail("unmatched '}' (write '}}' for a literal brace)")),
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') => return Err(fail("'{' inside a placeholder")),
                            Some(c) => inner.push(c),
                            None => return Err(fail("unclosed '{'")),
                        }
                    }
                    let (name, arg) = match inner.split_once(':') {
                        Some((n, a)) => (n.trim(), Some(a.to_string())),
                        None => (inner.trim(), None),
                    };
                    if name.is_empty() {
                        return Err(fail("empty placeholder '{}'"));
                    }
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Placeholder {
                        name: name.to_string(),
                        arg,
                    });
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Template {
            source: pattern.to_string(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The pattern's pieces, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The placeholders, in order: `(name, arg)`.
    pub fn placeholders(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Placeholder { name, arg } => Some((name.as_str(), arg.as_deref())),
            Segment::Text(_) => None,
        })
    }

    /// Whether the pattern has a placeholder `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.placeholders().any(|(n, _)| n == name)
    }

    /// The first placeholder whose name is not in `known` (with its argument, as written
    /// between the braces), if any.
    pub fn check_names(&self, known: &[&str]) -> Result<(), String> {
        match self.placeholders().find(|(n, _)| !known.contains(n)) {
            None => Ok(()),
            Some((n, Some(a))) => Err(format!("{n}:{a}")),
            Some((n, None)) => Err(n.to_string()),
        }
    }

    /// The text with every placeholder replaced by what `value` writes for it (`name`,
    /// `arg`, the output).
    pub fn render(&self, mut value: impl FnMut(&str, Option<&str>, &mut String)) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Placeholder { name, arg } => value(name, arg.as_deref(), &mut out),
            }
        }
        out
    }

    /// Ties the pattern to a schema: `resolve` turns each placeholder (its text between the
    /// braces) into text or a field position, or the error naming the unknown name.
    pub(crate) fn compile(
        &self,
        mut resolve: impl FnMut(&str) -> Result<Piece, String>,
    ) -> Result<Compiled, String> {
        let mut pieces: Vec<Piece> = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            let piece = match s {
                Segment::Text(t) => Piece::Text(t.clone()),
                Segment::Placeholder { name, arg: None } => resolve(name)?,
                Segment::Placeholder { name, arg: Some(a) } => resolve(&format!("{name}:{a}"))?,
            };
            match (pieces.last_mut(), piece) {
                (Some(Piece::Text(prev)), Piece::Text(t)) => prev.push_str(&t),
                (_, piece) => pieces.push(piece),
            }
        }
        Ok(Compiled { pieces })
    }
}

impl Compiled {
    /// The whole text when the pattern uses no field.
    pub(crate) fn as_static(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// Renders with `values`. A `NULL` field renders as nothing when `null_as_empty`, else
    /// the position of the null field is returned as the error.
    pub(crate) fn render(&self, values: &[Value], null_as_empty: bool) -> Result<String, usize> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(i) => match values.get(*i).unwrap_or(&Value::Null) {
                    Value::Null if null_as_empty => {}
                    Value::Null => return Err(*i),
                    Value::String(s) => out.push_str(s),
                    v => {
                        let _ = write!(out, "{v}");
                    }
                },
            }
        }
        Ok(out)
    }
}

/// A target name pattern of a table or index: `{table}` (the table's or routed target's
/// name) and `{db}` (its database or namespace, empty when none), e.g. `copy_{table}`.
///
/// ```
/// use datatrace_core::template::NamePattern;
/// let p = NamePattern::parse("{db}_{table}_copy").unwrap();
/// assert_eq!(p.render("orders", Some("shop")), "shop_orders_copy");
/// assert!(NamePattern::parse("{tabel}").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(Template);

impl NamePattern {
    /// Checks `pattern`: only `{table}` and `{db}` placeholders, balanced braces.
    pub fn parse(pattern: &str) -> Result<NamePattern, String> {
        if pattern.trim().is_empty() {
            return Err(
                "expected a name pattern such as \"{table}\", found an empty string".into(),
            );
        }
        let t = Template::parse(pattern).map_err(|e| e.to_string())?;
        t.check_names(&["table", "db"]).map_err(|name| {
            format!("unknown placeholder {{{name}}} in {pattern:?}: expected {{table}} or {{db}}")
        })?;
        Ok(NamePattern(t))
    }

    /// Whether the pattern is just `{table}` (names are kept).
    pub fn is_identity(&self) -> bool {
        matches!(self.0.segments(), [Segment::Placeholder { name, arg: None }] if name == "table")
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        self.0.source()
    }

    /// The name for `table` in database `db`.
    pub fn render(&self, table: &str, db: Option<&str>) -> String {
        self.0.render(|name, _, out| match name {
            "table" => out.push_str(table),
            _ => out.push_str(db.unwrap_or("")),
        })
    }
}
