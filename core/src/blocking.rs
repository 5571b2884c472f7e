//! Blocking work (file I/O, SQLite) called from async code on the thread that asks for it.
//!
//! Every thread or task hop on the write path costs ≈ 40 µs across the two cores of the machines
//! this runs on, and openraft waits for a follower's log flushes and for applies anyway, so the
//! log store and the SQLite writer do their work on the calling thread instead of on threads of
//! their own. (The leader's own flush, which the patched core does not wait for, is the one
//! exception: `raft/log_store/flusher.rs`.)

/// How long the work may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Bounded and short (one log append, a small apply): run it in place. Tasks queued behind
    /// this one on the same worker wait at most that long.
    Short,
    /// Possibly long (a big transaction, VACUUM, a snapshot restore): on a multi-threaded
    /// runtime the worker first hands its other tasks to another thread.
    Long,
}

/// Run `f` here; see [`Expect`].
pub(crate) fn run<T>(expect: Expect, f: impl FnOnce() -> T) -> T {
    match (expect, tokio::runtime::Handle::try_current()) {
        (Expect::Long, Ok(h)) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
