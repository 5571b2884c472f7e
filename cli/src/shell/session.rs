//! The shell's session: the remote `Client`, the open transaction, the output settings, and
//! running one SQL statement (routed as a read, a write or transaction control) or a batch.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use hiqlite::{Client, Consistency, ExecResult, Rows, StatementKind, Transaction};

use super::editor::Names;
use super::error::{Result, ShellError};
use super::format::{self, Style};
use crate::transfer::{Http, TransferError};

impl From<TransferError> for ShellError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::File { path, source } => ShellError::File { path, source },
            other => ShellError::Http(other.to_string()),
        }
    }
}

/// Where results go (`.output`).
pub enum Output {
    /// Standard output.
    Stdout(std::io::Stdout),
    /// A file.
    File(std::io::BufWriter<std::fs::File>),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Stdout(s) => s.write(buf),
            Output::File(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout(s) => s.flush(),
            Output::File(f) => f.flush(),
        }
    }
}

/// One shell session against one cluster.
pub struct Session {
    /// The remote client every statement goes through.
    pub client: Client,
    /// The runtime the client's calls run on (the shell itself is synchronous).
    pub rt: tokio::runtime::Handle,
    /// HTTP client for the maintenance endpoints the `Client` does not cover.
    pub http: Http,
    /// The URL the shell was pointed at (normalized), for messages and as a fallback node.
    pub url: String,
    /// Output mode, headers, NULL text.
    pub style: Style,
    /// Consistency of reads outside a transaction (`.consistency`).
    pub consistency: Consistency,
    /// Print each statement's run time (`.timer`).
    pub timer: bool,
    /// Print each write's counts (`.changes`).
    pub changes: bool,
    /// Stop a script at its first error (`--bail`, `.bail`).
    pub bail: bool,
    /// Where results go.
    pub out: Output,
    /// Set by `.quit`/`.exit`: the exit code.
    pub quit: Option<i32>,
    /// Table and column names for completion.
    pub names: Arc<RwLock<Names>>,
    /// How deep `.read` files are nested.
    pub read_depth: usize,
    tx: Option<Transaction>,
}

/// Does this statement change the schema (so that completion names are stale)?
pub fn is_ddl(sql: &str) -> bool {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    ["CREATE", "DROP", "ALTER"].iter().any(|k| first.eq_ignore_ascii_case(k))
}

/// Might this write answer with rows (a `RETURNING` clause)? Lexical and conservative.
pub fn may_return_rows(sql: &str) -> bool {
    sql.as_bytes().windows(9).any(|w| w.eq_ignore_ascii_case(b"returning"))
}

impl Session {
    /// A session over `client`, printing to standard output in `style`.
    pub fn new(
        client: Client,
        rt: tokio::runtime::Handle,
        http: Http,
        url: String,
        style: Style,
        consistency: Consistency,
    ) -> Session {
        Session {
            client,
            rt,
            http,
            url,
            style,
            consistency,
            timer: false,
            changes: false,
            bail: false,
            out: Output::Stdout(std::io::stdout()),
            quit: None,
            names: Arc::default(),
            read_depth: 0,
            tx: None,
        }
    }

