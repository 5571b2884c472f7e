//! Result codes, the error messages kept per handle and per thread, and the guard every exported
//! function runs in (no panic crosses the boundary).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use engine::Error;

/// Successful result.
pub const HIQLITE_OK: c_int = 0;
/// Generic error (SQLite's `SQLITE_ERROR`); SQL errors carry SQLite's own extended code instead
/// whenever SQLite gave one.
pub const HIQLITE_ERROR: c_int = 1;
/// A statement tried to write through a read-only path (SQLite's `SQLITE_READONLY`), e.g. a write
/// given to `hiqlite_query_json` or to a statement prepared with `HIQLITE_PREPARE_READ`.
pub const HIQLITE_READONLY: c_int = 8;
/// The library was used incorrectly: a NULL handle or NULL argument, a statement stepped after it
/// finished, binding while a statement runs, a call from inside a Tokio runtime
/// (SQLite's `SQLITE_MISUSE`).
pub const HIQLITE_MISUSE: c_int = 21;
/// A parameter index out of range or a parameter name not found in the statement (SQLite's
/// `SQLITE_RANGE`).
pub const HIQLITE_RANGE: c_int = 25;
/// `hiqlite_step` produced a row; read it with the `hiqlite_column_*` functions.
pub const HIQLITE_ROW: c_int = 100;
/// `hiqlite_step` finished: the statement ran and every row has been returned.
pub const HIQLITE_DONE: c_int = 101;

// hiqlite's own codes are 1000..=1023. Their low byte (232..=255) is never a SQLite primary
// code, so they collide with no SQLite extended code and `rc & 0xff` never maps one of them
// onto a SQLite primary code.

/// This node is not the leader and could not forward the request (hiqlite code).
pub const HIQLITE_NOT_LEADER: c_int = 1000;
/// The cluster has no leader right now (election, no quorum); retry later (hiqlite code).
pub const HIQLITE_NO_LEADER: c_int = 1001;
/// A node could not be reached before the request was sent; nothing was applied (hiqlite code).
pub const HIQLITE_UNREACHABLE: c_int = 1002;
/// The operation did not finish in time (hiqlite code).
pub const HIQLITE_TIMEOUT: c_int = 1003;
/// A write was sent but no answer came back: it may or may not have been applied. It is never
/// re-sent by the library (hiqlite code).
pub const HIQLITE_OUTCOME_UNKNOWN: c_int = 1004;
/// Credentials or the cluster secret were rejected (hiqlite code).
pub const HIQLITE_UNAUTHORIZED: c_int = 1005;
/// The configuration is invalid: unknown key, bad value, unusable address... (hiqlite code).
pub const HIQLITE_CONFIG: c_int = 1006;
/// Local storage (log, database, snapshot files) failed (hiqlite code).
pub const HIQLITE_STORAGE: c_int = 1007;
/// Raft refused or failed the operation (hiqlite code).
pub const HIQLITE_RAFT: c_int = 1008;
/// The request is malformed: bad JSON parameters, a value the cluster cannot take (hiqlite code).
pub const HIQLITE_INVALID_REQUEST: c_int = 1009;
/// A result could not be decoded (hiqlite code).
pub const HIQLITE_DECODE: c_int = 1010;
/// The node has shut down (e.g. a statement used after `hiqlite_close`) (hiqlite code).
pub const HIQLITE_SHUTDOWN: c_int = 1011;
/// A bug inside the library was caught at the boundary; the handle stays usable but the call
/// did nothing reliable (hiqlite code).
pub const HIQLITE_PANIC: c_int = 1012;
/// A string argument is not valid UTF-8 (hiqlite code).
pub const HIQLITE_INVALID_UTF8: c_int = 1013;
/// A remote server failed the request (an HTTP 5xx without a more precise error); local storage
/// is `HIQLITE_STORAGE` (hiqlite code).
pub const HIQLITE_SERVER: c_int = 1014;
/// A change stream's cursor is older than the changes the node keeps: changes after it are gone.
/// Reload the state the stream follows, then follow it from now on (hiqlite code).
pub const HIQLITE_CURSOR_TOO_OLD: c_int = 1015;

