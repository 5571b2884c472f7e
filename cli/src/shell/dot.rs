//! Dot-commands: `.help`, schema listings, dump/backup/restore/read, cluster views and the
//! session's settings, parsed from one input line and run against the session.

use std::io::Write;
use std::path::PathBuf;

use hiqlite::{Consistency, Rows, Value};

use super::error::{Result, ShellError};
use super::format::{self, Mode, Style};
use super::session::{Output, Session};

/// Every dot-command with its arguments and what it does (`.help`, completion).
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (".backup", "FILE", "download a consistent backup (a SQLite file) of the database to FILE (a new file)"),
    (".bail", "on|off", "stop a script at the first error"),
    (".changes", "on|off", "show the rows changed and last insert rowid of each write"),
    (".consistency", "[LEVEL]", "show or set read consistency: local, leader or linearizable"),
    (".dump", "[TABLE...]", "print the database (or TABLEs) as SQL that recreates it"),
    (".exit", "[CODE]", "leave the shell (with exit code CODE)"),
    (".headers", "on|off", "show column names in table, box, csv and list modes"),
    (".help", "", "show this message"),
    (".indexes", "[TABLE]", "list the indexes (of TABLE; a LIKE pattern)"),
    (".leader", "", "show the cluster's leader"),
    (".mode", "[MODE]", "show or set the output mode: table, box, csv, json, line, list"),
    (".nodes", "", "list the cluster's nodes"),
    (".nullvalue", "TEXT", "show NULL as TEXT (default NULL)"),
    (".output", "[FILE]", "send results to FILE, or back to standard output"),
    (".quit", "", "leave the shell"),
    (".read", "FILE", "run the SQL and dot-commands of FILE"),
    (
        ".restore",
        "FILE",
        "load FILE into the cluster: a SQLite file replaces every table, SQL text runs as one transaction",
    ),
    (".schema", "[PATTERN]", "show the CREATE statements (of tables matching the LIKE PATTERN)"),
    (".status", "", "show the status of the node the shell talks to"),
    (".tables", "[PATTERN]", "list the tables and views (matching the LIKE PATTERN)"),
    (".timer", "on|off", "show how long each statement took"),
];

/// Split a dot-command line into words; `'...'` and `"..."` quote words with spaces.
fn words(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut w = String::new();
        if c == '\'' || c == '"' {
            chars.next();
            let mut closed = false;
            for d in chars.by_ref() {
                if d == c {
                    closed = true;
                    break;
                }
                w.push(d);
            }
            if !closed {
                return Err(ShellError::Usage(format!("unterminated {c}quote{c} in: {line}")));
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                w.push(d);
                chars.next();
            }
        }
        out.push(w);
    }
    Ok(out)
}

fn on_off(cmd: &str, arg: Option<&String>) -> Result<bool> {
    match arg.map(|a| a.to_ascii_lowercase()).as_deref() {
        Some("on" | "yes" | "true" | "1") => Ok(true),
        Some("off" | "no" | "false" | "0") => Ok(false),
        _ => Err(ShellError::Usage(format!("usage: {cmd} on|off"))),
    }
}

fn one_arg<'a>(cmd: &str, what: &str, args: &'a [String]) -> Result<&'a String> {
    match args {
        [a] => Ok(a),
        _ => Err(ShellError::Usage(format!("usage: {cmd} {what}"))),
    }
}

/// Text values of the first column of a query's rows.
fn names(s: &Session, sql: &str, pattern: &str) -> Result<Vec<String>> {
    let rows = s.wait(s.client.query_with(sql, hiqlite::params![pattern], s.consistency), false)?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|r| match r.into_iter().next() {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        })
        .collect())
}

