"""The PEP 249 exception hierarchy, and the translation of core errors into it."""

from __future__ import annotations

from typing import Callable, Dict, TypeVar

from . import _native

T = TypeVar("T")


class Warning(Exception):  # noqa: A001 - the name PEP 249 requires
    """Important warnings (PEP 249). hiqlite raises none today."""


class Error(Exception):
    """Base class of every hiqlite error (PEP 249).

    ``sqlite_errorcode`` is SQLite's extended result code for SQL errors (0 otherwise),
    ``sqlite_errorname`` its symbolic name, ``code`` the name the error has in every hiqlite binding
    (``SQLITE_CONSTRAINT_UNIQUE``, ``HIQLITE_NO_LEADER``, ``HIQLITE_OUTCOME_UNKNOWN``...).
    """

    sqlite_errorcode: int = 0
    sqlite_errorname: str = ""
    code: str = ""


class InterfaceError(Error):
    """Misuse of the interface: closed connection, bad configuration."""


class DatabaseError(Error):
    """Errors of the database itself."""


class DataError(DatabaseError):
    """Values that cannot be stored or decoded."""


class OperationalError(DatabaseError):
    """The database could not do the operation (SQL errors, cluster unavailable...)."""


class IntegrityError(DatabaseError):
    """A constraint failed (UNIQUE, NOT NULL, FOREIGN KEY, CHECK)."""


class InternalError(DatabaseError):
    """The database is in a state it should not be in (storage or Raft failure)."""


class ProgrammingError(DatabaseError):
    """Wrong use of SQL or parameters: wrong number of bindings, unsupported types..."""


class NotSupportedError(DatabaseError):
    """An operation hiqlite does not offer."""


class NoLeaderError(OperationalError):
    """The cluster has no leader right now (election, or no quorum). Nothing was applied."""


class UnreachableError(OperationalError):
    """No node could be reached. Nothing was applied."""


class ClusterTimeoutError(OperationalError):
    """The operation did not finish in time."""


class OutcomeUnknownError(OperationalError):
    """A write was sent but its answer was lost: it may or may not have been applied."""


class UnauthorizedError(OperationalError):
    """The server refused the credentials."""


class CursorTooOldError(OperationalError):
    """A change stream's cursor is older than the changes the node keeps: changes after it are
    gone. Reload the state the stream follows, then follow the changes from now on."""


# As the standard library's sqlite3 module classifies SQLite's primary codes.
_BY_PRIMARY: Dict[int, type] = {
    2: InternalError, 11: DatabaseError, 26: DatabaseError, 23: DatabaseError,
    18: DataError, 19: IntegrityError, 20: IntegrityError, 21: ProgrammingError, 25: ProgrammingError,
}

_BY_NAME: Dict[str, type] = {
    "HIQLITE_NO_LEADER": NoLeaderError, "HIQLITE_NOT_LEADER": NoLeaderError,
    "HIQLITE_UNREACHABLE": UnreachableError, "HIQLITE_TIMEOUT": ClusterTimeoutError,
    "HIQLITE_OUTCOME_UNKNOWN": OutcomeUnknownError, "HIQLITE_UNAUTHORIZED": UnauthorizedError,
    "HIQLITE_CURSOR_TOO_OLD": CursorTooOldError,
    "HIQLITE_CONFIG": InterfaceError, "HIQLITE_SHUTDOWN": InterfaceError,
    "HIQLITE_INVALID_REQUEST": ProgrammingError, "HIQLITE_DECODE": DataError,
    "HIQLITE_STORAGE": InternalError, "HIQLITE_RAFT": InternalError, "HIQLITE_SERVER": InternalError,
}


def translate(e: BaseException) -> Error:
    """The PEP 249 exception for an error raised by the native module."""
    if isinstance(e, _native.NativeError):
        name, code, message = e.args
        if name.startswith("SQLITE_"):
            cls = _BY_PRIMARY.get(code & 0xFF, OperationalError)
        else:
            cls = _BY_NAME.get(name, OperationalError)
        err: Error = cls(message)
        err.code = name
        err.sqlite_errorcode = code
        err.sqlite_errorname = name if name.startswith("SQLITE_") else ""
        return err
    # Parameter conversion: unsupported types, integers beyond 64 bits, bad option values.
    err = ProgrammingError(str(e))
    err.code = "HIQLITE_INVALID_REQUEST"
    return err


def sqlite_error(message: str) -> Error:
    """An error SQLite itself would raise (primary code SQLITE_ERROR), for transaction control
    the connection answers without a round trip (COMMIT with no transaction, nested BEGIN...)."""
    err = OperationalError(message)
    err.code = err.sqlite_errorname = "SQLITE_ERROR"
    err.sqlite_errorcode = 1
    return err


def call(f: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call into the native module, raising PEP 249 exceptions."""
    try:
        return f(*args, **kwargs)
    except (_native.NativeError, TypeError, ValueError, OverflowError) as e:
        raise translate(e) from None


for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, Exception) and _cls.__module__ == __name__:
        # Shown as hiqlite.IntegrityError etc., where users import them from.
        _cls.__module__ = "hiqlite"
