//! A fenced binlog reader: three instances of one `datatrace run` reader job (MySQL
//! `snapshot+cdc` -> Kafka, `fenced = true`), one active at a time: the active one copies the
//! table (its rows are there before the readers start), then streams its changes. The active one is killed with SIGKILL and a
//! standby takes over from the last checkpoint committed with its events; the next active one
//! is paused (SIGSTOP) until the last takes over, then revived (SIGCONT): the zombie is fenced
//! and stops with an error saying so. A worker copies the topic into MySQL: the target ends
//! exactly equal to the source. A consumer reading committed data sees every change event
//! (snapshot rows and changes) exactly once, in order per key, across both takeovers (the events the dead instance and
//! the zombie wrote in their open transactions were aborted, and the instance taking over
//! skips the events its predecessor's last commit held beyond its checkpoint); a consumer
//! reading uncommitted data sees the aborted events as well.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

fn db() -> &'static datatrace_testkit::MariaDb {
    datatrace_testkit::mariadb()
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-fenced-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(dir: &Path, job: &str, log: &str) -> Child {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    Command::new(BIN)
        .args(["-v", "run", job, "--log-every", "1"])
        .current_dir(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("datatrace runs")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Kills every child when the test ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const TABLE: &str =
    "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), qty INT, price DECIMAL(12,2))";

fn log_of(dir: &Path, log: &str) -> String {
    std::fs::read_to_string(dir.join(log)).unwrap_or_default()
}

/// Waits until exactly one of `readers` (not in `gone`) says it is the active writer.
fn active(dir: &Path, readers: &[&str], gone: &[usize]) -> usize {
    let started = Instant::now();
    loop {
        let now: Vec<usize> = (0..readers.len())
            .filter(|i| !gone.contains(i))
            .filter(|&i| log_of(dir, readers[i]).contains("this instance is the active writer"))
            .collect();
        if now.len() == 1 {
            return now[0];
        }
        assert!(now.len() < 2, "two active writers at once: {now:?}");
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no instance took over"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kafka_fenced_reader_takes_over_after_kill_9_and_fences_a_revived_zombie() {
    let kafka = datatrace_testkit::kafka();
    let src = db().create_database("kafka_fence_src");
    let dst = db().create_database("kafka_fence_dst");
    db().exec(&format!("USE `{src}`; {TABLE};"));
    db().exec(&format!("USE `{dst}`; {TABLE};"));
    // rows for the copy
    let rows: Vec<String> = (1..=300)
        .map(|id| format!("({id}, 'row {id}', {id}, {id}.25)"))
        .collect();
    db().exec(&format!(
        "INSERT INTO `{src}`.items VALUES {}",
        rows.join(", ")
    ));
    let prefix = datatrace_testkit::unique_name("fence");
    let dir = workdir("fenced");
    let readers = ["reader0.log", "reader1.log", "reader2.log"];
    for i in 0..3 {
        let d = dir.join(format!("r{i}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("reader.toml"),
            format!(
                "name = \"reader\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"items\"]\nmode = \"snapshot+cdc\"\n\
                 cdc = {{ server_id = {}, heartbeat_secs = 1 }}\n\
                 [target]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic_prefix = \"{prefix}\"\npartitions = 3\n\
                 fenced = true\nfence_session_timeout_ms = 3000\n\
                 [settings]\nlinger = 20\ncheckpoint_interval = 100\n",
                db().url_for(&src),
                9500 + i,
                kafka.bootstrap(),
            ),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("worker.toml"),
        format!(
            "name = \"worker\"\n[source]\ntype = \"kafka\"\nbrokers = \"{}\"\ngroup = \"{prefix}-w\"\n\
             topics = [\"{prefix}.{src}.items\"]\n\
             [target]\ntype = \"mysql\"\nurl = \"{}\"\n[settings]\nlinger = 20\n",
            kafka.bootstrap(),
            db().url_for(&dst),
        ),
    )
    .unwrap();
    let mut children = Children(Vec::new());
    for (i, log) in readers.iter().enumerate() {
        children.0.push(run(
            &dir.join(format!("r{i}")),
            "reader.toml",
            &format!("../{log}"),
        ));
    }
    let first = active(&dir, &readers, &[]);
    // the first active reader has started its stream: give it a moment to be at the end
    std::thread::sleep(Duration::from_secs(2));
    children.0.push(run(&dir, "worker.toml", "worker.log"));

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (src, stop) = (src.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = 1 + (i * 7919) % 500;
                db().exec(&format!(
                    "USE `{src}`; BEGIN; INSERT INTO items VALUES ({id}, 'new {i}', 0, 0.01) \
                     ON DUPLICATE KEY UPDATE qty = qty + 1, name = 'upd {i}', price = price + 1.5; \
                     DELETE FROM items WHERE id = {}; COMMIT;",
                    1 + (i * 104729) % 500
                ));
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // the copy is done and the stream runs (the first change reached the target), then ...
    let started = Instant::now();
    while !db()
        .exec(&format!(
            "SELECT COUNT(*) FROM `{dst}`.items WHERE name LIKE 'new %' OR name LIKE 'upd %'"
        ))
        .trim()
        .starts_with(|c: char| c != '0')
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no change reached the target: {}",
            log_of(&dir, readers[first])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    // the active reader dies without a word
    children.0[first].kill().unwrap();
    children.0[first].wait().unwrap();
    let second = active(&dir, &readers, &[first]);
    std::thread::sleep(Duration::from_secs(3));
    // the next one stops answering (a paused process, a partitioned machine) ...
    signal(&children.0[second], "-STOP");
    let third = active(&dir, &readers, &[first, second]);
    std::thread::sleep(Duration::from_secs(2));
    // ... and comes back, a zombie: it is fenced and stops
    signal(&children.0[second], "-CONT");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = children.0[second].try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the zombie went on: {}",
            log_of(&dir, readers[second])
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success());
    let zombie = log_of(&dir, readers[second]);
    assert!(zombie.contains("fenced"), "{zombie}");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let q = |d: &str| db().exec(&format!("SELECT * FROM `{d}`.items ORDER BY id"));
    let want = q(&src);
    assert!(want.lines().count() > 100);
    let started = Instant::now();
    loop {
        let got = q(&dst);
        if got == want {
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let tail = |l: &str| {
                let t = log_of(&dir, l);
                let v: Vec<&str> = t.lines().rev().take(12).collect();
                format!(
                    "--- {l}\n{}\n",
                    v.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            };
            panic!(
                "the target did not converge: source {} rows, target {} rows\n{}{}{}",
                want.lines().count(),
                got.lines().count(),
                tail(readers[third]),
                tail(readers[second]),
                tail("worker.log")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // every event exactly once for read_committed consumers, in order per key
    let topic = format!("{prefix}.{src}.items");
    let committed = events(&kafka.bootstrap(), &topic, "read_committed");
    let copied = committed.iter().filter(|e| e.2 == "r").count();
    assert_eq!(
        copied, 300,
        "snapshot rows seen by a read_committed consumer"
    );
    let mut seen = std::collections::HashMap::new();
    let mut last_per_key: std::collections::HashMap<Vec<u8>, u64> = Default::default();
    for (key, ordinal, op, at) in &committed {
        if let Some(first) = seen.insert((key.clone(), *ordinal, op.clone()), at.clone()) {
            panic!(
                "a read_committed consumer saw an event twice: key {}, ordinal {ordinal}, op {op}, at {first} and {at}",
                String::from_utf8_lossy(key)
            );
        }
        let last = last_per_key.entry(key.clone()).or_insert(0);
        assert!(
            *ordinal >= *last,
            "events of key {} out of order at {at}",
            String::from_utf8_lossy(key)
        );
        *last = *ordinal;
    }
    let uncommitted = events(&kafka.bootstrap(), &topic, "read_uncommitted");
    eprintln!(
        "fenced reader: {} change events committed, {} visible to read_uncommitted consumers",
        committed.len(),
        uncommitted.len()
    );
    assert!(uncommitted.len() >= committed.len());
}

/// The change events of `topic` (not tombstones) as `(key, source.ordinal, op, where)`, read
/// from the start to the end with `isolation.level` = `isolation`.
fn events(brokers: &str, topic: &str, isolation: &str) -> Vec<(Vec<u8>, u64, String, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", datatrace_testkit::unique_name("check"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let partitions = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata")
        .topics()[0]
        .partitions()
        .len();
    let mut out = Vec::new();
    let mut at_end = std::collections::BTreeSet::new();
    let started = Instant::now();
    while at_end.len() < partitions {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "reading {topic} took too long"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let Some(value) = m.payload() else { continue };
                let v: serde_json::Value = serde_json::from_slice(value).expect("JSON");
                let p = &v["payload"];
                out.push((
                    m.key().unwrap_or_default().to_vec(),
                    p["source"]["ordinal"].as_u64().unwrap_or(0),
                    p["op"].as_str().unwrap_or_default().to_string(),
                    format!("[{}]@{}", m.partition(), m.offset()),
                ));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            _ => {}
        }
    }
    out
}
