//! Running one statement and collecting its result, shared by the writer and the readers.

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::value::{ExecResult, Params, Rows, Value};

fn collect_rows(stmt: &mut rusqlite::Statement<'_>) -> Result<Rows> {
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let types: Vec<String> =
        stmt.columns().map(|c| c.decl_type().unwrap_or("").to_ascii_lowercase()).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut raw = stmt.raw_query();
    while let Some(row) = raw.next()? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(Value::from_ref(row.get_ref(i)?));
        }
        rows.push(vals);
    }
    Ok(Rows { columns, types, rows })
}

/// Run one prepared statement to completion.
fn run_prepared(conn: &Connection, stmt: &mut rusqlite::Statement<'_>) -> Result<ExecResult> {
    if stmt.column_count() > 0 {
        let before = conn.total_changes();
        let rows = collect_rows(stmt)?;
        // changes() is stale after a plain SELECT; total_changes tells whether this one wrote.
        let wrote = conn.total_changes() != before;
        Ok(ExecResult {
            rows_affected: if wrote { conn.changes() } else { 0 },
            last_insert_id: conn.last_insert_rowid(),
            rows,
            rqlite_counters: None,
            log_index: None,
        })
    } else {
        let changes = stmt.raw_execute()? as u64;
        Ok(ExecResult {
            rows_affected: changes,
            last_insert_id: conn.last_insert_rowid(),
            rows: Rows::default(),
            rqlite_counters: None,
            log_index: None,
        })
    }
}

/// Fold the result of one statement of a text into the text's result: changes are summed, the
/// last insert id and the rows of the last statement that returned rows are kept.
pub(crate) fn add_up(total: &mut ExecResult, r: ExecResult) {
    total.rows_affected += r.rows_affected;
    total.last_insert_id = r.last_insert_id;
    if !r.rows.columns.is_empty() {
        total.rows = r.rows;
    }
}

/// Execute SQL with parameters. Without parameters the text may hold several statements; their
/// changes are summed and the rows of the last one that returned rows are kept.
pub(crate) fn execute(conn: &Connection, sql: &str, params: &Params) -> Result<ExecResult> {
    if params.is_empty() {
        let mut batch = rusqlite::Batch::new(conn, sql);
        let mut total = ExecResult::default();
        let mut any = false;
        while let Some(mut stmt) = batch.next()? {
            // SQLite would bind NULL to every placeholder left unbound: refuse instead, as
            // queries and parameterized writes do.
            let expected = stmt.parameter_count();
            if expected > 0 {
                return Err(rusqlite::Error::InvalidParameterCount(0, expected).into());
            }
            add_up(&mut total, run_prepared(conn, &mut stmt)?);
            any = true;
        }
        if !any {
            total.last_insert_id = conn.last_insert_rowid();
        }
        return Ok(total);
    }
    let mut stmt = conn.prepare_cached(sql)?;
    params.bind(&mut stmt)?;
    run_prepared(conn, &mut stmt)
}

/// Run a read-only query.
pub(crate) fn query(conn: &Connection, sql: &str, params: &Params) -> Result<Rows> {
    let mut stmt = conn.prepare_cached(sql)?;
    if !stmt.readonly() {
        return Err(Error::Sql {
            code: rusqlite::ffi::SQLITE_READONLY,
            message: "query() runs read-only statements; use execute() for writes".into(),
        });
    }
    params.bind(&mut stmt)?;
    collect_rows(&mut stmt)
}
