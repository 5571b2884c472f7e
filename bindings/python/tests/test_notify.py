"""listen/notify from Python: every notification in one order on every node of a 3-node cluster
and through a remote connection, resuming after an id, the lag marker of a listener that fell
behind (nothing missed), closing from another thread, the end of a listener whose node was
closed, bytes and str payloads, bad arguments; blocking and asyncio."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import List, Tuple

import pytest

import hiqlite
import hiqlite.aio

DEADLINE = 180.0


def urls_of(cluster) -> List[str]:
    return ["http://" + c.status()["api_addr"] for c in cluster]


def take(listener: hiqlite.Listener, n: int) -> Tuple[List[hiqlite.Notification], List[hiqlite.Lagged]]:
    """Read `n` notifications (lag markers collected aside), on a thread with a deadline no
    healthy run reaches: past it the listener is closed, which ends the iteration."""
    notes: List[hiqlite.Notification] = []
    lags: List[hiqlite.Lagged] = []
    errors: List[BaseException] = []

    def read() -> None:
        try:
            for ev in listener:
                if isinstance(ev, hiqlite.Lagged):
                    lags.append(ev)
                    continue
                notes.append(ev)
                if len(notes) == n:
                    return
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=read)
    t.start()
    t.join(DEADLINE)
    if t.is_alive():
        listener.close()
        t.join(DEADLINE)
    assert not errors, errors
    assert len(notes) == n, f"{len(notes)} of {n} notifications before the deadline (lags {lags})"
    return notes, lags


def test_one_order_on_every_node_and_remote(cluster):
    remote = hiqlite.connect(urls_of(cluster), timeout=300, autocommit=True)
    listeners = [c.listen("orders") for c in cluster] + [remote.listen("orders")]
    other = cluster[1].listen("other")
    total = 300
    ids = [[cluster[i % 3], remote][i % 4 == 3].notify("orders", f"n-{i}") for i in range(total)]
    assert ids == sorted(ids) and len(set(ids)) == total
    other_id = cluster[2].notify("other", b"\x00only")
    for listener in listeners:
        notes, lags = take(listener, total)
        assert [n.id for n in notes] == ids
        assert [n.payload for n in notes] == [f"n-{i}".encode() for i in range(total)]
        assert all(n.channel == "orders" for n in notes) and not lags
        listener.close()
    (only,), _ = take(other, 1)
    assert only == hiqlite.Notification(other_id, "other", b"\x00only")
    other.close()

    # Resuming after an id yields exactly what followed it, on any node and remote.
    for conn in (cluster[2], remote):
        with conn.listen("orders", after=ids[199]) as resumed:
            notes, lags = take(resumed, total - 200)
            assert [n.id for n in notes] == ids[200:] and not lags
    with cluster[0].listen("orders", after=0) as from_start:
        notes, _ = take(from_start, total)
        assert [n.id for n in notes] == ids
    remote.close()


def test_lagging_listener_misses_nothing(db):
    slow = db.listen("busy")
    # More than the in-memory buffer (4,096) is published while the listener reads nothing.
    total, writers = 4800, 8
    with ThreadPoolExecutor(writers) as pool:
        per = list(pool.map(lambda w: [db.notify("busy", f"{w}-{i}") for i in range(total // writers)], range(writers)))
    notes, lags = take(slow, total)
    assert lags and all(not lag.lost for lag in lags), lags
    assert sorted(n.id for n in notes) == [n.id for n in notes]
    assert sorted(n.id for n in notes) == sorted(i for ids in per for i in ids)
    slow.close()


def test_payloads_and_bad_arguments(db):
    with db.listen("p") as listener:
        a = db.notify("p", b"\x00\xff")
        b = db.notify("p", "héllo")
        c = db.notify("p", bytearray(b""))
        notes, _ = take(listener, 3)
        assert [(n.id, n.payload) for n in notes] == [(a, b"\x00\xff"), (b, "héllo".encode()), (c, b"")]
        assert repr(listener) == "<hiqlite.Listener 'p'>"
    assert listener.closed and repr(listener) == "<hiqlite.Listener 'p' closed>"
    assert list(listener) == []  # a closed listener yields nothing
    with pytest.raises(hiqlite.ProgrammingError) as e:
        db.notify("", b"x")
    assert e.value.code == "HIQLITE_INVALID_REQUEST"
    with pytest.raises(hiqlite.ProgrammingError):
        db.listen("")
    with pytest.raises(hiqlite.ProgrammingError):
        db.notify("p", 42)  # type: ignore[arg-type]


def test_close_from_another_thread_ends_a_waiting_iteration(db):
    listener = db.listen("quiet")
    done = threading.Event()
    seen: List[hiqlite.Event] = []

    def read() -> None:
        seen.extend(listener)  # waits: nothing is published
        done.set()

    t = threading.Thread(target=read)
    t.start()
    # The reader is waiting (or about to): closing ends its iteration either way.
    listener.close()
    assert done.wait(DEADLINE), "close did not end the waiting iteration"
    t.join(DEADLINE)
    assert seen == []
    listener.close()  # again: nothing


def test_closing_the_node_ends_its_listeners(db):
    listener = db.listen("gone")
    got: List[BaseException] = []
    ended = threading.Event()

    def read() -> None:
        try:
            for _ in listener:
                pass
        except hiqlite.Error as e:
            got.append(e)
        ended.set()

    t = threading.Thread(target=read)
    t.start()
    db.close()
    assert ended.wait(DEADLINE), "the listener did not end when its node was closed"
    t.join(DEADLINE)
    assert len(got) == 1 and got[0].code == "HIQLITE_SHUTDOWN", got  # type: ignore[attr-defined]
    assert list(listener) == []  # the error is raised once; then the iteration is over
    with pytest.raises(hiqlite.ProgrammingError):
        db.listen("gone")


def test_asyncio(cluster):
    async def main() -> None:
        async with hiqlite.aio.connect(urls_of(cluster), timeout=300, autocommit=True) as conn:
            total = 200
            async with conn.listen("aio") as listener:
                embedded = cluster[1].listen("aio")

                async def publish() -> List[int]:
                    return [await conn.notify("aio", f"a-{i}") for i in range(total)]

                async def read() -> List[hiqlite.Notification]:
                    notes: List[hiqlite.Notification] = []
                    async for ev in listener:
                        assert isinstance(ev, hiqlite.Notification), ev
                        notes.append(ev)
                        if len(notes) == total:
                            break
                    return notes

                # Reader and publisher share the event loop: a step that blocked it would
                # stall the publisher, and so the test.
                notes, ids = await asyncio.wait_for(asyncio.gather(read(), publish()), DEADLINE)
                assert [n.id for n in notes] == ids
                assert [n.payload for n in notes] == [f"a-{i}".encode() for i in range(total)]
                same, _ = await asyncio.get_running_loop().run_in_executor(None, take, embedded, total)
                assert same == notes
                embedded.close()

                # Resume after an id, awaited rather than entered.
                resumed = await conn.listen("aio", after=ids[-2])
                last = await asyncio.wait_for(resumed.__anext__(), DEADLINE)
                assert last == notes[-1]

                # close() ends a step that waits.
                waiting = asyncio.ensure_future(resumed.__anext__())
                await asyncio.sleep(0)
                await resumed.close()
                with pytest.raises(StopAsyncIteration):
                    await asyncio.wait_for(waiting, DEADLINE)
                assert resumed.closed
            assert listener.closed
            with pytest.raises(hiqlite.ProgrammingError):
                await conn.notify("", "x")

    asyncio.run(main())


def test_asyncio_embedded(tmp_path):
    from conftest import node_config

    async def main() -> None:
        async with hiqlite.aio.connect(node=node_config(tmp_path), autocommit=True) as conn:
            listener = await conn.listen("e")
            first = await conn.notify("e", b"\x01")
            ev = await asyncio.wait_for(listener.__anext__(), DEADLINE)
            assert ev == hiqlite.Notification(first, "e", b"\x01")
            pending = asyncio.ensure_future(listener.__anext__())
        # Leaving the block closed the node: the waiting step fails with its shutdown.
        with pytest.raises(hiqlite.InterfaceError) as e:
            await asyncio.wait_for(pending, DEADLINE)
        assert e.value.code == "HIQLITE_SHUTDOWN"

    asyncio.run(main())
