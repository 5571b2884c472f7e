//! Distributed locks on [`Client`]: `lock` waits its turn (FIFO) and `try_lock` does not; both
//! give a [`LockGuard`] with a fencing token (strictly increasing per lock, to hand to storage
//! that must refuse a stale holder). The guard renews its lease in the background and releases
//! the lock when released or dropped; a holder that stops renewing (its process died, or it
//! was cut off) loses the lock when the lease ends on the leader's clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Client, Inner};
use crate::error::{Error, Result};

/// A held lock (see the module documentation).
pub struct LockGuard {
    client: Client,
    name: String,
    token: i64,
    lost: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    /// The fencing token: strictly greater than every earlier holder's of this lock.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// False once a renewal found the lock gone (lease ended, or taken over): stop acting on it.
    pub fn is_held(&self) -> bool {
        !self.lost.load(Ordering::Acquire)
    }

    /// Release the lock now (the next waiter gets it); whether it was still held.
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        self.client.lock_release(&self.name, self.token).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if self.released {
            return;
        }
        // Released in the background when dropped inside a runtime; otherwise the lease ends it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (client, name, token) = (self.client.clone(), std::mem::take(&mut self.name), self.token);
            rt.spawn(async move {
                if let Err(e) = client.lock_release(&name, token).await {
                    tracing::debug!("releasing lock {name} on drop: {e}");
                }
            });
        }
    }
}

impl Client {
    /// Take lock `name` with a lease of `lease`, waiting in line (FIFO) up to `wait`
    /// (`Error::Timeout` after that). The guard renews the lease until released or dropped.
    /// (Remote: `wait` should stay below the client's timeout.)
    pub async fn lock(&self, name: &str, lease: Duration, wait: Duration) -> Result<LockGuard> {
        match self.lock_raw(name, lease, Some(wait)).await? {
            Some(token) => Ok(self.guard(name, token, lease)),
            None => Err(Error::Timeout(format!("lock {name} not acquired within {wait:?}"))),
        }
    }

    /// Take lock `name` only if it is free and nobody waits for it.
    pub async fn try_lock(&self, name: &str, lease: Duration) -> Result<Option<LockGuard>> {
        Ok(self.lock_raw(name, lease, None).await?.map(|token| self.guard(name, token, lease)))
    }

    fn guard(&self, name: &str, token: i64, lease: Duration) -> LockGuard {
        let lost = Arc::new(AtomicBool::new(false));
        let (client, n, l) = (self.clone(), name.to_owned(), lost.clone());
        let renewer = tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(lease / 3).await;
                match client.lock_renew(&n, token, lease).await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => break,
                    // Not reached: keep trying while the lease may still run.
                    Err(e) if renewed.elapsed() < lease => tracing::debug!("renewing lock {n}: {e}"),
                    Err(_) => break,
                }
            }
            l.store(true, Ordering::Release);
        });
        LockGuard {
            client: self.clone(),
            name: name.to_owned(),
            token,
            lost,
            renewer: Some(renewer),
            released: false,
        }
    }

    async fn lock_raw(&self, name: &str, lease: Duration, wait: Option<Duration>) -> Result<Option<i64>> {
        if lease.is_zero() {
            return Err(Error::InvalidRequest("a lock's lease must be longer than 0".into()));
        }
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.lock(name, lease, wait).await,
            Inner::Remote(r) => r.lock(name, lease, wait).await,
        }
    }

    async fn lock_renew(&self, name: &str, token: i64, lease: Duration) -> Result<bool> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.lock_renew(name, token, lease).await,
            Inner::Remote(r) => r.lock_renew(name, token, lease).await,
        }
    }

    async fn lock_release(&self, name: &str, token: i64) -> Result<bool> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.lock_release(name, token).await,
            Inner::Remote(r) => r.lock_release(name, token).await,
        }
    }
}
