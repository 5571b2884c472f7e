"""Backups, restores and migrations from Python: embedded and through a remote connection,
blocking and with asyncio, on real nodes."""

from __future__ import annotations

import asyncio

import pytest

import hiqlite
import hiqlite.aio

MIGRATIONS = [
    (1, "init", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"),
    (2, "seed", "INSERT INTO t (v) VALUES ('a'), ('b')"),
]


def count(conn: hiqlite.Connection, sql: str = "SELECT count(*) FROM t") -> int:
    n: int = conn.query(sql, consistency="leader")[0][0]
    return n


def test_migrate_backup_restore(db, tmp_path):
    db.autocommit = True
    assert db.migrate(MIGRATIONS) == 2
    assert db.migrate(MIGRATIONS) == 0
    folder = tmp_path / "migrations"
    folder.mkdir()
    for i, name, sql in MIGRATIONS:
        (folder / f"{i:03}_{name}.sql").write_text(sql)
    (folder / "003_more.sql").write_text("INSERT INTO t (v) VALUES ('c')")
    (folder / "notes.txt").write_text("not a migration")
    assert db.migrate(folder) == 1
    assert db.migrate(str(folder)) == 0
    assert count(db) == 3

    file = tmp_path / "backup.db"
    index = db.backup(str(file))
    assert index is not None and index > 0
    with pytest.raises(hiqlite.ProgrammingError, match="exists"):
        db.backup(file)
    db.execute("DELETE FROM t")
    db.execute("CREATE TABLE added_later (x)")
    db.restore(file)
    assert count(db) == 3
    assert count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'added_later'") == 0

    # Bad input raises the package's exceptions; nothing changes.
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database")
    with pytest.raises(hiqlite.Error):
        db.restore(junk)
    with pytest.raises(hiqlite.Error):
        db.restore(tmp_path / "missing.db")
    with pytest.raises(hiqlite.Error, match="changed after it was applied"):
        db.migrate([(1, "init", "CREATE TABLE other (x)")])
    with pytest.raises(hiqlite.Error):
        db.migrate(tmp_path / "no-such-folder")
    assert count(db) == 3


def test_remote_and_asyncio(db, tmp_path):
    db.autocommit = True
    url = "http://" + db.status()["api_addr"]
    remote = hiqlite.connect([url], timeout=300, autocommit=True)
    assert remote.migrate(MIGRATIONS) == 2
    file = tmp_path / "remote.db"
    remote.backup(file)  # a remote node does not say which index the copy holds
    assert file.stat().st_size > 0
    remote.execute("DELETE FROM t WHERE id = 1")
    remote.restore(file)
    assert count(db) == 2
    remote.close()

    async def main() -> None:
        async with hiqlite.aio.connect([url], timeout=300, autocommit=True) as conn:
            assert await conn.migrate(MIGRATIONS) == 0
            path = tmp_path / "aio.db"
            await conn.backup(path)
            await conn.execute("DELETE FROM t")
            await conn.restore(path)
            with pytest.raises(hiqlite.Error):
                await conn.restore(tmp_path / "missing.db")

    asyncio.run(main())
    assert count(db) == 2
