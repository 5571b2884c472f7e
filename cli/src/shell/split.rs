//! Statement splitting: where SQL text ends a statement, as the sqlite3 shell decides it
//! (`sqlite3_complete`'s state machine: quotes, comments and the `BEGIN ... END` body of a
//! `CREATE TRIGGER` are respected), and input cut into SQL statements and dot-command lines.

/// The tokens `sqlite3_complete` tells apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    Semi = 0,
    Ws = 1,
    Other = 2,
    Explain = 3,
    Create = 4,
    Temp = 5,
    Trigger = 6,
    End = 7,
}

/// States: 0 invalid, 1 start (after a complete statement), 2 normal, 3 explain, 4 create,
/// 5 trigger body, 6 semicolon in a trigger body, 7 `END` in a trigger body
/// (SQLite's `complete.c`).
const TRANS: [[u8; 8]; 8] = [
    [1, 0, 2, 3, 4, 2, 2, 2],
    [1, 1, 2, 3, 4, 2, 2, 2],
    [1, 2, 2, 2, 2, 2, 2, 2],
    [1, 3, 3, 2, 4, 2, 2, 2],
    [1, 4, 2, 2, 2, 4, 5, 2],
    [6, 5, 5, 5, 5, 5, 5, 5],
    [6, 6, 5, 5, 5, 5, 5, 7],
    [1, 7, 5, 5, 5, 5, 5, 5],
];

const START: u8 = 1;

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Where a scan of SQL text ended.
struct Scanned {
    /// The state machine's state.
    state: u8,
    /// Inside an unterminated string, quoted name or block comment.
    open: bool,
    /// Anything but whitespace and comments was seen.
    tokens: bool,
}

/// Scan `sql` and call `on_end(i)` with the byte index just past every `;` that completes a
/// statement.
fn scan(sql: &str, mut on_end: impl FnMut(usize)) -> Scanned {
    let b = sql.as_bytes();
    let mut state: u8 = 0;
    let mut tokens = false;
    let mut i = 0;
    while i < b.len() {
        let tok = match b[i] {
            b';' => Tok::Semi,
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' => Tok::Ws,
            b'/' if b.get(i + 1) == Some(&b'*') => {
                match sql[i + 2..].find("*/") {
                    Some(j) => i += 2 + j + 1,
                    None => return Scanned { state, open: true, tokens },
                }
                Tok::Ws
            }
            b'-' if b.get(i + 1) == Some(&b'-') => match sql[i..].find('\n') {
                Some(j) => {
                    i += j;
                    Tok::Ws
                }
                // SQLite counts a last line comment as unfinished (a line break ends it).
                None => return Scanned { state, open: true, tokens },
            },
            q @ (b'\'' | b'"' | b'`' | b'[') => {
                let close = if q == b'[' { b']' } else { q };
                match b[i + 1..].iter().position(|&c| c == close) {
                    // A doubled quote is two strings back to back: the same token class.
                    Some(j) => i += 1 + j,
                    None => return Scanned { state, open: true, tokens: true },
                }
                Tok::Other
            }
            c if is_id_char(c) => {
                let start = i;
                while i + 1 < b.len() && is_id_char(b[i + 1]) {
                    i += 1;
                }
                let w = &sql[start..=i];
                let is = |k: &str| w.eq_ignore_ascii_case(k);
                if is("create") {
                    Tok::Create
                } else if is("trigger") {
                    Tok::Trigger
                } else if is("temp") || is("temporary") {
                    Tok::Temp
                } else if is("end") {
                    Tok::End
                } else if is("explain") {
                    Tok::Explain
                } else {
                    Tok::Other
                }
            }
            _ => Tok::Other,
        };
        tokens |= tok != Tok::Ws;
        let next = TRANS[state as usize][tok as usize];
        if tok == Tok::Semi && next == START {
            on_end(i + 1);
        }
        state = next;
        i += 1;
    }
    Scanned { state, open: false, tokens }
}

/// True when `sql` ends with a complete statement (what `sqlite3_complete` answers), or holds
/// nothing but whitespace and finished comments.
pub fn is_complete(sql: &str) -> bool {
    let s = scan(sql, |_| {});
    !s.open && (s.state == START || !s.tokens)
}

