//! Line editing (rustyline): multi-line entry until a statement is complete, the history file,
//! and completion of SQL keywords, table and column names, dot-commands and their arguments.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::split::Splitter;

/// The schema names completion offers, refreshed by the session after schema changes.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// Tables and views.
    pub tables: Vec<String>,
    /// Columns of each table or view.
    pub columns: BTreeMap<String, Vec<String>>,
}

/// SQLite's keywords (`sqlite3_keyword_name`), plus common function names.
const KEYWORDS: &[&str] = &[
    "ABORT",
    "ACTION",
    "ADD",
    "AFTER",
    "ALL",
    "ALTER",
    "ALWAYS",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEFORE",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATABASE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "EACH",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUDE",
    "EXCLUSIVE",
    "EXISTS",
    "EXPLAIN",
    "FAIL",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GENERATED",
    "GLOB",
    "GROUP",
    "GROUPS",
    "HAVING",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "IN",
    "INDEX",
    "INDEXED",
    "INITIALLY",
    "INNER",
    "INSERT",
    "INSTEAD",
    "INTERSECT",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MATCH",
    "MATERIALIZED",
    "NATURAL",
    "NO",
    "NOT",
    "NOTHING",
    "NOTNULL",
    "NULL",
    "NULLS",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OTHERS",
    "OUTER",
    "OVER",
    "PARTITION",
    "PLAN",
    "PRAGMA",
    "PRECEDING",
    "PRIMARY",
    "QUERY",
    "RAISE",
    "RANGE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESTRICT",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "ROW",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "STRICT",
    "TABLE",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TIES",
    "TO",
    "TRANSACTION",
    "TRIGGER",
    "UNBOUNDED",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VIEW",
    "VIRTUAL",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHOUT",
    "INTEGER",
    "TEXT",
    "REAL",
    "BLOB",
    "NUMERIC",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "TOTAL",
    "GROUP_CONCAT",
    "COALESCE",
    "IFNULL",
    "LENGTH",
    "LOWER",
    "UPPER",
    "SUBSTR",
    "TYPEOF",
    "JSON",
    "JSON_EXTRACT",
    "DATETIME",
    "STRFTIME",
    "ROWID",
];

/// The history file: `--history`, else `HIQLITE_HISTORY`, else `~/.hiqlite_history`; an empty
/// name keeps no history.
pub fn history_path(given: Option<PathBuf>) -> Option<PathBuf> {
    match given {
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some(p),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".hiqlite_history")),
    }
}

/// True when `text` holds no unfinished statement (Enter then runs it).
pub fn input_complete(text: &str) -> bool {
    let mut s = Splitter::new();
    for line in text.split_inclusive('\n') {
        s.push_line(line);
    }
    !s.has_pending()
}

/// rustyline's helper: completion and multi-line validation; no hints or colours.
pub struct ShellHelper {
    names: Arc<RwLock<Names>>,
    files: FilenameCompleter,
}

impl ShellHelper {
    /// A helper completing from `names`.
    pub fn new(names: Arc<RwLock<Names>>) -> Self {
        ShellHelper { names, files: FilenameCompleter::new() }
    }

