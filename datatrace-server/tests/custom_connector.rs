//! A connector of a user's own, registered from this test (as a program embedding the
//! server registers it): its `type` works in job files (`validate`, `run`, errors listing the
//! known types) and in `datatrace serve` (`GET /api/connectors`, tasks that use it inline)
//! like a built-in one, without the server's code naming it.

mod serve_common;

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datatrace_core::testing::{CollectingSink, MemorySource};
use datatrace_core::{CheckpointStore, Column, DataType, Record, Schema, SchemaRef, Sink, Value};
use datatrace_server::cli::{Cli, Command, RunArgs, ValidateArgs};
use datatrace_server::commands::{run::run, validate::validate, EXIT_OK};
use datatrace_server::connectors::{
    register, registry, Connector, ConnectorUi, JobCtx, SourceEndpoint, SourceUnit, SourceUnits,
    Target, TargetEndpoint,
};
use datatrace_server::job_file::error::{from_value, with_type_key};
use datatrace_server::job_file::{JobFile, JobFileError};
use datatrace_server::serve::{open, router};
use datatrace_server::ui::ProgressMode;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use serve_common::{request, wait_for, TOKEN};

// ---- the user's connector: `type = "countdown"` reads, `type = "bucket"` writes ---------

/// `[source] type = "countdown"`: `rows` numbered rows in one unit named `unit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountdownSpec {
    rows: u32,
    #[serde(default = "default_unit")]
    unit: String,
}

fn default_unit() -> String {
    "numbers".into()
}

/// `[target] type = "bucket"`: keeps what it is given in memory under `name`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketSpec {
    name: String,
}

/// The buckets written, by name.
fn buckets() -> &'static Mutex<HashMap<String, Arc<CollectingSink>>> {
    static BUCKETS: OnceLock<Mutex<HashMap<String, Arc<CollectingSink>>>> = OnceLock::new();
    BUCKETS.get_or_init(Default::default)
}

fn bucket(name: &str) -> Arc<CollectingSink> {
    buckets()
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_default()
        .clone()
}

struct Countdown;

impl Connector for Countdown {
    fn types(&self) -> &'static [&'static str] {
        &["countdown"]
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
        let spec: CountdownSpec =
            from_value(file, at, Json::Object(keys)).map_err(with_type_key)?;
        Ok(Arc::new(spec))
    }

    fn ui(&self) -> Option<ConnectorUi> {
        Some(inline("countdown", "Countdown (a test's own source)"))
    }
}

struct Bucket;

impl Connector for Bucket {
    fn types(&self) -> &'static [&'static str] {
        &["bucket"]
    }

    fn writes(&self) -> bool {
        true
    }

    fn parse_target(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Json>,
    ) -> Result<Arc<dyn TargetEndpoint>, JobFileError> {
        let spec: BucketSpec = from_value(file, at, Json::Object(keys)).map_err(with_type_key)?;
        Ok(Arc::new(spec))
    }

    fn ui(&self) -> Option<ConnectorUi> {
        Some(inline("bucket", "Bucket (a test's own target)"))
    }
}

fn inline(kind: &'static str, label: &'static str) -> ConnectorUi {
    ConnectorUi {
        kind,
        label,
        data_source: false,
        url_schemes: &[],
        url_example: "",
        username: false,
        api_key: false,
        units_key: "unit",
        units_label: "Unit",
        all_units: "",
        target_key: "name",
        target_label: "Bucket",
        stream_modes: None,
        task_fields: &[],
    }
}

