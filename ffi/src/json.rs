//! JSON for `hiqlite_query_json`: parameters in rqlite's request form, results in rqlite's answer
//! form (the shape `/db/query` returns, so code written against rqlite reads it unchanged).

use engine::{Params, Rows, Value};
use serde_json::{json, Value as J};

use crate::error::{FfiError, FfiResult, HIQLITE_INVALID_REQUEST};

fn bad(msg: impl Into<String>) -> FfiError {
    FfiError::new(HIQLITE_INVALID_REQUEST, msg)
}

fn value(v: &J) -> FfiResult<Value> {
    Value::from_json(v).map_err(bad)
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

/// `{"results": [{"columns": [...], "types": [...], "values": [[...]]}]}`, `values` left out when
/// there is no row, BLOBs base64 — as rqlite renders a query.
pub(crate) fn query_answer(rows: &Rows) -> String {
    json!({ "results": [rows.to_rqlite_json()] }).to_string()
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
