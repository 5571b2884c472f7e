//! Deterministic SQL for replicated writes.
//!
//! Every replica applies the same log entry, so every SQL function a write uses must give the
//! same answer everywhere. The leader stamps each entry with a timestamp and a seed; while the
//! writer thread applies that entry:
//! - `'now'` (in `datetime('now')`, `julianday('now')`, `unixepoch()`, `CURRENT_TIMESTAMP`, ...)
//!   comes from SQLite's VFS clock. The writer connection uses the VFS `hiqlite-det`, a copy of the
//!   default unix VFS whose clock answers the entry's timestamp (a thread-local of the writer
//!   thread), so all of SQLite's own date functions stay exactly as they are;
//! - `random()` and `randomblob(N)` are overridden on the writer connection by functions drawing
//!   from a SplitMix64 stream seeded by the entry;
//! - `total_changes()` depends on the connection's history and is refused.
//!
//! Not covered: `'localtime'` modifiers use each node's time zone; run all nodes with the same
//! `TZ` (UTC recommended) if writes use them.

use std::cell::Cell;
use std::ffi::{c_char, c_int, CStr};
use std::sync::OnceLock;

use rusqlite::ffi;
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

/// Name of the deterministic VFS.
pub(crate) const VFS_NAME: &CStr = c"hiqlite-det";
/// Largest `randomblob()` a write may ask for (every replica allocates it).
const MAX_RANDOMBLOB: i64 = 16 * 1024 * 1024;
/// Julian day number of the Unix epoch, in milliseconds (what SQLite's clock counts in).
const UNIX_EPOCH_JD_MS: i64 = 210_866_760_000_000;

thread_local! {
    static NOW_MS: Cell<Option<i64>> = const { Cell::new(None) };
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Make `'now'` and the random functions answer from this entry's stamp on this thread.
pub(crate) fn enter_entry(ts_ms: i64, seed: u64) {
    NOW_MS.with(|c| c.set(Some(ts_ms)));
    RNG.with(|c| c.set(seed));
}

/// The clock and random state of this thread, to carry an open transaction's determinism from
/// one thread to the next (the writer runs on whichever thread calls it).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Saved {
    now_ms: Option<i64>,
    rng: u64,
}

/// Take this thread's state (leaving the real clock in place).
pub(crate) fn take() -> Saved {
    let now_ms = NOW_MS.with(|c| c.replace(None));
    Saved { now_ms, rng: RNG.with(Cell::get) }
}

/// Put a state taken with [`take`] on this thread.
pub(crate) fn put(s: Saved) {
    NOW_MS.with(|c| c.set(s.now_ms));
    RNG.with(|c| c.set(s.rng));
}

/// Back to the real clock (between entries).
pub(crate) fn leave_entry() {
    NOW_MS.with(|c| c.set(None));
}

fn next_random() -> u64 {
    RNG.with(|c| {
        // SplitMix64: tiny, well distributed, and fully determined by the seed.
        let mut z = c.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        c.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

struct DefaultVfs(*mut ffi::sqlite3_vfs);
// SAFETY: the default VFS object is a process-wide static owned by SQLite and is thread-safe.
unsafe impl Send for DefaultVfs {}
unsafe impl Sync for DefaultVfs {}

static DEFAULT_VFS: OnceLock<Result<DefaultVfs, String>> = OnceLock::new();

unsafe extern "C" fn current_time_int64(_vfs: *mut ffi::sqlite3_vfs, now: *mut ffi::sqlite3_int64) -> c_int {
    if let Some(ms) = NOW_MS.with(Cell::get) {
        // SAFETY: SQLite passes a valid out-pointer.
        unsafe { *now = UNIX_EPOCH_JD_MS.saturating_add(ms) };
        return ffi::SQLITE_OK;
    }
    match DEFAULT_VFS.get() {
        Some(Ok(d)) => {
            // SAFETY: delegating to the default VFS's own clock with its own vfs pointer.
            unsafe {
                match (*d.0).xCurrentTimeInt64 {
                    Some(f) => f(d.0, now),
                    None => ffi::SQLITE_ERROR,
                }
            }
        }
        _ => ffi::SQLITE_ERROR,
    }
}

unsafe extern "C" fn current_time(vfs: *mut ffi::sqlite3_vfs, now: *mut f64) -> c_int {
    let mut ms: ffi::sqlite3_int64 = 0;
    // SAFETY: forwards to the function above with a valid local out-pointer.
    let rc = unsafe { current_time_int64(vfs, &mut ms) };
    // SAFETY: SQLite passes a valid out-pointer.
    unsafe { *now = ms as f64 / 86_400_000.0 };
    rc
}

/// Register the `hiqlite-det` VFS once per process.
pub(crate) fn register_vfs() -> Result<(), String> {
    let r = DEFAULT_VFS.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initializes SQLite and returns the default VFS or NULL.
        let dflt = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
        if dflt.is_null() {
            return Err("SQLite has no default VFS".to_string());
        }
        // SAFETY: copying the plain C struct; all pointers in it stay valid for the process.
        let mut ours: ffi::sqlite3_vfs = unsafe { *dflt };
        ours.zName = VFS_NAME.as_ptr() as *const c_char;
        ours.pNext = std::ptr::null_mut();
        ours.xCurrentTime = Some(current_time);
        if ours.iVersion >= 2 {
            ours.xCurrentTimeInt64 = Some(current_time_int64);
        }
        let leaked: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(ours));
        // SAFETY: the struct lives forever; SQLite only links it into its VFS list.
        let rc = unsafe { ffi::sqlite3_vfs_register(leaked, 0) };
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_vfs_register failed with code {rc}"));
        }
        Ok(DefaultVfs(dflt))
    });
    r.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Override the non-deterministic functions on a writer connection.
pub(crate) fn install_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("random", 0, flags, |_| Ok(next_random() as i64))?;
    conn.create_scalar_function("randomblob", 1, flags, |ctx| {
        let n: i64 = ctx.get::<Option<i64>>(0)?.unwrap_or(1).max(1);
        if n > MAX_RANDOMBLOB {
            return Err(rusqlite::Error::UserFunctionError("randomblob() size too large".into()));
        }
        let mut out = Vec::with_capacity(n as usize);
        while out.len() < n as usize {
            out.extend_from_slice(&next_random().to_le_bytes());
        }
        out.truncate(n as usize);
        Ok(out)
    })?;
    conn.create_scalar_function("total_changes", 0, flags, |_| -> rusqlite::Result<i64> {
        Err(rusqlite::Error::UserFunctionError(
            "total_changes() is not deterministic across replicas and is not allowed in writes".into(),
        ))
    })?;
    Ok(())
}
