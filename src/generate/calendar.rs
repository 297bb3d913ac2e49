//! Dates and timestamps as plain integers, written straight into byte buffers.
//!
//! Days count from 1970-01-01 and timestamps are UTC epoch milliseconds. The conversions are
//! Howard Hinnant's civil-calendar algorithms: exact, allocation-free and far cheaper per row
//! than going through a formatting library.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::options::Rates;
use super::text::encode::{push_int, push_padded};

pub(super) const MS_PER_DAY: i64 = 86_400_000;
pub(super) const MS_PER_HOUR: i64 = 3_600_000;

/// Batch 1's date: 2026-01-01. Fixed so output never depends on the wall clock.
pub(super) const START_DAY: i64 = days_from_civil(2026, 1, 1);

/// Day number of a calendar date.
pub(super) const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Calendar date (year, month, day) of a day number.
pub(super) const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// Day number of an epoch-millisecond timestamp.
pub(super) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// `YYYY-MM-DD`, as used in file names and the manifest.
pub(super) fn iso_date(day: i64) -> String {
    let mut buf = Vec::with_capacity(10);
    push_date(&mut buf, day, DateStyle::Iso);
    String::from_utf8(buf).expect("dates are ASCII")
}

/// The impossible timestamps that stand for out-of-range dates.
pub(super) fn absurd_ms(rng: &mut ChaCha8Rng) -> i64 {
    let day = if rng.random_bool(0.5) {
        days_from_civil(1900, 1, 1)
    } else {
        days_from_civil(2099, 12, 31)
    };
    day * MS_PER_DAY + rng.random_range(0..MS_PER_DAY / 1000) * 1000
}

/// True for timestamps no real record has (see [`absurd_ms`]).
pub(super) fn is_absurd(ms: i64) -> bool {
    let (year, _, _) = civil_from_days(day_of(ms));
    !(2000..=2090).contains(&year)
}

/// How a calendar date is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DateStyle {
    /// `2026-01-31`
    Iso,
    /// `01/31/2026`
    Us,
    /// `31.01.2026`
    European,
}

impl DateStyle {
    /// ISO unless the record shows a mixed date format.
    pub(super) fn pick(rng: &mut ChaCha8Rng, rates: &Rates) -> Self {
        if rng.random::<f64>() < rates.mixed_date_format {
            if rng.random_bool(0.5) {
                DateStyle::Us
            } else {
                DateStyle::European
            }
        } else {
            DateStyle::Iso
        }
    }

    pub(super) fn is_iso(self) -> bool {
        self == DateStyle::Iso
    }
}

/// How a timestamp is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TsStyle {
    /// `2026-01-31T14:05:09Z`
    IsoZ,
    /// `2026-01-31T14:05:09.123Z`
    IsoMillisZ,
    /// `2026-01-31T16:05:09+02:00`: ISO 8601 in a local time zone, hours east of UTC.
    IsoOffset(i8),
    /// `01/31/2026 14:05`
    UsMinutes,
    /// `2026-01-31 14:05:09`
    SqlSeconds,
    /// `1769868309`
    EpochSeconds,
    /// `1769868309123`
    EpochMillis,
}

impl TsStyle {
    /// `canonical` most of the time; a valid ISO variant with a UTC offset at the variant
    /// rate; one of `non_iso` when the record shows a mixed date format.
    pub(super) fn pick(
        rng: &mut ChaCha8Rng,
        rates: &Rates,
        canonical: TsStyle,
        non_iso: &[TsStyle],
    ) -> Self {
        let roll = rng.random::<f64>();
        if roll < rates.mixed_date_format {
            non_iso[rng.random_range(0..non_iso.len())]
        } else if roll < rates.mixed_date_format + rates.variant_spelling {
            // Positive offsets only, and business timestamps fall before 22:00 UTC, so the
            // local date never differs from the UTC date: late counts stay unambiguous.
            TsStyle::IsoOffset(rng.random_range(1..=2))
        } else {
            canonical
        }
    }

    pub(super) fn is_iso(self) -> bool {
        matches!(
            self,
            TsStyle::IsoZ | TsStyle::IsoMillisZ | TsStyle::IsoOffset(_)
        )
    }

    /// Epoch styles are numbers, which JSON writes without quotes.
    pub(super) fn is_number(self) -> bool {
        matches!(self, TsStyle::EpochSeconds | TsStyle::EpochMillis)
    }
}

