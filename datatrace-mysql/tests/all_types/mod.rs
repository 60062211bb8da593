//! The every-type table and its edge-value rows, shared by the round-trip test (snapshot
//! path) and the CDC type test (binlog path), so both paths are checked on the same data.

/// A table with a column of every MySQL type the connector maps.
pub const ALL_TYPES: &str = "
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

/// Rows of edge values: NULLs, minimums and maximums, empty strings, emoji, latin1, zero
/// dates, fractional seconds, geometry.
pub const ROWS: &str = "
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
