//! The writer's statement authorizer: the deny rules for user SQL in replicated writes
//! (transaction control, ATTACH, TEMP objects, connection-state PRAGMAs, hiqlite's own tables)
//! and what each prepared statement writes (tables, schema), for the query cache.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use crate::error::Result;

/// What the authorizer saw while one user statement was prepared: the tables it writes (also
/// through triggers) and whether it changes the schema.
#[derive(Default)]
pub(super) struct WriteSeen {
    pub(super) fired: bool,
    pub(super) tables: HashSet<String>,
    pub(super) ddl: bool,
}

fn note_write(seen: &mut WriteSeen, action: &AuthAction<'_>) {
    seen.fired = true;
    match action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => {
            seen.tables.insert(table_name.to_ascii_lowercase());
        }
        AuthAction::CreateIndex { .. }
        | AuthAction::CreateTable { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::AlterTable { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropVtable { .. }
        | AuthAction::Reindex { .. }
        | AuthAction::Analyze { .. } => seen.ddl = true,
        _ => {}
    }
}

const DENY_TX: &str = "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is not allowed in \
     replicated writes: every write already runs in a transaction; use Client::transaction for several statements";
const DENY_ATTACH: &str = "ATTACH and DETACH are not allowed: replicas must not depend on local files";
const DENY_TEMP: &str =
    "temporary tables, views, indexes and triggers are not allowed in replicated writes: \
     they would live on one connection of one node only";
const DENY_PRAGMA: &str =
    "this PRAGMA is not allowed in replicated writes: it changes connection state that \
     replicas and restarts would not share";
const DENY_INTERNAL: &str = "the schema hiqlite_state belongs to hiqlite and cannot be read or changed";

/// Pragmas that only read (or change state stored in the database file itself) and so behave
/// the same on every replica.
const SAFE_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "collation_list",
    "function_list",
    "pragma_list",
    "compile_options",
    "user_version",
    "application_id",
    "data_version",
    "schema_version",
    "page_count",
    "page_size",
    "freelist_count",
    "encoding",
    // Replicated settings and maintenance: `foreign_keys` is applied outside the apply
    // transaction and recorded as the cluster's setting (apply.rs); the rest act on the
    // database file the same way on every replica.
    "foreign_keys",
    "defer_foreign_keys",
    "optimize",
    "incremental_vacuum",
    "auto_vacuum",
];

const DENY_SAVEPOINT_NAME: &str = "savepoints named _hiqlite_* belong to hiqlite; pick another name";

/// Why a user statement in a replicated write must be refused, if it must. In an interactive
/// transaction (`session`), savepoints are the user's to use.
fn authorize(action: &AuthAction<'_>, session: bool) -> Option<&'static str> {
    match action {
        AuthAction::Savepoint { savepoint_name, .. } if session => {
            savepoint_name.to_ascii_lowercase().starts_with("_hiqlite_").then_some(DENY_SAVEPOINT_NAME)
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Some(DENY_TX),
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Some(DENY_ATTACH),
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => Some(DENY_TEMP),
        AuthAction::Pragma { pragma_name, .. } => {
            let name = pragma_name.to_ascii_lowercase();
            (!SAFE_PRAGMAS.contains(&name.as_str())).then_some(DENY_PRAGMA)
        }
        _ => None,
    }
}

/// The authorizer's shared state, installed once on the writer connection.
pub(super) struct Guard {
    /// True while user SQL runs: the authorizer then refuses transaction control and ATTACH.
    pub(super) user_mode: Arc<AtomicBool>,
    /// True while an interactive transaction's statements run: savepoints are allowed.
    pub(super) session_mode: Arc<AtomicBool>,
    /// Why the last refused statement was refused.
    pub(super) denied: Arc<Mutex<Option<&'static str>>>,
    /// What the statement being prepared writes.
    pub(super) seen: Arc<Mutex<WriteSeen>>,
}

/// Install the authorizer on the writer connection. It checks nothing outside user mode.
pub(super) fn install(conn: &mut Connection) -> Result<Guard> {
    let user_mode = Arc::new(AtomicBool::new(false));
    let session_mode = Arc::new(AtomicBool::new(false));
    let denied: Arc<Mutex<Option<&'static str>>> = Arc::new(Mutex::new(None));
    let seen: Arc<Mutex<WriteSeen>> = Arc::new(Mutex::new(WriteSeen::default()));
    {
        let (um, sm, dn, sn) = (user_mode.clone(), session_mode.clone(), denied.clone(), seen.clone());
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if !um.load(Ordering::Relaxed) {
                return Authorization::Allow;
            }
            // hiqlite's state file, attached under its own schema: not the user's to touch.
            // ANALYZE / PRAGMA optimize without a schema name visit it too: skip it there.
            if ctx.database_name == Some(super::meta::STATE_SCHEMA) {
                match ctx.action {
                    AuthAction::Analyze { .. } => return Authorization::Ignore,
                    // REINDEX without a name rebuilds every index, these too: harmless.
                    AuthAction::Reindex { .. } => return Authorization::Allow,
                    // ANALYZE's own bookkeeping (its statistics tables) in every schema.
                    AuthAction::Insert { table_name }
                    | AuthAction::Delete { table_name }
                    | AuthAction::Update { table_name, .. }
                    | AuthAction::Read { table_name, .. }
                    | AuthAction::CreateTable { table_name }
                        if table_name.starts_with("sqlite_") =>
                    {
                        return Authorization::Allow
                    }
                    _ => {}
                }
                *dn.lock().unwrap_or_else(|p| p.into_inner()) = Some(DENY_INTERNAL);
                return Authorization::Deny;
            }
            note_write(&mut sn.lock().unwrap_or_else(|p| p.into_inner()), &ctx.action);
            match authorize(&ctx.action, sm.load(Ordering::Relaxed)) {
                None => Authorization::Allow,
                Some(why) => {
                    *dn.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    Authorization::Deny
                }
            }
        }))?;
    }
    Ok(Guard { user_mode, session_mode, denied, seen })
}
