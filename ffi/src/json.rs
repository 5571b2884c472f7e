//! JSON for `hiqlite_query_json`: parameters in rqlite's request form, results in rqlite's answer
//! form (the shape `/db/query` returns, so code written against rqlite reads it unchanged).

use base64::Engine;
use engine::{Params, Rows, Value};
use serde_json::{json, Map, Value as J};

use crate::error::{FfiError, FfiResult, HIQLITE_INVALID_REQUEST};

fn bad(msg: impl Into<String>) -> FfiError {
    FfiError::new(HIQLITE_INVALID_REQUEST, msg)
}

fn value(v: &J) -> FfiResult<Value> {
    Ok(match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Integer(i64::from(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().ok_or_else(|| bad(format!("number {n} is out of range")))?),
        },
        J::String(s) => Value::Text(s.clone()),
        J::Array(a) => Value::Blob(
            a.iter()
                .map(|x| x.as_u64().filter(|b| *b < 256).map(|b| b as u8))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| bad("an array parameter must be a byte array (integers 0..255)"))?,
        ),
        J::Object(_) => return Err(bad("a parameter cannot be an object")),
    })
}

/// Parameters as JSON: an array (positional) or an object (named); blobs as byte arrays.
pub(crate) fn params(text: &str) -> FfiResult<Params> {
    let v: J = serde_json::from_str(text).map_err(|e| bad(format!("parameters are not valid JSON: {e}")))?;
    Ok(match v {
        J::Array(a) => Params::Positional(a.iter().map(value).collect::<FfiResult<_>>()?),
        J::Object(m) => {
            Params::Named(m.iter().map(|(k, v)| Ok((k.clone(), value(v)?))).collect::<FfiResult<_>>()?)
        }
        J::Null => Params::None,
        _ => return Err(bad("parameters must be a JSON array or object")),
    })
}

fn render(v: &Value) -> J {
    match v {
        Value::Blob(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        other => other.to_json(),
    }
}

/// `{"results": [{"columns": [...], "types": [...], "values": [[...]]}]}`, `values` left out when
/// there is no row, BLOBs base64 — as rqlite renders a query.
pub(crate) fn query_answer(rows: &Rows) -> String {
    let mut o = Map::new();
    o.insert("columns".into(), json!(rows.columns));
    o.insert("types".into(), json!(rows.types));
    if !rows.rows.is_empty() {
        let values: Vec<J> = rows.rows.iter().map(|r| J::Array(r.iter().map(render).collect())).collect();
        o.insert("values".into(), J::Array(values));
    }
    json!({ "results": [J::Object(o)] }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rqlite() {
        let rows = Rows {
            columns: vec!["id".into(), "b".into(), "t".into()],
            types: vec!["integer".into(), "blob".into(), "text".into()],
            rows: vec![vec![Value::Integer(1), Value::Blob(vec![0xde, 0xad]), Value::Null]],
        };
        let v: J = serde_json::from_str(&query_answer(&rows)).expect("json");
        assert_eq!(
            v,
            json!({"results": [{"columns": ["id", "b", "t"], "types": ["integer", "blob", "text"],
                                "values": [[1, "3q0=", null]]}]})
        );
        let empty = Rows { columns: vec!["id".into()], types: vec!["integer".into()], rows: vec![] };
        let v: J = serde_json::from_str(&query_answer(&empty)).expect("json");
        assert_eq!(v, json!({"results": [{"columns": ["id"], "types": ["integer"]}]}));
    }

    #[test]
    fn parses_parameters() {
        assert_eq!(
            params(r#"[1, 2.5, "x", null, true, [0, 255]]"#).expect("valid"),
            Params::Positional(vec![
                Value::Integer(1),
                Value::Real(2.5),
                Value::Text("x".into()),
                Value::Null,
                Value::Integer(1),
                Value::Blob(vec![0, 255]),
            ])
        );
        assert_eq!(
            params(r#"{"id": 7}"#).expect("valid"),
            Params::Named(vec![("id".into(), Value::Integer(7))])
        );
        for bad in ["[", "3", "[[256]]", "[{}]"] {
            assert_eq!(params(bad).expect_err(bad).code, HIQLITE_INVALID_REQUEST, "{bad}");
        }
    }
}
