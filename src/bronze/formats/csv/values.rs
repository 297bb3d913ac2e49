//! Scalar typing shared by the text formats (CSV, NDJSON, JSON arrays): which type a value
//! votes for when a schema is inferred, how votes widen, and how text becomes a typed value
//! when a record is decoded. Decoding uses Arrow's own parsers (the same ones arrow-csv's typed
//! decoder uses), so a value that voted for a type always decodes as that type.

use arrow::compute::kernels::cast_utils::{Parser, string_to_datetime};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimeUnit};
use chrono::Utc;

/// The timestamp type of the contract: microseconds, no time zone (values with an offset or
/// `Z` are normalized to UTC).
pub(crate) const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// The narrowest type of the contract's set holding both `a` and `b`.
pub(crate) fn widen(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    match (a, b) {
        _ if a == b => a.clone(),
        (Null, x) | (x, Null) => x.clone(),
        (Int64, Float64) | (Float64, Int64) => Float64,
        (Date32, Timestamp(..)) | (Timestamp(..), Date32) => TIMESTAMP,
        _ => Utf8,
    }
}

/// The type a non-empty CSV field votes for: Boolean, Int64, Float64, Date32, Timestamp or
/// Utf8. Strict on purpose: surrounding spaces, thousands separators, currency signs, leading
/// zeros ("007" is an identifier, not a number) and non-ISO dates all make text.
pub(crate) fn classify_text(s: &str) -> DataType {
    let b = s.as_bytes();
    if b.is_empty() {
        return DataType::Null;
    }
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return DataType::Boolean;
    }
    match b[0] {
        b'0'..=b'9' | b'+' | b'-' | b'.' => {}
        _ => return DataType::Utf8,
    }
    if let Some(t) = classify_number(b) {
        return t;
    }
    classify_temporal(s)
}

/// The type a JSON string votes for: Date32, Timestamp or Utf8 (JSON has its own numbers and
/// booleans, so a string stays text unless it is an ISO date or timestamp).
pub(crate) fn classify_json_string(s: &str) -> DataType {
    classify_temporal(s)
}

fn classify_number(b: &[u8]) -> Option<DataType> {
    let digits = match b[0] {
        b'+' | b'-' => &b[1..],
        _ => b,
    };
    let int_len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == digits.len() {
        // Integer: no leading zeros, must fit an i64 (else it is an identifier: text).
        if int_len == 0 || (int_len > 1 && digits[0] == b'0') {
            return None;
        }
        let s = std::str::from_utf8(b).ok()?;
        return Some(if s.parse::<i64>().is_ok() {
            DataType::Int64
        } else {
            DataType::Utf8
        });
    }
    if int_len > 1 && digits[0] == b'0' {
        return None;
    }
    let mut rest = &digits[int_len..];
    let mut frac_len = 0;
    if rest.first() == Some(&b'.') {
        frac_len = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + frac_len..];
    }
    if int_len + frac_len == 0 {
        return None;
    }
    if let Some((&e, exp)) = rest.split_first() {
        if e != b'e' && e != b'E' {
            return None;
        }
        let exp = match exp.first() {
            Some(b'+' | b'-') => &exp[1..],
            _ => exp,
        };
        if exp.is_empty() || !exp.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    let s = std::str::from_utf8(b).ok()?;
    match Float64Type::parse(s) {
        Some(v) if v.is_finite() => Some(DataType::Float64),
        _ => None,
    }
}

fn classify_temporal(s: &str) -> DataType {
    let b = s.as_bytes();
    let is_date = |b: &[u8]| {
        b.len() >= 10
            && b[4] == b'-'
            && b[7] == b'-'
            && [0, 1, 2, 3, 5, 6, 8, 9]
                .iter()
                .all(|&i| b[i].is_ascii_digit())
    };
    if !is_date(b) {
        return DataType::Utf8;
    }
    if b.len() == 10 {
        return match Date32Type::parse(s) {
            Some(_) => DataType::Date32,
            None => DataType::Utf8,
        };
    }
    // YYYY-MM-DD[T ]HH:MM:SS[.f][Z|±HH[:MM]]
    let is_time = b.len() >= 19
        && matches!(b[10], b'T' | b' ')
        && b[13] == b':'
        && b[16] == b':'
        && [11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if !is_time {
        return DataType::Utf8;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return DataType::Utf8;
        }
        rest = &rest[1 + n..];
    }
    let zone_ok = match rest {
        [] | [b'Z'] => true,
        [b'+' | b'-', z @ ..] => {
            matches!(z.len(), 2 | 4 | 5)
                && z.iter()
                    .enumerate()
                    .all(|(i, c)| c.is_ascii_digit() || (i == 2 && *c == b':' && z.len() == 5))
        }
        _ => false,
    };
    if zone_ok && string_to_datetime(&Utc, s).is_ok() {
        TIMESTAMP
    } else {
        DataType::Utf8
    }
}

/// Parses text the way arrow-csv's typed decoder does, for the contract's types.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    Int64Type::parse(s)
}

pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    Float64Type::parse(s)
}

pub(crate) fn parse_date32(s: &str) -> Option<i32> {
    Date32Type::parse(s)
}

