//! Filter: operators, numbers, nulls, literals, errors, configs.

use super::*;

fn orders() -> Arc<Schema> {
    table(
        Some("shop"),
        "orders",
        &[
            ("status", DataType::String),
            (
                "total",
                DataType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            ("qty", DataType::UInt),
            ("day", DataType::Date),
            ("ratio", DataType::Float),
        ],
        &[],
    )
}

fn order(status: Value, total: Value, qty: Value, day: &str, ratio: Value) -> Record {
    let day = if day.is_empty() {
        Value::Null
    } else {
        Value::Date(day.parse().unwrap())
    };
    Record::read(orders(), vec![status, total, qty, day, ratio])
}

fn keeps(c: Cond, r: Record) -> bool {
    Filter::new(c).apply(r).unwrap().is_some()
}

#[test]
fn filter_operators_and_numbers() {
    let r = || {
        order(
            "paid".into(),
            dec("100.50"),
            Value::UInt(3),
            "2024-03-01",
            Value::Float(0.5),
        )
    };
    let f = Cond::field;
    assert!(keeps(f("status").eq("paid"), r()));
    assert!(!keeps(f("status").ne("paid"), r()));
    assert!(keeps(f("status").lt("z"), r()));
    assert!(keeps(f("total").gt(100), r()));
    assert!(keeps(f("total").ge(dec("100.5")), r()));
    assert!(keeps(f("total").le(100.5), r()));
    assert!(!keeps(f("total").lt(100.5), r()));
    assert!(
        keeps(f("total").eq("100.5"), r()),
        "text literal read as decimal"
    );
    assert!(keeps(f("qty").eq(3i64), r()));
    assert!(keeps(f("qty").gt(2.5), r()));
    assert!(keeps(f("ratio").eq(dec("0.50")), r()));
    assert!(keeps(f("ratio").lt(1), r()));
    assert!(keeps(f("status").is_in(["open", "paid"]), r()));
    assert!(!keeps(f("qty").is_in([1, 2]), r()));
    assert!(
        keeps(f("day").ge("2024-03-01"), r()),
        "text literal read as date"
    );
    assert!(keeps(
        f("day").lt(Value::DateTime("2024-03-01T00:00:01".parse().unwrap())),
        r()
    ));
    assert!(keeps(f("status").not_null(), r()));
    assert!(!keeps(f("status").is_null(), r()));
    // u64 beyond i64 and big decimals compare exactly.
    let big = order(
        Value::Null,
        dec("9223372036854775808.01"),
        Value::UInt(u64::MAX),
        "",
        Value::Null,
    );
    assert!(keeps(f("qty").gt(i64::MAX), big.clone()));
    assert!(keeps(
        f("total").gt(Value::UInt(9_223_372_036_854_775_808)),
        big.clone()
    ));
    assert!(!keeps(f("total").gt(dec("9223372036854775808.1")), big));
}

#[test]
fn filter_nulls_are_sql_like_and_logic_combines() {
    let nulls = || {
        order(
            Value::Null,
            Value::Null,
            Value::Null,
            "",
            Value::Float(f64::NAN),
        )
    };
    let f = Cond::field;
    assert!(!keeps(f("status").eq("paid"), nulls()));
    assert!(!keeps(f("status").ne("paid"), nulls()));
    assert!(!keeps(!f("status").eq("paid"), nulls()));
    assert!(!keeps(f("total").is_in([1, 2]), nulls()));
    assert!(!keeps(!f("total").is_in([1, 2]), nulls()));
    assert!(keeps(f("day").is_null(), nulls()));
    assert!(!keeps(f("ratio").gt(0), nulls()), "NaN matches nothing");
    // Unknown OR true is true; unknown AND false is false; NOT(unknown AND true) is unknown.
    assert!(keeps(f("status").eq("x").or(f("day").is_null()), nulls()));
    assert!(!keeps(
        !f("status").eq("x").and(f("day").is_null()),
        nulls()
    ));
    assert!(keeps(
        !f("status").eq("x").and(f("day").not_null()),
        nulls()
    ));
    assert!(keeps(Cond::all([]), nulls()));
    assert!(!keeps(Cond::any([]), nulls()));
}

#[test]
fn filter_errors_name_field_and_values() {
    let r = || {
        order(
            "abc".into(),
            dec("1"),
            Value::UInt(1),
            "2024-01-01",
            Value::Float(1.0),
        )
    };
    let e = err(&Filter::new(Cond::field("status").lt(5)), r());
    assert_eq!(
        e,
        r#"filter: cannot compare field "status" in shop.orders ("abc") < int 5"#
    );
    let e = err(
        &Filter::new(Cond::field("qty").is_in([date("2024-01-01")])),
        r(),
    );
    assert!(
        e.contains(r#"field "qty""#) && e.contains("date 2024-01-01"),
        "{e}"
    );
    let e = err(&Filter::new(Cond::field("missing").eq(1)), r());
    assert!(
        e.starts_with(r#"filter: unknown field "missing" in shop.orders"#),
        "{e}"
    );
    let f = Filter::new(Cond::field("day").gt("yesterday"));
    let e = f.check(&orders()).unwrap_err();
    assert_eq!(
        e,
        r#"filter on field "day" in shop.orders (a date column): "yesterday" is not a date"#
    );
    assert_eq!(err(&f, r()), e);
}

#[test]
fn filter_literals_follow_column_types() {
    let s = table(
        None,
        "flags",
        &[
            ("vip", DataType::Int),
            ("on", DataType::Bool),
            ("at", DataType::Timestamp),
            ("t", DataType::Time),
        ],
        &[],
    );
    let r = Record::read(
        s,
        vec![
            Value::Int(1),
            Value::Bool(false),
            ts("2024-01-01T12:00:00Z"),
            Value::Time("10:00:00".parse().unwrap()),
        ],
    );
    let f = Cond::field;
    assert!(
        keeps(f("vip").eq(true), r.clone()),
        "tinyint(1) style flags"
    );
    assert!(keeps(f("on").eq(0), r.clone()));
    assert!(keeps(f("at").gt("2024-01-01"), r.clone()));
    assert!(keeps(!f("at").lt("2024-01-01T13:00:00+01:00"), r.clone()));
    assert!(keeps(f("t").lt("10:00:01"), r.clone()));
    let e = err(&Filter::new(f("on").eq(5)), r);
    assert_eq!(
        e,
        r#"filter: cannot compare field "on" in flags (bool false) = int 5"#
    );
}

#[test]
fn filter_conditions_from_json() {
    let c: Cond = serde_json::from_value(serde_json::json!({"all": [
        {"field": "status", "op": "in", "value": ["paid", "shipped"]},
        {"any": [{"field": "total", "op": ">", "value": 100}, {"field": "qty", "op": ">=", "value": 10}]},
        {"not": {"field": "day", "op": "is_null"}}
    ]}))
    .unwrap();
    let r = |s: &str, t: &str, q: u64| {
        order(s.into(), dec(t), Value::UInt(q), "2024-01-01", Value::Null)
    };
    assert!(keeps(c.clone(), r("paid", "150", 1)));
    assert!(keeps(c.clone(), r("shipped", "5", 10)));
    assert!(!keeps(c.clone(), r("open", "150", 10)));
    assert!(!keeps(c, r("paid", "5", 1)));

    for (bad, msg) in [
        (
            serde_json::json!({"field": "a", "op": "~", "value": 1}),
            "unknown op \"~\"",
        ),
        (
            serde_json::json!({"field": "a", "op": "="}),
            "needs a non-null `value`",
        ),
        (
            serde_json::json!({"field": "a", "op": "in", "value": 1}),
            "`in` needs a list",
        ),
        (
            serde_json::json!({"field": "a", "op": "is_null", "value": 1}),
            "takes no `value`",
        ),
        (serde_json::json!({"field": "a"}), "missing `op`"),
        (
            serde_json::json!({"all": [], "field": "a"}),
            "exactly one of",
        ),
        (serde_json::json!({"where": []}), "unknown field `where`"),
    ] {
        let e = serde_json::from_value::<Cond>(bad).unwrap_err().to_string();
        assert!(e.contains(msg), "{e}");
    }
}
