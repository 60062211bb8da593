//! Removing secrets from text that may quote them (errors from servers, log lines).
//!
//! Two passes:
//! - by shape: the password of a URL's user info (`mysql://u:PASS@h`), the value of a
//!   secret-looking parameter (`password=...`, `api_key: ...`, `?token=...`), an
//!   `Authorization:` header's credentials and the hash of `IDENTIFIED BY PASSWORD '...'`;
//! - by value: every known secret of at least [`MIN_LITERAL`] characters, wherever it
//!   appears. Shorter secrets are not searched for by value: replacing a short common word
//!   ("data", "admin") everywhere would mangle ordinary text and, by the holes it leaves,
//!   reveal the secret; such secrets are removed by shape only.

/// The shortest secret removed wherever its text appears.
pub const MIN_LITERAL: usize = 8;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Parameter names whose values are secrets (compared without case, `-` and `_`).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "apikey",
    "token",
    "accesstoken",
    "authtoken",
    "clientsecret",
];

/// `text` without the secrets in it; `secrets` are the known values (any order).
pub fn scrub(secrets: &[String], text: &str) -> String {
    let mut out = scrub_shapes(text);
    let mut long: Vec<&String> = secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_LITERAL)
        .collect();
    // Longest first, so a secret containing another is replaced whole.
    long.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in long {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Whether a parameter name names a secret.
pub fn is_secret_param(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_PARAMS.contains(&n.as_str()) || n.ends_with("password") || n.ends_with("secret")
}

/// The secrets found by their shape, masked.
pub fn scrub_shapes(text: &str) -> String {
    let text = mask_userinfo(text);
    let text = mask_identified_by(&text);
    let text = mask_authorization(&text);
    mask_params(&text)
}

/// `scheme://user:password@host` -> `scheme://user:***@host`.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '>' | ')'))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `IDENTIFIED BY PASSWORD '*ABC...'`, `IDENTIFIED BY 'x'`, `IDENTIFIED VIA p USING 'x'`,
/// `IDENTIFIED WITH p AS 'x'`: the quoted value becomes `'***'`.
fn mask_identified_by(text: &str) -> String {
    let upper = text.to_ascii_uppercase();
    if !upper.contains("IDENTIFIED") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(found) = upper[pos..].find("IDENTIFIED") {
        let start = pos + found;
        // Mask every quoted string up to the end of this clause (the next keyword of a
        // GRANT: WITH GRANT OPTION, REQUIRE, or the end of the text).
        let clause_end = ["WITH GRANT", "REQUIRE ", " OR ", ";"]
            .iter()
            .filter_map(|k| upper[start..].find(k).map(|i| start + i))
            .min()
            .unwrap_or(text.len());
        out.push_str(&text[pos..start]);
        out.push_str(&mask_quoted(&text[start..clause_end]));
        pos = clause_end;
    }
    out.push_str(&text[pos..]);
    out
}

fn mask_quoted(clause: &str) -> String {
    let mut out = String::with_capacity(clause.len());
    let mut chars = clause.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '\'' || c == '"' {
            out.push(c);
            out.push_str(MASK);
            for (_, d) in chars.by_ref() {
                if d == c {
                    break;
                }
            }
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `Authorization: Basic abc` / `Bearer abc` -> `Authorization: Basic ***`.
fn mask_authorization(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let Some(i) = lower.find("authorization:") else {
        return text.to_owned();
    };
    let start = i + "authorization:".len();
    let rest = &text[start..];
    let trimmed = rest.trim_start();
    let lead = rest.len() - trimmed.len();
    let scheme_end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
    let after = &trimmed[scheme_end..];
    let value_end = after
        .trim_start()
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | ',' | '}'))
        .map(|j| j + (after.len() - after.trim_start().len()))
        .unwrap_or(after.len());
    format!(
        "{}{}{} {}{}",
        &text[..start],
        &rest[..lead],
        &trimmed[..scheme_end],
        MASK,
        mask_authorization(&after[value_end..])
    )
}

/// `password=x`, `password: x`, `"password": "x"`, `?api_key=x&` -> the value masked.
fn mask_params(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphabetic()
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
        {
            i += 1;
            continue;
        }
        let word_end = text[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(text.len(), |j| i + j);
        let word = &text[i..word_end];
        if !is_secret_param(word) {
            i = word_end.max(i + 1);
            continue;
        }
        // `word` then optional quote, then `=` or `:`, then the value.
        let mut j = word_end;
        if j < bytes.len() && matches!(bytes[j], b'"' | b'\'') {
            j += 1;
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || !matches!(bytes[j], b'=' | b':') {
            i = word_end;
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let quote = (j < bytes.len() && matches!(bytes[j], b'"' | b'\'')).then(|| bytes[j]);
        if quote.is_some() {
            j += 1;
        }
        let value_end = match quote {
            Some(q) => text[j..].find(q as char).map_or(text.len(), |k| j + k),
            None => text[j..]
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | ';' | '}' | ')'))
                .map_or(text.len(), |k| j + k),
        };
        let value = &text[j..value_end];
        // "(using password: YES)" in MySQL's errors says whether one was sent.
        if value_end > j && !(quote.is_none() && matches!(value, "YES" | "NO")) {
            out.push_str(&text[copied..j]);
            out.push_str(MASK);
            copied = value_end;
        }
        i = value_end.max(word_end);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn short_common_words_are_not_searched_for() {
        // The password "data": ordinary text stays readable and does not show where it is.
        let out = scrub(
            &s(&["data"]),
            "copying data from shop.items: 5 rows of data",
        );
        assert_eq!(out, "copying data from shop.items: 5 rows of data");
        // ... but its shapes are still removed.
        let out = scrub(&s(&["data"]), "cannot connect to mysql://u:data@h:3306/db");
        assert_eq!(out, "cannot connect to mysql://u:***@h:3306/db");
        let out = scrub(&s(&["data"]), "bad url ?user=u&password=data&x=1");
        assert_eq!(out, "bad url ?user=u&password=***&x=1");
    }

    #[test]
    fn long_secrets_go_wherever_they_are() {
        let out = scrub(&s(&["Pw-9f3Kq!zz"]), "server said: no Pw-9f3Kq!zzz here");
        assert_eq!(out, "server said: no ***z here");
        let out = scrub(&s(&["abcdefgh", "abcdefgh-longer"]), "x abcdefgh-longer y");
        assert_eq!(out, "x *** y");
    }

    #[test]
    fn shapes() {
        assert_eq!(
            scrub_shapes("GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'"),
            "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '***'"
        );
        assert_eq!(
            scrub_shapes("GRANT USAGE ON *.* TO 'u'@'%' IDENTIFIED VIA ed25519 USING 'abc' OR unix_socket WITH GRANT OPTION"),
            "GRANT USAGE ON *.* TO 'u'@'%' IDENTIFIED VIA ed25519 USING '***' OR unix_socket WITH GRANT OPTION"
        );
        assert_eq!(
            scrub_shapes(r#"{"user":"u","password":"hunter2","x":1}"#),
            r#"{"user":"u","password":"***","x":1}"#
        );
        assert_eq!(
            scrub_shapes("request had Authorization: Basic dXNlcjpwYXNz and more"),
            "request had Authorization: Basic *** and more"
        );
        assert_eq!(
            scrub_shapes("api_key=abc&api-key: def"),
            "api_key=***&api-key: ***"
        );
        assert_eq!(scrub_shapes("the passwords table"), "the passwords table");
        assert_eq!(scrub_shapes("password reset"), "password reset");
        assert_eq!(
            scrub_shapes("Access denied for user 'u'@'h' (using password: YES)"),
            "Access denied for user 'u'@'h' (using password: YES)"
        );
        assert_eq!(scrub_shapes("ssl-key=/etc/k.pem"), "ssl-key=/etc/k.pem");
        assert_eq!(scrub_shapes("http://host:9200/x"), "http://host:9200/x");
        assert_eq!(scrub_shapes("http://u@host:9200/x"), "http://u@host:9200/x");
    }
}
