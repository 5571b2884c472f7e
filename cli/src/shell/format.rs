//! Output modes: result sets rendered as aligned tables (ASCII or box drawing), CSV, JSON,
//! `name = value` lines or `|`-separated lists, and single values shown as SQLite shows them.

use std::fmt::Write as _;
use std::io::{self, Write};

use hiqlite::{Rows, Value};
use unicode_width::UnicodeWidthStr;

/// How result rows are printed (`.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Aligned columns in an ASCII frame (the default).
    Table,
    /// Aligned columns in a box-drawing frame.
    Box,
    /// RFC 4180 comma-separated values.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
    /// One `column = value` line per value, rows separated by a blank line.
    Line,
    /// Values separated by `|`, one row per line.
    List,
}

impl Mode {
    /// Every mode's name, as `.mode` takes it.
    pub const NAMES: [&'static str; 6] = ["table", "box", "csv", "json", "line", "list"];

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Table => "table",
            Mode::Box => "box",
            Mode::Csv => "csv",
            Mode::Json => "json",
            Mode::Line => "line",
            Mode::List => "list",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => Mode::Table,
            "box" => Mode::Box,
            "csv" => Mode::Csv,
            "json" => Mode::Json,
            "line" => Mode::Line,
            "list" => Mode::List,
            _ => return Err(format!("unknown mode {s:?}: use one of {}", Mode::NAMES.join(", "))),
        })
    }
}

/// The output settings a result is rendered with.
#[derive(Debug, Clone)]
pub struct Style {
    /// The mode.
    pub mode: Mode,
    /// Print column names (table, box, csv and list modes).
    pub headers: bool,
    /// What a NULL looks like (table, box, line and list modes; CSV leaves the field empty).
    pub null: String,
}

impl Default for Style {
    fn default() -> Self {
        Style { mode: Mode::Table, headers: true, null: "NULL".into() }
    }
}

/// A REAL as SQLite converts it to text (`CAST(x AS TEXT)`, what the sqlite3 shell prints):
/// asked of the SQLite library linked into this binary, so every digit is SQLite's own (it
/// writes 15 significant digits, or 17 when 15 do not read back as the same number, with its
/// own rounding). `1.0`, `0.1`, `1.0e+20`, `Inf`.
pub fn real_text(f: f64) -> String {
    thread_local! {
        static SQLITE: Option<rusqlite::Connection> = rusqlite::Connection::open_in_memory().ok();
    }
    let exact = SQLITE.with(|c| {
        let c = c.as_ref()?;
        let mut st = c.prepare_cached("SELECT CAST(?1 AS TEXT)").ok()?;
        st.query_row([f], |r| r.get::<_, String>(0)).ok()
    });
    exact.unwrap_or_else(|| approx_real_text(f))
}

/// SQLite's spelling of a REAL without asking SQLite: `%!.15g`, or `%!.17g` when 15 digits do
/// not round-trip. Equal to SQLite's for values 15 digits represent; the 17th digit can differ.
fn approx_real_text(f: f64) -> String {
    if f.is_nan() {
        return String::new();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    let short = g_format(f, 15);
    if short.parse::<f64>().ok() == Some(f) {
        short
    } else {
        g_format(f, 17)
    }
}

/// `printf("%!.{digits}g", f)` for a finite `f`.
fn g_format(f: f64, digits: usize) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `digits` significant digits, rounded once: d.ddd…e[-]x
    let sci = format!("{f:.*e}", digits - 1);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            let t = s.trim_end_matches('0');
            if t.ends_with('.') {
                format!("{t}0")
            } else {
                t.to_string()
            }
        } else {
            format!("{s}.0")
        }
    };
    if exp < -4 || exp >= digits as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        // The digits are those of the rounded mantissa: place its decimal point.
        let neg = mantissa.starts_with('-');
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else {
            let p = point as usize;
            format!("{}.{}", &digits[..p], &digits[p..])
        };
        format!("{}{}", if neg { "-" } else { "" }, trim(&body))
    }
}

/// A BLOB as an SQL literal: `X'00FF'`.
pub fn blob_text(b: &[u8]) -> String {
    let mut s = String::with_capacity(3 + 2 * b.len());
    s.push_str("X'");
    for byte in b {
        let _ = write!(s, "{byte:02X}");
    }
    s.push('\'');
    s
}

/// A value as text: NULL as `null`, integers in decimal, reals as SQLite prints them, text as
/// it is, blobs as `X'..'` literals.
pub fn value_text(v: &Value, null: &str) -> String {
    match v {
        Value::Null => null.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => real_text(*f),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => blob_text(b),
    }
}

