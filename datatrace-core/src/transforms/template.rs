//! Text patterns with `{name}` placeholders, used by [`super::SetField::template`] and
//! [`super::Route`]. `{{` and `}}` stand for literal braces.

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

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(String),
}

/// A parsed pattern, not yet tied to a schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    source: String,
    parts: Vec<Part>,
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
    pub(crate) fn parse(pattern: &str) -> Result<Template, TemplateError> {
        let fail = |reason| TemplateError {
            pattern: pattern.to_string(),
            reason,
        };
        let mut parts = Vec::new();
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
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') => return Err(fail("'{' inside a placeholder")),
                            Some(c) => name.push(c),
                            None => return Err(fail("unclosed '{'")),
                        }
                    }
                    let name = name.trim();
                    if name.is_empty() {
                        return Err(fail("empty placeholder '{}'"));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(name.to_string()));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            source: pattern.to_string(),
            parts,
        })
    }

    /// The pattern as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Ties the pattern to a schema: `resolve` turns each placeholder name into text or a
    /// field position (or the error naming the unknown name).
    pub(crate) fn compile(
        &self,
        mut resolve: impl FnMut(&str) -> Result<Piece, String>,
    ) -> Result<Compiled, String> {
        let mut pieces: Vec<Piece> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let piece = match part {
                Part::Text(t) => Piece::Text(t.clone()),
                Part::Var(name) => resolve(name)?,
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
