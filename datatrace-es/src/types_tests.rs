//! Tests of [`super`]: JSON writing and escaping, and reading hits back into values.

use super::*;
use serde_json::json;

#[test]
fn nested_values_are_the_json_written_at_the_top() {
    use datatrace_core::temporal::{Date, DateTime, Time, Timestamp};
    let values = [
        Value::Null,
        Value::Bool(true),
        Value::Int(-3),
        Value::UInt(u64::MAX),
        Value::Float(0.1),
        Value::from("a\"b"),
        Value::Bytes(bytes::Bytes::from_static(b"\x00\xff")),
        Value::Date("2024-02-29".parse::<Date>().unwrap()),
        Value::Time("-838:59:59".parse::<Time>().unwrap()),
        Value::DateTime("2024-02-29 01:02:03.000004".parse::<DateTime>().unwrap()),
        Value::Timestamp(Timestamp::from_unix_micros(1)),
        Value::Json(json!({"a": [1, "x"]})),
    ];
    for v in &values {
        let tree: Json = serde_json::from_str(&written(v, DecimalAs::Number)).unwrap();
        assert_eq!(value_to_json(v, DecimalAs::Number), tree, "{v:?}");
    }
    let d = |s: &str| Value::Decimal(s.parse().unwrap());
    assert_eq!(value_to_json(&d("12.50"), DecimalAs::Number), json!(12.5));
    assert_eq!(value_to_json(&d("-7.000"), DecimalAs::Number), json!(-7));
    assert_eq!(
        value_to_json(&d("12345678901234567890.123"), DecimalAs::Number),
        json!("12345678901234567890.123")
    );
    assert_eq!(
        value_to_json(&d("12.50"), DecimalAs::String),
        json!("12.50")
    );
}

fn written(v: &Value, d: DecimalAs) -> String {
    let mut b = Vec::new();
    write_value(&mut b, v, d);
    String::from_utf8(b).unwrap()
}

#[test]
fn strings_are_escaped_like_serde_json() {
    let long = "abcdefgh\"ijklmnop\\qrstuvwx\u{7}yz0123456789 ~\u{7f}é🎉".repeat(3);
    for s in [
        long.as_str(),
        "12345678",
        "1234567\"",
        "\"2345678abcdefgh",
        "plain",
        "quo\"te",
        "back\\slash",
        "nl\n\t\r",
        "\u{1}\u{1f}",
        "héllo 🎉",
        "",
    ] {
        let mut b = Vec::new();
        write_str(&mut b, s);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            serde_json::to_string(s).unwrap()
        );
    }
}

#[test]
fn values_are_written_as_documented() {
    let n = DecimalAs::Number;
    assert_eq!(written(&Value::UInt(u64::MAX), n), "18446744073709551615");
    assert_eq!(written(&Value::Int(i64::MIN), n), "-9223372036854775808");
    assert_eq!(written(&Value::Float(f64::NAN), n), "null");
    assert_eq!(written(&Value::Float(0.5), n), "0.5");
    let d: Decimal = "-12345678901234567890.000000000000000001".parse().unwrap();
    assert_eq!(
        written(&Value::Decimal(d.clone()), n),
        "-12345678901234567890.000000000000000001"
    );
    assert_eq!(
        written(&Value::Decimal(d), DecimalAs::String),
        "\"-12345678901234567890.000000000000000001\""
    );
    assert_eq!(
        written(&Value::Decimal("007.50".parse().unwrap()), n),
        "7.5"
    );
    assert_eq!(
        written(&Value::Bytes(vec![0u8, 255, 1].into()), n),
        "\"AP8B\""
    );
    assert_eq!(
        written(
            &Value::Timestamp("2024-02-29T01:02:03.000004Z".parse().unwrap()),
            n
        ),
        "\"2024-02-29T01:02:03.000004Z\""
    );
    assert_eq!(
        written(&Value::DateTime("2024-02-29T01:02:03".parse().unwrap()), n),
        "\"2024-02-29T01:02:03\""
    );
    assert_eq!(
        written(&Value::Time("-838:59:59".parse().unwrap()), n),
        "\"-838:59:59\""
    );
    assert_eq!(
        written(&Value::Json(json!({"a": [1, null]})), n),
        r#"{"a":[1,null]}"#
    );
}

