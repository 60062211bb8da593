-- The quickstart's sample shop: customers, products, orders, order_items, generated with
-- MariaDB's sequence engine (seq_1_to_N). scripts/quickstart.sh replaces {{CUSTOMERS}},
-- {{PRODUCTS}} and {{ORDERS}}; order_items holds 1 to 3 lines per order (2 on average).
-- Everything is deterministic: the same scale gives the same rows.
-- Types: INT / BIGINT (signed and unsigned), TINYINT, SMALLINT, VARCHAR and CHAR with
-- unicode, TEXT, DECIMAL, DOUBLE, DATE, DATETIME(3), TIMESTAMP, ENUM, JSON, BOOLEAN.

DROP DATABASE IF EXISTS shop;
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop;
SET time_zone = '+00:00';

CREATE TABLE customers (
  id          INT UNSIGNED NOT NULL PRIMARY KEY,
  email       VARCHAR(191) NOT NULL,
  name        VARCHAR(100) NOT NULL,
  country     CHAR(2)      NOT NULL,
  city        VARCHAR(64)  NULL,
  birth_date  DATE         NULL,
  newsletter  BOOLEAN      NOT NULL,
  created_at  DATETIME(3)  NOT NULL,
  updated_at  TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE KEY uk_email (email)
);

CREATE TABLE products (
  id           INT UNSIGNED NOT NULL PRIMARY KEY,
  sku          VARCHAR(32)  NOT NULL,
  name         VARCHAR(200) NOT NULL,
  description  TEXT         NULL,
  category     ENUM('coffee', 'tea', 'equipment', 'accessories', 'gifts') NOT NULL,
  price        DECIMAL(10,2) NOT NULL,
  weight_kg    DOUBLE       NOT NULL,
  stock        SMALLINT UNSIGNED NOT NULL,
  available    BOOLEAN      NOT NULL,
  attributes   JSON         NULL,
  created_at   DATETIME(3)  NOT NULL,
  UNIQUE KEY uk_sku (sku)
);

CREATE TABLE orders (
  id           BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id  INT UNSIGNED NOT NULL,
  status       ENUM('new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded') NOT NULL,
  currency     CHAR(3)      NOT NULL,
  total        DECIMAL(12,2) NOT NULL DEFAULT 0,
  note         VARCHAR(255) NULL,
  placed_at    DATETIME     NOT NULL,
  updated_at   TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY ix_customer (customer_id)
);

CREATE TABLE order_items (
  order_id     BIGINT UNSIGNED  NOT NULL,
  line_no      TINYINT UNSIGNED NOT NULL,
  product_id   INT UNSIGNED     NOT NULL,
  quantity     SMALLINT         NOT NULL,
  unit_price   DECIMAL(10,2)    NOT NULL,
  discount     DECIMAL(4,2)     NOT NULL DEFAULT 0.00,
  PRIMARY KEY (order_id, line_no),
  KEY ix_product (product_id)
);

INSERT INTO customers
SELECT seq,
       CONCAT('customer', seq, '@example.com'),
       CONCAT(ELT(seq % 12 + 1, 'Zoë', 'José', 'Åsa', 'Chloé', 'Jürgen', 'Siobhán', 'Ngọc',
                  '美咲', 'Олег', 'Renée', 'Øystein', 'Ana'), ' ',
              ELT(seq % 10 + 1, 'Müller', 'García', 'Lindqvist', 'Dubois', 'Kowalski', 'Ó Briain',
                  'Nguyễn', '佐藤', 'Иванов', 'Smith')),
       ELT(seq % 8 + 1, 'DE', 'ES', 'SE', 'FR', 'PL', 'IE', 'VN', 'JP'),
       IF(seq % 9 = 0, NULL, ELT(seq % 8 + 1, 'Köln', 'Málaga', 'Göteborg', 'Besançon', 'Łódź',
                                 'Dún Laoghaire', 'Hà Nội', '東京')),
       IF(seq % 5 = 0, NULL, '1950-01-01' + INTERVAL (seq * 37) % 18000 DAY),
       seq % 3 = 0,
       '2022-01-01' + INTERVAL seq * 631 SECOND + INTERVAL seq % 1000 * 1000 MICROSECOND,
       '2024-06-01' + INTERVAL seq * 97 SECOND
FROM seq_1_to_{{CUSTOMERS}};

INSERT INTO products
SELECT seq,
       CONCAT('SKU-', LPAD(seq, 6, '0')),
       CONCAT(ELT(seq % 10 + 1, 'Espresso blend', 'Sencha', 'Pour-over kettle', 'Milk jug',
                  'Gift box', 'Café de Olla', 'Matcha 抹茶', 'Burr grinder', 'Crème mug',
                  'Rooibos'), ' #', seq),
       IF(seq % 7 = 0, NULL,
          CONCAT('Nº ', seq, ' — ', TRIM(REPEAT('Carefully roasted, packed by hand. ', 1 + seq % 4)))),
       ELT(seq % 5 + 1, 'coffee', 'tea', 'equipment', 'accessories', 'gifts'),
       ROUND(2.5 + (seq * 7919 % 20000) / 100, 2),
       (seq % 250 + 1) / 100,
       seq * 13 % 1000,
       seq % 11 <> 0,
       JSON_OBJECT('origin', ELT(seq % 4 + 1, 'Ethiopia', 'Colombia', 'Japan', 'Kenya'),
                   'organic', seq % 2 = 0,
                   'tags', JSON_ARRAY(ELT(seq % 3 + 1, 'new', 'bestseller', 'sale'), 'shop'),
                   'rating', ROUND((seq % 50) / 10, 1)),
       '2021-03-01 09:00:00' + INTERVAL seq HOUR + INTERVAL seq % 1000 * 1000 MICROSECOND
FROM seq_1_to_{{PRODUCTS}};

INSERT INTO orders (id, customer_id, status, currency, note, placed_at, updated_at)
SELECT seq,
       (seq * 7) % {{CUSTOMERS}} + 1,
       ELT(seq % 6 + 1, 'new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'),
       ELT(seq % 3 + 1, 'EUR', 'SEK', 'JPY'),
       IF(seq % 13 = 0, CONCAT('Bitte klingeln 🔔 #', seq), NULL),
       '2023-01-01' + INTERVAL seq * 1753 SECOND,
       '2024-06-01' + INTERVAL seq * 61 SECOND
FROM seq_1_to_{{ORDERS}};

INSERT INTO order_items
SELECT o.seq, l.seq,
       (o.seq * 31 + l.seq * 17) % {{PRODUCTS}} + 1,
       1 + (o.seq + l.seq) % 4,
       ROUND(2.5 + (((o.seq * 31 + l.seq * 17) % {{PRODUCTS}} + 1) * 7919 % 20000) / 100, 2),
       IF((o.seq + l.seq) % 5 = 0, 0.10, 0.00)
FROM seq_1_to_{{ORDERS}} o JOIN seq_1_to_3 l ON l.seq <= 1 + o.seq % 3;

UPDATE orders o
JOIN (SELECT order_id, SUM(ROUND(quantity * unit_price * (1 - discount), 2)) AS total
      FROM order_items GROUP BY order_id) t ON t.order_id = o.id
SET o.total = t.total, o.updated_at = o.updated_at;

ANALYZE TABLE customers, products, orders, order_items;
