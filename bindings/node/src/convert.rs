//! JavaScript values ↔ `hiqlite::Value`, parameters, rows and option objects.
//!
//! Everything here runs on the JavaScript thread, either before work is handed to Tokio
//! (arguments) or when a promise settles (results).

use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{Array, BigInt, Buffer, Null, Object, ToNapiValue, Uint8ArraySlice, Unknown};
use napi::{sys, Env, JsValue, ValueType};
use serde::de::DeserializeOwned;

use hiqlite::{Consistency, ExecResult, Params, Rows, Value};

use crate::error::Failure;

/// Largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE: i64 = (1 << 53) - 1;

/// A SQLite value on its way to JavaScript. INTEGER becomes a number when it fits exactly,
/// else (or always, with `safe_integers`) a BigInt; BLOB becomes a Buffer.
pub struct JsValueOut {
    pub value: Value,
    pub safe_integers: bool,
}

impl ToNapiValue for JsValueOut {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        // SAFETY (all arms): `env` is the live environment napi passed to this conversion.
        unsafe {
            match val.value {
                Value::Null => Null::to_napi_value(env, Null),
                Value::Integer(i) if !val.safe_integers && (-MAX_SAFE..=MAX_SAFE).contains(&i) => {
                    f64::to_napi_value(env, i as f64)
                }
                Value::Integer(i) => BigInt::to_napi_value(env, BigInt::from(i)),
                Value::Real(x) => f64::to_napi_value(env, x),
                Value::Text(s) => String::to_napi_value(env, s),
                Value::Blob(b) => Buffer::to_napi_value(env, Buffer::from(b)),
            }
        }
    }
}

fn out(value: Value, safe_integers: bool) -> JsValueOut {
    JsValueOut { value, safe_integers }
}

/// One row as an object keyed by column name (a later column of the same name wins, as in
/// better-sqlite3).
pub(crate) fn row_object<'env>(
    env: &'env Env,
    columns: &[String],
    row: Vec<Value>,
    safe_integers: bool,
) -> napi::Result<Object<'env>> {
    let mut obj = Object::new(env)?;
    for (name, v) in columns.iter().zip(row) {
        obj.set(name, out(v, safe_integers))?;
    }
    Ok(obj)
}

/// All rows as an array of objects.
pub(crate) fn rows_array<'env>(env: &'env Env, rows: Rows, safe_integers: bool) -> napi::Result<Array<'env>> {
    let len = u32::try_from(rows.rows.len())
        .map_err(|_| napi::Error::from_reason("result has too many rows for a JavaScript array"))?;
    let mut arr = env.create_array(len)?;
    for (i, row) in (0..len).zip(rows.rows) {
        arr.set(i, row_object(env, &rows.columns, row, safe_integers)?)?;
    }
    Ok(arr)
}

/// `{ columns, rows, changes, lastInsertRowid }`, rows as arrays (`stmt.result()`).
pub(crate) fn full_result<'env>(
    env: &'env Env,
    r: ExecResult,
    safe_integers: bool,
) -> napi::Result<Object<'env>> {
    let mut obj = run_result(env, &r, safe_integers)?;
    let Rows { columns, rows, .. } = r.rows;
    let len = u32::try_from(rows.len())
        .map_err(|_| napi::Error::from_reason("result has too many rows for a JavaScript array"))?;
    let mut arr = env.create_array(len)?;
    for (i, row) in (0..len).zip(rows) {
        let mut values = env.create_array(row.len() as u32)?;
        for (j, v) in (0u32..).zip(row) {
            values.set(j, out(v, safe_integers))?;
        }
        arr.set(i, values)?;
    }
    obj.set("columns", columns)?;
    obj.set("rows", arr)?;
    Ok(obj)
}

/// `{ changes, lastInsertRowid, logIndex }`.
pub(crate) fn run_result<'env>(
    env: &'env Env,
    r: &ExecResult,
    safe_integers: bool,
) -> napi::Result<Object<'env>> {
    let mut obj = Object::new(env)?;
    obj.set("changes", r.rows_affected as f64)?;
    obj.set("lastInsertRowid", out(Value::Integer(r.last_insert_id), safe_integers))?;
    obj.set("logIndex", log_index_out(r.log_index, safe_integers))?;
    Ok(obj)
}

