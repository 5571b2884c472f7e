//! Change data capture on the writer: SQLite's preupdate hook records every row change of the
//! user's database while committed entries are applied (never during an interactive
//! transaction's speculative run); what a rolled-back savepoint or a failed statement undid is
//! cut off again; a run's changes are stored per log entry in the state file
//! (`_hiqlite_changes`, one postcard row per entry) in the same transaction as the run, and
//! broadcast once it commits. The state file's meta key `changes_from` is the lowest log index
//! from which the stored changes are complete (older ones were pruned, or captured elsewhere).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::ffi::{c_char, c_int, CStr};

use rusqlite::{ffi, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::changes::{Change, ChangeOp};
use crate::error::{Error, Result};
use crate::value::Value;

/// The meta key holding the lowest log index whose changes are all stored.
const FROM_KEY: &str = "changes_from";

/// What the writer broadcasts to this node's change streams.
#[derive(Debug, Clone)]
pub(crate) enum Feed {
    /// The changes of a committed run, in order (runs without changes are not sent).
    Run(Arc<Vec<Change>>),
    /// The stored changes were replaced (a snapshot was installed): streams read them again.
    Reloaded,
}

/// A row change as the hook saw it, before its table's columns are known.
#[derive(Debug)]
struct Raw {
    table: Arc<str>,
    op: ChangeOp,
    rowid: i64,
    old: Option<Vec<Value>>,
    new: Option<Vec<Value>>,
}

/// The capture buffer the hook fills; shared between the hook and the writer.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    /// True while committed entries are applied with capture configured.
    on: AtomicBool,
    raw: Mutex<Vec<Raw>>,
}

// SQLite's preupdate interface. The bundled SQLite is built with SQLITE_ENABLE_PREUPDATE_HOOK
// (`.cargo/config.toml`); rusqlite's wrapper for it would need bindgen (libclang) at build time.
unsafe extern "C" {
    fn sqlite3_preupdate_hook(
        db: *mut ffi::sqlite3,
        cb: Option<PreupdateFn>,
        arg: *mut std::ffi::c_void,
    ) -> *mut std::ffi::c_void;
    fn sqlite3_preupdate_old(db: *mut ffi::sqlite3, i: c_int, out: *mut *mut ffi::sqlite3_value) -> c_int;
    fn sqlite3_preupdate_new(db: *mut ffi::sqlite3, i: c_int, out: *mut *mut ffi::sqlite3_value) -> c_int;
    fn sqlite3_preupdate_count(db: *mut ffi::sqlite3) -> c_int;
}

type PreupdateFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    *mut ffi::sqlite3,
    c_int,
    *const c_char,
    *const c_char,
    i64,
    i64,
);

/// A value SQLite hands the preupdate hook, copied.
///
/// # Safety
/// `v` is a valid `sqlite3_value` for the duration of the call (or null).
unsafe fn value_of(v: *mut ffi::sqlite3_value) -> Value {
    unsafe {
        if v.is_null() {
            return Value::Null;
        }
        match ffi::sqlite3_value_type(v) {
            ffi::SQLITE_INTEGER => Value::Integer(ffi::sqlite3_value_int64(v)),
            ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_value_double(v)),
            ffi::SQLITE_TEXT => {
                let p = ffi::sqlite3_value_text(v);
                let n = usize::try_from(ffi::sqlite3_value_bytes(v)).unwrap_or(0);
                if p.is_null() {
                    Value::Text(String::new())
                } else {
                    Value::Text(String::from_utf8_lossy(std::slice::from_raw_parts(p, n)).into_owned())
                }
            }
            ffi::SQLITE_BLOB => {
                let p = ffi::sqlite3_value_blob(v).cast::<u8>();
                let n = usize::try_from(ffi::sqlite3_value_bytes(v)).unwrap_or(0);
                if p.is_null() || n == 0 {
                    Value::Blob(Vec::new())
                } else {
                    Value::Blob(std::slice::from_raw_parts(p, n).to_vec())
                }
            }
            _ => Value::Null,
        }
    }
}

