//! Every MySQL type through the binlog path equals the same row through the snapshot path
//! (the table and edge values of the round-trip test, plus updates and deletes of them).

mod cdc;

use std::sync::Arc;

use cdc::*;
use datatrace_core::{Emitted, Emitter, Op, Record, Source, Value};
use datatrace_mysql::{table_info, MySqlSource, SourceOptions, ZeroDate};

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

async fn snapshot_rows(database: &str, zero_date: ZeroDate) -> Vec<Record> {
    let conn = connect(database).await;
    let info = table_info(&conn, database, "all_types")
        .await
        .expect("info");
    let s = Arc::new(
        MySqlSource::new(
            conn,
            info,
            SourceOptions {
                zero_date,
                ..Default::default()
            },
        )
        .expect("source"),
    );
    let mut out = Vec::new();
    for p in s.split(1).await.expect("split") {
        let (mut em, mut rx) = Emitter::for_test(100, 1_000_000);
        let s2 = s.clone();
        let t = tokio::spawn(async move {
            let r = s2.read(&p, None, &mut em).await;
            em.flush().await.expect("flush");
            r
        });
        while let Some(m) = rx.recv().await {
            if let Emitted::Records(r) = m {
                out.extend(r);
            }
        }
        t.await.expect("join").expect("read");
    }
    out.sort_by_key(|r| r.values[0].as_i64());
    out
}

fn by_id(rows: &[Record], id: i64) -> &Record {
    rows.iter()
        .find(|r| r.values[0] == Value::Int(id))
        .expect("row")
}

async fn every_type(zero_date: ZeroDate) {
    let d = db().create_database("cdc_types");
    exec(&format!("USE `{d}`; {ALL_TYPES}"));
    let start = now().await;
    exec(&format!("USE `{d}`; SET sql_mode=''; {ROWS}"));
    // Updates of every column (row 3 takes row 2's values and back) and a delete.
    exec(&format!(
        "USE `{d}`; SET sql_mode=''; UPDATE all_types SET id = 6 WHERE id = 4; UPDATE all_types SET id = 4 WHERE id = 6; DELETE FROM all_types WHERE id = 1;"
    ));
    let o = datatrace_mysql::binlog::CdcOptions {
        zero_date,
        ..opts(&d, &start)
    };
    let got = capture(o, None, |c| c.records.len() >= 8).await;
    let snap = snapshot_rows(&d, zero_date).await;
    let inserts: Vec<&Record> = got.records.iter().filter(|r| r.op == Op::Insert).collect();
    assert_eq!(inserts.len(), 5);
    // Inserted rows 2, 3, 5 are unchanged since: equal to the snapshot, column by column.
    for id in [2, 3, 5] {
        let b = inserts
            .iter()
            .find(|r| r.values[0] == Value::Int(id))
            .expect("insert");
        let s = by_id(&snap, id);
        assert_eq!(b.schema.columns(), s.schema.columns(), "schema of row {id}");
        for (i, col) in s.schema.columns().iter().enumerate() {
            assert_eq!(b.values[i], s.values[i], "row {id}, column {}", col.name);
        }
    }
    // Row 4 went to 6 and back: the second update's after-image is the snapshot's row 4,
    // its before-image the first update's after-image.
    let ups: Vec<&Record> = got.records.iter().filter(|r| r.op == Op::Update).collect();
    assert_eq!(ups.len(), 2);
    let s4 = by_id(&snap, 4);
    assert_eq!(ups[1].values, s4.values);
    assert_eq!(ups[1].before.as_ref().expect("before")[0], Value::Int(6));
    assert_eq!(ups[0].before.as_ref().expect("before"), &s4.values);
    let del = got
        .records
        .iter()
        .find(|r| r.op == Op::Delete)
        .expect("delete");
    assert_eq!(del.values[0], Value::Int(1));
    assert!(del.values[1..].iter().all(Value::is_null));
    // Every record has an ordinal and a commit time; ordinals never go down.
    let ords: Vec<u64> = got
        .records
        .iter()
        .map(|r| {
            r.position
                .as_ref()
                .and_then(|p| p.ordinal)
                .expect("ordinal")
        })
        .collect();
    assert!(ords.windows(2).all(|w| w[0] <= w[1]), "{ords:?}");
    assert!(got
        .records
        .iter()
        .all(|r| r.position.as_ref().and_then(|p| p.ts_ms).is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_through_the_binlog_equals_the_snapshot() {
    every_type(ZeroDate::Keep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_dates_follow_the_same_policy() {
    every_type(ZeroDate::Null).await;
}
