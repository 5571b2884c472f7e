"""Change streams and live queries: ``Change`` (one committed row change), ``ChangeStream`` (an
iterator over them, from :meth:`hiqlite.Connection.changes`) and ``Watch`` (an iterator over a
query's rows each time they change, from :meth:`hiqlite.Connection.watch`). The asyncio versions
are :class:`hiqlite.aio.ChangeStream` and :class:`hiqlite.aio.Watch`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import ProgrammingError, call

__all__ = ["Change", "ChangeStream", "Watch"]


@dataclass(frozen=True)
class Change:
    """One committed row change, in log order. ``cursor`` (``"index.seq"``) is where a stream
    resumes to deliver the changes after this one: ``conn.changes(from_cursor=change.cursor)``.
    ``op`` is ``"insert"``, ``"update"`` or ``"delete"``; ``rowid`` is ``None`` for a
    ``WITHOUT ROWID`` table; ``key`` the primary key's values; ``new`` the row after the change
    (insert, update) and ``old`` before it (update, delete; only with ``old_values=True``), as
    dicts by column name, else ``None``."""

    index: int
    seq: int
    cursor: str
    table: str
    op: str
    rowid: Optional[int]
    columns: Tuple[str, ...]
    key: Tuple[Any, ...]
    new: Optional[Dict[str, Any]]
    old: Optional[Dict[str, Any]]


_RawChange = Tuple[
    int, int, str, str, str, Optional[int], List[str], List[Any], Optional[List[Any]], Optional[List[Any]]
]


def change(raw: Optional[_RawChange]) -> Optional[Change]:
    """The typed change of what the native stream returned (``None``: closed)."""
    if raw is None:
        return None
    index, seq, cursor, table, op, rowid, columns, key, new, old = raw
    return Change(
        index, seq, cursor, table, op, rowid, tuple(columns), tuple(key),
        None if new is None else dict(zip(columns, new)),
        None if old is None else dict(zip(columns, old)),
    )


def tables_arg(tables: Union[None, str, Iterable[str]]) -> Optional[List[str]]:
    """``tables`` as the native call takes it: one name or several (``None``: every table)."""
    if tables is None:
        return None
    names = [tables] if isinstance(tables, str) else list(tables)
    for n in names:
        if not isinstance(n, str):
            raise ProgrammingError(f"table names must be str, not {type(n).__name__}")
    return names


def rows(raw: Optional[Tuple[List[str], List[str], List[Tuple[Any, ...]]]]) -> Optional[Tuple[Sequence[str], List[Tuple[Any, ...]]]]:
    """``(columns, rows)`` of what a native watch returned (``None``: closed)."""
    if raw is None:
        return None
    columns, _types, values = raw
    return columns, values


class ChangeStream:
    """Committed row changes in log order (the same on every node): iterate it for
    :class:`Change` objects. Each step waits with the GIL released; Ctrl-C interrupts it. The
    iteration ends once :meth:`close` is called (from any thread, also while a step waits); an
    error of the stream is raised once, then the iteration ends. Remember the last change's
    ``cursor`` to resume there later, on any node. A context manager::

        with conn.changes(tables=["orders"]) as stream:
            for change in stream:
                ...
    """

    def __init__(self, native: "_native.ChangeStream") -> None:
        self._native = native
        self.cursor: Optional[str] = None
        """The cursor after the last change delivered (``None`` before the first)."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.is_closed()

    def close(self) -> None:
        """Stop; a step that waits ends the iteration. Does not block."""
        self._native.close()

    def __iter__(self) -> Iterator[Change]:
        return self

    def __next__(self) -> Change:
        c = change(call(self._native.next))
        if c is None:
            raise StopIteration
        self.cursor = c.cursor
        return c

    def __enter__(self) -> "ChangeStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hiqlite.ChangeStream at {self.cursor}{' closed' if self.closed else ''}>"


class Watch:
    """A live query: iterate it for the query's rows (a list of tuples, as ``query`` gives them),
    at once and then each time a committed write changed them. ``columns`` are the column names
    (known after the first step). Closing, errors and Ctrl-C as for :class:`ChangeStream`; a
    context manager."""

    def __init__(self, native: "_native.WatchStream") -> None:
        self._native = native
        self.columns: Sequence[str] = ()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.is_closed()

    def close(self) -> None:
        """Stop; a step that waits ends the iteration. Does not block."""
        self._native.close()

    def __iter__(self) -> Iterator[List[Tuple[Any, ...]]]:
        return self

    def __next__(self) -> List[Tuple[Any, ...]]:
        got = rows(call(self._native.next))
        if got is None:
            raise StopIteration
        self.columns, values = got
        return values

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hiqlite.Watch{' closed' if self.closed else ''}>"
