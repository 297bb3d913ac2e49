//! Text values, shared by every raw format (CSV, NDJSON and JSON arrays, XML): which type of the
//! contract's set a value votes for when a schema is inferred and how votes widen, how text
//! becomes a typed value when a record is decoded, and how a rejected record and the reason for
//! a value that does not fit its column are written.
//!
//! Inference is strict on purpose: a value votes for the narrowest type whose textual form it
//! has exactly ([`classify_text`]). Surrounding spaces, thousands separators, currency signs,
//! leading zeros (`007` is an identifier, not a number), `inf`/`NaN`, numbers too large for
//! their type and non-ISO dates all make text.
//!
//! Decoding uses Arrow's own parsers, the ones arrow-csv's typed decoder uses: CSV's fast path
//! *is* arrow-csv, so its text fallback and the JSON reader must take what arrow-csv takes. XML
//! takes only the forms inference votes for (plus those of the types a column may be widened
//! from), checked before the same parsers run. Either way a value that voted for a type always
//! decodes as that type.
//!
//! The formats agree on everything but the points their own tests pin differently, which a
//! [`Dialect`] states.

use std::borrow::Cow;

use arrow::compute::kernels::cast_utils::{Parser, string_to_datetime};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimeUnit};
use chrono::Utc;

use crate::bronze::decode::{MAX_REJECTED_RAW, Rejected};

/// Widening of two votes (or of two files' column types): the contract's own widenings on its
/// type set (Null is the identity, Int64+Float64 → Float64, Date32+Timestamp → Timestamp,
/// anything else → Utf8). One function serves inference and table schemas alike.
pub(crate) use crate::bronze::schema::widen;

/// The timestamp type of the contract: microseconds, no time zone (values with an offset or
/// `Z` are normalized to UTC).
pub(crate) const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// Where the formats' behaviour differs: how booleans vote and how rejections word two types
/// (each pinned differently by the formats' own tests), and which spellings decoding takes
/// (CSV's is forced by its fast path, XML's is its documented strictness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dialect {
    /// Whether `TRUE`, `False`… vote for Boolean (CSV), or only `true` and `false` do (XML,
    /// where `True` is text). Decoding takes any ASCII case in every dialect.
    pub any_case_booleans: bool,
    /// Whether decoding takes only the exact forms inference votes for (XML) rather than
    /// anything Arrow's parsers take (CSV, whose fast path is arrow-csv, and JSON): surrounding
    /// spaces, `inf`/`NaN`, `+2026-01-01`, a date-time in a Date32 column (its time dropped), a
    /// leap second, `UTC` as a zone.
    pub exact_forms: bool,
    /// What a rejection says a Boolean column wants.
    pub boolean: &'static str,
    /// What a rejection says a Null column (empty in the sample) wants.
    pub null: &'static str,
}

impl Dialect {
    pub(crate) const CSV: Dialect = Dialect {
        any_case_booleans: true,
        exact_forms: false,
        boolean: "a Boolean (true/false)",
        null: "empty (the column was empty when its schema was inferred)",
    };
    /// JSON decodes strings (dates, timestamps) as CSV does and words its rejections alike; its
    /// numbers and booleans are JSON's own.
    pub(crate) const JSON: Dialect = Dialect::CSV;
    pub(crate) const XML: Dialect = Dialect {
        any_case_booleans: false,
        exact_forms: true,
        boolean: "a Boolean",
        null: "a Null (the column was empty in the sampled rows)",
    };
}

// ---------------------------------------------------------------------------------------------
// Inference

/// The type a text value (a CSV field, an XML element or attribute) votes for: Null (empty),
/// Boolean, Int64, Float64, Date32, Timestamp or Utf8.
pub(crate) fn classify_text(s: &str, dialect: Dialect) -> DataType {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return DataType::Null;
    };
    let boolean = if dialect.any_case_booleans {
        s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
    } else {
        s == "true" || s == "false"
    };
    if boolean {
        return DataType::Boolean;
    }
    if !matches!(first, b'0'..=b'9' | b'+' | b'-' | b'.') {
        return DataType::Utf8;
    }
    if let Some(t) = classify_number(s) {
        return t;
    }
    classify_temporal(s)
}

