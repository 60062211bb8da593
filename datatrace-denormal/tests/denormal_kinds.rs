//! The other shapes of definitions, under a random change stream: string keys matched by a
//! case-insensitive collation (relations read through the parent, as a SQL join matches),
//! a foreign key referencing a non-key column, a composite key, a keyless scalar
//! relation, a `one_to_one` relation, `order_by` descending, and transforms (rename,
//! filter) on the root (a filtered-out root has no document) and on relations; one table is
//! named with a reserved word (`lines`).

mod common;

use std::collections::BTreeMap;

use common::*;
use datatrace_core::transforms::TransformSpec;
use datatrace_denormal::{DocumentSpec, RelationSpec};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value as Json};

const SCHEMA: &str = "
CREATE TABLE accounts (code VARCHAR(16) PRIMARY KEY, name VARCHAR(64) NOT NULL) COLLATE utf8mb4_unicode_ci;
CREATE TABLE invoices (id INT PRIMARY KEY, ref VARCHAR(16) NOT NULL UNIQUE, account_code VARCHAR(16) NULL, state VARCHAR(16) NOT NULL, KEY (account_code)) COLLATE utf8mb4_unicode_ci;
CREATE TABLE `lines` (invoice_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(16) NOT NULL, qty INT NOT NULL, PRIMARY KEY (invoice_id, line_no), KEY (sku)) COLLATE utf8mb4_unicode_ci;
CREATE TABLE skus (sku VARCHAR(16) PRIMARY KEY, title VARCHAR(64) NOT NULL) COLLATE utf8mb4_unicode_ci;
CREATE TABLE labels (id INT PRIMARY KEY, label VARCHAR(16) NOT NULL);
CREATE TABLE sku_labels (sku VARCHAR(16) NOT NULL, label_id INT NOT NULL, PRIMARY KEY (sku, label_id), KEY (label_id)) COLLATE utf8mb4_unicode_ci;
CREATE TABLE shipments (id INT PRIMARY KEY, invoice_id INT NULL UNIQUE, carrier VARCHAR(16) NOT NULL);
CREATE TABLE notes (invoice_ref VARCHAR(16) NOT NULL, body VARCHAR(64) NOT NULL, KEY (invoice_ref)) COLLATE utf8mb4_unicode_ci;
INSERT INTO accounts SELECT CONCAT('acc', seq), CONCAT('Account ', seq) FROM seq_1_to_12;
INSERT INTO invoices SELECT seq, CONCAT('R-', seq), IF(seq % 9 = 0, NULL, CONCAT(IF(seq % 2 = 0, 'ACC', 'acc'), 1 + seq % 12)), ELT(1 + seq % 4, 'open', 'paid', 'void', 'open') FROM seq_1_to_60;
INSERT INTO `lines` SELECT i.seq, l.seq, CONCAT(IF(l.seq = 2, 'SKU', 'sku'), 1 + (i.seq + l.seq) % 15), IF((i.seq + l.seq) % 7 = 0, 0, l.seq) FROM seq_1_to_60 i JOIN seq_1_to_3 l;
INSERT INTO skus SELECT CONCAT('sku', seq), CONCAT('Widget ', seq) FROM seq_1_to_15;
INSERT INTO labels SELECT seq, CONCAT('L', seq) FROM seq_1_to_5;
INSERT INTO sku_labels SELECT CONCAT(IF(s.seq % 2 = 0, 'SKU', 'sku'), s.seq), l.seq FROM seq_1_to_15 s JOIN seq_1_to_5 l WHERE (s.seq + l.seq) % 3 = 0;
INSERT INTO shipments SELECT seq, IF(seq % 3 = 0, NULL, seq * 2), ELT(1 + seq % 2, 'DHL', 'UPS') FROM seq_1_to_25;
INSERT INTO notes SELECT CONCAT(IF(seq % 2 = 0, 'r-', 'R-'), 1 + seq % 60), CONCAT('note ', seq) FROM seq_1_to_80;
";

