//! Mask: redact, SHA-256, keep_last.

use super::*;

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
