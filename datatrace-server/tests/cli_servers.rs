//! The built `datatrace` binary against the testkit's MariaDB and osmem-server: validation
//! errors that name the unreachable URL or the missing table, and MySQL -> MySQL and
//! MySQL -> Elasticsearch jobs compared row by row / document by document.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datatrace_testkit::{mariadb, osmem, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_datatrace");

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dt-srv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn datatrace(dir: &Path, job: &str, args: &[&str]) -> Output {
    std::fs::write(dir.join("job.toml"), job).unwrap();
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("datatrace runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// A source database with two tables of `n` rows each, of assorted types.
fn source_db(n: u32) -> String {
    let db = mariadb().create_database("dtsrc");
    mariadb().exec(&format!(
        "CREATE TABLE {db}.users (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, \
           balance DECIMAL(12,2), born DATE, active BOOLEAN, note TEXT);
         CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, user_id INT, total DECIMAL(10,2), \
           placed DATETIME(3), status ENUM('new','paid','shipped'));"
    ));
    let mut users = Vec::new();
    let mut orders = Vec::new();
    for i in 1..=n {
        let note = if i % 7 == 0 {
            "NULL".to_owned()
        } else {
            format!("'note {i} é'")
        };
        users.push(format!(
            "({i}, 'user{i}', {}.{:02}, '19{:02}-0{}-1{}', {}, {note})",
            i * 3,
            i % 100,
            50 + i % 50,
            1 + i % 9,
            i % 10,
            i % 2
        ));
        orders.push(format!(
            "({}, {i}, {}.5, '2024-01-0{} 10:00:00.{:03}', '{}')",
            i + 1_000_000,
            i,
            1 + i % 9,
            i % 1000,
            ["new", "paid", "shipped"][(i % 3) as usize]
        ));
    }
    mariadb().exec(&format!(
        "INSERT INTO {db}.users VALUES {}; INSERT INTO {db}.orders VALUES {};",
        users.join(","),
        orders.join(",")
    ));
    db
}

#[test]
fn validate_names_an_unreachable_mysql_server() {
    let dir = workdir("unreachable-mysql");
    let port = closed_port();
    let job = format!(
        "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"mysql://root:hunter2@127.0.0.1:{port}/shop\"\n\
         tables = [\"shop.*\"]\nconnect_timeout_secs = 2\n[target]\ntype = \"discard\"\n"
    );
    let out = datatrace(&dir, &job, &["validate", "job.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "error: job.toml: source.url: cannot connect to mysql://root:***@127.0.0.1:{port}/shop: \
         connecting to 127.0.0.1:{port}: "
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!text(&out.stdout).contains("hunter2"));
}

#[test]
fn validate_names_an_unreachable_elasticsearch_server() {
    let dir = workdir("unreachable-es");
    let port = closed_port();
    let job = format!(
        "name = \"j\"\n[source]\ntype = \"generator\"\n[target]\ntype = \"elasticsearch\"\n\
         url = \"http://127.0.0.1:{port}\"\nretry = {{ max_attempts = 1, initial_backoff = 10, max_backoff = 10 }}\n"
    );
    let out = datatrace(&dir, &job, &["validate", "job.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected =
        format!("error: job.toml: target.url: cannot reach the cluster at http://127.0.0.1:{port}");
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn validate_names_a_missing_table_and_an_empty_pattern() {
    let dir = workdir("missing-table");
    let db = source_db(3);
    let url = mariadb().url_for(&db);
    let job = |tables: &str| {
        format!(
            "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"{url}\"\ntables = {tables}\n\
             [target]\ntype = \"discard\"\n"
        )
    };
    let out = datatrace(
        &dir,
        &job(&format!("[\"{db}.users\", \"{db}.nope\"]")),
        &["validate", "job.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: job.toml: source.tables[1]: selecting table {db}.nope: table not found: \
             Table '{db}.nope' doesn't exist\n"
        )
    );
    let out = datatrace(&dir, &job("[\"zz_*\"]"), &["validate", "job.toml"]);
    assert_eq!(
        text(&out.stderr),
        format!("error: job.toml: source.tables[0]: no table matches \"zz_*\" on {url}\n")
    );
    let out = datatrace(
        &dir,
        &job("[\"users\", \"orders\"]"),
        &["validate", "job.toml"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "units:        2\n  {db}.users -> {db}.users (discarded)"
        )),
        "{stdout}"
    );
}

/// Every row of `db.table` as text, in key order.
fn rows(db: &str, table: &str) -> String {
    mariadb().exec(&format!("SELECT * FROM `{db}`.`{table}` ORDER BY 1"))
}

#[test]
fn mysql_to_mysql_copies_every_table_exactly_and_skips_them_next_time() {
    let dir = workdir("my2my");
    let src = source_db(300);
    let dst = mariadb().create_database("dtdst");
    let job = format!(
        "name = \"my2my\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"*\"]\n\
         [target]\ntype = \"mysql\"\nurl = \"{}\"\ntable = \"{{table}}_copy\"\n\
         [settings]\nconcurrency = 2\nbatch_size = 100\n",
        mariadb().url_for(&src),
        mariadb().url_for(&dst)
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for t in ["users", "orders"] {
        assert_eq!(rows(&src, t), rows(&dst, &format!("{t}_copy")), "table {t}");
        assert!(
            stderr.contains(&format!("[my2my] {src}.{t}: done, 300")),
            "{stderr}"
        );
    }
    assert_eq!(rows(&src, "users").lines().count(), 300);

    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("2 unit(s) done before (skipped)"));
}

#[test]
fn mysql_to_elasticsearch_copies_every_row_as_a_document() {
    let dir = workdir("my2es");
    let src = source_db(200);
    let prefix = unique_name("dt");
    let job = format!(
        "name = \"my2es\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"users\", \"orders\"]\n\
         [target]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{{prefix}}-{{table}}\"\nprefix = \"{prefix}\"\n\
         refresh = \"wait_for\"\n",
        mariadb().url_for(&src),
        osmem().url()
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let index = format!("{prefix}-users");
    osmem().request("POST", &format!("/{index}/_refresh"), None);
    let found = osmem()
        .request("GET", &format!("/{index}/_search?size=1000&sort=id"), None)
        .json();
    let hits = found["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 200, "{found}");
    // Document by document against the rows, under the documented mapping: DECIMAL as a
    // number with the same digits, DATE as "yyyy-MM-dd", BOOLEAN as true/false, NULL as null.
    let expected = mariadb().exec(&format!(
        "SELECT id, name, balance, born, active, IFNULL(note, 'NULL') FROM {src}.users ORDER BY id"
    ));
    for (hit, row) in hits.iter().zip(expected.lines()) {
        let cells: Vec<&str> = row.split('\t').collect();
        let doc = &hit["_source"];
        assert_eq!(hit["_id"], cells[0], "{hit}");
        assert_eq!(doc["id"].as_i64().unwrap().to_string(), cells[0]);
        assert_eq!(doc["name"], cells[1]);
        assert_eq!(
            doc["balance"].as_f64().unwrap(),
            cells[2].parse::<f64>().unwrap(),
            "{hit}"
        );
        assert_eq!(doc["born"], cells[3]);
        assert_eq!(doc["active"].as_bool().unwrap(), cells[4] == "1", "{hit}");
        match cells[5] {
            "NULL" => assert!(doc["note"].is_null(), "{hit}"),
            note => assert_eq!(doc["note"], note),
        }
    }
    let orders = osmem()
        .request("GET", &format!("/{prefix}-orders/_count"), None)
        .json();
    assert_eq!(orders["count"], 200, "{orders}");
}

/// Seconds since the epoch in nanoseconds, as a cheap source of variety for kill points.
fn jitter(max_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos % max_ms
}

#[test]
fn kill_9_during_a_multi_table_job_then_run_again_gives_an_exact_copy() {
    let dir = workdir("kill9");
    let src = mariadb().create_database("dtkill");
    let dst = mariadb().create_database("dtkilldst");
    for t in ["t1", "t2", "t3"] {
        mariadb().exec(&format!(
            "CREATE TABLE {src}.{t} (id INT PRIMARY KEY, v VARCHAR(32), n DECIMAL(8,2));
             INSERT INTO {src}.{t} SELECT seq, CONCAT('{t}-', seq), seq / 4 FROM {src}.seq_1_to_1500;"
        ));
    }
    let job = |limit: &str| {
        format!(
            "name = \"kill9\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t*\"]\n\
             page_rows = 300\ncheckpoint_rows = 100\n[target]\ntype = \"mysql\"\nurl = \"{}\"\n\
             [settings]\nbatch_size = 100\ncheckpoint_interval = 20\n{limit}",
            mariadb().url_for(&src),
            mariadb().url_for(&dst)
        )
    };
    // About 1.5 s per table, one table at a time; killed somewhere in the 4.5 s.
    std::fs::write(
        dir.join("job.toml"),
        job("rate_limit = { records_per_sec = 600 }\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "job.toml"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500 + jitter(3500)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let done_before: Vec<String> = ["t1", "t2", "t3"]
        .iter()
        .filter(|t| {
            let cp = dir.join(format!(".datatrace/kill9/{src}.{t}.json"));
            std::fs::read_to_string(cp).is_ok_and(|s| s.contains("\"state\": \"done\""))
        })
        .map(|t| format!("{src}.{t}"))
        .collect();
    let out = datatrace(&dir, &job(""), &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    eprintln!("done before the kill: {done_before:?}\n{stdout}");
    for t in ["t1", "t2", "t3"] {
        assert_eq!(rows(&src, t), rows(&dst, t), "table {t}");
        let unit = format!("{src}.{t}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{unit} ")))
            .unwrap_or_else(|| panic!("no row for {unit}: {stdout}"));
        if done_before.contains(&unit) {
            assert!(
                line.contains("done before"),
                "finished units are not redone: {stdout}"
            );
        }
    }
    assert_eq!(rows(&dst, "t2").lines().count(), 1500);
}

/// An index of `n` documents with an explicit mapping.
fn source_index(n: u32) -> String {
    let index = unique_name("dtsrc");
    let mapping = r#"{"mappings": {"properties": {
        "title": {"type": "keyword"}, "views": {"type": "long"},
        "price": {"type": "double"}, "published": {"type": "date", "format": "strict_date"},
        "draft": {"type": "boolean"}}}}"#;
    let r = osmem().request("PUT", &format!("/{index}"), Some(mapping));
    assert!(r.status < 300, "{}", r.body);
    let mut bulk = String::new();
    for i in 1..=n {
        bulk.push_str(&format!("{{\"index\": {{\"_id\": \"doc-{i}\"}}}}\n"));
        bulk.push_str(&format!(
            "{{\"title\": \"title {i}\", \"views\": {}, \"price\": {}.25, \"published\": \"2024-03-{:02}\", \"draft\": {}}}\n",
            i * 10,
            i,
            1 + i % 28,
            i % 2 == 0
        ));
    }
    let r = osmem().request("POST", &format!("/{index}/_bulk?refresh=true"), Some(&bulk));
    assert!(
        r.status < 300 && !r.json()["errors"].as_bool().unwrap_or(true),
        "{}",
        r.body
    );
    index
}

#[test]
fn elasticsearch_to_mysql_creates_the_table_and_copies_every_document() {
    let dir = workdir("es2my");
    let index = source_index(150);
    let dst = mariadb().create_database("dtes2my");
    let job = format!(
        "name = \"es2my\"\n[source]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindices = [\"{index}\"]\n\
         [target]\ntype = \"mysql\"\nurl = \"{}\"\ntable = \"docs\"\n",
        osmem().url(),
        mariadb().url_for(&dst)
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let rows = mariadb().exec(&format!(
        "SELECT _id, title, views, price, published, draft FROM {dst}.docs ORDER BY views"
    ));
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 150, "{rows}");
    for (i, line) in (1..=150u32).zip(&lines) {
        let expected = format!(
            "doc-{i}\ttitle {i}\t{}\t{i}.25\t2024-03-{:02}\t{}",
            i * 10,
            1 + i % 28,
            u8::from(i % 2 == 0)
        );
        assert_eq!(*line, expected);
    }
}

#[test]
fn elasticsearch_to_elasticsearch_copies_every_index_of_a_pattern() {
    let dir = workdir("es2es");
    let a = source_index(120);
    let b = source_index(80);
    let prefix = unique_name("dtcopy");
    let job = format!(
        "name = \"es2es\"\n[source]\ntype = \"elasticsearch\"\nurl = \"{url}\"\nindices = [\"{a}\", \"{b}\"]\n\
         [target]\ntype = \"elasticsearch\"\nurl = \"{url}\"\nindex = \"{{prefix}}-{{table}}\"\nprefix = \"{prefix}\"\n\
         refresh = \"wait_for\"\n[settings]\nconcurrency = 2\n",
        url = osmem().url()
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for (src, n) in [(&a, 120), (&b, 80)] {
        let copy = format!("{prefix}-{src}");
        let get = |index: &str| {
            osmem().request("POST", &format!("/{index}/_refresh"), None);
            let r = osmem()
                .request(
                    "GET",
                    &format!("/{index}/_search?size=500&sort=views"),
                    None,
                )
                .json();
            r["hits"]["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h["_id"].clone(), h["_source"].clone()))
                .collect::<Vec<_>>()
        };
        let (original, copied) = (get(src), get(&copy));
        assert_eq!(original.len(), n);
        assert_eq!(original, copied, "index {src}");
    }
}

#[test]
fn generator_to_mysql_writes_one_table_per_unit() {
    let dir = workdir("gen2my");
    let dst = mariadb().create_database("dtgen");
    let job = format!(
        "name = \"gen2my\"\n[source]\ntype = \"generator\"\nunits = [\"g1\", \"g2\"]\nrows = 500\ncolumns = 5\n\
         [target]\ntype = \"mysql\"\nurl = \"{}\"\n[settings]\nconcurrency = 2\n",
        mariadb().url_for(&dst)
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let tables = mariadb().exec(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{dst}' ORDER BY 1"
    ));
    assert_eq!(tables, "g1\ng2\n");
    for t in ["g1", "g2"] {
        assert_eq!(
            mariadb().exec(&format!("SELECT COUNT(*), SUM(id), MAX(c2) FROM {dst}.{t}")),
            "500\t124750\tzabcdefghijklmno\n"
        );
    }
}

#[test]
fn passwords_from_the_environment_never_show() {
    let dir = workdir("secret");
    let job = format!(
        "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\npassword = \"${{DT_TEST_MYSQL_PASSWORD}}\"\n\
         tables = [\"mysql.user\"]\n[target]\ntype = \"discard\"\n",
        mariadb().url()
    );
    std::fs::write(dir.join("job.toml"), &job).unwrap();
    let run = |env: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(["validate", "job.toml"]).current_dir(&dir);
        match env {
            Some(v) => c.env("DT_TEST_MYSQL_PASSWORD", v),
            None => c.env_remove("DT_TEST_MYSQL_PASSWORD"),
        };
        c.output().unwrap()
    };
    let out = run(None);
    assert_eq!(
        text(&out.stderr),
        "error: job.toml: source.password: environment variable DT_TEST_MYSQL_PASSWORD is not set\n"
    );
    let out = run(Some("Sw0rdfish-zz"));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: job.toml: source.url: cannot connect to {}: connecting to 127.0.0.1:{}: access denied",
            mariadb().url(),
            mariadb().port()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Sw0rdfish") && !stdout.contains("Sw0rdfish"),
        "{stdout}{stderr}"
    );
}
