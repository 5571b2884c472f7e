//! listen/notify on [`Client`]: `notify(channel, payload)` goes through the log; `listen(channel,
//! after)` yields every notification of the channel in log order, on any node, with its id as a
//! resumable cursor. A listener that falls behind its bounded in-memory buffer gets a
//! [`ListenEvent::Lagged`] marker and goes on from the notifications kept in the database (the
//! last 10,000), without gaps; only a cursor older than those loses some (`lost: true`).

use super::{Client, Inner};
use crate::error::Result;

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Its place in the cluster-wide sequence: the cursor to resume after.
    pub id: i64,
    /// The channel it was sent on.
    pub channel: String,
    /// What was sent.
    pub payload: Vec<u8>,
}

/// What a listener yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenEvent {
    /// The next notification.
    Notification(Notification),
    /// The listener fell behind after `after`. With `lost: false` it goes on from the stored
    /// notifications and misses nothing; with `lost: true` notifications after `after` were
    /// dropped before it read them (reload the state it follows).
    Lagged {
        /// The last id delivered before.
        after: i64,
        /// Whether notifications were lost.
        lost: bool,
    },
}

/// A listener on one channel (see the module documentation).
pub struct Listener {
    inner: ListenerInner,
}

enum ListenerInner {
    #[cfg(feature = "server")]
    Embedded(crate::node::NodeListener),
    Remote(super::remote::SseListener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// The next event, waiting for it.
    pub async fn next(&mut self) -> Result<ListenEvent> {
        match &mut self.inner {
            #[cfg(feature = "server")]
            ListenerInner::Embedded(l) => l.next().await,
            ListenerInner::Remote(l) => l.next().await,
        }
    }
}

impl Client {
    /// Publish `payload` on `channel`, cluster-wide; its id.
    pub async fn notify(&self, channel: &str, payload: impl AsRef<[u8]>) -> Result<i64> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.notify(channel, payload.as_ref().to_vec()).await,
            Inner::Remote(r) => r.notify(channel, payload.as_ref()).await,
        }
    }

    /// Follow `channel`: every notification after id `after` (`None`: from now on), in log
    /// order. Remote: a server-sent event stream from one node (`GET /listen/{channel}`).
    pub async fn listen(&self, channel: &str, after: Option<i64>) -> Result<Listener> {
        let inner = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => ListenerInner::Embedded(n.listen(channel, after)?),
            Inner::Remote(r) => ListenerInner::Remote(r.listen(channel, after).await?),
        };
        Ok(Listener { inner })
    }
}
