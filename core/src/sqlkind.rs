//! What a statement is, told from its text alone, for the language bindings that must decide
//! before sending it whether it is a read (a query, served by one replica) or a write (through
//! Raft), and that map transaction-control text onto their own transaction handling. A remote
//! client has no schema to prepare against, so this is lexical: the first keyword after comments
//! and parentheses, and for `WITH` whether a data-changing keyword follows.

/// The kind of an SQL statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// Only reads (`SELECT`, `VALUES`, `EXPLAIN`, a `WITH` query, a `PRAGMA` without `=`).
    Read,
    /// Changes data or schema (everything else).
    Write,
    /// `BEGIN`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` (of the whole transaction).
    Rollback,
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`: nested transaction control.
    Savepoint,
    /// Nothing but whitespace and comments.
    Empty,
}

fn skip_noise(s: &str) -> &str {
    let mut s = s;
    loop {
        let t = s.trim_start_matches(|c: char| c.is_whitespace() || c == '(' || c == ';');
        if let Some(rest) = t.strip_prefix("--") {
            s = rest.find('\n').map_or("", |i| &rest[i + 1..]);
        } else if let Some(rest) = t.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |i| &rest[i + 2..]);
        } else {
            return t;
        }
    }
}

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
}

/// The words of `sql` outside string literals, quoted names and comments, each with its
/// parenthesis depth.
fn top_words(sql: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |word: &mut String, out: &mut Vec<(usize, String)>, depth: usize| {
        if !word.is_empty() {
            out.push((depth, word.to_ascii_uppercase()));
            word.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' | '[' => {
                flush(&mut word, &mut out, depth);
                let close = if c == '[' { ']' } else { c };
                for d in chars.by_ref() {
                    if d == close {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut word, &mut out, depth);
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut out, depth);
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '(' => {
                flush(&mut word, &mut out, depth);
                depth += 1;
            }
            ')' => {
                flush(&mut word, &mut out, depth);
                depth = depth.saturating_sub(1);
            }
            c if c.is_ascii_alphanumeric() || c == '_' => word.push(c),
            _ => flush(&mut word, &mut out, depth),
        }
    }
    flush(&mut word, &mut out, depth);
    out
}

/// PRAGMAs that take an argument in parentheses and only read.
const READ_PRAGMAS: &[&str] = &[
    "TABLE_INFO",
    "TABLE_XINFO",
    "TABLE_LIST",
    "INDEX_LIST",
    "INDEX_INFO",
    "INDEX_XINFO",
    "FOREIGN_KEY_LIST",
    "FOREIGN_KEY_CHECK",
    "INTEGRITY_CHECK",
    "QUICK_CHECK",
];

/// True when a write's text has a `RETURNING` clause (outside literals and comments), i.e. it
/// answers with rows.
pub(crate) fn has_returning(sql: &str) -> bool {
    // This runs on every remote write: tokenize only texts that mention the word at all.
    sql.as_bytes().windows(9).any(|w| w.eq_ignore_ascii_case(b"returning"))
        && top_words(sql).iter().any(|(_, w)| w == "RETURNING")
}

#[cfg(feature = "server")]
/// Whether a statement text holds an INSERT, UPDATE, DELETE or REPLACE at the top of one of its
/// statements (those set SQLite's `changes()` when they complete).
pub(crate) fn is_dml(sql: &str) -> bool {
    let body = skip_noise(sql);
    let first = words(body).next();
    match first.as_deref() {
        Some("INSERT" | "UPDATE" | "DELETE" | "REPLACE") => true,
        Some("WITH") => top_words(body)
            .into_iter()
            .filter(|(d, _)| *d == 0)
            .map(|(_, w)| w)
            .any(|w| matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "REPLACE")),
        _ => false,
    }
}

/// Classify one statement (see [`StatementKind`]).
pub fn statement_kind(sql: &str) -> StatementKind {
    let body = skip_noise(sql);
    let Some(first) = words(body).next() else { return StatementKind::Empty };
    match first.as_str() {
        "SELECT" | "VALUES" | "EXPLAIN" => StatementKind::Read,
        "PRAGMA" => {
            let w = top_words(body);
            // `PRAGMA [schema.]name`: the name is the last word before `=`, `(` or the end.
            let name = w.iter().skip(1).take_while(|(d, _)| *d == 0).last().map(|(_, n)| n.as_str());
            let has_arg = body.contains('(');
            if body.contains('=') || (has_arg && !name.is_some_and(|n| READ_PRAGMAS.contains(&n))) {
                StatementKind::Write
            } else {
                StatementKind::Read
            }
        }
        "WITH" => {
            // The CTE bodies are in parentheses; the statement's own verb is the first one at
            // depth 0.
            let verb = top_words(body).into_iter().filter(|(d, _)| *d == 0).map(|(_, w)| w).find(|w| {
                matches!(w.as_str(), "SELECT" | "VALUES" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE")
            });
            match verb.as_deref() {
                Some("SELECT") | Some("VALUES") => StatementKind::Read,
                _ => StatementKind::Write,
            }
        }
        "BEGIN" => StatementKind::Begin,
        "COMMIT" | "END" => StatementKind::Commit,
        "ROLLBACK" => {
            if words(body).nth(1).is_some_and(|w| w == "TO") || words(body).nth(2).is_some_and(|w| w == "TO")
            {
                StatementKind::Savepoint
            } else {
                StatementKind::Rollback
            }
        }
        "SAVEPOINT" | "RELEASE" => StatementKind::Savepoint,
        _ => StatementKind::Write,
    }
}

#[cfg(feature = "server")]
/// A statement the writer must run outside its apply transaction, because SQLite only honours
/// it there (or refuses it in a replicated write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Special {
    /// `VACUUM [schema]` (SQLite refuses it inside a transaction).
    Vacuum(Option<String>),
    /// `VACUUM ... INTO file`: writes a file on every node; refused.
    VacuumInto,
    /// `PRAGMA [schema.]foreign_keys = X` / `(X)` (a no-op inside a transaction).
    ForeignKeys,
}

#[cfg(feature = "server")]
#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Punct(char),
}

#[cfg(feature = "server")]
/// Words (upper-cased) and punctuation of `sql`, outside string literals and comments; a
/// quoted name is one word (unquoted, upper-cased).
fn tokens(sql: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(Tok::Word(word.to_ascii_uppercase()));
            word.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                flush(&mut word, &mut out);
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                }
                out.push(Tok::Punct('\''));
            }
            '"' | '`' | '[' => {
                flush(&mut word, &mut out);
                let close = if c == '[' { ']' } else { c };
                let mut name = String::new();
                for d in chars.by_ref() {
                    if d == close {
                        break;
                    }
                    name.push(d);
                }
                out.push(Tok::Word(name.to_ascii_uppercase()));
            }
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut word, &mut out);
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut out);
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '$' => word.push(c),
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => {
                flush(&mut word, &mut out);
                out.push(Tok::Punct(c));
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(feature = "server")]
fn classify(toks: &[Tok]) -> Option<Special> {
    let word = |i: usize| match toks.get(i) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let punct = |i: usize, c: char| toks.get(i) == Some(&Tok::Punct(c));
    match word(0)? {
        "VACUUM" => {
            if toks.iter().any(|t| *t == Tok::Word("INTO".into())) {
                Some(Special::VacuumInto)
            } else {
                Some(Special::Vacuum(word(1).map(str::to_ascii_lowercase)))
            }
        }
        "PRAGMA" => {
            let name = if punct(2, '.') { 3 } else { 1 };
            (word(name) == Some("FOREIGN_KEYS") && (punct(name + 1, '=') || punct(name + 1, '(')))
                .then_some(Special::ForeignKeys)
        }
        _ => None,
    }
}

