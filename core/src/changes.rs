//! Change data capture, the neutral types: one committed row change ([`Change`]), its kind
//! ([`ChangeOp`]) and the resumable position in the stream of changes ([`ChangeCursor`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::value::Value;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// A new row.
    Insert,
    /// A changed row (its rowid may have changed too).
    Update,
    /// A removed row.
    Delete,
}

impl ChangeOp {
    /// `insert`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }
}

/// One committed row change, as SQLite made it (triggers and foreign-key actions included).
///
/// Changes come in log order; inside one log entry in the order SQLite made them. A change's
/// place is `(index, seq)`; [`Change::cursor`] is where a stream resumes after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The Raft log index of the entry (write, batch, transaction) that made the change.
    pub index: u64,
    /// Its place among the changes of that entry, from 0.
    pub seq: u32,
    /// The table, as its schema names it.
    pub table: String,
    /// Insert, update or delete.
    pub op: ChangeOp,
    /// The rowid (after the change; before it for a delete); `None` for a `WITHOUT ROWID` table.
    pub rowid: Option<i64>,
    /// The names of the table's columns, in order (shared by the changes of one table).
    pub columns: Arc<[String]>,
    /// The primary key's values (a rowid table without a declared key: the rowid).
    pub key: Vec<Value>,
    /// The row before the change (update, delete), when old values were asked for.
    pub old: Option<Vec<Value>>,
    /// The row after the change (insert, update).
    pub new: Option<Vec<Value>>,
}

impl Change {
    /// Where a stream resumes to deliver the changes after this one.
    pub fn cursor(&self) -> ChangeCursor {
        ChangeCursor { index: self.index, seq: self.seq.saturating_add(1) }
    }

    /// The new row's value of `column`, if the change has new values and such a column.
    pub fn new_value(&self, column: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.new.as_ref()?.get(i)
    }

    /// The change as plain JSON: `{"index", "seq", "table", "op", "rowid", "key", "new", "old"}`
    /// with rows as objects by column name and blobs as base64 (`new`/`old` only when present).
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        use serde_json::{json, Value as J};
        let plain = |v: &Value| match v {
            Value::Null => J::Null,
            Value::Integer(i) => json!(i),
            Value::Real(f) => json!(f),
            Value::Text(s) => json!(s),
            Value::Blob(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        };
        let row = |vals: &[Value]| {
            J::Object(self.columns.iter().zip(vals).map(|(k, v)| (k.clone(), plain(v))).collect())
        };
        let mut o = json!({
            "index": self.index, "seq": self.seq, "table": self.table, "op": self.op.as_str(),
            "rowid": self.rowid, "key": self.key.iter().map(plain).collect::<Vec<_>>(),
        });
        if let Some(n) = &self.new {
            o["new"] = row(n);
        }
        if let Some(old) = &self.old {
            o["old"] = row(old);
        }
        o
    }

    /// The old row's value of `column`, if the change has old values and such a column.
    pub fn old_value(&self, column: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.old.as_ref()?.get(i)
    }
}

/// A position in the stream of changes: the changes delivered from it are those at
/// `(index, seq)` or later. Written `index.seq` (or just `index`, meaning `index.0`), which is
/// also the server-sent event id a change stream gives each change (the cursor after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct ChangeCursor {
    /// The log index.
    pub index: u64,
    /// The place inside that entry's changes.
    pub seq: u32,
}

impl ChangeCursor {
    /// The first change made by the entry at `index` or later.
    pub fn from_index(index: u64) -> Self {
        ChangeCursor { index, seq: 0 }
    }
}

impl fmt::Display for ChangeCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.seq)
    }
}

impl FromStr for ChangeCursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidRequest(format!("`{s}` is not a change cursor (INDEX or INDEX.SEQ)"));
        let (i, q) = s.trim().split_once('.').unwrap_or((s.trim(), "0"));
        Ok(ChangeCursor { index: i.parse().map_err(|_| bad())?, seq: q.parse().map_err(|_| bad())? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_and_print_and_order() {
        let c: ChangeCursor = "12.3".parse().expect("cursor");
        assert_eq!(c, ChangeCursor { index: 12, seq: 3 });
        assert_eq!(c.to_string(), "12.3");
        assert_eq!("7".parse::<ChangeCursor>().expect("cursor"), ChangeCursor::from_index(7));
        for bad in ["", "x", "1.", "-1", "1.2.3", "1.-2"] {
            assert!(bad.parse::<ChangeCursor>().is_err(), "{bad}");
        }
        assert!(ChangeCursor { index: 2, seq: 0 } > ChangeCursor { index: 1, seq: 9 });
    }
}
