//! Throughput of the Elasticsearch sink and source against the testkit's bulk endpoint.
//!
//! `cargo bench -p datatrace-es --bench bulk` (env `BENCH_ROWS`, default 500000;
//! `BENCH_PART=write` or `read` for one half).
//!
//! The endpoint runs in a child process (this binary re-executed), so the CPU seconds and
//! the peak RSS printed are those of the client side only: generator, pipeline, NDJSON
//! serialization, HTTP, answer parsing. The endpoint parses every request fully (see
//! `datatrace_testkit::bulk`); its CPU is printed separately.

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace_core::testing::{DiscardSink, GeneratorSource};
use datatrace_core::{Pipeline, PipelineConfig};
use datatrace_es::{ConnectionConfig, EsSink, EsSource, SinkConfig, SourceConfig};
use datatrace_testkit::{child, procstat};

const CHILD: &str = "DT_BULK_ENDPOINT_CHILD";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        let ep = datatrace_testkit::bulk::BulkEndpoint::with_corpus(1_000_000, 1000);
        return child::serve_bulk_endpoint(ep);
    }
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let (mut child, url) = child::spawn_line(CHILD, "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "rows per run: {rows}; document size: {} bytes of JSON",
        doc_size()
    );
    println!("| scenario | docs/s | MB/s | CPU s per 1M docs (client) | CPU s per 1M docs (endpoint) | peak RSS MB |");
    println!("|---|---|---|---|---|---|");
    let part = std::env::var("BENCH_PART").unwrap_or_default();
    let (writes, reads) = (part != "read", part != "write");
    rt.block_on(async {
        // Baseline: generator and pipeline alone.
        let m = Measure::start(&child);
        let sink = Arc::new(DiscardSink::new());
        let report = Pipeline::new("gen", generator(rows), sink)
            .config(config(1))
            .run()
            .await
            .expect("baseline");
        m.print("generator -> discard (baseline)", report.written, 0, &child);

        for inflight in [1usize, 2, 4].into_iter().filter(|_| writes) {
            let mut conn = ConnectionConfig::new([url.as_str()]);
            conn.timeout_ms = 120_000;
            let sink = EsSink::connect(
                &conn,
                SinkConfig {
                    index: "bench".into(),
                    max_docs: 1000,
                    max_in_flight: inflight,
                    create_index: false,
                    ..Default::default()
                },
            )
            .await
            .expect("sink");
            let sink = Arc::new(sink);
            let m = Measure::start(&child);
            let report = Pipeline::new("bench", generator(rows), sink.clone())
                .config(config(inflight))
                .run()
                .await
                .expect("bench run");
            assert_eq!(report.written, rows);
            m.print(
                &format!("generator -> EsSink, {inflight} in flight"),
                report.written,
                sink.stats().bytes,
                &child,
            );
        }

        for slices in [1usize, 2].into_iter().filter(|_| reads) {
            let conn = ConnectionConfig::new([url.as_str()]);
            let source = EsSource::connect(
                &conn,
                SourceConfig {
                    slices,
                    page_size: 1000,
                    ..SourceConfig::new("corpus")
                },
            )
            .await
            .expect("source");
            let m = Measure::start(&child);
            let report = Pipeline::new("read", Arc::new(source), Arc::new(DiscardSink::new()))
                .config(PipelineConfig {
                    batch_size: 1000,
                    read_parallelism: slices,
                    ..Default::default()
                })
                .run()
                .await
                .expect("read run");
            m.print(
                &format!("EsSource (PIT pages) -> discard, {slices} slices"),
                report.read,
                report.read * 1000,
                &child,
            );
        }
    });
    drop(child.stdin.take());
    let _ = child.wait();
}

fn generator(rows: u64) -> Arc<GeneratorSource> {
    // 8 columns: id, 2 strings of 450 characters, ints, floats, decimals: ~1 KB of JSON.
    Arc::new(GeneratorSource::new(rows, 8, 450))
}

fn doc_size() -> usize {
    let r = GeneratorSource::new(1, 8, 450).row(0);
    let mut buf = Vec::new();
    let plan = datatrace_es::bulk::DocPlan::new(&r.schema, &Default::default());
    plan.write_doc(&mut buf, &r.schema, &r.values, true)
        .unwrap();
    buf.len()
}

fn config(inflight: usize) -> PipelineConfig {
    PipelineConfig {
        batch_size: 1000,
        sink_concurrency: inflight,
        read_parallelism: 1,
        channel_capacity: 4,
        linger: Duration::from_millis(50),
        ..Default::default()
    }
}

struct Measure {
    t: Instant,
    cpu: f64,
    child_cpu: f64,
}

impl Measure {
    fn start(child: &Child) -> Measure {
        Measure {
            t: Instant::now(),
            cpu: procstat::cpu_secs("self"),
            child_cpu: procstat::cpu_secs(&child.id().to_string()),
        }
    }

    fn print(&self, name: &str, docs: u64, bytes: u64, child: &Child) {
        let secs = self.t.elapsed().as_secs_f64();
        let cpu = procstat::cpu_secs("self") - self.cpu;
        let ccpu = procstat::cpu_secs(&child.id().to_string()) - self.child_cpu;
        let per_m = |c: f64| c / docs.max(1) as f64 * 1e6;
        println!(
            "| {name} | {:.0} | {:.1} | {:.2} | {:.2} | {:.0} |",
            docs as f64 / secs,
            bytes as f64 / 1e6 / secs,
            per_m(cpu),
            per_m(ccpu),
            procstat::peak_rss_mb()
        );
    }
}
