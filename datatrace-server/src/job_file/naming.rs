//! Target name patterns of job files: `{table}` (the source table or index) and `{db}` (the
//! source database, empty for indices), e.g. `table = "copy_{table}"`.

/// A checked name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(String);

impl NamePattern {
    /// Checks `pattern`: only `{table}` and `{db}` placeholders, balanced braces.
    pub fn parse(pattern: &str) -> Result<NamePattern, String> {
        if pattern.trim().is_empty() {
            return Err(
                "expected a name pattern such as \"{table}\", found an empty string".into(),
            );
        }
        let mut rest = pattern;
        while let Some(i) = rest.find(['{', '}']) {
            if rest[i..].starts_with('}') {
                return Err(format!("unbalanced \"}}\" in {pattern:?}"));
            }
            let after = &rest[i + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed \"{{\" in {pattern:?}"))?;
            let name = &after[..end];
            if !matches!(name, "table" | "db") {
                return Err(format!(
                    "unknown placeholder {{{name}}} in {pattern:?}: expected {{table}} or {{db}}"
                ));
            }
            rest = &after[end + 1..];
        }
        Ok(NamePattern(pattern.to_owned()))
    }

    /// Whether the pattern is just `{table}` (names are kept).
    pub fn is_identity(&self) -> bool {
        self.0 == "{table}"
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name for a source `table` in database `db`.
    pub fn render(&self, table: &str, db: Option<&str>) -> String {
        self.0
            .replace("{table}", table)
            .replace("{db}", db.unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses() {
        let p = NamePattern::parse("{db}_{table}_copy").unwrap();
        assert_eq!(p.render("orders", Some("shop")), "shop_orders_copy");
        assert!(NamePattern::parse("{table}").unwrap().is_identity());
        assert_eq!(
            NamePattern::parse("{tabel}").unwrap_err(),
            "unknown placeholder {tabel} in \"{tabel}\": expected {table} or {db}"
        );
        assert!(NamePattern::parse("{table").is_err());
        assert!(NamePattern::parse("a}").is_err());
    }
}
