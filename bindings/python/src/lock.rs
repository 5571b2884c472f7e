//! `Lock`: a held distributed lock (`hiqlite::LockGuard`) for Python. Only mapping: the DB-API
//! layer makes it a context manager.

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;

use crate::{block, runtime, spawn};

/// The guard until it is released. Dropping an unreleased one releases the lock: the core spawns
/// that release on the current Tokio runtime (and stops renewing the lease), so the drop enters
/// the library's runtime first (Python may drop the handle on any thread).
struct Slot(Option<hiqlite::LockGuard>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(guard) = self.0.take() {
            let _rt = runtime().enter();
            drop(guard);
        }
    }
}

type Shared = Arc<Mutex<Slot>>;

fn take(slot: &Shared) -> Option<hiqlite::LockGuard> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).0.take()
}

/// Release the guard if it is still there; whether the lock was still held (false when released
/// before).
async fn release(guard: Option<hiqlite::LockGuard>) -> hiqlite::Result<bool> {
    match guard {
        Some(g) => g.release().await,
        None => Ok(false),
    }
}

/// A held lock (from `Database.lock` or `Database.try_lock`). Its lease is renewed in the
/// background until `release`; dropping it unreleased releases it. Thread-safe.
#[pyclass(frozen, module = "hiqlite._native")]
pub struct Lock {
    slot: Shared,
    name: String,
    token: i64,
}

impl Lock {
    pub fn new(guard: hiqlite::LockGuard) -> Lock {
        Lock {
            name: guard.name().to_owned(),
            token: guard.token(),
            slot: Arc::new(Mutex::new(Slot(Some(guard)))),
        }
    }
}

#[pymethods]
impl Lock {
    /// The fencing token: strictly greater than every earlier holder's of this lock.
    #[getter]
    fn token(&self) -> i64 {
        self.token
    }

    /// The lock's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// False once released, or once a renewal found the lock lost (lease ended, taken over).
    fn is_held(&self) -> bool {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).0.as_ref().is_some_and(|g| g.is_held())
    }

    /// Release the lock now (the next waiter gets it); whether it was still held. Releasing
    /// again does nothing and returns false.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        let guard = take(&self.slot);
        block(py, release(guard))
    }

    /// [`Lock::release`] as an awaitable.
    fn release_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let guard = take(&self.slot);
        spawn(py, release(guard))
    }
}