#[cfg(feature = "server")]
/// What one statement is, if the writer must handle it outside its transaction.
pub(crate) fn special_statement(sql: &str) -> Option<Special> {
    let toks = tokens(sql);
    let end = toks.iter().position(|t| *t == Tok::Punct(';')).unwrap_or(toks.len());
    classify(&toks[..end])
}

#[cfg(feature = "server")]
/// True for `PRAGMA [schema.]foreign_keys` (the query form).
pub(crate) fn is_foreign_keys_query(sql: &str) -> bool {
    if !sql.as_bytes().windows(12).any(|w| w.eq_ignore_ascii_case(b"foreign_keys")) {
        return false;
    }
    let toks = tokens(sql);
    let end = toks.iter().position(|t| *t == Tok::Punct(';')).unwrap_or(toks.len());
    if toks[end..].iter().any(|t| *t != Tok::Punct(';')) {
        return false;
    }
    let t = &toks[..end];
    let pragma = |i: usize| t.first() == Some(&Tok::Word("PRAGMA".into())) && t.len() == i + 1;
    let fk = |i: usize| t.get(i) == Some(&Tok::Word("FOREIGN_KEYS".into()));
    (pragma(1) && fk(1)) || (pragma(3) && t.get(2) == Some(&Tok::Punct('.')) && fk(3))
}

