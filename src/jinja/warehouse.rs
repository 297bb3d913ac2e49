//! What templates may ask the warehouse while compiling (`run_query`, `statement`,
//! `adapter.get_columns_in_relation`, `adapter.get_relation`): an interface the runner
//! implements over its session, so the Jinja runtime stays below the engine.

use serde_json::Value as Json;

/// A query's result, as templates see it (agate's table in dbt).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    /// Column names and SQL types.
    pub columns: Vec<WarehouseColumn>,
    /// Rows of values (numbers, text, booleans, nulls; dates and times as ISO text).
    pub rows: Vec<Vec<Json>>,
}

/// A column of a relation or a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseColumn {
    pub name: String,
    /// The type as SQL spells it (`bigint`, `varchar`, `decimal(12,2)`, ...).
    pub data_type: String,
}

/// Why the warehouse could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseError {
    /// The question reads a relation this run builds and has not built yet: the node must be
    /// rendered again once it is.
    NotBuiltYet(String),
    /// The query failed.
    Failed(String),
}

/// The warehouse a compile renders against.
pub trait Warehouse: std::fmt::Debug + Send + Sync {
    /// Runs `sql` and returns its rows.
    fn query(&self, sql: &str) -> Result<QueryResult, WarehouseError>;
    /// The columns of relation `schema.name`, `None` when there is no such relation.
    fn columns(
        &self,
        schema: Option<&str>,
        name: &str,
    ) -> Result<Option<Vec<WarehouseColumn>>, WarehouseError>;
}
