//! Scale-out on Kafka with the CLI: one `datatrace run` reader (MySQL snapshot+cdc -> Kafka)
//! and three `datatrace run` workers in one consumer group (Kafka -> MySQL), while the source
//! is written to; one worker is killed with SIGKILL mid-stream. The target ends exactly equal
//! to the source.

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
    let dir = std::env::temp_dir().join(format!("dt-kafka-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(dir: &Path, job: &str, log: &str) -> Child {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    Command::new(BIN)
        .args(["run", job, "--log-every", "1"])
        .current_dir(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("datatrace runs")
}

/// Kills every child when the test ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const TABLE: &str = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), qty INT, price DECIMAL(12,2), seen DATETIME(6))";

#[test]
fn kafka_scaleout_three_workers_one_killed_target_ends_exactly_equal() {
    let kafka = datatrace_testkit::kafka();
    let src = db().create_database("kafka_so_src");
    let dst = db().create_database("kafka_so_dst");
    let mut seed = format!("USE `{src}`; {TABLE};");
    for i in 1..=800 {
        seed.push_str(&format!(
            "INSERT INTO items VALUES ({i}, 'item {i}', {i}, {i}.25, '2024-01-01 00:00:00.{i:06}');"
        ));
    }
    db().exec(&seed);
    db().exec(&format!("USE `{dst}`; {TABLE};"));
    let prefix = datatrace_testkit::unique_name("so");
    let dir = workdir("scaleout");
    std::fs::write(
        dir.join("reader.toml"),
        format!(
            "name = \"reader\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"items\"]\nmode = \"snapshot+cdc\"\n\
             cdc = {{ server_id = 9411, heartbeat_secs = 1 }}\n\
             [target]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic_prefix = \"{prefix}\"\npartitions = 6\n\
             [settings]\nlinger = 20\ncheckpoint_interval = 100\n",
            db().url_for(&src),
            kafka.bootstrap(),
        ),
    )
    .unwrap();
    for w in 0..3 {
        std::fs::write(
            dir.join(format!("worker{w}.toml")),
            format!(
                "name = \"worker{w}\"\n[source]\ntype = \"kafka\"\nbrokers = \"{}\"\ngroup = \"{prefix}-workers\"\n\
                 topics = [\"{prefix}.{src}.items\"]\nproperties = {{ \"session.timeout.ms\" = \"4000\" }}\n\
                 [target]\ntype = \"mysql\"\nurl = \"{}\"\n\
                 [settings]\nsink_concurrency = 2\nlinger = 20\nbatch_size = 200\n",
                kafka.bootstrap(),
                db().url_for(&dst),
            ),
        )
        .unwrap();
    }
    let mut children = Children(vec![run(&dir, "reader.toml", "reader.log")]);
    for w in 0..3 {
        children.0.push(run(
            &dir,
            &format!("worker{w}.toml"),
            &format!("worker{w}.log"),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (src, stop) = (src.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = 1 + (i * 7919) % 1000;
                db().exec(&format!(
                    "USE `{src}`; BEGIN; INSERT INTO items VALUES ({id}, 'new {i}', 0, 0.01, NOW(6)) \
                     ON DUPLICATE KEY UPDATE qty = qty + 1, name = 'upd {i}', price = price + 1.5, seen = NOW(6); \
                     DELETE FROM items WHERE id = {}; COMMIT;",
                    1 + (i * 104729) % 1000
                ));
            }
        })
    };
    // mid-stream, once it has written, one worker dies without a word
    std::thread::sleep(Duration::from_secs(6));
    let wrote = |log: &str| {
        std::fs::read_to_string(dir.join(log))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split("kafka: ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .replace(',', "")
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
    };
    assert!(
        wrote("worker2.log") > 0,
        "the victim had written nothing yet"
    );
    let victim = &mut children.0[2];
    victim.kill().unwrap();
    victim.wait().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let q = |d: &str| db().exec(&format!("SELECT * FROM `{d}`.items ORDER BY id"));
    let want = q(&src);
    assert!(want.lines().count() > 300);
    let started = Instant::now();
    loop {
        let got = q(&dst);
        if got == want {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let logs: String = ["reader.log", "worker0.log", "worker1.log", "worker2.log"]
                .iter()
                .map(|l| {
                    let text = std::fs::read_to_string(dir.join(l)).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    format!(
                        "--- {l}\n{}\n",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!(
                "the target did not converge: source {} rows, target {} rows\n{logs}",
                want.lines().count(),
                got.lines().count()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // the survivors went on without an error
    for w in 0..2 {
        let log = std::fs::read_to_string(dir.join(format!("worker{w}.log"))).unwrap();
        assert!(
            !log.contains(" ERROR ") && !log.contains("failed"),
            "worker{w}: {log}"
        );
    }
}
