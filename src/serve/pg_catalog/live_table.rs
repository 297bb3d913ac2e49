//! A catalog table computed from the live snapshot each time a query scans it.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int16Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::live::{Live, Snapshot};

/// Builds a table's columns, in schema order, from a snapshot.
pub type Rows = fn(&Snapshot) -> Vec<ArrayRef>;

#[derive(Debug)]
pub struct LiveTable {
    schema: SchemaRef,
    live: Arc<Live>,
    rows: Rows,
}

impl LiveTable {
    pub fn new(fields: Vec<Field>, live: &Arc<Live>, rows: Rows) -> Self {
        Self {
            schema: Arc::new(Schema::new(fields)),
            live: Arc::clone(live),
            rows,
        }
    }
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.live.snapshot().await?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), (self.rows)(&snapshot))?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            Arc::clone(&self.schema),
            projection.cloned(),
        )?)
    }
}

/// Column builders for the row functions.
pub fn texts<S: Into<String>>(values: impl IntoIterator<Item = Option<S>>) -> ArrayRef {
    Arc::new(StringArray::from(
        values
            .into_iter()
            .map(|v| v.map(Into::into))
            .collect::<Vec<Option<String>>>(),
    ))
}

pub fn ints(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

pub fn smallints(values: impl IntoIterator<Item = i16>) -> ArrayRef {
    Arc::new(Int16Array::from_iter_values(values))
}

pub fn bools(values: impl IntoIterator<Item = bool>) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(values.into_iter().map(Some)))
}

/// The same value for each of `n` rows.
pub fn repeat_text(value: Option<&str>, n: usize) -> ArrayRef {
    texts(std::iter::repeat_n(value, n))
}