/// A Raft log index for JavaScript as INTEGERs are (`null` when there is none). Indexes
/// count entries, so they never come near `i64::MAX`; saturating is only a formality.
pub(crate) fn log_index_out(index: Option<u64>, safe_integers: bool) -> JsValueOut {
    let value = index.map_or(Value::Null, |i| Value::Integer(i64::try_from(i).unwrap_or(i64::MAX)));
    out(value, safe_integers)
}

/// A read's `minIndex`: a write's `logIndex`, a non-negative integer `number` (exact, at most
/// 2^53 − 1) or `bigint` (at most 2^64 − 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MinIndex(pub u64);

impl<'de> serde::Deserialize<'de> for MinIndex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WANT: &str = "a log index: a non-negative integer (a write's logIndex)";
        impl serde::de::Visitor<'_> for V {
            type Value = MinIndex;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(WANT)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<MinIndex, E> {
                Ok(MinIndex(v))
            }
            // Integral numbers (and negative bigints) arrive here; positive bigints as u64.
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<MinIndex, E> {
                if v > MAX_SAFE {
                    return Err(E::custom(format!(
                        "minIndex {v} is beyond 2^53 - 1, where numbers are not exact: pass a bigint"
                    )));
                }
                u64::try_from(v)
                    .map(MinIndex)
                    .map_err(|_| E::custom(format!("minIndex {v} is negative: {WANT}")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<MinIndex, E> {
                if v.fract() == 0.0 && (0.0..=MAX_SAFE as f64).contains(&v) {
                    Ok(MinIndex(v as u64))
                } else {
                    Err(E::custom(format!("minIndex {v} is not {WANT}")))
                }
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<MinIndex, E> {
                Err(E::custom(format!("minIndex {v} is not {WANT}")))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<MinIndex, E> {
                Err(E::custom(format!("minIndex {v} does not fit 64 bits: {WANT}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JavaScript number as SQLite sees it: integral values that are exact become INTEGER,
/// everything else REAL.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() <= MAX_SAFE as f64 {
        Value::Integer(x as i64)
    } else {
        Value::Real(x)
    }
}

fn describe(t: ValueType) -> &'static str {
    match t {
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::Symbol => "a symbol",
        ValueType::External => "an external",
        _ => "a value of an unsupported type",
    }
}

/// One parameter value: null/undefined → NULL, boolean → 0/1, number → INTEGER or REAL,
/// bigint → INTEGER (must fit 64 bits), string → TEXT, Buffer/Uint8Array → BLOB.
pub(crate) fn value_from_js(v: Unknown<'_>) -> Result<Value, Failure> {
    let t = v.get_type()?;
    // SAFETY (casts): each cast matches the type `get_type` just reported.
    Ok(match t {
        ValueType::Null | ValueType::Undefined => Value::Null,
        ValueType::Boolean => Value::Integer(i64::from(unsafe { v.cast::<bool>() }?)),
        ValueType::Number => number(unsafe { v.cast::<f64>() }?),
        ValueType::String => Value::Text(unsafe { v.cast::<String>() }?),
        ValueType::BigInt => {
            let b = unsafe { v.cast::<BigInt>() }?;
            let (i, lossless) = b.get_i128();
            match i64::try_from(i) {
                Ok(i) if lossless => Value::Integer(i),
                _ => {
                    return Err(Failure::invalid(
                        "a BigInt parameter does not fit in a 64-bit signed integer",
                    ))
                }
            }
        }
        ValueType::Object if v.is_buffer()? || v.is_typedarray()? => {
            // Buffer is a Uint8Array; other typed arrays are refused rather than guessed at.
            let bytes = unsafe { v.cast::<Uint8ArraySlice>() }
                .map_err(|_| Failure::invalid("only Buffer and Uint8Array bind as BLOB"))?;
            Value::Blob(bytes.to_vec())
        }
        other => {
            let what = if v.is_date()? { "a Date" } else { describe(other) };
            return Err(Failure::invalid(format!(
                "cannot bind {what} as a parameter: use null, a boolean, number, bigint, string, Buffer or Uint8Array"
            )));
        }
    })
}

/// True for `{...}` (or `Object.create(null)`): its prototype is `Object.prototype` or none.
/// Arrays, Buffers, Dates, Maps and class instances are not named parameters.
fn is_plain_object(v: &Unknown<'_>) -> Result<bool, Failure> {
    if v.get_type()? != ValueType::Object || v.is_array()? {
        return Ok(false);
    }
    // SAFETY: checked to be an object.
    let proto = unsafe { v.cast::<Object>() }?.get_prototype()?;
    Ok(match proto.get_type()? {
        ValueType::Null => true,
        // SAFETY: a prototype that is not null is an object.
        ValueType::Object => {
            unsafe { proto.cast::<Object>() }?.get_prototype()?.get_type()? == ValueType::Null
        }
        _ => false,
    })
}

fn named(obj: Unknown<'_>) -> Result<Params, Failure> {
    // SAFETY: the caller checked that `obj` is an object.
    let obj = unsafe { obj.cast::<Object>() }?;
    let keys = Object::keys(&obj)?;
    let mut pairs = Vec::with_capacity(keys.len());
    for k in keys {
        let v: Unknown = obj.get(&k)?.ok_or_else(|| Failure::invalid(format!("parameter {k} vanished")))?;
        // `core` tries `:`, `@` and `$` for a bare name, so `{ x: 1 }` binds `@x`, `:x` or `$x`.
        pairs.push((k, value_from_js(v)?));
    }
    Ok(if pairs.is_empty() { Params::None } else { Params::Named(pairs) })
}

fn positional(arr: &Array<'_>) -> Result<Params, Failure> {
    let mut values = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let v: Unknown =
            arr.get(i)?.ok_or_else(|| Failure::invalid("parameter list changed while reading"))?;
        if is_plain_object(&v)? || v.is_array()? {
            return Err(Failure::invalid(
                "named parameters are one object passed alone; positional parameters are values",
            ));
        }
        values.push(value_from_js(v)?);
    }
    Ok(if values.is_empty() { Params::None } else { Params::Positional(values) })
}

/// Parameters from a statement method's arguments, as better-sqlite3 takes them:
/// `(1, 'a')`, `([1, 'a'])` or `({ x: 1 })`.
pub(crate) fn params_from_args(args: Unknown<'_>) -> Result<Params, Failure> {
    if !args.is_array()? {
        return Err(Failure::invalid("internal: statement arguments must arrive as an array"));
    }
    // SAFETY: checked to be an array.
    let arr = unsafe { args.cast::<Array>() }?;
    if arr.len() == 1 {
        if let Some(first) = arr.get::<Unknown>(0)? {
            if first.is_array()? {
                // SAFETY: checked to be an array.
                return positional(&unsafe { first.cast::<Array>() }?);
            }
            if is_plain_object(&first)? {
                return named(first);
            }
        }
    }
    positional(&arr)
}

/// Parameters given as one value: an array (positional), an object (named) or nothing.
pub(crate) fn params_from_value(v: Option<Unknown<'_>>) -> Result<Params, Failure> {
    let Some(v) = v else { return Ok(Params::None) };
    match v.get_type()? {
        ValueType::Null | ValueType::Undefined => Ok(Params::None),
        _ if v.is_array()? => positional(&unsafe { v.cast::<Array>() }?),
        _ if is_plain_object(&v)? => named(v),
        _ => Err(Failure::invalid("parameters must be an array (positional) or an object (named)")),
    }
}

/// A string argument.
pub(crate) fn string(v: Unknown<'_>, what: &str) -> Result<String, Failure> {
    if v.get_type()? != ValueType::String {
        return Err(Failure::invalid(format!("{what} must be a string")));
    }
    // SAFETY: checked to be a string.
    Ok(unsafe { v.cast::<String>() }?)
}

/// An optional number argument (`undefined`/`null` → `None`).
pub(crate) fn optional_number(v: Option<Unknown<'_>>, what: &str) -> Result<Option<f64>, Failure> {
    let Some(v) = v else { return Ok(None) };
    match v.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        // SAFETY: checked to be a number.
        ValueType::Number => Ok(Some(unsafe { v.cast::<f64>() }?)),
        _ => Err(Failure::invalid(format!("{what} must be a number"))),
    }
}

/// Deserialize an options object (`undefined`/`null` → defaults).
pub(crate) fn options<T: DeserializeOwned + Default>(
    env: &Env,
    v: Option<Unknown<'_>>,
    what: &str,
) -> Result<T, Failure> {
    match v {
        None => Ok(T::default()),
        Some(v) if matches!(v.get_type()?, ValueType::Null | ValueType::Undefined) => Ok(T::default()),
        Some(v) if v.get_type()? != ValueType::Object => {
            Err(Failure::invalid(format!("{what} must be an object")))
        }
        Some(v) => env
            .from_js_value::<T, _>(v)
            .map_err(|e| Failure::invalid(format!("invalid {what}: {}", e.reason))),
    }
}

/// A consistency level from JavaScript, by the core's one name per level (`local`, `leader`,
/// `linearizable`, any case); anything else fails with the core's message.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct JsConsistency(Consistency);

impl TryFrom<String> for JsConsistency {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map(JsConsistency).map_err(|e| match e {
            hiqlite::Error::InvalidRequest(m) => m,
            other => other.to_string(),
        })
    }
}

impl From<JsConsistency> for Consistency {
    fn from(c: JsConsistency) -> Self {
        c.0
    }
}

/// How a read is made: `StatementOptions`, `QueryOptions` and the database defaults.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ReadOptions {
    pub consistency: Option<JsConsistency>,
    pub cache: Option<bool>,
    pub cache_ttl_ms: Option<f64>,
    pub safe_integers: Option<bool>,
    /// Read locally once the node applied this log index (`Client::query_at`).
    pub min_index: Option<MinIndex>,
}

impl ReadOptions {
    /// `minIndex` reads locally and uncached: these options may not ask for anything else.
    pub(crate) fn check_min_index(&self) -> Result<(), Failure> {
        if self.min_index.is_none() {
            return Ok(());
        }
        if self.consistency.is_some_and(|c| Consistency::from(c) != Consistency::Local) {
            return Err(Failure::invalid(
                "minIndex reads locally: it goes with consistency 'local' only (leader and linearizable \
                 reads see every acknowledged write already)",
            ));
        }
        if self.cache == Some(true) || self.cache_ttl_ms.is_some() {
            return Err(Failure::invalid("minIndex does not go with the query cache (cache, cacheTtlMs)"));
        }
        Ok(())
    }

    /// `self`'s settings, falling back to `base`'s.
    pub(crate) fn over(self, base: ReadOptions) -> ReadOptions {
        ReadOptions {
            consistency: self.consistency.or(base.consistency),
            cache: self.cache.or(base.cache),
            cache_ttl_ms: self.cache_ttl_ms.or(base.cache_ttl_ms),
            safe_integers: self.safe_integers.or(base.safe_integers),
            min_index: self.min_index.or(base.min_index),
        }
    }

    /// The TTL of a cached read; a TTL alone also asks for the cache.
    pub(crate) fn cache_ttl(&self) -> Result<Option<Option<std::time::Duration>>, Failure> {
        let ttl = match self.cache_ttl_ms {
            Some(ms) if !(ms.is_finite() && ms > 0.0) => {
                return Err(Failure::invalid("cacheTtlMs must be a positive number of milliseconds"))
            }
            Some(ms) => Some(std::time::Duration::from_secs_f64(ms / 1000.0)),
            None => None,
        };
        Ok(match (self.cache, ttl) {
            (Some(false), _) => None,
            (Some(true), t) => Some(t),
            (None, Some(t)) => Some(Some(t)),
            (None, None) => None,
        })
    }
}

/// `Database.open` options.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OpenOptions {
    pub node: Option<serde_json::Value>,
    pub consistency: Option<JsConsistency>,
    pub safe_integers: Option<bool>,
    pub read_your_writes: Option<bool>,
}

/// `Database.connect` options.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConnectOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub consistency: Option<JsConsistency>,
    pub discover: Option<bool>,
    pub ca_cert_pem: Option<String>,
    pub safe_integers: Option<bool>,
    pub read_your_writes: Option<bool>,
}

