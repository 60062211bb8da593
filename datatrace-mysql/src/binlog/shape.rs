//! Shape reconciliation: the table as a binlog event saw it, when the table changed since
//! the event was written (columns added or dropped, renamed or dropped tables), built from
//! the table's current shape and the table map's FULL row metadata (names, types,
//! signedness, character sets, primary key).

use std::sync::Arc;

use datatrace_core::Schema;
use mysql_async::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_async::consts::ColumnType;

use crate::schema::TableInfo;
use crate::types::ColumnKind;

/// The column names of a table map (FULL row metadata), if present.
pub fn table_map_names(tme: &TableMapEvent<'_>) -> Option<Vec<String>> {
    let ex = OptionalMetaExtractor::new(tme.iter_optional_meta()).ok()?;
    let names: Vec<String> = ex
        .iter_column_name()
        .filter_map(|n| n.ok().map(|n| n.name().into_owned()))
        .collect();
    (names.len() as u64 == tme.columns_count()).then_some(names)
}

/// The table's columns that are not among `names`.
pub fn missing_columns(info: &TableInfo, names: &[String]) -> Vec<String> {
    info.schema
        .columns()
        .iter()
        .map(|c| c.name.clone())
        .filter(|c| !names.iter().any(|n| n == c))
        .collect()
}

/// `info` without the columns `drop` (for events written before those columns were added:
/// their records carry the table as it was).
pub fn narrow(info: &TableInfo, drop: &[String]) -> TableInfo {
    let mut columns = Vec::new();
    let mut kinds = Vec::new();
    for (c, k) in info.schema.columns().iter().zip(&info.kinds) {
        if !drop.contains(&c.name) {
            columns.push(c.clone());
            kinds.push(*k);
        }
    }
    let key_names: Vec<String> = info
        .schema
        .primary_key()
        .iter()
        .map(|&i| info.schema.columns()[i].name.clone())
        .filter(|n| !drop.contains(n))
        .collect();
    let mut schema = Schema::new(info.schema.name(), columns);
    if let Some(ns) = info.schema.namespace() {
        schema = schema.with_namespace(ns);
    }
    if key_names.len() == info.schema.primary_key().len() {
        if let Ok(s) = schema.clone().with_primary_key(&key_names) {
            schema = s;
        }
    }
    let key = schema.primary_key().to_vec();
    TableInfo {
        schema: Arc::new(schema),
        kinds,
        key,
        ..info.clone()
    }
}

/// The table as an event written before later DDL saw it: the event's columns in its
/// order (FULL row metadata names), each taken from `info` when the table still has it, else
/// derived from the table map (type, signedness, character set; a dropped ENUM reads as its
/// index, a dropped SET as its bitmask bytes). The key is `info`'s when all its columns are
/// in the event. `None` without column names.
pub fn event_shape(tme: &TableMapEvent<'_>, info: &TableInfo) -> Option<TableInfo> {
    use datatrace_core::Column;
    let names = table_map_names(tme)?;
    let ex = OptionalMetaExtractor::new(tme.iter_optional_meta()).ok();
    let signed: Vec<bool> = ex
        .as_ref()
        .map(|e| e.iter_signedness().collect())
        .unwrap_or_default();
    // The charset iterator repeats the default charset without end: take one per character
    // column.
    let n_char = (0..names.len())
        .filter(|&i| {
            tme.get_column_type(i)
                .ok()
                .flatten()
                .is_some_and(|t| t.is_character_type())
        })
        .count();
    let charsets: Vec<u16> = ex
        .as_ref()
        .map(|e| {
            e.iter_charset()
                .take(n_char)
                .filter_map(|c| c.ok())
                .collect()
        })
        .unwrap_or_default();
    let (mut numeric_i, mut char_i) = (0usize, 0usize);
    let mut columns = Vec::with_capacity(names.len());
    let mut kinds = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let ty = tme.get_column_type(i).ok().flatten()?;
        let unsigned = if ty.is_numeric_type() {
            numeric_i += 1;
            signed.get(numeric_i - 1).copied().unwrap_or(false)
        } else {
            false
        };
        let binary = if ty.is_character_type() {
            char_i += 1;
            charsets.get(char_i - 1).copied() == Some(63)
        } else {
            false
        };
        if let Some(t) = info.schema.index_of(name) {
            columns.push(info.schema.columns()[t].clone());
            kinds.push(info.kinds[t]);
            continue;
        }
        let meta = tme.get_column_metadata(i).unwrap_or(&[]);
        let kind = map_kind(ty, meta, unsigned, binary);
        columns.push(Column::new(name.clone(), kind.data_type()));
        kinds.push(kind);
    }
    let mut schema = Schema::new(info.schema.name(), columns);
    if let Some(ns) = info.schema.namespace() {
        schema = schema.with_namespace(ns);
    }
    let key_names: Vec<String> = info
        .schema
        .primary_key()
        .iter()
        .map(|&i| info.schema.columns()[i].name.clone())
        .collect();
    if !key_names.is_empty() && key_names.iter().all(|k| names.contains(k)) {
        if let Ok(s) = schema.clone().with_primary_key(&key_names) {
            schema = s;
        }
    }
    let key = schema.primary_key().to_vec();
    Some(TableInfo {
        schema: Arc::new(schema),
        kinds,
        key,
        ..info.clone()
    })
}

