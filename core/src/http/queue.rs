//! rqlite's queued writes (`/db/execute?queue`): answered at once with a sequence number, then
//! applied by one worker in arrival order, in batches (one log entry per batch), so that
//! waiting for a queued write (`wait`) also waits for every write queued before it.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use crate::command::Command;
use crate::error::{Error, Result};
use crate::node::Node;

/// Most queued writes in one log entry.
const MAX_BATCH: usize = 1024;

type Queued = (Command, Option<oneshot::Sender<Result<()>>>);

/// The queue of one node's client API.
pub(crate) struct WriteQueue {
    /// Sequence numbers and the channel, under one lock so that numbers follow queue order.
    tx: Mutex<(u64, mpsc::UnboundedSender<Queued>)>,
}

impl WriteQueue {
    /// A queue whose worker writes through `node` (it ends when the queue is dropped).
    pub(crate) fn new(node: Node) -> WriteQueue {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(worker(node, rx));
        WriteQueue { tx: Mutex::new((0, tx)) }
    }

    /// Queue a write; returns its sequence number and, when asked, a receiver that answers once
    /// it (and so everything queued before it) is applied.
    pub(crate) fn push(
        &self,
        cmd: Command,
        wait: bool,
    ) -> Result<(u64, Option<oneshot::Receiver<Result<()>>>)> {
        let (done, rx) = if wait {
            let (t, r) = oneshot::channel();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let mut g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        g.1.send((cmd, done)).map_err(|_| Error::ShutDown)?;
        Ok((g.0, rx))
    }
}

async fn worker(node: Node, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let (mut cmds, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
        let cmd = if cmds.len() == 1 { cmds.remove(0) } else { Command::Batch(cmds) };
        let r = node.write(cmd).await.map(|_| ());
        if let Err(e) = &r {
            tracing::warn!("queued writes failed: {e}");
        }
        for w in waiters.into_iter().flatten() {
            let _ = w.send(r.clone());
        }
    }
}
