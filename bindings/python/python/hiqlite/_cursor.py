"""The state and row handling both cursor kinds share (DB-API and asyncio); they differ only in
how they call the native module."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

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
