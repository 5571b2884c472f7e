//! Statement parameters as SQLite numbers them, learned from the SQL text alone so that
//! `hiqlite_bind_*` can check indexes and names before anything reaches a node (a remote client
//! has no local SQLite to ask).

/// SQLite's default `SQLITE_MAX_VARIABLE_NUMBER`.
const MAX_VARIABLE_NUMBER: usize = 32766;

/// The parameters of one SQL text.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ParamInfo {
    /// `sqlite3_bind_parameter_count`: the largest parameter index.
    pub count: usize,
    /// Named parameters (with their prefix, e.g. `:id`) and their 1-based index.
    pub names: Vec<(String, usize)>,
    /// The word RETURNING appears outside literals, quoted names and comments.
    pub returning: bool,
}

impl ParamInfo {
    /// The index of a named parameter. A name without prefix matches `:name`, `@name`, `$name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        let find = |n: &str| self.names.iter().find(|(k, _)| k == n).map(|(_, i)| *i);
        if name.starts_with([':', '@', '$', '?']) {
            return find(name);
        }
        [":", "@", "$"].iter().find_map(|p| find(&format!("{p}{name}")))
    }

    /// The name of parameter `index` (1-based), if it has one.
    #[cfg(test)]
    pub fn name_of(&self, index: usize) -> Option<&str> {
        self.names.iter().find(|(_, i)| *i == index).map(|(n, _)| n.as_str())
    }
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Number parameters the way SQLite's tokenizer does: `?` takes the next index, `?NNN` index NNN,
/// a name (`:a`, `@a`, `$a`) the next index at its first use and the same index after. Strings,
/// quoted identifiers and comments are skipped. Also notes a RETURNING clause.
pub(crate) fn scan(sql: &str) -> ParamInfo {
    let s = sql.as_bytes();
    let mut info = ParamInfo::default();
    let mut i = 0;
    let skip_quoted = |mut i: usize, close: u8, doubled: bool| -> usize {
        i += 1;
        while i < s.len() {
            if s[i] == close {
                if doubled && s.get(i + 1) == Some(&close) {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i += 1;
        }
        i
    };
    while i < s.len() {
        let c = s[i];
        match c {
            b'\'' | b'"' | b'`' => i = skip_quoted(i, c, true),
            b'[' => i = skip_quoted(i, b']', false),
            b'-' if s.get(i + 1) == Some(&b'-') => {
                while i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < s.len() && !(s[i] == b'*' && s.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(s.len());
            }
            b'?' => {
                let start = i + 1;
                i = start;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start {
                    if info.count < MAX_VARIABLE_NUMBER {
                        info.count += 1;
                    }
                } else {
                    // An index SQLite refuses (0, too large) is left for SQLite to report.
                    let n: usize = sql[start..i].parse().unwrap_or(0);
                    if (1..=MAX_VARIABLE_NUMBER).contains(&n) {
                        info.count = info.count.max(n);
                        let name = &sql[start - 1..i];
                        if !info.names.iter().any(|(k, _)| k == name) {
                            info.names.push((name.to_owned(), n));
                        }
                    }
                }
            }
            b':' | b'@' | b'$' => {
                let start = i;
                i += 1;
                loop {
                    while i < s.len() && is_id_char(s[i]) {
                        i += 1;
                    }
                    // Tcl-style `$a::b` and `$a(x)` names.
                    if c == b'$' && s.get(i) == Some(&b':') && s.get(i + 1) == Some(&b':') {
                        i += 2;
                        continue;
                    }
                    if c == b'$' && s.get(i) == Some(&b'(') && i > start + 1 {
                        while i < s.len() && s[i] != b')' && !s[i].is_ascii_whitespace() {
                            i += 1;
                        }
                        if s.get(i) == Some(&b')') {
                            i += 1;
                        }
                    }
                    break;
                }
                if i > start + 1 {
                    let name = &sql[start..i];
                    if !info.names.iter().any(|(k, _)| k == name) && info.count < MAX_VARIABLE_NUMBER {
                        info.count += 1;
                        info.names.push((name.to_owned(), info.count));
                    }
                }
            }
            c if is_id_char(c) => {
                let start = i;
                while i < s.len() && is_id_char(s[i]) {
                    i += 1;
                }
                info.returning |= sql[start..i].eq_ignore_ascii_case("returning");
            }
            _ => i += 1,
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> (usize, Vec<(&'static str, usize)>) {
        let i = scan(sql);
        let n: Vec<(&'static str, usize)> =
            i.names.into_iter().map(|(k, v)| (&*Box::leak(k.into_boxed_str()), v)).collect();
        (i.count, n)
    }

    #[test]
    fn numbers_parameters_like_sqlite() {
        assert_eq!(names("SELECT 1"), (0, vec![]));
        assert_eq!(names("INSERT INTO t VALUES (?, ?, ?)"), (3, vec![]));
        assert_eq!(names("SELECT ?2, ?"), (3, vec![("?2", 2)]));
        assert_eq!(names("SELECT :a, @b, :a, $c, ?"), (4, vec![(":a", 1), ("@b", 2), ("$c", 3)]));
        assert_eq!(names("SELECT ?1, :x, ?1"), (2, vec![("?1", 1), (":x", 2)]));
        assert_eq!(names("SELECT $a::b, $f(x)"), (2, vec![("$a::b", 1), ("$f(x)", 2)]));
    }

    #[test]
    fn skips_literals_identifiers_and_comments() {
        let sql = "SELECT '?', \"a?\", `:b`, [@c], 'it''s ?' -- ?\n /* :d */ , a$b, x'3f', ?";
        assert_eq!(names(sql), (1, vec![]));
        assert_eq!(names("SELECT 'unterminated ?"), (0, vec![]));
        assert_eq!(names("SELECT : , @"), (0, vec![]));
    }

    #[test]
    fn sees_returning_clauses() {
        assert!(scan("INSERT INTO t VALUES (1) RETURNING id").returning);
        assert!(scan("delete from t returning *").returning);
        for sql in [
            "SELECT 'returning'",
            "SELECT \"returning\" FROM t",
            "UPDATE t SET x = 1 -- returning",
            "SELECT returning_x",
        ] {
            assert!(!scan(sql).returning, "{sql}");
        }
    }

    #[test]
    fn finds_names_with_or_without_prefix() {
        let i = scan("UPDATE t SET v = :v WHERE id = @id");
        assert_eq!(i.index_of(":v"), Some(1));
        assert_eq!(i.index_of("id"), Some(2));
        assert_eq!(i.index_of(":id"), None);
        assert_eq!(i.index_of("nope"), None);
        assert_eq!(i.name_of(2), Some("@id"));
        assert_eq!(i.name_of(3), None);
    }

    #[test]
    fn agrees_with_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        for sql in [
            "SELECT ?, :a, ?5, @b, :a, $c, ?",
            "SELECT '?' || ? || \"x\" || :y -- :z\n, /* ? */ ?3",
            "SELECT ?10, ?",
            "SELECT :a1, :a_1, @a1, :été",
            "SELECT $a::b, $f(x), :x",
            "SELECT x'3f' || ?, [?] FROM (SELECT 1 AS [?])",
        ] {
            let info = scan(sql);
            let stmt = conn.prepare(sql).expect(sql);
            assert_eq!(info.count, stmt.parameter_count(), "{sql}");
            for i in 1..=info.count {
                assert_eq!(info.name_of(i), stmt.parameter_name(i), "{sql}: parameter {i}");
            }
        }
    }
}
