//! openraft's log traits over [`LogStore`]: reading entries, appending, truncating, purging,
//! and the vote.

#![allow(unused_imports)]
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};

use super::*;

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(x) => x.saturating_add(1),
            Bound::Excluded(x) => *x,
            Bound::Unbounded => u64::MAX,
        };
        self.read_range(start, end)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        // Bound one replication payload to keep request bodies and latency in check.
        if start < self.lock().first_index {
            // Purged entries were asked for: answer with nothing rather than entries that do
            // not start where replication expects them.
            return Ok(Vec::new());
        }
        self.read_range(start, end.min(start.saturating_add(4096)))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let s = self.lock();
        Ok(LogState { last_purged_log_id: s.last_purged, last_log_id: s.last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        // A node elected again counts its whole log as flushed (see `LogFlushed::is_deferred`).
        self.drain_flushes();
        let v = *vote;
        let mut io = self.io();
        crate::blocking::run(crate::blocking::Expect::Long, || io.vote(&self.shared.dir, &v))
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&io_err(e))))?;
        drop(io);
        self.lock().vote = Some(v);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        use crate::breakdown::{mark, Stage};
        let id = self.trace_id();
        mark(Stage::Append, id);
        let defer = callback.is_deferred();
        self.append_with(
            entries,
            Box::new(move |r| {
                mark(Stage::Flushed, id);
                callback.log_io_completed(r)
            }),
            defer,
        )
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let idx = log_id.index;
        let first = self.lock().first_index;
        // The new last log id is the entry before the cut (read before anything changes).
        let prev = if idx > first { self.read_range(idx - 1, idx)?.pop().map(|e| e.log_id) } else { None };
        let mut guard = self.lock();
        let (file, len, remove, from) = {
            let s = &mut *guard;
            let end = s.first_index + s.locs.len() as u64;
            if idx >= end {
                return Ok(());
            }
            let from = idx.max(s.first_index);
            let loc = s.locs[(from - s.first_index) as usize];
            s.locs.truncate((from - s.first_index) as usize);
            let _ = s.cache.split_off(&from).len();
            s.cache_bytes = s.cache.values().map(|(_, l)| *l).sum();
            let mut remove = Vec::new();
            let later: Vec<u64> = s.segments.range(loc.seg + 1..).map(|(k, _)| *k).collect();
            for k in later {
                if let Some(seg) = s.segments.remove(&k) {
                    remove.push(seg.path);
                }
            }
            let file = s.segments.get(&loc.seg).map(|seg| seg.file.clone());
            s.active_size = loc.offset;
            s.last_log_id = if s.locs.is_empty() { s.last_purged } else { prev.or(s.last_purged) };
            // Counted with the locations, before the cut entries' bytes can be rewritten (that
            // takes appends after this returns): a read that used an old location reads again.
            self.shared.truncations.fetch_add(1, Ordering::AcqRel);
            (file, loc.offset, remove, from)
        };
        let mut io = self.io();
        drop(guard);
        let r = crate::blocking::run(crate::blocking::Expect::Long, || {
            io.truncate(&self.shared.dir, file.as_deref(), len, &remove)
        });
        self.shared.written.fetch_min(from, Ordering::AcqRel);
        r.map_err(sto_write)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut guard = self.lock();
        let remove = {
            let s = &mut *guard;
            if s.last_purged.is_some_and(|p| p.index > log_id.index) {
                return Ok(());
            }
            s.last_purged = Some(log_id);
            while s.first_index <= log_id.index {
                if s.locs.pop_front().is_none() {
                    s.first_index = log_id.index + 1;
                    break;
                }
                s.first_index += 1;
            }
            if s.last_log_id.is_none_or(|l| l.index < log_id.index) {
                s.last_log_id = Some(log_id);
            }
            while let Some(entry) = s.cache.first_entry() {
                if *entry.key() > log_id.index {
                    break;
                }
                let (_, len) = entry.remove();
                s.cache_bytes -= len;
            }
            // A segment can go when the next one starts at or below the first kept index;
            // the active (last) segment always stays.
            let firsts: Vec<u64> = s.segments.keys().copied().collect();
            let mut remove = Vec::new();
            for w in firsts.windows(2) {
                if w[1] <= log_id.index + 1 {
                    if let Some(seg) = s.segments.remove(&w[0]) {
                        remove.push(seg.path);
                    }
                }
            }
            remove
        };
        let mut io = self.io();
        drop(guard);
        let archive = self.archive_dir();
        crate::blocking::run(crate::blocking::Expect::Long, || {
            io.purge(&self.shared.dir, log_id, &remove, archive.as_deref())
        })
        .map_err(sto_write)
    }
}
