//! MySQL -> MySQL round trip of every type, with edge values: the target is identical.

mod all_types;
mod common;

use all_types::{ALL_TYPES, ROWS};
use common::*;
use datatrace_core::{PipelineConfig, RunStatus, Value};
use datatrace_mysql::{SinkOptions, SourceOptions, ZeroDate};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_type_round_trips_exactly() {
    let src = db().create_database("rt_src");
    let dst = db().create_database("rt_dst");
    exec(&format!(
        "USE `{src}`; SET sql_mode=''; {ALL_TYPES}; {ROWS}"
    ));
    let report = copy(
        &src,
        "all_types",
        &dst,
        SourceOptions {
            zero_date: ZeroDate::Keep,
            ..Default::default()
        },
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
        PipelineConfig::default(),
    )
    .await
    .expect("copy");
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.written, 5);
    // The target was created from the source schema: same column types and charsets.
    let cols = |d: &str| {
        exec(&format!(
            "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, IS_NULLABLE, COLUMN_KEY \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='{d}' AND TABLE_NAME='all_types' ORDER BY ORDINAL_POSITION"
        ))
    };
    assert_eq!(cols(&src), cols(&dst));
    assert_same(&src, &dst, "all_types", "id");
    let sum = checksum(&dst, "all_types");
    assert!(!sum.is_empty() && sum != "NULL" && sum != "0", "{sum}");
    // Zero dates kept, not nulled.
    assert_eq!(
        exec(&format!(
            "SELECT dt, ts FROM `{dst}`.all_types WHERE id = 4"
        ))
        .trim(),
        "0000-00-00\t0000-00-00 00:00:00"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_are_read_as_documented() {
    let src = db().create_database("rt_vals");
    exec(&format!(
        "USE `{src}`; SET sql_mode=''; {ALL_TYPES}; {ROWS}"
    ));
    let s = source(&src, "all_types", SourceOptions::default()).await;
    let rows = read_all(&s).await;
    let row = |id: i64| {
        rows.iter()
            .find(|r| r.values[0] == Value::Int(id))
            .expect("row")
    };
    let get = |id: i64, col: &str| row(id).get(col).cloned().expect("column");
    assert_eq!(get(3, "biu"), Value::UInt(u64::MAX));
    assert_eq!(get(2, "bi"), Value::Int(i64::MIN));
    assert_eq!(get(3, "b64"), Value::UInt(u64::MAX));
    assert_eq!(get(3, "b1"), Value::Bool(true));
    assert_eq!(get(4, "flag"), Value::Int(2));
    assert_eq!(get(3, "flag"), Value::Bool(true));
    assert_eq!(
        get(2, "dec_big"),
        Value::Decimal(
            "-99999999999999999999999999999999999.999999999999999999999999999999"
                .parse()
                .unwrap()
        )
    );
    assert_eq!(get(4, "f"), Value::Float(0.1f32 as f64));
    assert_eq!(get(4, "d"), Value::Float(0.1));
    assert_eq!(get(3, "c"), Value::from("emoji 🎉"));
    assert_eq!(get(3, "l1"), Value::from("café ¤ ÿ"));
    assert_eq!(get(2, "tm").to_string(), "-838:59:59");
    assert_eq!(get(4, "tm").to_string(), "100:00:00");
    assert_eq!(get(4, "tm6").to_string(), "-00:00:00.000001");
    assert_eq!(get(3, "dtm6").to_string(), "9999-12-31T23:59:59.999999");
    assert_eq!(get(3, "ts6").to_string(), "2038-01-19T03:14:07.999999Z");
    assert_eq!(
        get(2, "ts"),
        Value::Timestamp(datatrace_core::Timestamp::from_unix_micros(1_000_000))
    );
    assert_eq!(get(3, "y"), Value::Int(2155));
    // MariaDB keeps JSON as text: it is read as its exact text.
    match get(3, "j") {
        Value::String(text) => {
            let j: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(j["a"], serde_json::json!([1, 2.5, {"b": null}]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(get(3, "e"), Value::from("c d"));
    assert_eq!(get(3, "st"), Value::from("x,y,z"));
    assert_eq!(get(4, "vb"), Value::Bytes(bytes::Bytes::from_static(b"\\")));
    // Zero dates read as NULL by default (a warning is logged).
    assert_eq!(get(4, "dt"), Value::Null);
    assert_eq!(get(5, "dt"), Value::Null);
    assert_eq!(get(4, "ts"), Value::Null);
    assert!(s.zero_dates_seen() >= 4, "{}", s.zero_dates_seen());
    // Point: 4-byte SRID, then WKB (byte order 1, type 1 = point).
    match get(2, "pt") {
        Value::Bytes(b) => assert_eq!(&b[..9], &[0, 0, 0, 0, 1, 1, 0, 0, 0]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zero_dates_can_be_errors() {
    let src = db().create_database("rt_zero");
    exec(&format!(
        "USE `{src}`; SET sql_mode=''; {ALL_TYPES}; {ROWS}"
    ));
    let dst = db().create_database("rt_zero_dst");
    let err = copy(
        &src,
        "all_types",
        &dst,
        SourceOptions {
            zero_date: ZeroDate::Error,
            ..Default::default()
        },
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
        PipelineConfig::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("table {src}.all_types, column dt, key 4")),
        "{err}"
    );
    assert!(err.contains("zero date 0000-00-00"), "{err}");
}
