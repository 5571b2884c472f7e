//! rqlite's wire format as the server speaks it: request bodies parsed into statements, and
//! results rendered exactly as rqlite does (zero fields omitted, `values` absent for empty results,
//! BLOBs base64 unless `blob_array`, associative form, per-statement `error`). Pure functions, no I/O.

use base64::Engine;
use serde_json::{json, Map, Value as J};

use crate::error::Error;
use crate::value::{ExecResult, Params, Rows, Statement, Value};

/// Output options taken from the query string (flags are enabled by presence).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Format {
    pub associative: bool,
    pub blob_array: bool,
    pub timings: bool,
    /// hiqlite's own flag: per-statement errors also carry the exact error (`hiqlite_error`),
    /// with SQLite's extended result code, for hiqlite's remote client.
    pub hiqlite_errors: bool,
}

/// Parse a request body: a JSON array of `"sql"`, `["sql", p1, ...]` or `["sql", {"name": v}]`;
/// a `text/plain` body is one SQL string (possibly several `;`-separated statements).
/// Empty statements are skipped.
pub(crate) fn parse_statements(body: &[u8], plain_text: bool) -> Result<Vec<Statement>, String> {
    if plain_text {
        let sql = std::str::from_utf8(body).map_err(|_| "request body is not valid UTF-8".to_string())?;
        return Ok(if sql.trim().is_empty() { Vec::new() } else { vec![Statement::from(sql)] });
    }
    let v: J = serde_json::from_slice(body).map_err(|e| format!("invalid JSON in request body: {e}"))?;
    let J::Array(items) = v else { return Err("request body must be a JSON array of statements".into()) };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            J::String(sql) => out.push(Statement::from(sql)),
            J::Array(parts) => {
                let mut it = parts.into_iter();
                let Some(J::String(sql)) = it.next() else {
                    return Err(
                        "a parameterized statement must be an array starting with its SQL string".into()
                    );
                };
                let rest: Vec<J> = it.collect();
                let params = match rest.as_slice() {
                    [] => Params::None,
                    [J::Object(map)] => Params::Named(
                        map.iter()
                            .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
                            .collect::<Result<_, String>>()?,
                    ),
                    vals => {
                        Params::Positional(vals.iter().map(Value::from_json).collect::<Result<_, String>>()?)
                    }
                };
                out.push(Statement { sql, params });
            }
            other => return Err(format!("a statement must be a string or an array, not {other}")),
        }
    }
    out.retain(|s| !s.sql.trim().is_empty());
    Ok(out)
}

fn render_value(v: &Value, f: Format) -> J {
    match v {
        Value::Blob(b) if !f.blob_array => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        // JSON has no infinity or NaN: rqlite's clients get null; hiqlite's own client (which
        // asks for `hiqlite_errors`) gets the value back exactly.
        Value::Real(x) if !x.is_finite() && f.hiqlite_errors => {
            json!({ "real": if x.is_nan() { "nan" } else if *x > 0.0 { "inf" } else { "-inf" } })
        }
        other => other.to_json(),
    }
}

fn time_field(o: &mut Map<String, J>, f: Format, secs: f64) {
    if f.timings {
        o.insert("time".into(), json!(secs));
    }
}

/// A value as rqlite's driver reads it from a column declared `decl` (lower case): integers
/// and text in `date`/`datetime`/`timestamp` columns become RFC 3339 times, integers in
/// `boolean` columns `true`/`false` (rqlite/go-sqlite3 `sqlite3.go`, `nextSyncLocked`: exact
/// declared-type names). hiqlite's own client (`hiqlite_errors`) gets what SQLite stored.
fn render_typed(v: &Value, decl: &str, f: Format) -> J {
    if !f.hiqlite_errors {
        match (decl, v) {
            ("date" | "datetime" | "timestamp", Value::Integer(i)) => {
                if let Some(t) = super::gotime::time_of_integer(*i) {
                    return J::String(t);
                }
            }
            ("date" | "datetime" | "timestamp", Value::Text(t)) => {
                return J::String(super::gotime::time_of_text(t));
            }
            ("boolean", Value::Integer(i)) => return J::Bool(*i > 0),
            _ => {}
        }
    }
    render_value(v, f)
}

