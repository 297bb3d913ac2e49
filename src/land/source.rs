//! The extension point for source kinds. Each kind lands one declared table at a time
//! (`Source::land_table`; `Source::land` is the one opening they share): it
//! decides what is new (files not yet landed, rows above a watermark), writes it into bronze
//! through [`super::copy`] (scratch name, then one rename) and commits it to the ingest log
//! through [`Landing::commit`]. The ingest log commit is the one commit point for every kind.

use std::collections::HashSet;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::copy::{self, Digested};
use super::declaration::{SourceDecl, TableDecl};
use super::{LandError, TableReport};
use crate::lake::{Lake, layout};
use crate::meta::{IngestLog, IngestRecord};

/// A stream of a raw file's bytes, in order.
pub type ByteStream = BoxStream<'static, Result<Bytes, LandError>>;

/// One file a source offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    /// Where the file comes from, as users would name it (a path or URL); logged verbatim.
    pub location: String,
    /// Size in bytes when the source knows it up front (for progress).
    pub size: Option<u64>,
    /// The file's extension(s) without the leading dot (`csv`, `csv.gz`), kept in bronze.
    pub extension: String,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Lands what `table` offers that bronze does not hold yet, counting it in `outcome`.
    /// Failures of single files go into `outcome.failures` (the rest still lands);
    /// [`TableFailure::Source`] stops the table when the source itself fails, [`TableFailure::Abort`]
    /// the run when the lake or the ingest log does.
    async fn land_table(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure>;

    /// Lands `table`. A source failure goes into the outcome with the other failures; an
    /// `Err` (the ingest log or the lake failing) aborts the whole run, with what was
    /// committed before it kept.
    async fn land(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
    ) -> Result<TableOutcome, LandError> {
        let mut outcome = TableOutcome::default();
        let result = self.land_table(table, landing, &mut outcome).await;
        outcome.record(result)?;
        Ok(outcome)
    }
}

/// What landing one table did.
#[derive(Debug, Default)]
pub struct TableOutcome {
    pub report: TableReport,
    pub failures: Vec<LandError>,
}

/// Why a table stopped partway: its source failed (reported; what landed stays and other
/// tables go on) or the lake or the ingest log did (the run stops).
pub enum TableFailure {
    Source(LandError),
    Abort(LandError),
}

impl TableOutcome {
    /// Files a source failure with the other failures; an abort ends the run.
    pub fn record(&mut self, result: Result<(), TableFailure>) -> Result<(), LandError> {
        match result {
            Ok(()) => Ok(()),
            Err(TableFailure::Source(error)) => {
                self.failures.push(error);
                Ok(())
            }
            Err(TableFailure::Abort(error)) => Err(error),
        }
    }
}

/// A file a source fetched into a scratch file of the lake: not part of bronze yet.
#[derive(Debug)]
pub struct ScratchFile {
    /// Where it came from, as logged.
    pub location: String,
    /// Its extension; empty when its name has none (the table's format then gives one).
    pub extension: String,
    pub tmp: Path,
    pub written: Digested,
    /// What the source kind needs to resume after this file (its ingest-log `source_state`).
    pub state: Option<String>,
}

/// One run's shared settings and its way into the ingest log, handed to every source kind.
pub struct Landing<'a> {
    pub lake: &'a Lake,
    pub log: &'a IngestLog,
    pub source: &'a SourceDecl,
    /// Identifies the run; bronze file names start with it.
    pub batch_id: &'a str,
    pub now: DateTime<Utc>,
    /// Committed records of this source, oldest first.
    pub history: &'a [IngestRecord],
    /// Files copied at once.
    pub concurrency: usize,
    pub show_progress: bool,
}

impl Landing<'_> {
    /// Committed records of `table`, oldest first.
    pub fn history_of<'b>(
        &'b self,
        table: &'b TableDecl,
    ) -> impl Iterator<Item = &'b IngestRecord> + 'b {
        self.history
            .iter()
            .filter(move |r| r.table_name == table.name)
    }

    /// Where the `n`th file this run lands for `table` goes in bronze.
    pub fn bronze_path(&self, table: &TableDecl, n: usize, extension: &str) -> Path {
        layout::bronze_file(
            &self.source.name,
            &table.name,
            self.now.date_naive(),
            self.batch_id,
            n,
            extension,
        )
    }

    /// The log record of a file this run wrote to `bronze_path`.
    pub fn record(
        &self,
        table: &TableDecl,
        source_path: &str,
        bronze_path: &Path,
        written: &Digested,
        source_state: Option<String>,
    ) -> IngestRecord {
        IngestRecord {
            batch_id: self.batch_id.to_string(),
            source: self.source.name.clone(),
            table_name: table.name.clone(),
            format: table.raw_format().to_string(),
            source_path: source_path.to_string(),
            bronze_path: bronze_path.to_string(),
            bytes: written.bytes,
            sha256: written.sha256.clone(),
            landed_at: self.now,
            source_state,
        }
    }

    /// Renames fetched files into bronze and commits them in one ingest-log transaction.
    /// Content `table` already holds (landed earlier, or fetched twice now) is dropped and
    /// counted as skipped.
    pub async fn publish(
        &self,
        table: &TableDecl,
        fetched: Vec<ScratchFile>,
        report: &mut TableReport,
    ) -> Result<(), LandError> {
        let mut known: HashSet<String> = self.history_of(table).map(|r| r.sha256.clone()).collect();
        let mut records = Vec::new();
        for file in fetched {
            if !known.insert(file.written.sha256.clone()) {
                let _ = self.lake.store().delete(&file.tmp).await;
                report.skipped += 1;
                continue;
            }
            let extension = if file.extension.is_empty() {
                table.raw_format().extension().to_string()
            } else {
                file.extension
            };
            let dest = self.bronze_path(table, records.len(), &extension);
            copy::publish(self.lake, &file.tmp, &dest).await?;
            report.landed += 1;
            report.bytes += file.written.bytes;
            records.push(self.record(table, &file.location, &dest, &file.written, file.state));
        }
        self.commit(&records).await
    }

    /// Commits `records` in one ingest-log transaction: their files become part of bronze.
    pub async fn commit(&self, records: &[IngestRecord]) -> Result<(), LandError> {
        Ok(self.log.append(self.lake, records).await?)
    }
}

/// The extension of a file name: everything after the first dot of the last segment, so that
/// compressed files keep both parts (`orders.csv.gz` → `csv.gz`).
pub fn extension_of(name: &str) -> String {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    file.trim_start_matches('.')
        .split_once('.')
        .map(|(_, ext)| ext.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::extension_of;

    #[test]
    fn extensions_keep_compression_suffixes() {
        assert_eq!(extension_of("/a/b/orders_2026-01-01.csv"), "csv");
        assert_eq!(extension_of("x/orders.csv.gz"), "csv.gz");
        assert_eq!(extension_of("README"), "");
        assert_eq!(extension_of(".hidden.json"), "json");
    }
}
