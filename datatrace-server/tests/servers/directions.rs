//! The four directions (and the generator) through `datatrace run`, compared row by row and
//! document by document.

use datatrace_testkit::{engine, mariadb, unique_name};

use crate::common::*;

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
        engine().url()
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let index = format!("{prefix}-users");
    engine().request("POST", &format!("/{index}/_refresh"), None);
    let found = engine()
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
    let orders = engine()
        .request("GET", &format!("/{prefix}-orders/_count"), None)
        .json();
    assert_eq!(orders["count"], 200, "{orders}");
}

#[test]
fn elasticsearch_to_mysql_creates_the_table_and_copies_every_document() {
    let dir = workdir("es2my");
    let index = source_index(150);
    let dst = mariadb().create_database("dtes2my");
    let job = format!(
        "name = \"es2my\"\n[source]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindices = [\"{index}\"]\n\
         [target]\ntype = \"mysql\"\nurl = \"{}\"\ntable = \"docs\"\n",
        engine().url(),
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
        url = engine().url()
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for (src, n) in [(&a, 120), (&b, 80)] {
        let copy = format!("{prefix}-{src}");
        let get = |index: &str| {
            engine().request("POST", &format!("/{index}/_refresh"), None);
            let r = engine()
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
fn transforms_shape_the_documents_and_the_created_mapping() {
    let dir = workdir("transforms");
    let src = source_db(50);
    let prefix = unique_name("dtx");
    let job = format!(
        "name = \"tx\"\n[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"users\"]\n\
         [target]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{{prefix}}-{{table}}\"\nprefix = \"{prefix}\"\n\
         refresh = \"wait_for\"\n\
         [[transforms]]\ntype = \"rename\"\nfields = {{ name = \"login\" }}\n\
         [[transforms]]\ntype = \"drop\"\nfields = [\"note\"]\n\
         [[transforms]]\ntype = \"filter\"\nwhere = {{ field = \"active\", op = \"=\", value = true }}\n\
         [[transforms]]\ntype = \"set\"\nfield = \"origin\"\nvalue = \"crm\"\n",
        mariadb().url_for(&src),
        engine().url()
    );
    let out = datatrace(&dir, &job, &["run", "job.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let index = format!("{prefix}-users");
    let mapping = engine()
        .request("GET", &format!("/{index}/_mapping"), None)
        .json();
    let props = &mapping[&index]["mappings"]["properties"];
    assert!(
        props.get("login").is_some(),
        "created from the transformed schema: {mapping}"
    );
    assert!(props.get("origin").is_some(), "{mapping}");
    assert!(
        props.get("name").is_none() && props.get("note").is_none(),
        "{mapping}"
    );
    engine().request("POST", &format!("/{index}/_refresh"), None);
    let found = engine()
        .request("GET", &format!("/{index}/_search?size=100&sort=id"), None)
        .json();
    let hits = found["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 25, "odd ids are active: {found}");
    for h in hits {
        let doc = &h["_source"];
        let id = doc["id"].as_i64().unwrap();
        assert_eq!(id % 2, 1);
        assert_eq!(doc["login"], format!("user{id}"));
        assert_eq!(doc["origin"], "crm");
        assert!(
            doc.get("note").is_none() && doc.get("name").is_none(),
            "{doc}"
        );
    }
}