/// An error on its way to C: a code and a message.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub code: c_int,
    pub message: String,
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

impl FfiError {
    pub fn new(code: c_int, message: impl Into<String>) -> Self {
        FfiError { code, message: message.into() }
    }
    pub fn misuse(message: impl Into<String>) -> Self {
        FfiError::new(HIQLITE_MISUSE, message)
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Sql { code, .. } => {
                if *code == 0 {
                    HIQLITE_ERROR
                } else {
                    *code
                }
            }
            Error::NotLeader { .. } => HIQLITE_NOT_LEADER,
            Error::NoLeader(_) => HIQLITE_NO_LEADER,
            Error::Unreachable(_) => HIQLITE_UNREACHABLE,
            Error::Timeout(_) => HIQLITE_TIMEOUT,
            Error::OutcomeUnknown(_) => HIQLITE_OUTCOME_UNKNOWN,
            Error::Unauthorized(_) => HIQLITE_UNAUTHORIZED,
            Error::Config(_) => HIQLITE_CONFIG,
            Error::Storage(_) => HIQLITE_STORAGE,
            Error::Server(_) => HIQLITE_SERVER,
            Error::Raft(_) => HIQLITE_RAFT,
            Error::InvalidRequest(_) => HIQLITE_INVALID_REQUEST,
            Error::Decode(_) => HIQLITE_DECODE,
            Error::ShutDown => HIQLITE_SHUTDOWN,
            Error::CursorTooOld(_) => HIQLITE_CURSOR_TOO_OLD,
            // `Error` is non-exhaustive: a variant newer than this library is a generic error
            // until it gets its own code.
            _ => HIQLITE_ERROR,
        };
        // SQLite's own message for SQL errors (as sqlite3_errmsg gives it), the full text else.
        let message = match e {
            Error::Sql { message, .. } => message,
            other => other.to_string(),
        };
        FfiError { code, message }
    }
}

/// A string argument from C: NULL and invalid UTF-8 are errors.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn cstr<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(FfiError::misuse(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|e| FfiError::new(HIQLITE_INVALID_UTF8, format!("{what} is not valid UTF-8: {e}")))
}

/// A string handed to C, to be released with `hiqlite_free`. Interior NULs cannot be
/// represented in a C string; they are cut off there rather than failing the call.
pub(crate) fn to_c_string(s: &str) -> *mut c_char {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).map_or(std::ptr::null_mut(), CString::into_raw)
}

/// Messages are kept per thread so that a pointer returned by `hiqlite_errmsg` stays valid until
/// this thread's next call on that handle, whatever other threads do with the same handle.
#[derive(Default)]
struct ThreadErrors {
    /// The outcome of this thread's most recent call (`None` = success).
    last: Option<(c_int, CString)>,
    /// The outcome of this thread's most recent call per database handle id.
    per_db: HashMap<u64, (c_int, CString)>,
}

thread_local! {
    static ERRORS: RefCell<ThreadErrors> = RefCell::new(ThreadErrors::default());
}

fn message_cstring(message: &str) -> CString {
    let bytes: Vec<u8> = message.bytes().filter(|b| *b != 0).collect();
    CString::new(bytes).unwrap_or_default()
}

/// Record the outcome of a call made on `db` (`None` when there is no handle).
pub(crate) fn record(db: Option<u64>, outcome: Option<&FfiError>) {
    // A thread being torn down has no storage left; the message is then simply not kept.
    let _ = ERRORS.try_with(|e| {
        let mut e = e.borrow_mut();
        match outcome {
            None => {
                e.last = None;
                if let Some(id) = db {
                    e.per_db.remove(&id);
                }
            }
            Some(err) => {
                e.last = Some((err.code, message_cstring(&err.message)));
                if let Some(id) = db {
                    e.per_db.insert(id, (err.code, message_cstring(&err.message)));
                }
            }
        }
    });
}

