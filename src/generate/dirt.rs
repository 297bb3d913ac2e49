//! The machinery every entity shares: the record loop that injects duplicates and malformed
//! records, and the small dice that decide per-record dirt.
//!
//! An entity only says how to make a fresh row (with its value-level dirt already decided) and
//! how a re-sent row differs. Rows carry every presentation choice, so rendering is a pure
//! function of the row: an exact duplicate is simply the same row written again, and the dirt
//! it shows is counted again by the same code.

use std::io;

use indicatif::ProgressBar;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::calendar::{TsStyle, day_of, is_absurd};
use super::manifest::DirtCounts;
use super::options::Rates;

/// How many recent rows duplicates are drawn from; each remembers whether it was re-sent
/// changed already.
const RECENT_ROWS: usize = 64;
/// Rows between progress bar updates, so threads rarely touch the shared bar.
const PROGRESS_STEP: u64 = 4096;

/// A source of rows for one file.
pub(super) trait Table {
    type Row: Copy;

    /// Column names (or top-level keys, or child elements) in file order.
    fn columns(&self) -> &'static [&'static str];

    /// The next fresh row, or `None` when the file is complete.
    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Self::Row>;

    /// Changes a copy of a recent row the way a re-sent record differs: same key, a slightly
    /// different value, case or whitespace.
    fn nudge(&self, row: &mut Self::Row, rng: &mut ChaCha8Rng);
}

/// Where a table's rows are written.
pub(super) trait Sink<T: Table> {
    /// Writes a well-formed record and adds the dirt it shows to `dirt`.
    fn write(&mut self, table: &T, row: &T::Row, dirt: &mut DirtCounts) -> io::Result<()>;

    /// Whether the format can hold records a reader must reject.
    fn can_malform(&self) -> bool;

    /// Writes `row` broken so that a reader must reject it; only called if `can_malform`.
    fn write_malformed(&mut self, table: &T, row: &T::Row, rng: &mut ChaCha8Rng) -> io::Result<()>;
}

/// What a file received.
pub(super) struct Tally {
    pub columns: &'static [&'static str],
    pub records: u64,
    pub dirt: DirtCounts,
}

/// Moves every row of `table` into `sink`. Each fresh row may be written malformed instead;
/// each may be followed by an exact or near duplicate of one of the last rows.
pub(super) fn pump<T: Table, S: Sink<T>>(
    table: &mut T,
    sink: &mut S,
    rng: &mut ChaCha8Rng,
    rates: &Rates,
    progress: &ProgressBar,
) -> io::Result<Tally> {
    let mut tally = Tally {
        columns: table.columns(),
        records: 0,
        dirt: DirtCounts::default(),
    };
    let mut recent = Vec::with_capacity(RECENT_ROWS);
    let mut oldest = 0;
    let mut unreported = 0;
    let malformed_rate = if sink.can_malform() {
        rates.malformed
    } else {
        0.0
    };
    while let Some(row) = table.next_row(rng) {
        let before = tally.records;
        if chance(rng, malformed_rate) {
            sink.write_malformed(table, &row, rng)?;
            tally.dirt.malformed += 1;
        } else {
            sink.write(table, &row, &mut tally.dirt)?;
            // Only well-formed rows are remembered: a duplicate is a re-sent good record.
            if recent.len() < RECENT_ROWS {
                recent.push((row, false));
            } else {
                recent[oldest] = (row, false);
                oldest = (oldest + 1) % RECENT_ROWS;
            }
        }
        tally.records += 1;
        if !recent.is_empty() && chance(rng, rates.duplicate) {
            let slot = rng.random_range(0..recent.len());
            let (original, nudged) = &mut recent[slot];
            let mut again = *original;
            // A row is re-sent changed at most once, so a near duplicate never repeats an
            // earlier line byte for byte (which would make it an exact duplicate).
            if *nudged || rng.random_bool(0.5) {
                tally.dirt.exact_duplicates += 1;
            } else {
                *nudged = true;
                table.nudge(&mut again, rng);
                tally.dirt.near_duplicates += 1;
            }
            sink.write(table, &again, &mut tally.dirt)?;
            tally.records += 1;
        }
        unreported += tally.records - before;
        if unreported >= PROGRESS_STEP {
            progress.inc(unreported);
            unreported = 0;
        }
    }
    progress.inc(unreported);
    Ok(tally)
}

/// True with probability `p`.
pub(super) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// With probability `rate`, one of `options` (which field to null, which value to break).
pub(super) fn maybe<F: Copy>(rng: &mut ChaCha8Rng, rate: f64, options: &[F]) -> Option<F> {
    chance(rng, rate).then(|| options[rng.random_range(0..options.len())])
}

/// One of `items` other than `current`, uniformly.
pub(super) fn other<T: PartialEq + Copy>(rng: &mut ChaCha8Rng, items: &[T], current: T) -> T {
    let pick = items[rng.random_range(0..items.len() - 1)];
    if pick == current {
        items[items.len() - 1]
    } else {
        pick
    }
}

/// Counts what a record's business timestamp shows: a non-ISO spelling, an impossible value,
/// or a day before the batch's own.
pub(super) fn tally_ts(dirt: &mut DirtCounts, ms: i64, style: TsStyle, batch_day: i64) {
    if !style.is_iso() {
        dirt.mixed_date_formats += 1;
    }
    if is_absurd(ms) {
        dirt.out_of_range += 1;
    } else if day_of(ms) < batch_day {
        dirt.late += 1;
    }
}
