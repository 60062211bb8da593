//! The two sides of a unit as the check reads them: scans in chunks, and lookups of rows by
//! key (`WHERE key IN (..)` on MySQL, an `ids` query on Elasticsearch), each through the
//! connectors' own readers so that values come out exactly as a copy reads them.

use std::future::Future;
use std::sync::Arc;

use datatrace_core::{Emitted, Emitter, Part, Record, Source, Value};
use datatrace_es::{EsClient, EsSource, SourceConfig};
use datatrace_mysql::types::write_literal;
use datatrace_mysql::{MySqlConnection, MySqlSource, SourceOptions, TableInfo};
use serde_json::{json, Value as Json};

/// Results of the check's own reads; the message names what was read.
pub type R<T> = Result<T, String>;

/// Records a chunk of a scan holds at most, and channel depth (memory bound).
const CHANNEL_CHUNKS: usize = 2;

/// Reads `part` of `source` in chunks of at most `chunk` records and hands each to `f`.
/// Memory: a few chunks, whatever the part's size.
pub async fn read_chunks<F, Fut>(
    source: Arc<dyn Source>,
    part: Part,
    chunk: usize,
    mut f: F,
) -> R<()>
where
    F: FnMut(Vec<Record>) -> Fut,
    Fut: Future<Output = R<()>>,
{
    let (mut em, mut rx) = Emitter::for_test(chunk.max(1), CHANNEL_CHUNKS);
    let reader = tokio::spawn(async move {
        let r = source.read(&part, None, &mut em).await;
        if r.is_ok() {
            let _ = em.flush().await;
        }
        r.map_err(|e| e.to_string())
    });
    let mut failed = None;
    while let Some(item) = rx.recv().await {
        if let Emitted::Records(records) = item {
            if let Err(e) = f(records).await {
                failed = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failed {
        reader.abort();
        return Err(e);
    }
    match reader.await {
        Ok(r) => r,
        Err(e) => Err(format!("reader task failed: {e}")),
    }
}

/// Every record of every part (for lookups, whose size is bounded by the batch).
async fn read_all(source: Arc<dyn Source>, parts: Vec<Part>) -> R<Vec<Record>> {
    let mut out = Vec::new();
    for part in parts {
        read_chunks(source.clone(), part, 1000, |mut records| {
            out.append(&mut records);
            async { Ok(()) }
        })
        .await?;
    }
    Ok(out)
}

/// `(`a`) IN (1, 2)` / `(`a`, `b`) IN ((1, 'x'), ..)` for these keys.
pub fn in_condition(key_names: &[String], keys: &[Vec<Value>]) -> R<String> {
    let cols: Vec<String> = key_names
        .iter()
        .map(|c| datatrace_mysql::sql::ident(c))
        .collect();
    let mut sql = format!("({}) IN (", cols.join(", "));
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        if key.len() != key_names.len() {
            return Err(format!(
                "key {:?} does not have the {} column(s) of the key ({})",
                key.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                key_names.len(),
                key_names.join(", ")
            ));
        }
        if key_names.len() > 1 {
            sql.push('(');
        }
        for (j, v) in key.iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            write_literal(&mut sql, v).map_err(|e| format!("key value {v}: {e}"))?;
        }
        if key_names.len() > 1 {
            sql.push(')');
        }
    }
    sql.push(')');
    Ok(sql)
}

/// A MySQL table as the check reads it.
#[derive(Clone)]
pub struct MySqlTable {
    /// The server.
    pub conn: MySqlConnection,
    /// The table, with the key the reads use.
    pub table: TableInfo,
    /// Read settings (zero dates, filter, key columns, chunk size).
    pub opts: SourceOptions,
}

impl MySqlTable {
    /// A reader of this table with extra settings.
    pub fn source(&self, opts: SourceOptions) -> R<Arc<MySqlSource>> {
        MySqlSource::new(self.conn.clone(), self.table.clone(), opts)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// The key column names.
    pub fn key_names(&self) -> Vec<String> {
        self.table.key_names()
    }

    /// The key of one of its records.
    pub fn key_of(&self, r: &Record) -> Vec<Value> {
        self.table
            .key
            .iter()
            .map(|&i| r.values.get(i).cloned().unwrap_or(Value::Null))
            .collect()
    }

    /// Key ranges of about `chunk_rows` rows each, tiling the key space.
    pub async fn parts(&self, chunk_rows: u64) -> R<(Arc<MySqlSource>, Vec<Part>)> {
        let opts = SourceOptions {
            chunk_rows: chunk_rows.max(1),
            consistent_snapshot: false,
            ..self.opts.clone()
        };
        let source = self.source(opts)?;
        let parts = source.split(1_000_000).await.map_err(|e| e.to_string())?;
        Ok((source, parts))
    }

    /// The rows with these keys (those the `filter`, if any, keeps).
    pub async fn lookup(&self, keys: &[Vec<Value>]) -> R<Vec<Record>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cond = in_condition(&self.key_names(), keys)?;
        let filter = match &self.opts.filter {
            Some(f) => format!("({f}) AND {cond}"),
            None => cond,
        };
        let opts = SourceOptions {
            filter: Some(filter),
            consistent_snapshot: false,
            page_rows: (keys.len() as u64 + 1).max(100),
            ..self.opts.clone()
        };
        let source = self.source(opts)?;
        read_all(source, vec![Part::whole()]).await
    }
}

/// An Elasticsearch index as the check reads it.
#[derive(Clone)]
pub struct EsIndex {
    /// The cluster.
    pub client: EsClient,
    /// Read settings, `index` naming the index.
    pub cfg: SourceConfig,
}

impl EsIndex {
    fn source(&self, cfg: SourceConfig) -> R<Arc<EsSource>> {
        EsSource::new(self.client.clone(), cfg)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// A reader of the whole index in `parallelism` slices.
    pub async fn parts(&self, parallelism: usize) -> R<(Arc<EsSource>, Vec<Part>)> {
        let source = self.source(self.cfg.clone())?;
        let parts = source
            .split(parallelism.max(1))
            .await
            .map_err(|e| e.to_string())?;
        Ok((source, parts))
    }

    /// The documents with these ids (those the configured `query`, if any, matches).
    pub async fn lookup(&self, ids: &[String]) -> R<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let by_ids = json!({"ids": {"values": ids}});
        let query = match &self.cfg.query {
            Some(q) => json!({"bool": {"filter": [q, by_ids]}}),
            None => by_ids,
        };
        let cfg = SourceConfig {
            query: Some(query),
            slices: 1,
            page_size: ids.len().clamp(1, 10_000),
            ..self.cfg.clone()
        };
        let source = self.source(cfg)?;
        let parts = source.split(1).await.map_err(|e| e.to_string())?;
        read_all(source, parts).await
    }
}

/// A raw (`_id` + `_source`) record's id and document.
pub fn raw_doc(r: &Record) -> (String, Json) {
    let id = r.values.first().map(|v| v.to_string()).unwrap_or_default();
    let doc = match r.values.get(1) {
        Some(Value::Json(j)) => j.clone(),
        _ => Json::Object(Default::default()),
    };
    (id, doc)
}