/// Forget this thread's message for a handle that is going away.
pub(crate) fn forget(db: u64) {
    let _ = ERRORS.try_with(|e| e.borrow_mut().per_db.remove(&db));
}

/// This thread's last code and message, for one handle or for the thread.
pub(crate) fn last(db: Option<u64>) -> (c_int, *const c_char) {
    ERRORS
        .try_with(|e| {
            let e = e.borrow();
            let entry = match db {
                Some(id) => e.per_db.get(&id),
                None => e.last.as_ref(),
            };
            match entry {
                Some((code, msg)) => (*code, msg.as_ptr()),
                None => (HIQLITE_OK, c"not an error".as_ptr()),
            }
        })
        .unwrap_or((HIQLITE_OK, c"not an error".as_ptr()))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (panic caught at the C boundary): {what}")
}

/// Run the body of an exported function that returns a result code: catch panics, record the
/// outcome for `hiqlite_errmsg`, return the code.
pub(crate) fn guard(db: Option<u64>, f: impl FnOnce() -> FfiResult<c_int>) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(FfiError::new(HIQLITE_PANIC, panic_message(&*p))));
    match r {
        Ok(code) => {
            record(db, None);
            code
        }
        Err(e) => {
            record(db, Some(&e));
            e.code
        }
    }
}

