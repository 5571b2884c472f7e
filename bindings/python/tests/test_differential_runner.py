"""The differential runner (tests/differential/PROTOCOL.md) against a 3-node cluster: its output
shape and values, including a transaction that reads its own write and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

RUNNER = os.path.join(os.path.dirname(__file__), "differential_runner.py")


def run_runner(doc: dict) -> dict:
    # The deadline is a safety net far beyond what the steps take on a loaded machine.
    p = subprocess.run([sys.executable, RUNNER], input=json.dumps(doc), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def ok(columns=(), rows=(), changes=0, last_insert_id=0) -> dict:
    return {"ok": {"columns": list(columns), "rows": [list(r) for r in rows], "changes": changes,
                   "last_insert_id": last_insert_id}}


def i(n: int) -> dict:
    return {"int": str(n)}


def t(s: str) -> dict:
    return {"text": s}


def test_runner_speaks_the_protocol(cluster):
    cluster[0].wait_for_leader(60)
    urls = ["http://" + c.status()["api_addr"] for c in cluster]
    steps = [
        {"op": "exec", "sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, r REAL, b BLOB)", "read": False},
        {"op": "exec", "sql": "INSERT INTO t (v, r, b) VALUES ('a', 1.5, x'00ff')", "read": False},
        {"op": "exec", "sql": "SELECT id, v, r, b, NULL, 9223372036854775807 FROM t", "read": True},
        {"op": "begin"},
        {"op": "exec", "sql": "INSERT INTO t (v) VALUES ('b')", "read": False},
        {"op": "exec", "sql": "SELECT v FROM t ORDER BY id", "read": True},
        {"op": "exec", "sql": "INSERT INTO t (v) VALUES ('a')", "read": False},
        {"op": "exec", "sql": "SELECT count(*) FROM t", "read": True},
        {"op": "commit"},
        {"op": "exec", "sql": "SELECT count(*) FROM t", "read": True},
        {"op": "begin"},
        {"op": "exec", "sql": "DELETE FROM t", "read": False},
        {"op": "exec", "sql": "SELECT count(*) FROM t", "read": True},
        {"op": "rollback"},
        {"op": "exec", "sql": "SELECT count(*) FROM t", "read": True},
        {"op": "exec", "sql": "SELEC 1", "read": True},
    ]
    results = run_runner({"urls": urls, "steps": steps})["results"]
    assert len(results) == len(steps)
    assert results[0] == ok()
    assert results[1] == ok(changes=1, last_insert_id=1)
    assert results[2] == ok(["id", "v", "r", "b", "NULL", "9223372036854775807"],
                            [[i(1), t("a"), {"real": 1.5}, {"blob": "00ff"}, None, i(2**63 - 1)]])
    assert results[3] == {"ok": {}}
    assert results[4] == ok(changes=1, last_insert_id=2)
    assert results[5] == ok(["v"], [[t("a")], [t("b")]]), "the transaction reads its own write"
    assert results[6]["err"]["code"] == 2067
    assert "UNIQUE constraint failed: t.v" in results[6]["err"]["message"]
    assert results[7] == ok(["count(*)"], [[i(2)]]), "a failed statement leaves the transaction open"
    assert results[8] == {"ok": {}}
    assert results[9] == ok(["count(*)"], [[i(2)]])
    assert results[10] == {"ok": {}}
    assert results[11]["ok"]["changes"] == 2
    assert results[12] == ok(["count(*)"], [[i(0)]])
    assert results[13] == {"ok": {}}
    assert results[14] == ok(["count(*)"], [[i(2)]]), "the rollback undid the delete"
    assert results[15]["err"]["code"] == 1 and "syntax error" in results[15]["err"]["message"]
    # What the cluster holds afterwards, seen by every node.
    for c in cluster:
        assert c.query("SELECT v FROM t ORDER BY id", consistency="linearizable") == [("a",), ("b",)]
