//! Change streams and live queries in C: `hiqlite_changes` hands every committed row change (the
//! core's `ChangeStream`) to a C callback, `hiqlite_watch` a query's rows at once and after each
//! change of them (the core's `Watch`). Both run as a listener does (`listen.rs`): a thread of
//! the library waits on the runtime and calls back outside it; `hiqlite_listener_close` stops
//! them.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

use base64::Engine as _;
use engine::{Change, ChangeCursor, ChangeOptions, Value};
use serde_json::{json, Map, Value as J};

use crate::db::{hiqlite_db, with_db};
use crate::error::{cstr, FfiError, FfiResult, HIQLITE_ERROR, HIQLITE_OK};
use crate::listen::{hiqlite_listener, Stop, UserData};
use crate::runtime::block_on;

/// `hiqlite_stream_event.kind`: one committed row change (`hiqlite_changes`).
pub const HIQLITE_EVENT_CHANGE: c_int = 4;
/// `hiqlite_stream_event.kind`: the rows of a live query (`hiqlite_watch`), at once and after
/// each change of them.
pub const HIQLITE_EVENT_ROWS: c_int = 5;

/// What the callback of `hiqlite_changes` and `hiqlite_watch` is given. Every pointer in it is
/// owned by the library and valid only during the callback: copy what you keep.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct hiqlite_stream_event {
    /// `HIQLITE_EVENT_CHANGE`, `HIQLITE_EVENT_ROWS` or `HIQLITE_EVENT_ERROR` (as for listeners).
    pub kind: c_int,
    /// CHANGE: the Raft log index of the entry that made the change. Else 0.
    pub index: u64,
    /// CHANGE: its place among that entry's changes, from 0. Else 0.
    pub seq: u32,
    /// CHANGE: the cursor after this change (`"index.seq"`), to resume at. ERROR of a change
    /// stream: the cursor to resume at (after the last change delivered, else the `from` given;
    /// NULL when neither). Else NULL.
    pub cursor: *const c_char,
    /// CHANGE: the table, as its schema names it. Else NULL.
    pub table: *const c_char,
    /// CHANGE: `"insert"`, `"update"` or `"delete"`. Else NULL.
    pub op: *const c_char,
    /// CHANGE: the rowid (after the change; before it for a delete) when `has_rowid`.
    pub rowid: i64,
    /// CHANGE: 1 when the table has rowids, 0 for a `WITHOUT ROWID` table.
    pub has_rowid: c_int,
    /// CHANGE: the change as JSON, `{"index", "seq", "cursor", "table", "op", "rowid", "key",
    /// "new", "old"}`: `key` the primary key's values (an array), `new`/`old` the row by column
    /// name (`null` when absent: no new row for a delete, old values only when asked for).
    /// ROWS: the rows as `hiqlite_query_json` gives them. BLOBs base64. Else NULL.
    pub json: *const c_char,
    /// ERROR: the result code (e.g. `HIQLITE_CURSOR_TOO_OLD`). Else `HIQLITE_OK`.
    pub error_code: c_int,
    /// ERROR: the message. Else NULL.
    pub error_message: *const c_char,
}

/// The callback of `hiqlite_changes` and `hiqlite_watch`: `user_data` as given, and the event.
/// Return 0 to go on, anything else to stop (no further callback; the handle must still be
/// closed). It runs on a thread of the library, one event at a time, in order; it may call other
/// hiqlite functions (not `hiqlite_close` of the stream's database), and it must not unwind out
/// of the call.
#[allow(non_camel_case_types)]
pub type hiqlite_stream_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const hiqlite_stream_event) -> c_int>;

type Callback = unsafe extern "C" fn(*mut c_void, *const hiqlite_stream_event) -> c_int;

/// A string for C: interior NULs (impossible in names we hand out, possible in messages) cut.
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

