"""What the DB-API and asyncio faces share: connection state (the transaction buffer, explicit
BEGIN, closing), what `execute` must do with a statement, and cursor state. The faces differ only
in how they call the native module (blocking or awaitable)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import Error, NoLeaderError, NotSupportedError, ProgrammingError, UnreachableError

Params = Union[Sequence[Any], Mapping[str, Any], None]
RowFactory = Callable[[Any, Tuple[Any, ...]], Any]
Description = Tuple[Tuple[str, Any, None, None, None, None, None], ...]
NativeRows = Tuple[List[str], List[str], List[Tuple[Any, ...]]]


def buffered(p: Params) -> Params:
    """A copy of `p` to keep in a transaction's buffer (the caller may reuse or mutate its own),
    checked now for what the engine could never bind, so a bad parameter fails at `execute`
    and not at `commit`."""
    if p is None:
        return None
    if isinstance(p, (str, bytes)):
        raise ProgrammingError("parameters must be a sequence or a dict, not a str or bytes")
    copy: Union[Dict[str, Any], Tuple[Any, ...]] = dict(p) if isinstance(p, Mapping) else tuple(p)
    values: Iterable[Any] = copy.values() if isinstance(copy, dict) else copy
    for v in values:
        if v is not None and not isinstance(v, (int, float, str, bytes, bytearray, memoryview)):
            raise ProgrammingError(f"unsupported parameter type {type(v).__name__}")
        if isinstance(v, int) and not -(2**63) <= v < 2**63:
            raise ProgrammingError("integer parameter does not fit in 64 bits (SQLite INTEGER)")
    return copy


def savepoints_unsupported() -> NotSupportedError:
    return NotSupportedError(
        "SAVEPOINT, RELEASE and ROLLBACK TO are not supported: a transaction's writes are buffered "
        "and sent as one atomic batch at commit()"
    )


def keep_on_failure(e: Error) -> bool:
    """Whether a failed commit leaves its writes buffered: yes when they certainly were not
    applied and can be sent again (no leader, unreachable). After an SQL error the transaction
    failed as a whole and is gone; after a lost answer it may have been applied, so it must not
    be sent twice."""
    return isinstance(e, (NoLeaderError, UnreachableError))


def many(kind: str, operation: str, seq_of_parameters: Iterable[Params]) -> List[Tuple[str, Params]]:
    """The statements of an `executemany`, validated."""
    if kind == "read":
        raise ProgrammingError("executemany() is for writes; use execute() for queries")
    return [(operation, buffered(p)) for p in seq_of_parameters]


class CursorState:
    """Result state of a cursor: description, rowcount, lastrowid and the fetched rows."""

    def __init__(self, row_factory: Optional[RowFactory]) -> None:
        self.arraysize = 1
        self.description: Optional[Description] = None
        self.rowcount = -1
        self.lastrowid: Optional[int] = None
        self.row_factory = row_factory
        self._rows: Optional[List[Tuple[Any, ...]]] = None
        self._pos = 0

    def _reset(self) -> None:
        self.description, self.rowcount, self.lastrowid, self._rows, self._pos = None, -1, None, None, 0

    def _set_rows(self, out: NativeRows) -> None:
        columns, types, rows = out
        self.description = tuple((c, t, None, None, None, None, None) for c, t in zip(columns, types))
        self._rows, self._pos = rows, 0

    def _set_written(self, out: Tuple[int, int, NativeRows]) -> None:
        affected, last_id, rows = out
        self.rowcount, self.lastrowid = affected, last_id
        if rows[0]:
            self._set_rows(rows)

    def _set_many(self, results: List[Any]) -> None:
        self.rowcount = sum(r[0] for r in results)
        self.lastrowid = results[-1][1] if results else None

    def _take(self, n: Optional[int]) -> List[Any]:
        if self._rows is None:
            raise ProgrammingError("no result set: the last operation was not a query")
        end = len(self._rows) if n is None else min(len(self._rows), self._pos + max(n, 0))
        chunk, self._pos = self._rows[self._pos:end], end
        f = self.row_factory
        return list(chunk) if f is None else [f(self, r) for r in chunk]


class ConnectionState:
    """The state of a connection. Outside autocommit mode (or after an explicit BEGIN) writes
    are buffered in `_pending` and sent as one atomic batch at commit."""

    def __init__(self, db: "_native.Database", *, autocommit: bool, consistency: Optional[str], owns_node: bool) -> None:
        self._db: Optional[_native.Database] = db
        self._pending: List[Tuple[str, Params]] = []
        self._owns_node = owns_node
        # An explicit BEGIN buffers writes even in autocommit mode, until COMMIT or ROLLBACK.
        self._explicit = False
        #: Commit every write as it is executed (no buffering).
        self.autocommit = autocommit
        #: Default read consistency (``None``: the client's default).
        self.consistency = consistency
        #: Builds each fetched row from ``(cursor, values)``; ``None`` gives tuples.
        self.row_factory: Optional[RowFactory] = None

    def _check(self) -> "_native.Database":
        if self._db is None:
            raise ProgrammingError("cannot operate on a closed connection")
        return self._db

    @property
    def in_transaction(self) -> bool:
        """True while writes are buffered (or after an explicit BEGIN)."""
        return bool(self._pending) or self._explicit

    @property
    def closed(self) -> bool:
        return self._db is None

    def _buffering(self) -> bool:
        return not self.autocommit or self._explicit

    def _take_pending(self) -> List[Tuple[str, Params]]:
        """End the transaction and hand over its writes for sending (empty: nothing to send)."""
        self._check()
        self._explicit = False
        pending, self._pending = self._pending, []
        return pending

    def _commit_failed(self, pending: List[Tuple[str, Params]], e: Error) -> None:
        if keep_on_failure(e):
            self._pending = pending + self._pending

    def _discard(self) -> None:
        self._check()
        self._pending = []
        self._explicit = False

    def _detach(self) -> "_native.Database":
        """Close the connection's state; returns the handle (to stop an owned node)."""
        db = self._check()
        self._pending = []
        self._db = None
        return db


def plan(conn: ConnectionState, operation: str, parameters: Params) -> str:
    """What `execute` must do with `operation`: ``read``, ``write`` (now), ``commit``,
    ``rollback``, or ``""`` when it is already handled (buffered, BEGIN, nothing to run)."""
    kind = _native.statement_kind(operation)
    if kind in ("read", "commit", "rollback"):
        return kind
    if kind == "begin":
        conn._explicit = True
        return ""
    if kind == "savepoint":
        raise savepoints_unsupported()
    if kind == "empty":
        return ""
    if not conn._buffering():
        return "write"
    conn._pending.append((operation, buffered(parameters)))
    return ""


def plan_many(conn: ConnectionState, operation: str, seq_of_parameters: Iterable[Params]) -> List[Tuple[str, Params]]:
    """The statements `executemany` must run now (none when they went into the buffer)."""
    stmts = many(_native.statement_kind(operation), operation, seq_of_parameters)
    if not conn._buffering():
        return stmts
    conn._pending.extend(stmts)
    return []
