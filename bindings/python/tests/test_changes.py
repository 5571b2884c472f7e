"""Change streams and live queries from Python: resuming at a cursor without gaps or duplicates
(also after closing and reopening the connection, and through a remote connection), the tables
filter, old values, a cursor too old, bad arguments, closing from another thread, and watches;
blocking and asyncio."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Iterator, List, Tuple

import pytest

import hiqlite
import hiqlite.aio

from conftest import node_config

DEADLINE = 180.0


def take(stream: Any, n: int) -> List[Any]:
    """Read `n` items on a thread, with a deadline no healthy run reaches: past it the stream is
    closed, which ends the iteration."""
    got: List[Any] = []
    errors: List[BaseException] = []

    def read() -> None:
        try:
            for item in stream:
                got.append(item)
                if len(got) == n:
                    return
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=read)
    t.start()
    t.join(DEADLINE)
    if t.is_alive():
        stream.close()
        t.join(DEADLINE)
    assert not errors, errors
    assert len(got) == n, f"{len(got)} of {n} before the deadline"
    return got


def until(w: hiqlite.Watch, want: List[Tuple[Any, ...]]) -> None:
    """Read a watch until it yields `want`."""
    seen: List[Any] = []

    def read() -> None:
        for rows in w:
            seen.append(rows)
            if rows == want:
                return

    t = threading.Thread(target=read)
    t.start()
    t.join(DEADLINE)
    if t.is_alive():
        w.close()
        t.join(DEADLINE)
    assert seen and seen[-1] == want, seen[-5:]


def insert(conn: hiqlite.Connection, first: int, n: int) -> None:
    for i in range(first, first + n):
        conn.execute("INSERT INTO items (id, v) VALUES (?, ?)", (i, f"item-{i}"))


def ids(changes: List[hiqlite.Change]) -> List[int]:
    return [c.new["id"] for c in changes if c.new is not None]


@pytest.fixture
def db(tmp_path) -> Iterator[hiqlite.Connection]:
    """A one-node embedded database that captures changes (capture is off by default)."""
    conn = hiqlite.connect(node=dict(node_config(tmp_path), change_retention=100_000))
    conn.wait_for_leader(60)
    yield conn
    if not conn.closed:
        conn.close()


def test_resume_at_cursor_without_gaps_or_duplicates(tmp_path):
    cfg = dict(node_config(tmp_path), change_retention=100_000)
    conn = hiqlite.connect(node=cfg, autocommit=True)
    conn.wait_for_leader(60)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
    stream = conn.changes(tables=["items"])
    insert(conn, 0, 200)
    first = take(stream, 100)
    assert ids(first) == list(range(100))
    assert all(c.op == "insert" and c.table == "items" and c.rowid == c.new["id"] for c in first)
    assert all(c.key == (c.new["id"],) and c.old is None for c in first)
    assert [(c.index, c.seq) for c in first] == sorted({(c.index, c.seq) for c in first})
    assert stream.cursor == first[-1].cursor == f"{first[-1].index}.{first[-1].seq + 1}"
    stream.close()
    assert stream.closed
    assert list(stream) == []

    # Reopened at the cursor, on the same connection: the rest, exactly.
    with conn.changes(from_cursor=first[-1].cursor, tables="ITEMS") as rest:
        assert ids(take(rest, 100)) == list(range(100, 200))

    # Closing and reopening the node: the cursor still resumes there; writes made after the
    # restart follow in order. A remote connection resumes there too.
    conn.close()
    conn = hiqlite.connect(node=cfg, autocommit=True)
    conn.wait_for_leader(60)
    with conn.changes(from_cursor=first[-1].cursor) as again:
        insert(conn, 200, 20)
        assert ids(take(again, 120)) == list(range(100, 220))
    remote = hiqlite.connect(["http://" + conn.status()["api_addr"]], timeout=300, autocommit=True)
    try:
        with remote.changes(from_cursor=first[49].cursor, tables=["items"]) as far:
            got = take(far, 170)
        assert ids(got) == list(range(50, 220))
        assert (got[0].index, got[0].seq) > (first[49].index, first[49].seq)
    finally:
        remote.close()
        conn.close()


def test_tables_filter_old_values_and_ops(db):
    db.autocommit = True
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("CREATE TABLE other (k TEXT PRIMARY KEY, b BLOB) WITHOUT ROWID")
    with db.changes(tables=["other"], old_values=True) as only_other, db.changes() as everything:
        db.execute("INSERT INTO items (id, v) VALUES (1, 'a')")
        db.execute("INSERT INTO other (k, b) VALUES ('x', ?)", (b"\x00\xff",))
        db.execute("UPDATE other SET b = NULL WHERE k = 'x'")
        db.execute("DELETE FROM other WHERE k = 'x'")
        got = take(only_other, 3)
        assert [c.op for c in got] == ["insert", "update", "delete"]
        assert all(c.table == "other" and c.rowid is None and c.key == ("x",) for c in got)
        assert got[0].new == {"k": "x", "b": b"\x00\xff"} and got[0].old is None
        assert got[1].old == {"k": "x", "b": b"\x00\xff"} and got[1].new == {"k": "x", "b": None}
        assert got[2].old == {"k": "x", "b": None} and got[2].new is None
        assert got[0].columns == ("k", "b")
        all4 = take(everything, 4)
        assert [c.table for c in all4] == ["items", "other", "other", "other"]
        assert all(c.old is None for c in all4)  # not asked for


def test_cursor_too_old_and_bad_arguments(tmp_path):
    cfg = dict(node_config(tmp_path), change_retention=20)
    conn = hiqlite.connect(node=cfg, autocommit=True)
    try:
        conn.wait_for_leader(60)
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
        insert(conn, 0, 60)
        with pytest.raises(hiqlite.CursorTooOldError, match="too old") as e:
            conn.changes(from_cursor="1")
        assert e.value.code == "HIQLITE_CURSOR_TOO_OLD"
        assert isinstance(e.value, hiqlite.OperationalError)
        for bad in ["", "x", "1.", "-1", "1.2.3"]:
            with pytest.raises(hiqlite.ProgrammingError, match="not a change cursor"):
                conn.changes(from_cursor=bad)
        with pytest.raises(hiqlite.ProgrammingError):
            conn.changes(tables=[""])
        with pytest.raises(hiqlite.ProgrammingError):
            conn.changes(tables=[1])  # type: ignore[list-item]
        with pytest.raises(hiqlite.ProgrammingError):
            conn.changes(from_cursor=5)  # type: ignore[arg-type]
        with pytest.raises(hiqlite.OperationalError, match="no_such"):
            conn.watch("SELECT * FROM no_such")
        with pytest.raises(hiqlite.ProgrammingError):
            conn.watch("SELECT ?", (object(),))
    finally:
        conn.close()
    with pytest.raises(hiqlite.ProgrammingError):
        conn.changes()


def test_close_from_another_thread_ends_a_waiting_read(db):
    db.autocommit = True
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
    stream = db.changes()
    w = db.watch("SELECT count(*) FROM items")
    assert next(w) == [(0,)]
    with pytest.raises(hiqlite.ProgrammingError, match="nothing to watch"):
        db.watch("SELECT 1")
    done = threading.Event()
    results: List[Any] = []

    def read() -> None:
        results.append(list(stream))
        results.append(list(w))
        done.set()

    t = threading.Thread(target=read)
    t.start()
    stream.close()
    w.close()
    assert done.wait(DEADLINE)
    t.join(DEADLINE)
    assert results == [[], []]


def test_watch_yields_rows_at_once_and_after_writes(db):
    db.autocommit = True
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
    with db.watch("SELECT id, v FROM items WHERE v LIKE ? ORDER BY id", ("w%",)) as w:
        assert next(w) == []
        assert list(w.columns) == ["id", "v"]
        db.execute("INSERT INTO items (id, v) VALUES (1, 'w1')")
        until(w, [(1, "w1")])
        db.execute("INSERT INTO items (id, v) VALUES (2, 'other')")
        db.execute("INSERT INTO items (id, v) VALUES (3, 'w3')")
        until(w, [(1, "w1"), (3, "w3")])
    assert w.closed


def test_asyncio_changes_and_watch(tmp_path):
    async def main() -> None:
        cfg = dict(node_config(tmp_path), change_retention=100_000)
        async with hiqlite.aio.connect(node=cfg, autocommit=True) as conn:
            await conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
            stream = await conn.changes(tables=["items"], old_values=True)
            async with conn.watch("SELECT count(*) FROM items") as w:
                assert await asyncio.wait_for(w.__anext__(), DEADLINE) == [(0,)]
                for i in range(50):
                    await conn.execute("INSERT INTO items (id, v) VALUES (?, ?)", (i, f"item-{i}"))

                async def read(s: hiqlite.aio.ChangeStream, n: int) -> List[hiqlite.Change]:
                    got: List[hiqlite.Change] = []
                    async for c in s:
                        got.append(c)
                        if len(got) == n:
                            break
                    return got

                first = await asyncio.wait_for(read(stream, 25), DEADLINE)
                assert ids(first) == list(range(25))
                await stream.close()
                async with conn.changes(from_cursor=first[-1].cursor) as rest:
                    assert ids(await asyncio.wait_for(read(rest, 25), DEADLINE)) == list(range(25, 50))

                async def counts() -> None:
                    async for rows in w:
                        if rows == [(50,)]:
                            return

                await asyncio.wait_for(counts(), DEADLINE)
            assert w.closed
            # A waiting step ends once closed.
            waiting = asyncio.ensure_future(stream.__anext__())
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(waiting, DEADLINE)
            open_stream = await conn.changes()
            pending = asyncio.ensure_future(open_stream.__anext__())
            await asyncio.sleep(0)
            await open_stream.close()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(pending, DEADLINE)
            with pytest.raises(hiqlite.ProgrammingError, match="not a change cursor"):
                await conn.changes(from_cursor="nope")

    asyncio.run(main())