fn schema() -> SchemaRef {
    Arc::new(
        Schema::new(
            "numbers",
            vec![
                Column::new("id", DataType::Int),
                Column::new("label", DataType::String),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    )
}

#[async_trait]
impl SourceEndpoint for CountdownSpec {
    fn kind(&self) -> &'static str {
        "countdown"
    }

    fn describe(&self) -> String {
        format!("countdown: {} rows", self.rows)
    }

    async fn discover(
        &self,
        _job: JobCtx<'_>,
        _store: &Arc<dyn CheckpointStore>,
    ) -> Result<SourceUnits, JobFileError> {
        let schema = schema();
        let records = (0..self.rows)
            .rev()
            .map(|i| {
                Record::read(
                    schema.clone(),
                    vec![Value::Int(i64::from(i)), Value::String(format!("n{i}"))],
                )
            })
            .collect();
        Ok(SourceUnits {
            units: vec![SourceUnit::new(
                self.unit.clone(),
                Arc::new(MemorySource::new(records)),
            )],
            endpoint: None,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl TargetEndpoint for BucketSpec {
    fn kind(&self) -> &'static str {
        "bucket"
    }

    fn describe(&self) -> String {
        format!("bucket {:?}", self.name)
    }

    async fn connect(&self, _job: JobCtx<'_>) -> Result<Box<dyn Target>, JobFileError> {
        Ok(Box::new(Connected(bucket(&self.name))))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Connected(Arc<CollectingSink>);

#[async_trait]
impl Target for Connected {
    async fn sink_for(
        &self,
        _job: JobCtx<'_>,
        unit: &str,
        _schema: Option<&SchemaRef>,
        _transformed: Option<SchemaRef>,
        _same_source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        Ok((self.0.clone(), format!("{unit} (in a bucket)")))
    }

    fn replay_sink(&self) -> Arc<dyn Sink> {
        self.0.clone()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Registers the connectors (each test may be the first to run).
fn setup() {
    register(Arc::new(Countdown));
    register(Arc::new(Bucket));
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-custom-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ids(sink: &CollectingSink) -> Vec<i64> {
    let mut ids: Vec<i64> = sink
        .records()
        .iter()
        .map(|r| match r.get("id") {
            Some(Value::Int(i)) => *i,
            other => panic!("id {other:?}"),
        })
        .collect();
    ids.sort_unstable();
    ids
}

// ---- job files -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_connector_is_parsed_validated_and_run_from_a_job_file() {
    setup();
    let reg = registry();
    assert!(reg.source_types().contains(&"countdown"));
    assert!(reg.target_types().contains(&"bucket"));
    assert!(!reg.source_types().contains(&"bucket"), "a target only");

    let dir = workdir("run");
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        "name = \"custom\"\n[source]\ntype = \"countdown\"\nrows = 250\n\
         [target]\ntype = \"bucket\"\nname = \"from-a-job-file\"\n",
    )
    .unwrap();
    let parsed = JobFile::load(&job).unwrap();
    assert_eq!(parsed.source.kind(), "countdown");
    assert!(parsed.source.get::<CountdownSpec>().is_some());
    assert_eq!(parsed.target.describe(), "bucket \"from-a-job-file\"");

    let args = ValidateArgs {
        job: job.clone(),
        offline: false,
    };
    assert_eq!(validate(&args, 0).await, EXIT_OK);
    let args = RunArgs {
        job: job.clone(),
        progress: ProgressMode::None,
        log_every: 5.0,
        restart: false,
    };
    assert_eq!(run(&args, 0).await, EXIT_OK);
    assert_eq!(
        ids(&bucket("from-a-job-file")),
        (0..250).collect::<Vec<_>>(),
        "every row of the custom source reached the custom target once"
    );
}

#[test]
fn custom_connector_errors_name_the_key_and_list_it_among_the_types() {
    setup();
    let parse = |text: &str| {
        JobFile::parse("job.toml", text, Path::new("/jobs"), &|_| None)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = parse(
        "name = \"j\"\n[source]\ntype = \"countdown\"\nrow = 5\n[target]\ntype = \"bucket\"\nname = \"x\"\n",
    );
    assert!(
        e.starts_with("job.toml: source.row: unknown key, expected one of: type, rows, unit"),
        "{e}"
    );
    let e = parse(
        "name = \"j\"\n[source]\ntype = \"nope\"\n[target]\ntype = \"bucket\"\nname = \"x\"\n",
    );
    assert!(
        e.starts_with("job.toml: source.type: unknown type \"nope\"") && e.contains("countdown"),
        "{e}"
    );
    let e = parse(
        "name = \"j\"\n[source]\ntype = \"bucket\"\nname = \"x\"\n[target]\ntype = \"bucket\"\nname = \"x\"\n",
    );
    assert!(
        e.starts_with("job.toml: source.type: "),
        "a target only: {e}"
    );
}

// ---- datatrace serve -------------------------------------------------------------------

/// The server of this process (so it knows the registered connectors), on a free port.
fn start_server(dir: &Path) -> String {
    // The command line's own parsing, so the defaults are the server's.
    let data = dir.join("data");
    let cli = <Cli as clap::Parser>::parse_from([
        "datatrace".as_ref(),
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--token".as_ref(),
        TOKEN.as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    let Command::Serve(args) = cli.command else {
        unreachable!("serve")
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = open(&args).await.expect("the server opens");
            let listener = tokio::net::TcpListener::bind(&args.listen).await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            axum::serve(listener, router(app)).await.unwrap();
        });
    });
    rx.recv().expect("the server starts")
}

fn call(addr: &str, method: &str, path: &str, body: Option<Json>) -> (u16, Json) {
    let (status, text) = request(
        addr,
        method,
        path,
        Some(TOKEN),
        body.map(|b| b.to_string()).as_deref(),
    );
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

#[test]
fn custom_connector_appears_in_serve_and_runs_a_task() {
    setup();
    let dir = workdir("serve");
    let addr = start_server(&dir);

    let (st, list) = call(&addr, "GET", "/api/connectors", None);
    assert_eq!(st, 200, "{list}");
    let find = |kind: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} in {list}"))
    };
    let countdown = find("countdown");
    assert_eq!(
        (
            &countdown["reads"],
            &countdown["writes"],
            &countdown["data_source"]
        ),
        (&json!(true), &json!(false), &json!(false))
    );
    assert_eq!(find("bucket")["writes"], json!(true));
    assert_eq!(find("mysql")["data_source"], json!(true), "built-ins stay");

    let (st, task) = call(
        &addr,
        "POST",
        "/api/tasks",
        Some(
            json!({"name": "custom", "source": {"type": "countdown", "rows": 120, "unit": "n"},
                    "target": {"type": "bucket", "name": "from-serve"}}),
        ),
    );
    assert_eq!(st, 201, "{task}");
    let id = task["id"].as_i64().unwrap();
    let (st, e) = call(&addr, "POST", &format!("/api/tasks/{id}/start"), None);
    assert!((200..300).contains(&st), "{st} {e}");
    wait_for(60, "the task is done", || {
        call(&addr, "GET", &format!("/api/tasks/{id}"), None).1["status"] == "done"
    });
    assert_eq!(ids(&bucket("from-serve")), (0..120).collect::<Vec<_>>());

    // A streaming mode needs a connector with change streams: the custom one has none.
    let (st, e) = call(
        &addr,
        "POST",
        "/api/tasks",
        Some(json!({"name": "live", "mode": "incremental",
                    "source": {"type": "countdown", "rows": 1},
                    "target": {"type": "bucket", "name": "x"}})),
    );
    assert_eq!((st, e["field"].as_str()), (400, Some("mode")), "{e}");
}
