//! Change streams on a node: every committed row change from a cursor on, in log order. A stream
//! reads the changes kept in the state file until it has caught up, then the writer's live
//! broadcast; when it falls behind that bounded buffer, or the stored changes were replaced by a
//! snapshot install, it reads the store again from its cursor. So it never skips or repeats a
//! change; a cursor older than what the node keeps fails with `Error::CursorTooOld`.

use std::collections::{HashSet, VecDeque};

use super::Node;
use crate::changes::{Change, ChangeCursor};
use crate::error::{Error, Result};
use crate::sqlite::changes::{self, Feed};

/// Entries read from the store at a time while catching up.
const CHUNK_ENTRIES: i64 = 64;

/// Which changes a stream delivers.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChangeFilter {
    /// Only these tables (lower case); `None`: every table.
    pub tables: Option<HashSet<String>>,
    /// Whether old values of updates and deletes are kept.
    pub old: bool,
}

impl ChangeFilter {
    fn wants(&self, c: &Change) -> bool {
        self.tables.as_ref().is_none_or(|t| t.contains(&c.table.to_lowercase()))
    }

    fn shape(&self, mut c: Change) -> Change {
        if !self.old {
            c.old = None;
        }
        c
    }
}

impl Node {
    /// The lowest log index from which this node keeps every change (`None`: capture is off).
    pub(crate) fn changes_kept_from(&self) -> Result<Option<u64>> {
        self.inner.state_reads.with(changes::kept_from)
    }

    /// Follow committed row changes from `from` on (`None`: from now on).
    pub(crate) fn changes(&self, from: Option<ChangeCursor>, filter: ChangeFilter) -> Result<NodeChanges> {
        // Subscribed first, so that nothing committed from here on is missed.
        let rx = self.inner.writer.change_feed.subscribe();
        let (cursor, catching_up) = match from {
            Some(c) => (c, true),
            None => {
                let next = self.inner.writer.applied().0.map_or(1, |p| p.index + 1);
                (ChangeCursor::from_index(next), false)
            }
        };
        let s = NodeChanges {
            node: self.clone(),
            rx,
            stop: self.stop_signal(),
            filter,
            cursor,
            catching_up,
            backlog: VecDeque::new(),
        };
        // A stream that cannot be served fails now rather than at its first read.
        s.check_kept()?;
        Ok(s)
    }
}

/// A change stream on this node (see the module documentation).
pub(crate) struct NodeChanges {
    node: Node,
    rx: tokio::sync::broadcast::Receiver<Feed>,
    /// Turns true when the node shuts down (the broadcast itself never closes).
    stop: tokio::sync::watch::Receiver<bool>,
    filter: ChangeFilter,
    /// Where the next change to deliver is.
    cursor: ChangeCursor,
    /// Reading the store rather than the broadcast.
    catching_up: bool,
    backlog: VecDeque<Change>,
}

impl NodeChanges {
    /// The cursor after the last change delivered (or the start).
    pub(crate) fn cursor(&self) -> ChangeCursor {
        self.cursor
    }

    /// Where the stream stands, for diagnostics.
    pub(crate) fn describe(&self) -> String {
        format!(
            "embedded on node {}: cursor {}, catching up {}, {} queued, {} in the broadcast",
            self.node.inner.id,
            self.cursor,
            self.catching_up,
            self.backlog.len(),
            self.rx.len()
        )
    }

    /// The next change, waiting for one.
    pub(crate) async fn next(&mut self) -> Result<Change> {
        loop {
            if let Some(c) = self.backlog.pop_front() {
                return Ok(c);
            }
            if *self.stop.borrow() {
                return Err(Error::ShutDown);
            }
            if self.catching_up {
                self.catch_up()?;
                continue;
            }
            match super::recv_or_stop(&mut self.rx, &mut self.stop).await? {
                Some(Feed::Run(run)) => {
                    for c in run.iter() {
                        if (c.index, c.seq) >= (self.cursor.index, self.cursor.seq) {
                            self.take(c.clone());
                        }
                    }
                }
                Some(Feed::Reloaded) | None => self.catching_up = true,
            }
        }
    }

    fn take(&mut self, c: Change) {
        self.cursor = c.cursor();
        if self.filter.wants(&c) {
            self.backlog.push_back(self.filter.shape(c));
        }
    }

    /// The oldest change this node keeps, checked against the cursor.
    fn check_kept(&self) -> Result<()> {
        self.check_against(self.node.changes_kept_from()?)
    }

    fn check_against(&self, kept_from: Option<u64>) -> Result<()> {
        let cursor = self.cursor;
        match kept_from {
            None => {
                Err(Error::Config("change streams are off on this node (its change_retention is 0)".into()))
            }
            Some(from) if cursor.index < from => Err(Error::CursorTooOld(format!(
                "the changes before log index {from} are no longer kept here; cursor {cursor} is older: \
                 reload the data and follow the changes from now on"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Read the next stored changes after the cursor; caught up when there are none.
    fn catch_up(&mut self) -> Result<()> {
        let cursor = self.cursor;
        let (stored, kept_from) =
            self.node.inner.state_reads.with(|c| changes::read(c, cursor, CHUNK_ENTRIES))?;
        // The mark and the rows come from one read transaction.
        self.check_against(kept_from)?;
        if stored.is_empty() {
            self.catching_up = false;
        }
        for c in stored {
            self.take(c);
        }
        Ok(())
    }
}
