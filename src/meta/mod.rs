//! Strata's own metadata tables under `_strata/`: the ingest log (what landed in bronze) and the
//! run log (what each run built), each a [`MetaTable`] of rows of a serde type, appended in one
//! Delta commit per call and read back whole. Landing writes the ingest log, and bronze, runs
//! and `build --watch` read it; runs write the run log, and time travel reads it.

pub(crate) mod ingest_log;
pub(crate) mod run_log;

use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::new_null_array;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use object_store::path::Path;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::lake::{Lake, context, delta, layout};

pub use ingest_log::{IngestLog, IngestRecord};
pub use run_log::{RunLog, RunRecord};

/// A failure reading or writing a metadata table, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{uri}: {message}")]
pub struct MetaError {
    pub uri: String,
    pub message: String,
}

/// A column of non-null text.
fn text(name: &str) -> FieldRef {
    Arc::new(Field::new(name, DataType::Utf8, false))
}

/// A column of non-null UTC instants in microseconds (as `chrono::serde::ts_microseconds`
/// writes them).
fn utc_micros(name: &str) -> FieldRef {
    let unit = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Field::new(name, unit, false))
}

/// A metadata table holding rows of `T`, whose Arrow columns are `fields`.
pub struct MetaTable<T> {
    name: &'static str,
    fields: Vec<FieldRef>,
    rows: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> MetaTable<T> {
    pub fn new(name: &'static str, fields: Vec<FieldRef>) -> Self {
        Self {
            name,
            fields,
            rows: PhantomData,
        }
    }

    fn path(&self) -> Path {
        layout::meta_table(self.name)
    }

    fn error(&self, lake: &Lake, e: impl std::fmt::Display) -> MetaError {
        MetaError {
            uri: lake.url_of(&self.path()).to_string(),
            message: e.to_string(),
        }
    }

    /// Every row committed so far (none before the first commit).
    pub async fn read(&self, lake: &Lake) -> Result<Vec<T>, MetaError> {
        let fail = |e: &dyn std::fmt::Display| self.error(lake, e);
        let Some(table) = delta::open(lake, &self.path())
            .await
            .map_err(|e| fail(&e))?
        else {
            return Ok(Vec::new());
        };
        let ctx = context::base_context(lake);
        context::register_delta(&ctx, self.name, &table)
            .await
            .map_err(|e| fail(&e))?;
        let batches = ctx
            .sql(&format!("SELECT * FROM {}", self.name))
            .await
            .map_err(|e| fail(&e))?
            .collect()
            .await
            .map_err(|e| fail(&e))?;
        let mut rows = Vec::new();
        for batch in &batches {
            // Delta scans may hand back view or dictionary types: read them as written. A
            // nullable column added after the table was created is null in older tables.
            let columns = self
                .fields
                .iter()
                .map(|f| match batch.column_by_name(f.name()) {
                    Some(column) => cast(column, f.data_type()).map_err(|e| fail(&e)),
                    None if f.is_nullable() => Ok(new_null_array(f.data_type(), batch.num_rows())),
                    None => Err(fail(&format!("no column {}", f.name()))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let typed = RecordBatch::try_new(Arc::new(Schema::new(self.fields.clone())), columns)
                .map_err(|e| fail(&e))?;
            rows.extend(serde_arrow::from_record_batch::<Vec<T>>(&typed).map_err(|e| fail(&e))?);
        }
        Ok(rows)
    }

    /// Appends `rows` in one commit (nothing to do for none).
    pub async fn append(&self, lake: &Lake, rows: &[T]) -> Result<(), MetaError> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch =
            serde_arrow::to_record_batch(&self.fields, &rows).map_err(|e| self.error(lake, e))?;
        delta::append(lake, &self.path(), self.name, vec![batch])
            .await
            .map_err(|e| self.error(lake, e))?;
        Ok(())
    }
}
