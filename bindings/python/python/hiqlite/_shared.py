"""What the DB-API and asyncio faces share: connection state (the open transaction, its
savepoints, autocommit), how `execute` routes a statement, and cursor state. The faces differ
only in how they call the native module (blocking or awaitable).

Routing, as the standard library's ``sqlite3`` module does it (its default, "legacy" mode):

- while a transaction is open, every statement of the connection runs inside it (reads too, so
  they see its writes);
- otherwise a write (INSERT, UPDATE, DELETE, REPLACE, DDL... anything but a read) first begins
  one, unless the connection is in autocommit mode; reads run on their own;
- ``BEGIN``/``COMMIT``/``END``/``ROLLBACK`` statements begin and end the connection's
  transaction (SQLite's errors when there is one / none); ``SAVEPOINT`` outside a transaction
  begins one and releasing that outermost savepoint commits it, as in SQLite; ``RELEASE`` and
  ``ROLLBACK TO`` run inside the transaction.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import DataError, ProgrammingError, sqlite_error

Params = Union[Sequence[Any], Mapping[str, Any], None]
#: Migrations: a folder of numbered ``.sql`` files, or ``(id, name, sql)`` tuples.
Migrations = Union[str, "os.PathLike[str]", Sequence[Tuple[int, str, str]]]
RowFactory = Callable[[Any, Tuple[Any, ...]], Any]
Description = Tuple[Tuple[str, Any, None, None, None, None, None], ...]
NativeRows = Tuple[List[str], List[str], List[Tuple[Any, ...]]]
NativeExec = Tuple[int, int, NativeRows, Optional[int]]
#: A key/value entry's value: bytes as they are, text as UTF-8.
KvValue = Union[bytes, bytearray, memoryview, str]

_ISOLATION_LEVELS = ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE")

# Leading whitespace, semicolons and comments; then the statement's words (quoted names whole).
_NOISE = re.compile(r"(?:\s|;|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.S)
_TOKEN = re.compile(r'"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|\'(?:[^\']|\'\')*\'|[^\s;(),"\'`\[]+')


def _words(sql: str, n: int) -> List[str]:
    start = _NOISE.match(sql)
    out: List[str] = []
    for m in _TOKEN.finditer(sql, start.end() if start else 0):
        out.append(m.group(0))
        if len(out) == n:
            break
    return out


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] in "\"'`" and name[-1] == name[0]:
        return name[1:-1].replace(name[0] * 2, name[0])
    if len(name) >= 2 and name[0] == "[" and name[-1] == "]":
        return name[1:-1]
    return name


def savepoint_op(sql: str) -> Tuple[str, str]:
    """``("savepoint" | "release" | "rollback_to", name)`` of a savepoint statement."""
    words = _words(sql, 6)
    head = [w.upper() for w in words]
    if not head:
        return "", ""
    if head[0] == "SAVEPOINT" and len(words) > 1:
        return "savepoint", _unquote(words[1])
    if head[0] == "RELEASE":
        i = 2 if len(head) > 2 and head[1] == "SAVEPOINT" else 1
        return ("release", _unquote(words[i])) if i < len(words) else ("", "")
    if head[0] == "ROLLBACK":
        i = 1
        for skip in ("TRANSACTION", "TO", "SAVEPOINT"):
            if i < len(head) and head[i] == skip:
                i += 1
        return ("rollback_to", _unquote(words[i])) if i < len(words) else ("", "")
    return "", ""


def _cannot_begin_implicitly(sql: str) -> bool:
    """VACUUM cannot run inside a transaction, so it never begins one (nor does it in sqlite3)."""
    first = _words(sql, 1)
    return bool(first) and first[0].upper() == "VACUUM"


_DML = ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH")


def is_dml(sql: str) -> bool:
    """INSERT, UPDATE, DELETE, REPLACE (also after a WITH clause): the statements whose
    ``rowcount`` is the number of rows they changed; for others it is -1, as in ``sqlite3``."""
    first = _words(sql, 1)
    return bool(first) and first[0].upper() in _DML


def check_min_index(min_index: Optional[int]) -> Optional[int]:
    """A read's ``min_index``: ``None``, or a log index (an int in ``0 ..= 2**64 - 1``, a write's
    ``cursor.log_index``); anything else raises ``ProgrammingError``."""
    if min_index is None:
        return None
    if isinstance(min_index, bool) or not isinstance(min_index, int):
        err = ProgrammingError(f"min_index must be an int (a write's log_index), not {type(min_index).__name__}")
    elif not 0 <= min_index < 2**64:
        err = ProgrammingError(f"min_index must be a log index (0 ..= 2**64 - 1), not {min_index}")
    else:
        return min_index
    err.code = "HIQLITE_INVALID_REQUEST"
    raise err


def read_level(consistency: Optional[str], default: Optional[str], min_index: Optional[int]) -> Optional[str]:
    """The consistency of a read outside a transaction: the call's, else (with ``min_index``,
    which reads locally) ``local``, else the connection's default."""
    if consistency:
        return consistency
    return "local" if min_index is not None else default


