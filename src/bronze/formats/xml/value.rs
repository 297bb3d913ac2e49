//! Text values: which type a value looks like (inference) and its typed form (decoding).
//!
//! Values reaching here are already entity-unescaped and trimmed. Inference is strict (a
//! value votes for the narrowest type whose textual form it has exactly); decoding accepts
//! what inference accepts plus the forms of the types a column may be widened from.

use arrow::datatypes::{DataType, TimeUnit};
use chrono::{Datelike, NaiveDate};

/// The inferred type of one column, a small lattice under [`Kind::merge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Boolean,
    Int64,
    Float64,
    Date32,
    Timestamp,
    Utf8,
}

impl Kind {
    /// The narrowest type holding both: Null is the identity, Int64+Float64 → Float64,
    /// Date32+Timestamp → Timestamp (the contract's own widenings), anything else → Utf8.
    pub(super) fn merge(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, x) | (x, Null) => x,
            (Int64, Float64) | (Float64, Int64) => Float64,
            (Date32, Timestamp) | (Timestamp, Date32) => Timestamp,
            _ => Utf8,
        }
    }

    pub(super) fn data_type(self) -> DataType {
        match self {
            Kind::Null => DataType::Null,
            Kind::Boolean => DataType::Boolean,
            Kind::Int64 => DataType::Int64,
            Kind::Float64 => DataType::Float64,
            Kind::Date32 => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Utf8 => DataType::Utf8,
        }
    }
}

/// The type a (non-empty) value votes for.
pub(super) fn classify(s: &str) -> Kind {
    let b = s.as_bytes();
    match b.first() {
        None => Kind::Null,
        Some(b't' | b'f') if s == "true" || s == "false" => Kind::Boolean,
        Some(c) if c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.') => {
            if is_int_syntax(b) {
                // An integer too large for Int64 is an identifier, not a float.
                if s.parse::<i64>().is_ok() {
                    Kind::Int64
                } else {
                    Kind::Utf8
                }
            } else if is_float_syntax(b) {
                Kind::Float64
            } else if parse_date(s).is_some() {
                Kind::Date32
            } else if parse_timestamp(s).is_some() {
                Kind::Timestamp
            } else {
                Kind::Utf8
            }
        }
        Some(_) => Kind::Utf8,
    }
}

/// `true`/`false`, any ASCII case.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(super) fn parse_i64(s: &str) -> Option<i64> {
    if is_int_syntax(s.as_bytes()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Decimal numbers only: `inf`, `NaN` and hex are not numbers in a data file.
pub(super) fn parse_f64(s: &str) -> Option<f64> {
    if is_float_syntax(s.as_bytes()) {
        s.parse().ok()
    } else {
        None
    }
}

/// `[+-]digits`.
fn is_int_syntax(b: &[u8]) -> bool {
    let digits = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// `[+-](digits[.digits*] | .digits)([eE][+-]digits)`.
fn is_float_syntax(b: &[u8]) -> bool {
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa = i > int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        mantissa |= i > frac_start;
    }
    if !mantissa {
        return false;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
pub(super) fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    date_days(b)
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date_days(b: &[u8]) -> Option<i32> {
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])? as i32;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    Some(date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Microseconds since the epoch (UTC) of an ISO-8601 date-time
/// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|±HH[:MM]|±HHMM]`. Fractions beyond microseconds are
/// truncated; a value with an offset is normalised to UTC.
pub(super) fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = i64::from(date_days(&b[..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset_secs = match &b[i..] {
        [] => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some(secs * 1_000_000 + micros)
}

/// Microseconds since the epoch of a date-time, or of midnight of a date (a Date32 value in a
/// column widened to Timestamp).
pub(super) fn parse_timestamp_or_date(s: &str) -> Option<i64> {
    if s.len() == 10 {
        parse_date(s).map(|d| i64::from(d) * 86_400_000_000)
    } else {
        parse_timestamp(s)
    }
}

/// Microseconds converted to `unit`, if representable.
pub(super) fn micros_to(unit: TimeUnit, micros: i64) -> Option<i64> {
    match unit {
        TimeUnit::Second => Some(micros.div_euclid(1_000_000)),
        TimeUnit::Millisecond => Some(micros.div_euclid(1_000)),
        TimeUnit::Microsecond => Some(micros),
        TimeUnit::Nanosecond => micros.checked_mul(1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_values() {
        for (s, k) in [
            ("true", Kind::Boolean),
            ("false", Kind::Boolean),
            ("True", Kind::Utf8),
            ("17", Kind::Int64),
            ("-17", Kind::Int64),
            ("+0", Kind::Int64),
            ("99999999999999999999", Kind::Utf8),
            ("1.5", Kind::Float64),
            ("-.5", Kind::Float64),
            ("1.", Kind::Float64),
            ("1e10", Kind::Float64),
            ("1.5E-3", Kind::Float64),
            ("1e", Kind::Utf8),
            (".", Kind::Utf8),
            ("-", Kind::Utf8),
            ("inf", Kind::Utf8),
            ("NaN", Kind::Utf8),
            ("2026-01-31", Kind::Date32),
            ("2026-02-30", Kind::Utf8),
            ("2026-1-31", Kind::Utf8),
            ("2026-01-01T10:00:00", Kind::Timestamp),
            ("2026-01-01 10:00:00.123", Kind::Timestamp),
            ("2026-01-01T10:00:00Z", Kind::Timestamp),
            ("2026-01-01T10:00:00+02:00", Kind::Timestamp),
            ("2026-01-01T10:00:00-0530", Kind::Timestamp),
            ("2026-01-01T10:00:00+02", Kind::Timestamp),
            ("2026-01-01T24:00:00", Kind::Utf8),
            ("2026-01-01T10:00", Kind::Utf8),
            ("2026-01-01T10:00:00.", Kind::Utf8),
            ("2026-01-01T10:00:00+2", Kind::Utf8),
            ("DH123", Kind::Utf8),
            ("Lyon", Kind::Utf8),
        ] {
            assert_eq!(classify(s), k, "{s}");
        }
    }

    #[test]
    fn merges_kinds() {
        use Kind::*;
        assert_eq!(Null.merge(Int64), Int64);
        assert_eq!(Int64.merge(Float64), Float64);
        assert_eq!(Date32.merge(Timestamp), Timestamp);
        assert_eq!(Int64.merge(Boolean), Utf8);
        assert_eq!(Date32.merge(Int64), Utf8);
        assert_eq!(Utf8.merge(Null), Utf8);
    }

    #[test]
    fn parses_timestamps_to_utc_micros() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01"), Some(1_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.5"), Some(500_000));
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00.123456789"),
            Some(123_456)
        );
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(
            parse_timestamp("2026-01-01T10:00:00Z"),
            Some(1_767_261_600_000_000)
        );
        assert_eq!(parse_timestamp_or_date("1970-01-02"), Some(86_400_000_000));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(micros_to(TimeUnit::Second, -1), Some(-1));
        assert_eq!(micros_to(TimeUnit::Nanosecond, i64::MAX), None);
    }
}