/// Run the body of an exported accessor that returns a value, not a code: a panic yields
/// `fallback`.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The English text of a result code.
pub(crate) fn code_str(code: c_int) -> &'static CStr {
    match code {
        HIQLITE_OK => c"not an error",
        HIQLITE_ROW => c"another row available",
        HIQLITE_DONE => c"no more rows available",
        HIQLITE_NOT_LEADER => c"not the leader",
        HIQLITE_NO_LEADER => c"no leader available",
        HIQLITE_UNREACHABLE => c"node unreachable",
        HIQLITE_TIMEOUT => c"timeout",
        HIQLITE_OUTCOME_UNKNOWN => c"outcome unknown (the write may or may not have been applied)",
        HIQLITE_UNAUTHORIZED => c"unauthorized",
        HIQLITE_CONFIG => c"configuration error",
        HIQLITE_STORAGE => c"storage error",
        HIQLITE_SERVER => c"server error",
        HIQLITE_RAFT => c"raft error",
        HIQLITE_INVALID_REQUEST => c"invalid request",
        HIQLITE_DECODE => c"decode error",
        HIQLITE_SHUTDOWN => c"node is shut down",
        HIQLITE_PANIC => c"internal error",
        HIQLITE_INVALID_UTF8 => c"invalid UTF-8",
        HIQLITE_CURSOR_TOO_OLD => c"change cursor too old",
        // SQLite's primary codes (an extended code's low byte), with SQLite's wording.
        c => match c & 0xff {
            1 => c"SQL logic error",
            2 => c"internal logic error",
            3 => c"access permission denied",
            4 => c"query aborted",
            5 => c"database is locked",
            6 => c"database table is locked",
            7 => c"out of memory",
            8 => c"attempt to write a readonly database",
            9 => c"interrupted",
            10 => c"disk I/O error",
            11 => c"database disk image is malformed",
            12 => c"unknown operation",
            13 => c"database or disk is full",
            14 => c"unable to open database file",
            15 => c"locking protocol",
            17 => c"database schema has changed",
            18 => c"string or blob too big",
            19 => c"constraint failed",
            20 => c"datatype mismatch",
            21 => c"bad parameter or other API misuse",
            23 => c"authorization denied",
            25 => c"column index out of range",
            26 => c"file is not a database",
            _ => c"unknown error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_and_message() {
        let cases = [
            (Error::Sql { code: 2067, message: "UNIQUE constraint failed: t.x".into() }, 2067),
            (Error::Sql { code: 0, message: "odd".into() }, HIQLITE_ERROR),
            (Error::NotLeader { leader: Some(2) }, HIQLITE_NOT_LEADER),
            (Error::NoLeader("x".into()), HIQLITE_NO_LEADER),
            (Error::Unreachable("x".into()), HIQLITE_UNREACHABLE),
            (Error::Timeout("x".into()), HIQLITE_TIMEOUT),
            (Error::OutcomeUnknown("x".into()), HIQLITE_OUTCOME_UNKNOWN),
            (Error::Unauthorized("x".into()), HIQLITE_UNAUTHORIZED),
            (Error::Config("x".into()), HIQLITE_CONFIG),
            (Error::Storage("x".into()), HIQLITE_STORAGE),
            (Error::Server("x".into()), HIQLITE_SERVER),
            (Error::Raft("x".into()), HIQLITE_RAFT),
            (Error::InvalidRequest("x".into()), HIQLITE_INVALID_REQUEST),
            (Error::Decode("x".into()), HIQLITE_DECODE),
            (Error::ShutDown, HIQLITE_SHUTDOWN),
        ];
        for (e, code) in cases {
            let shown = e.to_string();
            let f = FfiError::from(e.clone());
            assert_eq!(f.code, code, "{e:?}");
            match e {
                Error::Sql { message, .. } => assert_eq!(f.message, message),
                _ => assert_eq!(f.message, shown),
            }
        }
    }

    #[test]
    fn own_codes_never_look_like_sqlite_codes() {
        let own = [
            HIQLITE_NOT_LEADER,
            HIQLITE_NO_LEADER,
            HIQLITE_UNREACHABLE,
            HIQLITE_TIMEOUT,
            HIQLITE_OUTCOME_UNKNOWN,
            HIQLITE_UNAUTHORIZED,
            HIQLITE_CONFIG,
            HIQLITE_STORAGE,
            HIQLITE_RAFT,
            HIQLITE_INVALID_REQUEST,
            HIQLITE_DECODE,
            HIQLITE_SHUTDOWN,
            HIQLITE_PANIC,
            HIQLITE_INVALID_UTF8,
            HIQLITE_SERVER,
            HIQLITE_CURSOR_TOO_OLD,
        ];
        for c in own {
            assert!((1000..=1023).contains(&c), "{c}");
            // SQLite's primary codes are 0..=28, 100 and 101; an extended code keeps its primary
            // code in the low byte.
            assert!(c & 0xff > 101, "{c}");
            assert_ne!(code_str(c), c"unknown error", "{c} has no description");
        }
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_message() {
        let rc = guard(Some(7), || panic!("boom"));
        assert_eq!(rc, HIQLITE_PANIC);
        let (code, msg) = last(Some(7));
        assert_eq!(code, HIQLITE_PANIC);
        // SAFETY: a NUL-terminated string owned by this thread's error state.
        let msg = unsafe { CStr::from_ptr(msg) }.to_str().expect("utf-8");
        assert!(msg.contains("boom"), "{msg}");
        assert_eq!(guard_value(5, || panic!("again")), 5);
        // The next success clears the handle's message.
        assert_eq!(guard(Some(7), || Ok(HIQLITE_OK)), HIQLITE_OK);
        assert_eq!(last(Some(7)).0, HIQLITE_OK);
    }

    #[test]
    fn strings_from_c_are_checked() {
        // SAFETY: NULL and NUL-terminated literals.
        unsafe {
            assert_eq!(cstr(std::ptr::null(), "sql").expect_err("NULL").code, HIQLITE_MISUSE);
            assert_eq!(cstr(c"\xff".as_ptr(), "sql").expect_err("not UTF-8").code, HIQLITE_INVALID_UTF8);
            assert_eq!(cstr(c"ok".as_ptr(), "sql").expect("valid"), "ok");
        }
    }
}
