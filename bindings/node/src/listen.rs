//! listen/notify: `db.notify(channel, payload)` and `db.listen(channel, { after })` (the core's
//! `Client::notify`/`Client::listen`), and the `Listener` class over `hiqlite::Listener`: an
//! async iterator (`next`, `return`; `Symbol.asyncIterator` and `Symbol.asyncDispose` are set in
//! `prelude.js`) whose `close()` ends a `next()` that waits, so that nothing keeps the event loop
//! alive once it is closed. Ids are 64-bit integers, resolved as a `number` when it holds them
//! exactly, else (or with `safeIntegers`) a `bigint`.

use std::sync::Arc;

use hiqlite::{ListenEvent, Value};
use napi::bindgen_prelude::{Buffer, Object, PromiseRaw, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;

use crate::convert::JsValueOut;
use crate::coord::{bytes, integer};
use crate::database::Database;
use crate::error::Failure;
use crate::{convert, settle};

/// `{ after }` of `db.listen` (`undefined`/`null`: from now on).
fn after_option(options: Option<Unknown<'_>>) -> Result<Option<i64>, Failure> {
    let Some(v) = options else { return Ok(None) };
    match v.get_type()? {
        ValueType::Null | ValueType::Undefined => return Ok(None),
        ValueType::Object => {}
        _ => return Err(Failure::invalid("listen options must be an object")),
    }
    // SAFETY: checked to be an object.
    let obj = unsafe { v.cast::<Object>() }?;
    if let Some(k) = Object::keys(&obj)?.into_iter().find(|k| k != "after") {
        return Err(Failure::invalid(format!(
            "invalid listen options: unknown field `{k}`, expected `after`"
        )));
    }
    match obj.get::<Unknown>("after")? {
        None => Ok(None),
        Some(a) if matches!(a.get_type()?, ValueType::Null | ValueType::Undefined) => Ok(None),
        Some(a) => integer(a, "after").map(Some),
    }
}

/// `{ done, value }` of an async iterator: an event object, or `{ done: true }`.
fn step<'env>(env: &'env Env, e: Option<ListenEvent>, safe_integers: bool) -> napi::Result<Object<'env>> {
    let mut out = Object::new(env)?;
    let int = |i| JsValueOut { value: Value::Integer(i), safe_integers };
    match e {
        None => {
            out.set("done", true)?;
            out.set("value", ())?;
        }
        Some(e) => {
            let mut v = Object::new(env)?;
            match e {
                ListenEvent::Notification(n) => {
                    v.set("type", "notification")?;
                    v.set("id", int(n.id))?;
                    v.set("channel", n.channel)?;
                    v.set("payload", Buffer::from(n.payload))?;
                }
                ListenEvent::Lagged { after, lost } => {
                    v.set("type", "lagged")?;
                    v.set("after", int(after))?;
                    v.set("lost", lost)?;
                }
            }
            out.set("done", false)?;
            out.set("value", v)?;
        }
    }
    Ok(out)
}

/// A listener on one channel (`await db.listen(channel)`): every notification after its cursor,
/// in log order, as `for await (const ev of listener)`. Breaking out of the loop (or `close()`)
/// stops it; a pending `next()` keeps the process alive, as a socket does, until an event comes
/// or the listener is closed.
#[napi]
pub struct Listener {
    core: Arc<hiqlite::SharedListener>,
    channel: String,
    safe_integers: bool,
}

#[napi]
impl Listener {
    /// The channel it follows.
    #[napi(getter)]
    pub fn channel(&self) -> String {
        self.channel.clone()
    }

    /// Whether `close()` (or `return()`) was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The next event: `{ done: false, value }` with a `Notification` or a `Lagged` marker, or
    /// `{ done: true }` once closed. Rejects once if the listener fails (a remote node went
    /// away: `HIQLITE_UNREACHABLE`; its embedded node was closed: `HIQLITE_SHUTDOWN`); resume
    /// with `db.listen(channel, { after: lastId })`.
    #[napi(ts_return_type = "Promise<IteratorResult<ListenEvent, undefined>>")]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let safe_integers = self.safe_integers;
        let core = Arc::clone(&self.core);
        settle(env, async move { Ok::<_, Failure>(core.next().await?) }, move |env, e| {
            step(env, e, safe_integers)
        })
    }

    /// Stop listening: a `next()` that waits resolves as done, and so do later ones. Does not
    /// wait; closing again does nothing.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }

    /// `close()`, as the async iterator protocol calls it when a `for await` loop is left.
    #[napi(js_name = "return", ts_return_type = "Promise<IteratorResult<ListenEvent, undefined>>")]
    pub fn finish<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        self.close();
        let safe_integers = self.safe_integers;
        settle(env, async { Ok(None) }, move |env, e| step(env, e, safe_integers))
    }
}

#[napi]
impl Database {
    /// Publish `payload` (a string is sent as UTF-8) on `channel`, cluster-wide; resolves to the
    /// notification's id (its place in one cluster-wide sequence).
    #[napi(
        ts_args_type = "channel: string, payload: Buffer | Uint8Array | string",
        ts_return_type = "Promise<number | bigint>"
    )]
    pub fn notify<'env>(
        &self,
        env: &'env Env,
        channel: Unknown<'_>,
        payload: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, JsValueOut>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((self.shared.client()?, convert::string(channel, "channel")?, bytes(payload, "payload")?))
        })();
        let safe_integers = self.defaults.safe_integers.unwrap_or(false);
        settle(
            env,
            async move {
                let (client, channel, payload) = prepared?;
                Ok(client.notify(&channel, payload).await?)
            },
            move |_, id| Ok(JsValueOut { value: Value::Integer(id), safe_integers }),
        )
    }

    /// Follow `channel`: resolves, once subscribed, to a `Listener` of every notification after
    /// id `after` (default: from now on), in log order (the same on every node), with a `Lagged`
    /// marker when it fell behind its bounded buffer (`lost: false`: it missed nothing). The
    /// cluster keeps the last 10,000 notifications per channel to resume from.
    #[napi(
        ts_args_type = "channel: string, options?: ListenOptions | null",
        ts_return_type = "Promise<Listener>"
    )]
    pub fn listen<'env>(
        &self,
        env: &'env Env,
        channel: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Listener>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((self.shared.client()?, convert::string(channel, "channel")?, after_option(options)?))
        })();
        let safe_integers = self.defaults.safe_integers.unwrap_or(false);
        settle(
            env,
            async move {
                let (client, channel, after) = prepared?;
                let core = client.listen(&channel, after).await?;
                Ok((hiqlite::SharedListener::new(core), channel))
            },
            move |_, (core, channel)| Ok(Listener { core: Arc::new(core), channel, safe_integers }),
        )
    }
}
