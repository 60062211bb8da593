//! `CREATE TABLE` from a [`Schema`]: the same column types, charsets and keys when the schema
//! came from MySQL (its `native_type`s), mapped types otherwise.
//!
//! | neutral type            | MySQL column                                  |
//! |-------------------------|-----------------------------------------------|
//! | bool                    | `TINYINT(1)`                                  |
//! | int                     | `BIGINT`                                      |
//! | uint                    | `BIGINT UNSIGNED`                             |
//! | float                   | `DOUBLE`                                      |
//! | decimal(p, s)           | `DECIMAL(p, s)` (`DECIMAL(65, 30)` when p = 0)|
//! | string                  | `LONGTEXT`, `VARCHAR(255)` in a key           |
//! | bytes                   | `LONGBLOB`, `VARBINARY(255)` in a key         |
//! | date                    | `DATE`                                        |
//! | time                    | `TIME(6)`                                     |
//! | datetime                | `DATETIME(6)`                                 |
//! | timestamp               | `DATETIME(6)` holding UTC (TIMESTAMP stops in 2038) |
//! | json                    | `JSON`                                        |

use datatrace_core::{Column, DataType, Schema};

use crate::sql::{column_list, ident, table_ref};
use crate::types::ColumnKind;

/// The native type of `col` when it is a MySQL type consistent with the column's neutral
/// type (a schema from Elasticsearch carries `keyword` or `date` there, which must not be
/// taken as MySQL types).
pub fn usable_native(col: &Column) -> Option<&str> {
    let native = col.native_type.as_deref()?;
    let lower = native.to_ascii_lowercase();
    let base: String = lower
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let kind = if base == "json" {
        ColumnKind::Json
    } else {
        ColumnKind::parse(&base, &lower)?
    };
    let textual = matches!(kind, ColumnKind::Text | ColumnKind::Enum | ColumnKind::Set);
    if textual && !lower.contains("character set") {
        return None;
    }
    // MySQL's own COLUMN_TYPE always carries the length of these.
    if matches!(base.as_str(), "binary" | "varbinary" | "bit") && !lower.contains('(') {
        return None;
    }
    let same = kind.data_type() == col.data_type
        || (kind == ColumnKind::Bool && col.data_type == DataType::Int);
    same.then_some(native)
}

/// The MySQL type for a column without a usable native type.
pub fn mapped_type(data_type: DataType, in_key: bool) -> String {
    match data_type {
        DataType::Bool => "TINYINT(1)".into(),
        DataType::Int => "BIGINT".into(),
        DataType::UInt => "BIGINT UNSIGNED".into(),
        DataType::Float => "DOUBLE".into(),
        DataType::Decimal { precision: 0, .. } => "DECIMAL(65,30)".into(),
        DataType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        DataType::String if in_key => "VARCHAR(255)".into(),
        DataType::String => "LONGTEXT".into(),
        DataType::Bytes if in_key => "VARBINARY(255)".into(),
        DataType::Bytes => "LONGBLOB".into(),
        DataType::Date => "DATE".into(),
        DataType::Time => "TIME(6)".into(),
        DataType::DateTime | DataType::Timestamp => "DATETIME(6)".into(),
        DataType::Json => "JSON".into(),
    }
}

/// The comment of a table created with its unique keys deferred
/// ([`create_table_deferred_sql`]); the `ALTER TABLE` that adds the keys clears it in the
/// same statement, so it says, crash or not, whether the keys are still to be built.
pub const DEFERRED_KEYS_COMMENT: &str =
    "datatrace: unique keys deferred until the copy of this table ends";

/// `CREATE TABLE IF NOT EXISTS` for `schema` as `db.table`.
pub fn create_table_sql(db: &str, table: &str, schema: &Schema) -> String {
    create_table(db, table, schema, false)
}

/// `CREATE TABLE IF NOT EXISTS` for `schema` as `db.table` with the primary key only and
/// [`DEFERRED_KEYS_COMMENT`] as its comment: the unique keys ([`deferred_keys`]) are added
/// after the load, in one `ALTER TABLE` ([`add_keys_sql`]), as myloader does: building an
/// index from the loaded rows costs the server less than maintaining it row by row.
pub fn create_table_deferred_sql(db: &str, table: &str, schema: &Schema) -> String {
    create_table(db, table, schema, true)
}

/// The unique keys of `schema` other than its primary key, by column names: what
/// [`create_table_deferred_sql`] leaves out.
pub fn deferred_keys(schema: &Schema) -> Vec<Vec<String>> {
    schema
        .unique_keys()
        .iter()
        .filter(|k| k.as_slice() != schema.primary_key())
        .map(|k| {
            k.iter()
                .map(|&i| schema.columns()[i].name.clone())
                .collect()
        })
        .collect()
}

