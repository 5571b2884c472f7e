//! Go's spellings of times and durations, as rqlite's answers carry them: `time.Time` as JSON
//! (RFC 3339 with nanoseconds, trailing zeros trimmed: `MarshalText`) and `time.Duration`'s
//! `String()`.

use std::time::Duration;

/// (year, month, day) of the day `days` after 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days from 1970-01-01 to (y, m, d).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC instant as Go's `time.Time.MarshalText` writes it (`2006-01-02T15:04:05.999999999Z`).
pub(crate) fn rfc3339_utc(secs: i64, nanos: u32) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// An instant with a fixed offset east of UTC, as Go's `MarshalText` writes it (`Z` for UTC).
fn rfc3339(secs: i64, nanos: u32, offset_secs: i64) -> String {
    let mut s = rfc3339_utc(secs + offset_secs, nanos);
    if offset_secs != 0 {
        s.pop();
        let sign = if offset_secs < 0 { '-' } else { '+' };
        let o = offset_secs.abs();
        s.push_str(&format!("{sign}{:02}:{:02}", o / 3600, o / 60 % 60));
    }
    s
}

/// What rqlite answers for an INTEGER in a DATE/DATETIME/TIMESTAMP column: Unix seconds, or
/// milliseconds beyond ±1e12, as RFC 3339 in UTC (rqlite/go-sqlite3 `sqlite3.go`,
/// `nextSyncLocked`; rqlite/rqlite `db/db.go`, `normalizeRowValues` marshals the time). `None`
/// where Go's `MarshalText` fails (years outside 0..=9999).
pub(crate) fn time_of_integer(v: i64) -> Option<String> {
    let (secs, nanos) = if !(-1_000_000_000_000..=1_000_000_000_000).contains(&v) {
        (v.div_euclid(1000), (v.rem_euclid(1000) * 1_000_000) as u32)
    } else {
        (v, 0)
    };
    in_range(secs).then(|| rfc3339_utc(secs, nanos))
}

fn in_range(secs: i64) -> bool {
    // 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z
    (-62_167_219_200..=253_402_300_799).contains(&secs)
}

/// What rqlite answers for TEXT in a DATE/DATETIME/TIMESTAMP column: the text parsed with the
/// driver's `SQLiteTimestampFormats` after a trailing `Z` is cut (`YYYY-MM-DD`, then ` ` or `T`
/// and `HH:MM`, optionally `:SS`, a fraction of up to 9 digits and, with seconds, a `±HH:MM`
/// offset), as RFC 3339; text that parses with none of them is Go's zero time.
pub(crate) fn time_of_text(s: &str) -> String {
    const ZERO: &str = "0001-01-01T00:00:00Z";
    parse_sqlite_time(s.strip_suffix('Z').unwrap_or(s)).unwrap_or_else(|| ZERO.to_owned())
}

fn parse_sqlite_time(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let num = |from: usize, n: usize| -> Option<i64> {
        let d = b.get(from..from + n)?;
        d.iter().all(u8::is_ascii_digit).then(|| d.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (mut h, mut mi, mut sec, mut nanos, mut offset) = (0, 0, 0, 0u32, 0i64);
    let mut i = 10;
    if b.len() > 10 {
        if !matches!(b[10], b' ' | b'T') || b.get(13) != Some(&b':') {
            return None;
        }
        h = num(11, 2)?;
        mi = num(14, 2)?;
        i = 16;
        if b.get(16) == Some(&b':') {
            sec = num(17, 2)?;
            i = 19;
            if b.get(19) == Some(&b'.') {
                let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 || digits > 9 {
                    return None;
                }
                let frac = &s[20..20 + digits];
                nanos = format!("{frac:0<9}").parse().ok()?;
                i = 20 + digits;
            }
            if matches!(b.get(i), Some(b'+' | b'-')) {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                if b.get(i + 3) != Some(&b':') {
                    return None;
                }
                let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
                if oh > 24 || om > 59 {
                    return None;
                }
                offset = sign * (oh * 3600 + om * 60);
                i += 6;
            }
        }
    }
    if i != b.len() || !(1..=12).contains(&mo) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo as usize - 1];
    if d < 1 || d > days_in {
        return None;
    }
    let local = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + sec;
    let utc = local - offset;
    in_range(utc).then(|| rfc3339(utc, nanos, offset))
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `250ms`, `0s`.
pub(crate) fn duration_string(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let frac = |v: u128, unit: u128| -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let width = unit.to_string().len() - 1;
            format!("{whole}.{}", format!("{rest:0width$}").trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let h = ns / 3_600_000_000_000;
    let m = ns / 60_000_000_000 % 60;
    let s = frac(ns % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_spellings() {
        assert_eq!(rfc3339_utc(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(14_326_995_600, 0), "2424-01-02T17:00:00Z");
        assert_eq!(rfc3339_utc(1_076_742_900, 500_000_000), "2004-02-14T07:15:00.5Z");
        assert_eq!(rfc3339_utc(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(days_from_civil(2004, 2, 14), 12_462);
        assert_eq!(duration_string(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration_string(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(duration_string(Duration::from_millis(250)), "250ms");
        assert_eq!(duration_string(Duration::ZERO), "0s");
        // The examples of issue 16 and the driver's formats.
        assert_eq!(time_of_text("2004-02-14"), "2004-02-14T00:00:00Z");
        assert_eq!(time_of_text("2004-02-14 07:15:00.5"), "2004-02-14T07:15:00.5Z");
        assert_eq!(time_of_text("2004-02-14T07:15:00Z"), "2004-02-14T07:15:00Z");
        assert_eq!(time_of_text("2004-02-14 07:15"), "2004-02-14T07:15:00Z");
        assert_eq!(
            time_of_text("2004-02-14 07:15:00.123456789+02:00"),
            "2004-02-14T07:15:00.123456789+02:00"
        );
        assert_eq!(time_of_text("2004-02-30"), "0001-01-01T00:00:00Z");
        assert_eq!(time_of_text("yesterday"), "0001-01-01T00:00:00Z");
        assert_eq!(time_of_integer(14_326_995_600).as_deref(), Some("2424-01-02T17:00:00Z"));
        assert_eq!(time_of_integer(1_076_742_900_500).as_deref(), Some("2004-02-14T07:15:00.5Z"));
        assert_eq!(time_of_integer(0).as_deref(), Some("1970-01-01T00:00:00Z"));
    }
}
