"""listen/notify events and the blocking listener: ``Notification`` and ``Lagged`` (what a
listener yields) and ``Listener`` (an iterator over them, from :meth:`hiqlite.Connection.listen`).
The asyncio listener is :class:`hiqlite.aio.Listener`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Tuple, Union

from . import _native
from ._errors import call

__all__ = ["Notification", "Lagged", "Event", "Listener"]


@dataclass(frozen=True)
class Notification:
    """One notification: ``id`` is its place in the cluster-wide sequence (the cursor to resume
    after: ``listen(channel, after=id)``), ``payload`` what was sent."""

    id: int
    channel: str
    payload: bytes


@dataclass(frozen=True)
class Lagged:
    """The listener fell behind its bounded buffer after id ``after``. With ``lost=False`` it goes
    on from the notifications the cluster keeps and misses nothing; with ``lost=True``
    notifications after ``after`` were dropped before it read them (reload the state it follows)."""

    after: int
    lost: bool


#: What a listener yields.
Event = Union[Notification, Lagged]

_Raw = Optional[Tuple[int, Optional[str], Optional[bytes], bool]]


def event(raw: _Raw) -> Optional[Event]:
    """The typed event of what the native listener returned (``None``: closed)."""
    if raw is None:
        return None
    first, channel, payload, lost = raw
    if channel is None:
        return Lagged(first, lost)
    return Notification(first, channel, payload if payload is not None else b"")


class Listener:
    """A listener on one channel: iterate it for every notification in log order (and
    :class:`Lagged` markers). Each step waits with the GIL released; Ctrl-C interrupts it. The
    iteration ends once :meth:`close` is called (from any thread, also while a step waits); an
    error of the stream (a remote node went away: :class:`hiqlite.UnreachableError`, the
    embedded node was closed) is raised once, then the iteration ends. A context manager::

        with conn.listen("orders") as listener:
            for ev in listener:
                ...
    """

    def __init__(self, native: "_native.Listener") -> None:
        self._native = native

    @property
    def channel(self) -> str:
        return self._native.channel

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.is_closed()

    def close(self) -> None:
        """Stop listening; a step that waits ends the iteration. Does not block."""
        self._native.close()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        ev = event(call(self._native.next))
        if ev is None:
            raise StopIteration
        return ev

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hiqlite.Listener {self.channel!r}{' closed' if self.closed else ''}>"
