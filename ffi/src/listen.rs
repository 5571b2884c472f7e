//! listen/notify in C: `hiqlite_notify` publishes on a channel; `hiqlite_listen` hands every
//! event of a channel (the core's `Listener`) to a C callback, on a thread of the library, until
//! the callback asks to stop, the stream fails, or `hiqlite_listener_close` stops it.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use engine::{ListenEvent, Listener};

use crate::coord::bytes;
use crate::db::{hiqlite_db, put, with_db};
use crate::error::{cstr, guard, FfiError, FfiResult, HIQLITE_ERROR, HIQLITE_OK, HIQLITE_PANIC};
use crate::runtime::block_on;

/// `after` of `hiqlite_listen`: only notifications published from now on.
pub const HIQLITE_LISTEN_FROM_NOW: i64 = -1;

/// `hiqlite_listen_event.kind`: the next notification of the channel.
pub const HIQLITE_EVENT_NOTIFICATION: c_int = 1;
/// `hiqlite_listen_event.kind`: the listener fell behind its bounded buffer after `id`. With
/// `lost` 0 it goes on from the notifications the cluster keeps and misses nothing; with `lost`
/// 1 notifications after `id` were dropped before it read them (reload the state it follows).
pub const HIQLITE_EVENT_LAGGED: c_int = 2;
/// `hiqlite_listen_event.kind`: the listener failed (`error_code`, `error_message`) and stops:
/// this is its last callback. E.g. `HIQLITE_UNREACHABLE` when a remote stream broke,
/// `HIQLITE_SHUTDOWN` when the embedded node was closed. To go on, close it and listen again
/// with `after` = `id`.
pub const HIQLITE_EVENT_ERROR: c_int = 3;

/// What a listener's callback is given. Every pointer in it is owned by the library and valid
/// only during the callback: copy what you keep.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct hiqlite_listen_event {
    /// `HIQLITE_EVENT_NOTIFICATION`, `HIQLITE_EVENT_LAGGED` or `HIQLITE_EVENT_ERROR`.
    pub kind: c_int,
    /// NOTIFICATION: its id, a cluster-wide sequence number (the cursor to resume after).
    /// LAGGED: the last id delivered before the gap. ERROR: the last id delivered (the `after`
    /// given to `hiqlite_listen` when none was), to listen again from.
    pub id: i64,
    /// The channel (NUL-terminated).
    pub channel: *const c_char,
    /// NOTIFICATION: the payload's bytes (never NULL; not NUL-terminated). Else an empty buffer.
    pub payload: *const c_void,
    /// The payload's length.
    pub payload_len: usize,
    /// LAGGED: 1 when notifications were lost, else 0.
    pub lost: c_int,
    /// ERROR: the result code. Else `HIQLITE_OK`.
    pub error_code: c_int,
    /// ERROR: the message (NUL-terminated). Else NULL.
    pub error_message: *const c_char,
}

/// A listener's callback: `user_data` as given to `hiqlite_listen`, and the event. Return 0 to
/// go on, anything else to stop (no further callback; the handle must still be closed). It runs
/// on a thread of the library, one event at a time, in order; it may call other hiqlite
/// functions (not `hiqlite_close` of the listener's database), and it must not unwind (no C++
/// exception, no `longjmp`) out of the call.
#[allow(non_camel_case_types)]
pub type hiqlite_listen_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const hiqlite_listen_event) -> c_int>;

/// A running listener (`hiqlite_listen`), change stream (`hiqlite_changes`) or live query
/// (`hiqlite_watch`), released by `hiqlite_listener_close`. Errors of calls
/// on it are reported on the database it came from.
#[allow(non_camel_case_types)]
pub struct hiqlite_listener {
    pub(crate) db: u64,
    pub(crate) stop: Arc<Stop>,
    pub(crate) thread: JoinHandle<FfiResult<()>>,
}

/// How `hiqlite_listener_close` stops the listener's thread.
pub(crate) struct Stop {
    pub(crate) requested: AtomicBool,
    pub(crate) wake: tokio::sync::Notify,
}

impl Stop {
    pub(crate) fn new() -> Arc<Stop> {
        Arc::new(Stop { requested: AtomicBool::new(false), wake: tokio::sync::Notify::new() })
    }