/// The row's values, old or new, as the preupdate hook sees them.
///
/// # Safety
/// Only inside the preupdate callback of `db`.
unsafe fn row_of(
    db: *mut ffi::sqlite3,
    get: unsafe extern "C" fn(*mut ffi::sqlite3, c_int, *mut *mut ffi::sqlite3_value) -> c_int,
) -> Vec<Value> {
    unsafe {
        let n = sqlite3_preupdate_count(db);
        (0..n)
            .map(|i| {
                let mut v: *mut ffi::sqlite3_value = std::ptr::null_mut();
                if get(db, i, &mut v) == ffi::SQLITE_OK {
                    value_of(v)
                } else {
                    Value::Null
                }
            })
            .collect()
    }
}

unsafe extern "C" fn on_preupdate(
    arg: *mut std::ffi::c_void,
    db: *mut ffi::sqlite3,
    op: c_int,
    schema: *const c_char,
    table: *const c_char,
    old_rowid: i64,
    new_rowid: i64,
) {
    unsafe {
        // A panic must not cross into SQLite.
        let _ = std::panic::catch_unwind(|| {
            let cap = &*(arg as *const Capture);
            if !cap.on.load(Ordering::Relaxed) || schema.is_null() || table.is_null() {
                return;
            }
            if CStr::from_ptr(schema).to_bytes() != b"main" {
                return;
            }
            let name = CStr::from_ptr(table).to_bytes();
            let mut buf = cap.raw();
            // Rows of one table come in runs: share the name rather than allocate it per row.
            let table: Arc<str> = match buf.last() {
                Some(r) if r.table.as_bytes() == name => r.table.clone(),
                _ => Arc::from(String::from_utf8_lossy(name).as_ref()),
            };
            let raw = match op {
                ffi::SQLITE_INSERT => Raw {
                    table,
                    op: ChangeOp::Insert,
                    rowid: new_rowid,
                    old: None,
                    new: Some(row_of(db, sqlite3_preupdate_new)),
                },
                ffi::SQLITE_DELETE => Raw {
                    table,
                    op: ChangeOp::Delete,
                    rowid: old_rowid,
                    old: Some(row_of(db, sqlite3_preupdate_old)),
                    new: None,
                },
                ffi::SQLITE_UPDATE => Raw {
                    table,
                    op: ChangeOp::Update,
                    rowid: new_rowid,
                    old: Some(row_of(db, sqlite3_preupdate_old)),
                    new: Some(row_of(db, sqlite3_preupdate_new)),
                },
                _ => return,
            };
            buf.push(raw);
        });
    }
}

impl Capture {
    fn raw(&self) -> std::sync::MutexGuard<'_, Vec<Raw>> {
        self.raw.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Install the preupdate hook on the writer connection.
    pub(crate) fn install(self: &Arc<Self>, conn: &mut Connection) -> Result<()> {
        // The connection may outlive this handle's owner in odd shutdown orders, so the hook
        // owns a reference of its own, held as the connection's client data: SQLite releases it
        // when the connection closes, after which the hook never runs.
        unsafe extern "C" fn release(p: *mut std::ffi::c_void) {
            // SAFETY: made by `Arc::into_raw` below, released once, by SQLite at close.
            drop(unsafe { Arc::from_raw(p as *const Capture) });
        }
        let arg = Arc::into_raw(self.clone()) as *mut std::ffi::c_void;
        // SAFETY: the handle is this open connection's; `arg` stays valid until the connection
        // closes (it owns it from here, also on failure: SQLite then calls `release` at once).
        let rc = unsafe {
            ffi::sqlite3_set_clientdata(conn.handle(), c"hiqlite_capture".as_ptr(), arg, Some(release))
        };
        if rc != ffi::SQLITE_OK {
            return Err(Error::storage(format!(
                "cannot keep the change capture on the connection (code {rc})"
            )));
        }
        // SAFETY: as above.
        unsafe { sqlite3_preupdate_hook(conn.handle(), Some(on_preupdate), arg) };
        Ok(())
    }

