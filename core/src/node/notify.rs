//! listen/notify on a node: a notification goes through the log like any write; a listener
//! follows this node's applied notifications of one channel in log order. It reads the live
//! in-memory broadcast and, when it fell behind that bounded buffer (or starts from a cursor),
//! the notifications kept in the state file, so it sees every notification exactly once; only a
//! cursor older than what is kept loses some, and says so. When the node shuts down its
//! listeners end with `Error::ShutDown` (and so do the server-sent event streams it serves).

use std::collections::VecDeque;
use std::sync::Arc;

use super::Node;
use crate::client::{ListenEvent, Notification};
use crate::coord::{CoordAnswer, CoordOp};
use crate::error::{Error, Result};
use crate::sqlite::notify::{self, Note};

impl Node {
    /// Publish `payload` on `channel`; its id.
    pub(crate) async fn notify(&self, channel: &str, payload: Vec<u8>) -> Result<i64> {
        match self.coord(CoordOp::Notify { channel: channel.into(), payload }).await?.0 {
            CoordAnswer::Id(id) => Ok(id),
            other => Err(Error::Storage(format!("unexpected notify answer {other:?}"))),
        }
    }

    /// Follow `channel` from after id `after` (`None`: from now on).
    pub(crate) fn listen(&self, channel: &str, after: Option<i64>) -> Result<NodeListener> {
        crate::coord::check(&CoordOp::Notify { channel: channel.into(), payload: Vec::new() })?;
        // Subscribed first, so that nothing committed from here on is missed.
        let rx = self.inner.writer.notes.subscribe();
        let mut l = NodeListener {
            node: self.clone(),
            rx,
            stop: self.stop_signal(),
            channel: channel.into(),
            last: 0,
            backlog: VecDeque::new(),
        };
        match after {
            None => l.last = self.inner.state_reads.with(notify::newest)?,
            Some(a) => {
                l.last = a;
                l.catch_up(false)?;
            }
        }
        Ok(l)
    }
}

/// A listener on this node (see the module documentation).
pub(crate) struct NodeListener {
    node: Node,
    rx: tokio::sync::broadcast::Receiver<Arc<Note>>,
    /// Turns true when the node shuts down. The broadcast itself never closes (the node's
    /// handle keeps a sender), so this is what ends a waiting listener.
    stop: tokio::sync::watch::Receiver<bool>,
    channel: String,
    last: i64,
    backlog: VecDeque<ListenEvent>,
}

fn event(n: &Note) -> ListenEvent {
    ListenEvent::Notification(Notification {
        id: n.id,
        channel: n.channel.clone(),
        payload: n.payload.clone(),
    })
}

impl NodeListener {
    /// The next event, waiting for one.
    pub(crate) async fn next(&mut self) -> Result<ListenEvent> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                return Ok(e);
            }
            match super::recv_or_stop(&mut self.rx, &mut self.stop).await? {
                Some(n) if n.channel == self.channel && n.id > self.last => {
                    self.last = n.id;
                    return Ok(event(&n));
                }
                Some(_) => {}
                None => self.catch_up(true)?,
            }
        }
    }

    /// Read what was committed after `last` from the state file (everything kept is there).
    fn catch_up(&mut self, lagged: bool) -> Result<()> {
        let (channel, last) = (self.channel.clone(), self.last);
        let (notes, dropped) =
            self.node.inner.state_reads.with(|c| notify::after(c, &channel, last, notify::KEEP))?;
        let lost = dropped > last;
        if lagged || lost {
            self.backlog.push_back(ListenEvent::Lagged { after: last, lost });
        }
        for n in &notes {
            self.backlog.push_back(event(n));
        }
        if let Some(n) = notes.last() {
            self.last = n.id;
        }
        Ok(())
    }
}