/// The type a JSON string votes for: Date32, Timestamp or Utf8 (JSON has its own numbers and
/// booleans, so a string stays text unless it is an ISO date or timestamp).
pub(crate) fn classify_json_string(s: &str) -> DataType {
    classify_temporal(s)
}

/// Int64 (an integer that fits), Utf8 (one that does not: an identifier), Float64 (a finite
/// decimal number), or `None` when `s` is not a number.
fn classify_number(s: &str) -> Option<DataType> {
    let b = s.as_bytes();
    let digits = unsigned(b);
    if digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit() {
        // Leading zeros: an identifier (`007`, `00.5`), or a date (`0026-01-31`).
        return None;
    }
    if is_int_form(b) {
        return Some(match Int64Type::parse(s) {
            Some(_) => DataType::Int64,
            None => DataType::Utf8,
        });
    }
    if !is_float_form(b) {
        return None;
    }
    match Float64Type::parse(s) {
        Some(v) if v.is_finite() => Some(DataType::Float64),
        _ => None,
    }
}

fn classify_temporal(s: &str) -> DataType {
    let b = s.as_bytes();
    if is_date_form(b) {
        match Date32Type::parse(s) {
            Some(_) => DataType::Date32,
            None => DataType::Utf8,
        }
    } else if is_timestamp_form(b) && string_to_datetime(&Utc, s).is_ok() {
        TIMESTAMP
    } else {
        DataType::Utf8
    }
}

// ---------------------------------------------------------------------------------------------
// The exact forms

