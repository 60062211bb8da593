//! A connector of your own: a CSV file source written against the public `Source` trait (the
//! connector is the `CsvSource` below, about 110 lines with its docs), feeding the built-in Elasticsearch
//! sink. The header names the columns, `name:type` gives a type (`int`, `float`, `bool`,
//! `decimal(p,s)`; text otherwise), the first column is the primary key (the document id).
//! The source declares a checkpoint every 100 lines (the line number), so a stopped run
//! resumes after the last written line.
//!
//! ```sh
//! cargo run --example custom_connector
//! CSV_FILE=examples/data/products.csv ES_URL=http://127.0.0.1:9200 ES_INDEX=products-csv \
//!     cargo run --example custom_connector
//! ```
//!
//! Environment (defaults in brackets): `CSV_FILE` [`examples/data/products.csv`], `ES_URL`
//! [`http://127.0.0.1:9200`], `ES_INDEX` [`products-csv`].

use std::path::PathBuf;
use std::sync::Arc;

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, SinkConfig};
// `async_trait` comes with DataTrace: no dependency of your own for it.
use datatrace::{
    async_trait, BoxError, Column, DataType, Emitter, Error, Part, Pipeline, Position, Record,
    RunReport, Schema, Source, Value,
};
use tokio::io::AsyncBufReadExt;

// ---- the connector ---------------------------------------------------------------------

/// Reads a CSV file (RFC 4180 quoting, one record per line) as one unit.
pub struct CsvSource {
    path: PathBuf,
    schema: Arc<Schema>,
}

impl CsvSource {
    /// Reads the header of `path`; the schema is named after the file.
    pub async fn open(path: impl Into<PathBuf>) -> Result<CsvSource, BoxError> {
        let path = path.into();
        let file = tokio::fs::File::open(&path).await?;
        let header = tokio::io::BufReader::new(file).lines().next_line().await?;
        let header = header.ok_or_else(|| format!("{}: empty file", path.display()))?;
        let mut columns = Vec::new();
        for field in split_csv(&header) {
            let (name, ty) = field.split_once(':').unwrap_or((&field, "string"));
            let data_type = column_type(ty).ok_or(format!("column {name}: unknown type {ty:?}"))?;
            columns.push(Column::new(name, data_type));
        }
        let key = [columns.first().ok_or("no columns")?.name.clone()];
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let schema = Schema::new(stem.unwrap_or_else(|| "csv".into()), columns);
        let schema = Arc::new(schema.with_primary_key(&key)?);
        Ok(CsvSource { path, schema })
    }
}

/// `int`, `float`, `bool`, `string`, `decimal(p,s)`.
fn column_type(ty: &str) -> Option<DataType> {
    Some(match ty {
        "int" => DataType::Int,
        "float" => DataType::Float,
        "bool" => DataType::Bool,
        "string" => DataType::String,
        _ => {
            let ps = ty.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (p, s) = ps.split_once(',')?;
            let (precision, scale) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
            DataType::Decimal { precision, scale }
        }
    })
}

/// Splits one CSV line: commas separate fields, `"..."` quotes them, `""` is a quote.
fn split_csv(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted, mut chars) =
        (vec![], String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => cur.push(chars.next().unwrap_or('"')),
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// One cell as a `Value` of its column's type; an empty cell is NULL.
fn parse(text: &str, ty: DataType) -> Result<Value, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{text:?} is not a {ty}: {e}");
    Ok(match ty {
        _ if text.is_empty() => Value::Null,
        DataType::Int => Value::Int(text.parse().map_err(|e| bad(&e))?),
        DataType::Float => Value::Float(text.parse().map_err(|e| bad(&e))?),
        DataType::Bool => Value::Bool(text.parse().map_err(|e| bad(&e))?),
        DataType::Decimal { .. } => Value::Decimal(text.parse().map_err(|e| bad(&e))?),
        _ => Value::String(text.to_string()),
    })
}

#[async_trait]
impl Source for CsvSource {
    async fn schema(&self) -> datatrace::Result<Option<Arc<Schema>>> {
        Ok(Some(self.schema.clone()))
    }

    async fn read(
        &self,
        _: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace::Result<()> {
        let path = self.path.display();
        let fail = |n: u64, why| Error::source(self.schema.name(), format!("{path}:{n}: {why}"));
        let io = |e| Error::io(format!("reading {path}"), e);
        // The position is the number of the last line whose record was written.
        let done = from.and_then(|p| p.state.as_u64()).unwrap_or(1);
        let file = tokio::fs::File::open(&self.path).await.map_err(io)?;
        let mut lines = tokio::io::BufReader::new(file).lines();
        let mut n = 0u64;
        while let Some(line) = lines.next_line().await.map_err(io)? {
            n += 1;
            if n <= done || line.trim().is_empty() {
                continue;
            }
            let (fields, columns) = (split_csv(&line), self.schema.columns());
            if fields.len() != columns.len() {
                let why = format!("{} fields, expected {}", fields.len(), columns.len());
                return Err(fail(n, why));
            }
            let mut values = Vec::with_capacity(fields.len());
            for (f, c) in fields.iter().zip(columns) {
                let value = parse(f, c.data_type);
                values.push(value.map_err(|e| fail(n, format!("column {}: {e}", c.name)))?);
            }
            out.emit(Record::read(self.schema.clone(), values)).await?;
            if n.is_multiple_of(100) {
                out.checkpoint(Position::new(n.into())).await?;
            }
        }
        out.checkpoint(Position::new(n.max(done).into())).await?;
        Ok(())
    }
}

// ---- using it with a built-in sink ---------------------------------------------------------

/// What to load where.
pub struct Config {
    /// The CSV file.
    pub csv_file: PathBuf,
    /// The Elasticsearch / OpenSearch node.
    pub es_url: String,
    /// The target index.
    pub index: String,
}

impl Config {
    /// Reads the settings through `var` (the environment in `main`), with local defaults.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str, default: &str| var(k).unwrap_or_else(|| default.to_string());
        let default_csv = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/products.csv");
        Config {
            csv_file: get("CSV_FILE", default_csv).into(),
            es_url: get("ES_URL", "http://127.0.0.1:9200"),
            index: get("ES_INDEX", "products-csv"),
        }
    }
}

/// Loads the file into the index (created from the CSV header's types).
pub async fn run(cfg: &Config) -> Result<RunReport, BoxError> {
    let source = CsvSource::open(&cfg.csv_file).await?;
    let es = EsConnection::new([cfg.es_url.as_str()]);
    let sink_config = SinkConfig {
        index: cfg.index.clone(),
        ..Default::default()
    };
    let sink = EsSink::connect(&es, sink_config).await?;
    // Any closure is a transform: here, upper-case the `sku` column on the way.
    let upper_sku = |mut r: Record| {
        if let Some(i) = r.schema.index_of("sku") {
            if let Value::String(s) = &mut r.values[i] {
                *s = s.to_uppercase();
            }
        }
        Some(r)
    };
    let report = Pipeline::new("csv", Arc::new(source), Arc::new(sink))
        .transform(upper_sku)
        .run()
        .await?;
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cfg = Config::from_lookup(|k| std::env::var(k).ok());
    println!(
        "loading {} into {} (index {})",
        cfg.csv_file.display(),
        cfg.es_url,
        cfg.index
    );
    let r = run(&cfg).await?;
    println!(
        "{} rows read, {} written, {} rejected in {:.2} s ({:.0} rows/s)",
        r.read,
        r.written,
        r.rejected,
        r.duration.as_secs_f64(),
        r.rows_per_sec()
    );
    Ok(())
}