fn plain(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Integer(i) => json!(i),
        Value::Real(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Text(s) => json!(s),
        Value::Blob(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

fn row(c: &Change, vals: Option<&Vec<Value>>) -> J {
    vals.map_or(J::Null, |vals| {
        J::Object(c.columns.iter().zip(vals).map(|(k, v)| (k.clone(), plain(v))).collect::<Map<_, _>>())
    })
}

/// A change as `hiqlite_stream_event.json` gives it.
pub(crate) fn change_json(c: &Change) -> String {
    json!({
        "index": c.index, "seq": c.seq, "cursor": c.cursor().to_string(), "table": c.table,
        "op": c.op.as_str(), "rowid": c.rowid, "key": c.key.iter().map(plain).collect::<Vec<_>>(),
        "new": row(c, c.new.as_ref()), "old": row(c, c.old.as_ref()),
    })
    .to_string()
}

/// The callback and its data.
struct Sink {
    callback: Callback,
    user_data: UserData,
}

impl Sink {
    /// Hand one event to C; whether to go on.
    fn deliver(&self, ev: &hiqlite_stream_event) -> bool {
        // SAFETY: a callback given by the caller for this purpose; `ev` and what it points to
        // live until it returns.
        unsafe { (self.callback)(self.user_data.0, ev) == 0 }
    }

    fn error(&self, cursor: Option<&CString>, e: &FfiError) {
        let message = c_string(&e.message);
        let ev = hiqlite_stream_event {
            error_code: e.code,
            error_message: message.as_ptr(),
            cursor: cursor.map_or(std::ptr::null(), |c| c.as_ptr()),
            ..empty(crate::listen::HIQLITE_EVENT_ERROR)
        };
        self.deliver(&ev);
    }
}

fn empty(kind: c_int) -> hiqlite_stream_event {
    hiqlite_stream_event {
        kind,
        index: 0,
        seq: 0,
        cursor: std::ptr::null(),
        table: std::ptr::null(),
        op: std::ptr::null(),
        rowid: 0,
        has_rowid: 0,
        json: std::ptr::null(),
        error_code: HIQLITE_OK,
        error_message: std::ptr::null(),
    }
}

/// The next item of a stream, or `None` once a stop was requested; on the library's runtime.
fn wait<T>(stop: &Stop, next: impl std::future::Future<Output = engine::Result<T>>) -> FfiResult<Option<T>> {
    if stop.requested() {
        return Ok(None);
    }
    let got = block_on(async {
        tokio::select! {
            biased;
            () = stop.wake.notified() => None,
            e = next => Some(e),
        }
    })?;
    match got {
        _ if stop.requested() => Ok(None),
        None => Ok(None),
        Some(r) => Ok(Some(r?)),
    }
}

/// The change stream's thread: its result is the stream's error, if that ended it.
fn run_changes(
    mut stream: engine::ChangeStream,
    stop: &Stop,
    sink: &Sink,
    from: Option<ChangeCursor>,
) -> FfiResult<()> {
    let mut last = from.map(|c| c_string(&c.to_string()));
    loop {
        let c = match wait(stop, stream.next()) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(()),
            Err(e) => {
                sink.error(last.as_ref(), &e);
                return Err(e);
            }
        };
        let cursor = c_string(&c.cursor().to_string());
        let table = c_string(&c.table);
        let op = c_string(c.op.as_str());
        let text = c_string(&change_json(&c));
        let ev = hiqlite_stream_event {
            index: c.index,
            seq: c.seq,
            cursor: cursor.as_ptr(),
            table: table.as_ptr(),
            op: op.as_ptr(),
            rowid: c.rowid.unwrap_or(0),
            has_rowid: c_int::from(c.rowid.is_some()),
            json: text.as_ptr(),
            ..empty(HIQLITE_EVENT_CHANGE)
        };
        let go_on = sink.deliver(&ev);
        last = Some(cursor);
        if !go_on {
            return Ok(());
        }
    }
}

/// The live query's thread.
fn run_watch(mut w: engine::Watch, stop: &Stop, sink: &Sink) -> FfiResult<()> {
    loop {
        let rows = match wait(stop, w.next()) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                sink.error(None, &e);
                return Err(e);
            }
        };
        let text = c_string(&crate::json::query_answer(&rows));
        let ev = hiqlite_stream_event { json: text.as_ptr(), ..empty(HIQLITE_EVENT_ROWS) };
        if !sink.deliver(&ev) {
            return Ok(());
        }
    }
}

/// Start `body` on a thread of its own and hand out the handle.
fn spawn(
    d: &hiqlite_db,
    name: &str,
    out: *mut *mut hiqlite_listener,
    body: impl FnOnce(&Stop) -> FfiResult<()> + Send + 'static,
) -> FfiResult<c_int> {
    let stop = Stop::new();
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || body(&thread_stop))
        .map_err(|e| FfiError::new(HIQLITE_ERROR, format!("cannot start the stream's thread: {e}")))?;
    let handle = Box::new(hiqlite_listener { db: d.id, stop, thread });
    // SAFETY: checked non-NULL and writable by the callers.
    unsafe { *out = Box::into_raw(handle) };
    Ok(HIQLITE_OK)
}

/// Common checks: the out-pointer (cleared) and the callback.
///
/// # Safety
/// `out` NULL or writable.
unsafe fn start_args(
    out: *mut *mut hiqlite_listener,
    callback: hiqlite_stream_callback,
) -> FfiResult<Callback> {
    if out.is_null() {
        return Err(FfiError::misuse("handle out-pointer is NULL"));
    }
    // SAFETY: non-NULL, writable per the contract.
    unsafe { *out = std::ptr::null_mut() };
    callback.ok_or_else(|| FfiError::misuse("callback is NULL"))
}

