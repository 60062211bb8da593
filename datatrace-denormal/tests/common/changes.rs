//! A seeded random stream of changes on every table of the shop: inserts, updates
//! (including foreign-key moves and key changes) and deletes, alone or several in one
//! transaction, with references that may point at nothing.

use datatrace_mysql::MySqlConnection;
use mysql_async::prelude::Queryable;

/// Generates and applies random changes.
pub struct Changer {
    rng: fastrand::Rng,
    conn: MySqlConnection,
    next: i64,
    /// Every statement applied, for reproducing a failure.
    pub log: Vec<String>,
}

impl Changer {
    /// A generator with `seed` over the shop in `conn`'s database.
    pub fn new(conn: MySqlConnection, seed: u64) -> Changer {
        Changer {
            rng: fastrand::Rng::with_seed(seed),
            conn,
            next: 1_000_000,
            log: Vec::new(),
        }
    }

    fn fresh(&mut self) -> i64 {
        self.next += 1;
        self.next
    }

    fn order(&mut self) -> i64 {
        if self.rng.u8(..10) == 0 && self.next > 1_000_000 {
            self.rng.i64(1_000_001..=self.next)
        } else {
            self.rng.i64(1..=320)
        }
    }

    fn item(&mut self) -> i64 {
        if self.rng.u8(..10) == 0 && self.next > 1_000_000 {
            self.rng.i64(1_000_001..=self.next)
        } else {
            self.rng.i64(1..=320) * 10 + self.rng.i64(1..=4)
        }
    }

    fn product(&mut self) -> String {
        match self.rng.u8(..12) {
            0 => "NULL".into(),
            1 if self.next > 1_000_000 => self.rng.i64(1_000_001..=self.next).to_string(),
            _ => self.rng.i64(1..=70).to_string(),
        }
    }

    fn customer(&mut self) -> String {
        match self.rng.u8(..12) {
            0 => "NULL".into(),
            1 if self.next > 1_000_000 => self.rng.i64(1_000_001..=self.next).to_string(),
            _ => self.rng.i64(1..=80).to_string(),
        }
    }

    fn tag(&mut self) -> i64 {
        self.rng.i64(1..=10)
    }

