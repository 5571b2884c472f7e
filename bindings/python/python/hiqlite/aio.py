"""asyncio face of hiqlite: the same connections and transaction rules as the DB-API module
(a write begins a transaction, every statement runs inside the open one and sees its writes,
``commit()``/``rollback()`` end it), with awaitable calls driven by the library's Tokio runtime
(no thread per call).

    async with hiqlite.aio.connect("http://127.0.0.1:4001") as conn:
        await conn.execute("INSERT INTO t VALUES (?)", (1,))   # begins a transaction
        cur = await conn.execute("SELECT * FROM t")            # sees the row
        rows = await cur.fetchall()
        await conn.commit()

Coroutines sharing one connection share its transaction; statements inside it run one at a
time. Turning ``autocommit`` on while a transaction is open raises ``ProgrammingError`` (a
property cannot await the commit): commit or roll back first.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import (
    Any, AsyncIterator, Awaitable, Dict, Generator, Iterable, List, Mapping, Optional, Sequence, Tuple, Union,
)

from . import _native, _native_db
from ._shared import (
    ConnectionState,
    CursorState,
    KvValue,
    Migrations,
    Params,
    Route,
    _migration_spec,
    check_min_index,
    executemany_kind,
    json_bytes,
    json_value,
    kv_bytes,
    kv_optional,
    read_level,
)
from ._errors import Error, ProgrammingError, translate
from ._changes import Change, change, rows, tables_arg
from ._notify import Event, event

__all__ = [
    "connect", "Connection", "Cursor", "Lock", "LockRequest", "Listener", "ListenRequest", "ChangeStream",
    "ChangesRequest", "Watch", "WatchRequest",
]


async def _await(aw: Awaitable[Any]) -> Any:
    try:
        return await aw
    except (_native.NativeError, TypeError, ValueError, OverflowError) as e:
        raise translate(e) from None


def _start(f: Any, *args: Any) -> Awaitable[Any]:
    try:
        return f(*args)  # type: ignore[no-any-return]
    except (_native.NativeError, TypeError, ValueError, OverflowError) as e:
        raise translate(e) from None


class Connection(ConnectionState):
    """An asyncio connection; same transaction rules as :class:`hiqlite.Connection`."""

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
        self._alock: Optional[asyncio.Lock] = None

    def _lock(self) -> asyncio.Lock:
        """Guards the transaction state; held while a statement runs inside the transaction.
        Made on first use, inside the event loop that uses the connection."""
        if self._alock is None:
            self._alock = asyncio.Lock()
        return self._alock

    def cursor(self) -> "Cursor":
        self._check()
        return Cursor(self)

    def read_your_writes(self) -> "Connection":
        """As :meth:`hiqlite.Connection.read_your_writes`."""
        return Connection(self._check().read_your_writes(), **self._session_args())

    async def execute(self, sql: str, parameters: Params = None, **opts: Any) -> "Cursor":
        return await self.cursor().execute(sql, parameters, **opts)

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        return await self.cursor().executemany(sql, seq_of_parameters)

    async def _end(self, commit: bool) -> None:
        """Commit or roll back the open transaction (the caller holds the lock)."""
        tx = self._take_tx()
        if tx is not None:
            await _await(_start(tx.commit_async if commit else tx.rollback_async))

    async def commit(self) -> None:
        """Commit the open transaction (one log entry, all or nothing); none open: nothing."""
        self._check()
        async with self._lock():
            await self._end(True)

    async def rollback(self) -> None:
        """Roll the open transaction back; none open: nothing."""
        self._check()
        async with self._lock():
            await self._end(False)

    async def close(self) -> None:
        """Close: an open transaction is rolled back, an embedded node is stopped."""
        async with self._lock():
            self._check()
            try:
                await self._end(False)
            except Error:
                pass  # unreachable or already ended: the cluster rolls it back by itself
            db = self._detach()
        if self._owns_node:
            await _await(db.close_async())

    def _autocommit_with_open_transaction(self) -> None:
        raise ProgrammingError("a transaction is open: commit() or rollback() it before turning autocommit on")

    async def _begin(self, by_savepoint: bool = False) -> None:
        self._began(await _await(_start(self._check().begin_async)), by_savepoint)

    async def _control(self, route: Route) -> None:
        if route.action == "begin":
            await self._begin()
        elif route.action in ("commit", "rollback"):
            await self._end(route.action == "commit")

    async def _in_transaction(self, cur: "Cursor", route: Route, operation: str, parameters: Params) -> None:
        if route.begin:
            await self._begin(by_savepoint=route.kind == "savepoint")
        tx = self._tx
        assert tx is not None
        try:
            out = await _await(_start(tx.execute_async, operation, parameters))
        except Error:
            if route.begin and route.kind == "savepoint":
                await self._end(False)
            raise
        cur._set_result(operation, route.kind, out)
        if self._ran(operation, route.kind):
            await self._end(True)

    async def status(self) -> Dict[str, Any]:
        result: Dict[str, Any] = json.loads(await _await(self._check().status_async()))
        return result

    async def is_leader(self) -> bool:
        st = await self.status()
        return st.get("leader") is not None and st.get("leader") == st.get("id")

    # -- backups and migrations: as on :class:`hiqlite.Connection`, awaitable.

    async def backup(self, path: str) -> Optional[int]:
        index: Optional[int] = await _await(self._check().backup_async(os.fspath(path)))
        return index

    async def restore(self, path: str) -> None:
        await _await(self._check().restore_async(os.fspath(path)))

    async def migrate(self, migrations: Migrations) -> int:
        spec, from_dir = _migration_spec(migrations)
        applied: int = await _await(self._check().migrate_async(spec, from_dir))
        return applied

    # -- coordination: as on :class:`hiqlite.Connection`, awaitable (not part of transactions).

    async def kv_put(self, ns: str, key: str, value: KvValue, ttl: Optional[float] = None) -> None:
        """Set ``key`` in ``ns`` to ``value`` (``str`` as UTF-8), with ``ttl`` seconds to live."""
        await _await(_start(self._check().kv_put_async, ns, key, kv_bytes(value), ttl))

    async def kv_get(self, ns: str, key: str, consistency: Optional[str] = None) -> Optional[bytes]:
        """The value of ``key`` in ``ns`` (default: this replica's), or ``None``."""
        value: Optional[bytes] = await _await(_start(self._check().kv_get_async, ns, key, consistency))
        return value

    async def kv_delete(self, ns: str, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        deleted: bool = await _await(_start(self._check().kv_delete_async, ns, key))
        return deleted

    async def kv_get_and_delete(self, ns: str, key: str) -> Optional[bytes]:
        """Remove ``key`` and return the value it had, atomically."""
        value: Optional[bytes] = await _await(_start(self._check().kv_get_and_delete_async, ns, key))
        return value

    async def kv_replace(
        self, ns: str, key: str, expected: Optional[KvValue], new: Optional[KvValue], ttl: Optional[float] = None
    ) -> bool:
        """Compare and swap (``None``: absent / delete); whether it swapped."""
        exp, new_ = kv_optional(expected, "expected"), kv_optional(new, "new")
        swapped: bool = await _await(_start(self._check().kv_replace_async, ns, key, exp, new_, ttl))
        return swapped

    async def kv_set_limit(self, ns: str, max_entries: Optional[int]) -> None:
        """Keep at most ``max_entries`` keys in ``ns`` (``None``: no limit)."""
        await _await(_start(self._check().kv_set_limit_async, ns, max_entries))

    async def kv_put_json(self, ns: str, key: str, value: Any, ttl: Optional[float] = None) -> None:
        """:meth:`kv_put` of any JSON-serializable object, stored as JSON text."""
        await self.kv_put(ns, key, json_bytes(value), ttl)

    async def kv_get_json(self, ns: str, key: str, consistency: Optional[str] = None) -> Any:
        """:meth:`kv_get` of a value stored as JSON, decoded (``None`` when absent)."""
        return json_value(await self.kv_get(ns, key, consistency), ns, key)

    async def counter_get(self, name: str, consistency: Optional[str] = None) -> int:
        """A counter's value (0 when never set; default: this replica's)."""
        value: int = await _await(_start(self._check().counter_get_async, name, consistency))
        return value

    async def counter_add(self, name: str, delta: int = 1) -> int:
        """Add ``delta`` to a counter atomically, cluster-wide; the new value."""
        value: int = await _await(_start(self._check().counter_add_async, name, delta))
        return value

    async def counter_set(self, name: str, value: int) -> int:
        """Set a counter, cluster-wide; the value."""
        out: int = await _await(_start(self._check().counter_set_async, name, value))
        return out

    # -- distributed locks: as on :class:`hiqlite.Connection`, awaitable.

    def lock(self, name: str, lease: float = 10.0, wait: float = 30.0) -> "LockRequest":
        """Take lock ``name``, waiting in line up to ``wait`` seconds (then
        :class:`hiqlite.ClusterTimeoutError`): ``lk = await conn.lock("job")``, or
        ``async with conn.lock("job") as lk: ...`` to release it when the block ends."""
        return LockRequest(self._check(), name, lease, wait)

    async def try_lock(self, name: str, lease: float = 10.0) -> Optional["Lock"]:
        """Take lock ``name`` only if it is free and nobody waits for it; otherwise ``None``."""
        native: Optional[_native.Lock] = await _await(_start(self._check().try_lock_async, name, lease))
        return None if native is None else Lock(native)

    # -- listen/notify: as on :class:`hiqlite.Connection`, awaitable.

    async def notify(self, channel: str, payload: KvValue) -> int:
        """Publish ``payload`` (``str`` as UTF-8) on ``channel``, cluster-wide; its id."""
        id_: int = await _await(_start(self._check().notify_async, channel, kv_bytes(payload, "payload")))
        return id_

    def listen(self, channel: str, after: Optional[int] = None) -> "ListenRequest":
        """Follow ``channel`` from after id ``after`` (``None``: from now on): ``listener = await
        conn.listen("orders")`` (subscribed once awaited), then ``async for ev in listener``; or
        ``async with conn.listen("orders") as listener:`` to close it when the block ends."""
        return ListenRequest(self._check(), channel, after)

    # -- change streams and live queries: as on :class:`hiqlite.Connection`, awaitable.

    def changes(
        self,
        from_cursor: Optional[str] = None,
        tables: Union[None, str, Iterable[str]] = None,
        old_values: bool = False,
    ) -> "ChangesRequest":
        """Follow committed row changes (see :meth:`hiqlite.Connection.changes`): ``stream = await
        conn.changes(...)`` (subscribed once awaited), then ``async for change in stream``; or
        ``async with conn.changes(...) as stream:`` to close it when the block ends."""
        return ChangesRequest(self._check(), from_cursor, tables_arg(tables), old_values)

    def watch(self, sql: str, parameters: Any = None) -> "WatchRequest":
        """A live query (see :meth:`hiqlite.Connection.watch`): ``w = await conn.watch(sql)``,
        then ``async for rows in w``; or ``async with conn.watch(sql) as w:``."""
        return WatchRequest(self._check(), sql, parameters)

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # Commit on success; on an exception, close() rolls the transaction back.
        if self._db is None:
            return
        try:
            if exc_type is None:
                await self.commit()
        finally:
            await self.close()


class Lock:
    """A held distributed lock (see :class:`hiqlite.Lock`), released with ``await release()``
    or by leaving ``async with``; dropping it unreleased releases it in the background."""

    def __init__(self, native: "_native.Lock") -> None:
        self._native = native

    @property
    def token(self) -> int:
        """The fencing token: strictly greater than every earlier holder's of this lock."""
        return self._native.token

    @property
    def name(self) -> str:
        return self._native.name

    def is_held(self) -> bool:
        """False once released, or once a background renewal found the lock lost."""
        return self._native.is_held()

    async def release(self) -> bool:
        """Release the lock now; whether it was still held (``False`` when released before)."""
        released: bool = await _await(_start(self._native.release_async))
        return released

    async def __aenter__(self) -> "Lock":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.release()

    def __repr__(self) -> str:
        return f"<hiqlite.aio.Lock {self.name!r} token={self.token}>"


class LockRequest:
    """What :meth:`Connection.lock` returns: await it for the :class:`Lock`, or use it with
    ``async with`` (takes the lock on entry, releases it on exit)."""

    def __init__(self, db: "_native.Database", name: str, lease: float, wait: float) -> None:
        self._args = (db, name, lease, wait)
        self._lock: Optional[Lock] = None

    async def _acquire(self) -> Lock:
        db, name, lease, wait = self._args
        return Lock(await _await(_start(db.lock_async, name, lease, wait)))

    def __await__(self) -> Generator[Any, None, Lock]:
        return self._acquire().__await__()

    async def __aenter__(self) -> Lock:
        self._lock = await self._acquire()
        return self._lock

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._lock is not None:
            lk, self._lock = self._lock, None
            await lk.release()


class Listener:
    """A listener on one channel (see :class:`hiqlite.Listener`): ``async for ev in listener``
    yields :class:`hiqlite.Notification` and :class:`hiqlite.Lagged` events in log order, without
    blocking the event loop. The iteration ends once :meth:`close` is called (also while a step
    waits); an error of the stream is raised once, then the iteration ends."""

    def __init__(self, native: "_native.Listener") -> None:
        self._native = native

    @property
    def channel(self) -> str:
        return self._native.channel

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.is_closed()

    async def close(self) -> None:
        """Stop listening; a waiting step ends the iteration."""
        self._native.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        ev = event(await _await(_start(self._native.next_async)))
        if ev is None:
            raise StopAsyncIteration
        return ev

    async def __aenter__(self) -> "Listener":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<hiqlite.aio.Listener {self.channel!r}{' closed' if self.closed else ''}>"


class ListenRequest:
    """What :meth:`Connection.listen` returns: await it for the :class:`Listener`, or use it with
    ``async with`` (listens on entry, closes on exit)."""

    def __init__(self, db: "_native.Database", channel: str, after: Optional[int]) -> None:
        self._args = (db, channel, after)
        self._listener: Optional[Listener] = None

    async def _listen(self) -> Listener:
        db, channel, after = self._args
        return Listener(await _await(_start(db.listen_async, channel, after)))

    def __await__(self) -> Generator[Any, None, Listener]:
        return self._listen().__await__()

    async def __aenter__(self) -> Listener:
        self._listener = await self._listen()
        return self._listener

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()


class ChangeStream:
    """Committed row changes (see :class:`hiqlite.ChangeStream`): ``async for change in stream``
    yields :class:`hiqlite.Change` objects in log order without blocking the event loop. The
    iteration ends once :meth:`close` is called (also while a step waits); an error of the
    stream is raised once, then the iteration ends."""

    def __init__(self, native: "_native.ChangeStream") -> None:
        self._native = native
        self.cursor: Optional[str] = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.is_closed()

    async def close(self) -> None:
        """Stop; a waiting step ends the iteration."""
        self._native.close()

    def __aiter__(self) -> AsyncIterator[Change]:
        return self

    async def __anext__(self) -> Change:
        c = change(await _await(_start(self._native.next_async)))
        if c is None:
            raise StopAsyncIteration
        self.cursor = c.cursor
        return c

    async def __aenter__(self) -> "ChangeStream":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<hiqlite.aio.ChangeStream at {self.cursor}{' closed' if self.closed else ''}>"


class ChangesRequest:
    """What :meth:`Connection.changes` returns: await it for the :class:`ChangeStream`, or use
    it with ``async with`` (subscribes on entry, closes on exit)."""

    def __init__(
        self, db: "_native.Database", from_cursor: Optional[str], tables: Optional[List[str]], old: bool
    ) -> None:
        self._args = (db, from_cursor, tables, old)
        self._stream: Optional[ChangeStream] = None

    async def _open(self) -> ChangeStream:
        db, from_cursor, tables, old = self._args
        return ChangeStream(await _await(_start(db.changes_async, from_cursor, tables, old)))

    def __await__(self) -> Generator[Any, None, ChangeStream]:
        return self._open().__await__()

    async def __aenter__(self) -> ChangeStream:
        self._stream = await self._open()
        return self._stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.close()


class Watch:
    """A live query (see :class:`hiqlite.Watch`): ``async for rows in w`` yields the rows (a
    list of tuples) at once, then each time they changed, without blocking the event loop."""

    def __init__(self, native: "_native.WatchStream") -> None:
        self._native = native
        self.columns: Sequence[str] = ()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.is_closed()

    async def close(self) -> None:
        """Stop; a waiting step ends the iteration."""
        self._native.close()

    def __aiter__(self) -> AsyncIterator[List[Tuple[Any, ...]]]:
        return self

    async def __anext__(self) -> List[Tuple[Any, ...]]:
        got = rows(await _await(_start(self._native.next_async)))
        if got is None:
            raise StopAsyncIteration
        self.columns, values = got
        return values

    async def __aenter__(self) -> "Watch":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<hiqlite.aio.Watch{' closed' if self.closed else ''}>"


class WatchRequest:
    """What :meth:`Connection.watch` returns: await it for the :class:`Watch`, or use it with
    ``async with`` (starts on entry, closes on exit)."""

    def __init__(self, db: "_native.Database", sql: str, parameters: Any) -> None:
        self._args = (db, sql, parameters)
        self._watch: Optional[Watch] = None

    async def _open(self) -> Watch:
        db, sql, parameters = self._args
        return Watch(await _await(_start(db.watch_async, sql, parameters)))

    def __await__(self) -> Generator[Any, None, Watch]:
        return self._open().__await__()

    async def __aenter__(self) -> Watch:
        self._watch = await self._open()
        return self._watch

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._watch is not None:
            w, self._watch = self._watch, None
            await w.close()


class Cursor(CursorState):
    """An asyncio cursor: ``await cur.execute(...)``, ``await cur.fetchall()``, ``async for``."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection.row_factory)
        self.connection = connection

    async def execute(
        self,
        operation: str,
        parameters: Params = None,
        *,
        consistency: Optional[str] = None,
        cached: bool = False,
        ttl: Optional[float] = None,
        min_index: Optional[int] = None,
    ) -> "Cursor":
        """As :meth:`hiqlite.Cursor.execute`."""
        db = self.connection._check()
        self._reset()
        check_min_index(min_index)
        conn = self.connection
        async with conn._lock():
            route = conn._route(operation)
            if route.action == "tx":
                await conn._in_transaction(self, route, operation, parameters)
                return self
            if route.action in ("begin", "commit", "rollback"):
                await conn._control(route)
                return self
        if route.action == "read":
            level = read_level(consistency, conn.consistency, min_index)
            rows = await _await(_start(db.query_async, operation, parameters, level, cached, ttl, min_index))
            self._set_rows(rows)
        elif route.action == "write":
            self._set_written(operation, await _await(_start(db.execute_async, operation, parameters)))
        return self

    async def executemany(self, operation: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        """As :meth:`hiqlite.Cursor.executemany`."""
        db = self.connection._check()
        self._reset()
        executemany_kind(operation)
        conn = self.connection
        async with conn._lock():
            route = conn._route(operation)
            if route.action == "tx":
                if route.begin:
                    await conn._begin()
                tx = conn._tx
                assert tx is not None
                self._set_many([await _await(_start(tx.execute_async, operation, p)) for p in seq_of_parameters])
                return self
        stmts = [(operation, p) for p in seq_of_parameters]
        if stmts:
            self._set_many(await _await(_start(db.run_async, stmts, True)))
        return self

    async def fetchone(self) -> Any:
        rows = self._take(1)
        return rows[0] if rows else None

    async def fetchmany(self, size: Optional[int] = None) -> List[Any]:
        return self._take(self.arraysize if size is None else size)

    async def fetchall(self) -> List[Any]:
        return self._take(None)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _Connecting:
    """``await connect(...)`` or ``async with connect(...) as conn``."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._conn: Optional[Connection] = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._make().__await__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> Connection:
        self._conn = await self._make()
        return self._conn

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._conn is not None:
            await self._conn.__aexit__(exc_type, exc, tb)


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
) -> _Connecting:
    """Open an asyncio connection; the arguments are those of :func:`hiqlite.connect`. Leaving
    an ``async with`` block commits the open transaction (or, on error, rolls it back) and
    closes."""

    async def make() -> Connection:
        if node is not None:
            if target is not None:
                raise ProgrammingError("give either node=... (embedded) or URLs (remote), not both")
            db = await _await(_start(_native.open_node_async, json.dumps(dict(node))))
            if read_your_writes:
                db = db.read_your_writes()
        else:
            db = _native_db(target, None, user, password, timeout, consistency, ca_pem, discover, read_your_writes)
        return Connection(
            db,
            autocommit=autocommit,
            consistency=consistency,
            owns_node=node is not None,
            isolation_level=isolation_level,
        )

    return _Connecting(make)
