//! Name patterns for choosing tables and indices: `*` matches any run of characters, `?`
//! exactly one, everything else itself.

/// Whether `text` matches `pattern` as a whole (`order_*` matches `order_items`, not
/// `orders`; `t?` matches `t1`, not `t12`). Linear in practice: backtracks only to the last `*`.
///
/// ```
/// use datatrace_core::pattern::glob_match;
/// assert!(glob_match("shop_*", "shop_orders"));
/// assert!(!glob_match("shop_?", "shop_orders"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match as glob;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("*", ""));
        assert!(glob("order_*", "order_items"));
        assert!(!glob("order_*", "orders"));
        assert!(glob("t?", "t1"));
        assert!(!glob("t?", "t12"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("users", "users"));
        assert!(!glob("users", "users2"));
        assert!(glob("ü*", "über"));
    }
}
