"""PEP 249 behaviour of the embedded connection: types, transactions, errors, conveniences."""

from __future__ import annotations

import pytest

import hiqlite


def test_module_globals():
    assert hiqlite.apilevel == "2.0"
    assert hiqlite.threadsafety == 2
    assert hiqlite.paramstyle == "qmark"
    for name in ["Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
                 "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"]:
        assert issubclass(getattr(hiqlite, name), Exception)
    assert issubclass(hiqlite.IntegrityError, hiqlite.DatabaseError)
    assert issubclass(hiqlite.OutcomeUnknownError, hiqlite.OperationalError)


def test_all_types_round_trip(db):
    db.autocommit = True
    db.execute("CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, n)")
    values = (-(2**63), 2.5, "héllo ✓", bytes(range(256)), None)
    db.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?)", values)
    db.execute("INSERT INTO v VALUES (:i, :r, :t, :b, :n)",
               {"i": 2**63 - 1, "r": -0.0, "t": "", "b": bytearray(b"\x00"), "n": None})
    db.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?)", [True, 1e308, "x" * 10000, memoryview(b"mv"), False])
    rows = db.execute("SELECT * FROM v ORDER BY rowid").fetchall()
    assert rows[0] == values
    assert rows[1] == (2**63 - 1, -0.0, "", b"\x00", None)
    assert rows[2] == (1, 1e308, "x" * 10000, b"mv", 0)
    assert [type(x) for x in rows[0]] == [int, float, str, bytes, type(None)]


def test_cursor_description_rowcount_lastrowid_fetch(db):
    db.autocommit = True
    cur = db.cursor()
    cur.execute("CREATE TABLE booze (id INTEGER PRIMARY KEY, name VARCHAR(20), price REAL)")
    assert cur.description is None
    cur.executemany("INSERT INTO booze (name, price) VALUES (?, ?)", [("a", 1.0), ("b", 2.0), ("c", 3.0)])
    assert cur.rowcount == 3
    assert cur.lastrowid == 3
    cur.execute("UPDATE booze SET price = price + 1 WHERE id > ?", (1,))
    assert cur.rowcount == 2
    cur.execute("SELECT id, name, price FROM booze ORDER BY id")
    assert [d[0] for d in cur.description] == ["id", "name", "price"]
    assert cur.description[1][1] == hiqlite.STRING
    assert cur.description[2][1] == hiqlite.NUMBER
    assert cur.rowcount == -1
    assert cur.fetchone() == (1, "a", 1.0)
    cur.arraysize = 2
    assert cur.fetchmany() == [(2, "b", 3.0), (3, "c", 4.0)]
    assert cur.fetchone() is None
    assert list(db.execute("SELECT name FROM booze ORDER BY id")) == [("a",), ("b",), ("c",)]
    with pytest.raises(hiqlite.ProgrammingError):
        db.execute("DELETE FROM booze WHERE id = 99").fetchall()


def test_transaction_control_statements_and_sqlite_errors(db):
    db.execute("CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER)")
    assert db.in_transaction, "DDL is a write: it begins a transaction"
    db.commit()
    assert not db.in_transaction
    db.commit()  # nothing open: nothing to do
    db.rollback()
    # SQL transaction statements drive the connection's transaction, with SQLite's errors.
    with pytest.raises(hiqlite.OperationalError, match="cannot commit - no transaction is active") as e:
        db.execute("COMMIT")
    assert e.value.sqlite_errorcode == 1
    with pytest.raises(hiqlite.OperationalError, match="cannot rollback - no transaction is active"):
        db.execute("ROLLBACK")
    with pytest.raises(hiqlite.OperationalError, match="no such savepoint: sp"):
        db.execute("RELEASE sp")
    db.execute("BEGIN IMMEDIATE")
    assert db.in_transaction
    with pytest.raises(hiqlite.OperationalError, match="cannot start a transaction within a transaction"):
        db.execute("BEGIN")
    db.execute("INSERT INTO acct VALUES (1, 100)")
    db.execute("END")
    assert not db.in_transaction
    db.execute("BEGIN")
    db.execute("UPDATE acct SET bal = 0")
    db.execute("ROLLBACK")
    assert db.execute("SELECT bal FROM acct").fetchall() == [(100,)]
    # A failed statement leaves the transaction open, as in SQLite; the rest commits.
    db.execute("INSERT INTO acct VALUES (2, 50)")
    with pytest.raises(hiqlite.IntegrityError) as e:
        db.execute("INSERT INTO acct VALUES (2, 0)")
    assert e.value.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY"
    assert db.in_transaction
    db.commit()
    assert db.execute("SELECT sum(bal) FROM acct").fetchone() == (150,)
    # isolation_level=None is autocommit mode, as in sqlite3; turning it on commits.
    db.execute("UPDATE acct SET bal = bal + 1 WHERE id = 1")
    assert db.isolation_level == ""
    db.isolation_level = None
    assert db.autocommit and not db.in_transaction
    db.execute("UPDATE acct SET bal = bal + 1 WHERE id = 1")
    assert not db.in_transaction
    assert db.execute("SELECT bal FROM acct WHERE id = 1").fetchone() == (102,)
    db.isolation_level = "deferred"
    assert db.isolation_level == "DEFERRED" and not db.autocommit
    with pytest.raises(ValueError):
        db.isolation_level = "SOMETIMES"


