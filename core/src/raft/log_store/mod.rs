//! The Raft log: append-only segment files, one length-prefixed, CRC-checked record per entry.
//!
//! Layout of the log directory:
//! - `NNNNNNNNNNNNNNNNNNNN.seg`: a segment; the name is the index of its first entry. Records are
//!   `[len: u32 LE][crc32: u32 LE][postcard(Entry)]`.
//! - `vote`, `purged`: small files replaced atomically (write, fsync, rename, fsync dir).
//!
//! `append` writes and `fdatasync`s on the calling thread (see `io.rs` for why) and tells openraft
//! the entries are durable only after that flush; the leader's own appends are flushed on a
//! thread of their own while they replicate (`flusher.rs`). Record positions are computed under
//! the state lock; the file I/O happens under a second lock taken before the first is let go, so
//! appends reach the disk in index order while readers, who only need the state lock, never wait
//! for a flush: entries are readable from the in-memory tail cache as soon as their positions are
//! known.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::{StorageIOError, Vote};

use super::{io_err, Entry, LogId, StorageError, TypeConfig};

const HEADER: usize = 8;
/// Largest encoding buffer kept for the next append.
const KEEP_SCRATCH: usize = 8 * 1024 * 1024;
/// Appends above this many bytes hand the Tokio worker's other tasks to another thread first.
const LONG_WRITE: usize = 1024 * 1024;
/// Bytes (encoded) of recent entries kept decoded in memory for replication and the apply.
/// Small on purpose: decoded entries take several times their encoded size, and a cache that
/// grows to its cap keeps taking fresh memory from the allocator, which the kernel zeroes (with
/// 32 MiB, 13 % of a bulk insert's CPU went to zeroing fresh huge pages: 330k → 400k rows/s on
/// 3 nodes at 4 MiB). Followers further behind read the segments.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

struct Segment {
    path: PathBuf,
    file: Arc<File>,
}

#[derive(Clone, Copy)]
struct Loc {
    seg: u64,
    offset: u64,
    len: u32,
}

struct State {
    segments: BTreeMap<u64, Segment>,
    /// Location of entry `first_index + i`.
    locs: VecDeque<Loc>,
    first_index: u64,
    last_log_id: Option<LogId>,
    last_purged: Option<LogId>,
    vote: Option<Vote<u64>>,
    /// Bytes used in the active (last) segment.
    active_size: u64,
    cache: BTreeMap<u64, (Entry, usize)>,
    cache_bytes: usize,
    segment_bytes: u64,
}

/// Called once the entries queued before it are durable (or failed to be).
pub(crate) type OnFlushed = Box<dyn FnOnce(std::io::Result<()>) + Send>;

struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    /// One past the last index written to its segment (an append in progress may still be
    /// writing the entries after it).
    written: AtomicU64,
    /// The file I/O side; taken after `state` when both are needed.
    io: Arc<Mutex<Io>>,
    /// Flushes the leader's own appends while they replicate.
    flusher: Flusher,
    /// The node this log belongs to, for [`crate::breakdown`].
    trace_id: AtomicU64,
    /// Truncations so far: a read that overlapped one is done again (see `read_range`).
    truncations: AtomicU64,
    /// The encoding buffer, kept between appends.
    scratch: Mutex<Vec<u8>>,
    /// Where purged segments go instead of being deleted (`archive.rs`).
    archive: Mutex<Option<PathBuf>>,
}

/// The durable Raft log and vote store. Cheap to clone; clones share the same log.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

fn seg_name(first: u64) -> String {
    format!("{first:020}.seg")
}

fn sto_read(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_logs(&io_err(e)).into()
}
fn sto_write(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_logs(&io_err(e)).into()
}

pub(crate) use crate::fsx::{fsync_dir, write_atomic};

