"""pyrqlite (the rqlite DB-API client from PyPI), unchanged, against a real hiqlite node."""

import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

import pyrqlite.dbapi2 as dbapi2
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from ports import free_port  # noqa: E402


@pytest.fixture(scope="module")
def node():
    binary = os.environ.get("HIQLITE_BIN", "target/debug/hiqlite")
    api, raft = free_port(), free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen(
            [binary, "serve", "--data-dir", d, "--api-addr", f"127.0.0.1:{api}",
             "--raft-addr", f"127.0.0.1:{raft}", "--secret", "pyrqlite-test"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while True:
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{api}/readyz").status == 200:
                        break
                except OSError:
                    pass
                assert time.time() < deadline, "hiqlite did not become ready"
                time.sleep(0.05)
            yield api
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_create_insert_query_params_blob_transaction(node):
    conn = dbapi2.connect(host="127.0.0.1", port=node)
    cur = conn.cursor()
    cur.execute("CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, score REAL, data BLOB)")
    cur.execute("INSERT INTO foo(name, score, data) VALUES(?, ?, ?)", ("fiona", 2.5, b"\x00\x01\xff"))
    assert cur.lastrowid == 1
    cur.execute("INSERT INTO foo(name, score) VALUES(:name, :score)", {"name": "declan", "score": 7})
    assert cur.lastrowid == 2
    cur.execute("UPDATE foo SET score = score + 1 WHERE id = ?", (2,))
    assert cur.rowcount == 1
    cur.executemany("INSERT INTO foo(name) VALUES(?)", seq_of_parameters=(("a",), ("b",)))
    cur.execute("SELECT id, name, score, data FROM foo WHERE name = ?", ("fiona",))
    row = cur.fetchone()
    assert row[0] == 1 and row[1] == "fiona" and row[2] == 2.5
    assert row[3] == b"\x00\x01\xff"
    cur.execute("SELECT count(*) FROM foo")
    assert cur.fetchone()[0] == 4
    # executemany runs as one transaction (pyrqlite logs, not raises, its errors): a failure
    # applies none of it.
    cur.executemany("INSERT INTO foo(id, name) VALUES(?, ?)", seq_of_parameters=((10, "x"), (1, "dup")))
    cur.execute("SELECT count(*) FROM foo")
    assert cur.fetchone()[0] == 4
    with pytest.raises(dbapi2.Error):
        cur.execute("SELECT * FROM nope")
    conn.close()


def test_time_columns_through_detect_types(node):
    """pyrqlite's converters read rqlite's RFC 3339 times (its TIMESTAMP converter splits at 'T')."""
    import datetime

    conn = dbapi2.connect(host="127.0.0.1", port=node, detect_types=dbapi2.PARSE_DECLTYPES)
    cur = conn.cursor()
    cur.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, d DATE, dt DATETIME, ts TIMESTAMP, n INTEGER)")
    cur.execute("INSERT INTO ev(d, dt, ts, n) VALUES(?, ?, ?, ?)",
                ("2004-02-14", "2004-02-14 07:15:00.5", "2004-02-14 07:15:00.5", 14326995600))
    cur.execute("INSERT INTO ev(ts) VALUES(14326995600)")
    cur.execute("SELECT d, dt, ts, n FROM ev ORDER BY id")
    rows = cur.fetchall()
    assert rows[0][0] == datetime.date(2004, 2, 14)
    assert rows[0][1] == "2004-02-14 07:15:00.5"
    assert rows[0][2] == datetime.datetime(2004, 2, 14, 7, 15, 0, 500000)
    assert rows[0][3] == 14326995600
    assert rows[1][2] == datetime.datetime(2424, 1, 2, 17, 0, 0)
    conn.close()
