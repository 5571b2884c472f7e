"""Coordination primitives from Python: replicated key/value entries (TTL, CAS, get-and-delete,
namespace limits) and counters, on a 3-node cluster of embedded nodes and through a remote
connection, blocking and asyncio."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

import pytest

import hiqlite
import hiqlite.aio


def eventually(cond: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait until `cond()` holds; fail after a deadline no healthy run reaches."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def remote_of(cluster) -> hiqlite.Connection:
    urls = ["http://" + c.status()["api_addr"] for c in cluster]
    return hiqlite.connect(urls, timeout=300, autocommit=True)


def test_put_get_across_nodes(cluster):
    a, b, c = cluster
    a.kv_put("cfg", "bytes", b"\x00\xff")
    b.kv_put("cfg", "text", "héllo")
    c.kv_put("cfg", "bytearray", bytearray(b"ba"))
    a.kv_put("cfg", "memoryview", memoryview(b"mv"))
    for conn in cluster:
        assert conn.kv_get("cfg", "bytes", consistency="linearizable") == b"\x00\xff"
        assert conn.kv_get("cfg", "text", consistency="linearizable") == "héllo".encode()
        assert conn.kv_get("cfg", "bytearray", consistency="leader") == b"ba"
        assert conn.kv_get("cfg", "memoryview", consistency="linearizable") == b"mv"
        assert conn.kv_get("cfg", "missing", consistency="linearizable") is None
    # Local reads catch up on every replica.
    eventually(lambda: all(x.kv_get("cfg", "bytes") == b"\x00\xff" for x in cluster), "replicas converge")
    # JSON values, written by one node and read by another.
    b.kv_put_json("cfg", "doc", {"n": [1, 2.5, None], "s": "ü", "ok": True})
    assert c.kv_get_json("cfg", "doc", consistency="linearizable") == {"n": [1, 2.5, None], "s": "ü", "ok": True}
    assert c.kv_get_json("cfg", "nothing", consistency="linearizable") is None
    # Deletes.
    assert c.kv_delete("cfg", "text") is True
    assert c.kv_delete("cfg", "text") is False
    assert all(x.kv_get("cfg", "text", consistency="linearizable") is None for x in cluster)


def test_ttl_expires_on_every_node(cluster):
    cluster[0].kv_put("sessions", "s1", b"alive", ttl=1.0)
    cluster[1].kv_put("sessions", "forever", b"stays")
    assert cluster[2].kv_get("sessions", "s1", consistency="linearizable") in (b"alive", None)
    eventually(
        lambda: all(c.kv_get("sessions", "s1", consistency="linearizable") is None for c in cluster),
        "the entry expired on every node",
    )
    eventually(lambda: all(c.kv_get("sessions", "s1") is None for c in cluster), "local reads agree")
    assert all(c.kv_get("sessions", "forever", consistency="linearizable") == b"stays" for c in cluster)


def test_compare_and_swap_has_one_winner(cluster):
    # Only one of several contenders creating an absent key wins.
    wins = []
    lock = threading.Lock()

    def contend(i: int) -> None:
        conn = cluster[i % 3]
        if conn.kv_replace("locks", "leader", None, f"owner-{i}", ttl=300):
            with lock:
                wins.append(i)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    owner = f"owner-{wins[0]}".encode()
    assert all(c.kv_get("locks", "leader", consistency="linearizable") == owner for c in cluster)
    # Expected value mismatch: no swap; match: swap; None as new deletes.
    assert cluster[1].kv_replace("locks", "leader", b"someone-else", b"x") is False
    assert cluster[1].kv_replace("locks", "leader", owner, b"next") is True
    assert cluster[2].kv_get("locks", "leader", consistency="linearizable") == b"next"
    assert cluster[2].kv_replace("locks", "leader", "next", None) is True
    assert cluster[0].kv_get("locks", "leader", consistency="linearizable") is None


def test_get_and_delete_and_limits(cluster):
    cluster[0].kv_put("queue", "job", b"payload")
    assert cluster[1].kv_get_and_delete("queue", "job") == b"payload"
    assert cluster[2].kv_get_and_delete("queue", "job") is None
    assert all(c.kv_get("queue", "job", consistency="linearizable") is None for c in cluster)
    # A namespace limit evicts the least recently written keys, on every replica alike.
    cluster[0].kv_set_limit("lru", 2)
    for k in ("a", "b", "c"):
        cluster[1].kv_put("lru", k, k)
    for c in cluster:
        got = [c.kv_get("lru", k, consistency="linearizable") for k in ("a", "b", "c")]
        assert got == [None, b"b", b"c"]
    cluster[2].kv_set_limit("lru", None)
    cluster[0].kv_put("lru", "d", b"d")
    assert cluster[0].kv_get("lru", "b", consistency="linearizable") == b"b"


def test_counters_with_concurrent_adders(cluster):
    assert cluster[0].counter_get("hits") == 0
    per_thread, threads = 20, []
    for i in range(6):
        conn = cluster[i % 3]
        threads.append(threading.Thread(target=lambda c=conn: [c.counter_add("hits") for _ in range(per_thread)]))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in cluster:
        assert c.counter_get("hits", consistency="linearizable") == 6 * per_thread
    assert cluster[1].counter_add("hits", -20) == 6 * per_thread - 20
    assert cluster[2].counter_set("hits", 2**62) == 2**62
    assert cluster[0].counter_add("hits", 5) == 2**62 + 5
    eventually(lambda: all(c.counter_get("hits") == 2**62 + 5 for c in cluster), "counters converge")


def test_remote_connection(cluster):
    remote = remote_of(cluster)
    try:
        remote.kv_put("remote", "k", "v", ttl=600)
        assert remote.kv_get("remote", "k", consistency="linearizable") == b"v"
        assert cluster[0].kv_get("remote", "k", consistency="linearizable") == b"v"
        assert remote.kv_replace("remote", "k", "v", "w") is True
        assert remote.kv_get_and_delete("remote", "k") == b"w"
        remote.kv_put_json("remote", "j", [1, "two"])
        assert remote.kv_get_json("remote", "j", consistency="linearizable") == [1, "two"]
        assert remote.counter_add("remote-counter", 3) == 3
        assert remote.counter_get("remote-counter", consistency="linearizable") == 3
        assert cluster[1].counter_get("remote-counter", consistency="linearizable") == 3
    finally:
        remote.close()


def test_bad_input_raises_the_package_exceptions(db):
    with pytest.raises(hiqlite.ProgrammingError) as e:
        db.kv_put("", "k", b"v")
    assert e.value.code == "HIQLITE_INVALID_REQUEST"
    with pytest.raises(hiqlite.ProgrammingError):
        db.counter_add("", 1)
    with pytest.raises(hiqlite.ProgrammingError):
        db.kv_put("ns", "k", 42)  # type: ignore[arg-type]
    with pytest.raises(hiqlite.ProgrammingError) as e:
        db.kv_get("ns", "k", consistency="sometimes")
    assert e.value.code == "HIQLITE_INVALID_REQUEST"
    with pytest.raises(hiqlite.ProgrammingError):
        db.counter_add("c", 2**63)
    with pytest.raises(hiqlite.ProgrammingError):
        db.kv_put_json("ns", "k", object())
    db.kv_put("ns", "not-json", b"\xff")
    with pytest.raises(hiqlite.DataError):
        db.kv_get_json("ns", "not-json")
    db.close()
    with pytest.raises(hiqlite.ProgrammingError):
        db.kv_get("ns", "k")


def test_asyncio(cluster):
    urls = ["http://" + c.status()["api_addr"] for c in cluster]

    async def main() -> None:
        async with hiqlite.aio.connect(urls, timeout=300, autocommit=True) as conn:
            await conn.kv_put("aio", "k", "v", ttl=600)
            assert await conn.kv_get("aio", "k", consistency="linearizable") == b"v"
            assert await conn.kv_replace("aio", "k", b"v", b"w") is True
            assert await conn.kv_replace("aio", "k", b"v", b"x") is False
            assert await conn.kv_get_and_delete("aio", "k") == b"w"
            assert await conn.kv_delete("aio", "k") is False
            await conn.kv_put_json("aio", "j", {"a": 1})
            assert await conn.kv_get_json("aio", "j", consistency="linearizable") == {"a": 1}
            await conn.kv_set_limit("aio", 10)
            results = await asyncio.gather(*(conn.counter_add("aio-counter") for _ in range(30)))
            assert sorted(results) == list(range(1, 31))
            assert await conn.counter_get("aio-counter", consistency="linearizable") == 30
            assert await conn.counter_set("aio-counter", -1) == -1
            with pytest.raises(hiqlite.ProgrammingError):
                await conn.kv_put("", "k", b"v")

    asyncio.run(main())
    for c in cluster:
        assert c.counter_get("aio-counter", consistency="linearizable") == -1
