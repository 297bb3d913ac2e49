//! `manifest.json`: what was written, and exactly how dirty each file is.
//!
//! Downstream stages assert against these numbers, so every count is exact. Counts are per
//! physical record: a record is counted at most once per kind, an exact duplicate counts again
//! for every kind its original shows, and a malformed record counts only as malformed.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::GenerateError;
use super::options::Rates;
use crate::lake::RawFormat;

/// Everything one `generate` run wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub generator: String,
    pub version: String,
    pub seed: u64,
    pub scale: u64,
    pub batches: u32,
    /// Date of batch 1; batch b is dated `start_date + (b - 1)` days.
    pub start_date: String,
    pub formats: Vec<RawFormat>,
    /// Whether later batches carry schema drift.
    pub drift: bool,
    pub rates: Rates,
    /// Sorted by path.
    pub files: Vec<FileEntry>,
    /// Per entity, the sum over its files.
    pub totals: BTreeMap<String, EntityTotals>,
}

/// One written file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the output directory, with `/` separators.
    pub path: String,
    pub entity: String,
    pub format: RawFormat,
    /// 1-based.
    pub batch: u32,
    pub date: String,
    /// Column (or top-level key, or child element) names in file order.
    pub columns: Vec<String>,
    /// Physical records, malformed ones and duplicates included, headers excluded.
    pub records: u64,
    /// Records a reader can parse: `records - dirt.malformed`.
    pub valid_records: u64,
    pub bytes: u64,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub dirt: DirtCounts,
}

/// Sums over all files of an entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityTotals {
    pub files: u64,
    pub records: u64,
    pub valid_records: u64,
    pub bytes: u64,
    pub dirt: DirtCounts,
}

/// How many records of a file show each kind of dirt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirtCounts {
    /// A required field (an id, an email, a timestamp...) is empty or null.
    pub null_required: u64,
    /// A byte-for-byte repeat of an earlier record of the same file.
    pub exact_duplicates: u64,
    /// Same key as an earlier record, something slightly different (also: a changed copy of a
    /// customer first sent in an earlier batch).
    pub near_duplicates: u64,
    /// A reader must reject the record; it spans exactly one line.
    pub malformed: u64,
    /// A date or timestamp not in ISO 8601.
    pub mixed_date_formats: u64,
    /// An amount written as a currency string.
    pub currency_strings: u64,
    /// An impossible value: negative quantity or amount, year 1900 or 2099, discount above 1.
    pub out_of_range: u64,
    /// The record's business date belongs to an earlier batch.
    pub late: u64,
}

impl AddAssign for DirtCounts {
    fn add_assign(&mut self, other: Self) {
        self.null_required += other.null_required;
        self.exact_duplicates += other.exact_duplicates;
        self.near_duplicates += other.near_duplicates;
        self.malformed += other.malformed;
        self.mixed_date_formats += other.mixed_date_formats;
        self.currency_strings += other.currency_strings;
        self.out_of_range += other.out_of_range;
        self.late += other.late;
    }
}

impl DirtCounts {
    /// True when no kind of dirt was written.
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

impl Manifest {
    /// Name of the manifest inside the output directory.
    pub const FILE_NAME: &'static str = "manifest.json";

    /// Reads `<dir>/manifest.json`.
    pub fn read(dir: &Path) -> Result<Self, GenerateError> {
        let path = dir.join(Self::FILE_NAME);
        let text = std::fs::read(&path).map_err(|source| GenerateError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| GenerateError::Manifest { path, source })
    }

    /// Computes `totals` from `files`.
    pub(super) fn sum_totals(files: &[FileEntry]) -> BTreeMap<String, EntityTotals> {
        let mut totals: BTreeMap<String, EntityTotals> = BTreeMap::new();
        for file in files {
            let total = totals.entry(file.entity.clone()).or_default();
            total.files += 1;
            total.records += file.records;
            total.valid_records += file.valid_records;
            total.bytes += file.bytes;
            total.dirt += file.dirt;
        }
        totals
    }
}
