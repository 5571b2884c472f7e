"""The Python face's runner for the differential test (tests/differential/PROTOCOL.md).

Reads ``{"urls": [...], "steps": [...]}`` as JSON on stdin, runs each step through the DB-API
connection as a remote client of the cluster at ``urls``, and writes ``{"results": [...]}`` as
JSON on stdout (one result per step, in order). Logs go to stderr. Exits 0 unless the input or
the connection itself is unusable.

- ``exec`` outside a transaction runs on its own (the connection is in autocommit mode); reads
  at ``linearizable`` consistency. Between ``begin`` and ``commit``/``rollback`` every ``exec``
  (reads too) runs inside the connection's transaction and sees its writes.
- ``begin``: ``BEGIN`` through the connection; ``commit``/``rollback``: ``conn.commit()`` /
  ``conn.rollback()``.
- Values: ``null``, ``{"int": "<decimal>"}``, ``{"real": <number>}``, ``{"text": ...}``,
  ``{"blob": "<hex>"}``. JSON has no infinities or NaN: a non-finite real is written as
  ``{"real": "inf" | "-inf" | "nan"}`` (the protocol does not cover them).

Run: ``python differential_runner.py < input.json``
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Dict, List

import hiqlite


def value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, bool):  # never returned by the engine, but an int subclass: be explicit
        return {"int": str(int(v))}
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        if math.isfinite(v):
            return {"real": v}
        return {"real": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    if isinstance(v, str):
        return {"text": v}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"blob": bytes(v).hex()}
    raise TypeError(f"unexpected value type {type(v).__name__}")


def error(e: BaseException) -> Dict[str, Any]:
    code = getattr(e, "sqlite_errorcode", 0) if isinstance(e, hiqlite.Error) else 0
    return {"err": {"code": int(code or 0), "message": str(e)}}


def exec_step(conn: hiqlite.Connection, sql: str, read: bool) -> Dict[str, Any]:
    cur = conn.cursor()
    # Outside a transaction a read goes through the read API (a query at the connection's
    # linearizable consistency), a write through the write API; the DB-API routes a statement
    # by its text, and inside a transaction both run in it.
    cur.execute(sql, consistency="linearizable" if read else None)
    columns: List[str] = [d[0] for d in cur.description] if cur.description is not None else []
    rows = [[value(v) for v in row] for row in cur.fetchall()] if cur.description is not None else []
    return {
        "ok": {
            "columns": columns,
            "rows": rows,
            "changes": max(cur.rowcount, 0),
            "last_insert_id": cur.lastrowid or 0,
        }
    }


def run(doc: Dict[str, Any]) -> Dict[str, Any]:
    urls = doc["urls"]
    conn = hiqlite.connect(urls, timeout=120, consistency="linearizable", autocommit=True)
    results: List[Dict[str, Any]] = []
    try:
        for i, step in enumerate(doc["steps"]):
            op = step.get("op")
            try:
                if op == "exec":
                    results.append(exec_step(conn, step["sql"], bool(step.get("read", False))))
                elif op == "begin":
                    conn.execute("BEGIN")
                    results.append({"ok": {}})
                elif op == "commit":
                    conn.commit()
                    results.append({"ok": {}})
                elif op == "rollback":
                    conn.rollback()
                    results.append({"ok": {}})
                else:
                    raise ValueError(f"step {i}: unknown op {op!r}")
            except hiqlite.Error as e:
                print(f"step {i} ({op}): {type(e).__name__}: {e}", file=sys.stderr)
                results.append(error(e))
    finally:
        try:
            conn.close()
        except hiqlite.Error as e:
            print(f"closing: {e}", file=sys.stderr)
    return {"results": results}


def main() -> int:
    doc = json.load(sys.stdin)
    out = run(doc)
    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
