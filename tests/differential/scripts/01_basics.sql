-- Tables, inserts, errors, types.
CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, price REAL, qty INTEGER DEFAULT 0, data BLOB);
INSERT INTO item (name, price, qty, data) VALUES ('apple', 0.5, 10, x'00ff10');
INSERT INTO item (name, price, qty) VALUES ('pear', 0.75, 3), ('plum', 1.25, 0);
INSERT INTO item (name) VALUES ('apple');
INSERT INTO item (name) VALUES (NULL);
INSERT INTO item (id, name) VALUES (1, 'dup-id');
SELECT id, name, price, qty, data FROM item ORDER BY id;
SELECT typeof(price), typeof(qty), typeof(data), typeof(NULL) FROM item WHERE id = 1;
UPDATE item SET qty = qty + 1 WHERE price < 1;
DELETE FROM item WHERE qty = 0;
SELECT count(*), sum(qty), total(price), avg(price), max(name) FROM item;
SELECT 1 + 1, 'a' || 'b', 7 / 2, 7.0 / 2, 9223372036854775807, -9223372036854775808, 1e308 * 10;
SELECT * FROM missing_table;
SELEC 1;
INSERT INTO item (name, qty) VALUES ('strictless', 'not a number');
SELECT name, qty, typeof(qty) FROM item WHERE name = 'strictless';
