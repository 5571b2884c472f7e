//! [`SharedStream`]: a listener, change stream or live query ([`SharedListener`],
//! [`SharedChanges`], [`SharedWatch`]) that several tasks or threads hold at once, read in turn
//! and closed from any of them, which ends a read that waits. The shape the Python, Node and C
//! faces need (a handle the host language may close or collect on any thread); they only map
//! what it yields.

use std::future::Future;

use tokio::sync::{watch, Mutex};

use super::changes::{ChangeStream, Watch};
use super::notify::{ListenEvent, Listener};
use crate::changes::Change;
use crate::error::Result;
use crate::value::Rows;

/// A stream a [`SharedStream`] can share: something read item by item.
pub trait StreamSource: Send + 'static {
    /// What one read gives.
    type Item: Send;
    /// The next item, waiting for it.
    fn next_item(&mut self) -> impl Future<Output = Result<Self::Item>> + Send;
}

impl StreamSource for ChangeStream {
    type Item = Change;
    fn next_item(&mut self) -> impl Future<Output = Result<Change>> + Send {
        self.next()
    }
}

impl StreamSource for Listener {
    type Item = ListenEvent;
    fn next_item(&mut self) -> impl Future<Output = Result<ListenEvent>> + Send {
        self.next()
    }
}

impl StreamSource for Watch {
    type Item = Rows;
    fn next_item(&mut self) -> impl Future<Output = Result<Rows>> + Send {
        self.next()
    }
}

/// A [`Listener`] shared between tasks and threads.
pub type SharedListener = SharedStream<Listener>;
/// A [`ChangeStream`] shared between tasks and threads.
pub type SharedChanges = SharedStream<ChangeStream>;
/// A [`Watch`] shared between tasks and threads.
pub type SharedWatch = SharedStream<Watch>;

/// A stream shared between tasks and threads (see the module documentation). Reads are
/// cancel-safe when the stream's are: a read given up takes nothing from it.
pub struct SharedStream<S: StreamSource> {
    /// True once closed: a read waiting then ends.
    closed: watch::Sender<bool>,
    /// The stream; `None` once closed or failed.
    core: Mutex<Option<S>>,
    /// The runtime the stream reads on: a remote stream must be dropped inside it, and the
    /// last handle may go on any thread.
    handle: Option<tokio::runtime::Handle>,
}

impl<S: StreamSource> std::fmt::Debug for SharedStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStream").field("closed", &*self.closed.borrow()).finish_non_exhaustive()
    }
}

impl<S: StreamSource> SharedStream<S> {
    /// Share `stream` (call it inside the runtime it reads on).
    pub fn new(stream: S) -> Self {
        SharedStream {
            closed: watch::Sender::new(false),
            core: Mutex::new(Some(stream)),
            handle: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// The next item, waiting for it; `None` once closed. A failed stream is done: its error is
    /// returned once, and reads after it return `None`.
    pub async fn next(&self) -> Result<Option<S::Item>> {
        let mut closed = self.closed.subscribe();
        let mut core = self.core.lock().await;
        let Some(s) = core.as_mut() else { return Ok(None) };
        if *closed.borrow_and_update() {
            self.release(core.take());
            return Ok(None);
        }
        let got = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => None,
            e = s.next_item() => Some(e),
        };
        match got {
            Some(Ok(e)) => Ok(Some(e)),
            Some(Err(e)) => {
                self.release(core.take());
                Err(e)
            }
            None => {
                self.release(core.take());
                Ok(None)
            }
        }
    }

    /// Stop: a read waiting ends (with `None`), and so do later ones. Does not wait; closing
    /// again does nothing.
    pub fn close(&self) {
        self.closed.send_replace(true);
        // Free the stream now unless a read holds it (that read frees it as it ends).
        if let Ok(mut core) = self.core.try_lock() {
            self.release(core.take());
        }
    }

    /// Whether [`SharedStream::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn release(&self, s: Option<S>) {
        if let Some(s) = s {
            let _entered = self.handle.as_ref().map(tokio::runtime::Handle::enter);
            drop(s);
        }
    }
}

impl<S: StreamSource> Drop for SharedStream<S> {
    fn drop(&mut self) {
        let s = self.core.get_mut().take();
        self.release(s);
    }
}
