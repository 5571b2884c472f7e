//! The log's I/O thread: writes queued records in submission order, drains every queued append
//! before one `fdatasync` (group commit), and reports each append durable only after it.

#![allow(unused_imports)]
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::*;

pub(super) fn writer_loop(
    dir: PathBuf,
    rx: mpsc::Receiver<Op>,
    written: Arc<AtomicU64>,
    failed: Arc<Mutex<Option<String>>>,
) {
    let mut dirty: Vec<Arc<File>> = Vec::new();
    let mut dir_dirty = false;
    let mut waiting: Vec<OnFlushed> = Vec::new();
    let mut error: Option<String> = None;

    let flush = |dirty: &mut Vec<Arc<File>>,
                 dir_dirty: &mut bool,
                 waiting: &mut Vec<OnFlushed>,
                 error: &mut Option<String>| {
        if error.is_none() {
            for f in dirty.iter() {
                if let Err(e) = f.sync_data() {
                    *error = Some(format!("fdatasync of log segment failed: {e}"));
                    break;
                }
            }
            if *dir_dirty && error.is_none() {
                if let Err(e) = fsync_dir(&dir) {
                    *error = Some(format!("fsync of log directory failed: {e}"));
                }
            }
            if let Some(e) = error.as_ref() {
                tracing::error!("{e}: the log store refuses further writes");
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
            }
        }
        dirty.clear();
        *dir_dirty = false;
        for cb in waiting.drain(..) {
            match error {
                None => cb(Ok(())),
                Some(e) => cb(Err(io_err(e.clone()))),
            }
        }
    };

    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(op) = next.take() {
            match op {
                Op::Write { file, offset, bytes, new_segment, last_index } => {
                    if new_segment {
                        // A new segment is written only once everything before it is durable,
                        // so a bad record followed by a later valid segment is real corruption.
                        flush(&mut dirty, &mut dir_dirty, &mut waiting, &mut error);
                    }
                    if error.is_none() {
                        if let Err(e) = file.write_all_at(&bytes, offset) {
                            error = Some(format!("write to log segment failed: {e}"));
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = error.clone();
                            tracing::error!("{e}: the log store refuses further writes");
                        } else {
                            written.store(last_index + 1, Ordering::Release);
                        }
                    }
                    dir_dirty |= new_segment;
                    if !dirty.iter().any(|f| Arc::ptr_eq(f, &file)) {
                        dirty.push(file);
                    }
                }
                Op::Flushed(cb) => waiting.push(cb),
                other => {
                    flush(&mut dirty, &mut dir_dirty, &mut waiting, &mut error);
                    match other {
                        Op::Truncate { file, len, remove, done, from } => {
                            let r = (|| {
                                // Later segments go first: a crash in between must not leave a
                                // shortened segment followed by stale ones.
                                for p in &remove {
                                    std::fs::remove_file(p)?;
                                }
                                fsync_dir(&dir)?;
                                if let Some(f) = file {
                                    f.set_len(len)?;
                                    f.sync_all()?;
                                }
                                Ok(())
                            })();
                            written.fetch_min(from, Ordering::AcqRel);
                            let _ = done.send(r);
                        }
                        Op::Purge { purged, remove, done } => {
                            let r = (|| {
                                let bytes = serde_json::to_vec(&Some(purged)).map_err(io_err)?;
                                write_atomic(&dir, "purged", &bytes)?;
                                for p in &remove {
                                    std::fs::remove_file(p)?;
                                }
                                fsync_dir(&dir)
                            })();
                            let _ = done.send(r);
                        }
                        Op::Vote { vote, done } => {
                            let r = serde_json::to_vec(&vote)
                                .map_err(io_err)
                                .and_then(|b| write_atomic(&dir, "vote", &b));
                            let _ = done.send(r);
                        }
                        Op::Sync { done } => {
                            let _ = done.send(match &error {
                                None => Ok(()),
                                Some(e) => Err(io_err(e)),
                            });
                        }
                        Op::Write { .. } | Op::Flushed(_) => {}
                    }
                }
            }
            // Group commit: take whatever else is already queued before flushing.
            next = rx.try_recv().ok();
        }
        flush(&mut dirty, &mut dir_dirty, &mut waiting, &mut error);
    }
}
