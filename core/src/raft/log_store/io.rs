//! The log's file I/O, done by the caller: openraft's core waits for a follower's flushes, so a
//! writer thread only added two cross-thread wake-ups (≈ 40 µs each here) to every write's
//! critical path. Only the leader's own flush, which the core does not wait for, goes to the
//! flush thread (`flusher.rs`).
//!
//! Segments are preallocated with zeros in [`PREALLOC`] steps: `fdatasync` after overwriting
//! blocks that already exist needs no journal commit for a size change, which cuts a flush from
//! ≈ 120–150 µs to ≈ 90–100 µs on this kind of disk. A zero-filled tail is where the log ends.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::flusher::Dirty;
use super::{fsync_dir, io_err, write_atomic, LogId, Vote};

/// Bytes a segment grows by at once (zero-filled).
pub(super) const PREALLOC: u64 = 1024 * 1024;
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// File I/O of one append, in order.
pub(super) enum Write {
    /// The active segment is full: trim it to what it holds and make that durable before the
    /// next segment gets a byte, so a later valid segment always means the earlier ones are whole.
    Roll { old: Arc<File>, used: u64 },
    /// Records (this range of the append's buffer) at `offset` of segment `seg`; `new_segment`
    /// when the file was just created.
    Bytes { seg: u64, file: Arc<File>, offset: u64, bytes: std::ops::Range<usize>, new_segment: bool },
}

impl Write {
    /// Bytes written.
    pub(super) fn len(&self) -> usize {
        match self {
            Write::Roll { .. } => 0,
            Write::Bytes { bytes, .. } => bytes.end - bytes.start,
        }
    }
}

/// What the I/O side remembers between calls (behind its own lock, taken after the state lock,
/// so that I/O happens in index order without holding readers up).
#[derive(Default)]
pub(super) struct Io {
    /// Set when a write failed: the store refuses further writes instead of pretending.
    pub(super) failed: Option<String>,
    /// After `close`: no more writes.
    pub(super) closed: bool,
    /// The active segment and how far its file is allocated.
    pub(super) alloc: Option<(u64, u64)>,
}

impl Io {
    /// Refuse when an earlier write failed or the store is closed.
    pub(super) fn check(&self) -> std::io::Result<()> {
        if let Some(e) = &self.failed {
            return Err(io_err(format!("log store failed earlier: {e}")));
        }
        if self.closed {
            return Err(io_err("log store is closed"));
        }
        Ok(())
    }

    /// Write one append's records, and flush them unless `defer`: then the files left to flush
    /// are returned (see `flusher.rs`). On failure the store refuses further writes.
    pub(super) fn write(
        &mut self,
        dir: &Path,
        buf: &[u8],
        writes: Vec<Write>,
        defer: bool,
    ) -> std::io::Result<Dirty> {
        self.check()?;
        let r = self.write_inner(dir, buf, writes, defer);
        if let Err(e) = &r {
            self.fail(format!("write to the log failed: {e}"));
        }
        r
    }

    /// Refuse every write from now on: the disk lost something the log reported durable or
    /// was about to.
    pub(super) fn fail(&mut self, msg: String) {
        tracing::error!("{msg}: the log store refuses further writes");
        self.failed = Some(msg);
    }

    fn write_inner(
        &mut self,
        dir: &Path,
        buf: &[u8],
        writes: Vec<Write>,
        defer: bool,
    ) -> std::io::Result<Dirty> {
        let mut dirty: Vec<Arc<File>> = Vec::new();
        let mut dir_dirty = false;
        for w in writes {
            match w {
                Write::Roll { old, used } => {
                    for f in dirty.drain(..) {
                        f.sync_data()?;
                    }
                    old.set_len(used)?;
                    old.sync_all()?;
                    self.alloc = None;
                }
                Write::Bytes { seg, file, offset, bytes, new_segment } => {
                    dir_dirty |= new_segment;
                    let bytes = &buf[bytes];
                    let end = offset + bytes.len() as u64;
                    let alloc = match self.alloc {
                        Some((s, a)) if s == seg => a,
                        _ => file.metadata()?.len(),
                    };
                    if end > alloc {
                        // Zeros first, then the records over them: one flush covers both.
                        let to = end.div_ceil(PREALLOC) * PREALLOC;
                        let from = alloc.max(end);
                        let mut at = from;
                        while at < to {
                            let n = (to - at).min(ZEROS.len() as u64);
                            file.write_all_at(&ZEROS[..n as usize], at)?;
                            at += n;
                        }
                        self.alloc = Some((seg, to));
                    } else {
                        self.alloc = Some((seg, alloc));
                    }
                    file.write_all_at(bytes, offset)?;
                    if !dirty.iter().any(|f| Arc::ptr_eq(f, &file)) {
                        dirty.push(file);
                    }
                }
            }
        }
        let left = Dirty { files: dirty, dir: dir_dirty };
        if defer {
            return Ok(left);
        }
        left.sync(dir)?;
        Ok(Dirty { files: Vec::new(), dir: false })
    }

    /// Cut the log at `len` bytes of `file` (None: it was the first segment and is gone) after
    /// removing the later segments.
    pub(super) fn truncate(
        &mut self,
        dir: &Path,
        file: Option<&File>,
        len: u64,
        remove: &[std::path::PathBuf],
    ) -> std::io::Result<()> {
        self.check()?;
        // Later segments go first: a crash in between must not leave a shortened segment
        // followed by stale ones.
        for p in remove {
            std::fs::remove_file(p)?;
        }
        fsync_dir(dir)?;
        if let Some(f) = file {
            f.set_len(len)?;
            f.sync_all()?;
        }
        self.alloc = None;
        Ok(())
    }

    /// Record the purge point, then remove the segments below it.
    pub(super) fn purge(
        &mut self,
        dir: &Path,
        purged: LogId,
        remove: &[std::path::PathBuf],
        archive: Option<&Path>,
    ) -> std::io::Result<()> {
        self.check()?;
        let bytes = serde_json::to_vec(&Some(purged)).map_err(io_err)?;
        write_atomic(dir, "purged", &bytes)?;
        for p in remove {
            match (archive, p.file_name()) {
                (Some(to), Some(name)) => std::fs::rename(p, to.join(name))?,
                _ => std::fs::remove_file(p)?,
            }
        }
        if let Some(to) = archive {
            fsync_dir(to)?;
        }
        fsync_dir(dir)
    }

    /// Store the vote durably.
    pub(super) fn vote(&mut self, dir: &Path, vote: &Vote<u64>) -> std::io::Result<()> {
        self.check()?;
        let bytes = serde_json::to_vec(vote).map_err(io_err)?;
        write_atomic(dir, "vote", &bytes)
    }

    /// Trim the active segment's zero tail (a clean stop leaves exact files) and refuse
    /// further writes.
    pub(super) fn close(&mut self, active: Option<(&File, u64)>) {
        if self.failed.is_none() && !self.closed {
            if let Some((f, used)) = active {
                if let Err(e) = f.set_len(used).and_then(|_| f.sync_all()) {
                    tracing::warn!("cannot trim the log's last segment at close: {e}");
                }
            }
        }
        self.closed = true;
    }
}