    pub(crate) fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Forget what the last statement recorded: it failed, and SQLite undid its changes.
    pub(crate) fn discard(&self) {
        self.raw().clear();
    }

    fn take(&self) -> Vec<Raw> {
        std::mem::take(&mut *self.raw())
    }
}

/// A table's columns and primary key as of the statement that changed it.
#[derive(Debug)]
struct TableInfo {
    columns: Arc<[String]>,
    /// Positions of the primary key's columns (empty: the rowid is the key).
    pk: Vec<usize>,
    rowid: bool,
}

/// The changes of one applied entry, resolved, and the tables' shapes the writer knows.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Resolved changes of the entry being applied (moved into `entries` when it ends).
    current: Vec<Resolved>,
    /// Entries of the run so far, with their changes.
    entries: Vec<(u64, Vec<Resolved>)>,
    tables: HashMap<String, Arc<TableInfo>>,
    schema_version: i64,
    /// Changes stored in the state file (`None`: not counted since it was opened or replaced).
    stored: Option<u64>,
}

#[derive(Debug)]
struct Resolved {
    table: Arc<TableInfo>,
    raw: Raw,
}

fn table_info(conn: &Connection, table: &str) -> Result<TableInfo> {
    let mut st =
        conn.prepare_cached("SELECT name, pk, hidden FROM pragma_table_xinfo(?1, 'main') ORDER BY cid")?;
    let cols: Vec<(String, i64, i64)> =
        st.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    let wr: Option<i64> = conn
        .prepare_cached("SELECT wr FROM pragma_table_list(?1) WHERE schema = 'main'")?
        .query_row([table], |r| r.get(0))
        .optional()?;
    let mut pk: Vec<(i64, usize)> =
        cols.iter().enumerate().filter(|(_, c)| c.1 > 0).map(|(i, c)| (c.1, i)).collect();
    pk.sort_unstable();
    Ok(TableInfo {
        columns: cols.into_iter().map(|c| c.0).collect(),
        pk: pk.into_iter().map(|(_, i)| i).collect(),
        rowid: wr != Some(1),
    })
}

impl Pending {
    /// Give the changes recorded since the last call their tables' shapes (the schema may change
    /// between statements, so this runs after each one).
    pub(crate) fn resolve(&mut self, conn: &Connection, cap: &Capture) -> Result<()> {
        let raws = cap.take();
        if raws.is_empty() {
            return Ok(());
        }
        let version: i64 = conn.prepare_cached("PRAGMA main.schema_version")?.query_row([], |r| r.get(0))?;
        if version != self.schema_version {
            self.tables.clear();
            self.schema_version = version;
        }
        for raw in raws {
            let info = match self.tables.get(&*raw.table) {
                Some(i) => i.clone(),
                None => {
                    let i = Arc::new(table_info(conn, &raw.table)?);
                    self.tables.insert(raw.table.to_string(), i.clone());
                    i
                }
            };
            self.current.push(Resolved { table: info, raw });
        }
        Ok(())
    }

    /// Where the entry's resolved changes end (a savepoint's mark).
    pub(crate) fn mark(&self) -> usize {
        self.current.len()
    }

    /// Forget the resolved changes after `mark` (their savepoint was rolled back).
    pub(crate) fn cut(&mut self, mark: usize) {
        self.current.truncate(mark);
    }

    /// The entry at `index` is done: its changes belong to it.
    pub(crate) fn end_entry(&mut self, index: u64) {
        if !self.current.is_empty() {
            self.entries.push((index, std::mem::take(&mut self.current)));
        }
    }

    /// Start a run afresh (also after a poisoned run is rolled back).
    pub(crate) fn clear(&mut self) {
        self.current.clear();
        self.entries.clear();
    }

    /// Forget the count of stored changes (the state was replaced).
    pub(crate) fn recount(&mut self) {
        self.stored = None;
    }

