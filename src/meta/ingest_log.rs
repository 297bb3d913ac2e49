//! `_strata/ingest_log`: a Delta table with one row per raw file that really landed in bronze.
//! It is the commit point of landing: a file is part of bronze once its row is committed.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{MetaError, MetaTable, text, utc_micros};
use crate::lake::Lake;

/// Table name under `_strata/`.
pub const TABLE: &str = "ingest_log";

/// A failure reading or committing the ingest log, saying so: landing, bronze and runs each
/// read it, and their errors name it the same way.
#[derive(Debug, thiserror::Error)]
#[error("ingest log {0}")]
pub struct IngestLogError(#[from] MetaError);

/// One landed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestRecord {
    pub batch_id: String,
    pub source: String,
    pub table_name: String,
    pub format: String,
    pub source_path: String,
    /// Lake-relative path of the file in bronze.
    pub bronze_path: String,
    pub bytes: u64,
    pub sha256: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub landed_at: DateTime<Utc>,
    /// What the source kind needs to resume after this file, as JSON: the PostgreSQL cursor's
    /// high-water mark, or an HTTP file's validators (ETag, Last-Modified). Kept in the file's
    /// own log row so the file and the state it implies commit in one transaction. One JSON
    /// column rather than one per kind keeps the log's schema stable as kinds are added.
    #[serde(default)]
    pub source_state: Option<String>,
}

/// The ingest log of a lake.
pub struct IngestLog {
    table: MetaTable<IngestRecord>,
}

impl IngestLog {
    pub fn new() -> Self {
        let fields = vec![
            text("batch_id"),
            text("source"),
            text("table_name"),
            text("format"),
            text("source_path"),
            text("bronze_path"),
            Arc::new(Field::new("bytes", DataType::UInt64, false)),
            text("sha256"),
            utc_micros("landed_at"),
            Arc::new(Field::new("source_state", DataType::Utf8, true)),
        ];
        Self {
            table: MetaTable::new(TABLE, fields),
        }
    }

    /// Every committed record, oldest first.
    pub async fn records(&self, lake: &Lake) -> Result<Vec<IngestRecord>, IngestLogError> {
        let mut records = self.table.read(lake).await?;
        records.sort_by(|a, b| (a.landed_at, &a.bronze_path).cmp(&(b.landed_at, &b.bronze_path)));
        Ok(records)
    }

    /// Commits `records` in one Delta transaction.
    pub async fn append(
        &self,
        lake: &Lake,
        records: &[IngestRecord],
    ) -> Result<(), IngestLogError> {
        Ok(self.table.append(lake, records).await?)
    }
}

impl Default for IngestLog {
    fn default() -> Self {
        Self::new()
    }
}
