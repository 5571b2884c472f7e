//! [`SharedListener`]: a [`Listener`] that several tasks or threads hold at once, read in turn and
//! closed from any of them, which ends a read that waits. The shape the Python, Node and C faces
//! need (a handle the host language may close or collect on any thread); they only map events.

use tokio::sync::{watch, Mutex};

use super::notify::{ListenEvent, Listener};
use crate::error::Result;

/// A [`Listener`] shared between tasks and threads (see the module documentation). Reads are
/// cancel-safe: a read given up (a timeout around it) takes nothing from the stream.
pub struct SharedListener {
    /// True once closed: a read waiting then ends.
    closed: watch::Sender<bool>,
    /// The listener; `None` once closed or failed.
    core: Mutex<Option<Listener>>,
    /// The runtime the listener reads on: a remote listener's stream must be dropped inside it,
    /// and the last handle may go on any thread.
    handle: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for SharedListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedListener").field("closed", &*self.closed.borrow()).finish_non_exhaustive()
    }
}

impl SharedListener {
    /// Share `listener` (call it inside the runtime it reads on).
    pub fn new(listener: Listener) -> SharedListener {
        SharedListener {
            closed: watch::Sender::new(false),
            core: Mutex::new(Some(listener)),
            handle: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// The next event, waiting for it; `None` once closed. A failed listener is done: its error
    /// is returned once, and reads after it return `None`.
    pub async fn next(&self) -> Result<Option<ListenEvent>> {
        let mut closed = self.closed.subscribe();
        let mut core = self.core.lock().await;
        let Some(l) = core.as_mut() else { return Ok(None) };
        if *closed.borrow_and_update() {
            self.release(core.take());
            return Ok(None);
        }
        let got = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => None,
            e = l.next() => Some(e),
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

    /// Stop listening: a read waiting ends (with `None`), and so do later ones. Does not wait;
    /// closing again does nothing.
    pub fn close(&self) {
        self.closed.send_replace(true);
        // Free the stream now unless a read holds it (that read frees it as it ends).
        if let Ok(mut core) = self.core.try_lock() {
            self.release(core.take());
        }
    }

    /// Whether [`SharedListener::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn release(&self, l: Option<Listener>) {
        if let Some(l) = l {
            let _entered = self.handle.as_ref().map(tokio::runtime::Handle::enter);
            drop(l);
        }
    }
}

impl Drop for SharedListener {
    fn drop(&mut self) {
        let l = self.core.get_mut().take();
        self.release(l);
    }
}
