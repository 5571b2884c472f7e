"""asyncio face of hiqlite: the same connections and transaction rules as the DB-API module,
with awaitable calls driven by the library's Tokio runtime (no thread per call).

    async with hiqlite.aio.connect("http://127.0.0.1:4001", autocommit=True) as conn:
        await conn.execute("INSERT INTO t VALUES (?)", (1,))
        cur = await conn.execute("SELECT * FROM t")
        rows = await cur.fetchall()
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Awaitable, Dict, Generator, Iterable, List, Mapping, Optional, Sequence, Union

from . import _native, _native_db
from ._shared import ConnectionState, CursorState, Params, plan, plan_many
from ._errors import Error, ProgrammingError, translate

__all__ = ["connect", "Connection", "Cursor"]


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

    def cursor(self) -> "Cursor":
        self._check()
        return Cursor(self)

    async def execute(self, sql: str, parameters: Params = None, **opts: Any) -> "Cursor":
        return await self.cursor().execute(sql, parameters, **opts)

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        return await self.cursor().executemany(sql, seq_of_parameters)

    async def commit(self) -> None:
        db = self._check()
        pending = self._take_pending()
        if not pending:
            return
        try:
            await _await(_start(db.run_async, pending, True))
        except Error as e:
            self._commit_failed(pending, e)
            raise

    async def rollback(self) -> None:
        self._discard()

    async def close(self) -> None:
        db = self._detach()
        if self._owns_node:
            await _await(db.close_async())

    async def status(self) -> Dict[str, Any]:
        result: Dict[str, Any] = json.loads(await _await(self._check().status_async()))
        return result

    async def is_leader(self) -> bool:
        st = await self.status()
        return st.get("leader") is not None and st.get("leader") == st.get("id")

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._db is None:
            return
        try:
            if exc_type is None:
                await self.commit()
        finally:
            await self.close()


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
    ) -> "Cursor":
        db = self.connection._check()
        self._reset()
        action = plan(self.connection, operation, parameters)
        if action == "read":
            level = consistency or self.connection.consistency
            self._set_rows(await _await(_start(db.query_async, operation, parameters, level, cached, ttl)))
        elif action == "write":
            self._set_written(await _await(_start(db.execute_async, operation, parameters)))
        elif action == "commit":
            await self.connection.commit()
        elif action == "rollback":
            await self.connection.rollback()
        return self

    async def executemany(self, operation: str, seq_of_parameters: Iterable[Params]) -> "Cursor":
        db = self.connection._check()
        self._reset()
        stmts = plan_many(self.connection, operation, seq_of_parameters)
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
) -> _Connecting:
    """Open an asyncio connection; the arguments are those of :func:`hiqlite.connect`. Leaving
    an ``async with`` block commits (or, on error, discards) pending writes and closes."""

    async def make() -> Connection:
        if node is not None:
            if target is not None:
                raise ProgrammingError("give either node=... (embedded) or URLs (remote), not both")
            db = await _await(_start(_native.open_node_async, json.dumps(dict(node))))
        else:
            db = _native_db(target, None, user, password, timeout, consistency, ca_pem, discover)
        return Connection(db, autocommit=autocommit, consistency=consistency, owns_node=node is not None)

    return _Connecting(make)