/// `db.batch` options.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BatchOptions {
    pub transaction: Option<bool>,
}

/// A duration given in milliseconds by JavaScript.
pub(crate) fn millis(ms: f64, what: &str) -> Result<std::time::Duration, Failure> {
    if (0.0..=1e12).contains(&ms) {
        Ok(std::time::Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(Failure::invalid(format!("{what} must be a non-negative number of milliseconds")))
    }
}

/// `dataDir` → `data_dir`. `NodeConfig`'s keys are snake_case; JavaScript's are camelCase.
/// Keys already in snake_case pass unchanged.
fn snake_case(key: &str) -> String {
    let mut s = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn camel_case(key: &str) -> String {
    let mut s = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            s.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            s.push(c);
        }
    }
    s
}

/// Rename object keys to snake_case, remembering what the caller wrote for error messages.
fn snake_keys(v: serde_json::Value, written: &mut Vec<(String, String)>) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let snake = snake_case(&k);
                    if snake != k {
                        written.push((snake.clone(), k));
                    }
                    (snake, snake_keys(v, written))
                })
                .collect(),
        ),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(|v| snake_keys(v, written)).collect())
        }
        other => other,
    }
}

/// serde names fields as `NodeConfig` spells them; name them as JavaScript does.
fn js_field_names(message: &str, written: &[(String, String)]) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 0 {
                return part.to_owned();
            }
            let js = written.iter().find(|(snake, _)| snake == part).map(|(_, k)| k.clone());
            format!("`{}`", js.unwrap_or_else(|| camel_case(part)))
        })
        .collect()
}

