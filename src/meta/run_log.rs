//! `_strata/runs`: one row per node per run (status, rows, seconds, the Delta version written),
//! so a run can be traced and a table's state at a given run found again.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{MetaError, MetaTable, text, utc_micros};
use crate::lake::Lake;

/// Table name under `_strata/`.
pub const TABLE: &str = "runs";

/// What happened to one node in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// The command (`run`, `build`, `test`, `seed`).
    pub command: String,
    /// dbt-style unique id, e.g. `model.shop.stg_orders`.
    pub node: String,
    /// `schema.name` of the relation written, empty for tests.
    pub relation: String,
    /// `success`, `error`, `skipped`, or for tests `pass`, `fail`, `warn`.
    pub status: String,
    /// Rows written, or failing rows for a test.
    pub rows: Option<u64>,
    pub seconds: f64,
    /// The Delta version the node committed.
    pub delta_version: Option<u64>,
    pub message: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub started_at: DateTime<Utc>,
}

/// The run log of a lake.
pub struct RunLog {
    table: MetaTable<RunRecord>,
}

impl RunLog {
    pub fn new() -> Self {
        let fields = vec![
            text("run_id"),
            text("command"),
            text("node"),
            text("relation"),
            text("status"),
            Arc::new(Field::new("rows", DataType::UInt64, true)),
            Arc::new(Field::new("seconds", DataType::Float64, false)),
            Arc::new(Field::new("delta_version", DataType::UInt64, true)),
            text("message"),
            utc_micros("started_at"),
        ];
        Self {
            table: MetaTable::new(TABLE, fields),
        }
    }

    pub async fn records(&self, lake: &Lake) -> Result<Vec<RunRecord>, MetaError> {
        self.table.read(lake).await
    }

    pub async fn append(&self, lake: &Lake, records: &[RunRecord]) -> Result<(), MetaError> {
        self.table.append(lake, records).await
    }
}

impl Default for RunLog {
    fn default() -> Self {
        Self::new()
    }
}