    pub(crate) fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

/// The caller's `user_data`: the caller vouches that the callback may use it from the
/// listener's thread (`hiqlite_listen`'s contract, and `hiqlite_changes`'/`hiqlite_watch`'s).
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: see `UserData`; the library never dereferences it.
unsafe impl Send for UserData {}

/// The callback, its data and the channel's name as C sees them.
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, *const hiqlite_listen_event) -> c_int,
    user_data: UserData,
    channel: CString,
}

impl Sink {
    /// Hand one event to C; whether to go on.
    fn deliver(&self, kind: c_int, id: i64, payload: &[u8], lost: bool, error: Option<&FfiError>) -> bool {
        let message = error.map(|e| CString::new(e.message.replace('\0', "")).unwrap_or_default());
        let ev = hiqlite_listen_event {
            kind,
            id,
            channel: self.channel.as_ptr(),
            // Never NULL, also when empty.
            payload: if payload.is_empty() { b"".as_ptr() } else { payload.as_ptr() }.cast::<c_void>(),
            payload_len: payload.len(),
            lost: c_int::from(lost),
            error_code: error.map_or(HIQLITE_OK, |e| e.code),
            error_message: message.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
        };
        // SAFETY: a callback given by the caller for this purpose; `ev` and what it points to
        // live until it returns.
        unsafe { (self.callback)(self.user_data.0, &ev) == 0 }
    }
}

/// The listener's thread: wait for the next event (or a stop request) on the library's
/// runtime, then call back on this thread, outside the runtime, so that the callback may call
/// the library. Its result is the stream's error, if that is what ended it.
fn run(mut listener: Listener, stop: &Stop, sink: &Sink, mut last: i64) -> FfiResult<()> {
    loop {
        if stop.requested.load(Ordering::Acquire) {
            return Ok(());
        }
        let next = block_on(async {
            tokio::select! {
                biased;
                () = stop.wake.notified() => None,
                e = listener.next() => Some(e.map_err(FfiError::from)),
            }
        });
        let event = match next {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(()),
            Err(e) => Err(e),
        };
        if stop.requested.load(Ordering::Acquire) {
            return Ok(());
        }
        let go_on = match event {
            Ok(ListenEvent::Notification(n)) => {
                last = n.id;
                sink.deliver(HIQLITE_EVENT_NOTIFICATION, n.id, &n.payload, false, None)
            }
            Ok(ListenEvent::Lagged { after, lost }) => {
                sink.deliver(HIQLITE_EVENT_LAGGED, after, &[], lost, None)
            }
            Err(e) => {
                sink.deliver(HIQLITE_EVENT_ERROR, last, &[], false, Some(&e));
                return Err(e);
            }
        };
        if !go_on {
            return Ok(());
        }
    }
}

/// Publish the `payload_len` bytes at `payload` on `channel`, cluster-wide (through the log).
/// `*id` (may be NULL) receives the notification's id: a cluster-wide sequence number, the same
/// on every node.
///
/// # Safety
/// `db` NULL or a live handle; `channel` NULL or NUL-terminated; `payload` NULL (with
/// `payload_len` 0) or `payload_len` readable bytes; `id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_notify(
    db: *const hiqlite_db,
    channel: *const c_char,
    payload: *const c_void,
    payload_len: usize,
    id: *mut i64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe { put(id, 0) };
        // SAFETY: caller's contract.
        let (channel, payload) =
            unsafe { (cstr(channel, "channel")?, bytes(payload, payload_len, "payload")?) };
        let n = block_on(d.client.notify(channel, payload.unwrap_or_default()))??;
        // SAFETY: caller's contract.
        unsafe { put(id, n) };
        Ok(HIQLITE_OK)
    })
}