/// `ALTER TABLE db.table ADD UNIQUE KEY (..), .., COMMENT = ''`: adds `keys` and clears
/// [`DEFERRED_KEYS_COMMENT`] in one atomic statement.
pub fn add_keys_sql(db: &str, table: &str, keys: &[Vec<String>]) -> String {
    let mut clauses: Vec<String> = keys
        .iter()
        .map(|k| format!("ADD UNIQUE KEY ({})", column_list(k)))
        .collect();
    clauses.push("COMMENT = ''".into());
    format!(
        "ALTER TABLE {} {}",
        table_ref(db, table),
        clauses.join(", ")
    )
}

fn create_table(db: &str, table: &str, schema: &Schema, defer: bool) -> String {
    let keyed: Vec<usize> = schema
        .primary_key()
        .iter()
        .chain(schema.unique_keys().iter().flatten())
        .copied()
        .collect();
    let mut lines = Vec::new();
    for (i, col) in schema.columns().iter().enumerate() {
        let in_key = keyed.contains(&i);
        let ty = match usable_native(col) {
            Some(n) => n.to_string(),
            None => mapped_type(col.data_type, in_key),
        };
        let null = if col.nullable && !schema.primary_key().contains(&i) {
            "NULL"
        } else {
            "NOT NULL"
        };
        lines.push(format!("  {} {ty} {null}", ident(&col.name)));
    }
    let names = |k: &[usize]| -> Vec<String> {
        k.iter()
            .map(|&i| schema.columns()[i].name.clone())
            .collect()
    };
    if !schema.primary_key().is_empty() {
        lines.push(format!(
            "  PRIMARY KEY ({})",
            column_list(&names(schema.primary_key()))
        ));
    }
    for k in schema.unique_keys() {
        if k.as_slice() != schema.primary_key() && !defer {
            lines.push(format!("  UNIQUE KEY ({})", column_list(&names(k))));
        }
    }
    let comment = if defer {
        format!(" COMMENT = '{DEFERRED_KEYS_COMMENT}'")
    } else {
        String::new()
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4{comment}",
        table_ref(db, table),
        lines.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_types_from_mysql_are_kept() {
        let s = Schema::new(
            "t",
            vec![
                Column::new("id", DataType::UInt)
                    .not_null()
                    .native("bigint(20) unsigned"),
                Column::new("name", DataType::String)
                    .native("varchar(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci"),
                Column::new("doc", DataType::Json).native("json"),
                Column::new("kw", DataType::String).native("keyword"),
                Column::new("day", DataType::Timestamp).native("date"),
                Column::new("txt", DataType::String).native("text"),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap();
        let sql = create_table_sql("d", "t`x", &s);
        assert!(
            sql.starts_with("CREATE TABLE IF NOT EXISTS `d`.`t``x` ("),
            "{sql}"
        );
        assert!(sql.contains("`id` bigint(20) unsigned NOT NULL"), "{sql}");
        assert!(
            sql.contains("`name` varchar(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL"),
            "{sql}"
        );
        assert!(sql.contains("`doc` json NULL"), "{sql}");
        assert!(sql.contains("`kw` LONGTEXT NULL"), "{sql}");
        assert!(sql.contains("`day` DATETIME(6) NULL"), "{sql}");
        assert!(sql.contains("`txt` LONGTEXT NULL"), "{sql}");
        assert!(sql.contains("PRIMARY KEY (`id`)"), "{sql}");
    }

    #[test]
    fn deferred_tables_get_their_unique_keys_in_one_alter() {
        let s = Schema::new(
            "t",
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("a", DataType::String).not_null(),
                Column::new("b", DataType::Int),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap()
        .with_unique_key(&["a"])
        .unwrap()
        .with_unique_key(&["b", "a"])
        .unwrap();
        let now = create_table_sql("d", "t", &s);
        assert!(now.contains("UNIQUE KEY (`a`)"), "{now}");
        let later = create_table_deferred_sql("d", "t", &s);
        assert!(!later.contains("UNIQUE"), "{later}");
        assert!(later.contains("PRIMARY KEY (`id`)"), "{later}");
        assert!(
            later.ends_with(&format!("COMMENT = '{DEFERRED_KEYS_COMMENT}'")),
            "{later}"
        );
        let keys = deferred_keys(&s);
        assert_eq!(
            keys,
            vec![vec!["a".to_string()], vec!["b".into(), "a".into()]]
        );
        assert_eq!(
            add_keys_sql("d", "t", &keys),
            "ALTER TABLE `d`.`t` ADD UNIQUE KEY (`a`), ADD UNIQUE KEY (`b`, `a`), COMMENT = ''"
        );
    }

    #[test]
    fn key_strings_get_bounded_types() {
        let s = Schema::new("t", vec![Column::new("k", DataType::String)])
            .with_primary_key(&["k"])
            .unwrap();
        assert!(create_table_sql("d", "t", &s).contains("`k` VARCHAR(255) NOT NULL"));
    }
}
