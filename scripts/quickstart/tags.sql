-- Tags of the quickstart shop's products (scripts/quickstart.sh --documents): a
-- many-to-many relation through product_tags, embedded in order documents as the tag names
-- of each line's product. Deterministic, like shop.sql.
USE shop;

CREATE TABLE tags (
  id    INT UNSIGNED NOT NULL PRIMARY KEY,
  name  VARCHAR(32)  NOT NULL,
  UNIQUE KEY uk_name (name)
);

CREATE TABLE product_tags (
  product_id  INT UNSIGNED NOT NULL,
  tag_id      INT UNSIGNED NOT NULL,
  PRIMARY KEY (product_id, tag_id),
  KEY ix_tag (tag_id)
);

INSERT INTO tags VALUES (1, 'organic'), (2, 'fair-trade'), (3, 'single-origin'),
  (4, 'decaf'), (5, 'limited'), (6, 'bestseller'), (7, 'vegan'), (8, 'gift');

INSERT INTO product_tags
SELECT p.id, t.id FROM products p JOIN tags t ON (p.id * 7 + t.id * 3) % 5 = 0;

ANALYZE TABLE tags, product_tags;
