-- Window functions, JSON functions, generated columns.
CREATE TABLE sale (id INTEGER PRIMARY KEY, region TEXT, amount INTEGER);
INSERT INTO sale (region, amount) VALUES ('n', 10), ('n', 20), ('s', 5), ('s', 15), ('s', 25);
SELECT region, amount, sum(amount) OVER (PARTITION BY region ORDER BY amount) AS running, rank() OVER (ORDER BY amount DESC) AS rk FROM sale ORDER BY id;
SELECT region, amount, lag(amount) OVER w, lead(amount, 1, -1) OVER w, row_number() OVER w FROM sale WINDOW w AS (PARTITION BY region ORDER BY id) ORDER BY id;
SELECT json_object('a', 1, 'b', json_array(1, 2, 'x')), json_extract('{"k":{"v":[1,2,3]}}', '$.k.v[1]'), json('{"z" : 1 }');
CREATE TABLE doc (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO doc (body) VALUES ('{"tags":["a","b"],"n":1}'), ('{"tags":["c"],"n":2}');
SELECT doc.id, t.value FROM doc, json_each(doc.body, '$.tags') AS t ORDER BY doc.id, t.key;
UPDATE doc SET body = json_set(body, '$.n', json_extract(body, '$.n') * 10);
SELECT id, body ->> '$.n', body -> '$.tags' FROM doc ORDER BY id;
SELECT json_group_array(region) FROM (SELECT DISTINCT region FROM sale ORDER BY region);
SELECT json_extract('not json', '$.a');
CREATE TABLE box (w INTEGER, h INTEGER, area INTEGER GENERATED ALWAYS AS (w * h) STORED, label TEXT GENERATED ALWAYS AS ('box ' || w || 'x' || h) VIRTUAL);
INSERT INTO box (w, h) VALUES (2, 3), (4, 5);
SELECT w, h, area, label FROM box ORDER BY area;
INSERT INTO box (w, h, area) VALUES (1, 1, 1);
UPDATE box SET w = 10 WHERE h = 3;
SELECT area, label FROM box ORDER BY area;
