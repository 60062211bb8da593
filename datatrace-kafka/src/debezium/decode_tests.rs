//! Tests of [`super`].

use super::*;

fn message<'a>(topic: &'a str, key: &'a [u8], value: &'a [u8]) -> MessageRef<'a> {
    MessageRef {
        topic,
        partition: 1,
        offset: 7,
        key: Some(key),
        value: Some(value),
    }
}

#[test]
fn gtid_sequences() {
    assert_eq!(gtid_sequence("0-1-48"), Some(48));
    assert_eq!(
        gtid_sequence("3e11fa47-71ca-11e1-9e33-c80aa9429562:23"),
        Some(23)
    );
    assert_eq!(
        gtid_sequence("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23"),
        Some(23)
    );
    assert_eq!(gtid_sequence(""), None);
    assert_eq!(gtid_sequence("0-1-4,1-1-9"), None);
}

/// Debezium's own events carry no `ordinal`: versions come from `file`/`pos`, else from the
/// GTID; the record's position keeps where the event was in the binlog.
#[test]
fn debezium_source_fields_give_versions_and_positions() {
    let d = Decoder::new();
    let event = |source: &str| {
        format!(
            r#"{{"before":null,"after":{{"id":1,"name":"a"}},"source":{source},"op":"c","ts_ms":1}}"#
        )
    };
    let with_file = event(
        r#"{"version":"3.6.1.Final","connector":"mysql","name":"dbz","ts_ms":1700000000000,"db":"shop","table":"t","server_id":1,"gtid":null,"file":"binlog.000003","pos":1234,"row":2}"#,
    );
    let Event::Change(r) = d
        .decode(&message("dbz.shop.t", br#"{"id":1}"#, with_file.as_bytes()))
        .unwrap()
    else {
        panic!("a change")
    };
    let p = r.position.unwrap();
    assert_eq!(p.ordinal, Some((3 << 32) | 1234));
    assert_eq!(p.ts_ms, Some(1_700_000_000_000));
    assert_eq!(p.state["file"], "binlog.000003");
    assert_eq!(p.state["pos"], 1234);
    assert_eq!(p.state["row"], 2);
    assert_eq!(p.state["offset"], 7);
    let with_gtid = event(
        r#"{"version":"3.6.1.Final","db":"shop","table":"t","gtid":"0-1-77","file":"","pos":0}"#,
    );
    let Event::Change(r) = d
        .decode(&message("dbz.shop.t", br#"{"id":1}"#, with_gtid.as_bytes()))
        .unwrap()
    else {
        panic!("a change")
    };
    assert_eq!(r.position.as_ref().unwrap().ordinal, Some(77));
    assert_eq!(r.position.unwrap().state["gtid"], "0-1-77");
}

/// Debezium writes a truncate to one partition; DataTrace's sink to every partition.
#[test]
fn truncates_say_where_they_were_written() {
    let d = Decoder::new();
    let truncate = |version: &str| {
        format!(
            r#"{{"before":null,"after":null,"source":{{"version":"{version}","db":"shop","table":"t","file":"binlog.000001","pos":4}},"op":"t","ts_ms":1}}"#
        )
    };
    let theirs = truncate("3.6.1.Final");
    assert!(matches!(
        d.decode(&MessageRef {
            key: None,
            ..message("dbz.shop.t", b"", theirs.as_bytes())
        }),
        Ok(Event::OnePartitionTableChange(_))
    ));
    let ours = truncate("datatrace-0.1.0");
    assert!(matches!(
        d.decode(&MessageRef {
            key: None,
            ..message("dbz.shop.t", b"", ours.as_bytes())
        }),
        Ok(Event::TableChange(_))
    ));
}

/// A shape is built once per distinct schema and found again by its text.
#[test]
fn shapes_are_cached_by_schema_text() {
    let d = Decoder::new();
    let schema = |ty: &str| {
        format!(
            r#"{{"type":"struct","fields":[{{"type":"struct","field":"after","fields":[{{"type":"int32","field":"id"}},{{"type":"{ty}","field":"v"}}]}}]}}"#
        )
    };
    let wrapped = |ty: &str, v: &str| {
        format!(
            r#"{{"schema":{},"payload":{{"before":null,"after":{{"id":1,"v":{v}}},"source":{{"db":"s","table":"t"}},"op":"c"}}}}"#,
            schema(ty)
        )
    };
    let a = wrapped("string", "\"x\"");
    let b = wrapped("int64", "5");
    let decode = |text: &str| match d
        .decode(&message("p.s.t", br#"{"id":1}"#, text.as_bytes()))
        .unwrap()
    {
        Event::Change(r) => r,
        other => panic!("{other:?}"),
    };
    let (r1, r2, r3) = (decode(&a), decode(&a), decode(&b));
    assert!(Arc::ptr_eq(&r1.schema, &r2.schema));
    assert!(!Arc::ptr_eq(&r1.schema, &r3.schema));
    assert_eq!(r3.values[1], Value::Int(5));
    assert_eq!(r1.values[1], Value::from("x"));
    assert_eq!(r1.schema.primary_key(), &[0]);
}
