//! Tests of [`super`].

use super::*;

fn round_trip(col: Column, v: Value) {
    let schema = column_schema(&col);
    let wire = encode(&col.data_type, &v).unwrap();
    let (back_col, ft) = field_type(&schema).unwrap();
    assert_eq!(back_col, col, "{schema}");
    let back = decode(&ft, &wire).unwrap();
    assert_eq!(back, v, "{col:?} {wire}");
}

#[test]
fn every_type_survives_at_its_edges() {
    let dec = |p, s| DataType::Decimal {
        precision: p,
        scale: s,
    };
    let cases: Vec<(DataType, Vec<Value>)> = vec![
        (DataType::Bool, vec![Value::Bool(true), Value::Bool(false)]),
        (
            DataType::Int,
            vec![Value::Int(i64::MIN), Value::Int(i64::MAX), Value::Int(0)],
        ),
        (
            DataType::UInt,
            vec![Value::UInt(u64::MAX), Value::UInt(0), Value::UInt(1 << 63)],
        ),
        (
            DataType::Float,
            vec![
                Value::Float(f64::MAX),
                Value::Float(f64::MIN_POSITIVE),
                Value::Float(-0.1),
            ],
        ),
        (
            dec(65, 30),
            vec![
                Value::Decimal(
                    "-99999999999999999999999999999999999.999999999999999999999999999999"
                        .parse()
                        .unwrap(),
                ),
                Value::Decimal("0.000000000000000000000000000001".parse().unwrap()),
                Value::Decimal("0.000000000000000000000000000000".parse().unwrap()),
            ],
        ),
        (
            dec(10, 0),
            vec![
                Value::Decimal("-128".parse().unwrap()),
                Value::Decimal("255".parse().unwrap()),
            ],
        ),
        (
            dec(0, 0),
            vec![
                Value::Decimal("-1.50".parse().unwrap()),
                Value::Decimal(
                    "12345678901234567890123456789012345678901.5"
                        .parse()
                        .unwrap(),
                ),
            ],
        ),
        (
            DataType::String,
            vec![Value::from(""), Value::from("é\u{0}\u{10ffff}\"")],
        ),
        (
            DataType::Bytes,
            vec![
                Value::Bytes(Bytes::from_static(b"")),
                Value::Bytes(Bytes::from_static(&[0, 255, 128])),
            ],
        ),
        (
            DataType::Date,
            vec![
                Value::Date(Date::new(1000, 1, 1).unwrap()),
                Value::Date(Date::new(9999, 12, 31).unwrap()),
            ],
        ),
        (
            DataType::Time,
            vec![
                Value::Time("-838:59:59.000000".parse().unwrap()),
                Value::Time("838:59:59.999999".parse().unwrap()),
            ],
        ),
        (
            DataType::DateTime,
            vec![
                Value::DateTime("1000-01-01T00:00:00".parse().unwrap()),
                Value::DateTime("9999-12-31T23:59:59.999999".parse().unwrap()),
            ],
        ),
        (
            DataType::Timestamp,
            vec![
                Value::Timestamp("1970-01-01T00:00:01Z".parse().unwrap()),
                Value::Timestamp("2038-01-19T03:14:07.999999Z".parse().unwrap()),
            ],
        ),
        (
            DataType::Json,
            vec![
                Value::Json(json!({"a": [1, 2.5, null, "x"], "u": 18446744073709551615u64})),
                Value::Json(json!("just a string")),
            ],
        ),
    ];
    for (ty, values) in cases {
        for v in values.into_iter().chain([Value::Null]) {
            round_trip(Column::new("c", ty).native("t"), v.clone());
            round_trip(Column::new("c", ty), v);
        }
    }
}

#[test]
fn refuses_what_does_not_fit() {
    let dec = DataType::Decimal {
        precision: 5,
        scale: 2,
    };
    let e = encode(&dec, &Value::Decimal("1.234".parse().unwrap())).unwrap_err();
    assert!(e.0.contains("more than 2 digits"), "{e}");
    let e = encode(&DataType::Float, &Value::Float(f64::NAN)).unwrap_err();
    assert!(e.0.contains("finite"), "{e}");
    let e = encode(&DataType::UInt, &Value::Int(-1)).unwrap_err();
    assert!(e.0.contains("type uint"), "{e}");
    // a decimal with fewer digits is padded to the scale, as MySQL stores it
    let wire = encode(&dec, &Value::Decimal("1.5".parse().unwrap())).unwrap();
    let (_, ft) = field_type(&column_schema(&Column::new("d", dec))).unwrap();
    assert_eq!(
        decode(&ft, &wire).unwrap(),
        Value::Decimal("1.50".parse().unwrap())
    );
}

#[test]
fn reads_debeziums_other_encodings() {
    let f = |s: Json| field_type(&s).unwrap().1;
    let ts = f(json!({"type":"int64","name":"io.debezium.time.Timestamp","field":"t"}));
    assert_eq!(
        decode(&ts, &json!(1_500)).unwrap(),
        Value::DateTime("1970-01-01T00:00:01.500".parse().unwrap())
    );
    let t = f(json!({"type":"int32","name":"org.apache.kafka.connect.data.Time","field":"t"}));
    assert_eq!(
        decode(&t, &json!(3_600_000)).unwrap(),
        Value::Time("01:00:00".parse().unwrap())
    );
    let d = f(
        json!({"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"d"}),
    );
    // 0xff9c = -100 -> -1.00
    assert_eq!(
        decode(&d, &json!("/5w=")).unwrap(),
        Value::Decimal("-1.00".parse().unwrap())
    );
    let bad = decode(&d, &json!("not base64!")).unwrap_err();
    assert!(bad.0.contains("not a valid decimal(0,2)"), "{bad}");
    // BIT(10) b'1100110011' = 0x0333: Debezium sends its bytes little-endian
    let bits = f(
        json!({"type":"bytes","name":"io.debezium.data.Bits","parameters":{"length":"10"},"field":"b"}),
    );
    assert_eq!(
        decode(&bits, &json!(B64.encode([0x33u8, 0x03]))).unwrap(),
        Value::Bytes(Bytes::from_static(&[0x03, 0x33]))
    );
}
