//! Change streams and live queries: `db.changes({ from, tables, oldValues })` and
//! `db.watch(sql, params)` (the core's `Client::changes`/`Client::watch`), and the `ChangeStream`
//! and `Watch` classes over the core's `SharedChanges`/`SharedWatch`: async iterators (`next`,
//! `return`; `Symbol.asyncIterator` and `Symbol.asyncDispose` are set in `prelude.js`) whose
//! `close()` ends a `next()` that waits, so that nothing keeps the event loop alive once closed.

use std::sync::Arc;

use hiqlite::{Change, ChangeCursor, ChangeOptions, Rows, SharedChanges, SharedWatch, Value};
use napi::bindgen_prelude::{Object, PromiseRaw, Unknown};
use napi::{Env, JsValue, ValueType};
use napi_derive::napi;

use crate::convert::{self, row_object, rows_array, JsValueOut};
use crate::database::Database;
use crate::error::Failure;
use crate::settle;

/// `{ from, tables, oldValues }` of `db.changes`.
fn change_options(options: Option<Unknown<'_>>) -> Result<ChangeOptions, Failure> {
    let mut opts = ChangeOptions::new();
    let Some(v) = options else { return Ok(opts) };
    match v.get_type()? {
        ValueType::Null | ValueType::Undefined => return Ok(opts),
        ValueType::Object => {}
        _ => return Err(Failure::invalid("changes options must be an object")),
    }
    // SAFETY: checked to be an object.
    let obj = unsafe { v.cast::<Object>() }?;
    if let Some(k) =
        Object::keys(&obj)?.into_iter().find(|k| !["from", "tables", "oldValues"].contains(&k.as_str()))
    {
        return Err(Failure::invalid(format!(
            "invalid changes options: unknown field `{k}`, expected `from`, `tables` or `oldValues`"
        )));
    }
    let given = |name: &str| -> Result<Option<Unknown<'_>>, Failure> {
        Ok(match obj.get::<Unknown>(name)? {
            Some(a) if !matches!(a.get_type()?, ValueType::Null | ValueType::Undefined) => Some(a),
            _ => None,
        })
    };
    if let Some(from) = given("from")? {
        let text = convert::string(from, "`from` (a change cursor such as \"12.3\")")?;
        opts = opts.from(text.parse::<ChangeCursor>()?);
    }
    if let Some(t) = given("tables")? {
        if !t.is_array()? {
            return Err(Failure::invalid("`tables` must be an array of table names"));
        }
        // SAFETY: checked to be an array.
        let arr = unsafe { t.cast::<napi::bindgen_prelude::Array>() }?;
        let mut names = Vec::new();
        for i in 0..arr.len() {
            let name = arr
                .get::<Unknown>(i)?
                .ok_or_else(|| Failure::invalid("`tables` must be an array of table names"))?;
            let name = convert::string(name, "a table name")?;
            if name.trim().is_empty() {
                return Err(Failure::invalid("a table name is empty"));
            }
            names.push(name);
        }
        opts = opts.tables(names);
    }
    if let Some(o) = given("oldValues")? {
        if o.get_type()? != ValueType::Boolean {
            return Err(Failure::invalid("`oldValues` must be a boolean"));
        }
        // SAFETY: checked to be a boolean.
        opts = opts.old_values(unsafe { o.cast::<bool>() }?);
    }
    Ok(opts)
}

/// `{ done: true }`.
fn done(env: &Env) -> napi::Result<Object<'_>> {
    let mut out = Object::new(env)?;
    out.set("done", true)?;
    out.set("value", ())?;
    Ok(out)
}

fn yielded<'env>(env: &'env Env, value: Object<'env>) -> napi::Result<Object<'env>> {
    let mut out = Object::new(env)?;
    out.set("done", false)?;
    out.set("value", value)?;
    Ok(out)
}

/// A change as JavaScript sees it: `{ index, seq, cursor, table, op, rowid, key, new, old }`,
/// rows as objects by column name (`null` when absent).
fn change_object(env: &Env, c: Change, safe_integers: bool) -> napi::Result<Object<'_>> {
    let int = |i: i64| JsValueOut { value: Value::Integer(i), safe_integers };
    let mut v = Object::new(env)?;
    v.set("index", int(i64::try_from(c.index).unwrap_or(i64::MAX)))?;
    v.set("seq", c.seq)?;
    v.set("cursor", c.cursor().to_string())?;
    v.set("table", c.table.as_str())?;
    v.set("op", c.op.as_str())?;
    match c.rowid {
        Some(r) => v.set("rowid", int(r))?,
        None => v.set("rowid", napi::bindgen_prelude::Null)?,
    }
    let key: Vec<JsValueOut> = c.key.into_iter().map(|value| JsValueOut { value, safe_integers }).collect();
    v.set("key", key)?;
    for (name, row) in [("new", c.new), ("old", c.old)] {
        match row {
            Some(row) => v.set(name, row_object(env, &c.columns, row, safe_integers)?)?,
            None => v.set(name, napi::bindgen_prelude::Null)?,
        }
    }
    Ok(v)
}