/// The kind of a column the table no longer has, from its table map type and metadata (a
/// dropped ENUM reads as its index, a dropped SET as its bitmask bytes).
fn map_kind(ty: ColumnType, meta: &[u8], unsigned: bool, binary: bool) -> ColumnKind {
    use ColumnType as T;
    match ty {
        T::MYSQL_TYPE_TINY
        | T::MYSQL_TYPE_SHORT
        | T::MYSQL_TYPE_INT24
        | T::MYSQL_TYPE_LONG
        | T::MYSQL_TYPE_LONGLONG => ColumnKind::Int { unsigned },
        T::MYSQL_TYPE_NEWDECIMAL | T::MYSQL_TYPE_DECIMAL => ColumnKind::Decimal {
            precision: meta.first().copied().unwrap_or(10),
            scale: meta.get(1).copied().unwrap_or(0),
        },
        T::MYSQL_TYPE_FLOAT => ColumnKind::Float,
        T::MYSQL_TYPE_DOUBLE => ColumnKind::Double,
        T::MYSQL_TYPE_BIT => {
            let bits = meta.get(1).copied().unwrap_or(0) as u16 * 8
                + meta.first().copied().unwrap_or(1) as u16;
            ColumnKind::Bit(bits.clamp(1, 64) as u8)
        }
        T::MYSQL_TYPE_ENUM => ColumnKind::Int { unsigned: true },
        T::MYSQL_TYPE_SET => ColumnKind::Binary,
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => ColumnKind::Date,
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => ColumnKind::Time,
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => ColumnKind::DateTime,
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => ColumnKind::Timestamp,
        T::MYSQL_TYPE_YEAR => ColumnKind::Year,
        T::MYSQL_TYPE_JSON => ColumnKind::Json,
        T::MYSQL_TYPE_GEOMETRY => ColumnKind::Geometry,
        _ if binary => ColumnKind::Binary,
        _ => ColumnKind::Text,
    }
}

/// The table as its table map alone describes it (FULL row metadata: names, types, primary
/// key), for rows of a table that no longer exists under that name (renamed or dropped since
/// the event was written). `None` without column names.
pub fn map_shape(tme: &TableMapEvent<'_>, db: &str, table: &str) -> Option<TableInfo> {
    let empty = TableInfo {
        database: db.to_string(),
        name: table.to_string(),
        schema: Arc::new(Schema::new(table, Vec::new()).with_namespace(db)),
        kinds: Vec::new(),
        key: Vec::new(),
        key_source: crate::schema::KeySource::None,
        estimated_rows: 0,
    };
    let shape = event_shape(tme, &empty)?;
    Some(with_map_key(tme, shape))
}

/// The primary key column names of a table map (FULL row metadata), if it has one.
pub fn table_map_key(tme: &TableMapEvent<'_>) -> Option<Vec<String>> {
    use mysql_common::binlog::events::OptionalMetadataField as F;
    let names = table_map_names(tme)?;
    let mut key: Vec<usize> = Vec::new();
    for field in tme.iter_optional_meta().flatten() {
        match field {
            F::SimplePrimaryKey(k) => key.extend(k.iter_indexes().flatten().map(|i| i as usize)),
            F::PrimaryKeyWithPrefix(k) => {
                key.extend(k.iter_keys().flatten().map(|k| k.column_index() as usize))
            }
            _ => {}
        }
    }
    let key: Option<Vec<String>> = key.iter().map(|&i| names.get(i).cloned()).collect();
    key.filter(|k| !k.is_empty())
}

/// `info` with the table map's primary key when `info` has none (its shape was read from
/// `information_schema` while a DDL statement ran: the columns seen, the keys not yet, or no
/// longer).
pub fn with_map_key(tme: &TableMapEvent<'_>, mut info: TableInfo) -> TableInfo {
    if !info.schema.primary_key().is_empty() {
        return info;
    }
    let Some(names) = table_map_key(tme) else {
        return info;
    };
    if let Ok(s) = (*info.schema).clone().with_primary_key(&names) {
        info.key = s.primary_key().to_vec();
        info.schema = Arc::new(s);
        info.key_source = crate::schema::KeySource::Primary;
    }
    info
}
