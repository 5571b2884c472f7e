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
    /// `BEGIN` / `SAVEPOINT`.
    Begin,
    /// `COMMIT` / `END` / `RELEASE`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
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

/// Classify one statement (see [`StatementKind`]).
pub fn statement_kind(sql: &str) -> StatementKind {
    let body = skip_noise(sql);
    let Some(first) = words(body).next() else { return StatementKind::Empty };
    match first.as_str() {
        "SELECT" | "VALUES" | "EXPLAIN" => StatementKind::Read,
        "PRAGMA" if !body.contains('=') => StatementKind::Read,
        "WITH" => {
            // Quoted text could hide a keyword; strip string literals before looking.
            let mut plain = String::with_capacity(body.len());
            let mut quote = None;
            for c in body.chars() {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == '\'' || c == '"' || c == '`' => quote = Some(c),
                    None => plain.push(c),
                }
            }
            if words(&plain).any(|w| matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "REPLACE")) {
                StatementKind::Write
            } else {
                StatementKind::Read
            }
        }
        "BEGIN" | "SAVEPOINT" => StatementKind::Begin,
        "COMMIT" | "END" | "RELEASE" => StatementKind::Commit,
        "ROLLBACK" => StatementKind::Rollback,
        _ => StatementKind::Write,
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
}