/// Microseconds since the epoch, UTC (an offset in the text is applied).
pub(crate) fn parse_timestamp_micros(s: &str) -> Option<i64> {
    string_to_datetime(&Utc, s)
        .ok()
        .map(|d| d.timestamp_micros())
}

/// "an Int64", "a Date32 (YYYY-MM-DD)", … for rejection reasons.
pub(crate) fn type_phrase(t: &DataType) -> String {
    match t {
        DataType::Int64 => "an Int64".into(),
        DataType::Float64 => "a Float64".into(),
        DataType::Boolean => "a Boolean (true/false)".into(),
        DataType::Date32 => "a Date32 (YYYY-MM-DD)".into(),
        DataType::Timestamp(..) => "a Timestamp (YYYY-MM-DD HH:MM:SS[.f])".into(),
        DataType::Null => "empty (the column was empty when its schema was inferred)".into(),
        other => format!("a {other}"),
    }
}

/// `value "N/A" in column qty is not an Int64`; `shown` is the value as the user should see
/// it (quoted text for CSV, JSON text for JSON), already [`shorten`]ed.
pub(crate) fn misfit_reason(shown: &str, column: &str, t: &DataType) -> String {
    format!("value {shown} in column {column} is not {}", type_phrase(t))
}

/// `s` cut to about 80 bytes (on a character boundary), with an ellipsis when cut.
pub(crate) fn shorten(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.into();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end]).into()
}

/// Lossy UTF-8 text of a rejected record, at most [`MAX_REJECTED_RAW`] bytes.
///
/// [`MAX_REJECTED_RAW`]: crate::bronze::decode::MAX_REJECTED_RAW
pub(crate) fn raw_text(bytes: &[u8]) -> String {
    use crate::bronze::decode::MAX_REJECTED_RAW;
    let cut = &bytes[..bytes.len().min(MAX_REJECTED_RAW)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if s.len() > MAX_REJECTED_RAW {
        let mut end = MAX_REJECTED_RAW;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_text() {
        use DataType::*;
        let cases: &[(&str, DataType)] = &[
            ("42", Int64),
            ("-7", Int64),
            ("+7", Int64),
            ("0", Int64),
            ("007", Utf8),
            ("99999999999999999999", Utf8),
            ("1.5", Float64),
            ("-0.25", Float64),
            (".5", Float64),
            ("5.", Float64),
            ("1e5", Float64),
            ("2.5E-3", Float64),
            ("NaN", Utf8),
            ("inf", Utf8),
            ("1e", Utf8),
            ("-", Utf8),
            (".", Utf8),
            (" 42", Utf8),
            ("42 ", Utf8),
            ("$1,234.50", Utf8),
            ("1,234", Utf8),
            ("N/A", Utf8),
            ("true", Boolean),
            ("FALSE", Boolean),
            ("yes", Utf8),
            ("2026-01-31", Date32),
            ("2026-02-30", Utf8),
            ("2026-1-5", Utf8),
            ("2026-01-31T10:00:00", TIMESTAMP),
            ("2026-01-31 10:00:00.123456", TIMESTAMP),
            ("2026-01-31T10:00:00Z", TIMESTAMP),
            ("2026-01-31T10:00:00+02:00", TIMESTAMP),
            ("2026-01-31T10:00:00-0500", TIMESTAMP),
            ("2026-01-31T25:00:00", Utf8),
            ("2026-01-31T10:00", Utf8),
            ("12/31/2026 10:00", Utf8),
            ("2026-01-31 10:00:00 PST", Utf8),
        ];
        for (s, t) in cases {
            assert_eq!(&classify_text(s), t, "{s:?}");
        }
    }

    #[test]
    fn inferred_types_decode_with_arrow_parsers() {
        for s in ["42", "-7", "+7", "0"] {
            assert!(parse_i64(s).is_some(), "{s}");
        }
        for s in ["1.5", ".5", "5.", "1e5", "2.5E-3", "-0.25", "42"] {
            assert!(parse_f64(s).is_some(), "{s}");
        }
        assert_eq!(parse_date32("1970-01-02"), Some(1));
        assert_eq!(
            parse_timestamp_micros("1970-01-01T00:00:01"),
            Some(1_000_000)
        );
        assert_eq!(
            parse_timestamp_micros("1970-01-01 00:00:01.5"),
            Some(1_500_000)
        );
        assert_eq!(
            parse_timestamp_micros("1970-01-01T02:00:01+02:00"),
            Some(1_000_000)
        );
        assert_eq!(
            parse_timestamp_micros("1970-01-01T00:00:01Z"),
            Some(1_000_000)
        );
        // A date widened to a timestamp: midnight.
        assert_eq!(parse_timestamp_micros("1970-01-02"), Some(86_400_000_000));
    }

    #[test]
    fn widens() {
        use DataType::*;
        assert_eq!(widen(&Int64, &Float64), Float64);
        assert_eq!(widen(&Null, &Date32), Date32);
        assert_eq!(widen(&Date32, &TIMESTAMP), TIMESTAMP);
        assert_eq!(widen(&Int64, &Boolean), Utf8);
        assert_eq!(widen(&Date32, &Int64), Utf8);
        assert_eq!(widen(&Utf8, &Null), Utf8);
    }
}
