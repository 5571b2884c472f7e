"""hiqlite: SQLite replicated with Raft, as a PEP 249 (DB-API 2.0) module.

``hiqlite.connect(node={...})`` embeds a node in this process; ``hiqlite.connect("http://host:4001")``
(or a list of URLs) talks to a remote cluster. ``hiqlite.aio`` is the asyncio face.

Transactions under Raft: outside autocommit mode, writes are buffered in the connection and sent
as one atomic batch by ``commit()``; ``rollback()`` discards them. Reads run at once against the
database and see committed data only, never the transaction's own buffered writes. ``rowcount``
of a buffered write is -1 and its ``lastrowid`` None (nothing ran yet). ``BEGIN``/``COMMIT``/
``ROLLBACK`` statements map to these operations (an explicit ``BEGIN`` buffers even in autocommit
mode); ``SAVEPOINT``/``RELEASE``/``ROLLBACK TO`` raise ``NotSupportedError``. A ``commit()`` that
fails with ``NoLeaderError`` or ``UnreachableError`` (nothing applied) keeps the writes buffered, so
it can be called again; after any other error the transaction is gone. With ``autocommit=True``
every write is committed when ``execute`` returns, and reads see it.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _native
from ._shared import ConnectionState, CursorState, Params, plan, plan_many
from ._errors import (
    ClusterTimeoutError,
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NoLeaderError,
    NotSupportedError,
    OperationalError,
    OutcomeUnknownError,
    ProgrammingError,
    UnauthorizedError,
    UnreachableError,
    Warning,
    call,
)

__all__ = [
    "apilevel", "threadsafety", "paramstyle", "connect", "Connection", "Cursor", "Row",
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError", "NoLeaderError",
    "UnreachableError", "ClusterTimeoutError", "OutcomeUnknownError", "UnauthorizedError",
    "Binary", "Date", "Time", "Timestamp", "DateFromTicks", "TimeFromTicks", "TimestampFromTicks",
    "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID", "statement_kind",
]

apilevel = "2.0"
#: Threads may share the module and connections, not cursors.
threadsafety = 2
#: ``?`` placeholders with a sequence; ``:name`` (also ``@name``, ``$name``) with a dict.
paramstyle = "qmark"

Value = Union[None, int, float, str, bytes]


def statement_kind(sql: str) -> str:
    """``read``, ``write``, ``begin``, ``commit``, ``rollback`` or ``empty``, from the text."""
    return _native.statement_kind(sql)


# --- PEP 249 type objects and constructors -------------------------------------------------


class _TypeObject:
    """Compares equal to the declared column types of one SQLite affinity."""

    def __init__(self, name: str, test: Callable[[str], bool]) -> None:
        self.name = name
        self._test = test

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self._test(other.upper())

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"hiqlite.{self.name}"


STRING = _TypeObject("STRING", lambda t: any(k in t for k in ("CHAR", "CLOB", "TEXT")))
BINARY = _TypeObject("BINARY", lambda t: "BLOB" in t or t == "")
NUMBER = _TypeObject(
    "NUMBER", lambda t: any(k in t for k in ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC", "BOOL"))
)
DATETIME = _TypeObject("DATETIME", lambda t: "DATE" in t or "TIME" in t)
ROWID = _TypeObject("ROWID", lambda t: t == "INTEGER")


def Binary(data: Union[bytes, bytearray, memoryview]) -> bytes:  # noqa: N802 - PEP 249 name
    return bytes(data)


def Date(year: int, month: int, day: int) -> str:  # noqa: N802
    return datetime.date(year, month, day).isoformat()


def Time(hour: int, minute: int, second: int) -> str:  # noqa: N802
    return datetime.time(hour, minute, second).isoformat()


def Timestamp(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str:  # noqa: N802
    return datetime.datetime(year, month, day, hour, minute, second).isoformat(" ")


def DateFromTicks(ticks: float) -> str:  # noqa: N802
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> str:  # noqa: N802
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> str:  # noqa: N802
    return Timestamp(*time.localtime(ticks)[:6])


# --- rows -----------------------------------------------------------------------------------


class Row(tuple):  # type: ignore[type-arg]
    """A result row like ``sqlite3.Row``: a tuple, also indexable by column name (case
    insensitive), with ``keys()``. Use it with ``conn.row_factory = hiqlite.Row``."""

    _columns: Tuple[str, ...]

    def __new__(cls, cursor: "Cursor", values: Tuple[Any, ...]) -> "Row":
        row = super().__new__(cls, values)
        row._columns = tuple(d[0] for d in cursor.description or ())
        return row

    def keys(self) -> List[str]:
        return list(self._columns)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            low = key.lower()
            for i, c in enumerate(self._columns):
                if c.lower() == low:
                    return super().__getitem__(i)
            raise IndexError(f"no column named {key}")
        return super().__getitem__(key)



# --- connection -----------------------------------------------------------------------------


def _native_db(
    target: Union[str, Sequence[str], None],
    node: Optional[Mapping[str, Any]],
    user: Optional[str],
    password: Optional[str],
    timeout: Optional[float],
    consistency: Optional[str],
    ca_pem: Optional[bytes],
    discover: bool,
) -> "_native.Database":
    if node is not None:
        if target is not None:
            raise InterfaceError("give either node=... (embedded) or URLs (remote), not both")
        return call(_native.Database.open_node, json.dumps(dict(node)))
    if target is None:
        raise InterfaceError("connect() needs node={...} for an embedded node or the URL(s) of a cluster")
    urls = [target] if isinstance(target, str) else list(target)
    return call(
        _native.Database.connect, urls, user, password, timeout, consistency, ca_pem, discover
    )


def connect(
    target: Union[str, Sequence[str], None] = None,
    *,
    node: Optional[Mapping[str, Any]] = None,
    user: Optional[str] = None,
    password: Optional[str] = None,
    timeout: Optional[float] = None,
    consistency: Optional[str] = None,
    ca_pem: Optional[bytes] = None,
    discover: bool = True,
    autocommit: bool = False,
) -> "Connection":
    """Open a connection.

    ``node``: start an embedded node with this configuration (the fields of ``NodeConfig``:
    ``node_id``, ``data_dir``, ``raft_addr``, ``api_addr``, ``peers``, ``secret``...). ``target``:
    the API URL(s) of a remote cluster (``user``/``password`` for Basic auth, ``timeout`` seconds
    per call, ``ca_pem`` to trust a private CA, ``discover=False`` to use only these URLs).
    ``consistency``: default read level, ``local``, ``leader`` or ``linearizable``.
    """
    db = _native_db(target, node, user, password, timeout, consistency, ca_pem, discover)
    return Connection(db, autocommit=autocommit, consistency=consistency, owns_node=node is not None)


class Connection(ConnectionState):
    """A PEP 249 connection. Thread-safe (threadsafety 2); the pending transaction is shared by
    every thread using the connection."""

    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError

    def __init__(
        self,
        db: "_native.Database",
        *,
        autocommit: bool = False,
        consistency: Optional[str] = None,
        owns_node: bool = False,
    ) -> None:
        super().__init__(db, autocommit=autocommit, consistency=consistency, owns_node=owns_node)

    # -- PEP 249 --

    def cursor(self) -> "Cursor":
        self._check()
        return Cursor(self)

    def commit(self) -> None:
        """Send the buffered writes as one atomic transaction."""
        db = self._check()
        pending = self._take_pending()
        if not pending:
            return
        try:
            call(db.run, pending, True)
        except Error as e:
            self._commit_failed(pending, e)
            raise

    def rollback(self) -> None:
        """Discard the buffered writes."""
        self._discard()

    def close(self) -> None:
        """Close the connection (pending writes are discarded; an embedded node is stopped).
        Closing a closed connection raises ``ProgrammingError``."""
        db = self._detach()
        if self._owns_node:
            call(db.close)

    # -- sqlite3-style conveniences --

    def execute(self, sql: str, parameters: Params = None, **opts: Any) -> "Cursor":
        return self.cursor().execute(sql, parameters, **opts)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, script: str) -> "Cursor":
        """Commit pending writes, then run a script of several statements as one transaction."""
        db = self._check()
        self.commit()
        call(db.run, [(script, None)], True)
        return self.cursor()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # As sqlite3: commit on success, roll back on error; the connection stays open.
        if self._db is None:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    # -- cluster --

    def status(self) -> Dict[str, Any]:
        """Status of the embedded node, or of the node a remote connection reads from."""
        result: Dict[str, Any] = json.loads(call(self._check().status))
        return result

    def nodes(self) -> List[Dict[str, Any]]:
        """The cluster's members, with ``leader`` and ``reachable`` flags."""
        result: List[Dict[str, Any]] = json.loads(call(self._check().nodes))
        return result

    def leader(self) -> Optional[int]:
        """The leader's node id, if one is known."""
        leader: Optional[int] = self.status().get("leader")
        return leader

    def is_leader(self) -> bool:
        """True if the embedded (or answering) node is the leader."""
        st = self.status()
        return st.get("leader") is not None and st.get("leader") == st.get("id")

    def wait_for_leader(self, timeout: float = 30.0) -> int:
        """Wait until the cluster has a leader; returns its id."""
        leader: int = call(self._check().wait_for_leader, timeout)
        return leader

    def query(
        self,
        sql: str,
        parameters: Params = None,
        *,
        consistency: Optional[str] = None,
        cached: bool = False,
        ttl: Optional[float] = None,
    ) -> List[Any]:
        """Run a read and return all rows (``cached``: through the node's query cache)."""
        return self.execute(sql, parameters, consistency=consistency, cached=cached, ttl=ttl).fetchall()


