"""hiqlite: SQLite replicated with Raft, as a PEP 249 (DB-API 2.0) module.

``hiqlite.connect(node={...})`` embeds a node in this process; ``hiqlite.connect("http://host:4001")``
(or a list of URLs) talks to a remote cluster. ``hiqlite.aio`` is the asyncio face.

Transactions are real, interactive and serializable, with the habits of the standard library's
``sqlite3`` module (its default mode): a write (INSERT, UPDATE, DELETE, REPLACE, DDL...) begins
a transaction when none is open; while one is open every statement of the connection runs
inside it, so reads see its writes, ``rowcount``/``lastrowid`` are those of the statement, and a
failing statement leaves the transaction open. ``commit()`` replicates the whole transaction as
one Raft log entry (all or nothing); ``rollback()`` discards it; ``with conn:`` commits on success
and rolls back on an exception. ``BEGIN``, ``COMMIT``/``END``, ``ROLLBACK``, ``SAVEPOINT``,
``RELEASE`` and ``ROLLBACK TO`` statements work as in SQLite (a ``SAVEPOINT`` outside a
transaction begins one, and releasing it commits). Reads outside a transaction run on their own
(``consistency``, ``cached``). A transaction runs on the cluster's leader and holds the right to
write while it is open: other writers wait for it (up to the node's busy timeout, then
``OperationalError`` "database is locked"), so keep transactions short, and do not write through
a second connection while your own transaction is open. A transaction that stays idle too long,
or whose leader changes, is rolled back by the cluster (nothing of it is applied).

With ``autocommit=True`` (or ``isolation_level=None``) each statement runs and commits on its own
unless an explicit ``BEGIN`` opened a transaction.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
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
from ._shared import (
    ConnectionState,
    CursorState,
    KvValue,
    Migrations,
    Params,
    _migration_spec,
    Route,
    check_min_index,
    executemany_kind,
    json_bytes,
    json_value,
    kv_bytes,
    kv_optional,
    read_level,
)
from ._errors import (
    ClusterTimeoutError,
    CursorTooOldError,
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
from ._changes import Change, ChangeStream, Watch, tables_arg
from ._notify import Event, Lagged, Listener, Notification

__all__ = [
    "apilevel", "threadsafety", "paramstyle", "connect", "Connection", "Cursor", "Row",
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError", "NoLeaderError",
    "UnreachableError", "ClusterTimeoutError", "OutcomeUnknownError", "UnauthorizedError",
    "CursorTooOldError", "Change", "ChangeStream", "Watch",
    "Binary", "Date", "Time", "Timestamp", "DateFromTicks", "TimeFromTicks", "TimestampFromTicks",
    "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID", "statement_kind", "Lock",
    "Listener", "Notification", "Lagged", "Event",
]

apilevel = "2.0"
#: Threads may share the module and connections, not cursors.
threadsafety = 2
#: ``?`` placeholders with a sequence; ``:name`` (also ``@name``, ``$name``) with a dict.
paramstyle = "qmark"

Value = Union[None, int, float, str, bytes]


def statement_kind(sql: str) -> str:
    """``read``, ``write``, ``begin``, ``commit``, ``rollback``, ``savepoint`` (SAVEPOINT,
    RELEASE, ROLLBACK TO) or ``empty``, from the text."""
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
    read_your_writes: bool = False,
) -> "_native.Database":
    if node is not None:
        if target is not None:
            raise InterfaceError("give either node=... (embedded) or URLs (remote), not both")
        db = call(_native.Database.open_node, json.dumps(dict(node)))
        return db.read_your_writes() if read_your_writes else db
    if target is None:
        raise InterfaceError("connect() needs node={...} for an embedded node or the URL(s) of a cluster")
    urls = [target] if isinstance(target, str) else list(target)
    return call(
        _native.Database.connect, urls, user, password, timeout, consistency, ca_pem, discover, bool(read_your_writes)
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
    isolation_level: Optional[str] = "",
    read_your_writes: bool = False,
) -> "Connection":
    """Open a connection.

    ``node``: start an embedded node with this configuration (the fields of ``NodeConfig``:
    ``node_id``, ``data_dir``, ``raft_addr``, ``api_addr``, ``peers``, ``secret``...). ``target``:
    the API URL(s) of a remote cluster (``user``/``password`` for Basic auth, ``timeout`` seconds
    per call, ``ca_pem`` to trust a private CA, ``discover=False`` to use only these URLs).
    ``consistency``: default read level, ``local``, ``leader`` or ``linearizable``.
    ``autocommit=True`` or ``isolation_level=None``: statements run and commit on their own
    (``BEGIN`` still opens a transaction); otherwise writes begin a transaction (PEP 249).
    ``read_your_writes=True``: every ``local`` read of the connection first waits until the node
    that answers applied the connection's own writes, so it sees them on any node (a follower,
    a read replica) without a linearizable read.
    """
    db = _native_db(target, node, user, password, timeout, consistency, ca_pem, discover, read_your_writes)
    return Connection(
        db, autocommit=autocommit, consistency=consistency, owns_node=node is not None, isolation_level=isolation_level
    )


class Connection(ConnectionState):
    """A PEP 249 connection. Thread-safe (threadsafety 2): threads may share it, and then share
    its transaction; statements inside a transaction run one at a time."""

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
        isolation_level: Optional[str] = "",
    ) -> None:
        super().__init__(
            db, autocommit=autocommit, consistency=consistency, owns_node=owns_node, isolation_level=isolation_level
        )
        # Guards the transaction state; held while a statement runs inside the transaction.
        self._lock = threading.RLock()

    # -- PEP 249 --

    def cursor(self) -> "Cursor":
        self._check()
        return Cursor(self)

    def read_your_writes(self) -> "Connection":
        """A new connection to the same node or cluster in read-your-writes mode (see
        ``connect(read_your_writes=True)``), with this one's settings and writes known so far.
        Closing it leaves the node running (this connection owns it)."""
        return Connection(self._check().read_your_writes(), **self._session_args())

    def commit(self) -> None:
        """Commit the open transaction: it is replicated as one log entry, all or nothing. No
        transaction open: nothing to do. The transaction has ended afterwards, also when this
        raises (nothing of it was applied, except after ``OutcomeUnknownError``)."""
        self._check()
        with self._lock:
            tx = self._take_tx()
            if tx is not None:
                call(tx.commit)

    def rollback(self) -> None:
        """Roll the open transaction back (nothing of it is applied). No transaction open:
        nothing to do."""
        self._check()
        with self._lock:
            tx = self._take_tx()
            if tx is not None:
                call(tx.rollback)

    def close(self) -> None:
        """Close the connection: an open transaction is rolled back, an embedded node is
        stopped. Closing a closed connection raises ``ProgrammingError``."""
        with self._lock:
            self._check()
            tx = self._take_tx()
            if tx is not None:
                try:
                    call(tx.rollback)
                except Error:
                    pass  # unreachable or already ended: the cluster rolls it back by itself
            db = self._detach()
        if self._owns_node:
            call(db.close)

    def _autocommit_with_open_transaction(self) -> None:
        # As sqlite3: turning autocommit on commits the open transaction.
        self.commit()

    def _begin(self, by_savepoint: bool = False) -> None:
        self._began(call(self._check().begin), by_savepoint)

    def _control(self, route: Route) -> None:
        """BEGIN / COMMIT / ROLLBACK statements (their preconditions were checked by ``_route``)."""
        if route.action == "begin":
            self._begin()
        elif route.action == "commit":
            self.commit()
        elif route.action == "rollback":
            self.rollback()

    def _in_transaction(self, cur: "Cursor", route: Route, operation: str, parameters: Params) -> None:
        """Run a statement inside the transaction, beginning it first if the route says so."""
        if route.begin:
            self._begin(by_savepoint=route.kind == "savepoint")
        tx = self._tx
        assert tx is not None
        try:
            out = call(tx.execute, operation, parameters)
        except Error:
            if route.begin and route.kind == "savepoint":
                self.rollback()
            raise
        cur._set_result(operation, route.kind, out)
        if self._ran(operation, route.kind):
            self.commit()

    # -- sqlite3-style conveniences --

    def execute(self, sql: str, parameters: Params = None, **opts: Any) -> "Cursor":
        return self.cursor().execute(sql, parameters, **opts)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, script: str) -> "Cursor":
        """Commit the open transaction, then run a script of several statements as one atomic
        batch (one log entry; it may not contain transaction control)."""
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
        min_index: Optional[int] = None,
    ) -> List[Any]:
        """Run a read and return all rows (``cached``: through the node's query cache;
        ``min_index``: as in :meth:`Cursor.execute`)."""
        return self.execute(
            sql, parameters, consistency=consistency, cached=cached, ttl=ttl, min_index=min_index
        ).fetchall()

    # -- backups and migrations

    def backup(self, path: str) -> Optional[int]:
        """Write a consistent online backup (a SQLite file) to ``path``, which must not exist.
        Returns the log index it holds (None when a remote node does not say). Start a new
        cluster from it with the config key ``restore_from``, or load it with :meth:`restore`."""
        index: Optional[int] = call(self._check().backup, os.fspath(path))
        return index

    def restore(self, path: str) -> None:
        """Load a backup (or any SQLite file) into the running cluster: every table and view is
        replaced by the file's, in one replicated transaction."""
        call(self._check().restore, os.fspath(path))

    def migrate(self, migrations: Migrations) -> int:
        """Apply ordered migrations once, cluster-wide; returns how many were applied now.
        ``migrations``: a folder of numbered ``.sql`` files (``1_init.sql``, ...), or a list of
        ``(id, name, sql)`` tuples."""
        spec, from_dir = _migration_spec(migrations)
        applied: int = call(self._check().migrate, spec, from_dir)
        return applied


    # -- coordination: replicated key/value entries with expiry, and counters. They are not
    # part of SQL transactions: each call is applied (through Raft) on its own.

    def kv_put(self, ns: str, key: str, value: KvValue, ttl: Optional[float] = None) -> None:
        """Set ``key`` in namespace ``ns`` to ``value`` (bytes; ``str`` is stored as UTF-8),
        cluster-wide; with ``ttl`` (seconds) it expires that long after the leader applies it."""
        call(self._check().kv_put, ns, key, kv_bytes(value), ttl)

    def kv_get(self, ns: str, key: str, consistency: Optional[str] = None) -> Optional[bytes]:
        """The value of ``key`` in ``ns``, or ``None``. By default this replica's (local);
        ``consistency="linearizable"`` (or ``"leader"``) sees every write acknowledged before."""
        value: Optional[bytes] = call(self._check().kv_get, ns, key, consistency)
        return value

    def kv_delete(self, ns: str, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        deleted: bool = call(self._check().kv_delete, ns, key)
        return deleted

    def kv_get_and_delete(self, ns: str, key: str) -> Optional[bytes]:
        """Remove ``key`` and return the value it had (``None`` if absent), atomically."""
        value: Optional[bytes] = call(self._check().kv_get_and_delete, ns, key)
        return value

    def kv_replace(
        self, ns: str, key: str, expected: Optional[KvValue], new: Optional[KvValue], ttl: Optional[float] = None
    ) -> bool:
        """Compare and swap: if ``key`` holds ``expected`` (``None``: absent), set it to ``new``
        (``None``: delete it), with ``ttl`` seconds to live. Whether it swapped."""
        swapped: bool = call(
            self._check().kv_replace, ns, key, kv_optional(expected, "expected"), kv_optional(new, "new"), ttl
        )
        return swapped

    def kv_set_limit(self, ns: str, max_entries: Optional[int]) -> None:
        """Keep at most ``max_entries`` keys in ``ns`` (``None``: no limit); the least recently
        written go first."""
        call(self._check().kv_set_limit, ns, max_entries)

    def kv_put_json(self, ns: str, key: str, value: Any, ttl: Optional[float] = None) -> None:
        """:meth:`kv_put` of any JSON-serializable object, stored as JSON text."""
        self.kv_put(ns, key, json_bytes(value), ttl)

    def kv_get_json(self, ns: str, key: str, consistency: Optional[str] = None) -> Any:
        """:meth:`kv_get` of a value stored as JSON, decoded (``None`` when absent)."""
        return json_value(self.kv_get(ns, key, consistency), ns, key)

    def counter_get(self, name: str, consistency: Optional[str] = None) -> int:
        """A counter's value (0 when never set); by default this replica's."""
        value: int = call(self._check().counter_get, name, consistency)
        return value

    def counter_add(self, name: str, delta: int = 1) -> int:
        """Add ``delta`` to a counter atomically, cluster-wide; the new value."""
        value: int = call(self._check().counter_add, name, delta)
        return value

    def counter_set(self, name: str, value: int) -> int:
        """Set a counter, cluster-wide; the value."""
        out: int = call(self._check().counter_set, name, value)
        return out

    # -- distributed locks: one holder at a time, cluster-wide, with a fencing token.

    def lock(self, name: str, lease: float = 10.0, wait: float = 30.0) -> "Lock":
        """Take lock ``name``, waiting in line (first come, first served) up to ``wait`` seconds
        (then :class:`ClusterTimeoutError`). The lease (seconds) is renewed in the background
        until the lock is released; if the holder stops renewing it (its process died, or it was
        cut off), the lock is lost when the lease ends. Use it as a context manager::

            with conn.lock("job") as lk:
                write_somewhere(fencing_token=lk.token)
        """
        return Lock(call(self._check().lock, name, lease, wait))

    def try_lock(self, name: str, lease: float = 10.0) -> Optional["Lock"]:
        """Take lock ``name`` only if it is free and nobody waits for it; otherwise ``None``."""
        native: Optional[_native.Lock] = call(self._check().try_lock, name, lease)
        return None if native is None else Lock(native)

    # -- listen/notify: notifications through the log, in one order on every node.

    def notify(self, channel: str, payload: KvValue) -> int:
        """Publish ``payload`` (bytes; ``str`` as UTF-8) on ``channel``, cluster-wide; its id."""
        id_: int = call(self._check().notify, channel, kv_bytes(payload, "payload"))
        return id_

    def listen(self, channel: str, after: Optional[int] = None) -> Listener:
        """Follow ``channel``: a :class:`Listener` yielding every notification after id ``after``
        (``None``: from now on; subscribed when this returns), in log order, as
        :class:`Notification` objects, and :class:`Lagged` when it fell behind (``lost=False``:
        nothing missed). The cluster keeps the last 10,000 notifications per channel to resume
        from."""
        return Listener(call(self._check().listen, channel, after))

    # -- change streams and live queries.

    def changes(
        self,
        from_cursor: Optional[str] = None,
        tables: Union[None, str, Iterable[str]] = None,
        old_values: bool = False,
    ) -> ChangeStream:
        """Follow committed row changes (inserts, updates, deletes; triggers and foreign-key
        actions included) in log order, the same on every node: a :class:`ChangeStream` of
        :class:`Change` objects. ``from_cursor``: ``None`` for the changes from now on
        (subscribed when this returns), else a change's ``cursor`` to resume right after it
        without gaps or repeats (or ``"index"``: from that log index on); older than the node
        keeps: :class:`CursorTooOldError`. ``tables``: only these tables (case-insensitive).
        ``old_values``: also the old row of updates and deletes."""
        native = call(self._check().changes, from_cursor, tables_arg(tables), old_values)
        return ChangeStream(native)

    def watch(self, sql: str, parameters: Params = None) -> Watch:
        """A live query: a :class:`Watch` yielding the rows of ``sql`` (a list of tuples) at
        once, then again each time a committed write changed them."""
        return Watch(call(self._check().watch, sql, parameters))


class Lock:
    """A held distributed lock (from :meth:`Connection.lock` or :meth:`Connection.try_lock`).
    A context manager: leaving the ``with`` block releases it. Dropping it unreleased releases it
    too (in the background)."""

    def __init__(self, native: "_native.Lock") -> None:
        self._native = native

    @property
    def token(self) -> int:
        """The fencing token: strictly greater than every earlier holder's of this lock. Hand it
        to storage that must refuse writes from a stale holder."""
        return self._native.token

    @property
    def name(self) -> str:
        return self._native.name

    def is_held(self) -> bool:
        """False once released, or once a background renewal found the lock lost (the lease
        ended): stop acting on it then."""
        return self._native.is_held()

    def release(self) -> bool:
        """Release the lock now (the next waiter gets it); whether it was still held. Releasing
        again does nothing and returns ``False``."""
        released: bool = call(self._native.release)
        return released

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<hiqlite.Lock {self.name!r} token={self.token}>"


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
        min_index: Optional[int] = None,
    ) -> "Cursor":
        """Run one statement. Inside a transaction (open, or begun now by a write outside
        autocommit mode) it runs there and sees the transaction's writes; otherwise a read runs
        on its own (``consistency``: ``local``, ``leader`` or ``linearizable``; ``cached``/``ttl``:
        through the node's query cache; ``min_index``: read locally once the node applied this
        log index, a write's ``log_index`` made through any node) and a write commits on its
        own, its log index in ``log_index``."""
        db = self._db()
        self._reset()
        check_min_index(min_index)
        conn = self.connection
        with conn._lock:
            route = conn._route(operation)
            if route.action == "tx":
                conn._in_transaction(self, route, operation, parameters)
                return self
            if route.action in ("begin", "commit", "rollback"):
                conn._control(route)
                return self
        if route.action == "read":
            level = read_level(consistency, conn.consistency, min_index)
            self._set_rows(call(db.query, operation, parameters, level, cached, ttl, min_index))
        elif route.action == "write":
            self._set_written(operation, call(db.execute, operation, parameters))
        return self

    def executemany(self, operation: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        """Run a write once per parameter set: inside the transaction (begun now if needed)
        statement by statement, or in autocommit mode as one atomic batch (one log entry).
        ``rowcount`` is the sum."""
        db = self._db()
        self._reset()
        executemany_kind(operation)
        conn = self.connection
        with conn._lock:
            route = conn._route(operation)
            if route.action == "tx":
                if route.begin:
                    conn._begin()
                tx = conn._tx
                assert tx is not None
                self._set_many([call(tx.execute, operation, p) for p in seq_of_parameters])
                return self
        stmts = [(operation, p) for p in seq_of_parameters]
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
