//! Distributed locks: `db.lock(name, { leaseMs, waitMs })` and `db.tryLock(name, { leaseMs })`
//! (the core's `Client::lock`/`Client::try_lock`), and the `Lock` class over `hiqlite::LockGuard`.
//! The fencing token is a 64-bit integer, resolved as a `number` when it holds it exactly, else
//! (or with `safeIntegers`) a `bigint`, as SQL integers are. `Symbol.asyncDispose` is set in
//! `prelude.js`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hiqlite::{LockGuard, Value};
use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::convert::{self, JsValueOut};
use crate::database::Database;
use crate::error::Failure;
use crate::settle;

const DEFAULT_LEASE_MS: f64 = 10_000.0;
const DEFAULT_WAIT_MS: f64 = 30_000.0;

/// `db.lock` options.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LockOptions {
    lease_ms: Option<f64>,
    wait_ms: Option<f64>,
}

/// `db.tryLock` options.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TryLockOptions {
    lease_ms: Option<f64>,
}

/// The guard until it is released, with the runtime it was taken on. Dropping an unreleased
/// guard releases the lock: the core spawns that release on the current Tokio runtime, and a
/// `Lock` collected by the garbage collector is dropped on the JavaScript thread, outside it.
struct Slot {
    guard: Option<LockGuard>,
    handle: tokio::runtime::Handle,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(g) = self.guard.take() {
            let _entered = self.handle.enter();
            drop(g);
        }
    }
}

/// A held lock (`db.lock(...)` or `db.tryLock(...)`): nobody else holds it until `release()`.
/// Its lease is renewed in the background; a `Lock` that is collected without `release()`
/// releases it then (the lease ends it sooner if the process dies).
#[napi]
pub struct Lock {
    slot: Arc<Mutex<Slot>>,
    name: String,
    token: i64,
    safe_integers: bool,
}

impl Lock {
    fn new((guard, handle): (LockGuard, tokio::runtime::Handle), safe_integers: bool) -> Lock {
        Lock {
            name: guard.name().to_owned(),
            token: guard.token(),
            slot: Arc::new(Mutex::new(Slot { guard: Some(guard), handle })),
            safe_integers,
        }
    }

    fn take(&self) -> Option<LockGuard> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).guard.take()
    }
}

#[napi]
impl Lock {
    /// The fencing token: strictly greater than every earlier holder's of this lock. Hand it to
    /// storage that must refuse a stale holder's writes.
    #[napi(getter, ts_return_type = "number | bigint")]
    pub fn token(&self) -> JsValueOut {
        JsValueOut { value: Value::Integer(self.token), safe_integers: self.safe_integers }
    }

    /// The lock's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// False once released, or once a background renewal found the lock lost (its lease ended
    /// or it was taken over): stop acting on it then.
    #[napi]
    pub fn is_held(&self) -> bool {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).guard.as_ref().is_some_and(|g| g.is_held())
    }

    /// Release the lock now (the next waiter gets it); resolves to whether it was still held
    /// (`false` when released before).
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn release<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let guard = self.take();
        settle(
            env,
            async move {
                match guard {
                    Some(g) => Ok(g.release().await?),
                    None => Ok(false),
                }
            },
            |_, b| Ok(b),
        )
    }
}

fn lease(ms: Option<f64>) -> Result<Duration, Failure> {
    convert::millis(ms.unwrap_or(DEFAULT_LEASE_MS), "leaseMs")
}

#[napi]
impl Database {
    /// Take lock `name`, waiting in line (first come, first served) up to `waitMs` (default
    /// 30 s; then it rejects with `HIQLITE_TIMEOUT`). `leaseMs` (default 10 s) is renewed in the
    /// background until the lock is released; a holder that stops renewing loses it when the
    /// lease ends.
    #[napi(ts_args_type = "name: string, options?: LockOptions | null", ts_return_type = "Promise<Lock>")]
    pub fn lock<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Lock>> {
        let prepared = (|| -> Result<_, Failure> {
            let o: LockOptions = convert::options(env, options, "lock options")?;
            let wait = convert::millis(o.wait_ms.unwrap_or(DEFAULT_WAIT_MS), "waitMs")?;
            Ok((self.shared.client()?, convert::string(name, "name")?, lease(o.lease_ms)?, wait))
        })();
        let safe_integers = self.defaults.safe_integers.unwrap_or(false);
        settle(
            env,
            async move {
                let (client, name, lease, wait) = prepared?;
                let guard = client.lock(&name, lease, wait).await?;
                Ok((guard, tokio::runtime::Handle::current()))
            },
            move |_, g| Ok(Lock::new(g, safe_integers)),
        )
    }

    /// Take lock `name` only if it is free and nobody waits for it; otherwise resolve to `null`.
    #[napi(
        ts_args_type = "name: string, options?: TryLockOptions | null",
        ts_return_type = "Promise<Lock | null>"
    )]
    pub fn try_lock<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Option<Lock>>> {
        let prepared = (|| -> Result<_, Failure> {
            let o: TryLockOptions = convert::options(env, options, "tryLock options")?;
            Ok((self.shared.client()?, convert::string(name, "name")?, lease(o.lease_ms)?))
        })();
        let safe_integers = self.defaults.safe_integers.unwrap_or(false);
        settle(
            env,
            async move {
                let (client, name, lease) = prepared?;
                let guard = client.try_lock(&name, lease).await?;
                Ok(guard.map(|g| (g, tokio::runtime::Handle::current())))
            },
            move |_, g| Ok(g.map(|g| Lock::new(g, safe_integers))),
        )
    }
}