fn spec() -> DocumentSpec {
    let t = |j: Json| serde_json::from_value::<TransformSpec>(j).unwrap();
    DocumentSpec::new("invoices", "invoices")
        .transform(t(
            json!({"type": "filter", "where": {"field": "state", "op": "!=", "value": "void"}}),
        ))
        .transform(t(json!({"type": "rename", "fields": {"state": "status"}})))
        .relation(RelationSpec::many_to_one(
            "account",
            "accounts",
            ["account_code"],
        ))
        .relation(
            RelationSpec::one_to_many("lines", "lines", ["invoice_id"])
                .order_by(["-line_no"])
                .columns(["line_no", "sku", "qty"])
                .transform(t(
                    json!({"type": "filter", "where": {"field": "qty", "op": ">", "value": 0}}),
                ))
                .transform(t(json!({"type": "rename", "fields": {"qty": "quantity"}})))
                .nested(),
        )
        .relation(
            RelationSpec::many_to_one("item", "skus", ["sku"])
                .under("lines")
                .columns(["title"]),
        )
        .relation(
            RelationSpec::many_to_many("labels", "labels", "sku_labels", ["sku"], ["label_id"])
                .under("item")
                .scalar("label"),
        )
        .relation(
            RelationSpec::one_to_one("shipment", "shipments", ["invoice_id"])
                .columns(["id", "carrier"]),
        )
        .relation(
            RelationSpec::one_to_many("notes", "notes", ["invoice_ref"])
                .references(["ref"])
                .scalar("body"),
        )
}

/// The expected documents, computed in memory; string keys compare case-insensitively, as
/// the tables' collation does.
async fn expected(db: &str) -> BTreeMap<String, Json> {
    let conn = mysql(db).await;
    let mut c = conn.get().await.unwrap();
    let accounts: Vec<(String, String)> = c.query("SELECT code, name FROM accounts").await.unwrap();
    let invoices: Vec<(i64, String, Option<String>, String)> = c
        .query("SELECT id, ref, account_code, state FROM invoices")
        .await
        .unwrap();
    let lines: Vec<(i64, i64, String, i64)> = c
        .query("SELECT invoice_id, line_no, sku, qty FROM `lines`")
        .await
        .unwrap();
    let skus: Vec<(String, String)> = c.query("SELECT sku, title FROM skus").await.unwrap();
    let labels: Vec<(i64, String)> = c.query("SELECT id, label FROM labels").await.unwrap();
    let sku_labels: Vec<(String, i64)> = c
        .query("SELECT sku, label_id FROM sku_labels")
        .await
        .unwrap();
    let shipments: Vec<(i64, Option<i64>, String)> = c
        .query("SELECT id, invoice_id, carrier FROM shipments")
        .await
        .unwrap();
    let notes: Vec<(String, String)> = c
        .query("SELECT invoice_ref, body FROM notes")
        .await
        .unwrap();
    let eq = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
    let mut out = BTreeMap::new();
    for (id, r, acc, state) in &invoices {
        if state == "void" {
            continue;
        }
        let account = acc
            .as_ref()
            .and_then(|a| accounts.iter().find(|(code, _)| eq(code, a)))
            .map(|(code, name)| json!({"code": code, "name": name}))
            .unwrap_or(Json::Null);
        let mut mine: Vec<&(i64, i64, String, i64)> =
            lines.iter().filter(|l| l.0 == *id && l.3 > 0).collect();
        mine.sort_by_key(|l| std::cmp::Reverse(l.1));
        let lines_json: Vec<Json> = mine
            .iter()
            .map(|(_, no, sku, qty)| {
                let item = skus.iter().find(|(s, _)| eq(s, sku)).map(|(s, title)| {
                    let mut ids: Vec<i64> = sku_labels
                        .iter()
                        .filter(|(x, _)| eq(x, s))
                        .map(|(_, l)| *l)
                        .filter(|l| labels.iter().any(|(i, _)| i == l))
                        .collect();
                    ids.sort();
                    let names: Vec<Json> = ids
                        .iter()
                        .map(|l| json!(labels.iter().find(|(i, _)| i == l).unwrap().1))
                        .collect();
                    json!({"title": title, "labels": names})
                });
                json!({"line_no": no, "sku": sku, "quantity": qty, "item": item.unwrap_or(Json::Null)})
            })
            .collect();
        let mut ships: Vec<&(i64, Option<i64>, String)> =
            shipments.iter().filter(|s| s.1 == Some(*id)).collect();
        ships.sort_by_key(|s| s.0);
        let shipment = ships
            .first()
            .map(|(sid, _, carrier)| json!({"id": sid, "carrier": carrier}))
            .unwrap_or(Json::Null);
        let mut bodies: Vec<&String> = notes
            .iter()
            .filter(|(rf, _)| eq(rf, r))
            .map(|(_, b)| b)
            .collect();
        bodies.sort();
        out.insert(
            id.to_string(),
            json!({"id": id, "ref": r, "account_code": acc, "status": state,
                   "account": account, "lines": lines_json, "shipment": shipment, "notes": bodies}),
        );
    }
    out
}