#[test]
fn json_text_keeps_its_numbers_and_order() {
    let mut b = Vec::new();
    write_json_text(
        &mut b,
        "{ \"z\" : [ 18446744073709551616 , 1.50e300 ],\n \"a b\": \"x \\\" y\" }",
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(b).unwrap(),
        r#"{"z":[18446744073709551616,1.50e300],"a b":"x \" y"}"#
    );
    assert!(write_json_text(&mut Vec::new(), "{oops").is_err());
}

#[test]
fn numbers_are_read_from_their_text_exactly() {
    let dec = DataType::Decimal {
        precision: 65,
        scale: 30,
    };
    let d = |t: &str| number_from_text(t, dec).map(|v| v.to_string());
    assert_eq!(
        d("12345678901234567890123456789012345.123456789012345678901234567890").as_deref(),
        Some("12345678901234567890123456789012345.123456789012345678901234567890")
    );
    assert_eq!(d("1.5E+3").as_deref(), Some("1500"));
    assert_eq!(d("-12e-3").as_deref(), Some("-0.012"));
    assert_eq!(d("7").as_deref(), Some("7"));
    assert_eq!(d("1e401"), None);
    assert_eq!(d("\"x\""), None);
    assert_eq!(
        number_from_text("18446744073709551615", DataType::UInt),
        Some(Value::UInt(u64::MAX))
    );
    assert_eq!(number_from_text("5.0", DataType::Int), Some(Value::Int(5)));
    assert_eq!(number_from_text("5.5", DataType::Int), None);
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..10_000 {
        let f = f64::from_bits(rng.u64(..));
        if !f.is_finite() {
            continue;
        }
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(
            number_from_text(&text, DataType::Float),
            Some(Value::Float(f)),
            "{text}"
        );
    }
}

#[test]
fn hits_convert_by_type_and_keep_misfits_as_json() {
    assert_eq!(json_to_value(json!(5), DataType::Int), Value::Int(5));
    assert_eq!(json_to_value(json!("5"), DataType::Int), Value::Int(5));
    assert_eq!(
        json_to_value(json!([1, 2]), DataType::Int),
        Value::Json(json!([1, 2]))
    );
    assert_eq!(
        json_to_value(json!(u64::MAX), DataType::UInt),
        Value::UInt(u64::MAX)
    );
    let dec = DataType::Decimal {
        precision: 10,
        scale: 2,
    };
    assert_eq!(
        json_to_value(json!(12.34), dec),
        Value::Decimal("12.34".parse().unwrap())
    );
    assert_eq!(
        json_to_value(json!(1e21), dec),
        Value::Decimal("1000000000000000000000".parse().unwrap())
    );
    assert_eq!(
        json_to_value(json!("AP8B"), DataType::Bytes),
        Value::Bytes(vec![0u8, 255, 1].into())
    );
    assert_eq!(json_to_value(json!(null), DataType::String), Value::Null);
    assert_eq!(
        json_to_value(json!({"x": 1}), DataType::String),
        Value::Json(json!({"x": 1}))
    );
    let ts = |s: &str| json_to_value(json!(s), DataType::Timestamp);
    assert_eq!(
        ts("2024-01-02"),
        Value::Timestamp("2024-01-02T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        ts("2024-01-02T03:04:05.123456789Z"),
        Value::Timestamp("2024-01-02T03:04:05.123456Z".parse().unwrap())
    );
    assert_eq!(
        ts("2024-01-02T03:04"),
        Value::Timestamp("2024-01-02T03:04:00Z".parse().unwrap())
    );
    assert_eq!(
        ts("2024-01-02T03:04:05+02:00"),
        Value::Timestamp("2024-01-02T01:04:05Z".parse().unwrap())
    );
    assert_eq!(
        json_to_value(json!(1_000), DataType::Timestamp),
        Value::Timestamp(Timestamp::from_unix_micros(1_000_000))
    );
    assert_eq!(ts("yesterday"), Value::Json(json!("yesterday")));
}
