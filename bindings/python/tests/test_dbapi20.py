"""The generic DB-API 2.0 compliance suite (Stuart Bishop's dbapi20.py, from PyPI's
`dbapi-compliance`), run against remote connections to an embedded node, unchanged and with no
expected failures, twice: in the default transactional mode (writes begin a transaction, reads in
it see its writes, DDL included) and in autocommit mode.
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
                                  "api_addr": f"127.0.0.1:{api}",
                                  # A test that left a transaction open must not stall the next
                                  # one past its deadline on a loaded machine.
                                  "busy_timeout_ms": 60000})
    _node.wait_for_leader(60)
    TestHiqliteDbApi20.connect_args = (f"http://127.0.0.1:{api}",)
    TestHiqliteDbApi20Autocommit.connect_args = (f"http://127.0.0.1:{api}",)


def teardown_module() -> None:
    if _node is not None:
        _node.close()
    if _dir is not None:
        shutil.rmtree(_dir, ignore_errors=True)


class TestHiqliteDbApi20(dbapi20.DatabaseAPI20Test):
    driver = hiqlite
    connect_args = ()
    # A deadline no call of the suite can reach on a slow machine: it is not about timeouts.
    connect_kw_args: dict = {"timeout": 300}
    lower_func = ""  # no stored procedures (`callproc` is optional)

    def test_nextset(self):
        pytest.skip("nextset is optional and not offered")

    def test_setoutputsize(self):
        pass


class TestHiqliteDbApi20Autocommit(dbapi20.DatabaseAPI20Test):
    driver = hiqlite
    connect_args = ()
    connect_kw_args = {"autocommit": True, "timeout": 300}
    lower_func = ""

    def test_nextset(self):
        pytest.skip("nextset is optional and not offered")

    def test_setoutputsize(self):
        pass
