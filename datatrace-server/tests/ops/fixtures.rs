//! Shared setup: MariaDB users and tables, data sources and tasks through the API.

use datatrace_testkit::{mariadb, unique_name};
use serde_json::json;

use crate::common::Server;

/// A MariaDB user with `password` and all privileges; returns its name.
pub fn user(password: &str) -> String {
    let m = mariadb();
    let user = unique_name("op");
    m.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
         CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}';
         GRANT ALL ON *.* TO '{user}'@'%'; GRANT ALL ON *.* TO '{user}'@'localhost';"
    ));
    user
}

/// A database with `items(id, name, price)` holding `n` rows; returns its name.
pub fn items(n: u32) -> String {
    let m = mariadb();
    let db = m.create_database("dtops");
    m.exec(&format!(
        "CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2))"
    ));
    let mut rows = Vec::new();
    for i in 1..=n {
        rows.push(format!("({i}, 'item {i}', {i}.25)"));
        if rows.len() == 1000 || i == n {
            m.exec(&format!("INSERT INTO {db}.items VALUES {}", rows.join(",")));
            rows.clear();
        }
    }
    db
}

/// A MySQL data source for `user` on database `db`; returns its id.
pub fn mysql_ds(s: &Server, user: &str, password: &str, db: &str) -> i64 {
    let v = s.ok(
        "POST",
        "/api/datasources",
        Some(&json!({
            "name": unique_name("mysql"), "type": "mysql",
            "url": format!("mysql://{user}@127.0.0.1:{}/{db}", mariadb().port()),
            "password": password
        })),
    );
    v["id"].as_i64().unwrap()
}

/// Rows in `db.table`.
pub fn count(db: &str, table: &str) -> u64 {
    mariadb()
        .exec(&format!("SELECT COUNT(*) FROM {db}.{table}"))
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Another session holding `LOCK TABLES db.table WRITE` until dropped: nobody else reads or
/// writes the table meanwhile.
pub struct TableLock {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TableLock {
    /// Takes the lock (returns once it is held).
    pub fn new(db: &str, table: &str) -> TableLock {
        use mysql_async::prelude::Queryable;
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (ready, held) = std::sync::mpsc::channel::<()>();
        let url = format!("mysql://root@127.0.0.1:{}/", mariadb().port());
        let sql = format!("LOCK TABLES {db}.{table} WRITE");
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut conn = rt.block_on(async {
                let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
                c.query_drop(sql).await.unwrap();
                c
            });
            let _ = ready.send(());
            let _ = wait.recv();
            rt.block_on(async {
                let _ = conn.query_drop("UNLOCK TABLES").await;
                let _ = conn.disconnect().await;
            });
        });
        held.recv().expect("the lock is taken");
        TableLock {
            release: Some(release),
            thread: Some(thread),
        }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
