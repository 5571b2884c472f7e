//! Distributed locks on [`Client`]: `lock` waits its turn (FIFO) and `try_lock` does not; both
//! give a [`LockGuard`] with a fencing token (strictly increasing per lock, to hand to storage
//! that must refuse a stale holder). The guard renews its lease in the background and releases
//! the lock when released or dropped; a holder that stops renewing (its process died, or it
//! was cut off) loses the lock when the lease ends on the leader's clock.
//!
//! The guard knows a conservative end of its lease on this process's clock
//! ([`LockGuard::valid_until`]): the moment the request that last started or extended the lease
//! was *sent*, plus the lease. The leader stamps that request no earlier, so its lease ends no
//! earlier; as long as the clocks of this process and the leaders run at the same rate (they
//! need not agree on the time of day), no other holder gets the lock before `valid_until`.
//! A grant that came after waiting in line began before the caller learned of it, so `lock`
//! renews once before returning such a guard.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    valid: Arc<Validity>,
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

    /// False once a renewal found the lock gone (taken over), or once [`LockGuard::valid_until`]
    /// has passed without a successful renewal: stop acting on it.
    pub fn is_held(&self) -> bool {
        !self.lost.load(Ordering::Acquire) && Instant::now() < self.valid.until()
    }

    /// Until when, at the latest, this holder may act on the lock (see the module
    /// documentation); renewals move it on.
    pub fn valid_until(&self) -> Instant {
        self.valid.until()
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
        let sent = Instant::now();
        match self.lock_raw(name, lease, Some(wait)).await? {
            Some((token, waited)) => self.guard(name, token, lease, sent, waited).await,
            None => Err(Error::Timeout(format!("lock {name} not acquired within {wait:?}"))),
        }
    }

    /// Take lock `name` only if it is free and nobody waits for it.
    pub async fn try_lock(&self, name: &str, lease: Duration) -> Result<Option<LockGuard>> {
        let sent = Instant::now();
        match self.lock_raw(name, lease, None).await? {
            Some((token, waited)) => Ok(Some(self.guard(name, token, lease, sent, waited).await?)),
            None => Ok(None),
        }
    }

    async fn guard(
        &self,
        name: &str,
        token: i64,
        lease: Duration,
        mut sent: Instant,
        waited: bool,
    ) -> Result<LockGuard> {
        if waited {
            sent = Instant::now();
            if !self.lock_renew(name, token, lease).await? {
                return Err(Error::Timeout(format!(
                    "lock {name}: its lease of {lease:?} ended before the grant reached this client; \
                     take a longer lease"
                )));
            }
        }
        let valid = Arc::new(Validity::new(sent + lease));
        let lost = Arc::new(AtomicBool::new(false));
        let (client, n, l, v) = (self.clone(), name.to_owned(), lost.clone(), valid.clone());
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let sent = Instant::now();
                match client.lock_renew(&n, token, lease).await {
                    Ok(true) => v.extend(sent + lease),
                    Ok(false) => break,
                    // Not reached: keep trying while the lease may still run.
                    Err(e) if Instant::now() < v.until() => tracing::debug!("renewing lock {n}: {e}"),
                    Err(_) => break,
                }
            }
            l.store(true, Ordering::Release);
        });
        Ok(LockGuard {
            client: self.clone(),
            name: name.to_owned(),
            token,
            lost,
            valid,
            renewer: Some(renewer),
            released: false,
        })
    }

    async fn lock_raw(
        &self,
        name: &str,
        lease: Duration,
        wait: Option<Duration>,
    ) -> Result<Option<(i64, bool)>> {
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

/// The end of a holder's lease on this process's clock, moved on by renewals (never back).
struct Validity {
    base: Instant,
    /// Nanoseconds after `base`.
    until: AtomicU64,
}

impl Validity {
    fn new(until: Instant) -> Validity {
        let base = Instant::now().min(until);
        let v = Validity { base, until: AtomicU64::new(0) };
        v.extend(until);
        v
    }

    fn until(&self) -> Instant {
        self.base + Duration::from_nanos(self.until.load(Ordering::Acquire))
    }

    fn extend(&self, until: Instant) {
        let nanos = u64::try_from(until.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        self.until.fetch_max(nanos, Ordering::AcqRel);
    }
}