/// Run the dot-command `line` (starting with `.`).
pub fn run(s: &mut Session, line: &str) -> Result<()> {
    let w = words(line)?;
    let Some(cmd) = w.first().map(|c| c.to_ascii_lowercase()) else { return Ok(()) };
    let args = &w[1..];
    match cmd.as_str() {
        ".help" => {
            let width = COMMANDS.iter().map(|(c, a, _)| c.len() + a.len() + 1).max().unwrap_or(0);
            for (c, a, what) in COMMANDS {
                let head = format!("{c} {a}");
                writeln!(s.out, "{head:width$}  {what}")?;
            }
            writeln!(
                s.out,
                "SQL statements end with \";\" and may span lines. Ctrl-C cancels, Ctrl-D leaves."
            )?;
        }
        ".quit" | ".exit" | ".q" => {
            let code = match args.first() {
                Some(c) => c
                    .parse()
                    .map_err(|_| ShellError::Usage(format!("usage: {cmd} [CODE]: {c} is no number")))?,
                None => 0,
            };
            s.quit = Some(code);
        }
        ".tables" => {
            let pattern = args.first().map_or("%", String::as_str);
            let list = names(
                s,
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' \
                 AND name LIKE ?1 ORDER BY 1",
                pattern,
            )?;
            write!(s.out, "{}", format::columns_of_names(&list, 80))?;
        }
        ".indexes" | ".indices" => {
            let pattern = args.first().map_or("%", String::as_str);
            let list = names(
                s,
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name LIKE ?1 ORDER BY 1",
                pattern,
            )?;
            write!(s.out, "{}", format::columns_of_names(&list, 80))?;
        }
        ".schema" => {
            let pattern = args.first().map_or("%", String::as_str);
            let list = names(
                s,
                "SELECT sql FROM sqlite_master WHERE sql NOT NULL AND name NOT LIKE 'sqlite_%' \
                 AND (tbl_name LIKE ?1 OR name LIKE ?1) ORDER BY tbl_name = name DESC, rowid",
                pattern,
            )?;
            for sql in list {
                writeln!(s.out, "{sql};")?;
            }
        }
        ".dump" => {
            let http = &s.http;
            let text = s.on_leader(false, |url| async move { http.dump(&url, args).await })?;
            s.out.write_all(text.as_bytes())?;
        }
        ".backup" | ".save" => {
            let path = PathBuf::from(one_arg(&cmd, "FILE", args)?);
            let (http, path) = (&s.http, &path);
            let (n, index) = s.on_leader(false, |url| async move { http.download(&url, path).await })?;
            let at = index.map(|i| format!(" (log index {i})")).unwrap_or_default();
            eprintln!("backup of {n} bytes written to {}{at}", path.display());
        }
        ".restore" => {
            let path = PathBuf::from(one_arg(&cmd, "FILE", args)?);
            if s.in_transaction() {
                return Err(ShellError::Usage(".restore cannot run inside a transaction".into()));
            }
            let (http, path) = (&s.http, &path);
            let n = s.on_leader(true, |url| async move { http.load(&url, path).await })?;
            eprintln!("restored {n} bytes from {}", path.display());
            s.refresh_names();
        }
        ".read" => {
            let path = PathBuf::from(one_arg(&cmd, "FILE", args)?);
            super::script::read_file(s, &path)?;
            s.refresh_names();
        }
        ".nodes" => {
            let nodes = s.wait(s.client.nodes(), false)?;
            let yes = |b: bool| Value::Text(if b { "yes" } else { "no" }.into());
            let rows = Rows {
                columns: ["id", "api_addr", "raft_addr", "voter", "leader", "reachable", "rtt_ms"]
                    .map(String::from)
                    .to_vec(),
                types: Vec::new(),
                rows: nodes
                    .into_iter()
                    .map(|n| {
                        vec![
                            Value::Integer(i64::try_from(n.id).unwrap_or(i64::MAX)),
                            Value::Text(n.api_addr),
                            Value::Text(n.raft_addr),
                            yes(n.voter),
                            yes(n.leader),
                            yes(n.reachable),
                            n.rtt.map_or(Value::Null, |d| Value::Real((d.as_secs_f64() * 1e6).round() / 1e3)),
                        ]
                    })
                    .collect(),
            };
            s.print_rows(&rows)?;
        }
        ".status" => {
            let st = s.wait(s.client.status(), false)?;
            let opt = |v: Option<u64>| {
                v.map_or(Value::Null, |x| Value::Integer(i64::try_from(x).unwrap_or(i64::MAX)))
            };
            let int = |x: u64| opt(Some(x));
            let members: Vec<String> =
                st.members.iter().map(|(id, m)| format!("{id}={}/{}", m.raft_addr, m.api_addr)).collect();
            let voters: Vec<String> = st.voters.iter().map(u64::to_string).collect();
            let fields: Vec<(&str, Value)> = vec![
                ("id", int(st.id)),
                ("state", Value::Text(st.state)),
                ("leader", opt(st.leader)),
                ("term", int(st.term)),
                ("last_log_index", opt(st.last_log_index)),
                ("applied_index", opt(st.applied_index)),
                ("snapshot_index", opt(st.snapshot_index)),
                ("members", Value::Text(members.join(", "))),
                ("voters", Value::Text(voters.join(", "))),
                ("api_addr", Value::Text(st.api_addr)),
                ("raft_addr", Value::Text(st.raft_addr)),
                ("startup", Value::Text(st.startup)),
                ("healthy", Value::Text(if st.healthy { "yes" } else { "no" }.into())),
                ("error", st.error.map_or(Value::Null, Value::Text)),
            ];
            let (columns, row): (Vec<String>, Vec<Value>) =
                fields.into_iter().map(|(k, v)| (k.to_string(), v)).unzip();
            let rows = Rows { columns, types: Vec::new(), rows: vec![row] };
            let style = Style { mode: Mode::Line, ..s.style.clone() };
            format::render(&rows, &style, &mut s.out)?;
        }
        ".leader" => {
            let nodes = s.wait(s.client.nodes(), false)?;
            match nodes.iter().find(|n| n.leader) {
                Some(n) => writeln!(s.out, "node {} at {} (raft {})", n.id, n.api_addr, n.raft_addr)?,
                None => writeln!(s.out, "no leader known")?,
            }
        }
        ".consistency" => match args.first() {
            None => writeln!(s.out, "{}", s.consistency)?,
            Some(level) => {
                // rqlite's names too.
                s.consistency = match level.to_ascii_lowercase().as_str() {
                    "none" => Consistency::Local,
                    "weak" => Consistency::Leader,
                    "strong" => Consistency::Linearizable,
                    other => other.parse()?,
                };
            }
        },
        ".timer" => s.timer = on_off(&cmd, args.first())?,
        ".headers" | ".header" => s.style.headers = on_off(&cmd, args.first())?,
        ".changes" => s.changes = on_off(&cmd, args.first())?,
        ".bail" => s.bail = on_off(&cmd, args.first())?,
        ".mode" => match args.first() {
            None => writeln!(s.out, "{}", s.style.mode.name())?,
            Some(m) => s.style.mode = m.parse().map_err(ShellError::Usage)?,
        },
        ".nullvalue" => s.style.null = one_arg(&cmd, "TEXT", args)?.clone(),
        ".output" | ".out" => {
            s.out.flush()?;
            s.out = match args.first().map(String::as_str) {
                None | Some("-" | "stdout") => Output::Stdout(std::io::stdout()),
                Some(p) => {
                    let f = std::fs::File::create(p).map_err(|e| ShellError::file(p, e))?;
                    Output::File(std::io::BufWriter::new(f))
                }
            };
        }
        _ => {
            return Err(ShellError::Usage(format!(
                "unknown command or invalid arguments: \"{}\". Enter \".help\" for help",
                cmd.trim_start_matches('.')
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_respect_quotes() {
        assert_eq!(words(".backup 'my file.db'").ok(), Some(vec![".backup".into(), "my file.db".into()]));
        assert_eq!(words("  .mode   csv ").ok(), Some(vec![".mode".into(), "csv".into()]));
        assert!(words(".read \"open").is_err());
    }

    #[test]
    fn commands_are_sorted_for_help() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.0).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
}
