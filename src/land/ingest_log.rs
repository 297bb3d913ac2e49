//! `_strata/ingest_log`: a Delta table with one row per raw file that really landed in bronze.
//! It is the commit point of landing: a file is part of bronze once its row is committed.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use arrow::error::ArrowError;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use url::Url;

use super::LandError;
use crate::lake::{Lake, delta, layout};
use crate::session;

/// Table name under `_strata/`.
pub const TABLE: &str = "ingest_log";

/// One landed file.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub landed_at: DateTime<Utc>,
}

/// Handle on the log of one lake.
pub struct IngestLog {
    path: Path,
    url: Url,
}

impl IngestLog {
    pub fn new(lake: &Lake) -> Self {
        let path = layout::meta_table(TABLE);
        Self {
            url: lake.url_of(&path),
            path,
        }
    }

    /// Every committed record, oldest first.
    pub async fn records(&self, lake: &Lake) -> Result<Vec<IngestRecord>, LandError> {
        let Some(table) = delta::open(lake, &self.path)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(Vec::new());
        };
        let ctx = session::base_context(lake);
        session::register_delta(&ctx, TABLE, &table)
            .await
            .map_err(|e| self.error(e))?;
        let batches = ctx
            .sql(&format!(
                "SELECT * FROM {TABLE} ORDER BY landed_at, bronze_path"
            ))
            .await
            .map_err(|e| self.error(e))?
            .collect()
            .await
            .map_err(|e| self.error(e))?;
        let mut records = Vec::new();
        for batch in &batches {
            records.extend(from_batch(batch).map_err(|e| self.error(e))?);
        }
        Ok(records)
    }

    /// Commits `records` in one Delta transaction.
    pub async fn append(&self, lake: &Lake, records: &[IngestRecord]) -> Result<(), LandError> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = to_batch(records).map_err(|e| self.error(e))?;
        delta::append(lake, &self.path, TABLE, vec![batch])
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    fn error(&self, e: impl std::fmt::Display) -> LandError {
        LandError::IngestLog {
            uri: self.url.to_string(),
            message: e.to_string(),
        }
    }
}

fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("batch_id"),
        text("source"),
        text("table_name"),
        text("format"),
        text("source_path"),
        text("bronze_path"),
        Field::new("bytes", DataType::Int64, false),
        text("sha256"),
        Field::new("landed_at", landed_at_type(), false),
    ]))
}

fn to_batch(records: &[IngestRecord]) -> Result<RecordBatch, ArrowError> {
    let text = |f: fn(&IngestRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| &r.batch_id),
        text(|r| &r.source),
        text(|r| &r.table_name),
        text(|r| &r.format),
        text(|r| &r.source_path),
        text(|r| &r.bronze_path),
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| r.bytes as i64),
        )),
        text(|r| &r.sha256),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                records.iter().map(|r| r.landed_at.timestamp_micros()),
            )
            .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(schema(), columns)
}

fn from_batch(batch: &RecordBatch) -> Result<Vec<IngestRecord>, ArrowError> {
    // Delta scans may hand back view or dictionary types; normalize before reading.
    let column = |name: &str, to: &DataType| -> Result<ArrayRef, ArrowError> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| ArrowError::SchemaError(format!("ingest log has no column {name}")))?;
        cast(array, to)
    };
    let text = |name: &str| column(name, &DataType::Utf8);
    let (batch_id, source, table_name, format) = (
        text("batch_id")?,
        text("source")?,
        text("table_name")?,
        text("format")?,
    );
    let (source_path, bronze_path, sha256) =
        (text("source_path")?, text("bronze_path")?, text("sha256")?);
    let bytes = column("bytes", &DataType::Int64)?;
    let landed_at = column("landed_at", &landed_at_type())?;
    let bytes = bytes.as_primitive::<Int64Type>();
    let landed_at = landed_at.as_primitive::<TimestampMicrosecondType>();
    let at = |a: &ArrayRef, i: usize| a.as_string::<i32>().value(i).to_string();
    Ok((0..batch.num_rows())
        .map(|i| IngestRecord {
            batch_id: at(&batch_id, i),
            source: at(&source, i),
            table_name: at(&table_name, i),
            format: at(&format, i),
            source_path: at(&source_path, i),
            bronze_path: at(&bronze_path, i),
            bytes: bytes.value(i) as u64,
            sha256: at(&sha256, i),
            landed_at: DateTime::from_timestamp_micros(landed_at.value(i)).unwrap_or_default(),
        })
        .collect())
}

fn landed_at_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}
