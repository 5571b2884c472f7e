//! Archiving purged segments for point-in-time restore: with an archive directory set, a purge
//! moves whole segments there instead of deleting them (a rename: no copy, and the purge stays
//! as durable as before); the backup task uploads them and removes them (`node/backups.rs`).
//! Also reading an archived segment back as entries.

use std::path::{Path, PathBuf};

use super::{LogStore, HEADER};
use crate::error::{Error, Result};
use crate::raft::Entry;

/// Subdirectory of the log directory that purged segments move to.
pub(crate) const ARCHIVE_DIR: &str = "archive";

impl LogStore {
    /// From now on, keep purged segments in `<log dir>/archive` instead of deleting them.
    pub(crate) fn keep_purged(&self) -> Result<PathBuf> {
        let dir = self.shared.dir.join(ARCHIVE_DIR);
        std::fs::create_dir_all(&dir)?;
        *self.shared.archive.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.clone());
        Ok(dir)
    }

    pub(super) fn archive_dir(&self) -> Option<PathBuf> {
        self.shared.archive.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The first index of the segment file `name` (`NNNNNNNNNNNNNNNNNNNN.seg`).
pub(crate) fn segment_first(name: &str) -> Option<u64> {
    name.strip_suffix(".seg")?.parse().ok()
}

/// The entries of a segment's bytes, in order. A sealed segment holds whole records up to a
/// possible zero tail; anything else is damage.
pub(crate) fn decode_segment(data: &[u8], what: &Path) -> Result<Vec<Entry>> {
    let bad = |why: String| Error::Storage(format!("archived log segment {}: {why}", what.display()));
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < data.len() {
        if data[off..].iter().all(|b| *b == 0) {
            break;
        }
        if data.len() - off < HEADER {
            return Err(bad(format!("record header cut short at offset {off}")));
        }
        let len = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
        let crc = u32::from_le_bytes([data[off + 4], data[off + 5], data[off + 6], data[off + 7]]);
        let end = off + HEADER + len;
        if len == 0 || end > data.len() || crc32fast::hash(&data[off + HEADER..end]) != crc {
            return Err(bad(format!("damaged record at offset {off}")));
        }
        let entry: Entry = postcard::from_bytes(&data[off + HEADER..end])
            .map_err(|e| bad(format!("undecodable record: {e}")))?;
        if out.last().is_some_and(|p: &Entry| p.log_id.index + 1 != entry.log_id.index) {
            return Err(bad(format!("entry {} out of sequence", entry.log_id.index)));
        }
        out.push(entry);
        off = end;
    }
    Ok(out)
}