/// The `types` rqlite sends: a column without a declared type (an expression, `count(*)`)
/// takes the type of its value in the first row: `integer`, `real`, `text`, `blob`; NULL (or no
/// row) leaves it `""` (rqlite/rqlite `db/db.go`, `populateEmptyTypes`, run once on the first
/// row). hiqlite's own client (`hiqlite_errors`) gets the declared types as SQLite has them.
fn wire_types(rows: &Rows, f: Format) -> Vec<String> {
    let mut types = rows.types.clone();
    if f.hiqlite_errors {
        return types;
    }
    if let Some(first) = rows.rows.first() {
        for (t, v) in types.iter_mut().zip(first) {
            if t.is_empty() {
                *t = match v {
                    Value::Integer(_) => "integer",
                    Value::Real(_) => "real",
                    Value::Text(_) => "text",
                    Value::Blob(_) => "blob",
                    Value::Null => "",
                }
                .to_owned();
            }
        }
    }
    types
}

/// One query result in rqlite's form.
pub(crate) fn query_result(rows: &Rows, f: Format, secs: f64) -> J {
    let mut o = Map::new();
    let wire = wire_types(rows, f);
    if f.associative {
        let types: Map<String, J> =
            rows.columns.iter().cloned().zip(wire.iter().map(|t| J::String(t.clone()))).collect();
        o.insert("types".into(), J::Object(types));
        let list: Vec<J> = rows
            .rows
            .iter()
            .map(|r| {
                J::Object(
                    rows.columns
                        .iter()
                        .cloned()
                        .zip(r.iter().zip(&rows.types).map(|(v, t)| render_typed(v, t, f)))
                        .collect(),
                )
            })
            .collect();
        o.insert("rows".into(), J::Array(list));
    } else {
        o.insert("columns".into(), json!(rows.columns));
        o.insert("types".into(), json!(wire));
        if !rows.rows.is_empty() {
            let vals: Vec<J> = rows
                .rows
                .iter()
                .map(|r| {
                    J::Array(
                        r.iter()
                            .enumerate()
                            .map(|(i, v)| render_typed(v, rows.types.get(i).map_or("", String::as_str), f))
                            .collect(),
                    )
                })
                .collect();
            o.insert("values".into(), J::Array(vals));
        }
    }
    time_field(&mut o, f, secs);
    J::Object(o)
}

/// One write result in rqlite's form (`rows: null` in associative `/db/request` answers).
pub(crate) fn exec_result(r: &ExecResult, f: Format, secs: f64, request: bool) -> J {
    if request && !r.rows.columns.is_empty() {
        let mut q = query_result(&r.rows, f, secs);
        // rqlite answers a write's rows without its counters; hiqlite's own client (which asks
        // for `hiqlite_errors`) gets both, as SQLite gives both.
        if let (true, Some(o)) = (f.hiqlite_errors, q.as_object_mut()) {
            if r.last_insert_id != 0 {
                o.insert("last_insert_id".into(), json!(r.last_insert_id));
            }
            if r.rows_affected != 0 {
                o.insert("rows_affected".into(), json!(r.rows_affected));
            }
        }
        return q;
    }
    // rqlite reports its connection's counters (see `ExecResult::rqlite_counters`); hiqlite's
    // own client gets SQLite's per-statement values.
    let (lid, changes) = match (f.hiqlite_errors, r.rqlite_counters) {
        (false, Some(c)) => c,
        _ => (r.last_insert_id, r.rows_affected),
    };
    let mut o = Map::new();
    if lid != 0 {
        o.insert("last_insert_id".into(), json!(lid));
    }
    if changes != 0 {
        o.insert("rows_affected".into(), json!(changes));
    }
    if request && f.associative {
        o.insert("rows".into(), J::Null);
    }
    time_field(&mut o, f, secs);
    J::Object(o)
}