/// Follow committed row changes (inserts, updates, deletes; triggers and foreign-key actions
/// included) in log order, the same on every node: `callback(user_data, event)` is called with a
/// `HIQLITE_EVENT_CHANGE` event for each.
///
/// `from_cursor`: NULL for the changes committed from now on, else a cursor (`"index.seq"` as an
/// event's `cursor` gives it, resuming right after that change without gaps or repeats, or just
/// `"index"`: the changes of log index `index` and later). A cursor older than the changes the
/// node keeps fails with `HIQLITE_CURSOR_TOO_OLD` (here, or as the stream's error event);
/// text that is no cursor with `HIQLITE_INVALID_REQUEST`. `tables_csv`: NULL or `""` for every
/// table, else table names separated by commas (case-insensitive; blanks around names are
/// ignored). `old_values`: nonzero to also get the old row of updates and deletes.
///
/// When this returns `HIQLITE_OK`, `*handle` is a new handle; release it with
/// `hiqlite_listener_close`, also after the stream stopped by itself. The callback runs as a
/// listener's does (`hiqlite_listen`): on a thread of the library, one event at a time, until it
/// returns nonzero, the stream fails (a last `HIQLITE_EVENT_ERROR` event whose `cursor` is where
/// to resume), or `hiqlite_listener_close`.
///
/// # Safety
/// `db` NULL or a live handle; `from_cursor` and `tables_csv` NULL or NUL-terminated; `callback`
/// NULL or a function as `hiqlite_stream_callback` describes; `user_data` is passed to it as is,
/// from the stream's thread, until `hiqlite_listener_close` returns; `handle` writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_changes(
    db: *const hiqlite_db,
    from_cursor: *const c_char,
    tables_csv: *const c_char,
    old_values: c_int,
    callback: hiqlite_stream_callback,
    user_data: *mut c_void,
    handle: *mut *mut hiqlite_listener,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let callback = unsafe { start_args(handle, callback) }?;
        let mut opts = ChangeOptions::new().old_values(old_values != 0);
        let mut from = None;
        if !from_cursor.is_null() {
            // SAFETY: caller's contract.
            let text = unsafe { cstr(from_cursor, "from_cursor") }?;
            let c: ChangeCursor = text.parse().map_err(FfiError::from)?;
            opts = opts.from(c);
            from = Some(c);
        }
        if !tables_csv.is_null() {
            // SAFETY: caller's contract.
            let csv = unsafe { cstr(tables_csv, "tables_csv") }?;
            let tables: Vec<&str> = csv.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
            if tables.is_empty() && !csv.trim().is_empty() {
                return Err(FfiError::new(
                    crate::error::HIQLITE_INVALID_REQUEST,
                    format!("tables_csv `{csv}` names no table"),
                ));
            }
            opts = opts.tables(tables);
        }
        let stream = block_on(d.client.changes(opts))??;
        let sink = Sink { callback, user_data: UserData(user_data) };
        spawn(d, "hiqlite-changes", handle, move |stop| run_changes(stream, stop, &sink, from))
    })
}

/// A live query: `callback(user_data, event)` is called with a `HIQLITE_EVENT_ROWS` event whose
/// `json` holds the rows of `sql` (as `hiqlite_query_json` gives them) at once, then again each
/// time a committed write changed them (writes that arrive together give one event). Reads on
/// this node (remote: the node the client reaches). `params_json` as for `hiqlite_query_json`.
///
/// When this returns `HIQLITE_OK`, `*handle` is a new handle, released with
/// `hiqlite_listener_close`; the callback runs as a listener's does (see `hiqlite_changes`).
///
/// # Safety
/// `db` NULL or a live handle; `sql` and `params_json` NULL or NUL-terminated; `callback`,
/// `user_data` and `handle` as for `hiqlite_changes`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_watch(
    db: *const hiqlite_db,
    sql: *const c_char,
    params_json: *const c_char,
    callback: hiqlite_stream_callback,
    user_data: *mut c_void,
    handle: *mut *mut hiqlite_listener,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let callback = unsafe { start_args(handle, callback) }?;
        // SAFETY: caller's contract.
        let sql = unsafe { cstr(sql, "sql") }?;
        let params = if params_json.is_null() {
            engine::Params::None
        } else {
            // SAFETY: caller's contract.
            crate::json::params(unsafe { cstr(params_json, "params_json") }?)?
        };
        let w = block_on(d.client.watch(sql, params))??;
        let sink = Sink { callback, user_data: UserData(user_data) };
        spawn(d, "hiqlite-watch", handle, move |stop| run_watch(w, stop, &sink))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_render_by_column_name() {
        let c = Change {
            index: 7,
            seq: 2,
            table: "t".into(),
            op: engine::ChangeOp::Update,
            rowid: Some(3),
            columns: vec!["id".to_owned(), "b".to_owned()].into(),
            key: vec![Value::Integer(3)],
            old: None,
            new: Some(vec![Value::Integer(3), Value::Blob(vec![0xde, 0xad])]),
        };
        let v: J = serde_json::from_str(&change_json(&c)).expect("json");
        assert_eq!(
            v,
            json!({"index": 7, "seq": 2, "cursor": "7.3", "table": "t", "op": "update", "rowid": 3,
                   "key": [3], "new": {"id": 3, "b": "3q0="}, "old": null})
        );
    }
}