def test_errors_map_to_pep249_classes(db):
    db.autocommit = True
    db.execute("CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    db.execute("INSERT INTO u VALUES ('a', 'x')")
    with pytest.raises(hiqlite.IntegrityError) as e:
        db.execute("INSERT INTO u VALUES ('b', NULL)")
    assert e.value.sqlite_errorcode == 1299 and "NOT NULL" in str(e.value)
    with pytest.raises(hiqlite.IntegrityError) as e:
        db.execute("INSERT INTO u VALUES ('a', 'y')")
    assert e.value.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY"
    with pytest.raises(hiqlite.OperationalError) as e:
        db.execute("SELECT * FROM nowhere")
    assert "no such table" in str(e.value)
    with pytest.raises(hiqlite.OperationalError):
        db.execute("INSRT INTO u VALUES (1)")
    with pytest.raises(hiqlite.ProgrammingError):
        db.execute("SELECT * FROM u WHERE k = ?", ("a", "b"))
    with pytest.raises(hiqlite.ProgrammingError):
        db.execute("INSERT INTO u VALUES (?, ?)", ("a", object()))
    with pytest.raises(hiqlite.ProgrammingError):
        db.execute("INSERT INTO u VALUES (?, ?)", (2**64, "big"))
    with pytest.raises(hiqlite.ProgrammingError):
        db.execute("SELECT ?", "a string is not a parameter list")
    with pytest.raises(hiqlite.ProgrammingError):
        db.execute("SELECT 1", consistency="sometimes")
    # Inside a transaction too; the transaction stays open, as after any failed statement.
    db.autocommit = False
    with pytest.raises(hiqlite.ProgrammingError):
        db.execute("INSERT INTO u VALUES (?, ?)", ("c", {1, 2}))
    db.rollback()
    assert not db.in_transaction


def test_closed_connection_and_cursor(tmp_path):
    from conftest import node_config

    conn = hiqlite.connect(node=node_config(tmp_path))
    conn.wait_for_leader(30)
    cur = conn.cursor()
    cur.close()
    with pytest.raises(hiqlite.ProgrammingError):
        cur.execute("SELECT 1")
    conn.close()
    assert conn.closed
    for op in (conn.commit, conn.cursor, conn.close, lambda: conn.execute("SELECT 1")):
        with pytest.raises(hiqlite.ProgrammingError):
            op()


def test_row_factory_executescript_and_cached_reads(db):
    db.executescript("""
        CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT);
        INSERT INTO p (name) VALUES ('ann');
        INSERT INTO p (name) VALUES ('bob');
    """)
    db.row_factory = hiqlite.Row
    row = db.execute("SELECT id, name FROM p ORDER BY id").fetchone()
    assert row["name"] == "ann" and row["NAME"] == "ann" and row[0] == 1 and row.keys() == ["id", "name"]
    assert tuple(row) == (1, "ann")
    db.row_factory = None
    for _ in range(3):
        assert db.query("SELECT count(*) FROM p", cached=True) == [(2,)]
    assert db.query("SELECT name FROM p WHERE id = :id", {"id": 2}, consistency="linearizable") == [("bob",)]


def test_begin_in_autocommit_mode_and_parameters(db):
    import types

    db.autocommit = True
    db.execute("CREATE TABLE s (a INTEGER, b TEXT)")
    # An explicit BEGIN opens a transaction even in autocommit mode, until ROLLBACK or COMMIT.
    db.execute("BEGIN")
    db.execute("INSERT INTO s VALUES (1, 'x')")
    assert db.in_transaction
    assert db.execute("SELECT count(*) FROM s").fetchone() == (1,)
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM s").fetchone() == (0,)
    db.execute("BEGIN")
    params = [1, "first"]
    db.execute("INSERT INTO s VALUES (?, ?)", params)
    params[0], params[1] = 2, "second"
    db.execute("INSERT INTO s VALUES (?, ?)", params)
    db.execute("COMMIT")
    assert not db.in_transaction
    assert db.execute("SELECT a, b FROM s ORDER BY a").fetchall() == [(1, "first"), (2, "second")]
    # Any mapping binds by name, never as a sequence of its keys.
    db.execute("INSERT INTO s VALUES (:a, :b)", types.MappingProxyType({"a": 3, "b": "proxy"}))
    assert db.execute("SELECT b FROM s WHERE a = 3").fetchone() == ("proxy",)


def test_a_transaction_that_reached_no_node_never_began():
    from conftest import free_port

    # Every connect is refused at once: the client gives up after its retries (about 8 s), long
    # before this deadline, so the error is "unreachable" however slow the machine (with a
    # short deadline a slow first attempt could run out the clock: a timeout, not this test).
    conn = hiqlite.connect(f"http://127.0.0.1:{free_port()}", timeout=300)
    with pytest.raises(hiqlite.UnreachableError):
        conn.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction, "the implicit BEGIN reached no node: nothing is open"
    conn.close()