/// Follow `channel`: `callback(user_data, event)` is called for every notification published
/// after id `after` (`HIQLITE_LISTEN_FROM_NOW`: from now on; 0: from the oldest the cluster
/// keeps, the last 10,000 per channel), in log order (the same order on every node), without
/// gaps; a `HIQLITE_EVENT_LAGGED` event says when the listener fell behind its bounded buffer.
/// Embedded: this node's applied notifications; remote: a server-sent event stream from one node.
///
/// When this returns `HIQLITE_OK` the listener is subscribed: everything published from then on
/// reaches it. `*listener` is a new handle; release it with `hiqlite_listener_close`, also after
/// the listener stopped by itself. The callback runs on a thread of the library, one event at a
/// time, until it returns nonzero, the listener fails (a last `HIQLITE_EVENT_ERROR` event), or
/// `hiqlite_listener_close`. Closing the database ends an embedded node's listeners with
/// `HIQLITE_SHUTDOWN`; a remote listener keeps its own connection until it is closed.
///
/// # Safety
/// `db` NULL or a live handle; `channel` NULL or NUL-terminated; `callback` NULL or a function
/// as `hiqlite_listen_callback` describes; `user_data` is passed to it as is, from the listener's
/// thread, until `hiqlite_listener_close` returns (it must be usable from there); `listener`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_listen(
    db: *const hiqlite_db,
    channel: *const c_char,
    after: i64,
    callback: hiqlite_listen_callback,
    user_data: *mut c_void,
    listener: *mut *mut hiqlite_listener,
) -> c_int {
    with_db(db, |d| {
        if listener.is_null() {
            return Err(FfiError::misuse("listener out-pointer is NULL"));
        }
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *listener = std::ptr::null_mut() };
        let callback = callback.ok_or_else(|| FfiError::misuse("callback is NULL"))?;
        if after < HIQLITE_LISTEN_FROM_NOW {
            return Err(FfiError::misuse(format!(
                "after must be a notification id (>= 0) or HIQLITE_LISTEN_FROM_NOW, not {after}"
            )));
        }
        // SAFETY: caller's contract.
        let name = unsafe { cstr(channel, "channel") }?;
        let core = block_on(d.client.listen(name, (after >= 0).then_some(after)))??;
        let sink = Sink {
            callback,
            user_data: UserData(user_data),
            // Read from a C string: no interior NUL.
            channel: CString::new(name).map_err(|e| FfiError::misuse(format!("channel: {e}")))?,
        };
        let stop = Arc::new(Stop { requested: AtomicBool::new(false), wake: tokio::sync::Notify::new() });
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hiqlite-listen".into())
            .spawn(move || run(core, &thread_stop, &sink, after))
            .map_err(|e| FfiError::new(HIQLITE_ERROR, format!("cannot start the listener's thread: {e}")))?;
        let handle = Box::new(hiqlite_listener { db: d.id, stop, thread });
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *listener = Box::into_raw(handle) };
        Ok(HIQLITE_OK)
    })
}

/// Stop the listener (or change stream, or watch) and release the handle. From any other thread it returns once no callback
/// runs any more (waiting for a running one to return), and none runs afterwards. Called from
/// inside the listener's own callback, it cannot wait for that callback: it releases the handle,
/// returns `HIQLITE_OK`, and no further callback follows the current one.
///
/// Returns `HIQLITE_OK` when the listener was running or stopped because its callback asked,
/// and the error that ended it otherwise (the code of its `HIQLITE_EVENT_ERROR` event; the
/// message is `hiqlite_errmsg` of its database, or of NULL). NULL is a no-op.
///
/// # Safety
/// `listener` NULL or a live handle, not used again (closing twice is undefined behaviour).
#[no_mangle]
pub unsafe extern "C" fn hiqlite_listener_close(listener: *mut hiqlite_listener) -> c_int {
    if listener.is_null() {
        return HIQLITE_OK;
    }
    // SAFETY: a live handle made by `hiqlite_listen`, per the contract; it is not used again.
    let l = unsafe { Box::from_raw(listener) };
    let hiqlite_listener { db, stop, thread } = *l;
    guard(Some(db), move || {
        stop.requested.store(true, Ordering::Release);
        // A permit when the thread is not waiting now: its next wait ends at once.
        stop.wake.notify_one();
        if thread.thread().id() == std::thread::current().id() {
            // Inside the callback: the thread sees the request once the callback returns.
            drop(thread);
            return Ok(HIQLITE_OK);
        }
        match thread.join() {
            Ok(Ok(())) => Ok(HIQLITE_OK),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(FfiError::new(HIQLITE_PANIC, "the listener's thread panicked")),
        }
    })
}
