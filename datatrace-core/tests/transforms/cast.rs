//! The cast matrix and the cast transform.

use super::*;

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
