"""The asyncio API: awaitable calls on the library's runtime, interactive transactions, errors."""

from __future__ import annotations

import asyncio
import time

import pytest

import hiqlite
import hiqlite.aio
from conftest import node_config


async def wait_until_leader(conn, timeout: float = 60) -> None:
    """Wait (a condition, with a generous deadline) until the one node leads."""
    deadline = time.monotonic() + timeout
    while not await conn.is_leader():
        assert time.monotonic() < deadline, "the node never became leader"
        await asyncio.sleep(0.05)


def test_asyncio_connection(tmp_path):
    async def main() -> None:
        async with hiqlite.aio.connect(node=node_config(tmp_path), autocommit=True) as conn:
            await wait_until_leader(conn)
            await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            cur = await conn.execute("INSERT INTO t (v) VALUES (?)", ("a",))
            assert (cur.rowcount, cur.lastrowid) == (1, 1)
            # Many calls in flight at once on one connection, no thread per call.
            await asyncio.gather(*(conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),)) for i in range(50)))
            cur = await conn.execute("SELECT count(*) FROM t")
            assert await cur.fetchall() == [(51,)]
            rows = [r async for r in await conn.execute("SELECT v FROM t WHERE id <= 2 ORDER BY id")]
            assert len(rows) == 2 and rows[0] == ("a",)
            with pytest.raises(hiqlite.IntegrityError):
                await conn.execute("INSERT INTO t (id, v) VALUES (1, 'dup')")
            # Transactions: a write begins one, reads in it see its writes.
            conn.autocommit = False
            cur = await conn.execute("DELETE FROM t")
            assert conn.in_transaction and cur.rowcount == 51
            cur = await conn.execute("SELECT count(*) FROM t")
            assert await cur.fetchone() == (0,)
            await conn.rollback()
            assert not conn.in_transaction
            cur = await conn.executemany("INSERT INTO t (v) VALUES (?)", [("x",), ("y",)])
            assert conn.in_transaction and cur.rowcount == 2
            await conn.execute("SAVEPOINT sp")
            await conn.execute("INSERT INTO t (v) VALUES ('undone')")
            await conn.execute("ROLLBACK TO sp")
            await conn.execute("RELEASE sp")
            with pytest.raises(hiqlite.ProgrammingError):
                conn.autocommit = True  # a property cannot await the commit
            await conn.commit()
            assert not conn.in_transaction
            cur = await conn.execute("SELECT count(*) FROM t", consistency="linearizable")
            assert await cur.fetchone() == (53,)
            url = "http://" + (await conn.status())["api_addr"]
            async with hiqlite.aio.connect(url, timeout=300) as remote:  # no call here is about timeouts
                cur = await remote.execute("INSERT INTO t (v) VALUES ('remote')")
                assert (cur.rowcount, cur.lastrowid) == (1, 54)
                cur = await remote.execute("SELECT count(*) FROM t")
                assert await cur.fetchall() == [(54,)], "the transaction sees its own insert"
                cur = await conn.execute("SELECT count(*) FROM t")
                assert await cur.fetchall() == [(53,)], "others do not, before the commit"
            cur = await conn.execute("SELECT count(*) FROM t", consistency="linearizable")
            assert await cur.fetchall() == [(54,)], "the remote block committed on exit"
            with pytest.raises(ZeroDivisionError):
                async with hiqlite.aio.connect(url, timeout=300) as remote:
                    await remote.execute("DELETE FROM t")
                    1 / 0
            cur = await conn.execute("SELECT count(*) FROM t", consistency="linearizable")
            assert await cur.fetchall() == [(54,)], "an exception rolled the block back"
            # Coroutines sharing a connection share its transaction, one statement at a time.
            await asyncio.gather(*(conn.execute("INSERT INTO t (v) VALUES (?)", (f"g{i}",)) for i in range(10)))
            cur = await conn.execute("SELECT count(*) FROM t")
            assert await cur.fetchone() == (64,) and conn.in_transaction
            await conn.rollback()
            cur = await conn.execute("SELECT count(*) FROM t")
            assert await cur.fetchone() == (54,)
        assert conn.closed

    asyncio.run(main())


def test_asyncio_event_loop_keeps_running_during_a_slow_write(tmp_path):
    async def main() -> int:
        async with hiqlite.aio.connect(node=node_config(tmp_path), autocommit=True) as conn:
            await wait_until_leader(conn)
            await conn.execute("CREATE TABLE big (x)")
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.001)
                    ticks += 1

            t = asyncio.create_task(ticker())
            await conn.execute(
                "INSERT INTO big SELECT value FROM (WITH RECURSIVE c(value) AS "
                "(SELECT 1 UNION ALL SELECT value + 1 FROM c WHERE value < 300000) SELECT value FROM c)"
            )
            t.cancel()
            return ticks

    assert asyncio.run(main()) >= 3, "the event loop ran while the write was in flight"
