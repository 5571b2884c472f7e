"""Distributed locks from Python: mutual exclusion across the nodes of a 3-node cluster and a
remote connection, fencing tokens, FIFO waiting with a deadline, release by `with`, by
`release()` and by dropping the handle, blocking and asyncio."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Callable, List, Optional

import pytest

import hiqlite
import hiqlite.aio
from conftest import node_config


def eventually(cond: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait until `cond()` holds; fail after a deadline no healthy run reaches."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def urls_of(cluster) -> List[str]:
    return ["http://" + c.status()["api_addr"] for c in cluster]


def test_one_holder_at_a_time_across_nodes(cluster):
    a, b, c = cluster
    first = a.try_lock("job", lease=30)
    assert first is not None and first.is_held() and first.name == "job"
    assert b.try_lock("job") is None
    assert c.try_lock("job") is None
    assert a.try_lock("job") is None  # not reentrant, also on the same node
    assert first.release() is True
    assert first.is_held() is False
    assert first.release() is False  # already released
    second = b.try_lock("job", lease=30)
    assert second is not None and second.token > first.token
    assert c.try_lock("job") is None
    second.release()
    # Other names are independent.
    x, y = a.try_lock("x"), b.try_lock("y")
    assert x is not None and y is not None
    x.release()
    y.release()


def test_with_releases_and_tokens_grow(cluster):
    a, b, c = cluster
    tokens = []
    for conn in (a, b, c, a):
        with conn.lock("section", lease=30, wait=60) as lk:
            assert lk.is_held()
            tokens.append(lk.token)
            assert all(other.try_lock("section") is None for other in cluster)
        assert not lk.is_held()
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    # An exception inside the block releases it too.
    with pytest.raises(RuntimeError):
        with b.lock("section") as lk:
            raise RuntimeError("boom")
    got = c.try_lock("section")
    assert got is not None and got.token > tokens[-1]
    got.release()


def test_waiter_times_out_then_waiter_gets_it(cluster):
    a, b, c = cluster
    held = a.lock("queue", lease=30, wait=10)
    with pytest.raises(hiqlite.ClusterTimeoutError) as e:
        b.lock("queue", lease=30, wait=0.3)
    assert e.value.code == "HIQLITE_TIMEOUT"
    # A waiter with a long wait gets the lock once the holder releases it.
    result: List[Optional[hiqlite.Lock]] = []
    errors: List[BaseException] = []

    def wait_for_it() -> None:
        try:
            result.append(c.lock("queue", lease=30, wait=120))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=wait_for_it)
    t.start()
    # It is in line: try_lock does not jump the queue (nor is the lock free).
    assert b.try_lock("queue") is None
    held.release()
    t.join(120)
    assert not t.is_alive() and not errors, errors
    got = result[0]
    assert got is not None and got.is_held() and got.token > held.token
    assert a.try_lock("queue") is None
    got.release()


def test_dropping_an_unreleased_lock_releases_it(cluster):
    a, b, _ = cluster
    lk = a.try_lock("dropped", lease=60)
    assert lk is not None
    token = lk.token
    del lk
    gc.collect()
    taken: List[hiqlite.Lock] = []

    def free() -> bool:
        got = b.try_lock("dropped", lease=60)
        if got is not None:
            taken.append(got)
        return got is not None

    # Well before the 60 s lease would end.
    eventually(free, "the dropped lock was released", timeout=30)
    assert taken[0].token > token
    taken[0].release()


def test_bad_arguments(db):
    with pytest.raises(hiqlite.ProgrammingError) as e:
        db.lock("l", lease=0)
    assert e.value.code == "HIQLITE_INVALID_REQUEST"
    with pytest.raises(hiqlite.ProgrammingError):
        db.try_lock("l", lease=-1)
    with pytest.raises(hiqlite.ProgrammingError):
        db.lock("l", wait=float("nan"))
    db.close()
    with pytest.raises(hiqlite.ProgrammingError):
        db.try_lock("l")


def test_remote_connection(cluster):
    remote = hiqlite.connect(urls_of(cluster), timeout=300, autocommit=True)
    try:
        with remote.lock("remote", lease=30, wait=60) as lk:
            assert cluster[0].try_lock("remote") is None
            assert remote.try_lock("remote") is None
        got = cluster[1].try_lock("remote")
        assert got is not None and got.token > lk.token
        # A wait that runs out is withdrawn by the server: a definite timeout, remote too.
        with pytest.raises(hiqlite.ClusterTimeoutError):
            remote.lock("remote", wait=0.3)
        got.release()
    finally:
        remote.close()


def test_asyncio(cluster):
    async def main() -> None:
        async with hiqlite.aio.connect(urls_of(cluster), timeout=300, autocommit=True) as conn:
            async with conn.lock("aio", lease=30, wait=60) as lk:
                assert lk.is_held()
                assert await conn.try_lock("aio") is None
                assert cluster[2].try_lock("aio") is None
                with pytest.raises(hiqlite.ClusterTimeoutError):
                    await conn.lock("aio", wait=0.3)
            assert not lk.is_held()
            again = await conn.lock("aio", lease=30)
            assert again.token > lk.token
            # A waiter in another task gets it when the holder releases.
            waiter = asyncio.ensure_future(conn.lock("aio", lease=30, wait=120))
            assert await again.release() is True
            assert await again.release() is False
            third = await asyncio.wait_for(waiter, 120)
            assert third.token > again.token
            maybe = await conn.try_lock("aio-other")
            assert maybe is not None
            await maybe.release()
            await third.release()

    asyncio.run(main())
    got = cluster[0].try_lock("aio")
    assert got is not None
    got.release()



def test_asyncio_embedded_timeout(tmp_path):
    async def main() -> None:
        # Writes (taking a lock is one) wait for the node's first leader.
        async with hiqlite.aio.connect(node=node_config(tmp_path), autocommit=True) as conn:
            held = await conn.lock("busy", lease=30)
            with pytest.raises(hiqlite.ClusterTimeoutError) as e:
                await conn.lock("busy", wait=0.3)
            assert e.value.code == "HIQLITE_TIMEOUT"
            entered = False
            with pytest.raises(hiqlite.ClusterTimeoutError):
                async with conn.lock("busy", wait=0.3):
                    entered = True
            assert not entered
            assert await held.release() is True
            async with conn.lock("busy", wait=60) as lk:
                assert lk.token > held.token

    asyncio.run(main())