/// True when `sql` is only whitespace and finished comments.
fn is_noise(sql: &str) -> bool {
    let s = scan(sql, |_| {});
    !s.open && !s.tokens
}

/// Cut `sql` into complete statements (each with its `;`) and the incomplete rest.
pub fn split_complete(sql: &str) -> (Vec<&str>, &str) {
    let mut ends = Vec::new();
    scan(sql, |e| ends.push(e));
    let mut out = Vec::with_capacity(ends.len());
    let mut start = 0;
    for e in ends {
        out.push(&sql[start..e]);
        start = e;
    }
    (out, &sql[start..])
}

/// One unit of input: a dot-command line or an SQL statement, with the line it starts on
/// (1-based) and the byte offset just past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A line starting with `.` (outside a statement).
    Dot {
        /// The line, without its line break.
        line: String,
        /// Line number.
        at: usize,
        /// Byte offset past the line.
        end: usize,
    },
    /// One SQL statement (with its `;` when it had one).
    Sql {
        /// The statement text.
        sql: String,
        /// Line number of its first non-blank line.
        at: usize,
        /// Byte offset past the statement.
        end: usize,
    },
}

/// Accumulates input line by line as the sqlite3 shell does: a line starting with `.` while no
/// statement is pending is a dot-command; other lines gather until they complete a statement.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: String,
    pending_at: usize,
    line_no: usize,
    offset: usize,
}

impl Splitter {
    /// A splitter at line 1.
    pub fn new() -> Self {
        Splitter::default()
    }

    /// True when part of a statement waits for more lines.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Feed one line (with or without its line break); returns the items it completes.
    pub fn push_line(&mut self, line: &str) -> Vec<Item> {
        self.line_no += 1;
        self.offset += line.len();
        let bare = line.trim_end_matches(['\n', '\r']);
        if !self.has_pending() && bare.trim_start().starts_with('.') {
            return vec![Item::Dot { line: bare.trim().to_string(), at: self.line_no, end: self.offset }];
        }
        if !self.has_pending() {
            if is_noise(bare) {
                return Vec::new();
            }
            self.pending_at = self.line_no;
        }
        self.pending.push_str(bare);
        self.pending.push('\n');
        if !is_complete(&self.pending) {
            return Vec::new();
        }
        let text = std::mem::take(&mut self.pending);
        let (stmts, _) = split_complete(&text);
        let mut out = Vec::new();
        let mut line = self.pending_at;
        for s in stmts {
            let lead = s.len() - s.trim_start().len();
            let at = line + s[..lead].matches('\n').count();
            line += s.matches('\n').count();
            if hiqlite::statement_kind(s) != hiqlite::StatementKind::Empty {
                out.push(Item::Sql { sql: s.trim().to_string(), at, end: self.offset });
            }
        }
        out
    }

    /// End of input: the unfinished statement, if any, as a last item (SQLite reports its
    /// error, as the sqlite3 shell sends an incomplete last statement too).
    pub fn finish(&mut self) -> Option<Item> {
        let text = std::mem::take(&mut self.pending);
        (hiqlite::statement_kind(&text) != hiqlite::StatementKind::Empty).then(|| Item::Sql {
            sql: text.trim().to_string(),
            at: self.pending_at,
            end: self.offset,
        })
    }
}

