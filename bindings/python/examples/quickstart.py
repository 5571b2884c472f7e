"""Embed a hiqlite node from Python: DB-API 2.0 and asyncio. Type-checked with mypy --strict.

Run: python bindings/python/examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import List, Tuple

import hiqlite
import hiqlite.aio


def main(data_dir: str) -> str:
    conn = hiqlite.connect(node={"data_dir": data_dir, "raft_addr": "127.0.0.1:0", "api_addr": "127.0.0.1:0"})
    conn.wait_for_leader(30)
    with conn:  # one transaction: committed (one Raft log entry) when the block ends
        conn.execute("CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER)")
        conn.executemany("INSERT INTO todo (title, done) VALUES (?, ?)", [("write docs", 0), ("ship it", 0)])
        # Reads inside the transaction see its own writes.
        print("in the transaction:", conn.execute("SELECT count(*) FROM todo").fetchone())
    cur = conn.execute("UPDATE todo SET done = 1 WHERE title = :t", {"t": "write docs"})
    print("updated:", cur.rowcount, "in transaction:", conn.in_transaction)
    conn.commit()
    rows: List[Tuple[int, str, int]] = conn.execute("SELECT id, title, done FROM todo ORDER BY id").fetchall()
    print(rows)
    try:
        with conn:
            conn.execute("INSERT INTO todo (title) VALUES (NULL)")
    except hiqlite.IntegrityError as e:  # the block rolled the transaction back
        print("refused:", e.sqlite_errorname, e)
    # Read-modify-write: BEGIN makes the SELECT part of the transaction, which is serializable.
    with conn:
        conn.execute("BEGIN")
        (n,) = conn.execute("SELECT count(*) FROM todo WHERE done = 0").fetchone()
        conn.execute("INSERT INTO todo (title, done) VALUES (?, 0)", (f"todo #{n + 1}",))
    print("leader:", conn.leader(), "cached:", conn.query("SELECT count(*) FROM todo", cached=True))
    api = str(conn.status()["api_addr"])
    asyncio.run(remote(f"http://{api}"))
    conn.close()
    return api


async def remote(url: str) -> None:
    async with hiqlite.aio.connect(url) as db:  # leaving the block commits
        cur = await db.execute("INSERT INTO todo (title, done) VALUES (?, 1)", ("over HTTP",))
        print("inserted id", cur.lastrowid)
        cur = await db.execute("SELECT count(*) FROM todo WHERE done = ?", (1,))
        print("done (over HTTP, in the transaction):", await cur.fetchone())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        main(d)
