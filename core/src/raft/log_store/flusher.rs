//! Deferred flushes: the leader's own appends are `fdatasync`'d on a thread of their own while
//! the Raft core replicates them (openraft patched: `LogFlushed::is_deferred`).
//!
//! The flush and the followers' round trip (≈ 50 µs there, their own flush, ≈ 50 µs back) then
//! overlap instead of following each other; a write waits for whichever majority is durable
//! first. Flushes complete in the order their appends were written, and one `fdatasync` covers
//! every append queued before it, so a busy leader flushes in groups.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::io::Io;
use super::OnFlushed;

/// What one deferred append left to make durable.
pub(super) struct Dirty {
    /// Segment files written to.
    pub(super) files: Vec<Arc<File>>,
    /// A segment was created: the directory needs a flush too.
    pub(super) dir: bool,
}

impl Dirty {
    /// Make it durable.
    pub(super) fn sync(&self, dir: &Path) -> std::io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        if self.dir {
            super::fsync_dir(dir)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<(Dirty, OnFlushed)>,
    /// The thread holds jobs it took and has not reported yet.
    busy: bool,
    stop: bool,
    started: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    /// Signalled when jobs arrive, when they are done, and at stop.
    cond: Condvar,
    dir: PathBuf,
    /// The store's I/O state: a failed flush makes the store refuse further writes.
    io: Arc<Mutex<Io>>,
}

/// The flush thread of one log store; started by the first deferred append.
pub(super) struct Flusher {
    inner: Arc<Inner>,
}

impl Flusher {
    pub(super) fn new(dir: PathBuf, io: Arc<Mutex<Io>>) -> Self {
        Flusher { inner: Arc::new(Inner { queue: Mutex::default(), cond: Condvar::new(), dir, io }) }
    }

    /// Flush `dirty` soon; `done` reports the outcome. The caller has written the bytes.
    pub(super) fn push(&self, dirty: Dirty, done: OnFlushed) {
        let mut q = self.inner.lock();
        if q.stop {
            drop(q);
            // Closed meanwhile (the core is stopping): flush here rather than drop the report.
            let r = dirty.sync(&self.inner.dir);
            done(r);
            return;
        }
        q.jobs.push((dirty, done));
        if !q.started {
            q.started = true;
            let inner = self.inner.clone();
            let spawned =
                std::thread::Builder::new().name("hiqlite-log-flush".into()).spawn(move || run(&inner));
            if let Err(e) = spawned {
                // Without a thread, flush every queued job here.
                q.started = false;
                let jobs = std::mem::take(&mut q.jobs);
                drop(q);
                tracing::warn!("cannot start the log flush thread ({e}); flushing inline");
                self.inner.flush(jobs);
                return;
            }
        }
        drop(q);
        self.inner.cond.notify_all();
    }

    /// Wait until every flush queued so far has been reported.
    pub(super) fn drain(&self) {
        let mut q = self.inner.lock();
        while !q.jobs.is_empty() || q.busy {
            q = self.inner.cond.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Flush what is queued and let the thread end.
    pub(super) fn stop(&self) {
        self.drain();
        self.inner.lock().stop = true;
        self.inner.cond.notify_all();
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One flush for all `jobs`, then their reports in order.
    fn flush(&self, jobs: Vec<(Dirty, OnFlushed)>) {
        let mut files: Vec<Arc<File>> = Vec::new();
        let mut dir = false;
        for (d, _) in &jobs {
            dir |= d.dir;
            for f in &d.files {
                if !files.iter().any(|g| Arc::ptr_eq(f, g)) {
                    files.push(f.clone());
                }
            }
        }
        let r = Dirty { files, dir }.sync(&self.dir);
        if let Err(e) = &r {
            self.io.lock().unwrap_or_else(|p| p.into_inner()).fail(format!("flush of the log failed: {e}"));
        }
        for (_, done) in jobs {
            done(match &r {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
}

fn run(inner: &Inner) {
    let mut q = inner.lock();
    loop {
        if q.jobs.is_empty() {
            if q.stop {
                return;
            }
            q = inner.cond.wait(q).unwrap_or_else(|p| p.into_inner());
            continue;
        }
        let jobs = std::mem::take(&mut q.jobs);
        q.busy = true;
        drop(q);
        inner.flush(jobs);
        q = inner.lock();
        q.busy = false;
        inner.cond.notify_all();
    }
}