    /// One random statement.
    pub fn statement(&mut self) -> String {
        match self.rng.u8(..30) {
            0 | 1 => {
                let s = ["new", "paid", "shipped", "returned"][self.rng.usize(..4)];
                format!("UPDATE orders SET status = '{s}' WHERE id = {}", self.order())
            }
            2 | 3 => format!(
                "UPDATE orders SET customer_id = {} WHERE id = {}",
                self.customer(),
                self.order()
            ),
            4 => {
                let n = self.fresh();
                format!("UPDATE orders SET id = {n} WHERE id = {}", self.order())
            }
            5 | 6 => {
                let n = self.fresh();
                let c = self.customer();
                let d = self.rng.u32(..900);
                format!("INSERT INTO orders VALUES ({n}, {c}, '2024-01-01' + INTERVAL {d} DAY, 'new')")
            }
            7 => format!("DELETE FROM orders WHERE id = {}", self.order()),
            8 => format!(
                "UPDATE orders SET placed_on = placed_on + INTERVAL {} DAY WHERE id = {}",
                self.rng.i32(-400..400),
                self.order()
            ),
            9 | 10 => format!("UPDATE order_items SET qty = qty + 1 WHERE id = {}", self.item()),
            11 | 12 => format!(
                "UPDATE order_items SET order_id = {} WHERE id = {}",
                self.order(),
                self.item()
            ),
            13 | 14 => format!(
                "UPDATE order_items SET product_id = {} WHERE id = {}",
                self.product(),
                self.item()
            ),
            15 => {
                let n = self.fresh();
                format!("UPDATE order_items SET id = {n} WHERE id = {}", self.item())
            }
            16 | 17 => {
                let n = self.fresh();
                let o = self.order();
                let p = self.product();
                format!("INSERT INTO order_items VALUES ({n}, {o}, {p}, {})", self.rng.u8(1..9))
            }
            18 => format!("DELETE FROM order_items WHERE id = {}", self.item()),
            19 | 20 => format!(
                "UPDATE products SET name = CONCAT(LEFT(name, 100), '+'), price = price + 0.5 WHERE id = {}",
                self.product()
            ),
            21 => {
                let n = self.fresh();
                format!("UPDATE products SET id = {n} WHERE id = {}", self.product())
            }
            22 => format!("DELETE FROM products WHERE id = {}", self.product()),
            23 => {
                let n = self.fresh();
                format!("INSERT INTO products VALUES ({n}, 'SKU-{n}', 'new product', 9.99)")
            }
            24 => {
                let t = ["std", "gold"][self.rng.usize(..2)];
                format!(
                    "UPDATE customers SET name = CONCAT(LEFT(name, 50), '*'), tier = '{t}' WHERE id = {}",
                    self.customer()
                )
            }
            25 => match self.rng.u8(..3) {
                0 => {
                    let n = self.fresh();
                    format!("UPDATE customers SET id = {n} WHERE id = {}", self.customer())
                }
                1 => format!("DELETE FROM customers WHERE id = {}", self.customer()),
                _ => {
                    let n = self.fresh();
                    format!("INSERT INTO customers VALUES ({n}, 'newcomer {n}', 'std', 'eu')")
                }
            },
            26 => format!(
                "UPDATE customers SET region = 'xx' WHERE id = {}",
                self.customer()
            ),
            27 => {
                let (p, t) = (self.product(), self.tag());
                match self.rng.u8(..4) {
                    0 => format!("INSERT IGNORE INTO product_tags VALUES ({p}, {t})"),
                    1 => format!("DELETE FROM product_tags WHERE product_id = {p} AND tag_id = {t}"),
                    // The join row moves to another product (the parent side of the link).
                    2 => format!(
                        "UPDATE IGNORE product_tags SET product_id = {} WHERE product_id = {p} AND tag_id = {t}",
                        self.product()
                    ),
                    _ => format!(
                        "UPDATE IGNORE product_tags SET tag_id = {} WHERE product_id = {p} AND tag_id = {t}",
                        self.tag()
                    ),
                }
            }
            28 => {
                let t = self.tag();
                match self.rng.u8(..4) {
                    0 => format!("UPDATE tags SET name = CONCAT(name, 'x') WHERE id = {t}"),
                    1 => format!("DELETE FROM tags WHERE id = {t}"),
                    2 => format!("INSERT IGNORE INTO tags VALUES ({t}, 'tag{t}b')"),
                    _ => format!(
                        "UPDATE IGNORE tags SET id = {} WHERE id = {t}",
                        self.tag()
                    ),
                }
            }
            _ => format!(
                "UPDATE order_items SET order_id = {}, product_id = {}, qty = 1 WHERE id = {}",
                self.order(),
                self.product(),
                self.item()
            ),
        }
    }

    /// Applies `n` changes: single statements, or 2-5 of them in one transaction.
    pub async fn run(&mut self, n: usize) {
        let mut c = self.conn.get().await.expect("conn");
        let mut done = 0;
        while done < n {
            let tx = self.rng.u8(..4) == 0;
            let k = if tx { self.rng.usize(2..=5) } else { 1 };
            let stmts: Vec<String> = (0..k).map(|_| self.statement()).collect();
            if tx {
                c.query_drop("BEGIN").await.unwrap();
                self.log.push("BEGIN".into());
            }
            for s in &stmts {
                c.query_drop(s.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
                self.log.push(s.clone());
            }
            if tx {
                c.query_drop("COMMIT").await.unwrap();
                self.log.push("COMMIT".into());
            }
            done += k;
        }
    }
}