    /// True while a `BEGIN` is open.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Run `fut` to completion on the runtime; Ctrl-C abandons it. `write` says whether an
    /// abandoned call may still have been applied.
    pub fn wait<T, E: Into<ShellError>>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
        write: bool,
    ) -> Result<T> {
        self.rt.block_on(async {
            tokio::select! {
                r = fut => r.map_err(Into::into),
                _ = tokio::signal::ctrl_c() => Err(ShellError::Interrupted(if write {
                    " (the statement may or may not have been applied)"
                } else {
                    ""
                })),
            }
        })
    }

    /// Print a result set in the current style.
    pub fn print_rows(&mut self, rows: &Rows) -> Result<()> {
        format::render(rows, &self.style, &mut self.out)?;
        Ok(())
    }

    /// Run one SQL statement: reads at the session's consistency (or inside the open
    /// transaction), writes through Raft, `BEGIN`/`COMMIT`/`ROLLBACK` as an interactive
    /// transaction on the server.
    pub fn statement(&mut self, sql: &str) -> Result<()> {
        let started = Instant::now();
        match hiqlite::statement_kind(sql) {
            StatementKind::Empty => return Ok(()),
            StatementKind::Begin => {
                if self.tx.is_some() {
                    return Err(ShellError::Usage("cannot start a transaction within a transaction".into()));
                }
                let tx = self.wait(self.client.begin(), false)?;
                self.tx = Some(tx);
            }
            StatementKind::Commit => {
                let tx = self
                    .tx
                    .take()
                    .ok_or_else(|| ShellError::Usage("cannot commit - no transaction is active".into()))?;
                self.wait(tx.commit(), true)?;
                self.refresh_names();
            }
            StatementKind::Rollback => {
                let tx = self
                    .tx
                    .take()
                    .ok_or_else(|| ShellError::Usage("cannot rollback - no transaction is active".into()))?;
                self.wait(tx.rollback(), false)?;
            }
            StatementKind::Savepoint => {
                let tx = self.tx.as_ref().ok_or_else(|| {
                    ShellError::Usage(
                        "SAVEPOINT, RELEASE and ROLLBACK TO work inside BEGIN ... COMMIT in this shell"
                            .into(),
                    )
                })?;
                let r = self.wait(tx.execute(sql, ()), false);
                self.check_tx(r)?;
            }
            StatementKind::Read => {
                let rows = match &self.tx {
                    Some(tx) => {
                        let r = self.wait(tx.query(sql, ()), false);
                        self.check_tx(r)?
                    }
                    None => self.wait(self.client.query_with(sql, (), self.consistency), false)?,
                };
                self.print_rows(&rows)?;
            }
            StatementKind::Write => {
                let r = match &self.tx {
                    Some(tx) => {
                        let r = self.wait(tx.execute(sql, ()), false);
                        self.check_tx(r)?
                    }
                    None => self.wait(self.client.execute(sql, ()), true)?,
                };
                self.after_write(sql, &r)?;
            }
        }
        self.report_time(started)
    }

    /// A statement's result inside the transaction; when the node says the transaction is gone
    /// (rolled back after being idle, or by a leader change), the session leaves it too.
    fn check_tx<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(ShellError::Db(hiqlite::Error::Sql { message, .. })) = &r {
            if message.starts_with("no transaction ") || message.starts_with("transaction aborted") {
                self.tx = None;
            }
        }
        r
    }

    fn after_write(&mut self, sql: &str, r: &ExecResult) -> Result<()> {
        if !r.rows.columns.is_empty() {
            self.print_rows(&r.rows)?;
        }
        if self.changes {
            writeln!(self.out, "changes: {}   last insert rowid: {}", r.rows_affected, r.last_insert_id)?;
        }
        if is_ddl(sql) && self.tx.is_none() {
            self.refresh_names();
        }
        Ok(())
    }

    fn report_time(&mut self, started: Instant) -> Result<()> {
        if self.timer {
            writeln!(self.out, "Run Time: real {:.3}", started.elapsed().as_secs_f64())?;
        }
        Ok(())
    }

    /// Run plain writes (no transaction control, no `RETURNING`) as one batch: one request and
    /// one log entry, each statement applied or failed on its own. Returns each statement's
    /// error by index; `Err` when the batch as a whole failed.
    pub fn batch(&mut self, stmts: &[&str]) -> Result<Vec<(usize, ShellError)>> {
        let started = Instant::now();
        let results = self.wait(self.client.batch(stmts.iter().copied()), true)?;
        let mut errors = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(r) => {
                    if self.changes {
                        writeln!(
                            self.out,
                            "changes: {}   last insert rowid: {}",
                            r.rows_affected, r.last_insert_id
                        )?;
                    }
                }
                Err(e) => errors.push((i, ShellError::Db(e))),
            }
        }
        if stmts.iter().any(|s| is_ddl(s)) {
            self.refresh_names();
        }
        self.report_time(started)?;
        Ok(errors)
    }

    /// Run plain writes inside the open transaction as one request: one SQL text between a
    /// savepoint and its release. When a statement fails, the chunk is rolled back to the
    /// savepoint and run again statement by statement, so that each error is reported and the
    /// others applied exactly as one at a time would.
    pub fn tx_chunk(&mut self, stmts: &[&str]) -> Result<Vec<(usize, ShellError)>> {
        const SP: &str = "hiqlite_shell_chunk";
        let Some(tx) = &self.tx else { return Err(ShellError::Usage("no transaction is active".into())) };
        let started = Instant::now();
        let mut text = format!("SAVEPOINT {SP};\n");
        for st in stmts {
            text.push_str(st);
            text.push_str(if st.trim_end().ends_with(';') { "\n" } else { "\n;\n" });
        }
        text.push_str(&format!("RELEASE {SP};"));
        let r = self.wait(tx.execute(&text, ()), false);
        match self.check_tx(r) {
            Ok(_) => {}
            // A statement failed (the transaction is still open): find which, one at a time.
            Err(ShellError::Db(hiqlite::Error::Sql { .. })) if self.tx.is_some() => {
                let undo = format!("ROLLBACK TO {SP}; RELEASE {SP};");
                let r = match &self.tx {
                    Some(tx) => self.wait(tx.execute(&undo, ()), false),
                    None => Err(ShellError::Usage("no transaction is active".into())),
                };
                self.check_tx(r)?;
                let mut errors = Vec::new();
                for (i, st) in stmts.iter().enumerate() {
                    if let Err(e) = self.statement(st) {
                        errors.push((i, e));
                    }
                }
                return Ok(errors);
            }
            Err(e) => return Err(e),
        }
        self.report_time(started)?;
        Ok(Vec::new())
    }

    /// Reload the table and column names completion offers (best effort: a failure leaves the
    /// old names).
    pub fn refresh_names(&mut self) {
        const Q: &str = "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p \
                         WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid";
        let Ok(rows) = self.wait(self.client.query_with(Q, (), self.consistency), false) else { return };
        let mut names = Names::default();
        for r in &rows.rows {
            if let [hiqlite::Value::Text(t), hiqlite::Value::Text(c)] = r.as_slice() {
                if names.tables.last() != Some(t) {
                    names.tables.push(t.clone());
                }
                names.columns.entry(t.clone()).or_default().push(c.clone());
            }
        }
        if let Ok(mut n) = self.names.write() {
            *n = names;
        }
    }

    /// The API URL of the leader (for the maintenance endpoints), or the shell's URL when the
    /// cluster does not name one.
    fn leader_url(&self) -> String {
        let nodes = self.wait(self.client.nodes(), false).unwrap_or_default();
        match nodes.into_iter().find(|n| n.leader) {
            Some(n) if n.api_addr.contains("://") => n.api_addr.trim_end_matches('/').to_string(),
            Some(n) => {
                let scheme = self.url.split("://").next().unwrap_or("http");
                format!("{scheme}://{}", n.api_addr.trim_end_matches('/'))
            }
            None => self.url.clone(),
        }
    }

    /// Run a maintenance call on the leader's API URL; if that node cannot be connected to (an
    /// advertised address this machine cannot reach), on the shell's own URL instead (nodes
    /// forward writes to the leader).
    pub fn on_leader<T, Fut>(&self, write: bool, call: impl Fn(String) -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T, TransferError>>,
    {
        let leader = self.leader_url();
        let own = self.url.clone();
        self.wait(
            async move {
                match call(leader.clone()).await {
                    Err(TransferError::Network { source, .. }) if source.is_connect() && leader != own => {
                        call(own).await
                    }
                    r => r,
                }
            },
            write,
        )
    }

    /// End the session: roll back an open transaction, flush the output.
    pub fn close(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = self.wait(tx.rollback(), false);
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_classes() {
        assert!(is_ddl("  create table t (a)"));
        assert!(is_ddl("DROP INDEX i"));
        assert!(!is_ddl("INSERT INTO creates VALUES (1)"));
        assert!(may_return_rows("insert into t values (1) Returning *"));
        assert!(!may_return_rows("insert into t values (1)"));
    }
}