/// `[+-]digits`.
fn is_int_form(b: &[u8]) -> bool {
    let digits = unsigned(b);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// `[+-](digits[.digits*] | .digits)[(e|E)[+-]digits]`.
fn is_float_form(b: &[u8]) -> bool {
    let b = unsigned(b);
    let int_len = leading_digits(b);
    let mut rest = &b[int_len..];
    let mut frac_len = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        frac_len = leading_digits(frac);
        rest = &frac[frac_len..];
    }
    if int_len + frac_len == 0 {
        return false;
    }
    match rest {
        [] => true,
        [b'e' | b'E', exp @ ..] => {
            let exp = unsigned(exp);
            !exp.is_empty() && exp.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// `YYYY-MM-DD` (digits in place; whether it is a day of the calendar is Arrow's to say).
fn is_date_form(b: &[u8]) -> bool {
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.f{1,9}][Z|z|±HH|±HH:MM|±HHMM]`, hours up to 23, minutes and
/// seconds up to 59 (Arrow alone would take a leap second and offset minutes up to 99).
fn is_timestamp_form(b: &[u8]) -> bool {
    if b.len() < 19
        || !is_date_form(&b[..10])
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let in_range = |at: usize, max: u8| two_digits(&b[at..at + 2]).is_some_and(|v| v <= max);
    if !(in_range(11, 23) && in_range(14, 59) && in_range(17, 59)) {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = leading_digits(frac);
        if !(1..=9).contains(&n) {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [] | [b'Z' | b'z'] => true,
        [b'+' | b'-', zone @ ..] => {
            let (hours, minutes) = match zone.len() {
                2 => (&zone[..2], &b"00"[..]),
                4 => (&zone[..2], &zone[2..]),
                5 if zone[2] == b':' => (&zone[..2], &zone[3..]),
                _ => return false,
            };
            two_digits(hours).is_some_and(|h| h <= 23)
                && two_digits(minutes).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// `b` without its leading sign.
fn unsigned(b: &[u8]) -> &[u8] {
    match b {
        [b'+' | b'-', rest @ ..] => rest,
        _ => b,
    }
}

fn leading_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn two_digits(b: &[u8]) -> Option<u8> {
    match b {
        [h @ b'0'..=b'9', l @ b'0'..=b'9'] => Some((h - b'0') * 10 + (l - b'0')),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// `true`/`false`, any ASCII case (as arrow-csv reads booleans).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An integer that fits an i64 (a leading zero is fine here: `007` decodes as 7 in a column
/// another file made Int64).
pub(crate) fn parse_i64(s: &str, dialect: Dialect) -> Option<i64> {
    if dialect.exact_forms && !is_int_form(s.as_bytes()) {
        return None;
    }
    Int64Type::parse(s)
}

/// An integer is a Float64 too (an Int64 column widens to Float64).
pub(crate) fn parse_f64(s: &str, dialect: Dialect) -> Option<f64> {
    if dialect.exact_forms && !is_float_form(s.as_bytes()) {
        return None;
    }
    Float64Type::parse(s)
}

/// Days since the epoch.
pub(crate) fn parse_date32(s: &str, dialect: Dialect) -> Option<i32> {
    if dialect.exact_forms && !is_date_form(s.as_bytes()) {
        return None;
    }
    Date32Type::parse(s)
}

/// Microseconds since the epoch, UTC (an offset in the text is applied; fractions beyond
/// microseconds are truncated). A date is its midnight (a Date32 column widens to Timestamp).
pub(crate) fn parse_timestamp_micros(s: &str, dialect: Dialect) -> Option<i64> {
    let b = s.as_bytes();
    if dialect.exact_forms && !is_date_form(b) && !is_timestamp_form(b) {
        return None;
    }
    string_to_datetime(&Utc, s)
        .ok()
        .map(|d| d.timestamp_micros())
}

/// Microseconds converted to `unit`, if representable (a table may hold another unit).
pub(crate) fn micros_to(unit: TimeUnit, micros: i64) -> Option<i64> {
    match unit {
        TimeUnit::Second => Some(micros.div_euclid(1_000_000)),
        TimeUnit::Millisecond => Some(micros.div_euclid(1_000)),
        TimeUnit::Microsecond => Some(micros),
        TimeUnit::Nanosecond => micros.checked_mul(1_000),
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections

/// `value "N/A" in column qty is not an Int64`. `shown` is the value as the user should see it,
/// already [`shorten`]ed: [`quoted`] text for CSV and XML, JSON text for JSON.
pub(crate) fn misfit_reason(shown: &str, column: &str, t: &DataType, dialect: Dialect) -> String {
    format!(
        "value {shown} in column {column} is not {}",
        type_phrase(t, dialect)
    )
}

/// "an Int64", "a Date32 (YYYY-MM-DD)", … for rejection reasons.
fn type_phrase(t: &DataType, dialect: Dialect) -> Cow<'static, str> {
    match t {
        DataType::Int64 => "an Int64".into(),
        DataType::Float64 => "a Float64".into(),
        DataType::Boolean => dialect.boolean.into(),
        DataType::Date32 => "a Date32 (YYYY-MM-DD)".into(),
        DataType::Timestamp(..) => "a Timestamp (YYYY-MM-DD HH:MM:SS[.f])".into(),
        DataType::Null => dialect.null.into(),
        other => format!("a {other}").into(),
    }
}

/// A text value for a reason: [`shorten`]ed, in quotes, escaped.
pub(crate) fn quoted(s: &str) -> String {
    format!("{:?}", shorten(s))
}

/// `s` cut to about 80 bytes (on a character boundary), with an ellipsis when cut.
pub(crate) fn shorten(s: &str) -> Cow<'_, str> {
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

/// A rejected record: its text kept as [`raw_text`].
pub(crate) fn rejected(line: u64, offset: u64, raw: &[u8], reason: String) -> Rejected {
    Rejected {
        line,
        offset,
        raw: raw_text(raw),
        reason,
    }
}

/// Lossy UTF-8 text of a rejected record, at most [`MAX_REJECTED_RAW`] bytes, cut on a
/// character boundary.
pub(crate) fn raw_text(raw: &[u8]) -> String {
    let mut cut = raw.len().min(MAX_REJECTED_RAW);
    // Back off to a character boundary (at most 3 continuation bytes).
    let mut back = 0;
    while cut < raw.len() && back < 3 && raw[cut] & 0xC0 == 0x80 {
        cut -= 1;
        back += 1;
    }
    let mut text = String::from_utf8_lossy(&raw[..cut]).into_owned();
    if text.len() > MAX_REJECTED_RAW {
        let mut cut = MAX_REJECTED_RAW;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType::*;

    const BOTH: [Dialect; 2] = [Dialect::CSV, Dialect::XML];

    #[test]
    fn classifies_text() {
        let cases: &[(&str, DataType)] = &[
            ("", Null),
            ("42", Int64),
            ("17", Int64),
            ("-7", Int64),
            ("-17", Int64),
            ("+7", Int64),
            ("0", Int64),
            ("+0", Int64),
            ("007", Utf8),
            ("-007", Utf8),
            ("00.5", Utf8),
            ("99999999999999999999", Utf8),
            ("1.5", Float64),
            ("-0.25", Float64),
            ("0.5", Float64),
            (".5", Float64),
            ("-.5", Float64),
            ("5.", Float64),
            ("1.", Float64),
            ("1e5", Float64),
            ("1e10", Float64),
            ("2.5E-3", Float64),
            ("1.5E-3", Float64),
            ("1e309", Utf8),
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
            ("false", Boolean),
            ("yes", Utf8),
            ("DH123", Utf8),
            ("Lyon", Utf8),
            ("2026-01-31", Date32),
            ("2026-02-30", Utf8),
            ("2026-1-5", Utf8),
            ("2026-1-31", Utf8),
            ("+2026-01-01", Utf8),
            ("2026-01-31T10:00:00", TIMESTAMP),
            ("2026-01-31 10:00:00.123456", TIMESTAMP),
            ("2026-01-01 10:00:00.123", TIMESTAMP),
            ("2026-01-31t10:00:00", TIMESTAMP),
            ("2026-01-31T10:00:00Z", TIMESTAMP),
            ("2026-01-31T10:00:00z", TIMESTAMP),
            ("2026-01-31T10:00:00+02:00", TIMESTAMP),
            ("2026-01-31T10:00:00-0500", TIMESTAMP),
            ("2026-01-01T10:00:00-0530", TIMESTAMP),
            ("2026-01-31T10:00:00+02", TIMESTAMP),
            ("2026-01-31T10:00:00.123456789", TIMESTAMP),
            ("2026-01-31T10:00:00.1234567891", Utf8),
            ("2026-01-31T10:00:00.", Utf8),
            ("2026-01-31T10:00:00+2", Utf8),
            ("2026-01-31T10:00:00+02:60", Utf8),
            ("2026-01-31T10:00:00 +02:00", Utf8),
            ("2026-01-31T23:59:60", Utf8),
            ("2026-01-31T24:00:00", Utf8),
            ("2026-01-31T25:00:00", Utf8),
            ("2026-01-31T10:00", Utf8),
            ("2026-02-30T10:00:00", Utf8),
            ("12/31/2026 10:00", Utf8),
            ("2026-01-31 10:00:00 PST", Utf8),
            ("2026-01-31T10:00:00UTC", Utf8),
        ];
        for dialect in BOTH {
            for (s, t) in cases {
                assert_eq!(&classify_text(s, dialect), t, "{s:?} {dialect:?}");
            }
        }
        // Pinned per format: CSV's booleans take any case, XML's only lower case.
        for s in ["FALSE", "TRUE", "True", "fAlse"] {
            assert_eq!(classify_text(s, Dialect::CSV), Boolean, "{s}");
            assert_eq!(classify_text(s, Dialect::XML), Utf8, "{s}");
        }
        assert_eq!(classify_json_string("2026-01-31"), Date32);
        assert_eq!(classify_json_string("2026-01-31T10:00:00Z"), TIMESTAMP);
        assert_eq!(classify_json_string("42"), Utf8);
        assert_eq!(classify_json_string("true"), Utf8);
    }

    #[test]
    fn inferred_types_decode_in_every_dialect() {
        for dialect in BOTH {
            for s in ["42", "-7", "+7", "0", "007"] {
                assert!(parse_i64(s, dialect).is_some(), "{s}");
            }
            for s in ["1.5", ".5", "5.", "1e5", "2.5E-3", "-0.25", "42"] {
                assert!(parse_f64(s, dialect).is_some(), "{s}");
            }
            assert_eq!(parse_bool("FALSE"), Some(false));
            assert_eq!(parse_date32("1970-01-02", dialect), Some(1));
            assert_eq!(parse_date32("1969-12-31", dialect), Some(-1));
            let ts = |s| parse_timestamp_micros(s, dialect);
            assert_eq!(ts("1970-01-01T00:00:01"), Some(1_000_000));
            assert_eq!(ts("1970-01-01 00:00:01.5"), Some(1_500_000));
            assert_eq!(ts("1970-01-01T00:00:00.5"), Some(500_000));
            assert_eq!(ts("1970-01-01T00:00:00.123456789"), Some(123_456));
            assert_eq!(ts("1970-01-01T02:00:01+02:00"), Some(1_000_000));
            assert_eq!(ts("1970-01-01T01:00:00+01:00"), Some(0));
            assert_eq!(ts("1969-12-31T23:00:00-01:00"), Some(0));
            assert_eq!(ts("1970-01-01T00:00:01Z"), Some(1_000_000));
            assert_eq!(ts("2026-01-01T10:00:00Z"), Some(1_767_261_600_000_000));
            // A date widened to a timestamp: midnight.
            assert_eq!(ts("1970-01-02"), Some(86_400_000_000));
        }
        assert_eq!(micros_to(TimeUnit::Second, -1), Some(-1));
        assert_eq!(micros_to(TimeUnit::Nanosecond, i64::MAX), None);
    }

    #[test]
    fn exact_forms_are_a_subset_of_what_arrow_takes() {
        let (csv, xml) = (Dialect::CSV, Dialect::XML);
        for s in [" 5", "5 "] {
            assert_eq!(parse_i64(s, csv), Some(5));
            assert_eq!(parse_i64(s, xml), None);
        }
        for s in ["inf", "NaN", "-infinity"] {
            assert!(parse_f64(s, csv).is_some(), "{s}");
            assert_eq!(parse_f64(s, xml), None, "{s}");
        }
        for s in ["2026-01-31T10:00:00", "+2026-01-01", "2026-01-3x"] {
            assert!(parse_date32(s, csv).is_some(), "{s}");
            assert_eq!(parse_date32(s, xml), None, "{s}");
        }
        for s in [
            "2026-01-31T23:59:60",
            "2026-01-31T10:00:00+02:60",
            "2026-01-31T10:00:00UTC",
            "2026-01-31T10:00:00 +02:00",
        ] {
            assert!(parse_timestamp_micros(s, csv).is_some(), "{s}");
            assert_eq!(parse_timestamp_micros(s, xml), None, "{s}");
        }
    }

    /// Over many generated strings: whatever a value votes for, it decodes as in every dialect
    /// (with the same value), and what the exact forms take, Arrow's parsers take alike.
    #[test]
    fn votes_decode_and_dialects_agree_where_both_decode() {
        let mut inputs: Vec<String> = Vec::new();
        let alphabet = b"0123456789+-.eE:TtZz ";
        let mut x: u64 = 7;
        let mut next = |n: usize| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize % n
        };
        for _ in 0..20_000 {
            let len = 1 + next(8);
            inputs.push(
                (0..len)
                    .map(|_| alphabet[next(alphabet.len())] as char)
                    .collect(),
            );
        }
        let base = b"2026-01-31T10:20:30.123456+02:00";
        for len in [10, 19, 21, 26, 27, 29, 32] {
            for i in 0..len {
                for &c in b"0129+-.:TtZz x" {
                    let mut b = base[..len].to_vec();
                    b[i] = c;
                    inputs.push(String::from_utf8(b).unwrap());
                }
            }
        }
        let (csv, xml) = (Dialect::CSV, Dialect::XML);
        for s in &inputs {
            for dialect in BOTH {
                let decodes = match classify_text(s, dialect) {
                    Boolean => parse_bool(s).is_some(),
                    Int64 => parse_i64(s, xml).is_some() && parse_i64(s, csv).is_some(),
                    Float64 => parse_f64(s, xml).is_some() && parse_f64(s, csv).is_some(),
                    Date32 => parse_date32(s, xml).is_some() && parse_date32(s, csv).is_some(),
                    Timestamp(..) => {
                        parse_timestamp_micros(s, xml).is_some()
                            && parse_timestamp_micros(s, csv).is_some()
                    }
                    _ => true,
                };
                assert!(decodes, "{s:?} {dialect:?}");
            }
            if let Some(v) = parse_i64(s, xml) {
                assert_eq!(parse_i64(s, csv), Some(v), "{s:?}");
            }
            if let Some(v) = parse_f64(s, xml) {
                assert_eq!(
                    parse_f64(s, csv).map(f64::to_bits),
                    Some(v.to_bits()),
                    "{s:?}"
                );
            }
            if let Some(v) = parse_date32(s, xml) {
                assert_eq!(parse_date32(s, csv), Some(v), "{s:?}");
            }
            if let Some(v) = parse_timestamp_micros(s, xml) {
                assert_eq!(parse_timestamp_micros(s, csv), Some(v), "{s:?}");
            }
        }
    }

    #[test]
    fn reasons() {
        let reason = |v: &str, t: &DataType, d| misfit_reason(&quoted(v), "c", t, d);
        assert_eq!(
            reason("N/A", &Int64, Dialect::CSV),
            r#"value "N/A" in column c is not an Int64"#
        );
        assert_eq!(
            reason("maybe", &Boolean, Dialect::CSV),
            r#"value "maybe" in column c is not a Boolean (true/false)"#
        );
        assert_eq!(
            reason("maybe", &Boolean, Dialect::XML),
            r#"value "maybe" in column c is not a Boolean"#
        );
        assert!(
            reason("x", &Null, Dialect::CSV).starts_with(r#"value "x" in column c is not empty"#)
        );
        assert!(
            reason("x", &Null, Dialect::XML).starts_with(r#"value "x" in column c is not a Null"#)
        );
        assert_eq!(
            reason("x", &TIMESTAMP, Dialect::XML),
            r#"value "x" in column c is not a Timestamp (YYYY-MM-DD HH:MM:SS[.f])"#
        );
        assert_eq!(
            misfit_reason("2.5", "qty", &Int64, Dialect::JSON),
            "value 2.5 in column qty is not an Int64"
        );
        assert_eq!(quoted(r#"a"b"#), r#""a\"b""#);
        let long = "é".repeat(100);
        assert_eq!(shorten(&long), format!("{}…", "é".repeat(40)));
    }

    #[test]
    fn caps_raw_text_on_a_char_boundary() {
        let big = "é".repeat(MAX_REJECTED_RAW);
        let text = raw_text(big.as_bytes());
        assert!(text.len() <= MAX_REJECTED_RAW && text.chars().all(|c| c == 'é'));
        let four = "😀".repeat(MAX_REJECTED_RAW / 4 + 1);
        let text = raw_text(&four.as_bytes()[1..]);
        assert!(text.len() <= MAX_REJECTED_RAW);
        assert_eq!(raw_text(b"2,bad\xff"), "2,bad\u{fffd}");
        assert_eq!(raw_text(b"x,y "), "x,y ");
    }
}
