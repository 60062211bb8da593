//! Unique, valid names for databases, tables and indices.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Returns a name that is unique per process and call, built from `prefix`, and valid both as a
/// MariaDB database / table name and as an Elasticsearch / OpenSearch index name.
///
/// The prefix is lowercased, every character other than `a-z`, `0-9` and `_` becomes `_`, and it
/// is cut to 40 characters; the process id and a counter follow, so tests in one binary (which
/// share the servers and run in parallel) never collide.
///
/// ```
/// let a = datatrace_testkit::unique_name("Orders-2024");
/// let b = datatrace_testkit::unique_name("Orders-2024");
/// assert!(a.starts_with("orders_2024_"));
/// assert_ne!(a, b);
/// ```
pub fn unique_name(prefix: &str) -> String {
    let mut base: String = prefix
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        // Index names may not start with `_`, `-` or `+`; an empty prefix needs a letter too.
        base.insert(0, 't');
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{base}_{}_{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn sanitises_and_numbers() {
        let a = unique_name("My Table!");
        assert!(a.starts_with("my_table__"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        assert_ne!(a, unique_name("My Table!"));
    }

    #[test]
    fn never_starts_with_underscore_and_stays_short() {
        assert!(unique_name("").starts_with('t'));
        assert!(unique_name("_x").starts_with("t_x"));
        assert!(unique_name(&"x".repeat(200)).len() <= 64);
    }
}
