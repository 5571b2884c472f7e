"""A 3-node cluster from Python: write on one node, read on all; node API; remote mode."""

from __future__ import annotations

import time

import pytest

import hiqlite


def agreed_leader(cluster, timeout: float = 60) -> int:
    """Wait until exactly one node says it leads and every node names it; return its id. The
    nodes are asked one after the other, so an election in between (a loaded machine can delay
    heartbeats) makes the answers disagree for a moment: ask again rather than fail."""
    deadline = time.monotonic() + timeout
    while True:
        leader_id = cluster[0].wait_for_leader(60)
        leaders = sum(c.is_leader() for c in cluster)
        named = [c.leader() for c in cluster]
        if leaders == 1 and all(n == leader_id for n in named):
            return leader_id
        assert time.monotonic() < deadline, f"no agreed leader: {leaders} leaders, named {named}"
        time.sleep(0.05)


def test_three_nodes_write_on_one_read_on_all(cluster):
    leader_id = agreed_leader(cluster)
    follower = next(c for c in cluster if not c.is_leader())
    follower.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
    follower.executemany("INSERT INTO kv VALUES (?, ?)", [(f"k{i}", bytes([i])) for i in range(50)])
    for c in cluster:
        # Linearizable works on followers too: it waits until this node applied the writes.
        assert c.query("SELECT count(*) FROM kv", consistency="linearizable") == [(50,)]
    deadline = time.monotonic() + 60
    while any(c.query("SELECT count(*) FROM kv", consistency="local") != [(50,)] for c in cluster):
        assert time.monotonic() < deadline, "replicas did not converge"
        time.sleep(0.05)
    st = cluster[0].status()
    assert st["leader"] == agreed_leader(cluster) and sorted(st["voters"]) == [1, 2, 3]
    assert len(cluster[0].nodes()) == 3


def test_remote_connection_to_the_cluster(cluster):
    cluster[0].wait_for_leader(60)
    urls = ["http://" + c.status()["api_addr"] for c in cluster]
    # One address is enough: the others are discovered. The deadline is one no call here can
    # reach on a slow machine: nothing below is about timeouts.
    remote = hiqlite.connect(urls[2], timeout=300)
    remote.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB, score REAL)")
    remote.execute("INSERT INTO r (name, data, score) VALUES (?, ?, ?)", ("a", b"\x00\xff", 1.0))
    assert remote.in_transaction
    remote.commit()
    assert remote.execute("SELECT name, data, score FROM r").fetchall() == [("a", b"\x00\xff", 1.0)]
    remote.autocommit = True
    cur = remote.execute("INSERT INTO r (name) VALUES (?)", ("b",))
    assert (cur.rowcount, cur.lastrowid) == (1, 2)
    with pytest.raises(hiqlite.IntegrityError) as e:
        remote.execute("INSERT INTO r (name) VALUES ('a')")
    assert e.value.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"
    assert remote.query("SELECT count(*) FROM r", cached=True, ttl=5) == [(2,)]
    assert remote.leader() == agreed_leader(cluster)
    remote.close()
    # Nothing listens here: the error says so, in the PEP 249 hierarchy.
    from conftest import free_port

    # Every connect is refused at once: the client gives up after its retries (about 8 s), long
    # before this deadline, so the error is "unreachable" however slow the machine.
    dead = hiqlite.connect(f"http://127.0.0.1:{free_port()}", timeout=300, autocommit=True)
    with pytest.raises(hiqlite.UnreachableError):
        dead.execute("SELECT 1")