class Route(NamedTuple):
    """What ``execute`` does with a statement."""

    #: ``read`` / ``write``: on its own (no transaction is open); ``tx``: inside the
    #: transaction; ``begin`` / ``commit`` / ``rollback``: transaction control; ``empty``.
    action: str
    #: The statement's kind (:func:`hiqlite.statement_kind`).
    kind: str
    #: Begin a transaction first (an implicit BEGIN, or a SAVEPOINT outside a transaction).
    begin: bool = False


class CursorState:
    """Result state of a cursor: description, rowcount, lastrowid, log_index and the fetched
    rows."""

    def __init__(self, row_factory: Optional[RowFactory]) -> None:
        self.arraysize = 1
        self.description: Optional[Description] = None
        self.rowcount = -1
        self.lastrowid: Optional[int] = None
        #: The Raft log index of the last write this cursor ran on its own (``None`` after a
        #: read, and for statements inside a transaction: its commit is one later entry). Pass
        #: it as ``min_index`` to a read on any node to see the write there.
        self.log_index: Optional[int] = None
        self.row_factory = row_factory
        self._rows: Optional[List[Tuple[Any, ...]]] = None
        self._pos = 0

    def _reset(self) -> None:
        self.description, self.rowcount, self.lastrowid, self._rows, self._pos = None, -1, None, None, 0
        self.log_index = None

    def _set_rows(self, out: NativeRows) -> None:
        columns, types, rows = out
        self.description = tuple((c, t, None, None, None, None, None) for c, t in zip(columns, types))
        self._rows, self._pos = rows, 0

    def _set_written(self, operation: str, out: NativeExec) -> None:
        affected, last_id, rows, log_index = out
        self.rowcount = affected if is_dml(operation) else -1
        self.lastrowid = last_id
        self.log_index = log_index
        if rows[0]:
            self._set_rows(rows)

    def _set_result(self, operation: str, kind: str, out: NativeExec) -> None:
        """The result of a statement run inside a transaction: rows for a read, counts (and
        any RETURNING rows) for a write, nothing for savepoint statements."""
        if kind == "read":
            self._set_rows(out[2])
        elif kind == "write":
            self._set_written(operation, out)

    def _set_many(self, results: List[Any]) -> None:
        self.rowcount = sum(r[0] for r in results)
        self.lastrowid = results[-1][1] if results else None
        self.log_index = max((r[3] for r in results if r[3] is not None), default=None)

    def _take(self, n: Optional[int]) -> List[Any]:
        if self._rows is None:
            raise ProgrammingError("no result set: the last operation was not a query")
        end = len(self._rows) if n is None else min(len(self._rows), self._pos + max(n, 0))
        chunk, self._pos = self._rows[self._pos:end], end
        f = self.row_factory
        return list(chunk) if f is None else [f(self, r) for r in chunk]


