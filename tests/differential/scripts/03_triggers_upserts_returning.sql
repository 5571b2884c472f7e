-- Triggers, upserts, RETURNING.
CREATE TABLE stock (sku TEXT PRIMARY KEY, qty INTEGER NOT NULL CHECK (qty >= 0));
CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT, old_qty INTEGER, new_qty INTEGER);
CREATE TRIGGER stock_audit AFTER UPDATE OF qty ON stock BEGIN
  INSERT INTO audit (sku, old_qty, new_qty) VALUES (OLD.sku, OLD.qty, NEW.qty);
END;
INSERT INTO stock VALUES ('a', 5), ('b', 0);
INSERT INTO stock VALUES ('a', 3) ON CONFLICT(sku) DO UPDATE SET qty = qty + excluded.qty;
INSERT INTO stock VALUES ('c', 1) ON CONFLICT(sku) DO NOTHING;
INSERT INTO stock VALUES ('c', 1) ON CONFLICT(sku) DO NOTHING;
UPDATE stock SET qty = qty - 10 WHERE sku = 'a';
INSERT INTO stock VALUES ('d', 4) RETURNING sku, qty * 2 AS doubled;
UPDATE stock SET qty = qty + 1 WHERE qty < 5 RETURNING sku, qty;
DELETE FROM stock WHERE sku = 'b' RETURNING *;
INSERT OR REPLACE INTO stock VALUES ('c', 42);
SELECT sku, qty FROM stock ORDER BY sku;
SELECT seq, sku, old_qty, new_qty FROM audit ORDER BY seq;
SELECT name, seq FROM sqlite_sequence;
CREATE TRIGGER no_negative BEFORE INSERT ON stock WHEN NEW.qty > 1000 BEGIN SELECT RAISE(ABORT, 'too many'); END;
INSERT INTO stock VALUES ('huge', 5000);
SELECT count(*) FROM stock;
