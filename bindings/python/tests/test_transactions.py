"""Interactive DB-API transactions: reads see the transaction's own writes, real rowcount and
lastrowid, `with conn:`, savepoints, what other connections see, dropped connections, and
transactions of several connections (threads) that serialize."""

from __future__ import annotations

import gc
import threading
from typing import Iterator, Tuple

import pytest

import hiqlite
from conftest import node_config


@pytest.fixture
def node(tmp_path) -> Iterator[Tuple[hiqlite.Connection, str]]:
    """One embedded node and its API URL. Transactions queue behind each other here: the busy
    timeout and the idle timeout are far beyond anything a loaded machine takes, so waiting is
    bounded by conditions, not speed."""
    cfg = node_config(tmp_path)
    cfg["busy_timeout_ms"] = 60_000
    cfg["transaction_idle_timeout_ms"] = 600_000
    conn = hiqlite.connect(node=cfg)
    conn.wait_for_leader(60)
    url = "http://" + conn.status()["api_addr"]
    yield conn, url
    if not conn.closed:
        conn.close()


def remote(url: str, **kw) -> hiqlite.Connection:
    # A deadline no call here can reach on a slow machine: nothing below is about timeouts.
    return hiqlite.connect(url, timeout=300, **kw)


def test_select_in_a_transaction_sees_its_own_insert(node):
    db, url = node
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    db.commit()
    cur = db.cursor()
    cur.execute("INSERT INTO t (v) VALUES (?)", ("a",))
    assert db.in_transaction
    assert (cur.rowcount, cur.lastrowid) == (1, 1)
    assert db.execute("SELECT id, v FROM t").fetchall() == [(1, "a")], "reads see the transaction's insert"
    other = remote(url, autocommit=True)
    assert other.execute("SELECT count(*) FROM t", consistency="linearizable").fetchone() == (0,), \
        "nobody else sees it before the commit"
    cur.executemany("INSERT INTO t (v) VALUES (?)", [("b",), ("c",), ("d",)])
    assert (cur.rowcount, cur.lastrowid) == (3, 4)
    cur.execute("UPDATE t SET v = v || '!' WHERE id > 1")
    assert cur.rowcount == 3
    cur.execute("DELETE FROM t WHERE id = 4")
    assert cur.rowcount == 1
    cur.execute("INSERT INTO t (v) VALUES ('e') RETURNING id, v")
    # id 4 is free again (no AUTOINCREMENT): SQLite reuses max(rowid) + 1.
    assert cur.fetchall() == [(4, "e")] and cur.rowcount == 1 and cur.lastrowid == 4
    cur.execute("SELECT v FROM t ORDER BY id")
    assert cur.rowcount == -1 and [d[0] for d in cur.description] == ["v"]
    assert cur.fetchall() == [("a",), ("b!",), ("c!",), ("e",)]
    db.commit()
    assert not db.in_transaction
    assert other.execute("SELECT count(*) FROM t", consistency="linearizable").fetchone() == (4,)
    other.close()


def test_with_connection_commits_or_rolls_back(node):
    db, url = node
    with db:
        db.execute("CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER)")
        db.execute("INSERT INTO acct VALUES (1, 100), (2, 50)")
    assert not db.in_transaction
    with pytest.raises(ZeroDivisionError):
        with db:
            db.execute("UPDATE acct SET bal = 0")
            assert db.execute("SELECT sum(bal) FROM acct").fetchone() == (0,)
            1 / 0
    assert not db.in_transaction
    assert db.execute("SELECT sum(bal) FROM acct").fetchone() == (150,)
    with db:  # a read-modify-write: the explicit BEGIN makes the SELECT part of the transaction
        db.execute("BEGIN")
        (bal,) = db.execute("SELECT bal FROM acct WHERE id = 1").fetchone()
        db.execute("UPDATE acct SET bal = ? WHERE id = 1", (bal + 1,))
    with remote(url) as other:  # the block commits, the connection stays open
        assert other.execute("SELECT bal FROM acct WHERE id = 1").fetchone() == (101,)


def test_savepoints(node):
    db, _ = node
    db.autocommit = True
    db.execute("CREATE TABLE s (x INTEGER)")
    # A SAVEPOINT outside a transaction begins one; releasing that outermost savepoint commits.
    db.execute("SAVEPOINT outer_sp")
    assert db.in_transaction
    db.execute("INSERT INTO s VALUES (1)")
    db.execute('SAVEPOINT "Inner"')
    db.execute("INSERT INTO s VALUES (2)")
    assert db.execute("SELECT count(*) FROM s").fetchone() == (2,)
    db.execute("ROLLBACK TRANSACTION TO SAVEPOINT inner")  # names match without case
    assert db.execute("SELECT x FROM s").fetchall() == [(1,)]
    db.execute("RELEASE inner")
    assert db.in_transaction, "an inner RELEASE does not end the transaction"
    db.execute("ROLLBACK TO outer_sp")  # keeps the savepoint and the transaction
    assert db.in_transaction and db.execute("SELECT count(*) FROM s").fetchone() == (0,)
    db.execute("INSERT INTO s VALUES (3)")
    db.execute("RELEASE SAVEPOINT outer_sp")
    assert not db.in_transaction, "releasing the outermost savepoint committed"
    assert db.execute("SELECT x FROM s", consistency="linearizable").fetchall() == [(3,)]
    # Inside a transaction begun otherwise, RELEASE never commits; SQLite's errors come through.
    db.autocommit = False
    db.execute("INSERT INTO s VALUES (4)")
    db.execute("SAVEPOINT a")
    db.execute("INSERT INTO s VALUES (5)")
    db.execute("RELEASE a")
    assert db.in_transaction
    with pytest.raises(hiqlite.OperationalError, match="no such savepoint: nope"):
        db.execute("ROLLBACK TO nope")
    assert db.in_transaction
    db.rollback()
    assert db.execute("SELECT x FROM s").fetchall() == [(3,)]


def test_closing_or_dropping_a_connection_rolls_back_and_frees_the_writer(node):
    db, url = node
    db.execute("CREATE TABLE d (x INTEGER)")
    db.commit()
    a = remote(url)
    a.execute("INSERT INTO d VALUES (1)")
    a.close()
    b = remote(url)
    b.execute("INSERT INTO d VALUES (2)")
    assert b.in_transaction
    del b
    gc.collect()
    # Had either transaction stayed open, this write would wait for it past the busy timeout
    # (60 s) and fail with "database is locked".
    db.execute("INSERT INTO d VALUES (3)")
    db.commit()
    assert db.execute("SELECT x FROM d").fetchall() == [(3,)]


def test_transactions_of_four_threads_serialize(node):
    db, url = node
    db.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    db.execute("INSERT INTO counter VALUES (1, 0)")
    db.commit()
    errors = []

    def worker() -> None:
        conn = remote(url)
        try:
            for _ in range(50):
                with conn:
                    conn.execute("BEGIN")
                    (n,) = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()
                    conn.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # No lost update: every read-modify-write ran alone.
    assert db.execute("SELECT n FROM counter", consistency="linearizable").fetchone() == (200,)
