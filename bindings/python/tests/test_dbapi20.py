"""The generic DB-API 2.0 compliance suite (Stuart Bishop's dbapi20.py, from PyPI's
`dbapi-compliance`), run against remote connections to an embedded node.

The suite runs twice. In autocommit mode every test passes. In the default transactional mode
the tests marked below fail, all for one documented reason: writes in a transaction are buffered
in the connection and applied atomically through Raft at `commit()`, so a read in the same
transaction does not see them (the suite inserts and then selects without committing). DDL is
committed at once in both modes (`executeDDL1/2` commit, as the suite allows).
"""

from __future__ import annotations

import shutil
import tempfile

import dbapi20
import pytest

import hiqlite
from conftest import free_port

_node = None
_dir = None


def setup_module() -> None:
    global _node, _dir
    _dir = tempfile.mkdtemp()
    api = free_port()
    _node = hiqlite.connect(node={"data_dir": _dir, "raft_addr": f"127.0.0.1:{free_port()}",
                                  "api_addr": f"127.0.0.1:{api}"})
    _node.wait_for_leader(60)
    TestHiqliteDbApi20.connect_args = (f"http://127.0.0.1:{api}",)
    TestHiqliteDbApi20Autocommit.connect_args = (f"http://127.0.0.1:{api}",)


def teardown_module() -> None:
    if _node is not None:
        _node.close()
    if _dir is not None:
        shutil.rmtree(_dir, ignore_errors=True)


_OWN_WRITES = [
    "test_None", "test_cursor_isolation", "test_execute", "test_executemany", "test_fetchall",
    "test_fetchmany", "test_fetchone", "test_mixedfetch", "test_setinputsizes", "test_setoutputsize_basic",
]


def _expect_fail(name):
    """A fresh wrapper (marking the suite's own function would mark it for every subclass)."""
    base = getattr(dbapi20.DatabaseAPI20Test, name)

    @pytest.mark.xfail(strict=True, reason="reads do not see the transaction's buffered writes")
    def test(self):
        base(self)

    test.__name__ = name
    return test


class TestHiqliteDbApi20(dbapi20.DatabaseAPI20Test):
    driver = hiqlite
    connect_args = ()
    # A deadline no call of the suite can reach on a slow machine: it is not about timeouts.
    connect_kw_args: dict = {"timeout": 300}
    lower_func = ""  # no stored procedures (`callproc` is optional)

    # The suite allows drivers to commit DDL right away.
    def executeDDL1(self, cursor):
        cursor.execute(self.ddl1)
        cursor.connection.commit()

    def executeDDL2(self, cursor):
        cursor.execute(self.ddl2)
        cursor.connection.commit()

    def test_nextset(self):
        pytest.skip("nextset is optional and not offered")

    def test_setoutputsize(self):
        pass

    # Reads in a transaction do not see its own buffered writes (see the module doc).
    for _name in _OWN_WRITES:
        locals()[_name] = _expect_fail(_name)
    del _name


class TestHiqliteDbApi20Autocommit(dbapi20.DatabaseAPI20Test):
    driver = hiqlite
    connect_args = ()
    connect_kw_args = {"autocommit": True, "timeout": 300}
    lower_func = ""

    def test_nextset(self):
        pytest.skip("nextset is optional and not offered")

    def test_setoutputsize(self):
        pass