/// The `node` option as a `NodeConfig`; unknown keys are errors that name the key.
pub(crate) fn node_config(v: serde_json::Value) -> Result<hiqlite::NodeConfig, Failure> {
    if !v.is_object() {
        return Err(Failure::from(hiqlite::Error::Config(
            "`node` must be an object of node settings".into(),
        )));
    }
    let mut written = Vec::new();
    let v = snake_keys(v, &mut written);
    serde_json::from_value(v).map_err(|e| {
        let message = js_field_names(&e.to_string(), &written);
        Failure::from(hiqlite::Error::Config(format!("invalid node settings: {message}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_bind_as_integer_only_when_exact() {
        assert_eq!(number(3.0), Value::Integer(3));
        assert_eq!(number(-0.0), Value::Integer(0));
        assert_eq!(number(MAX_SAFE as f64), Value::Integer(MAX_SAFE));
        assert_eq!(number(2f64.powi(60)), Value::Real(2f64.powi(60)));
        assert_eq!(number(1.5), Value::Real(1.5));
        assert!(matches!(number(f64::NAN), Value::Real(x) if x.is_nan()));
        assert_eq!(number(f64::INFINITY), Value::Real(f64::INFINITY));
    }

    #[test]
    fn node_settings_accept_camel_and_snake_case() {
        let cfg = node_config(serde_json::json!({
            "nodeId": 2,
            "data_dir": "/tmp/x",
            "peers": [{ "id": 2, "raftAddr": "127.0.0.1:1", "apiAddr": "127.0.0.1:2" }],
            "cache": { "ttlMs": 5 },
            "electionTimeoutMinMs": 700,
        }))
        .expect("valid settings");
        assert_eq!(cfg.node_id, 2);
        assert_eq!(cfg.data_dir, std::path::PathBuf::from("/tmp/x"));
        assert_eq!(cfg.peers[0].raft_addr, "127.0.0.1:1");
        assert_eq!(cfg.cache.ttl_ms, 5);
        assert_eq!(cfg.election_timeout_min_ms, 700);
        let err = node_config(serde_json::json!({ "nodeID": 1 })).expect_err("unknown key");
        assert_eq!(err.code, "HIQLITE_CONFIG");
        assert!(err.message.contains("unknown field `nodeID`"), "{}", err.message);
        assert!(err.message.contains("`dataDir`"), "{}", err.message);
    }

    #[test]
    fn cache_options() {
        let o = ReadOptions { cache_ttl_ms: Some(1500.0), ..Default::default() };
        assert_eq!(o.cache_ttl().ok(), Some(Some(Some(std::time::Duration::from_millis(1500)))));
        let o = ReadOptions { cache: Some(true), ..Default::default() };
        assert_eq!(o.cache_ttl().ok(), Some(Some(None)));
        let o = ReadOptions { cache: Some(false), cache_ttl_ms: Some(5.0), ..Default::default() };
        assert_eq!(o.cache_ttl().ok(), Some(None));
        let o = ReadOptions { cache_ttl_ms: Some(-1.0), ..Default::default() };
        assert!(o.cache_ttl().is_err());
    }
}
