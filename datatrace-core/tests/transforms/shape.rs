//! Rename, keep and drop, set.

use super::*;

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