/// Random changes on every table of the schema, keys (string, composite) included.
async fn changes(db: &str, seed: u64, n: usize) {
    let conn = mysql(db).await;
    let mut c = conn.get().await.unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut next = 1000;
    for _ in 0..n {
        next += 1;
        let (inv, acc, sku, lab) = (
            rng.i64(1..=62),
            rng.i64(1..=13),
            rng.i64(1..=16),
            rng.i64(1..=6),
        );
        let case = if rng.bool() { "ACC" } else { "acc" };
        let sql = match rng.u8(..22) {
            0 => format!("UPDATE invoices SET state = '{}' WHERE id = {inv}", ["open", "paid", "void"][rng.usize(..3)]),
            1 => format!("UPDATE invoices SET account_code = '{case}{acc}' WHERE id = {inv}"),
            2 => format!("UPDATE invoices SET account_code = NULL WHERE id = {inv}"),
            3 => format!("UPDATE IGNORE invoices SET ref = CONCAT('R-', {}) WHERE id = {inv}", rng.i64(1..=70)),
            4 => format!("INSERT IGNORE INTO invoices VALUES ({next}, 'R-{next}', '{case}{acc}', 'open')"),
            5 => format!("DELETE FROM invoices WHERE id = {inv}"),
            6 => format!("UPDATE accounts SET name = CONCAT(name, '+') WHERE code = 'acc{acc}'"),
            7 => format!("UPDATE IGNORE accounts SET code = IF(code = BINARY UPPER(code), LOWER(code), UPPER(code)) WHERE code = 'acc{acc}'"),
            8 => format!("UPDATE `lines` SET qty = {} WHERE invoice_id = {inv} AND line_no = {}", rng.i64(-1..4), rng.i64(1..=3)),
            9 => format!("UPDATE IGNORE `lines` SET invoice_id = {} WHERE invoice_id = {inv} AND line_no = {}", rng.i64(1..=62), rng.i64(1..=3)),
            10 => format!("UPDATE `lines` SET sku = '{}{sku}' WHERE invoice_id = {inv}", if rng.bool() { "SKU" } else { "sku" }),
            11 => format!("INSERT IGNORE INTO `lines` VALUES ({inv}, {}, 'sku{sku}', {})", rng.i64(4..9), rng.i64(0..4)),
            12 => format!("DELETE FROM `lines` WHERE invoice_id = {inv} AND line_no = {}", rng.i64(1..=3)),
            13 => format!("UPDATE skus SET title = CONCAT(title, '!') WHERE sku = 'sku{sku}'"),
            14 => format!("UPDATE IGNORE skus SET sku = IF(sku = BINARY UPPER(sku), LOWER(sku), UPPER(sku)) WHERE sku = 'sku{sku}'"),
            15 => format!("INSERT IGNORE INTO sku_labels VALUES ('SKU{sku}', {lab})"),
            16 => format!("DELETE FROM sku_labels WHERE sku = 'sku{sku}' AND label_id = {lab}"),
            17 => format!("UPDATE labels SET label = CONCAT(label, 'x') WHERE id = {lab}"),
            18 => format!("UPDATE IGNORE shipments SET invoice_id = {} WHERE id = {}", rng.i64(1..=62), rng.i64(1..=26)),
            19 => format!("DELETE FROM shipments WHERE id = {}", rng.i64(1..=26)),
            20 => format!("INSERT INTO notes VALUES ('{}-{inv}', 'note {next}')", if rng.bool() { "R" } else { "r" }),
            _ => format!("UPDATE notes SET invoice_ref = 'R-{inv}' WHERE body = 'note {}'", rng.i64(1..=80)),
        };
        c.query_drop(sql.as_str())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denormal_string_keys_composite_keys_one_to_one_scalars_and_transforms() {
    let seed = fastrand::u64(..);
    eprintln!("denormal seed: {seed}");
    let db = mariadb_database();
    let idx = index("denormal-kinds");
    let es = sink(&idx).await;
    let docs = documents(&db, vec![spec()], &es).await;
    let cdc = cdc_from_now(&db).await;
    copy(docs.snapshot("invoices").unwrap(), "invoices", es.clone()).await;
    assert_docs(&idx, &expected(&db).await);
    let run = run_stream(
        docs.binlog_stream("documents", cdc).unwrap(),
        es.clone(),
        stream_config(),
    );
    changes(&db, seed, 500).await;
    run.catch_up(&db).await;
    run.stop().await;
    assert_docs(&idx, &expected(&db).await);
}

fn mariadb_database() -> String {
    let db = datatrace_testkit::mariadb().create_database("denormal_kinds");
    exec(&db, SCHEMA);
    db
}