/// A value as JSON: reals in SQLite's spelling (infinities as `9.0e+999`, as SQLite's `json()`
/// writes them), blobs as `X'..'` strings.
fn json_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) if f.is_nan() => "null".into(),
        Value::Real(f) if f.is_infinite() => {
            if *f > 0.0 {
                "9.0e+999".into()
            } else {
                "-9.0e+999".into()
            }
        }
        Value::Real(f) => real_text(*f),
        Value::Text(t) => serde_json::Value::String(t.clone()).to_string(),
        Value::Blob(b) => serde_json::Value::String(blob_text(b)).to_string(),
    }
}

/// Control characters shown escaped, so that one value stays on one line of a table.
fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Print `rows` in `style` to `out`. A result without columns prints nothing.
pub fn render(rows: &Rows, style: &Style, out: &mut dyn Write) -> io::Result<()> {
    if rows.columns.is_empty() {
        return Ok(());
    }
    match style.mode {
        Mode::Table | Mode::Box => framed(rows, style, out),
        Mode::Csv => {
            if style.headers {
                let h: Vec<String> = rows.columns.iter().map(|c| csv_field(c)).collect();
                writeln!(out, "{}", h.join(","))?;
            }
            for r in &rows.rows {
                let f: Vec<String> = r.iter().map(|v| csv_field(&value_text(v, ""))).collect();
                writeln!(out, "{}", f.join(","))?;
            }
            Ok(())
        }
        Mode::Json => {
            if rows.rows.is_empty() {
                return Ok(());
            }
            let names: Vec<String> =
                rows.columns.iter().map(|c| serde_json::Value::String(c.clone()).to_string()).collect();
            for (i, r) in rows.rows.iter().enumerate() {
                let fields: Vec<String> =
                    names.iter().zip(r).map(|(n, v)| format!("{n}:{}", json_value(v))).collect();
                let (open, close) =
                    (if i == 0 { "[" } else { "" }, if i + 1 == rows.rows.len() { "]" } else { "," });
                writeln!(out, "{open}{{{}}}{close}", fields.join(","))?;
            }
            Ok(())
        }
        Mode::Line => {
            let w = rows.columns.iter().map(|c| c.width()).max().unwrap_or(0);
            for (i, r) in rows.rows.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                for (c, v) in rows.columns.iter().zip(r) {
                    let pad = " ".repeat(w - c.width());
                    writeln!(out, "{pad}{c} = {}", value_text(v, &style.null))?;
                }
            }
            Ok(())
        }
        Mode::List => {
            if style.headers {
                writeln!(out, "{}", rows.columns.join("|"))?;
            }
            for r in &rows.rows {
                let f: Vec<String> = r.iter().map(|v| value_text(v, &style.null)).collect();
                writeln!(out, "{}", f.join("|"))?;
            }
            Ok(())
        }
    }
}

/// The frame characters of table and box modes.
struct Frame {
    h: &'static str,
    v: &'static str,
    top: [&'static str; 3],
    mid: [&'static str; 3],
    bottom: [&'static str; 3],
}

const ASCII: Frame =
    Frame { h: "-", v: "|", top: ["+", "+", "+"], mid: ["+", "+", "+"], bottom: ["+", "+", "+"] };
const BOX: Frame =
    Frame {
        h: "─", v: "│", top: ["┌", "┬", "┐"], mid: ["├", "┼", "┤"], bottom: ["└", "┴", "┘"]
    };

fn framed(rows: &Rows, style: &Style, out: &mut dyn Write) -> io::Result<()> {
    // Like the sqlite3 shell, an empty result prints nothing.
    if rows.rows.is_empty() {
        return Ok(());
    }
    let f = if style.mode == Mode::Box { &BOX } else { &ASCII };
    let cells: Vec<Vec<(String, bool)>> = rows
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    (one_line(&value_text(v, &style.null)), matches!(v, Value::Integer(_) | Value::Real(_)))
                })
                .collect()
        })
        .collect();
    let heads: Vec<String> = rows.columns.iter().map(|c| one_line(c)).collect();
    let mut widths: Vec<usize> = heads.iter().map(|h| if style.headers { h.width() } else { 0 }).collect();
    for r in &cells {
        for (w, (s, _)) in widths.iter_mut().zip(r) {
            *w = (*w).max(s.width());
        }
    }
    let rule = |ends: &[&str; 3]| -> String {
        let segs: Vec<String> = widths.iter().map(|w| f.h.repeat(w + 2)).collect();
        format!("{}{}{}", ends[0], segs.join(ends[1]), ends[2])
    };
    writeln!(out, "{}", rule(&f.top))?;
    if style.headers {
        let line: Vec<String> = heads
            .iter()
            .zip(&widths)
            .map(|(h, w)| {
                let free = w - h.width();
                format!(" {}{h}{} ", " ".repeat(free / 2), " ".repeat(free - free / 2))
            })
            .collect();
        writeln!(out, "{}{}{}", f.v, line.join(f.v), f.v)?;
        writeln!(out, "{}", rule(&f.mid))?;
    }
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|((s, num), w)| {
                let pad = " ".repeat(w - s.width());
                if *num {
                    format!(" {pad}{s} ")
                } else {
                    format!(" {s}{pad} ")
                }
            })
            .collect();
        writeln!(out, "{}{}{}", f.v, line.join(f.v), f.v)?;
    }
    writeln!(out, "{}", rule(&f.bottom))
}