/// Append `entry`'s record to `buf`; returns the record's length. Records are encoded in place
/// into one buffer kept between appends: growing a fresh vector per entry was the biggest
/// allocation cost of big transactions (fresh pages, faulted in and zeroed each time).
fn encode_into(entry: &Entry, buf: &mut Vec<u8>) -> Result<usize, StorageError> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER]);
    *buf = postcard::to_extend(entry, std::mem::take(buf)).map_err(sto_write)?;
    let payload = buf.len() - start - HEADER;
    let len = u32::try_from(payload).map_err(|_| sto_write("log entry larger than 4 GiB"))?;
    let crc = crc32fast::hash(&buf[start + HEADER..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(HEADER + payload)
}

impl LogStore {
    /// Open (or create) the log in `dir`, recovering from a torn tail.
    pub fn open(dir: impl AsRef<Path>, segment_bytes: u64) -> crate::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let read_json = |name: &str| -> crate::Result<Option<Vec<u8>>> {
            match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let vote: Option<Vote<u64>> = match read_json("vote")? {
            Some(b) => Some(
                serde_json::from_slice(&b).map_err(|e| crate::Error::Storage(format!("vote file: {e}")))?,
            ),
            None => None,
        };
        let last_purged: Option<LogId> = match read_json("purged")? {
            Some(b) => {
                serde_json::from_slice(&b).map_err(|e| crate::Error::Storage(format!("purged file: {e}")))?
            }
            None => None,
        };

        let mut firsts: Vec<u64> = Vec::new();
        for de in std::fs::read_dir(&dir)? {
            let name = de?.file_name();
            let name = name.to_string_lossy();
            if let Some(num) = name.strip_suffix(".seg") {
                if let Ok(first) = num.parse::<u64>() {
                    firsts.push(first);
                }
            }
        }
        firsts.sort_unstable();

        let purged_index = last_purged.map(|l| l.index);
        let mut state = State {
            segments: BTreeMap::new(),
            locs: VecDeque::new(),
            first_index: purged_index.map_or(0, |i| i + 1),
            last_log_id: last_purged,
            last_purged,
            vote,
            active_size: 0,
            cache: BTreeMap::new(),
            cache_bytes: 0,
            segment_bytes: segment_bytes.max(1024),
        };
        // Read every segment; stop each at its first bad record (short, zero-length, checksum
        // mismatch, undecodable, or out of sequence).
        struct Scan {
            first: u64,
            path: PathBuf,
            records: Vec<(LogId, u64, u32)>,
            valid_end: u64,
            file_len: u64,
            bad: Option<String>,
        }
        let mut scans: Vec<Scan> = Vec::new();
        let mut next_expected: Option<u64> = purged_index.map(|p| p + 1);
        let last_first = firsts.last().copied();
        for first in firsts {
            let path = dir.join(seg_name(first));
            let data = std::fs::read(&path)?;
            let mut scan = Scan {
                first,
                path,
                records: Vec::new(),
                valid_end: 0,
                file_len: data.len() as u64,
                bad: None,
            };
            let mut off = 0usize;
            while off < data.len() {
                if Some(first) == last_first && data[off..].iter().all(|b| *b == 0) {
                    // The active segment's preallocated space: where the log ends.
                    break;
                }
                let why = if data.len() - off < HEADER {
                    Some("record header cut short".to_string())
                } else {
                    let len =
                        u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
                    let crc =
                        u32::from_le_bytes([data[off + 4], data[off + 5], data[off + 6], data[off + 7]]);
                    let end = off + HEADER + len;
                    if len == 0 {
                        Some("zero-length record".to_string())
                    } else if end > data.len() {
                        Some("record cut short".to_string())
                    } else if crc32fast::hash(&data[off + HEADER..end]) != crc {
                        Some("checksum mismatch".to_string())
                    } else {
                        match postcard::from_bytes::<Entry>(&data[off + HEADER..end]) {
                            Err(e) => Some(format!("undecodable record: {e}")),
                            Ok(entry) => {
                                let idx = entry.log_id.index;
                                let kept = purged_index.is_none_or(|p| idx > p);
                                match next_expected {
                                    Some(n) if kept && idx != n => {
                                        Some(format!("entry {idx} found where {n} was expected"))
                                    }
                                    _ => {
                                        if kept {
                                            next_expected = Some(idx + 1);
                                            scan.records.push((
                                                entry.log_id,
                                                off as u64,
                                                (HEADER + len) as u32,
                                            ));
                                        }
                                        off = end;
                                        scan.valid_end = end as u64;
                                        None
                                    }
                                }
                            }
                        }
                    }
                };
                if let Some(w) = why {
                    scan.bad = Some(format!("{}: {w} at offset {off}", scan.path.display()));
                    break;
                }
            }
            let stop = scan.bad.is_some();
            scans.push(scan);
            if stop {
                break;
            }
        }
        // Anything after the first bad record was never acknowledged: appends reach a new
        // segment only after the previous one is flushed. Valid entries in a later segment
        // therefore mean real corruption in the middle of the log, which is never skipped.
        if let Some(cut) = scans.iter().position(|sc| sc.bad.is_some()) {
            let later: Vec<u64> = std::fs::read_dir(&dir)?
                .filter_map(|d| d.ok())
                .filter_map(|d| {
                    d.file_name().to_string_lossy().strip_suffix(".seg").and_then(|n| n.parse().ok())
                })
                .filter(|f: &u64| *f > scans[cut].first)
                .collect();
            for f in &later {
                let p = dir.join(seg_name(*f));
                let len = std::fs::metadata(&p)?.len();
                if len >= HEADER as u64 {
                    let data = std::fs::read(&p)?;
                    let l = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
                    let crc = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
                    if l > 0 && HEADER + l <= data.len() && crc32fast::hash(&data[HEADER..HEADER + l]) == crc
                    {
                        return Err(crate::Error::Storage(format!(
                            "corrupt record in the middle of the log ({}), followed by valid records in {}; \
                             refusing to start (restore this node from a snapshot or re-sync it)",
                            scans[cut].bad.clone().unwrap_or_default(),
                            p.display()
                        )));
                    }
                }
            }
            let sc = &scans[cut];
            tracing::warn!(
                "torn log tail: {}; truncating {} bytes and {} later segment(s)",
                sc.bad.clone().unwrap_or_default(),
                sc.file_len - sc.valid_end,
                later.len()
            );
            for f in later {
                std::fs::remove_file(dir.join(seg_name(f)))?;
            }
            let f = OpenOptions::new().write(true).open(&sc.path)?;
            f.set_len(sc.valid_end)?;
            f.sync_all()?;
            fsync_dir(&dir)?;
        }
        // Segments left without entries (e.g. created just before a crash) go, so that the
        // next roll can create its file afresh.
        while scans.len() > 1 && scans.last().is_some_and(|sc| sc.records.is_empty()) {
            if let Some(sc) = scans.pop() {
                std::fs::remove_file(&sc.path)?;
                fsync_dir(&dir)?;
            }
        }
        let nsegs = scans.len();
        for (si, sc) in scans.into_iter().enumerate() {
            for (log_id, off, len) in &sc.records {
                if state.locs.is_empty() {
                    state.first_index = log_id.index;
                }
                state.locs.push_back(Loc { seg: sc.first, offset: *off, len: *len });
                state.last_log_id = Some(*log_id);
            }
            if si + 1 == nsegs {
                state.active_size = sc.valid_end;
            }
            let file = OpenOptions::new().read(true).write(true).open(&sc.path)?;
            state.segments.insert(sc.first, Segment { path: sc.path, file: Arc::new(file) });
        }
        tracing::info!(
            dir = %dir.display(),
            entries = state.locs.len(),
            last = ?state.last_log_id,
            purged = ?state.last_purged,
            "log store opened"
        );

        let written = AtomicU64::new(state.first_index + state.locs.len() as u64);
        let io = Arc::new(Mutex::new(Io::default()));
        Ok(LogStore {
            shared: Arc::new(Shared {
                flusher: Flusher::new(dir.clone(), io.clone()),
                dir,
                state: Mutex::new(state),
                written,
                io,
                trace_id: AtomicU64::new(0),
                truncations: AtomicU64::new(0),
                scratch: Default::default(),
                archive: Mutex::new(None),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic while holding it; the state is still structurally valid.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io(&self) -> MutexGuard<'_, Io> {
        self.shared.io.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop writing: trims the last segment's preallocated tail so a clean stop leaves exact
    /// files, after the deferred flushes still running.
    pub async fn close(&self) {
        crate::blocking::run(crate::blocking::Expect::Long, || self.shared.flusher.stop());
        let s = self.lock();
        let active = s.segments.last_key_value().map(|(_, seg)| seg.file.clone());
        let used = s.active_size;
        let mut io = self.io();
        drop(s);
        crate::blocking::run(crate::blocking::Expect::Long, || {
            io.close(active.as_deref().map(|f| (f, used)))
        });
    }

    /// Name the node owning this log in [`crate::breakdown`] events.
    pub(crate) fn set_trace_id(&self, id: u64) {
        self.shared.trace_id.store(id, Ordering::Relaxed);
    }

    pub(crate) fn trace_id(&self) -> u64 {
        self.shared.trace_id.load(Ordering::Relaxed)
    }

    /// Last log id and last purged log id, for status reports.
    pub fn bounds(&self) -> (Option<LogId>, Option<LogId>) {
        let s = self.lock();
        (s.last_log_id, s.last_purged)
    }

    /// Bytes of the records after `index`.
    pub(crate) fn bytes_after(&self, index: Option<u64>) -> u64 {
        let s = self.lock();
        let skip = index.map_or(0, |i| (i + 1).saturating_sub(s.first_index));
        s.locs.iter().skip(usize::try_from(skip).unwrap_or(usize::MAX)).map(|l| u64::from(l.len)).sum()
    }

    /// The greatest index up to which the log may be purged so that the records from there up to
    /// `upto` still hold `keep_bytes` (`None`: nothing to purge).
    pub(crate) fn purge_point(&self, upto: u64, keep_bytes: u64) -> Option<u64> {
        let s = self.lock();
        let last = usize::try_from((upto + 1).checked_sub(s.first_index)?).ok()?.min(s.locs.len());
        let mut kept = 0u64;
        for i in (0..last).rev() {
            kept += u64::from(s.locs[i].len);
            if kept > keep_bytes {
                return Some(s.first_index + i as u64);
            }
        }
        None
    }

    /// Number of segment files currently on disk.
    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Wait for the deferred flushes queued so far.
    pub(crate) fn drain_flushes(&self) {
        crate::blocking::run(crate::blocking::Expect::Long, || self.shared.flusher.drain());
    }

    /// Write entries; `on_flushed` runs once they are fsync'd: here, or on the flush thread when
    /// `defer` (the entries are readable before that either way).
    pub(crate) fn append_with(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        on_flushed: OnFlushed,
        defer: bool,
    ) -> Result<(), StorageError> {
        self.io().check().map_err(sto_write)?;
        // Encode and check everything first, so that a bad batch leaves no trace.
        let mut buf = std::mem::take(&mut *self.shared.scratch.lock().unwrap_or_else(|p| p.into_inner()));
        buf.clear();
        let mut encoded = Vec::new();
        for entry in entries {
            let len = encode_into(&entry, &mut buf)?;
            encoded.push((entry, len));
        }
        let mut guard = self.lock();
        let s = &mut *guard;
        if let Some((first, _)) = encoded.first() {
            let idx = first.log_id.index;
            // An empty log may restart anywhere (after a snapshot install, or when openraft
            // re-seeds it below a purge point); the loader skips purged entries.
            let expected = if s.locs.is_empty() { idx } else { s.first_index + s.locs.len() as u64 };
            if encoded.iter().enumerate().any(|(i, (e, _))| e.log_id.index != expected + i as u64) {
                return Err(sto_write(format!(
                    "append of entries from {idx} but the next index is {expected}"
                )));
            }
            if s.locs.is_empty() {
                s.first_index = idx;
            }
        }
        let mut writes: Vec<Write> = Vec::new();
        let mut pending: Option<Write> = None;
        let mut last_index = None;
        let mut at = 0usize;
        for (entry, len) in encoded {
            let idx = entry.log_id.index;
            let need_new = match s.segments.last_key_value() {
                None => true,
                Some(_) => s.active_size > 0 && s.active_size + len as u64 > s.segment_bytes,
            };
            if need_new {
                writes.extend(pending.take());
                if let Some((_, seg)) = s.segments.last_key_value() {
                    writes.push(Write::Roll { old: seg.file.clone(), used: s.active_size });
                }
                let path = self.shared.dir.join(seg_name(idx));
                let file =
                    OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(|e| {
                        sto_write(format!("cannot create log segment {}: {e}", path.display()))
                    })?;
                s.segments.insert(idx, Segment { path, file: Arc::new(file) });
                s.active_size = 0;
            }
            let Some((&seg_first, seg)) = s.segments.last_key_value() else {
                return Err(sto_write("no active segment"));
            };
            let offset = s.active_size;
            let w = pending.get_or_insert_with(|| Write::Bytes {
                seg: seg_first,
                file: seg.file.clone(),
                offset,
                bytes: at..at,
                new_segment: need_new,
            });
            if let Write::Bytes { bytes, .. } = w {
                bytes.end = at + len;
            }
            at += len;
            s.locs.push_back(Loc { seg: seg_first, offset, len: len as u32 });
            s.active_size += len as u64;
            s.last_log_id = Some(entry.log_id);
            s.cache.insert(idx, (entry, len));
            s.cache_bytes += len;
            last_index = Some(idx);
        }
        writes.extend(pending.take());
        // Keep the cache bounded, but never evict what is not written yet: until then the
        // cache is the only copy readers can use.
        let written = self.shared.written.load(Ordering::Acquire);
        while s.cache_bytes > CACHE_BYTES {
            match s.cache.first_entry() {
                Some(e) if *e.key() < written => {
                    let (_, len) = e.remove();
                    s.cache_bytes -= len;
                }
                _ => break,
            }
        }
        // The I/O lock is taken before the state lock is let go, so appends reach the disk in
        // index order; readers only need the state lock.
        let mut io = self.io();
        drop(guard);
        let bytes: usize = writes.iter().map(Write::len).sum();
        let expect = if bytes > LONG_WRITE { Expect::Long } else { Expect::Short };
        let r = crate::blocking::run(expect, || io.write(&self.shared.dir, &buf, writes, defer));
        if buf.capacity() <= KEEP_SCRATCH {
            *self.shared.scratch.lock().unwrap_or_else(|p| p.into_inner()) = buf;
        }
        if let (Ok(_), Some(li)) = (&r, last_index) {
            self.shared.written.fetch_max(li + 1, Ordering::AcqRel);
        }
        drop(io);
        match r {
            Ok(dirty) if defer => self.shared.flusher.push(dirty, on_flushed),
            Ok(_) => on_flushed(Ok(())),
            Err(e) => on_flushed(Err(e)),
        }
        Ok(())
    }

    /// Entries `start..end` that the log holds. Disk reads happen outside the state lock, so a
    /// truncation (and the appends after it) may rewrite a record while it is read: a read that
    /// overlapped one is done again. (A replication task of a leader that just stepped down
    /// reads while the node, now a follower, truncates; with appends written in place that
    /// showed up as a bad checksum, which stops the node.)
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        loop {
            let before = self.shared.truncations.load(Ordering::Acquire);
            let r = self.read_range_once(start, end);
            if self.shared.truncations.load(Ordering::Acquire) == before {
                return r;
            }
        }
    }

    fn read_range_once(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        enum Slot {
            Ready(Entry),
            Disk(u64, Arc<File>, Loc),
        }
        let slots: Vec<Slot> = {
            let s = self.lock();
            let lo = start.max(s.first_index);
            let hi = end.min(s.first_index + s.locs.len() as u64);
            let mut out = Vec::with_capacity(hi.saturating_sub(lo) as usize);
            for idx in lo..hi {
                if let Some((e, _)) = s.cache.get(&idx) {
                    out.push(Slot::Ready(e.clone()));
                } else {
                    let loc = s.locs[(idx - s.first_index) as usize];
                    let seg = s
                        .segments
                        .get(&loc.seg)
                        .ok_or_else(|| sto_read(format!("segment of entry {idx} missing")))?;
                    out.push(Slot::Disk(idx, seg.file.clone(), loc));
                }
            }
            out
        };
        let mut entries = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::Ready(e) => entries.push(e),
                Slot::Disk(idx, file, loc) => {
                    let mut buf = vec![0u8; loc.len as usize];
                    file.read_exact_at(&mut buf, loc.offset).map_err(sto_read)?;
                    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    if crc32fast::hash(&buf[HEADER..]) != crc {
                        return Err(sto_read(format!(
                            "checksum mismatch in log segment {} at {}",
                            loc.seg, loc.offset
                        )));
                    }
                    let entry: Entry = postcard::from_bytes(&buf[HEADER..]).map_err(sto_read)?;
                    if entry.log_id.index != idx {
                        return Err(sto_read(format!(
                            "entry {} found in log segment {} at {} where {idx} belongs",
                            entry.log_id.index, loc.seg, loc.offset
                        )));
                    }
                    entries.push(entry);
                }
            }
        }
        Ok(entries)
    }
}

pub(crate) mod archive;
mod flusher;
mod io;
mod storage;
#[cfg(test)]
mod tests;

use crate::blocking::Expect;
use flusher::Flusher;
use io::{Io, Write};