class ConnectionState:
    """The state of a connection: the open transaction (a native ``Transaction``, on the
    cluster's leader) and the savepoints opened in it."""

    def __init__(
        self,
        db: "_native.Database",
        *,
        autocommit: bool,
        consistency: Optional[str],
        owns_node: bool,
        isolation_level: Optional[str] = "",
    ) -> None:
        self._db: Optional[_native.Database] = db
        self._owns_node = owns_node
        self._tx: Optional[_native.Transaction] = None
        # Savepoints open in the transaction (lower-cased: SQLite matches names without case).
        self._savepoints: List[str] = []
        # The transaction was begun by a SAVEPOINT: releasing its outermost savepoint commits.
        self._by_savepoint = False
        self._autocommit = bool(autocommit) or isolation_level is None
        self._isolation = _isolation(isolation_level) if isolation_level is not None else ""
        #: Default read consistency (``None``: the client's default).
        self.consistency = consistency
        #: Builds each fetched row from ``(cursor, values)``; ``None`` gives tuples.
        self.row_factory: Optional[RowFactory] = None

    def _check(self) -> "_native.Database":
        if self._db is None:
            raise ProgrammingError("cannot operate on a closed connection")
        return self._db

    def _session_args(self) -> Any:
        """The keyword arguments of a connection like this one (see ``read_your_writes``)."""
        return dict(
            autocommit=self._autocommit,
            consistency=self.consistency,
            owns_node=False,
            isolation_level=None if self._autocommit else self._isolation,
        )

    @property
    def is_read_your_writes(self) -> bool:
        """True if the connection reads its own writes: its local reads wait until the node
        that answers applied the writes made through it (``connect(read_your_writes=True)``,
        :meth:`read_your_writes`)."""
        return self._check().is_read_your_writes()

    @property
    def last_write_index(self) -> Optional[int]:
        """The highest Raft log index of the writes made through this connection (``None``
        before the first; commits of transactions carry none)."""
        index: Optional[int] = self._check().last_write_index()
        return index

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open (begun and not yet committed or rolled back)."""
        return self._tx is not None

    @property
    def closed(self) -> bool:
        return self._db is None

    @property
    def autocommit(self) -> bool:
        """``True``: a write outside a transaction runs and commits on its own (``BEGIN`` still
        opens a transaction). ``False`` (the default): a write begins a transaction, which lasts
        until ``commit()`` / ``rollback()``."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        if value and not self._autocommit and self._tx is not None:
            self._autocommit_with_open_transaction()
        self._autocommit = bool(value)

    def _autocommit_with_open_transaction(self) -> None:
        """Turning autocommit on while a transaction is open: each face decides."""
        raise NotImplementedError

    @property
    def isolation_level(self) -> Optional[str]:
        """As ``sqlite3``: ``None`` is autocommit mode; ``""`` (the default), ``"DEFERRED"``,
        ``"IMMEDIATE"`` or ``"EXCLUSIVE"`` is transactional mode. The level itself changes
        nothing: every hiqlite transaction takes the right to write when it begins (like
        ``BEGIN IMMEDIATE``) and is serializable."""
        return None if self._autocommit else self._isolation

    @isolation_level.setter
    def isolation_level(self, value: Optional[str]) -> None:
        if value is None:
            self.autocommit = True
        else:
            self._isolation = _isolation(value)
            self.autocommit = False

    def _route(self, operation: str) -> Route:
        """What ``execute`` does with ``operation``; raises SQLite's error for transaction
        control that does not fit the connection's state."""
        kind = _native.statement_kind(operation)
        open_ = self._tx is not None
        if kind == "empty":
            return Route("empty", kind)
        if kind == "begin":
            if open_:
                raise sqlite_error("cannot start a transaction within a transaction")
            return Route("begin", kind)
        if kind in ("commit", "rollback"):
            if not open_:
                verb = "commit" if kind == "commit" else "rollback"
                raise sqlite_error(f"cannot {verb} - no transaction is active")
            return Route(kind, kind)
        if open_:
            return Route("tx", kind)
        if kind == "savepoint":
            op, name = savepoint_op(operation)
            if op == "savepoint":
                return Route("tx", kind, begin=True)
            # SQLite's answer to RELEASE / ROLLBACK TO with no transaction.
            raise sqlite_error(f"no such savepoint: {name}")
        if kind == "write" and not self._autocommit and not _cannot_begin_implicitly(operation):
            return Route("tx", kind, begin=True)
        return Route(kind, kind)

    def _began(self, tx: "_native.Transaction", by_savepoint: bool) -> None:
        self._tx, self._savepoints, self._by_savepoint = tx, [], by_savepoint

    def _take_tx(self) -> Optional["_native.Transaction"]:
        """End the transaction's state here; returns it to commit or roll back (``None``: none)."""
        tx, self._tx, self._savepoints, self._by_savepoint = self._tx, None, [], False
        return tx

    def _ran(self, operation: str, kind: str) -> bool:
        """Bookkeeping after a statement succeeded inside the transaction. True when it was the
        RELEASE of the outermost savepoint of a transaction a SAVEPOINT began: SQLite commits
        the transaction then, so the caller must commit it."""
        if kind != "savepoint":
            return False
        op, name = savepoint_op(operation)
        key = name.lower()
        if op == "savepoint":
            self._savepoints.append(key)
            return False
        matches = [i for i, n in enumerate(self._savepoints) if n == key]
        if not matches:
            return False
        if op == "release":
            del self._savepoints[matches[-1]:]
            return not self._savepoints and self._by_savepoint
        del self._savepoints[matches[-1] + 1:]
        return False

    def _detach(self) -> "_native.Database":
        """Close the connection's state; returns the handle (to stop an owned node)."""
        db = self._check()
        self._db = None
        return db


