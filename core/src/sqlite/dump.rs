//! SQL text dumps in the form of the sqlite3 shell's `.dump`, and the reverse (loading a dump or
//! a database file as statements). hiqlite's own state lives outside the user database
//! (`meta.rs`), so everything here is the user's.

use std::fmt::Write;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::error::Result;

fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A value as an SQL literal that reads back as the same value and type.
pub(crate) fn literal(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) if f.is_nan() => "NULL".into(),
        ValueRef::Real(f) if f.is_infinite() => {
            if f > 0.0 {
                "1e999".into()
            } else {
                "-1e999".into()
            }
        }
        ValueRef::Real(f) => {
            let s = format!("{f:?}");
            if s.contains(['.', 'e', 'E']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        ValueRef::Text(t) => format!("'{}'", String::from_utf8_lossy(t).replace('\'', "''")),
        ValueRef::Blob(b) => {
            let mut s = String::with_capacity(3 + 2 * b.len());
            s.push_str("X'");
            for byte in b {
                let _ = write!(s, "{byte:02X}");
            }
            s.push('\'');
            s
        }
    }
}

/// The schema and data of `conn` as statements (no transaction wrapper), in an order that
/// recreates it: tables with their rows (by name), then indexes, triggers and views (in creation
/// order, so a trigger on a view follows the view).
/// `skip_legacy` leaves out the `_hiqlite_meta` / `_hiqlite_migrations` tables that files
/// written by earlier versions hold.
pub(crate) fn statements(conn: &Connection, skip_legacy: bool) -> Result<Vec<String>> {
    statements_of(conn, skip_legacy, None)
}

/// Like [`statements`], limited to the tables named in `tables` (their indexes and triggers
/// too, and views of those names) when given. Rows are written `INSERT INTO "t" VALUES(...)`,
/// the table name always quoted, as rqlite writes them; tables come in name order, then indexes,
/// triggers and views in creation order (rqlite/rqlite `db/db.go`, `Dump`).
pub(crate) fn statements_of(
    conn: &Connection,
    skip_legacy: bool,
    tables: Option<&[String]>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let legacy = if skip_legacy { "AND name NOT IN ('_hiqlite_meta', '_hiqlite_migrations')" } else { "" };
    let mut objects = conn.prepare(&format!(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql NOT NULL {legacy} \
         AND name NOT LIKE 'sqlite_%' ORDER BY type != 'table', CASE type WHEN 'table' THEN name END, rowid"
    ))?;
    let objs: Vec<(String, String, String, String)> = objects
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let wanted = |name: &str| tables.is_none_or(|t| t.iter().any(|x| x == name));
    for (kind, name, tbl_name, sql) in &objs {
        if !wanted(tbl_name) {
            continue;
        }
        out.push(format!("{sql};"));
        if kind != "table" || sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL") {
            continue;
        }
        let mut st = conn.prepare(&format!("SELECT * FROM {}", quote_ident(name)))?;
        let n = st.column_count();
        let mut rows = st.query([])?;
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        while let Some(r) = rows.next()? {
            let mut line = format!("INSERT INTO {quoted} VALUES(");
            for i in 0..n {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&literal(r.get_ref(i)?));
            }
            line.push_str(");");
            out.push(line);
        }
    }
    let has_seq: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'", [], |r| {
            r.get::<_, i64>(0)
        })? > 0;
    if has_seq {
        out.push("DELETE FROM \"sqlite_sequence\";".into());
        let mut st = conn.prepare("SELECT name, seq FROM sqlite_sequence")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            if !wanted(&name) {
                continue;
            }
            out.push(format!(
                "INSERT INTO \"sqlite_sequence\" VALUES({},{});",
                literal(r.get_ref(0)?),
                literal(r.get_ref(1)?)
            ));
        }
    }
    Ok(out)
}

/// A complete dump as the sqlite3 shell writes it (only `tables`, when given).
pub(crate) fn dump(conn: &Connection, tables: Option<&[String]>) -> Result<String> {
    conn.execute_batch("BEGIN")?;
    let r = statements_of(conn, false, tables);
    let _ = conn.execute_batch("COMMIT");
    let mut s = String::from("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
    for line in r? {
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("COMMIT;\n");
    Ok(s)
}

/// Drop the lines a dump wraps its statements in: every replicated write already runs in a
/// transaction, and connection pragmas are refused.
pub(crate) fn strip_wrapper(sql: &str) -> String {
    sql.lines()
        .filter(|l| {
            let t = l.trim().trim_end_matches(';').trim().to_ascii_uppercase();
            !matches!(
                t.as_str(),
                "BEGIN TRANSACTION" | "BEGIN" | "COMMIT" | "END TRANSACTION" | "PRAGMA FOREIGN_KEYS=OFF"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_round_trips_every_type() {
        let a = Connection::open_in_memory().expect("db");
        a.execute_batch(
            "CREATE TABLE \"odd name\" (id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT, r REAL, b BLOB, n);
             INSERT INTO \"odd name\" (t, r, b, n) VALUES ('it''s', 3.0, X'00ff', NULL), ('x', 0.1, X'', 7);
             CREATE INDEX i ON \"odd name\"(t);
             CREATE VIEW v AS SELECT t FROM \"odd name\";",
        )
        .expect("setup");
        let text = dump(&a, None).expect("dump");
        assert!(
            text.starts_with("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n") && text.ends_with("COMMIT;\n")
        );
        let b = Connection::open_in_memory().expect("db");
        b.execute_batch(&text).expect("load");
        let q = "SELECT id, t, typeof(r), r, hex(b), n FROM \"odd name\" ORDER BY id";
        let rows = |c: &Connection| -> Vec<String> {
            let mut st = c.prepare(q).expect("prep");
            st.query_map([], |r| {
                Ok((0..6)
                    .map(|i| format!("{:?}", r.get_ref(i).map(|v| literal(v))))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
        };
        assert_eq!(rows(&a), rows(&b));
        assert_eq!(dump(&b, None).expect("dump again"), text);
    }
}