class Cursor(CursorState):
    """A PEP 249 cursor. Not thread-safe: use one per thread."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection.row_factory)
        self.connection = connection
        self._closed = False

    def _db(self) -> "_native.Database":
        if self._closed:
            raise ProgrammingError("cannot operate on a closed cursor")
        return self.connection._check()

    def execute(
        self,
        operation: str,
        parameters: Params = None,
        *,
        consistency: Optional[str] = None,
        cached: bool = False,
        ttl: Optional[float] = None,
    ) -> "Cursor":
        """Run one statement. Reads run at once (``consistency``: ``local``, ``leader`` or
        ``linearizable``; ``cached``/``ttl``: through the node's query cache); writes are
        buffered until ``commit()`` unless the connection is in autocommit mode."""
        db = self._db()
        self._reset()
        action = plan(self.connection, operation, parameters)
        if action == "read":
            level = consistency or self.connection.consistency
            self._set_rows(call(db.query, operation, parameters, level, cached, ttl))
        elif action == "write":
            self._set_written(call(db.execute, operation, parameters))
        elif action == "commit":
            self.connection.commit()
        elif action == "rollback":
            self.connection.rollback()
        return self

    def executemany(self, operation: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        """Run a write once per parameter set: one atomic batch in autocommit mode, else
        buffered into the transaction."""
        db = self._db()
        self._reset()
        stmts = plan_many(self.connection, operation, seq_of_parameters)
        if stmts:
            self._set_many(call(db.run, stmts, True))
        return self

    def _next_rows(self, n: Optional[int]) -> List[Any]:
        self._db()
        return self._take(n)

    def fetchone(self) -> Any:
        rows = self._next_rows(1)
        return rows[0] if rows else None

    def fetchmany(self, size: Optional[int] = None) -> List[Any]:
        return self._next_rows(self.arraysize if size is None else size)

    def fetchall(self) -> List[Any]:
        return self._next_rows(None)

    def close(self) -> None:
        self._db()
        self._closed = True
        self._rows = None

    def setinputsizes(self, sizes: Any) -> None:
        """No-op (PEP 249 allows it)."""

    def setoutputsize(self, size: Any, column: Optional[int] = None) -> None:
        """No-op (PEP 249 allows it)."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def __enter__(self) -> "Cursor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._closed = True
