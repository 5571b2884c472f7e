-- Maintenance statements that replicate: user_version, application_id, ANALYZE, REINDEX, VACUUM.
PRAGMA user_version;
PRAGMA user_version = 7;
PRAGMA user_version;
PRAGMA application_id = 1213;
PRAGMA application_id;
CREATE TABLE big (id INTEGER PRIMARY KEY, pad TEXT);
INSERT INTO big (pad) SELECT hex(zeroblob(100)) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) SELECT x FROM c);
CREATE INDEX big_pad ON big(pad);
ANALYZE;
SELECT tbl, idx FROM sqlite_stat1 WHERE tbl = 'big' ORDER BY idx;
REINDEX big_pad;
DELETE FROM big WHERE id > 10;
VACUUM;
SELECT count(*) FROM big;
PRAGMA optimize;
PRAGMA integrity_check;