/// Appends `day` spelled in `style`.
pub(super) fn push_date(buf: &mut Vec<u8>, day: i64, style: DateStyle) {
    let (year, month, dom) = civil_from_days(day);
    match style {
        DateStyle::Iso => {
            push_digits(buf, year, 4);
            buf.push(b'-');
            push_digits(buf, month, 2);
            buf.push(b'-');
            push_digits(buf, dom, 2);
        }
        DateStyle::Us => {
            push_digits(buf, month, 2);
            buf.push(b'/');
            push_digits(buf, dom, 2);
            buf.push(b'/');
            push_digits(buf, year, 4);
        }
        DateStyle::European => {
            push_digits(buf, dom, 2);
            buf.push(b'.');
            push_digits(buf, month, 2);
            buf.push(b'.');
            push_digits(buf, year, 4);
        }
    }
}

/// Appends the epoch-millisecond timestamp `ms` spelled in `style`.
pub(super) fn push_ts(buf: &mut Vec<u8>, ms: i64, style: TsStyle) {
    let local = match style {
        TsStyle::IsoOffset(hours) => ms + i64::from(hours) * MS_PER_HOUR,
        _ => ms,
    };
    let day = day_of(local);
    let in_day = local - day * MS_PER_DAY;
    let (hour, minute, second) = (
        in_day / MS_PER_HOUR,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
    );
    match style {
        TsStyle::IsoZ | TsStyle::IsoMillisZ | TsStyle::IsoOffset(_) => {
            push_date(buf, day, DateStyle::Iso);
            buf.push(b'T');
            push_clock(buf, hour, minute, Some(second));
            match style {
                TsStyle::IsoMillisZ => {
                    buf.push(b'.');
                    push_digits(buf, in_day % 1000, 3);
                    buf.push(b'Z');
                }
                TsStyle::IsoOffset(hours) => {
                    buf.push(b'+');
                    push_digits(buf, i64::from(hours), 2);
                    buf.extend_from_slice(b":00");
                }
                _ => buf.push(b'Z'),
            }
        }
        TsStyle::UsMinutes => {
            push_date(buf, day, DateStyle::Us);
            buf.push(b' ');
            push_clock(buf, hour, minute, None);
        }
        TsStyle::SqlSeconds => {
            push_date(buf, day, DateStyle::Iso);
            buf.push(b' ');
            push_clock(buf, hour, minute, Some(second));
        }
        TsStyle::EpochSeconds => push_int(buf, ms.div_euclid(1000)),
        TsStyle::EpochMillis => push_int(buf, ms),
    }
}

fn push_clock(buf: &mut Vec<u8>, hour: i64, minute: i64, second: Option<i64>) {
    push_digits(buf, hour, 2);
    buf.push(b':');
    push_digits(buf, minute, 2);
    if let Some(second) = second {
        buf.push(b':');
        push_digits(buf, second, 2);
    }
}

/// Appends `value` (non-negative) zero-padded to `width` digits.
fn push_digits(buf: &mut Vec<u8>, value: i64, width: u32) {
    push_padded(buf, value as u64, width);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64, style: TsStyle) -> String {
        let mut buf = Vec::new();
        push_ts(&mut buf, ms, style);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(START_DAY, 20_454);
        for day in [-25_567, 0, 10_956, 20_454, 47_482] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn styles() {
        let ms = (START_DAY + 30) * MS_PER_DAY + 14 * MS_PER_HOUR + 5 * 60_000 + 9_123;
        assert_eq!(ts(ms, TsStyle::IsoZ), "2026-01-31T14:05:09Z");
        assert_eq!(ts(ms, TsStyle::IsoMillisZ), "2026-01-31T14:05:09.123Z");
        assert_eq!(ts(ms, TsStyle::IsoOffset(2)), "2026-01-31T16:05:09+02:00");
        assert_eq!(ts(ms, TsStyle::UsMinutes), "01/31/2026 14:05");
        assert_eq!(ts(ms, TsStyle::SqlSeconds), "2026-01-31 14:05:09");
        assert_eq!(ts(ms, TsStyle::EpochSeconds), "1769868309");
        assert_eq!(ts(ms, TsStyle::EpochMillis), "1769868309123");
        let mut buf = Vec::new();
        push_date(&mut buf, START_DAY, DateStyle::European);
        assert_eq!(buf, b"01.01.2026");
        assert!(is_absurd(days_from_civil(1900, 1, 1) * MS_PER_DAY));
        assert!(!is_absurd(ms));
    }
}
