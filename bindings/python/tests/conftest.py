"""Fixtures: real hiqlite nodes embedded in the test process, on 127.0.0.1 with free ports."""

from __future__ import annotations

import pathlib
import sys
from typing import Iterator, List

import pytest

import hiqlite

# One free-port policy for every Python suite (see tests/support/ports.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tests" / "support"))
from ports import free_port  # noqa: E402,F401  (also imported by tests from here)


def node_config(tmp_path, node_id: int = 1, peers=None, raft=None, api=None) -> dict:
    cfg = {
        "node_id": node_id,
        "data_dir": str(tmp_path / f"node-{node_id}"),
        "raft_addr": f"127.0.0.1:{raft or 0}",
        "api_addr": f"127.0.0.1:{api or 0}",
        "secret": "python-test-secret-0123",
        # Margin for a loaded machine (tests share two cores with other work): a follower that
        # misses heartbeats for a second would start needless elections, and a write that
        # waits a few seconds would fail a test that is not about timeouts.
        "heartbeat_ms": 200,
        "election_timeout_min_ms": 2000,
        "election_timeout_max_ms": 4000,
        "request_timeout_ms": 60000,
    }
    if peers:
        cfg["peers"] = peers
    return cfg


@pytest.fixture
def db(tmp_path) -> Iterator[hiqlite.Connection]:
    """A one-node embedded database (autocommit off, as PEP 249 wants)."""
    conn = hiqlite.connect(node=node_config(tmp_path))
    conn.wait_for_leader(60)
    yield conn
    if not conn.closed:
        conn.close()


@pytest.fixture
def cluster(tmp_path) -> Iterator[List[hiqlite.Connection]]:
    """Three embedded nodes forming one cluster, each with its own connection."""
    ports = [(free_port(), free_port()) for _ in range(3)]
    peers = [
        {"id": i + 1, "raft_addr": f"127.0.0.1:{r}", "api_addr": f"127.0.0.1:{a}"}
        for i, (r, a) in enumerate(ports)
    ]
    conns = [
        hiqlite.connect(node=node_config(tmp_path, i + 1, peers, r, a), autocommit=True)
        for i, (r, a) in enumerate(ports)
    ]
    for c in conns:
        c.wait_for_leader(60)
    yield conns
    for c in conns:
        if not c.closed:
            c.close()
