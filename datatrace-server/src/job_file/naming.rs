//! Target name patterns of job files: `{table}` (the source table or index) and `{db}` (the
//! source database, empty for indices), e.g. `table = "copy_{table}"`: the core's
//! [`NamePattern`], parsed by its one template engine.

pub use datatrace_core::template::NamePattern;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses() {
        let p = NamePattern::parse("{db}_{table}_copy").unwrap();
        assert_eq!(p.render("orders", Some("shop")), "shop_orders_copy");
        assert!(NamePattern::parse("{table}").unwrap().is_identity());
        assert!(!NamePattern::parse("{table}_x").unwrap().is_identity());
        assert_eq!(
            NamePattern::parse("{tabel}").unwrap_err(),
            "unknown placeholder {tabel} in \"{tabel}\": expected {table} or {db}"
        );
        assert!(NamePattern::parse("{table").is_err());
        assert!(NamePattern::parse("a}").is_err());
        assert!(NamePattern::parse("").is_err());
    }
}
