-- Foreign keys: enforcement, cascades, violations.
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE ON UPDATE CASCADE, note TEXT);
CREATE TABLE strict_child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id));
INSERT INTO parent VALUES (1, 'one'), (2, 'two');
INSERT INTO child (parent_id, note) VALUES (1, 'a'), (1, 'b'), (2, 'c');
INSERT INTO child (parent_id, note) VALUES (99, 'orphan');
INSERT INTO strict_child (parent_id) VALUES (2);
DELETE FROM parent WHERE id = 2;
UPDATE parent SET id = 10 WHERE id = 1;
SELECT id, parent_id, note FROM child ORDER BY id;
DELETE FROM parent WHERE id = 10;
SELECT count(*) FROM child;
PRAGMA foreign_key_check;
PRAGMA foreign_key_list(child);
