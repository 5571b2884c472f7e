//! Running input through a session: a typed entry, piped standard input, `-c` text and `.read`
//! files, item by item, with errors reported by line and consecutive writes of a script sent
//! in chunks (one request each instead of one per statement): as batches outside a
//! transaction, as savepoint-wrapped SQL text inside one.

use std::io::BufRead;
use std::path::Path;

use hiqlite::StatementKind;

use super::dot;
use super::error::{Result, ShellError};
use super::session::{may_return_rows, Session};
use super::split::{Item, Splitter};

/// Most statements sent in one batch.
const BATCH_STATEMENTS: usize = 500;
/// Most SQL text sent in one batch.
const BATCH_BYTES: usize = 1 << 20;

/// How a source of input is run.
#[derive(Debug, Clone)]
pub struct Mode {
    /// Send runs of plain writes as batches (scripts; never with `bail`, which must stop at the
    /// first failing statement).
    pub batch: bool,
    /// Stop at the first error.
    pub bail: bool,
    /// Name errors by line (`near line N`), with the file name when given.
    pub lines: Option<Option<String>>,
}

/// Feeds items to a session and counts errors.
pub struct Runner<'s> {
    s: &'s mut Session,
    mode: Mode,
    pending: Vec<(String, usize)>,
    pending_bytes: usize,
    /// Errors reported so far.
    pub errors: usize,
    /// True once the run must stop (`.quit`, or an error with `bail`).
    pub stopped: bool,
}

impl<'s> Runner<'s> {
    /// A runner over `s`.
    pub fn new(s: &'s mut Session, mode: Mode) -> Runner<'s> {
        let mode = Mode { batch: mode.batch && !mode.bail, ..mode };
        Runner { s, mode, pending: Vec::new(), pending_bytes: 0, errors: 0, stopped: false }
    }

    fn report(&mut self, at: usize, e: &ShellError) {
        // Nobody reads the output any more (`| head`): stop quietly, as sqlite3 does.
        if matches!(e, ShellError::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe) {
            self.stopped = true;
            return;
        }
        self.errors += 1;
        let _ = std::io::Write::flush(&mut self.s.out);
        match &self.mode.lines {
            Some(Some(file)) => eprintln!("Error: {file} line {at}: {e}"),
            Some(None) => eprintln!("Error: near line {at}: {e}"),
            None => eprintln!("Error: {e}"),
        }
        if self.mode.bail || matches!(e, ShellError::Interrupted(_)) {
            self.stopped = true;
        }
    }

    /// Run one item (or queue it into the current batch).
    pub fn item(&mut self, item: Item) {
        if self.stopped {
            return;
        }
        match item {
            Item::Dot { line, at, .. } => {
                self.flush();
                if self.stopped {
                    return;
                }
                if let Err(e) = dot::run(self.s, &line) {
                    self.report(at, &e);
                }
            }
            Item::Sql { sql, at, .. } => {
                let batchable = self.mode.batch
                    && hiqlite::statement_kind(&sql) == StatementKind::Write
                    && !may_return_rows(&sql);
                if batchable {
                    self.pending_bytes += sql.len();
                    self.pending.push((sql, at));
                    if self.pending.len() >= BATCH_STATEMENTS || self.pending_bytes >= BATCH_BYTES {
                        self.flush();
                    }
                    return;
                }
                self.flush();
                if self.stopped {
                    return;
                }
                if let Err(e) = self.s.statement(&sql) {
                    self.report(at, &e);
                }
            }
        }
        if self.s.quit.is_some() {
            self.stopped = true;
        }
    }

    /// Send the queued writes.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        // Transaction control is never queued: the queue is all inside or all outside one.
        let in_tx = self.s.in_transaction();
        if pending.len() == 1 {
            let (sql, at) = &pending[0];
            if let Err(e) = self.s.statement(sql) {
                self.report(*at, &e);
            }
            return;
        }
        let stmts: Vec<&str> = pending.iter().map(|(s, _)| s.as_str()).collect();
        let r = if in_tx { self.s.tx_chunk(&stmts) } else { self.s.batch(&stmts) };
        match r {
            Ok(errors) => {
                for (i, e) in errors {
                    let at = pending.get(i).map_or(pending[0].1, |p| p.1);
                    self.report(at, &e);
                }
            }
            Err(e) => {
                let (first, last) = (pending[0].1, pending[pending.len() - 1].1);
                let e = match e {
                    e @ ShellError::Interrupted(_) => e,
                    e => ShellError::Usage(format!("{e} (lines {first} to {last}, sent together)")),
                };
                self.report(first, &e);
            }
        }
    }

    /// Run every item of `text`.
    pub fn text(&mut self, text: &str) {
        for item in super::split::items(text) {
            self.item(item);
        }
        self.flush();
    }

    /// Run everything read from `input`, line by line; `on_progress` gets the bytes consumed.
    pub fn stream(&mut self, input: impl BufRead, mut on_progress: impl FnMut(u64)) -> Result<()> {
        let mut sp = Splitter::new();
        let mut done = 0u64;
        for line in input.split(b'\n') {
            let mut line = line.map_err(ShellError::Input)?;
            line.push(b'\n');
            done += line.len() as u64;
            let text = String::from_utf8_lossy(&line);
            for item in sp.push_line(&text) {
                self.item(item);
            }
            on_progress(done);
            if self.stopped {
                break;
            }
        }
        if !self.stopped {
            if let Some(item) = sp.finish() {
                self.item(item);
            }
        }
        self.flush();
        Ok(())
    }
}

/// `.read FILE`: run a file of SQL and dot-commands. Writes outside transactions go in batches
/// (unless bailing); a progress bar shows on a terminal for large files. Fails when any
/// statement failed (each is reported on its own).
pub fn read_file(s: &mut Session, path: &Path) -> Result<()> {
    const MAX_DEPTH: usize = 16;
    if s.read_depth >= MAX_DEPTH {
        return Err(ShellError::Usage(format!(".read files nest more than {MAX_DEPTH} deep")));
    }
    let file = std::fs::File::open(path).map_err(|e| ShellError::file(path, e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let pb = if len >= 1 << 20 {
        crate::transfer::progress(Some(len), "read")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mode = Mode { batch: true, bail: s.bail, lines: Some(Some(path.display().to_string())) };
    s.read_depth += 1;
    let (errors, r) = {
        let mut runner = Runner::new(s, mode);
        let r = runner.stream(std::io::BufReader::new(file), |n| pb.set_position(n));
        (runner.errors, r)
    };
    s.read_depth -= 1;
    pb.finish_and_clear();
    r?;
    if errors > 0 {
        return Err(ShellError::Usage(format!(
            "{}: {errors} error{} (reported above)",
            path.display(),
            if errors == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}