/// All items of `text` (a file, piped input, `-c` text, a pasted block), the unfinished tail
/// included.
pub fn items(text: &str) -> Vec<Item> {
    let mut s = Splitter::new();
    let mut out: Vec<Item> = text.split_inclusive('\n').flat_map(|l| s.push_line(l)).collect();
    out.extend(s.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's own answer, the reference.
    fn sqlite_complete(sql: &str) -> bool {
        let Ok(c) = std::ffi::CString::new(sql) else { return false };
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
    }

    #[test]
    fn agrees_with_sqlite3_complete() {
        let cases = [
            "SELECT 1;",
            "SELECT 1",
            "SELECT ';'",
            "SELECT ';';",
            "SELECT \"a;b\" FROM t;",
            "SELECT [x;y];",
            "SELECT `x;`;",
            "SELECT 1 -- ;\n",
            "SELECT 1; -- trailing",
            "SELECT 1; /* open",
            "SELECT /* ; */ 1;",
            "SELECT 'it''s';",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1);",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); END;",
            "create temp trigger tr after insert on t begin select 1; select 2; end;",
            "CREATE TEMPORARY TRIGGER tr AFTER DELETE ON t BEGIN DELETE FROM u; END",
            "CREATE TABLE t (a); CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END;",
            "EXPLAIN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;",
            "EXPLAIN SELECT 1;",
            "CREATE TABLE end (x);",
            "SELECT 1 AS end;",
            ";",
            "  ;  ",
            "SELECT 'unterminated;",
            "SELECT 1;;",
            "CREATE TRIGGER t1 BEFORE UPDATE ON t BEGIN UPDATE t SET a = 'END;'; END;",
        ];
        for c in cases {
            let s = scan(c, |_| {});
            assert_eq!(s.state == START && !s.open, sqlite_complete(c), "{c:?}");
        }
    }

    #[test]
    fn agrees_with_sqlite3_complete_on_random_token_soup() {
        const TOKENS: &[&str] = &[
            ";",
            " ",
            "\n",
            "'",
            "\"",
            "`",
            "[",
            "]",
            "--",
            "/*",
            "*/",
            "-",
            "/",
            "*",
            "CREATE",
            "create",
            "TRIGGER",
            "TEMP",
            "TEMPORARY",
            "END",
            "end",
            "EXPLAIN",
            "BEGIN",
            "SELECT",
            "x",
            "1",
            "é",
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            let mut sql = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 12) as usize + 1;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let t = TOKENS[(x % TOKENS.len() as u64) as usize];
                // Words need a separator to stay words.
                if t.chars().all(char::is_alphanumeric)
                    && sql.chars().last().is_some_and(char::is_alphanumeric)
                {
                    sql.push(' ');
                }
                sql.push_str(t);
            }
            let s = scan(&sql, |_| {});
            assert_eq!(s.state == START && !s.open, sqlite_complete(&sql), "{sql:?}");
        }
    }

    #[test]
    fn splits_statements_and_keeps_trigger_bodies_whole() {
        let text = "CREATE TABLE t (a);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  \
                    INSERT INTO u VALUES (';');\n  SELECT 1;\nEND;\nSELECT 'a;b'; SELECT 2";
        let (stmts, rest) = split_complete(text);
        assert_eq!(stmts.len(), 3, "{stmts:?}");
        assert!(stmts[1].trim_start().starts_with("CREATE TRIGGER") && stmts[1].ends_with("END;"));
        assert_eq!(stmts[2].trim(), "SELECT 'a;b';");
        assert_eq!(rest.trim(), "SELECT 2");
    }

    #[test]
    fn items_mix_dot_commands_and_statements_with_line_numbers() {
        let text = ".mode csv\nSELECT 1;\nSELECT\n  2; SELECT 3;\n.tables\n-- only a comment\n\
                    .schema t\nSELECT 4";
        let got = items(text);
        let at: Vec<(usize, String)> = got
            .iter()
            .map(|i| match i {
                Item::Dot { line, at, .. } => (*at, line.clone()),
                Item::Sql { sql, at, .. } => (*at, sql.clone()),
            })
            .collect();
        assert_eq!(
            at,
            vec![
                (1, ".mode csv".to_string()),
                (2, "SELECT 1;".to_string()),
                (3, "SELECT\n  2;".to_string()),
                (4, "SELECT 3;".to_string()),
                (5, ".tables".to_string()),
                (7, ".schema t".to_string()),
                (8, "SELECT 4".to_string()),
            ]
        );
    }

    #[test]
    fn a_dot_inside_a_statement_is_sql() {
        let got = items("SELECT\n.5;\n");
        assert_eq!(got.len(), 1);
        assert!(matches!(&got[0], Item::Sql { sql, .. } if sql == "SELECT\n.5;"));
        assert!(is_complete(""));
        assert!(is_complete("-- a comment\n/* another */"));
        assert!(!is_complete("/* open"));
        assert!(!is_complete("SELECT 1"));
        assert!(is_complete("SELECT 1; "));
    }
}