    /// Store the run's changes in the state file (inside the run's transaction) and prune the
    /// oldest entries beyond `retention` changes; the changes to broadcast once the run commits.
    pub(crate) fn store(&mut self, conn: &Connection, retention: u64) -> Result<Vec<Change>> {
        if self.entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut stored = match self.stored {
            Some(n) => n,
            None => conn
                .prepare_cached("SELECT coalesce(sum(n), 0) FROM hiqlite_state._hiqlite_changes")?
                .query_row([], |r| r.get::<_, i64>(0))? as u64,
        };
        // Counted as unknown until this store is done (an error leaves the count unknown).
        self.stored = None;
        let mut out = Vec::new();
        for (index, changes) in std::mem::take(&mut self.entries) {
            let n = changes.len() as u64;
            let entry = encode(changes);
            let blob = postcard::to_stdvec(&entry).map_err(Error::storage)?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO hiqlite_state._hiqlite_changes (idx, n, data) VALUES (?1, ?2, ?3)",
            )?
            .execute(rusqlite::params![index as i64, n as i64, blob])?;
            stored += n;
            out.extend(decode(index, entry));
        }
        if stored > retention.saturating_add((retention / 16).max(1)) {
            stored = prune(conn, retention)?;
        }
        self.stored = Some(stored);
        Ok(out)
    }
}

/// One entry's changes as stored: each table's shape once, then the changes.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// Table name, columns, primary key positions, whether it has rowids.
    tables: Vec<(String, Vec<String>, Vec<u32>, bool)>,
    changes: Vec<StoredChange>,
}

/// Table (position in [`Stored::tables`]), op, rowid, old, new.
type StoredChange = (u32, ChangeOp, i64, Option<Vec<Value>>, Option<Vec<Value>>);

/// A table's name, columns, primary key positions and whether it has rowids.
type Shape = (String, Arc<[String]>, Vec<u32>, bool);

fn encode(changes: Vec<Resolved>) -> Stored {
    let mut tables: Vec<(String, Vec<String>, Vec<u32>, bool)> = Vec::new();
    let mut at: HashMap<Arc<str>, u32> = HashMap::new();
    let mut out = Vec::with_capacity(changes.len());
    for Resolved { table: info, raw } in changes {
        let t = match at.get(&raw.table) {
            Some(&t) => t,
            None => {
                tables.push((
                    raw.table.to_string(),
                    info.columns.to_vec(),
                    info.pk.iter().map(|&i| i as u32).collect(),
                    info.rowid,
                ));
                let t = (tables.len() - 1) as u32;
                at.insert(raw.table.clone(), t);
                t
            }
        };
        out.push((t, raw.op, raw.rowid, raw.old, raw.new));
    }
    Stored { tables, changes: out }
}

fn decode(index: u64, s: Stored) -> Vec<Change> {
    let shapes: Vec<Shape> = s.tables.into_iter().map(|(n, c, pk, rowid)| (n, c.into(), pk, rowid)).collect();
    s.changes
        .into_iter()
        .enumerate()
        .filter_map(|(seq, (t, op, rowid, old, new))| {
            let (name, columns, pk, has_rowid) = shapes.get(t as usize)?;
            let row = new.as_ref().or(old.as_ref());
            let key = if pk.is_empty() {
                vec![Value::Integer(rowid)]
            } else {
                pk.iter()
                    .map(|&i| row.and_then(|r| r.get(i as usize)).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            Some(Change {
                index,
                seq: seq as u32,
                table: name.clone(),
                op,
                rowid: has_rowid.then_some(rowid),
                columns: columns.clone(),
                key,
                old,
                new,
            })
        })
        .collect()
}

fn read_from(conn: &Connection, schema: &str) -> Result<Option<u64>> {
    let v: Option<String> = conn
        .prepare_cached(&format!("SELECT value FROM {schema}._hiqlite_state_meta WHERE key = ?1"))?
        .query_row([FROM_KEY], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()))
}

fn write_from(conn: &Connection, from: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO hiqlite_state._hiqlite_state_meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![FROM_KEY, from.to_string()])?;
    Ok(())
}

