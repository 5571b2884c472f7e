//! Snapshot data as openraft streams it: this node's snapshot is the live main database file
//! (read while no checkpoint runs) followed by hiqlite's state; a snapshot received from a leader
//! is written to a file beside the database, synced as it arrives, and swapped in whole.
//!
//! The byte stream is the format of backup files: `[SQLite pages][state JSON][len u64 LE]
//! ["HIQLST01"]` (`sqlite/meta.rs`), so a transfer needs no copy of the database on the sender
//! and at most one on the receiver.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::error::Result;
use crate::sqlite::writer::SnapshotPoint;

/// This node's snapshot and the lock that keeps the main file still while it is read.
pub(crate) struct SnapshotStore {
    db: PathBuf,
    current: Mutex<Option<SnapshotPoint>>,
    /// Read by a transfer (the main file must not change under it), written by a snapshot
    /// build or install (which change it).
    files: Arc<RwLock<()>>,
    seq: AtomicU64,
    /// Snapshots received from a leader and installed.
    pub(crate) installed: AtomicU64,
    /// Snapshots built locally.
    pub(crate) built: AtomicU64,
    /// How long the last local build took, in milliseconds.
    pub(crate) last_build_ms: AtomicU64,
}

impl SnapshotStore {
    /// The store of the database at `db`, whose main file is the snapshot `opened` (if any).
    pub(crate) fn new(db: PathBuf, opened: Option<SnapshotPoint>) -> Self {
        SnapshotStore {
            db,
            // A database that never applied anything is no snapshot.
            current: Mutex::new(opened.filter(|p| p.applied.0.is_some())),
            files: Arc::new(RwLock::new(())),
            seq: AtomicU64::new(0),
            installed: AtomicU64::new(0),
            built: AtomicU64::new(0),
            last_build_ms: AtomicU64::new(0),
        }
    }

    /// The database file.
    pub(crate) fn db(&self) -> &Path {
        &self.db
    }

    /// The newest snapshot.
    pub(crate) fn current(&self) -> Option<SnapshotPoint> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_current(&self, point: SnapshotPoint) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(point);
    }

    /// Exclusive use of the main file, for a build or an install.
    pub(crate) async fn lock_files(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.files.clone().write_owned().await
    }

    /// Read access to the current snapshot (`None`: there is none yet).
    pub(crate) async fn open_live(&self) -> Result<Option<(SnapshotPoint, SnapData)>> {
        let guard = self.files.clone().read_owned().await;
        let Some(point) = self.current() else { return Ok(None) };
        let file = tokio::fs::File::open(&self.db).await?;
        let trailer = crate::sqlite::meta::state_trailer(&point.state)?;
        let live = Live { file, db_len: point.db_len, trailer, pos: 0, seek: Seek::Done, _guard: guard };
        Ok(Some((point, SnapData::Live(live))))
    }

    /// A new file beside the database for a snapshot about to arrive.
    pub(crate) async fn incoming(&self) -> Result<SnapData> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}.incoming-{}-{n}",
            self.db.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id()
        );
        let path = self.db.with_file_name(name);
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await?;
        let syncer = background_sync(file.try_clone().await?.into_std().await);
        Ok(SnapData::Incoming(Incoming { file, path, _syncer: syncer }))
    }
}

/// Flush a received snapshot's file to disk every second while it arrives, so the final sync
/// (inside the last chunk's request) is short. Ends when the sender is dropped.
fn background_sync(file: std::fs::File) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("hiqlite-snapshot-sync".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(1))
            {
                if let Err(e) = file.sync_data() {
                    tracing::warn!("syncing a received snapshot: {e}");
                    return;
                }
            }
        })
        .map_or_else(|e| tracing::warn!("cannot start the snapshot sync thread: {e}"), drop);
    tx
}

/// Snapshot bytes for openraft: one of this node's, or one being received.
pub enum SnapData {
    /// This node's snapshot: the main file, then hiqlite's state.
    Live(Live),
    /// A snapshot from a leader, arriving in a file beside the database.
    Incoming(Incoming),
}