def _isolation(value: str) -> str:
    if not isinstance(value, str) or value.upper() not in _ISOLATION_LEVELS:
        raise ValueError(f"isolation_level must be None, '', 'DEFERRED', 'IMMEDIATE' or 'EXCLUSIVE', not {value!r}")
    return value.upper()


def executemany_kind(operation: str) -> None:
    """``executemany`` takes writes only (INSERT, UPDATE, DELETE...)."""
    kind = _native.statement_kind(operation)
    if kind != "write":
        raise ProgrammingError(f"executemany() is for writes; this statement is {kind}: use execute()")


# -- coordination (key/value, counters): argument conversion only; the core does the rest.


def _invalid(message: str) -> ProgrammingError:
    err = ProgrammingError(message)
    err.code = "HIQLITE_INVALID_REQUEST"
    return err


def kv_bytes(value: KvValue, what: str = "value") -> bytes:
    """A value as the bytes stored: ``str`` is encoded as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise _invalid(f"{what} must be bytes, bytearray, memoryview or str, not {type(value).__name__}")


def kv_optional(value: Optional[KvValue], what: str) -> Optional[bytes]:
    """``None`` (absent, or delete) or a value's bytes."""
    return None if value is None else kv_bytes(value, what)


def json_bytes(obj: Any) -> bytes:
    """Any JSON-serializable object as compact UTF-8 JSON (as the Rust and Node faces write it)."""
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise _invalid(f"value to JSON: {e}") from None


def json_value(data: Optional[bytes], ns: str, key: str) -> Any:
    """A stored JSON value decoded (``None`` when absent)."""
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as e:
        err = DataError(f"value of {ns}/{key} as JSON: {e}")
        err.code = "HIQLITE_DECODE"
        raise err from None

def _migration_spec(migrations: Migrations) -> Tuple[str, bool]:
    """The native call's arguments: a folder's path, or the list as JSON."""
    if isinstance(migrations, (str, os.PathLike)):
        return os.fspath(migrations), True
    items = [{"id": int(i), "name": str(n), "sql": str(q)} for i, n, q in migrations]
    return json.dumps(items), False
