//! Your own connector in job files: a `datatrace` binary that also knows `type = "lines"`, a
//! source reading a text file one record per line (`n`, the line number, is the key; `text`
//! the line). It is registered in one place, [`register`], before the command line runs;
//! `run`, `validate` and `serve` then take it like a built-in connector, and it writes to
//! every built-in target (MySQL, Elasticsearch, Kafka, discard).
//!
//! ```sh
//! cargo run -p datatrace-server --example custom_source               # a demo job into discard
//! cargo run -p datatrace-server --example custom_source -- run job.toml
//! ```
//!
//! ```toml
//! name = "lines-to-es"
//! [source]
//! type = "lines"
//! path = "README.md"
//! [target]
//! type = "elasticsearch"
//! url = "http://127.0.0.1:9200"
//! index = "readme-lines"
//! ```

use std::any::Any;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{
    CheckpointStore, Column, DataType, Emitter, Error, Part, Position, Record, Schema, SchemaRef,
    Source, Value,
};
use datatrace_server::connectors::{
    register, Connector, JobCtx, SourceEndpoint, SourceUnit, SourceUnits,
};
use datatrace_server::job_file::error::{from_value, with_type_key};
use datatrace_server::job_file::JobFileError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use tokio::io::AsyncBufReadExt;

// ---- the source: what reads ------------------------------------------------------------

/// Reads a text file, one record per line; resumes after the last line written.
struct LinesSource {
    path: PathBuf,
    schema: SchemaRef,
}

/// The resume position: the number of the last line whose record was written.
#[derive(Serialize, Deserialize)]
struct After {
    line: u64,
}

#[async_trait]
impl Source for LinesSource {
    async fn schema(&self) -> datatrace_core::Result<Option<SchemaRef>> {
        Ok(Some(self.schema.clone()))
    }

    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        let done = match from {
            Some(p) => {
                let after = p.state_as::<After>(&part.id, "a line number");
                let damaged = |e| Error::DamagedCheckpoint {
                    unit: self.schema.name().to_owned(),
                    source: Box::new(e),
                };
                after.map_err(damaged)?.line
            }
            None => 0,
        };
        let io = |e| Error::io(format!("reading {}", self.path.display()), e);
        let file = tokio::fs::File::open(&self.path).await.map_err(io)?;
        let mut lines = tokio::io::BufReader::new(file).lines();
        let mut n = 0u64;
        while let Some(line) = lines.next_line().await.map_err(io)? {
            n += 1;
            if n <= done {
                continue;
            }
            let values = vec![Value::UInt(n), Value::String(line)];
            out.emit(Record::read(self.schema.clone(), values)).await?;
            if n.is_multiple_of(1000) {
                out.checkpoint(Position::of(&After { line: n })).await?;
            }
        }
        out.checkpoint(Position::of(&After { line: n })).await?;
        Ok(())
    }
}

// ---- the connector: how job files name it ----------------------------------------------

/// `[source] type = "lines"`: its keys, checked by serde (unknown keys are named).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinesSpec {
    /// The file (relative to the working directory).
    path: PathBuf,
}

struct LinesConnector;

impl Connector for LinesConnector {
    fn types(&self) -> &'static [&'static str] {
        &["lines"]
    }

    fn reads(&self) -> bool {
        true
    }

    fn parse_source(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Json>,
    ) -> Result<Arc<dyn SourceEndpoint>, JobFileError> {
        let spec: LinesSpec = from_value(file, at, Json::Object(keys)).map_err(with_type_key)?;
        Ok(Arc::new(spec))
    }
}

#[async_trait]
impl SourceEndpoint for LinesSpec {
    fn kind(&self) -> &'static str {
        "lines"
    }

    fn describe(&self) -> String {
        format!("lines of {}", self.path.display())
    }

    async fn discover(
        &self,
        job: JobCtx<'_>,
        _store: &Arc<dyn CheckpointStore>,
    ) -> Result<SourceUnits, JobFileError> {
        if !self.path.is_file() {
            return Err(job.error("source.path", "no such file"));
        }
        let name = self
            .path
            .file_stem()
            .map_or("lines".into(), |s| s.to_string_lossy().into_owned());
        let columns = vec![
            Column::new("n", DataType::UInt),
            Column::new("text", DataType::String),
        ];
        let schema = Schema::new(name.clone(), columns)
            .with_primary_key(&["n"])
            .map_err(|e| job.error("source", e))?;
        let source = LinesSource {
            path: self.path.clone(),
            schema: Arc::new(schema),
        };
        Ok(SourceUnits {
            units: vec![SourceUnit::new(name, Arc::new(source))],
            endpoint: None,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

// ---- the binary ------------------------------------------------------------------------

fn main() -> ExitCode {
    // One line adds the connector; everything else is the stock command line.
    register(Arc::new(LinesConnector));
    if std::env::args().len() > 1 {
        return datatrace_server::commands::main();
    }
    // No arguments: a demo job copying this file's lines into `discard`.
    let dir = std::env::temp_dir().join(format!("datatrace-lines-{}", std::process::id()));
    let job = dir.join("job.toml");
    let text = format!(
        "name = \"lines-demo\"\n[source]\ntype = \"lines\"\npath = {:?}\n[target]\ntype = \"discard\"\n",
        file!()
    );
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&job, text)) {
        eprintln!("error: {}: {e}", job.display());
        return ExitCode::FAILURE;
    }
    let cli = <datatrace_server::cli::Cli as clap::Parser>::parse_from([
        "datatrace".as_ref(),
        "run".as_ref(),
        job.as_os_str(),
    ]);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(datatrace_server::commands::execute(cli));
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::from(code)
}