#[cfg(feature = "server")]
/// True when some statement of the text is [`Special`] (conservative: a statement that merely
/// looks like one costs the writer a transaction boundary, never a different result).
pub(crate) fn has_special(sql: &str) -> bool {
    let up = sql.to_ascii_uppercase();
    if !up.contains("VACUUM") && !up.contains("FOREIGN_KEYS") {
        return false;
    }
    tokens(sql).split(|t| *t == Tok::Punct(';')).any(|s| classify(s).is_some())
}

#[cfg(feature = "server")]
/// True when the writer applies `cmd` on its own, outside the apply transaction: a command in
/// autocommit context (rqlite-style independent statements, or a single statement) holding a
/// [`Special`] statement. The proposer gives such a command a log entry of its own.
pub(crate) fn runs_alone(cmd: &crate::command::Command) -> bool {
    match cmd {
        crate::command::Command::Execute { stmts, mode, .. } => {
            (*mode == crate::command::ExecMode::Independent || stmts.len() == 1)
                && stmts.iter().any(|s| has_special(&s.sql))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        use StatementKind::*;
        for (sql, k) in [
            ("SELECT 1", Read),
            ("  -- c\n /* x */ (select * from t)", Read),
            ("values (1)", Read),
            ("PRAGMA table_info(t)", Read),
            ("PRAGMA foreign_keys = ON", Write),
            ("WITH x AS (SELECT 1) SELECT * FROM x", Read),
            ("WITH x AS (SELECT 'delete') SELECT * FROM x", Read),
            ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", Write),
            ("WITH x AS (SELECT 1) -- don't\nINSERT INTO t SELECT * FROM x", Write),
            ("WITH c AS (SELECT replace(a, 'x', 'y') FROM t) SELECT * FROM c", Read),
            ("WITH c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) DELETE FROM t WHERE x IN c", Write),
            ("PRAGMA user_version(5)", Write),
            ("PRAGMA foreign_keys(ON)", Write),
            ("PRAGMA main.table_info(t)", Read),
            ("PRAGMA integrity_check", Read),
            ("SAVEPOINT a", Savepoint),
            ("RELEASE a", Savepoint),
            ("ROLLBACK TO a", Savepoint),
            ("ROLLBACK TRANSACTION TO SAVEPOINT a", Savepoint),
            ("ROLLBACK TRANSACTION", Rollback),
            ("insert into t values (1)", Write),
            ("CREATE TABLE t (x)", Write),
            ("begin immediate", Begin),
            ("COMMIT", Commit),
            ("end transaction", Commit),
            ("ROLLBACK", Rollback),
            ("  -- only a comment", Empty),
            ("", Empty),
        ] {
            assert_eq!(statement_kind(sql), k, "{sql}");
        }
    }

    #[test]
    #[cfg(feature = "server")]
    fn special_statements() {
        use Special::*;
        for (sql, want) in [
            ("VACUUM", Some(Vacuum(None))),
            ("  /* x */ vacuum main;", Some(Vacuum(Some("main".into())))),
            ("VACUUM INTO '/tmp/x.db'", Some(VacuumInto)),
            ("vacuum main into 'f'", Some(VacuumInto)),
            ("PRAGMA foreign_keys=ON", Some(ForeignKeys)),
            ("pragma  Foreign_Keys = 'yes'", Some(ForeignKeys)),
            ("PRAGMA main.foreign_keys(0)", Some(ForeignKeys)),
            ("PRAGMA \"foreign_keys\" = true", Some(ForeignKeys)),
            ("PRAGMA foreign_keys", None),
            ("PRAGMA foreign_key_check", None),
            ("SELECT 'VACUUM'", None),
            ("INSERT INTO t VALUES ('PRAGMA foreign_keys=ON')", None),
        ] {
            assert_eq!(special_statement(sql), want, "{sql}");
        }
        assert!(has_special("INSERT INTO t VALUES (1); PRAGMA foreign_keys = 1; INSERT INTO t VALUES (2)"));
        assert!(is_foreign_keys_query(" pragma FOREIGN_KEYS ;"));
        assert!(is_foreign_keys_query("PRAGMA main.foreign_keys"));
        assert!(!is_foreign_keys_query("PRAGMA foreign_keys=1"));
        assert!(!is_foreign_keys_query("PRAGMA foreign_keys; SELECT 1"));
        assert!(!has_special("INSERT INTO t VALUES ('; VACUUM')"));
        assert!(!has_special("-- VACUUM\nSELECT 1"));
    }

    #[test]
    fn returning_clauses() {
        assert!(has_returning("INSERT INTO t VALUES (1) returning id"));
        assert!(!has_returning("INSERT INTO t VALUES ('returning') -- returning"));
        assert!(!has_returning("UPDATE t SET \"returning\" = 1"));
    }
}