/// Names laid out in columns across `width` characters (`.tables`).
pub fn columns_of_names(names: &[String], width: usize) -> String {
    let w = names.iter().map(|n| n.width()).max().unwrap_or(0) + 2;
    let per_line = (width / w.max(1)).max(1);
    let rows = names.len().div_ceil(per_line);
    let mut s = String::new();
    for r in 0..rows {
        let mut line = String::new();
        for c in 0..per_line {
            if let Some(n) = names.get(c * rows + r) {
                line.push_str(n);
                line.push_str(&" ".repeat(w - n.width()));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_text(f: f64) -> String {
        let c = rusqlite::Connection::open_in_memory().expect("db");
        c.query_row("SELECT CAST(?1 AS TEXT)", [f], |r| r.get::<_, String>(0)).expect("cast")
    }

    #[test]
    fn reals_print_as_sqlite_prints_them() {
        let cases = [
            1.0,
            -1.0,
            0.1,
            0.5,
            2.5,
            100.0,
            123456789012345.0,
            1e-4,
            1e-5,
            0.000123456,
            -1.25e-7,
            99999999999999.95,
        ];
        for f in cases {
            assert_eq!(real_text(f), sqlite_text(f), "{f:e}");
            // Values 15 digits represent need no SQLite to be spelled right.
            assert_eq!(approx_real_text(f), sqlite_text(f), "{f:e}");
        }
        for f in [1.0 / 3.0, 0.1 + 0.2, f64::MAX, f64::MIN_POSITIVE, std::f64::consts::PI, 1e15, 1e20, 1e100]
        {
            assert_eq!(real_text(f), sqlite_text(f), "{f:e}");
            assert_eq!(approx_real_text(f).parse::<f64>().ok(), Some(f), "{f:e} round-trips");
        }
        assert_eq!(real_text(f64::INFINITY), "Inf");
        assert_eq!(real_text(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn the_approximation_reads_back_exactly() {
        // A deterministic spread over magnitudes and digit patterns.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                assert_eq!(approx_real_text(f).parse::<f64>().ok(), Some(f), "{f:e}");
            }
        }
    }

    fn sample() -> Rows {
        Rows {
            columns: vec!["id".into(), "name".into(), "score".into(), "data".into()],
            types: vec![],
            rows: vec![
                vec![
                    Value::Integer(1),
                    Value::Text("alice".into()),
                    Value::Real(2.5),
                    Value::Blob(vec![0, 255]),
                ],
                vec![Value::Integer(22), Value::Text("bo, \"b\"".into()), Value::Null, Value::Null],
            ],
        }
    }

    fn show(mode: Mode) -> String {
        let mut out = Vec::new();
        render(&sample(), &Style { mode, ..Style::default() }, &mut out).expect("render");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn every_mode_renders() {
        assert_eq!(
            show(Mode::Table),
            "+----+---------+-------+---------+\n\
             | id |  name   | score |  data   |\n\
             +----+---------+-------+---------+\n\
             |  1 | alice   |   2.5 | X'00FF' |\n\
             | 22 | bo, \"b\" | NULL  | NULL    |\n\
             +----+---------+-------+---------+\n"
        );
        assert!(show(Mode::Box).starts_with("┌────┬"));
        assert_eq!(show(Mode::Csv), "id,name,score,data\n1,alice,2.5,X'00FF'\n22,\"bo, \"\"b\"\"\",,\n");
        assert_eq!(
            show(Mode::Json),
            "[{\"id\":1,\"name\":\"alice\",\"score\":2.5,\"data\":\"X'00FF'\"},\n\
             {\"id\":22,\"name\":\"bo, \\\"b\\\"\",\"score\":null,\"data\":null}]\n"
        );
        assert_eq!(
            show(Mode::Line),
            "   id = 1\n name = alice\nscore = 2.5\n data = X'00FF'\n\n   id = 22\n name = bo, \"b\"\nscore = NULL\n data = NULL\n"
        );
        assert_eq!(show(Mode::List), "id|name|score|data\n1|alice|2.5|X'00FF'\n22|bo, \"b\"|NULL|NULL\n");
    }

    #[test]
    fn names_in_columns() {
        let names: Vec<String> = ["a", "bb", "ccc", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(columns_of_names(&names, 12), "a    ccc\nbb   d\n");
    }
}
