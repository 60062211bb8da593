//! Recognising the DDL statements of QUERY events that change a table's shape, and which
//! tables they touch (so the schema cache can drop them and re-read `information_schema`).

/// What a DDL statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlKind {
    /// `ALTER TABLE` (add, drop, modify, rename columns, keys...).
    Alter,
    /// `RENAME TABLE a TO b` (tables listed as from, to, from, to...).
    Rename,
    /// `TRUNCATE [TABLE]`.
    Truncate,
    /// `DROP TABLE`.
    Drop,
    /// `CREATE TABLE`.
    Create,
}

/// A recognised DDL statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdlChange {
    /// What it does.
    pub kind: DdlKind,
    /// The tables it names, as `(database, table)` (the query's default database filled in).
    pub tables: Vec<(String, String)>,
}

/// Parses `query` (run with default database `default_db`); `None` for anything that is not
/// a table DDL statement.
pub fn parse_ddl(query: &str, default_db: &str) -> Option<DdlChange> {
    let q = strip_comments(query);
    let mut t = Tokens { s: q.trim(), i: 0 };
    let first = t.word()?.to_ascii_uppercase();
    let kind = match first.as_str() {
        "ALTER" => {
            let mut w = t.word()?.to_ascii_uppercase();
            if w == "ONLINE" || w == "IGNORE" {
                w = t.word()?.to_ascii_uppercase();
            }
            (w == "TABLE").then_some(DdlKind::Alter)?
        }
        "RENAME" => (t.word()?.eq_ignore_ascii_case("TABLE")).then_some(DdlKind::Rename)?,
        "TRUNCATE" => DdlKind::Truncate,
        "DROP" => {
            let mut w = t.word()?.to_ascii_uppercase();
            if w == "TEMPORARY" {
                return None;
            }
            if w == "TABLE" {
                DdlKind::Drop
            } else {
                w.clear();
                return None;
            }
        }
        "CREATE" => {
            let mut w = t.word()?.to_ascii_uppercase();
            if w == "OR" {
                t.word()?;
                w = t.word()?.to_ascii_uppercase();
            }
            (w == "TABLE").then_some(DdlKind::Create)?
        }
        _ => return None,
    };
    let mut tables = Vec::new();
    let default = |db: Option<String>| db.unwrap_or_else(|| default_db.to_string());
    match kind {
        DdlKind::Truncate => {
            let mut name = t.name()?;
            if name.1.eq_ignore_ascii_case("TABLE") && name.0.is_none() {
                if let Some(n) = t.name() {
                    name = n;
                }
            }
            tables.push((default(name.0), name.1));
        }
        DdlKind::Alter | DdlKind::Create => {
            t.skip_if_exists();
            let (db, name) = t.name()?;
            tables.push((default(db), name));
        }
        DdlKind::Drop => {
            t.skip_if_exists();
            loop {
                let (db, name) = t.name()?;
                tables.push((default(db), name));
                if !t.comma() {
                    break;
                }
            }
        }
        DdlKind::Rename => loop {
            let (db, from) = t.name()?;
            t.word()?; // TO
            let (db2, to) = t.name()?;
            tables.push((default(db), from));
            tables.push((default(db2), to));
            if !t.comma() {
                break;
            }
        },
    }
    Some(DdlChange { kind, tables })
}

fn strip_comments(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    let mut rest = q;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

struct Tokens<'a> {
    s: &'a str,
    i: usize,
}

impl Tokens<'_> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with(|c: char| c.is_whitespace()) {
            self.i += self.s[self.i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    fn word(&mut self) -> Option<&str> {
        self.ws();
        let rest = &self.s[self.i..];
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        self.i += len;
        Some(&rest[..len])
    }
    fn ident(&mut self) -> Option<String> {
        self.ws();
        let rest = &self.s[self.i..];
        if let Some(body) = rest.strip_prefix('`') {
            let mut out = String::new();
            let mut chars = body.char_indices().peekable();
            while let Some((j, c)) = chars.next() {
                if c == '`' {
                    if chars.peek().map(|p| p.1) == Some('`') {
                        chars.next();
                        out.push('`');
                    } else {
                        self.i += 1 + j + 1;
                        return Some(out);
                    }
                } else {
                    out.push(c);
                }
            }
            None
        } else {
            self.word().map(str::to_string)
        }
    }
    fn name(&mut self) -> Option<(Option<String>, String)> {
        let first = self.ident()?;
        if self.s[self.i..].starts_with('.') {
            self.i += 1;
            let second = self.ident()?;
            Some((Some(first), second))
        } else {
            Some((None, first))
        }
    }
    fn comma(&mut self) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(',') {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_if_exists(&mut self) {
        let save = self.i;
        let a = self.word().map(str::to_ascii_uppercase);
        if a.as_deref() == Some("IF") {
            let b = self.word().map(str::to_ascii_uppercase);
            if b.as_deref() == Some("NOT") {
                self.word();
            }
            return;
        }
        self.i = save;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(q: &str) -> Option<(DdlKind, Vec<(String, String)>)> {
        parse_ddl(q, "d").map(|c| (c.kind, c.tables))
    }
    fn n(db: &str, t: &str) -> (String, String) {
        (db.into(), t.into())
    }

    #[test]
    fn recognises_table_ddl() {
        assert_eq!(
            t("ALTER TABLE t ADD COLUMN c INT"),
            Some((DdlKind::Alter, vec![n("d", "t")]))
        );
        assert_eq!(
            t("alter online table `x`.`we``ird` drop c"),
            Some((DdlKind::Alter, vec![n("x", "we`ird")]))
        );
        assert_eq!(
            t("RENAME TABLE a TO b, x.c TO x.d"),
            Some((
                DdlKind::Rename,
                vec![n("d", "a"), n("d", "b"), n("x", "c"), n("x", "d")]
            ))
        );
        assert_eq!(
            t("TRUNCATE TABLE t"),
            Some((DdlKind::Truncate, vec![n("d", "t")]))
        );
        assert_eq!(
            t("truncate t2"),
            Some((DdlKind::Truncate, vec![n("d", "t2")]))
        );
        assert_eq!(
            t("DROP TABLE IF EXISTS `a`, b /* generated by server */"),
            Some((DdlKind::Drop, vec![n("d", "a"), n("d", "b")]))
        );
        assert_eq!(
            t("CREATE TABLE IF NOT EXISTS e.f (id int)"),
            Some((DdlKind::Create, vec![n("e", "f")]))
        );
        assert_eq!(t("DROP TEMPORARY TABLE t"), None);
        assert_eq!(t("BEGIN"), None);
        assert_eq!(t("CREATE DATABASE x"), None);
    }
}
