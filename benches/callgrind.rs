//! The three hot paths, one after the other on `CG_ROWS` rows (default 20,000) of the other
//! benchmarks' 10-column table, for counting instructions per row under
//! `valgrind --tool=callgrind` (`scripts/callgrind.sh`, which builds this, runs it under
//! callgrind and prints each path's inclusive instruction count per row); run natively
//! (`cargo bench -p datatrace --bench callgrind`) it prints each phase's wall time per
//! row, the figure instruction counts stand beside.
//!
//! 1. binlog decode: the rows inserted after a recorded position, read back by
//!    `BinlogSource` (rows events decoded into records, `Reader::rows` and
//!    `TableDecoder::decode_image`) into the emitter's channel, no sink;
//! 2. Elasticsearch bulk encode: the table's records (read once, beforehand) from memory
//!    through `EsSink` (default settings) into the testkit's bulk endpoint, which runs in a
//!    child process (not under callgrind);
//! 3. MySQL row encode: the same records through `MySqlSink` (default settings: the
//!    `LOAD DATA LOCAL INFILE` bulk path, `load_data::encode_row`) into an empty table.
//!
//! Everything runs on one thread (a current-thread runtime), so the counts of a function
//! include everything it calls, and nothing else.

use std::sync::Arc;
use std::time::Instant;

use datatrace::es::{ConnectionConfig as EsConnection, EsSink, SinkConfig};
use datatrace::mysql::binlog::{current_position, BinlogSource, CdcOptions, StartAt};
use datatrace::mysql::{
    table_info, ConnectionConfig, MySqlConnection, MySqlSink, MySqlSource, SinkOptions,
    SourceOptions,
};
use datatrace::testing::{CollectingSink, MemorySource};
use datatrace::{Emitted, Emitter, Part, Pipeline, Record, Source};
use datatrace_testkit::{bench_table, child};

const ROLE: &str = "DT_CALLGRIND_ROLE";

fn main() {
    if std::env::var(ROLE).is_ok() {
        return child::serve_bulk_endpoint(datatrace_testkit::bulk::BulkEndpoint::start());
    }
    let rows: u64 = std::env::var("CG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = datatrace_testkit::mariadb();
    let (mut endpoint, es_url) = child::spawn_line(ROLE, "endpoint");
    let src = db.create_database("cg_src");
    let dst = db.create_database("cg_dst");
    bench_table::create(db, &src, "t", 0);
    bench_table::create(db, &dst, "t", 0);
    rt.block_on(async {
        let connect = |d: &str| {
            let cfg = ConnectionConfig::new(db.url_for(d));
            async move { MySqlConnection::connect(&cfg).await.expect("connect") }
        };
        let conn = connect(&src).await;
        let start = current_position(&conn).await.expect("binlog position");
        db.exec(&format!(
            "USE `{src}`; INSERT INTO t {} FROM seq_1_to_{rows}",
            bench_table::FILL
        ));

        let t = Instant::now();
        decode(conn.clone(), &src, &start, rows).await;
        phase("binlog decode (BinlogSource -> channel)", t, rows);

        // The records, read once and kept: the sinks below encode the same values.
        let info = table_info(&conn, &src, "t").await.expect("table");
        let source =
            Arc::new(MySqlSource::new(conn, info, SourceOptions::default()).expect("source"));
        let collected = Arc::new(CollectingSink::new());
        Pipeline::new("read", source, collected.clone())
            .run()
            .await
            .expect("read the table");
        let records: Vec<Record> = collected.records();
        assert_eq!(records.len() as u64, rows);

        let t = Instant::now();
        let cfg = SinkConfig {
            index: datatrace_testkit::unique_name("cg"),
            ..Default::default()
        };
        let sink = EsSink::connect(&EsConnection::new([es_url.clone()]), cfg)
            .await
            .expect("es sink");
        let report = Pipeline::new(
            "es",
            Arc::new(MemorySource::new(records.clone())),
            Arc::new(sink),
        )
        .run()
        .await
        .expect("es copy");
        assert_eq!(report.written, rows);
        phase(
            "Elasticsearch bulk encode (memory -> EsSink -> endpoint)",
            t,
            rows,
        );

        let t = Instant::now();
        let sink = MySqlSink::new(connect(&dst).await, SinkOptions::default()).expect("sink");
        let report = Pipeline::new(
            "mysql",
            Arc::new(MemorySource::new(records)),
            Arc::new(sink),
        )
        .run()
        .await
        .expect("mysql copy");
        assert_eq!(report.written, rows);
        phase("MySQL row encode (memory -> MySqlSink -> MariaDB)", t, rows);
    });
    drop(endpoint.stdin.take());
    let _ = endpoint.wait();
    for d in [&src, &dst] {
        db.exec(&format!("DROP DATABASE `{d}`"));
    }
}

fn phase(name: &str, t: Instant, rows: u64) {
    println!(
        "{name}: {rows} rows, {:.2} µs per row (wall)",
        t.elapsed().as_secs_f64() * 1e6 / rows as f64
    );
}

/// Reads `rows` row events after `start` with a binlog source, into the emitter's channel.
async fn decode(
    conn: MySqlConnection,
    db: &str,
    start: &datatrace::mysql::BinlogPosition,
    rows: u64,
) {
    let opts = CdcOptions {
        server_id: 9911,
        start: StartAt::Position {
            file: start.file.clone(),
            pos: start.pos,
        },
        ..CdcOptions::tables([format!("{db}.*")])
    };
    let source = BinlogSource::new(conn, opts).expect("binlog source");
    let (mut em, mut rx) = Emitter::for_test(1000, 64);
    let task = tokio::spawn(async move { source.read(&Part::whole(), None, &mut em).await });
    let mut n = 0u64;
    while n < rows {
        match rx.recv().await {
            Some(Emitted::Records(r)) => n += r.len() as u64,
            Some(_) => {}
            None => panic!("the binlog stream ended after {n} rows"),
        }
    }
    task.abort();
}
