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
    ``sqlite_errorname`` its symbolic name, ``kind`` the core's error kind (``sql``,
    ``no_leader``, ``outcome_unknown``...).
    """

    sqlite_errorcode: int = 0
    sqlite_errorname: str = ""
    kind: str = ""


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


_SQLITE_NAMES: Dict[int, str] = {
    1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT", 5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY", 9: "SQLITE_INTERRUPT",
    10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT", 12: "SQLITE_NOTFOUND", 13: "SQLITE_FULL",
    14: "SQLITE_CANTOPEN", 15: "SQLITE_PROTOCOL", 17: "SQLITE_SCHEMA", 18: "SQLITE_TOOBIG",
    19: "SQLITE_CONSTRAINT", 20: "SQLITE_MISMATCH", 21: "SQLITE_MISUSE", 23: "SQLITE_AUTH",
    25: "SQLITE_RANGE", 26: "SQLITE_NOTADB",
    275: "SQLITE_CONSTRAINT_CHECK", 531: "SQLITE_CONSTRAINT_COMMITHOOK",
    787: "SQLITE_CONSTRAINT_FOREIGNKEY", 1043: "SQLITE_CONSTRAINT_FUNCTION",
    1299: "SQLITE_CONSTRAINT_NOTNULL", 1555: "SQLITE_CONSTRAINT_PRIMARYKEY",
    1811: "SQLITE_CONSTRAINT_TRIGGER", 2067: "SQLITE_CONSTRAINT_UNIQUE",
    2323: "SQLITE_CONSTRAINT_VTAB", 2579: "SQLITE_CONSTRAINT_ROWID",
    3091: "SQLITE_CONSTRAINT_DATATYPE",
}

# As the standard library's sqlite3 module classifies SQLite's primary codes.
_BY_PRIMARY: Dict[int, type] = {
    2: InternalError, 11: DatabaseError, 26: DatabaseError, 23: DatabaseError,
    18: DataError, 19: IntegrityError, 20: IntegrityError, 21: ProgrammingError, 25: ProgrammingError,
}

_BY_KIND: Dict[str, type] = {
    "no_leader": NoLeaderError, "not_leader": NoLeaderError, "unreachable": UnreachableError,
    "timeout": ClusterTimeoutError, "outcome_unknown": OutcomeUnknownError,
    "unauthorized": UnauthorizedError, "config": InterfaceError, "shutdown": InterfaceError,
    "invalid_request": ProgrammingError, "decode": DataError, "storage": InternalError,
    "raft": InternalError,
}


def translate(e: BaseException) -> Error:
    """The PEP 249 exception for an error raised by the native module."""
    if isinstance(e, _native.NativeError):
        kind, code, message = e.args
        if kind == "sql":
            cls = _BY_PRIMARY.get(code & 0xFF, OperationalError)
        else:
            cls = _BY_KIND.get(kind, OperationalError)
        err: Error = cls(message)
        err.kind = kind
        err.sqlite_errorcode = code
        err.sqlite_errorname = _SQLITE_NAMES.get(code, _SQLITE_NAMES.get(code & 0xFF, ""))
        return err
    # Parameter conversion: unsupported types, integers beyond 64 bits, bad option values.
    err = ProgrammingError(str(e))
    err.kind = "invalid_request"
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