impl std::fmt::Debug for SnapData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapData::Live(l) => l.fmt(f),
            SnapData::Incoming(i) => i.fmt(f),
        }
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Live({} + {} bytes)", self.db_len, self.trailer.len())
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Incoming({})", self.path.display())
    }
}

/// A received snapshot's file.
pub struct Incoming {
    file: tokio::fs::File,
    path: PathBuf,
    _syncer: std::sync::mpsc::Sender<()>,
}

impl Incoming {
    /// The file being written.
    pub(crate) fn file_mut(&mut self) -> &mut tokio::fs::File {
        &mut self.file
    }

    /// Flush and sync the file; its path.
    pub(crate) async fn finish(mut self) -> Result<PathBuf> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(self.path)
    }
}

enum Seek {
    Done,
    /// The file must be moved to the position before reading.
    Wanted,
    Started,
}

/// This node's snapshot, read from the live main file while a read lock keeps checkpoints out.
pub struct Live {
    file: tokio::fs::File,
    db_len: u64,
    trailer: Vec<u8>,
    pos: u64,
    seek: Seek,
    _guard: OwnedRwLockReadGuard<()>,
}

fn unsupported() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, "a local snapshot is read-only")
}

impl Live {
    fn len(&self) -> u64 {
        self.db_len + self.trailer.len() as u64
    }

    fn poll_file_seek(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        loop {
            match self.seek {
                Seek::Done => return Poll::Ready(Ok(())),
                Seek::Wanted => {
                    Pin::new(&mut self.file).start_seek(SeekFrom::Start(self.pos.min(self.db_len)))?;
                    self.seek = Seek::Started;
                }
                Seek::Started => {
                    ready!(Pin::new(&mut self.file).poll_complete(cx))?;
                    self.seek = Seek::Done;
                }
            }
        }
    }
}

impl AsyncRead for SnapData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let l = match self.get_mut() {
            SnapData::Incoming(i) => return Pin::new(&mut i.file).poll_read(cx, buf),
            SnapData::Live(l) => l,
        };
        ready!(l.poll_file_seek(cx))?;
        if l.pos < l.db_len {
            let want = usize::try_from(l.db_len - l.pos).unwrap_or(usize::MAX).min(buf.remaining());
            let mut sub = ReadBuf::new(buf.initialize_unfilled_to(want));
            ready!(Pin::new(&mut l.file).poll_read(cx, &mut sub))?;
            let n = sub.filled().len();
            if n == 0 && want > 0 {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the database file is shorter than its snapshot",
                )));
            }
            buf.advance(n);
            l.pos += n as u64;
            return Poll::Ready(Ok(()));
        }
        let at = usize::try_from(l.pos - l.db_len).unwrap_or(usize::MAX);
        if let Some(rest) = l.trailer.get(at..) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            l.pos += n as u64;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for SnapData {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        let l = match self.get_mut() {
            SnapData::Incoming(i) => return Pin::new(&mut i.file).start_seek(position),
            SnapData::Live(l) => l,
        };
        let target = match position {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => l.len().checked_add_signed(d),
            SeekFrom::Current(d) => l.pos.checked_add_signed(d),
        };
        l.pos = target
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        l.seek = Seek::Wanted;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        match self.get_mut() {
            SnapData::Incoming(i) => Pin::new(&mut i.file).poll_complete(cx),
            SnapData::Live(l) => {
                ready!(l.poll_file_seek(cx))?;
                Poll::Ready(Ok(l.pos))
            }
        }
    }
}

impl AsyncWrite for SnapData {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SnapData::Incoming(i) => Pin::new(&mut i.file).poll_write(cx, buf),
            SnapData::Live(_) => Poll::Ready(Err(unsupported())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapData::Incoming(i) => Pin::new(&mut i.file).poll_flush(cx),
            SnapData::Live(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SnapData::Incoming(i) => Pin::new(&mut i.file).poll_shutdown(cx),
            SnapData::Live(_) => Poll::Ready(Ok(())),
        }
    }
}
