//! Recognising the DDL statements of QUERY events that change a table's shape, and which
//! tables they touch (so the schema cache can drop them and re-read `information_schema`).

/// What a DDL statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlKind {
    /// `ALTER TABLE` (add, drop, modify, rename columns, keys...).
    Alter,
    /// `RENAME TABLE a TO b` or `ALTER TABLE a ... RENAME [TO|AS] b` (tables listed as
    /// from, to, from, to...).
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
    let kind = statement_kind(&mut t)?;
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
        DdlKind::Alter => {
            t.skip_if_exists();
            let (db, name) = t.name()?;
            let from = (default(db), name);
            // `ALTER TABLE a ..., RENAME [TO|AS] b`: a rename (maybe with other changes).
            if let Some((db2, to)) = t.alter_rename() {
                let to = (db2.unwrap_or_else(|| from.0.clone()), to);
                return Some(DdlChange {
                    kind: DdlKind::Rename,
                    tables: vec![from, to],
                });
            }
            tables.push(from);
        }
        DdlKind::Create => {
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
            t.skip_if_exists();
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

/// The kind of a table DDL statement, from its first words.
fn statement_kind(t: &mut Tokens<'_>) -> Option<DdlKind> {
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
    Some(kind)
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
    /// After `ALTER TABLE name`: the new name of a `RENAME [TO|AS] b` clause at the top
    /// level of the alter list (not `RENAME COLUMN`, `RENAME INDEX` or `RENAME KEY`).
    /// Unqualified names keep the table's database (MySQL's rule for ALTER ... RENAME).
    fn alter_rename(&mut self) -> Option<(Option<String>, String)> {
        let mut depth = 0usize;
        let mut clause_start = true;
        loop {
            self.ws();
            let rest = &self.s[self.i..];
            let c = rest.chars().next()?;
            match c {
                '(' => {
                    depth += 1;
                    self.i += 1;
                }
                ')' => {
                    depth = depth.saturating_sub(1);
                    self.i += 1;
                }
                ',' => {
                    if depth == 0 {
                        clause_start = true;
                    }
                    self.i += 1;
                    continue;
                }
                '\'' | '"' | '`' => {
                    // A quoted string or identifier: skip it whole (doubled quotes and
                    // backslash escapes inside).
                    let mut chars = rest.char_indices().skip(1).peekable();
                    let mut end = rest.len();
                    while let Some((j, x)) = chars.next() {
                        if x == '\\' && c != '`' {
                            chars.next();
                        } else if x == c {
                            if chars.peek().map(|p| p.1) == Some(c) {
                                chars.next();
                            } else {
                                end = j + 1;
                                break;
                            }
                        }
                    }
                    self.i += end;
                }
                _ => {
                    let Some(w) = self.word() else {
                        self.i += c.len_utf8();
                        clause_start = false;
                        continue;
                    };
                    if depth == 0 && clause_start && w.eq_ignore_ascii_case("RENAME") {
                        let save = self.i;
                        let next = self.word().map(str::to_ascii_uppercase);
                        match next.as_deref() {
                            Some("COLUMN" | "INDEX" | "KEY") => {}
                            Some("TO" | "AS") => return self.name(),
                            _ => {
                                self.i = save;
                                return self.name();
                            }
                        }
                    }
                }
            }
            clause_start = false;
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
        assert_eq!(
            t("DROP TABLE `x`.`a`,`b` /* generated by server */"),
            Some((DdlKind::Drop, vec![n("x", "a"), n("d", "b")]))
        );
        assert_eq!(
            t("RENAME TABLE IF EXISTS a TO b"),
            Some((DdlKind::Rename, vec![n("d", "a"), n("d", "b")]))
        );
        assert_eq!(t("BEGIN"), None);
        assert_eq!(
            t("/* a comment */ TRUNCATE `t`"),
            Some((DdlKind::Truncate, vec![n("d", "t")]))
        );
        assert_eq!(t("CREATE DATABASE x"), None);
    }

    #[test]
    fn alter_rename_to_is_a_rename() {
        assert_eq!(
            t("ALTER TABLE a RENAME TO b"),
            Some((DdlKind::Rename, vec![n("d", "a"), n("d", "b")]))
        );
        assert_eq!(
            t("alter table `x`.`a` rename as `y`.`b c`"),
            Some((DdlKind::Rename, vec![n("x", "a"), n("y", "b c")]))
        );
        // An unqualified new name stays in the table's database.
        assert_eq!(
            t("ALTER TABLE x.a RENAME b"),
            Some((DdlKind::Rename, vec![n("x", "a"), n("x", "b")]))
        );
        assert_eq!(
            t("ALTER TABLE a ADD COLUMN c INT DEFAULT 1, RENAME TO b"),
            Some((DdlKind::Rename, vec![n("d", "a"), n("d", "b")]))
        );
        // Renaming columns and keys is an ALTER, as are words inside strings and defaults.
        assert_eq!(
            t("ALTER TABLE a RENAME COLUMN c TO e"),
            Some((DdlKind::Alter, vec![n("d", "a")]))
        );
        assert_eq!(
            t("ALTER TABLE a RENAME INDEX i TO j, RENAME KEY k TO l"),
            Some((DdlKind::Alter, vec![n("d", "a")]))
        );
        assert_eq!(
            t("ALTER TABLE a ADD COLUMN `rename` INT COMMENT ', rename to b', ADD CHECK (rename > 0)"),
            Some((DdlKind::Alter, vec![n("d", "a")]))
        );
        assert_eq!(
            t("ALTER TABLE a MODIFY v ENUM('x','y'), ALGORITHM=INPLACE"),
            Some((DdlKind::Alter, vec![n("d", "a")]))
        );
    }
}