/// A per-statement error: SQLite's own message, as rqlite reports it.
pub(crate) fn error_result(e: &Error, f: Format) -> J {
    let msg = match e {
        Error::Sql { message, .. } => message.clone(),
        other => other.to_string(),
    };
    if f.hiqlite_errors {
        json!({ "error": msg, "hiqlite_error": e })
    } else {
        json!({ "error": msg })
    }
}

/// The whole answer: `{"results": [...], "time": ...}`.
pub(crate) fn envelope(results: Vec<J>, f: Format, secs: f64) -> J {
    let mut o = Map::new();
    o.insert("results".into(), J::Array(results));
    time_field(&mut o, f, secs);
    J::Object(o)
}

/// Parse a Go-style duration (`500ms`, `2s`, `1m30s`, `1h`, `250us`).
pub(crate) fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = String::from(c);
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() || !any || !total.is_finite() || total < 0.0 {
        return None;
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rqlite_statement_forms() {
        let s = parse_statements(
            br#"["CREATE TABLE t (x)", ["INSERT INTO t VALUES (?, ?)", 1, 2.5], ["INSERT INTO t VALUES (:a)", {"a": [1, 2]}], ""]"#,
            false,
        )
        .expect("valid");
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].params, Params::Positional(vec![Value::Integer(1), Value::Real(2.5)]));
        assert_eq!(s[2].params, Params::Named(vec![("a".into(), Value::Blob(vec![1, 2]))]));
        for bad in [&b"{"[..], b"{}", b"[1]", b"[[1]]", b"[[\"x\", {\"a\": {}}]]", b"[[\"x\", [300]]]"] {
            assert!(parse_statements(bad, false).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_statements(b"\xff\xfe", true).is_err());
        assert_eq!(parse_statements(b"SELECT 1; SELECT 2", true).expect("plain").len(), 1);
    }

    #[test]
    fn renders_exactly_like_rqlite() {
        let rows = Rows {
            columns: vec!["id".into(), "b".into()],
            types: vec!["integer".into(), "blob".into()],
            rows: vec![vec![Value::Integer(1), Value::Blob(vec![0xde, 0xad])]],
        };
        let f = Format::default();
        assert_eq!(
            query_result(&rows, f, 0.0),
            json!({"columns": ["id", "b"], "types": ["integer", "blob"], "values": [[1, "3q0="]]})
        );
        let fa = Format { associative: true, blob_array: true, ..Format::default() };
        assert_eq!(
            query_result(&rows, fa, 0.0),
            json!({"types": {"id": "integer", "b": "blob"}, "rows": [{"id": 1, "b": [222, 173]}]})
        );
        let empty = Rows { columns: vec!["id".into()], types: vec!["integer".into()], rows: vec![] };
        assert_eq!(query_result(&empty, f, 0.0), json!({"columns": ["id"], "types": ["integer"]}));
        assert_eq!(exec_result(&ExecResult::default(), f, 0.0, false), json!({}));
        assert_eq!(
            exec_result(
                &ExecResult { rows_affected: 1, last_insert_id: 7, ..Default::default() },
                f,
                0.0,
                false
            ),
            json!({"last_insert_id": 7, "rows_affected": 1})
        );
        assert_eq!(exec_result(&ExecResult::default(), fa, 0.0, true), json!({"rows": null}));
        let ft = Format { timings: true, ..f };
        assert!(envelope(vec![], ft, 0.5)["time"].is_number());
    }

    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        for bad in ["", "5", "ms", "5x", "-1s", "1e30h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512), plain in any::<bool>()) {
            let _ = parse_statements(&body, plain);
        }

        /// Arbitrary JSON values never panic the parser, and accepted ones keep their SQL.
        #[test]
        fn arbitrary_json(v in arb_json()) {
            let text = v.to_string();
            if let Ok(stmts) = parse_statements(text.as_bytes(), false) {
                prop_assert!(stmts.iter().all(|s| !s.sql.trim().is_empty()));
            }
        }
    }

    fn arb_json() -> impl Strategy<Value = J> {
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            ".{0,12}".prop_map(J::String),
            Just(json!("SELECT 1")),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| J::Object(m.into_iter().collect())),
            ]
        })
    }
}
