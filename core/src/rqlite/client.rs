//! rqlite's wire format as a client sees it: statements encoded as a request body, and answers
//! decoded: per-statement results with exact types, error answers (HTTP status + body) as
//! [`Error`]s, `/nodes` and `/status`. Pure functions, no I/O.

use std::time::Duration;

use serde_json::Value as J;

use crate::error::{Error, Result};
use crate::status::{NodeInfo, Status};
use crate::value::{ExecResult, Params, Rows, Statement, Value};

/// The HTTP status codes the answers are told apart by.
mod status {
    pub const REQUEST_TIMEOUT: u16 = 408;
    pub const UNAUTHORIZED: u16 = 401;
    pub const FORBIDDEN: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const SERVICE_UNAVAILABLE: u16 = 503;
    pub const GATEWAY_TIMEOUT: u16 = 504;
}

/// The error an HTTP error answer stands for: hiqlite's exact error when the server sent it,
/// otherwise what the status code means in rqlite's API.
pub(crate) fn error_from_status(status: u16, body: &[u8]) -> Error {
    let v: Option<J> = serde_json::from_slice(body).ok();
    if let Some(e) = v.as_ref().and_then(|v| v.get("hiqlite_error")).cloned() {
        if let Ok(e) = serde_json::from_value::<Error>(e) {
            return e;
        }
    }
    let msg = v
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(J::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    match status {
        status::UNAUTHORIZED | status::FORBIDDEN => Error::Unauthorized(msg),
        status::SERVICE_UNAVAILABLE => Error::NoLeader(msg),
        status::REQUEST_TIMEOUT | status::GATEWAY_TIMEOUT => Error::Timeout(msg),
        status::NOT_FOUND => {
            Error::InvalidRequest(format!("endpoint not found ({msg}): is this a hiqlite or rqlite server?"))
        }
        400..=499 => Error::InvalidRequest(msg),
        // 5xx (and anything else that is not a success): the server failed the request.
        s => Error::Server(format!("HTTP {s}: {msg}")),
    }
}

/// A parameter as rqlite's JSON takes it ([`Value::to_json`]), refusing what JSON cannot carry
/// rather than sending it as null.
pub(crate) fn value_to_json(v: &Value) -> Result<J> {
    match v {
        Value::Real(f) if !f.is_finite() => {
            Err(Error::InvalidRequest(format!("parameter {f} cannot be sent: JSON has no NaN or infinity")))
        }
        other => Ok(other.to_json()),
    }
}

pub(crate) fn encode_statements(stmts: &[Statement]) -> Result<Vec<u8>> {
    let mut arr = Vec::with_capacity(stmts.len());
    for s in stmts {
        let mut parts = vec![J::String(s.sql.clone())];
        match &s.params {
            Params::None => {}
            Params::Positional(v) => {
                for x in v {
                    parts.push(value_to_json(x)?);
                }
            }
            Params::Named(v) => {
                // rqlite names parameters without their prefix; the server adds it back.
                let mut map = serde_json::Map::new();
                for (k, x) in v {
                    map.insert(k.trim_start_matches([':', '@', '$']).to_string(), value_to_json(x)?);
                }
                parts.push(J::Object(map));
            }
        }
        arr.push(J::Array(parts));
    }
    serde_json::to_vec(&J::Array(arr))
        .map_err(|e| Error::InvalidRequest(format!("cannot encode statements: {e}")))
}

/// One statement's answer.
pub(crate) enum Answer {
    /// A write's counts.
    Exec(ExecResult),
    /// A read's rows.
    Rows(Rows),
}

pub(crate) fn real_affinity(decl: &str) -> bool {
    let d = decl.to_ascii_uppercase();
    !d.contains("INT") && (d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB"))
}

pub(crate) fn json_to_value(v: &J, decl: &str) -> Result<Value> {
    match v {
        // Go renders 1.0 as 1: a REAL column says it is a float.
        J::Number(n) if n.is_i64() && real_affinity(decl) => {
            Ok(Value::Real(n.as_f64().ok_or_else(|| Error::Decode(format!("number {n} out of range")))?))
        }
        // A hiqlite server's non-finite REAL.
        J::Object(o) => match o.get("real").and_then(J::as_str) {
            Some("inf") => Ok(Value::Real(f64::INFINITY)),
            Some("-inf") => Ok(Value::Real(f64::NEG_INFINITY)),
            Some("nan") => Ok(Value::Real(f64::NAN)),
            _ => Err(Error::Decode("unexpected object as a column value".into())),
        },
        other => Value::from_json(other).map_err(Error::Decode),
    }
}

pub(crate) fn parse_results(body: &[u8]) -> Result<Vec<Result<Answer>>> {
    let v: J = serde_json::from_slice(body)
        .map_err(|e| Error::Decode(format!("the server's answer is not JSON: {e}")))?;
    if let Some(e) = v.get("error").and_then(J::as_str) {
        return Err(Error::Server(e.to_string()));
    }
    let Some(results) = v.get("results").and_then(J::as_array) else {
        return Err(Error::Decode("the server's answer has no `results` array".into()));
    };
    results.iter().map(parse_one).collect()
}

pub(crate) fn parse_one(r: &J) -> Result<Result<Answer>> {
    if let Some(msg) = r.get("error").and_then(J::as_str) {
        let e = r
            .get("hiqlite_error")
            .and_then(|e| serde_json::from_value::<Error>(e.clone()).ok())
            .unwrap_or_else(|| Error::Sql { code: sqlite_code_of(msg), message: msg.to_string() });
        return Ok(Err(e));
    }
    if let Some(cols) = r.get("columns").and_then(J::as_array) {
        let columns: Vec<String> = cols.iter().map(|c| c.as_str().unwrap_or_default().to_string()).collect();
        let types: Vec<String> = r
            .get("types")
            .and_then(J::as_array)
            .map(|t| t.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_else(|| vec![String::new(); columns.len()]);
        let mut rows = Vec::new();
        if let Some(vals) = r.get("values").and_then(J::as_array) {
            for row in vals {
                let row = row.as_array().ok_or_else(|| Error::Decode("a row is not an array".into()))?;
                let mut out = Vec::with_capacity(row.len());
                for (i, x) in row.iter().enumerate() {
                    // `blob_array` is always asked for (rqlite 8 and hiqlite honour it), so a
                    // JSON string is TEXT even in a column declared BLOB.
                    out.push(json_to_value(x, types.get(i).map_or("", String::as_str))?);
                }
                rows.push(out);
            }
        }
        let rows = Rows { columns, types, rows };
        // A hiqlite server also gives a write's counters beside its rows (`RETURNING`).
        let rows_affected = r.get("rows_affected").and_then(J::as_u64);
        let last_insert_id = r.get("last_insert_id").and_then(J::as_i64);
        if rows_affected.is_some() || last_insert_id.is_some() {
            return Ok(Ok(Answer::Exec(ExecResult {
                rows_affected: rows_affected.unwrap_or(0),
                last_insert_id: last_insert_id.unwrap_or(0),
                rows,
                rqlite_counters: None,
                log_index: None,
            })));
        }
        return Ok(Ok(Answer::Rows(rows)));
    }
    Ok(Ok(Answer::Exec(ExecResult {
        rows_affected: r.get("rows_affected").and_then(J::as_u64).unwrap_or(0),
        last_insert_id: r.get("last_insert_id").and_then(J::as_i64).unwrap_or(0),
        rows: Rows::default(),
        rqlite_counters: None,
        log_index: None,
    })))
}

/// SQLite's extended code for a message from a server that sends only the message (rqlite).
pub(crate) fn sqlite_code_of(msg: &str) -> i32 {
    use crate::error::codes as f;
    let table: &[(&str, i32)] = &[
        ("UNIQUE constraint failed", f::SQLITE_CONSTRAINT_UNIQUE),
        ("NOT NULL constraint failed", f::SQLITE_CONSTRAINT_NOTNULL),
        ("FOREIGN KEY constraint failed", f::SQLITE_CONSTRAINT_FOREIGNKEY),
        ("CHECK constraint failed", f::SQLITE_CONSTRAINT_CHECK),
        ("PRIMARY KEY", f::SQLITE_CONSTRAINT_PRIMARYKEY),
        ("constraint failed", f::SQLITE_CONSTRAINT),
        ("datatype mismatch", f::SQLITE_MISMATCH),
        ("database is locked", f::SQLITE_BUSY),
        ("attempt to write a readonly database", f::SQLITE_READONLY),
        ("out of range", f::SQLITE_RANGE),
    ];
    table.iter().find(|(p, _)| msg.contains(p)).map_or(f::SQLITE_ERROR, |(_, c)| *c)
}

pub(crate) fn id_of(v: &J) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// `/nodes` in both shapes: `{"nodes": [...]}` (`ver=2`) and `{"<id>": {...}}` (legacy).
pub(crate) fn parse_nodes(body: &[u8]) -> Result<Vec<NodeInfo>> {
    let v: J = serde_json::from_slice(body).map_err(|e| Error::Decode(format!("/nodes answer: {e}")))?;
    let list: Vec<(Option<u64>, &J)> = match v.get("nodes").and_then(J::as_array) {
        Some(a) => a.iter().map(|n| (None, n)).collect(),
        None => v
            .as_object()
            .ok_or_else(|| Error::Decode("/nodes answer is not an object".into()))?
            .iter()
            .map(|(k, n)| (k.parse().ok(), n))
            .collect(),
    };
    let mut out = Vec::new();
    for (key, n) in list {
        let Some(api) = n.get("api_addr").and_then(J::as_str) else { continue };
        out.push(NodeInfo {
            id: n.get("id").and_then(id_of).or(key).unwrap_or(0),
            api_addr: api.to_string(),
            raft_addr: n.get("addr").and_then(J::as_str).unwrap_or_default().to_string(),
            voter: n.get("voter").and_then(J::as_bool).unwrap_or(true),
            leader: n.get("leader").and_then(J::as_bool).unwrap_or(false),
            reachable: n.get("reachable").and_then(J::as_bool).unwrap_or(false),
            rtt: n
                .get("time")
                .and_then(J::as_f64)
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(Duration::from_secs_f64),
            error: n.get("error").and_then(J::as_str).map(str::to_owned),
        });
    }
    Ok(out)
}

/// `/status`: hiqlite's full status under `node`, or the little rqlite's `store` says.
pub(crate) fn parse_status(body: &[u8]) -> Result<Status> {
    let v: J = serde_json::from_slice(body).map_err(|e| Error::Decode(format!("/status answer: {e}")))?;
    if let Some(n) = v.get("node") {
        if let Ok(s) = serde_json::from_value::<Status>(n.clone()) {
            return Ok(s);
        }
    }
    let store = &v["store"];
    let raft = &store["raft"];
    let num = |x: &J| x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok()));
    Ok(Status {
        id: id_of(&store["node_id"]).unwrap_or(0),
        state: raft["state"].as_str().unwrap_or_default().to_string(),
        leader: id_of(&store["leader"]["node_id"]),
        term: num(&raft["term"]).unwrap_or(0),
        last_log_index: num(&raft["last_log_index"]),
        applied_index: num(&raft["applied_index"]).or_else(|| num(&raft["applied"])),
        snapshot_index: num(&raft["last_snapshot_index"]),
        snapshots_installed: 0,
        snapshots_built: 0,
        snapshot_build_ms: 0,
        members: Default::default(),
        voters: Vec::new(),
        role: String::new(),
        raft_addr: store["addr"].as_str().unwrap_or_default().to_string(),
        api_addr: v["http"]["bind_addr"].as_str().unwrap_or_default().to_string(),
        startup: String::new(),
        applied_index_at_start: None,
        entries_applied_since_start: 0,
        healthy: true,
        error: None,
        backup: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn results_decode_exact_types() {
        let body = br#"{"results":[
            {"columns":["i","r","r2","t","b","n"],"types":["integer","real","REAL","text","blob",""],
             "values":[[1, 2.5, 3, "x", [0, 255], null]]},
            {"last_insert_id": 7, "rows_affected": 1},
            {"error": "UNIQUE constraint failed: t.a"}]}"#;
        let r = parse_results(body).expect("parse");
        match &r[0] {
            Ok(Answer::Rows(rows)) => assert_eq!(
                rows.rows[0],
                vec![
                    Value::Integer(1),
                    Value::Real(2.5),
                    Value::Real(3.0),
                    Value::Text("x".into()),
                    Value::Blob(vec![0, 255]),
                    Value::Null
                ]
            ),
            _ => panic!("rows expected"),
        }
        match &r[1] {
            Ok(Answer::Exec(x)) => assert_eq!((x.last_insert_id, x.rows_affected), (7, 1)),
            _ => panic!("exec expected"),
        }
        match &r[2] {
            Err(Error::Sql { code, .. }) => assert_eq!(*code, crate::error::codes::SQLITE_CONSTRAINT_UNIQUE),
            _ => panic!("sql error expected"),
        }
    }

    #[test]
    fn text_in_a_blob_column_stays_text() {
        let body = br#"{"results":[{"columns":["b"],"types":["blob"],"values":[["abcd"],[[1,2]]]}]}"#;
        match parse_results(body).expect("parse").pop() {
            Some(Ok(Answer::Rows(r))) => {
                assert_eq!(r.rows[0][0], Value::Text("abcd".into()));
                assert_eq!(r.rows[1][0], Value::Blob(vec![1, 2]));
            }
            _ => panic!("rows expected"),
        }
    }

    #[test]
    fn errors_from_status_codes() {
        let exact =
            serde_json::to_vec(&json!({"error": "x", "hiqlite_error": Error::OutcomeUnknown("y".into())}))
                .expect("json");
        assert_eq!(error_from_status(504, &exact), Error::OutcomeUnknown("y".into()));
        assert!(matches!(error_from_status(503, b"leader not found"), Error::NoLeader(_)));
        assert!(matches!(error_from_status(401, b"{}"), Error::Unauthorized(_)));
        assert!(
            matches!(error_from_status(400, b"{\"error\": \"bad\"}"), Error::InvalidRequest(m) if m == "bad")
        );
        match error_from_status(500, b"{\"error\": \"disk on fire\"}") {
            Error::Server(m) => assert!(m.contains("500") && m.contains("disk on fire"), "{m}"),
            e => panic!("a 5xx is the server's failure, not local storage: {e:?}"),
        }
        assert!(matches!(parse_results(br#"{"error": "x"}"#), Err(Error::Server(_))));
    }

    #[test]
    fn codes_from_rqlite_messages() {
        use crate::error::codes;
        assert_eq!(sqlite_code_of("NOT NULL constraint failed: t.a"), codes::SQLITE_CONSTRAINT_NOTNULL);
        assert_eq!(sqlite_code_of("database is locked"), codes::SQLITE_BUSY);
        assert_eq!(sqlite_code_of("near \"SELEC\": syntax error"), codes::SQLITE_ERROR);
    }

    #[test]
    fn nodes_in_both_shapes() {
        let v2 = br#"{"nodes":[{"id":"2","api_addr":"http://h:2","addr":"h:3","leader":true,"reachable":true,"voter":true}]}"#;
        let n = parse_nodes(v2).expect("v2");
        assert_eq!((n[0].id, n[0].leader, n[0].api_addr.as_str()), (2, true, "http://h:2"));
        let legacy = br#"{"5":{"api_addr":"http://h:5","addr":"h:6","leader":false,"reachable":true}}"#;
        assert_eq!(parse_nodes(legacy).expect("legacy")[0].id, 5);
    }

    #[test]
    fn named_parameters_lose_their_prefix() {
        let s = Statement::new("SELECT :a", Params::Named(vec![(":a".into(), Value::Integer(1))]));
        let b = encode_statements(&[s]).expect("encode");
        assert_eq!(String::from_utf8(b).expect("utf8"), r#"[["SELECT :a",{"a":1}]]"#);
    }
}
