//! The built-in transforms: each one, its errors, the cast matrix, comparisons, configs.

use std::sync::Arc;

use datatrace_core::testing::{CollectingSink, MemorySource};
use datatrace_core::transforms::*;
use datatrace_core::{
    Column, DataType, Decimal, ErrorPolicy, Op, Pipeline, PipelineConfig, Record, Schema,
    Transform, Value,
};

fn table(ns: Option<&str>, name: &str, cols: &[(&str, DataType)], pk: &[&str]) -> Arc<Schema> {
    let columns = cols.iter().map(|(n, t)| Column::new(*n, *t)).collect();
    let mut s = Schema::new(name, columns).with_primary_key(pk).unwrap();
    if let Some(ns) = ns {
        s = s.with_namespace(ns);
    }
    Arc::new(s)
}

fn ok(t: &dyn Transform, r: Record) -> Record {
    t.apply(r).unwrap().expect("record kept")
}

fn err(t: &dyn Transform, r: Record) -> String {
    t.apply(r).unwrap_err().message
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn users() -> Arc<Schema> {
    table(
        Some("shop"),
        "users",
        &[
            ("id", DataType::Int),
            ("mail", DataType::String),
            ("name", DataType::String),
        ],
        &["id"],
    )
}

fn user(id: i64, mail: &str, name: &str) -> Record {
    Record::read(
        users(),
        vec![Value::Int(id), Value::from(mail), Value::from(name)],
    )
}

// ---------------------------------------------------------------- rename

#[test]
fn rename_swaps_schema_keeps_keys_and_derives_once() {
    let s = Arc::new(Schema::clone(&users()).with_unique_key(&["mail"]).unwrap());
    let r = Rename::new([("id", "user_id"), ("mail", "email")]);
    let a = ok(
        &r,
        Record::read(s.clone(), vec![1.into(), "a@x".into(), "A".into()]),
    );
    let b = ok(
        &r,
        Record::read(s.clone(), vec![2.into(), "b@x".into(), "B".into()]),
    );
    assert!(Arc::ptr_eq(&a.schema, &b.schema), "schema derived once");
    assert_eq!(a.schema.qualified_name(), "shop.users");
    assert_eq!(a.schema.primary_key_names(), ["user_id"]);
    assert_eq!(a.schema.unique_keys(), &[vec![1]]);
    assert_eq!(a.get("email"), Some(&Value::from("a@x")));
    assert!(a.get("mail").is_none());
    assert_eq!(a.key_string("|"), "1");
}

#[test]
fn rename_swaps_names_and_reports_errors() {
    let swapped = ok(
        &Rename::new([("mail", "name"), ("name", "mail")]),
        user(1, "m", "n"),
    );
    assert_eq!(swapped.get("name"), Some(&Value::from("m")));
    assert_eq!(swapped.get("mail"), Some(&Value::from("n")));

    let e = err(&Rename::new([("nope", "x")]), user(1, "m", "n"));
    assert_eq!(
        e,
        r#"rename: unknown field "nope" in shop.users (fields: id, mail, name)"#
    );
    let e = err(&Rename::new([("mail", "name")]), user(1, "m", "n"));
    assert_eq!(e, r#"rename: shop.users already has a field "name""#);
    let e = err(
        &Rename::new([("mail", "x"), ("name", "x")]),
        user(1, "m", "n"),
    );
    assert!(
        e.contains(r#"two fields of shop.users renamed to "x""#),
        "{e}"
    );

    let lenient = Rename::new([("nope", "x"), ("mail", "email")]).ignore_missing(true);
    assert!(ok(&lenient, user(1, "m", "n")).get("email").is_some());
    assert!(Rename::new([("nope", "x")]).check(&users()).is_err());
}

// ---------------------------------------------------------------- keep / drop

#[test]
fn keep_and_drop_move_values_and_follow_keys() {
    let mut r = user(1, "m", "n");
    r.op = Op::Update;
    r.before = Some(vec![1.into(), "old".into(), "n".into()]);
    let kept = ok(&KeepFields::new(["name", "id"]), r.clone());
    assert_eq!(kept.values, [Value::Int(1), Value::from("n")]);
    assert_eq!(kept.before, Some(vec![Value::Int(1), Value::from("n")]));
    assert_eq!(kept.schema.primary_key_names(), ["id"]);

    let dropped = ok(&DropFields::new(["mail"]), r.clone());
    assert_eq!(dropped.values, [Value::Int(1), Value::from("n")]);
    assert_eq!(dropped.before.as_ref().unwrap().len(), 2);

    // Dropping (or not keeping) the key column removes the primary key.
    let keyless = ok(&DropFields::new(["id"]), r.clone());
    assert!(keyless.schema.primary_key().is_empty());
    assert!(!keyless.has_key());
    let keyless = ok(&KeepFields::new(["mail"]), r);
    assert!(keyless.schema.primary_key().is_empty());
}

#[test]
fn keep_and_drop_name_unknown_fields() {
    let e = err(&DropFields::new(["password"]), user(1, "m", "n"));
    assert_eq!(
        e,
        r#"drop: unknown field "password" in shop.users (fields: id, mail, name)"#
    );
    let e = err(&KeepFields::new(["id", "age"]), user(1, "m", "n"));
    assert!(
        e.starts_with(r#"keep: unknown field "age" in shop.users"#),
        "{e}"
    );
    let out = ok(
        &DropFields::new(["password", "mail"]).ignore_missing(true),
        user(1, "m", "n"),
    );
    assert_eq!(out.values.len(), 2);
    assert!(KeepFields::new(["age"]).check(&users()).is_err());
    assert!(KeepFields::new(["id"]).check(&users()).is_ok());
}

// ---------------------------------------------------------------- set

#[test]
fn set_constant_appends_or_overwrites_in_place() {
    let out = ok(&SetField::constant("origin", "crm"), user(1, "m", "n"));
    assert_eq!(out.schema.columns()[3].name, "origin");
    assert_eq!(out.values[3], Value::from("crm"));

    // Overwriting keeps the position and changes the type.
    let s = Arc::new(Schema::new(
        "t",
        vec![
            Column::new("a", DataType::Int).native("int(11)"),
            Column::new("b", DataType::Int),
        ],
    ));
    let out = ok(
        &SetField::constant("a", "x"),
        Record::read(s.clone(), vec![1.into(), 2.into()]),
    );
    assert_eq!(out.values, [Value::from("x"), Value::Int(2)]);
    assert_eq!(out.schema.columns()[0].data_type, DataType::String);
    assert_eq!(out.schema.columns()[0].native_type, None);
    // Same type: the column keeps its native type.
    let out = ok(
        &SetField::constant("a", 9),
        Record::read(s, vec![1.into(), 2.into()]),
    );
    assert_eq!(
        out.schema.columns()[0].native_type.as_deref(),
        Some("int(11)")
    );
}

#[test]
fn set_literal_is_read_as_the_column_type() {
    let s = table(
        None,
        "t",
        &[
            ("d", DataType::Date),
            (
                "p",
                DataType::Decimal {
                    precision: 6,
                    scale: 2,
                },
            ),
        ],
        &[],
    );
    let row = || Record::read(s.clone(), vec![Value::Null, Value::Null]);
    let out = ok(
        &SetField::literal("d", serde_json::json!("2024-01-31")),
        row(),
    );
    assert_eq!(out.values[0], Value::Date("2024-01-31".parse().unwrap()));
    let out = ok(&SetField::literal("p", serde_json::json!("19.9")), row());
    assert_eq!(out.values[1], dec("19.90"));
    let out = ok(&SetField::literal("n", serde_json::json!(5)), row());
    assert_eq!(out.values[2], Value::Int(5));
    assert_eq!(out.schema.columns()[2].data_type, DataType::Int);

    let e = err(&SetField::literal("d", serde_json::json!("soon")), row());
    assert_eq!(e, r#"set of field "d" in t: "soon" is not a date"#);
    let e = err(&SetField::literal("p", serde_json::json!("12345.6")), row());
    assert_eq!(
        e,
        r#"set of field "p" in t: "12345.6" does not fit decimal(6,2)"#
    );
    let out = ok(
        &SetField::literal("d", serde_json::json!("soon")).as_type(DataType::String),
        row(),
    );
    assert_eq!(out.schema.columns()[0].data_type, DataType::String);
}

#[test]
fn set_template_and_computed() {
    let t = SetField::template("label", "{name} <{mail}> #{id} {{x}}").unwrap();
    let out = ok(&t, user(7, "a@x", "Ann"));
    assert_eq!(out.get("label"), Some(&Value::from("Ann <a@x> #7 {x}")));
    let mut r = user(7, "a@x", "Ann");
    r.values[2] = Value::Null;
    assert_eq!(ok(&t, r).get("label"), Some(&Value::from(" <a@x> #7 {x}")));

    let e = err(
        &SetField::template("x", "{nope}").unwrap(),
        user(1, "m", "n"),
    );
    assert!(
        e.starts_with(r#"set: unknown field "nope" in shop.users"#),
        "{e}"
    );
    assert!(SetField::template("x", "{unclosed").is_err());

    let typed = SetField::template("when", "{name}-01-01")
        .unwrap()
        .as_type(DataType::Date);
    let out = ok(&typed, user(1, "m", "2024"));
    assert_eq!(
        out.get("when"),
        Some(&Value::Date("2024-01-01".parse().unwrap()))
    );
    let e = err(&typed, user(1, "m", "someday"));
    assert_eq!(
        e,
        r#"set of field "when" in shop.users: "someday-01-01" is not a date"#
    );

    // Computed from the record; the before-image gets its own value.
    let len = SetField::computed("mail_len", DataType::Int, |r: &Record| {
        Value::Int(r.get("mail").and_then(Value::as_str).map_or(0, str::len) as i64)
    });
    let mut r = user(1, "abc", "n");
    r.op = Op::Update;
    r.before = Some(vec![1.into(), "a".into(), "n".into()]);
    let out = ok(&len, r);
    assert_eq!(out.values[3], Value::Int(3));
    assert_eq!(out.before.unwrap()[3], Value::Int(1));
}

// ---------------------------------------------------------------- cast

fn s(t: &str) -> Value {
    Value::from(t)
}
fn date(t: &str) -> Value {
    Value::Date(t.parse().unwrap())
}
fn dt(t: &str) -> Value {
    Value::DateTime(t.parse().unwrap())
}
fn ts(t: &str) -> Value {
    Value::Timestamp(t.parse().unwrap())
}
fn json(j: serde_json::Value) -> Value {
    Value::Json(j)
}

#[test]
fn cast_matrix() {
    use serde_json::json as j;
    let bytes = |b: &[u8]| Value::Bytes(b.to_vec().into());
    // (input, target type, Ok(output) or Err(message); Err("") = any error)
    #[rustfmt::skip]
    let cases: Vec<(Value, &str, Result<Value, &str>)> = vec![
        (s("42"), "int", Ok(Value::Int(42))),
        (s("-7"), "int", Ok(Value::Int(-7))),
        (s(" 7"), "int", Err(r#"" 7" is not an int"#)),
        (Value::Float(2.0), "int", Ok(Value::Int(2))),
        (Value::Float(1.5), "int", Err("float 1.5 is not an exact int")),
        (Value::UInt(u64::MAX), "int", Err("uint 18446744073709551615 is out of range for int")),
        (dec("2.00"), "int", Ok(Value::Int(2))),
        (dec("1.50"), "int", Err("decimal 1.50 is not an exact int")),
        (Value::Int(-1), "uint", Err("int -1 is out of range for uint")),
        (Value::Int(5), "uint", Ok(Value::UInt(5))),
        (Value::Bool(true), "int", Ok(Value::Int(1))),
        (s("TRUE"), "bool", Ok(Value::Bool(true))),
        (Value::Int(0), "bool", Ok(Value::Bool(false))),
        (Value::Int(2), "bool", Err("int 2 is not a bool")),
        (Value::Int(3), "float", Ok(Value::Float(3.0))),
        (Value::Int(i64::MAX), "float", Err("int 9223372036854775807 is not an exact float")),
        (dec("0.25"), "float", Ok(Value::Float(0.25))),
        (s("1e3"), "float", Ok(Value::Float(1000.0))),
        (s("inf"), "float", Err(r#""inf" is not a float"#)),
        (Value::Float(0.1), "decimal", Ok(dec("0.1"))),
        (Value::Int(5), "decimal(5,2)", Ok(dec("5.00"))),
        (dec("-1.5"), "decimal(5,2)", Ok(dec("-1.50"))),
        (dec("1.555"), "decimal(5,2)", Err("decimal 1.555 does not fit decimal(5,2)")),
        (s("1000"), "decimal(5,2)", Err(r#""1000" does not fit decimal(5,2)"#)),
        (s("abc"), "decimal", Err(r#""abc" is not a decimal"#)),
        (Value::Int(5), "string", Ok(s("5"))),
        (dec("1.50"), "string", Ok(s("1.50"))),
        (date("2024-01-02"), "string", Ok(s("2024-01-02"))),
        (bytes("hé".as_bytes()), "string", Ok(s("hé"))),
        (bytes(&[0xff]), "string", Err("bytes 0xff is not UTF-8 text")),
        (s("hi"), "bytes", Ok(bytes(b"hi"))),
        (Value::Int(1), "bytes", Err("cannot cast int 1 to bytes")),
        (s("2024-02-29"), "date", Ok(date("2024-02-29"))),
        (s("2023-02-29"), "date", Err(r#""2023-02-29" is not a date"#)),
        (dt("2024-01-02T00:00:00"), "date", Ok(date("2024-01-02"))),
        (dt("2024-01-02T10:00:00"), "date", Err("datetime 2024-01-02T10:00:00 is not an exact date")),
        (ts("2024-01-02T00:00:00Z"), "date", Ok(date("2024-01-02"))),
        (s("-01:30:00"), "time", Ok(Value::Time("-01:30:00".parse().unwrap()))),
        (ts("2024-01-02T03:04:05.5Z"), "datetime", Ok(dt("2024-01-02T03:04:05.5"))),
        (s("2024-01-02"), "datetime", Ok(dt("2024-01-02T00:00:00"))),
        (dt("2024-01-02T03:04:05"), "timestamp", Ok(ts("2024-01-02T03:04:05Z"))),
        (s("2024-01-02T04:04:05+01:00"), "timestamp", Ok(ts("2024-01-02T03:04:05Z"))),
        (s("2024-01-02 03:04:05"), "timestamp", Ok(ts("2024-01-02T03:04:05Z"))),
        (date("2024-01-02"), "int", Err("cannot cast date 2024-01-02 to int")),
        (s(r#"{"a":[1,2]}"#), "json", Ok(json(j!({"a": [1, 2]})))),
        (s("{oops"), "json", Err("")),
        (json(j!({"a": 1})), "string", Ok(s(r#"{"a":1}"#))),
        (json(j!("x")), "string", Ok(s(r#""x""#))),
        (json(j!(7)), "int", Ok(Value::Int(7))),
        (json(j!([7])), "int", Err("cannot cast json [7] to int")),
        (json(j!("2024-01-02")), "date", Ok(date("2024-01-02"))),
        (dec("1.5"), "json", Ok(json(j!(1.5)))),
        (dec("12345678901234567890.1"), "json", Ok(json(j!("12345678901234567890.1")))),
        (date("2024-01-02"), "json", Ok(json(j!("2024-01-02")))),
        (Value::Null, "int", Ok(Value::Null)),
        (json(serde_json::Value::Null), "date", Ok(Value::Null)),
    ];
    for (input, to, want) in cases {
        let to = parse_data_type(to).unwrap();
        let got = cast_value(&input, to);
        match want {
            Ok(v) => assert_eq!(got, Ok(v), "{input:?} -> {to}"),
            Err("") => assert!(got.is_err(), "{input:?} -> {to}: {got:?}"),
            Err(msg) => assert_eq!(got.unwrap_err().to_string(), msg, "{input:?} -> {to}"),
        }
    }
}

fn products() -> Arc<Schema> {
    Arc::new(
        Schema::new(
            "products",
            vec![
                Column::new("id", DataType::String).native("varchar(10)"),
                Column::new("price", DataType::String),
            ],
        )
        .with_namespace("shop"),
    )
}

#[test]
fn cast_transform_converts_and_names_field_table_value() {
    let cast = Cast::parse([("id", "uint"), ("price", "decimal(10,2)")]).unwrap();
    let out = ok(
        &cast,
        Record::read(products(), vec!["7".into(), "9.5".into()]),
    );
    assert_eq!(out.values, [Value::UInt(7), dec("9.50")]);
    assert_eq!(out.schema.columns()[0].data_type, DataType::UInt);
    assert_eq!(out.schema.columns()[0].native_type, None);

    // A failure rejects the record as it came in, not half-cast.
    let rejected = cast
        .apply(Record::read(products(), vec!["7".into(), "abc".into()]))
        .unwrap_err();
    assert_eq!(
        rejected.message,
        r#"cast of field "price" in shop.products: "abc" is not a decimal"#
    );
    assert_eq!(
        rejected.record.values,
        [Value::from("7"), Value::from("abc")]
    );
    assert!(
        Arc::ptr_eq(&rejected.record.schema, &products()) || *rejected.record.schema == *products()
    );

    let mut upd = Record::new(Op::Update, products(), vec!["7".into(), "1".into()]);
    upd.before = Some(vec!["7".into(), "n/a".into()]);
    let e = cast.apply(upd).unwrap_err();
    assert_eq!(
        e.message,
        r#"cast of field "price" (before-image) in shop.products: "n/a" is not a decimal"#
    );
    assert_eq!(e.record.values, [Value::from("7"), Value::from("1")]);

    let e = err(
        &Cast::new([("cost", DataType::Float)]),
        Record::read(products(), vec![]),
    );
    assert_eq!(
        e,
        r#"cast: unknown field "cost" in shop.products (fields: id, price)"#
    );
    assert!(Cast::parse([("a", "decimal(x)")])
        .unwrap_err()
        .contains("unknown type"));
    assert!(Cast::parse([("a", "money")])
        .unwrap_err()
        .contains(r#"unknown type "money""#));
    assert_eq!(
        parse_data_type("Decimal(12, 3)"),
        Ok(DataType::Decimal {
            precision: 12,
            scale: 3
        })
    );
}

// ---------------------------------------------------------------- mask

#[test]
fn mask_methods() {
    let s = table(
        None,
        "t",
        &[
            ("s", DataType::String),
            ("n", DataType::Int),
            ("b", DataType::Bytes),
        ],
        &[],
    );
    let row = |v: Value| {
        Record::read(
            s.clone(),
            vec![v, Value::Int(4111), Value::Bytes(b"abc".to_vec().into())],
        )
    };

    let out = ok(&Mask::sha256("s").and("b"), row("abc".into()));
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(out.values[0], Value::from(abc));
    assert_eq!(
        out.values[2],
        Value::from(abc),
        "bytes hash their raw content"
    );
    assert_eq!(out.schema.columns()[2].data_type, DataType::String);
    let salted = ok(&Mask::sha256_salted("s", "pep"), row("abc".into()));
    let plain = ok(&Mask::sha256("s"), row("pepabc".into()));
    assert_eq!(salted.values[0], plain.values[0]);
    let hashed_int = ok(&Mask::sha256("n"), row("x".into()));
    let hashed_text = ok(&Mask::sha256("s"), row("4111".into()));
    assert_eq!(
        hashed_int.values[1], hashed_text.values[0],
        "non-strings hash their text"
    );

    assert_eq!(
        ok(&Mask::redact("s"), row("secret".into())).values[0],
        Value::from("***")
    );
    assert_eq!(
        ok(&Mask::redact_with("n", "[x]"), row("s".into())).values[1],
        Value::from("[x]")
    );
    let keep = Mask::keep_last("s", 2);
    assert_eq!(
        ok(&keep, row("🎉é🎉ab🎉".into())).values[0],
        Value::from("****b🎉")
    );
    assert_eq!(ok(&keep, row("ab".into())).values[0], Value::from("ab"));
    assert_eq!(
        ok(&Mask::keep_last("n", 2), row("x".into())).values[1],
        Value::from("**11")
    );
    for m in [
        Mask::redact("s"),
        Mask::sha256("s"),
        Mask::keep_last("s", 1),
    ] {
        assert_eq!(ok(&m, row(Value::Null)).values[0], Value::Null);
    }

    let mut upd = row("new".into());
    upd.before = Some(vec!["old".into(), Value::Null, Value::Null]);
    assert_eq!(
        ok(&Mask::redact("s"), upd).before.unwrap()[0],
        Value::from("***")
    );

    let e = err(&Mask::redact("email"), row("x".into()));
    assert_eq!(e, r#"mask: unknown field "email" in t (fields: s, n, b)"#);
    let debug = format!("{:?}", Mask::sha256_salted("s", "topsecret"));
    assert!(!debug.contains("topsecret"), "{debug}");
}

// ---------------------------------------------------------------- filter

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
        &Filter::new(Cond::field("qty").is_in([Value::from(true)])),
        r(),
    );
    assert!(
        e.contains(r#"field "qty""#) && e.contains("bool true"),
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

// ---------------------------------------------------------------- route

#[test]
fn route_by_pattern() {
    let r = Route::new("{prefix}-{table}").unwrap().var("prefix", "cdc");
    let a = ok(&r, user(1, "m", "n"));
    let b = ok(&r, user(2, "m", "n"));
    assert_eq!(a.target_name(), "cdc-users");
    assert!(
        Arc::ptr_eq(a.target.as_ref().unwrap(), b.target.as_ref().unwrap()),
        "rendered once"
    );
    assert_eq!(
        r.static_target(&users()).unwrap().as_deref(),
        Some("cdc-users")
    );

    let by_field = Route::new("{db}_{table}_{name}").unwrap().lowercase(true);
    assert_eq!(
        ok(&by_field, user(1, "m", "EU")).target_name(),
        "shop_users_eu"
    );
    let mut r = user(1, "m", "n");
    r.values[2] = Value::Null;
    assert_eq!(
        err(&by_field, r),
        r#"route: field "name" in shop.users is NULL; pattern "{db}_{table}_{name}" needs a value"#
    );

    let e = err(&Route::new("{region}").unwrap(), user(1, "m", "n"));
    assert!(
        e.starts_with(r#"route: unknown field "region" in shop.users"#),
        "{e}"
    );
    let keyless = table(None, "logs", &[("a", DataType::Int)], &[]);
    let e = Route::new("{db}-{table}")
        .unwrap()
        .check(&keyless)
        .unwrap_err();
    assert_eq!(
        e,
        r#"route: pattern "{db}-{table}" uses {db} but logs has no namespace"#
    );
    assert_eq!(
        Route::new("{table").unwrap_err().to_string(),
        r#"invalid pattern "{table": unclosed '{'"#
    );
}

// ---------------------------------------------------------------- specs

#[test]
fn specs_parse_build_and_check() {
    let specs: Vec<TransformSpec> = serde_json::from_value(serde_json::json!([
        {"type": "rename", "fields": {"mail": "email"}},
        {"type": "cast", "fields": {"id": "string"}},
        {"type": "set", "field": "origin", "value": "crm"},
        {"type": "set", "field": "label", "template": "{name} <{email}>"},
        {"type": "mask", "fields": ["email"], "method": "keep_last", "n": 3},
        {"type": "filter", "where": {"field": "id", "op": "!=", "value": "2"}},
        {"type": "keep", "fields": ["id", "email", "origin", "label"]},
        {"type": "route", "pattern": "{prefix}-{table}", "vars": {"prefix": "x"}},
    ]))
    .unwrap();
    let out = check_specs(&specs, &users()).unwrap();
    let names: Vec<&str> = out.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "email", "origin", "label"]);
    let chain = datatrace_core::Chain(specs.iter().map(|s| s.build().unwrap()).collect());
    let r = ok(&chain, user(1, "ann@x.io", "Ann"));
    assert_eq!(
        r.values,
        [
            Value::from("1"),
            Value::from("*****.io"),
            Value::from("crm"),
            Value::from("Ann <ann@x.io>")
        ]
    );
    assert_eq!(r.target_name(), "x-users");
    assert!(chain.apply(user(2, "b", "B")).unwrap().is_none());

    let e = check_specs(&specs[1..], &users()).unwrap_err();
    assert!(
        e.starts_with(r#"transform 3 (set): set: unknown field "email""#),
        "{e}"
    );

    for (bad, msg) in [
        (
            serde_json::json!({"type": "explode"}),
            "unknown variant `explode`",
        ),
        (
            serde_json::json!({"type": "drop", "fields": ["a"], "extra": 1}),
            "unknown field `extra`",
        ),
        (
            serde_json::json!({"type": "cast", "fields": {"a": "money"}}),
            r#"cast of "a": unknown type "money""#,
        ),
        (
            serde_json::json!({"type": "mask", "fields": ["a"], "method": "blur"}),
            "unknown method \"blur\"",
        ),
        (
            serde_json::json!({"type": "mask", "fields": ["a"], "method": "keep_last"}),
            "needs `n`",
        ),
        (
            serde_json::json!({"type": "mask", "fields": ["a"], "method": "redact", "n": 2}),
            "does not apply",
        ),
        (
            serde_json::json!({"type": "route", "pattern": "{x"}),
            "unclosed",
        ),
        (
            serde_json::json!({"type": "set", "field": "a", "as": "when"}),
            "unknown type",
        ),
    ] {
        let e = serde_json::from_value::<TransformSpec>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{e}");
    }
    let both: TransformSpec = serde_json::from_value(
        serde_json::json!({"type": "set", "field": "a", "value": 1, "template": "{b}"}),
    )
    .unwrap();
    assert!(both
        .build()
        .err()
        .unwrap()
        .contains("exactly one of `value` and `template`"));
    let salted: TransformSpec = serde_json::from_value(
        serde_json::json!({"type": "mask", "fields": ["a"], "method": "sha256", "salt": "pepper"}),
    )
    .unwrap();
    assert!(!format!("{salted:?}").contains("pepper"));
    let null_value: TransformSpec =
        serde_json::from_value(serde_json::json!({"type": "set", "field": "mail", "value": null}))
            .unwrap();
    assert_eq!(
        ok(&*null_value.build().unwrap(), user(1, "m", "n")).values[1],
        Value::Null
    );
}

#[tokio::test]
async fn built_transforms_run_in_a_pipeline_under_the_error_policy() {
    let schema = products();
    let rows: Vec<Record> = ["1.5", "abc", "20", "3.25", "x"]
        .iter()
        .enumerate()
        .map(|(i, p)| Record::read(schema.clone(), vec![i.to_string().into(), (*p).into()]))
        .collect();
    let specs: Vec<TransformSpec> = serde_json::from_value(serde_json::json!([
        {"type": "cast", "fields": {"price": "decimal(10,2)"}},
        {"type": "filter", "where": {"field": "price", "op": "<", "value": "10"}},
    ]))
    .unwrap();
    let sink = Arc::new(CollectingSink::new());
    let report = Pipeline::new("products", Arc::new(MemorySource::new(rows)), sink.clone())
        .transforms(build_specs(&specs).unwrap())
        .config(PipelineConfig {
            error_policy: ErrorPolicy::Skip,
            ..Default::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(
        (report.written, report.filtered, report.rejected),
        (2, 1, 2)
    );
    let prices: Vec<String> = sink
        .records()
        .iter()
        .map(|r| r.values[1].to_string())
        .collect();
    assert_eq!(prices, ["1.50", "3.25"]);
}