/// Drop the oldest entries until at most `retention` changes are left (the newest entry always
/// stays); the changes left.
fn prune(conn: &Connection, retention: u64) -> Result<u64> {
    let cut: Option<i64> = conn
        .prepare_cached(
            "SELECT idx FROM (SELECT idx, sum(n) OVER (ORDER BY idx DESC) AS s, \
             row_number() OVER (ORDER BY idx DESC) AS r FROM hiqlite_state._hiqlite_changes) \
             WHERE s > ?1 AND r > 1 ORDER BY idx DESC LIMIT 1",
        )?
        .query_row([retention as i64], |r| r.get(0))
        .optional()?;
    if let Some(cut) = cut {
        conn.prepare_cached("DELETE FROM hiqlite_state._hiqlite_changes WHERE idx <= ?1")?.execute([cut])?;
        write_from(conn, cut as u64 + 1)?;
    }
    let left: i64 = conn
        .prepare_cached("SELECT coalesce(sum(n), 0) FROM hiqlite_state._hiqlite_changes")?
        .query_row([], |r| r.get(0))?;
    Ok(left as u64)
}

/// At open and after an install: with capture on, changes are complete from the next entry on
/// unless the state says from where; with it off, none are kept.
pub(crate) fn prepare(conn: &Connection, on: bool, next_index: u64) -> Result<()> {
    if on {
        if read_from(conn, "hiqlite_state")?.is_none() {
            write_from(conn, next_index)?;
        }
    } else {
        conn.execute_batch(&format!(
            "DELETE FROM hiqlite_state._hiqlite_changes; \
             DELETE FROM hiqlite_state._hiqlite_state_meta WHERE key = '{FROM_KEY}';"
        ))?;
    }
    Ok(())
}

/// The index from which the stored changes are complete (`None`: this node keeps none), on a
/// connection to the state file.
pub(crate) fn kept_from(conn: &Connection) -> Result<Option<u64>> {
    read_from(conn, "main")
}

/// Stored changes at `from` (index, seq) or later, of up to `entries` entries, in order, and the
/// index from which stored changes are complete (`None`: this node keeps none), both read in one
/// transaction on a connection to the state file: a prune between the two could otherwise hide
/// a gap behind a mark read before it.
pub(crate) fn read(
    conn: &Connection,
    from: crate::changes::ChangeCursor,
    entries: i64,
) -> Result<(Vec<Change>, Option<u64>)> {
    let tx = conn.unchecked_transaction()?;
    let complete = read_from(&tx, "main")?;
    let rows: Vec<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT idx, data FROM main._hiqlite_changes WHERE idx >= ?1 ORDER BY idx LIMIT ?2")?
        .query_map(rusqlite::params![i64::try_from(from.index).unwrap_or(i64::MAX), entries], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    tx.commit()?;
    let mut out = Vec::new();
    for (idx, blob) in rows {
        let s: Stored = postcard::from_bytes(&blob).map_err(Error::storage)?;
        out.extend(decode(idx as u64, s).into_iter().filter(|c| (c.index, c.seq) >= (from.index, from.seq)));
    }
    Ok((out, complete))
}

/// The stored rows (index, changes, postcard) for the state of a snapshot or backup.
pub(crate) fn dump(conn: &Connection) -> Result<Vec<(i64, i64, Vec<u8>)>> {
    let mut st = conn.prepare("SELECT idx, n, data FROM hiqlite_state._hiqlite_changes ORDER BY idx")?;
    let rows =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Put rows of [`dump`] back (inside the caller's transaction, the table emptied before).
pub(crate) fn load(conn: &Connection, rows: &[(i64, i64, Vec<u8>)]) -> Result<()> {
    for (idx, n, data) in rows {
        conn.prepare_cached("INSERT INTO hiqlite_state._hiqlite_changes (idx, n, data) VALUES (?1, ?2, ?3)")?
            .execute(rusqlite::params![idx, n, data])?;
    }
    Ok(())
}
