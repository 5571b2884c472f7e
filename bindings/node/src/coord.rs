//! The coordination methods of `Database`: replicated key/value entries with expiry (`kv*`)
//! and counters (`counter*`), each one call of the core's `Client::kv_*`/`Client::counter_*`.
//! Values are bytes (a string is stored as UTF-8); counters are 64-bit integers, resolved as a
//! `number` when it holds them exactly, else (or with `safeIntegers`) a `bigint`, as SQL
//! integers are. `kvPutJson`/`kvGetJson` are JavaScript, in `prelude.js`.

use napi::bindgen_prelude::{Buffer, PromiseRaw, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;

use hiqlite::{Client, Consistency, Value};

use crate::convert::{self, JsValueOut};
use crate::database::Database;
use crate::error::Failure;
use crate::settle;

/// A value to store: a Buffer/Uint8Array as it is, a string as UTF-8.
pub(crate) fn bytes(v: Unknown<'_>, what: &str) -> Result<Vec<u8>, Failure> {
    let bad = || Failure::invalid(format!("{what} must be a Buffer, Uint8Array or string"));
    match v.get_type()? {
        ValueType::String | ValueType::Object => match convert::value_from_js(v).map_err(|_| bad())? {
            Value::Text(s) => Ok(s.into_bytes()),
            Value::Blob(b) => Ok(b),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// `null`/`undefined` (absent, or delete) or a value's bytes.
fn optional_bytes(v: Option<Unknown<'_>>, what: &str) -> Result<Option<Vec<u8>>, Failure> {
    match v {
        None => Ok(None),
        Some(v) if matches!(v.get_type()?, ValueType::Null | ValueType::Undefined) => Ok(None),
        Some(v) => bytes(v, what).map(Some),
    }
}

/// A 64-bit integer from an integral `number` or a `bigint`.
pub(crate) fn integer(v: Unknown<'_>, what: &str) -> Result<i64, Failure> {
    let bad = || Failure::invalid(format!("{what} must be an integer (a number or a bigint)"));
    match v.get_type()? {
        ValueType::Number | ValueType::BigInt => match convert::value_from_js(v)? {
            Value::Integer(i) => Ok(i),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// A consistency level's name (`undefined`/`null`: `local`, this replica as it is).
fn consistency(v: Option<Unknown<'_>>) -> Result<Consistency, Failure> {
    match v {
        None => Ok(Consistency::Local),
        Some(v) if matches!(v.get_type()?, ValueType::Null | ValueType::Undefined) => Ok(Consistency::Local),
        Some(v) => Ok(convert::string(v, "consistency")?.parse::<Consistency>()?),
    }
}

/// Time to live in milliseconds (`undefined`/`null`: none).
fn ttl(v: Option<Unknown<'_>>) -> Result<Option<std::time::Duration>, Failure> {
    convert::optional_number(v, "ttlMs")?.map(|ms| convert::millis(ms, "ttlMs")).transpose()
}

impl Database {
    fn coord_client(&self) -> Result<Client, Failure> {
        self.shared.client()
    }

    /// A counter's value resolving to JavaScript: `number`, or `bigint` beyond ±(2^53 − 1) or
    /// with the database's `safeIntegers`.
    fn counter_out(&self) -> impl FnOnce(&Env, i64) -> napi::Result<JsValueOut> {
        let safe_integers = self.defaults.safe_integers.unwrap_or(false);
        move |_, v| Ok(JsValueOut { value: Value::Integer(v), safe_integers })
    }
}

#[napi]
impl Database {
    /// Set `key` in namespace `ns` to `value` (a string is stored as UTF-8), cluster-wide; with
    /// `ttlMs` it expires that long after the leader applies it (the leader's clock decides).
    #[napi(
        ts_args_type = "ns: string, key: string, value: Buffer | Uint8Array | string, ttlMs?: number | null",
        ts_return_type = "Promise<void>"
    )]
    pub fn kv_put<'env>(
        &self,
        env: &'env Env,
        ns: Unknown<'_>,
        key: Unknown<'_>,
        value: Unknown<'_>,
        ttl_ms: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let prepared = (|| -> Result<_, Failure> {
            let args = (convert::string(ns, "ns")?, convert::string(key, "key")?, bytes(value, "value")?);
            Ok((self.coord_client()?, args, ttl(ttl_ms)?))
        })();
        settle(
            env,
            async move {
                let (client, (ns, key, value), ttl) = prepared?;
                Ok(client.kv_put(&ns, &key, value, ttl).await?)
            },
            |_, ()| Ok(()),
        )
    }

    /// The value of `key` in `ns`, or `null`. By default this replica's (`local`);
    /// `linearizable` (or `leader`) sees every write acknowledged before the call.
    #[napi(
        ts_args_type = "ns: string, key: string, consistency?: Consistency | null",
        ts_return_type = "Promise<Buffer | null>"
    )]
    pub fn kv_get<'env>(
        &self,
        env: &'env Env,
        ns: Unknown<'_>,
        key: Unknown<'_>,
        level: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((
                self.coord_client()?,
                convert::string(ns, "ns")?,
                convert::string(key, "key")?,
                consistency(level)?,
            ))
        })();
        settle(
            env,
            async move {
                let (client, ns, key, c) = prepared?;
                Ok(client.kv_get_with(&ns, &key, c).await?)
            },
            |_, v| Ok(v.map(Buffer::from)),
        )
    }

    /// Remove `key`; resolves to whether it was there.
    #[napi(ts_args_type = "ns: string, key: string", ts_return_type = "Promise<boolean>")]
    pub fn kv_delete<'env>(
        &self,
        env: &'env Env,
        ns: Unknown<'_>,
        key: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((self.coord_client()?, convert::string(ns, "ns")?, convert::string(key, "key")?))
        })();
        settle(
            env,
            async move {
                let (client, ns, key) = prepared?;
                Ok(client.kv_delete(&ns, &key).await?)
            },
            |_, b| Ok(b),
        )
    }

    /// Remove `key` and resolve to the value it had (`null` if absent), atomically.
    #[napi(ts_args_type = "ns: string, key: string", ts_return_type = "Promise<Buffer | null>")]
    pub fn kv_get_and_delete<'env>(
        &self,
        env: &'env Env,
        ns: Unknown<'_>,
        key: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((self.coord_client()?, convert::string(ns, "ns")?, convert::string(key, "key")?))
        })();
        settle(
            env,
            async move {
                let (client, ns, key) = prepared?;
                Ok(client.kv_get_and_delete(&ns, &key).await?)
            },
            |_, v| Ok(v.map(Buffer::from)),
        )
    }

    /// Compare and swap: if `key` holds `expected` (`null`: absent), set it to `next` (`null`:
    /// delete it), with `ttlMs` to live. Resolves to whether it swapped.
    #[napi(
        ts_args_type = "ns: string, key: string, expected: Buffer | Uint8Array | string | null, next: Buffer | Uint8Array | string | null, ttlMs?: number | null",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn kv_replace<'env>(
        &self,
        env: &'env Env,
        ns: Unknown<'_>,
        key: Unknown<'_>,
        expected: Option<Unknown<'_>>,
        next: Option<Unknown<'_>>,
        ttl_ms: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let prepared = (|| -> Result<_, Failure> {
            let names = (convert::string(ns, "ns")?, convert::string(key, "key")?);
            let values = (optional_bytes(expected, "expected")?, optional_bytes(next, "next")?);
            Ok((self.coord_client()?, names, values, ttl(ttl_ms)?))
        })();
        settle(
            env,
            async move {
                let (client, (ns, key), (expected, next), ttl) = prepared?;
                Ok(client.kv_replace(&ns, &key, expected.as_deref(), next.as_deref(), ttl).await?)
            },
            |_, b| Ok(b),
        )
    }

    /// Keep at most `maxEntries` keys in `ns` (`null`: no limit); the least recently written
    /// go first, on every replica alike.
    #[napi(ts_args_type = "ns: string, maxEntries: number | null", ts_return_type = "Promise<void>")]
    pub fn kv_set_limit<'env>(
        &self,
        env: &'env Env,
        ns: Unknown<'_>,
        max_entries: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let prepared = (|| -> Result<_, Failure> {
            let max = match max_entries {
                Some(v) if !matches!(v.get_type()?, ValueType::Null | ValueType::Undefined) => {
                    let n = integer(v, "maxEntries")?;
                    Some(u64::try_from(n).map_err(|_| Failure::invalid("maxEntries must not be negative"))?)
                }
                _ => None,
            };
            Ok((self.coord_client()?, convert::string(ns, "ns")?, max))
        })();
        settle(
            env,
            async move {
                let (client, ns, max) = prepared?;
                Ok(client.kv_set_limit(&ns, max).await?)
            },
            |_, ()| Ok(()),
        )
    }

    /// A counter's value (0 when never set); by default this replica's (`local`).
    #[napi(
        ts_args_type = "name: string, consistency?: Consistency | null",
        ts_return_type = "Promise<number | bigint>"
    )]
    pub fn counter_get<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'_>,
        level: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, JsValueOut>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((self.coord_client()?, convert::string(name, "name")?, consistency(level)?))
        })();
        settle(
            env,
            async move {
                let (client, name, c) = prepared?;
                Ok(client.counter_get_with(&name, c).await?)
            },
            self.counter_out(),
        )
    }

    /// Add `delta` (default 1) to a counter atomically, cluster-wide; resolves to the new value.
    #[napi(
        ts_args_type = "name: string, delta?: number | bigint",
        ts_return_type = "Promise<number | bigint>"
    )]
    pub fn counter_add<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'_>,
        delta: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, JsValueOut>> {
        let prepared = (|| -> Result<_, Failure> {
            let delta = match delta {
                Some(d) if d.get_type()? != ValueType::Undefined => integer(d, "delta")?,
                _ => 1,
            };
            Ok((self.coord_client()?, convert::string(name, "name")?, delta))
        })();
        settle(
            env,
            async move {
                let (client, name, delta) = prepared?;
                Ok(client.counter_add(&name, delta).await?)
            },
            self.counter_out(),
        )
    }

    /// Set a counter, cluster-wide; resolves to the value.
    #[napi(
        ts_args_type = "name: string, value: number | bigint",
        ts_return_type = "Promise<number | bigint>"
    )]
    pub fn counter_set<'env>(
        &self,
        env: &'env Env,
        name: Unknown<'_>,
        value: Unknown<'_>,
    ) -> napi::Result<PromiseRaw<'env, JsValueOut>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((self.coord_client()?, convert::string(name, "name")?, integer(value, "value")?))
        })();
        settle(
            env,
            async move {
                let (client, name, value) = prepared?;
                Ok(client.counter_set(&name, value).await?)
            },
            self.counter_out(),
        )
    }
}
