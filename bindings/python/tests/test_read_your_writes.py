"""Read-your-writes from Python on a 3-node cluster: a write's ``cursor.log_index`` read with
``min_index`` on another node, and ``read_your_writes`` connections (embedded, remote, asyncio)
whose local reads always see their own writes, on followers too."""

from __future__ import annotations

import asyncio

import pytest

import hiqlite
import hiqlite.aio
from test_cluster import agreed_leader

COUNT = "SELECT count(*) FROM t WHERE id = ?"


def roles(cluster):
    leader_id = agreed_leader(cluster)
    leader = next(c for c in cluster if c.status()["id"] == leader_id)
    followers = [c for c in cluster if c is not leader]
    return leader, followers


def test_a_writes_log_index_read_with_min_index_on_another_node(cluster):
    leader, followers = roles(cluster)
    leader.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    for i in range(1, 101):
        cur = leader.execute("INSERT INTO t (id) VALUES (?)", (i,))
        assert isinstance(cur.log_index, int) and cur.log_index > 0
        reader = followers[i % 2]
        assert reader.query(COUNT, (i,), min_index=cur.log_index) == [(1,)], f"write {i} at {cur.log_index}"
        # The same through a cursor, with the consistency named.
        rows = reader.cursor().execute(COUNT, (i,), consistency="local", min_index=cur.log_index).fetchall()
        assert rows == [(1,)]
    # A read has no log index; a batch has its entry's.
    cur = leader.execute("SELECT 1")
    assert cur.log_index is None
    cur = leader.cursor()
    cur.executemany("INSERT INTO t (id) VALUES (?)", [(1001,), (1002,)])
    assert isinstance(cur.log_index, int)
    assert followers[0].query("SELECT count(*) FROM t WHERE id > 1000", min_index=cur.log_index) == [(2,)]
    assert leader.last_write_index is not None and leader.last_write_index >= cur.log_index


def test_bad_min_index_is_a_clear_error(cluster):
    conn = cluster[0]
    for bad in (-1, 2**64, "3", 1.5, True):
        with pytest.raises(hiqlite.ProgrammingError, match="min_index"):
            conn.execute("SELECT 1", min_index=bad)
    with pytest.raises(hiqlite.ProgrammingError, match="min_index reads locally"):
        conn.execute("SELECT 1", consistency="leader", min_index=1)
    with pytest.raises(hiqlite.ProgrammingError, match="cached"):
        conn.execute("SELECT 1", cached=True, min_index=1)
    assert conn.query("SELECT 1", min_index=0) == [(1,)]


def session_round_trips(conn, base: int) -> None:
    """Writes through ``conn`` (plain, batched, in a transaction) each followed by a local
    read on ``conn``: it must see the write every time."""
    last = conn.last_write_index
    for i in range(base + 1, base + 61):
        if i % 3 == 0:
            conn.execute("INSERT INTO t (id) VALUES (?)", (i,))
        elif i % 3 == 1:
            conn.executemany("INSERT INTO t (id) VALUES (?)", [(i,)])
        else:
            # The commit names no index: the next local read is a linearizable one.
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (id) VALUES (?)", (i,))
            conn.execute("COMMIT")
        assert conn.query(COUNT, (i,), consistency="local") == [(1,)], f"write {i} not seen by its session"
        now = conn.last_write_index
        if last is not None:
            assert now is not None and now >= last, f"last_write_index went from {last} to {now}"
        last = now
    assert last is not None


def test_read_your_writes_connections_on_followers(cluster):
    leader, followers = roles(cluster)
    leader.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    session = followers[0].read_your_writes()
    assert session.is_read_your_writes and not followers[0].is_read_your_writes
    session_round_trips(session, 0)
    session.close()  # the node keeps running: the fixture's connection owns it
    assert followers[0].query("SELECT 1") == [(1,)]

    url = "http://" + followers[1].status()["api_addr"]
    remote = hiqlite.connect(url, timeout=300, consistency="local", autocommit=True, read_your_writes=True)
    assert remote.is_read_your_writes
    session_round_trips(remote, 1000)
    remote.close()


def test_read_your_writes_asyncio(cluster):
    leader, followers = roles(cluster)
    leader.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    url = "http://" + followers[0].status()["api_addr"]
    other = "http://" + followers[1].status()["api_addr"]

    async def main() -> None:
        async with hiqlite.aio.connect(
            url, timeout=300, consistency="local", autocommit=True, read_your_writes=True
        ) as conn, hiqlite.aio.connect(other, timeout=300, consistency="local", autocommit=True) as plain:
            assert conn.is_read_your_writes and not plain.is_read_your_writes
            for i in range(1, 61):
                cur = await conn.execute("INSERT INTO t (id) VALUES (?)", (i,))
                assert isinstance(cur.log_index, int)
                cur2 = await conn.execute(COUNT, (i,))
                assert await cur2.fetchall() == [(1,)], f"write {i} not seen by its session"
                # Another connection, on another node, reads it at its index.
                cur3 = await plain.execute(COUNT, (i,), min_index=cur.log_index)
                assert await cur3.fetchall() == [(1,)]
            with pytest.raises(hiqlite.ProgrammingError, match="min_index"):
                await plain.execute("SELECT 1", min_index=-5)
            session = plain.read_your_writes()
            await session.execute("INSERT INTO t (id) VALUES (1000)")
            cur4 = await session.execute(COUNT, (1000,))
            assert await cur4.fetchall() == [(1,)]
            await session.close()

    asyncio.run(main())
