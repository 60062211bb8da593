//! MySQL -> MySQL round trip of every type, with edge values: the target is identical.

mod common;

use common::*;
use datatrace_core::{PipelineConfig, RunStatus, Value};
use datatrace_mysql::{SinkOptions, SourceOptions, ZeroDate};

const ALL_TYPES: &str = "
CREATE TABLE all_types (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED,
  dec_big DECIMAL(65,30), dec_small DECIMAL(10,2), dec_int DECIMAL(20,0),
  f FLOAT, d DOUBLE,
  b1 BIT(1), b12 BIT(12), b64 BIT(64),
  flag BOOLEAN,
  c CHAR(10), vc VARCHAR(100), tx TEXT, mtx MEDIUMTEXT,
  l1 VARCHAR(50) CHARACTER SET latin1, l1t TEXT CHARACTER SET latin1,
  bin BINARY(4), vb VARBINARY(20), bl BLOB, lbl LONGBLOB,
  dt DATE, tm TIME, tm6 TIME(6), dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts TIMESTAMP NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL, y YEAR,
  j JSON, e ENUM('a','b','c d'), st SET('x','y','z'), g GEOMETRY, pt POINT
) DEFAULT CHARSET=utf8mb4";

const ROWS: &str = "
INSERT INTO all_types (id) VALUES (1);
INSERT INTO all_types VALUES (2,
  -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -99999999999999999999999999999999999.999999999999999999999999999999, -99999999.99, -99999999999999999999,
  -3.40282e38, -1.7976931348623157e308,
  b'0', b'0', b'0', 0,
  '', '', '', '', '', '',
  X'00000000', '', '', '',
  '1000-01-01', '-838:59:59', '-838:59:59.000000', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000', '1000-01-01 00:00:00.000000',
  '1970-01-01 00:00:01', '1970-01-01 00:00:01.000000', 1901,
  '[]', 'a', '', ST_GeomFromText('POINT(0 0)'), ST_GeomFromText('POINT(-1.5 2.25)'));
INSERT INTO all_types VALUES (3,
  127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
  99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99, 99999999999999999999,
  3.40282e38, 1.7976931348623157e308,
  b'1', b'111111111111', b'1111111111111111111111111111111111111111111111111111111111111111', 1,
  'emoji 🎉', 'ünïcödé ✓ 😀 𝄞', REPEAT('long text ', 1000), REPEAT('x', 70000), 'café ¤ ÿ', 'Æble',
  X'ff00fe01', X'00ff27275c', X'000102030405', REPEAT(X'ABCD', 50000),
  '9999-12-31', '838:59:59', '838:59:59.000000', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999',
  '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999', 2155,
  '{\"a\":[1,2.5,{\"b\":null}],\"c\":\"é🎉\",\"d\":true}', 'c d', 'x,y,z', ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))'), ST_GeomFromText('POINT(1e10 -1e-10)'));
INSERT INTO all_types VALUES (4,
  -1, 1, -1, 1, -1, 1, -1, 1, -1, 1,
  -0.000000000000000000000000000001, -0.50, 0,
  0.1, 0.1,
  b'1', b'101010101010', b'1000000000000000000000000000000000000000000000000000000000000001', 2,
  'it''s', 'quote '' backslash \\\\ percent % underscore _ nul', 'line\\nbreak\\ttab', '', 'naïve', '',
  X'27000000', X'5c', X'', X'00',
  '0000-00-00', '100:00:00', '-00:00:00.000001', '0000-00-00 00:00:00', '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.000001',
  '0000-00-00 00:00:00', '2024-02-29 23:59:59.500000', 0,
  '\"just a string\"', 'b', 'y', NULL, NULL);
INSERT INTO all_types (id, dt, dtm, dtm6, f, d, flag) VALUES (5, '2024-00-15', '2024-02-00 10:00:00', '2000-01-01 00:00:00.100000', -0.0, 1e-300, -128);
";

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
    match get(3, "j") {
        Value::Json(j) => assert_eq!(j["a"], serde_json::json!([1, 2.5, {"b": null}])),
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