/// A change stream (`await db.changes(options)`): every committed row change after its cursor,
/// in log order, as `for await (const change of stream)`. Breaking out of the loop (or
/// `close()`) stops it; a pending `next()` keeps the process alive until a change comes or the
/// stream is closed.
#[napi]
pub struct ChangeStream {
    core: Arc<SharedChanges>,
    safe_integers: bool,
}

#[napi]
impl ChangeStream {
    /// Whether `close()` (or `return()`) was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The next change: `{ done: false, value }`, or `{ done: true }` once closed. Rejects once
    /// if the stream fails (a remote node went away: `HIQLITE_UNREACHABLE`; its embedded node
    /// was closed: `HIQLITE_SHUTDOWN`); resume with `db.changes({ from: lastChange.cursor })`.
    #[napi(ts_return_type = "Promise<IteratorResult<Change, undefined>>")]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let safe_integers = self.safe_integers;
        let core = Arc::clone(&self.core);
        settle(env, async move { Ok::<_, Failure>(core.next().await?) }, move |env, c| match c {
            None => done(env),
            Some(c) => yielded(env, change_object(env, c, safe_integers)?),
        })
    }

    /// Stop: a `next()` that waits resolves as done, and so do later ones. Does not wait;
    /// closing again does nothing.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }

    /// `close()`, as the async iterator protocol calls it when a `for await` loop is left.
    #[napi(js_name = "return", ts_return_type = "Promise<IteratorResult<Change, undefined>>")]
    pub fn finish<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        self.close();
        settle(env, async { Ok(()) }, |env, ()| done(env))
    }
}

/// A live query (`await db.watch(sql, params)`): the query's rows (an array of row objects, as
/// `db.query` gives them) at once, then each time a committed write changed them, as
/// `for await (const rows of watch)`. Closing as for `ChangeStream`.
#[napi]
pub struct Watch {
    core: Arc<SharedWatch>,
    safe_integers: bool,
}

#[napi]
impl Watch {
    /// Whether `close()` (or `return()`) was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The rows: `{ done: false, value }`, or `{ done: true }` once closed. Rejects once if the
    /// watch fails.
    #[napi(ts_return_type = "Promise<IteratorResult<Row[], undefined>>")]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        let safe_integers = self.safe_integers;
        let core = Arc::clone(&self.core);
        settle(
            env,
            async move { Ok::<_, Failure>(core.next().await?) },
            move |env, r: Option<Rows>| match r {
                None => done(env),
                Some(rows) => {
                    let arr = rows_array(env, rows, safe_integers)?;
                    let mut out = Object::new(env)?;
                    out.set("done", false)?;
                    out.set("value", arr)?;
                    Ok(out)
                }
            },
        )
    }

    /// Stop: a `next()` that waits resolves as done, and so do later ones. Does not wait.
    #[napi]
    pub fn close(&self) {
        self.core.close();
    }

    /// `close()`, as the async iterator protocol calls it when a `for await` loop is left.
    #[napi(js_name = "return", ts_return_type = "Promise<IteratorResult<Row[], undefined>>")]
    pub fn finish<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Object<'env>>> {
        self.close();
        settle(env, async { Ok(()) }, |env, ()| done(env))
    }
}

#[napi]
impl Database {
    /// Follow committed row changes (inserts, updates, deletes; triggers and foreign-key
    /// actions included) in log order, the same on every node: resolves, once subscribed, to a
    /// `ChangeStream`. `from`: a change's `cursor` to resume right after it without gaps or
    /// repeats (default: from now on); older than the node keeps rejects with
    /// `HIQLITE_CURSOR_TOO_OLD`. `tables`: only these (case-insensitive). `oldValues`: also the
    /// old row of updates and deletes.
    #[napi(ts_args_type = "options?: ChangesOptions | null", ts_return_type = "Promise<ChangeStream>")]
    pub fn changes<'env>(
        &self,
        env: &'env Env,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, ChangeStream>> {
        let prepared = (|| -> Result<_, Failure> { Ok((self.shared.client()?, change_options(options)?)) })();
        let safe_integers = self.defaults.safe_integers.unwrap_or(false);
        settle(
            env,
            async move {
                let (client, opts) = prepared?;
                Ok(SharedChanges::new(client.changes(opts).await?))
            },
            move |_, core| Ok(ChangeStream { core: Arc::new(core), safe_integers }),
        )
    }

    /// A live query: resolves to a `Watch` yielding the rows of `sql` at once, then again each
    /// time a committed write changed them (writes that arrive together give one result).
    #[napi(
        ts_args_type = "sql: string, params?: BindValue[] | NamedParameters | null",
        ts_return_type = "Promise<Watch>"
    )]
    pub fn watch<'env>(
        &self,
        env: &'env Env,
        sql: Unknown<'_>,
        params: Option<Unknown<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Watch>> {
        let prepared = (|| -> Result<_, Failure> {
            Ok((self.shared.client()?, convert::string(sql, "sql")?, convert::params_from_value(params)?))
        })();
        let safe_integers = self.defaults.safe_integers.unwrap_or(false);
        settle(
            env,
            async move {
                let (client, sql, params) = prepared?;
                Ok(SharedWatch::new(client.watch(&sql, params).await?))
            },
            move |_, core| Ok(Watch { core: Arc::new(core), safe_integers }),
        )
    }
}