    fn sql_candidates(&self, word: &str, table: Option<&str>) -> Vec<String> {
        let lower = word.chars().next().is_some_and(char::is_lowercase);
        let starts = |c: &str| c.get(..word.len()).is_some_and(|p| p.eq_ignore_ascii_case(word));
        let names = self.names.read().map(|n| n.clone()).unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        if let Some(t) = table {
            if let Some((_, cols)) = names.columns.iter().find(|(k, _)| k.eq_ignore_ascii_case(t)) {
                out.extend(cols.iter().filter(|c| starts(c)).cloned());
            }
            return out;
        }
        out.extend(names.tables.iter().filter(|t| starts(t)).cloned());
        for cols in names.columns.values() {
            out.extend(cols.iter().filter(|c| starts(c)).cloned());
        }
        out.extend(KEYWORDS.iter().filter(|k| starts(k)).map(|k| {
            if lower {
                k.to_ascii_lowercase()
            } else {
                k.to_string()
            }
        }));
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert(c.clone()));
        out
    }

    fn dot_candidates(&self, line: &str, pos: usize) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let pair = |s: &str| Pair { display: s.to_string(), replacement: s.to_string() };
        let Some(space) = before.find(char::is_whitespace) else {
            let cands = super::dot::COMMANDS
                .iter()
                .filter(|(c, _, _)| c.starts_with(before))
                .map(|(c, _, _)| pair(c));
            return Ok((0, cands.collect()));
        };
        let cmd = &before[..space];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let pick = |list: &[&str]| -> Vec<Pair> {
            list.iter().filter(|x| x.starts_with(word)).map(|x| pair(x)).collect()
        };
        Ok(match cmd {
            ".read" | ".backup" | ".save" | ".restore" | ".output" | ".out" => {
                return self.files.complete_path(line, pos)
            }
            ".mode" => (start, pick(&super::format::Mode::NAMES)),
            ".consistency" => (start, pick(&["local", "leader", "linearizable"])),
            ".timer" | ".headers" | ".header" | ".changes" | ".bail" => (start, pick(&["on", "off"])),
            ".schema" | ".indexes" | ".indices" | ".dump" | ".tables" => {
                let names = self.names.read().map(|n| n.tables.clone()).unwrap_or_default();
                (start, names.iter().filter(|t| t.starts_with(word)).map(|t| pair(t)).collect())
            }
            _ => (pos, Vec::new()),
        })
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        // The line being edited within a multi-line entry.
        let line_start = line[..pos].rfind('\n').map_or(0, |i| i + 1);
        let current = &line[line_start..];
        if line_start == 0 && current.trim_start().starts_with('.') {
            return self.dot_candidates(line, pos);
        }
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        // `table.col`: columns of that table.
        let table = before[..start].strip_suffix('.').map(|t| {
            let ts = t
                .char_indices()
                .rev()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                .map_or(0, |(i, c)| i + c.len_utf8());
            &t[ts..]
        });
        if word.is_empty() && table.is_none() {
            return Ok((pos, Vec::new()));
        }
        let cands = self.sql_candidates(word, table);
        Ok((start, cands.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect()))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if input_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ShellHelper {
        let mut n = Names { tables: vec!["users".into(), "orders".into()], ..Names::default() };
        n.columns.insert("users".into(), vec!["id".into(), "name".into()]);
        n.columns.insert("orders".into(), vec!["id".into(), "user_id".into(), "total".into()]);
        ShellHelper::new(Arc::new(RwLock::new(n)))
    }

    fn complete(line: &str) -> (usize, Vec<String>) {
        let h = helper();
        let hist = rustyline::history::DefaultHistory::new();
        let ctx = Context::new(&hist);
        let (at, c) = h.complete(line, line.len(), &ctx).expect("complete");
        (at, c.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn completes_keywords_tables_and_columns() {
        assert_eq!(complete("sel"), (0, vec!["select".to_string()]));
        assert_eq!(
            complete("SELECT * FROM us"),
            (14, vec!["users".to_string(), "user_id".to_string(), "using".to_string()])
        );
        assert_eq!(complete("SELECT orders.to"), (14, vec!["total".to_string()]));
        assert!(complete("SELECT na").1.contains(&"name".to_string()));
        // Names with multi-byte characters neither match wrongly nor break the prefix test.
        let h = ShellHelper::new(Arc::new(RwLock::new(Names {
            tables: vec!["été".into()],
            ..Names::default()
        })));
        assert_eq!(h.sql_candidates("é", None), vec!["été".to_string()]);
        assert!(h.sql_candidates("e", None).iter().all(|c| c != "été"));
        assert_eq!(complete(".ta"), (0, vec![".tables".to_string()]));
        assert_eq!(complete(".mode js"), (6, vec!["json".to_string()]));
        assert_eq!(complete(".schema or"), (8, vec!["orders".to_string()]));
    }

    #[test]
    fn entries_continue_until_a_statement_is_complete() {
        assert!(input_complete(".tables"));
        assert!(input_complete("SELECT 1;"));
        assert!(!input_complete("SELECT 1"));
        assert!(!input_complete("CREATE TRIGGER t AFTER INSERT ON x BEGIN\nSELECT 1;"));
        assert!(input_complete("CREATE TRIGGER t AFTER INSERT ON x BEGIN\nSELECT 1;\nEND;"));
        assert!(input_complete(""));
    }
}
