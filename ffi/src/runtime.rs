//! The one Tokio runtime the library owns. C callers block on it from their own threads; the
//! nodes' background tasks (Raft, HTTP servers) run on its workers.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::{FfiError, FfiResult, HIQLITE_ERROR};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> FfiResult<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("hiqlite-rt")
                .build()
                .map_err(|e| format!("cannot start the hiqlite runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| FfiError::new(HIQLITE_ERROR, e.clone()))
}

/// Run `fut` to completion on the library's runtime, blocking the calling (C) thread.
pub(crate) fn block_on<F: Future>(fut: F) -> FfiResult<F::Output> {
    // Blocking inside a runtime would stall (or panic in) that runtime's worker; this happens
    // only if a callback of an async host calls back into the library.
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(FfiError::misuse(
            "hiqlite functions block; they cannot be called from inside a Tokio runtime",
        ));
    }
    Ok(runtime()?.block_on(fut))
}
