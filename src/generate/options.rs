//! The knobs of `strata generate`, and the effective rates they boil down to.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};

use crate::lake::RawFormat;

/// Flags of `strata generate`; [`GenerateArgs::new`] gives the same defaults to library callers.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Directory the raw files and manifest.json are written to
    #[arg(long, default_value = "drop")]
    pub out: PathBuf,
    /// Number of orders across all batches (other entities scale with it)
    #[arg(long, default_value_t = 10_000)]
    pub scale: u64,
    /// Random seed; the same seed gives byte-identical output
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of daily drops, dated 2026-01-01 onward
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub batches: u32,
    /// Only write entities stored in these formats
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "csv,json,ndjson,xml,parquet"
    )]
    pub formats: Vec<RawFormat>,
    /// Probability that a record has a required field left empty
    #[arg(long, default_value_t = 0.01, value_parser = parse_rate)]
    pub null_rate: f64,
    /// Probability that a record is followed by a duplicate (exact or near) of a recent one
    #[arg(long, default_value_t = 0.01, value_parser = parse_rate)]
    pub duplicate_rate: f64,
    /// Probability that a record is written malformed (CSV, NDJSON and XML only)
    #[arg(long, default_value_t = 0.005, value_parser = parse_rate)]
    pub malformed_rate: f64,
    /// Probability that a record of batch 2 or later belongs to an earlier day
    #[arg(long, default_value_t = 0.02, value_parser = parse_rate)]
    pub late_rate: f64,
    /// Keep every batch's schema identical to the first
    #[arg(long)]
    pub no_drift: bool,
    /// Write tidy data: no dirt, no source quirks, no schema drift
    #[arg(long)]
    pub clean: bool,
}

impl GenerateArgs {
    /// The CLI defaults with another output directory. The defaults are read back from the clap
    /// definition so they live in one place.
    pub fn new(out: PathBuf) -> Self {
        let command = Self::augment_args(clap::Command::new("generate"));
        let matches = command
            .try_get_matches_from([OsString::from("generate")])
            .expect("the default flag values parse");
        let mut args = Self::from_arg_matches(&matches).expect("the default flag values parse");
        args.out = out;
        args
    }

    /// Checks what clap checks for CLI users, for library callers who build the struct by hand.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.batches == 0 {
            return Err("--batches must be at least 1".into());
        }
        for (flag, rate) in [
            ("--null-rate", self.null_rate),
            ("--duplicate-rate", self.duplicate_rate),
            ("--malformed-rate", self.malformed_rate),
            ("--late-rate", self.late_rate),
        ] {
            check_rate(rate).map_err(|e| format!("{flag}: {e}"))?;
        }
        Ok(())
    }

    /// The rates actually applied: `--clean` switches every kind of dirt and quirk off.
    pub(super) fn rates(&self) -> Rates {
        if self.clean {
            return Rates::default();
        }
        Rates {
            null: self.null_rate,
            duplicate: self.duplicate_rate,
            malformed: self.malformed_rate,
            late: self.late_rate,
            mixed_date_format: MIXED_DATE_FORMAT_RATE,
            currency_string: CURRENCY_STRING_RATE,
            out_of_range: OUT_OF_RANGE_RATE,
            variant_spelling: VARIANT_SPELLING_RATE,
        }
    }

    /// Whether later batches change schema.
    pub(super) fn drift(&self) -> bool {
        !(self.clean || self.no_drift)
    }

    /// The selected formats, sorted and without repeats, so the manifest does not depend on
    /// how the flag was spelled.
    pub(super) fn selected_formats(&self) -> Vec<RawFormat> {
        let mut formats = self.formats.clone();
        formats.sort();
        formats.dedup();
        formats
    }
}

// Source-system quirks have no flags: they are what the upstream systems do, at fixed rates.
const MIXED_DATE_FORMAT_RATE: f64 = 0.08;
const CURRENCY_STRING_RATE: f64 = 0.05;
const OUT_OF_RANGE_RATE: f64 = 0.002;
const VARIANT_SPELLING_RATE: f64 = 0.15;

/// Per-record probabilities in force for a run, recorded in the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// A required field is empty or null.
    pub null: f64,
    /// A recent record is repeated, exactly or slightly changed.
    pub duplicate: f64,
    /// The record is broken so that a reader must reject it.
    pub malformed: f64,
    /// A record of batch 2+ belongs to an earlier day.
    pub late: f64,
    /// A date or timestamp is written in a non-ISO 8601 format.
    pub mixed_date_format: f64,
    /// An amount is written as a currency string such as "$1,234.50".
    pub currency_string: f64,
    /// A value is impossible: negative quantity or amount, year 1900 or 2099, discount above 1.
    pub out_of_range: f64,
    /// A value is valid but spelled unusually (status case and whitespace, ISO offsets); not
    /// counted as dirt.
    pub variant_spelling: f64,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    check_rate(rate)?;
    Ok(rate)
}

fn check_rate(rate: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(format!("{rate} is not a probability between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenerateArgs,
    }

    #[test]
    fn flags_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "generate",
            "--formats",
            "xml,csv,csv",
            "--clean",
            "--batches",
            "2",
        ])
        .unwrap();
        assert_eq!(
            cli.args.selected_formats(),
            [RawFormat::Csv, RawFormat::Xml]
        );
        assert_eq!(cli.args.rates(), Rates::default());
        assert!(!cli.args.drift());
        assert!(Cli::try_parse_from(["generate", "--null-rate", "2"]).is_err());
        assert!(Cli::try_parse_from(["generate", "--batches", "0"]).is_err());
        let defaults = Cli::try_parse_from(["generate"]).unwrap().args;
        assert_eq!(defaults.out, PathBuf::from("drop"));
        assert!(defaults.drift());
        assert_eq!(defaults.rates().malformed, 0.005);
    }
}
