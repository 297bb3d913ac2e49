//! `on_schema_change`: how the query's columns differ from the table's, and the columns a run
//! writes under each policy. Types are compared as Delta stores them (the query's as a write
//! would normalize them), so `timestamp(ns)` against a stored `timestamp_ntz` is no change.

use std::fmt;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, cast, col, lit};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::schema::cast::normalize_for_delta;

use super::config::OnSchemaChange;

/// How the query's columns differ from the table's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaChange {
    /// Columns the query has and the table does not.
    pub added: Vec<String>,
    /// Columns the table has and the query does not.
    pub removed: Vec<String>,
    /// Columns whose type differs: name, the table's type, the query's.
    pub retyped: Vec<(String, String, String)>,
}

impl SchemaChange {
    /// The change from `table` (a Delta table's schema) to `query` (the rows to write).
    pub fn between(
        table: &Schema,
        query: &Schema,
    ) -> Result<SchemaChange, deltalake::DeltaTableError> {
        let kernel = |schema: &Schema| -> Result<StructType, deltalake::DeltaTableError> {
            Ok(normalize_for_delta(&std::sync::Arc::new(schema.clone()))
                .as_ref()
                .try_into_kernel()?)
        };
        let (table_kernel, query_kernel) = (kernel(table)?, kernel(query)?);
        let mut change = SchemaChange::default();
        for field in query_kernel.fields() {
            match table_kernel.field(field.name()) {
                None => change.added.push(field.name().clone()),
                Some(old) if old.data_type() != field.data_type() => change.retyped.push((
                    field.name().clone(),
                    old.data_type().to_string(),
                    field.data_type().to_string(),
                )),
                Some(_) => {}
            }
        }
        change.removed = table_kernel
            .fields()
            .filter(|f| query_kernel.field(f.name()).is_none())
            .map(|f| f.name().clone())
            .collect();
        Ok(change)
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.retyped.is_empty()
    }

    /// Whether `policy` needs the table rewritten: Delta without column mapping can neither
    /// drop a column nor change its type in place.
    pub fn rewrites(&self, policy: OnSchemaChange) -> bool {
        policy == OnSchemaChange::SyncAllColumns
            && (!self.removed.is_empty() || !self.retyped.is_empty())
    }

    /// What `policy` made of this change, for the run's output.
    pub fn applied(&self, policy: OnSchemaChange) -> String {
        let what = match policy {
            OnSchemaChange::Ignore => {
                "ignored (on_schema_change: ignore): new columns are not written, removed ones are null in new rows"
            }
            OnSchemaChange::Fail => "refused (on_schema_change: fail)",
            OnSchemaChange::AppendNewColumns => {
                "new columns added (on_schema_change: append_new_columns), removed ones are null in new rows"
            }
            OnSchemaChange::SyncAllColumns if self.rewrites(policy) => {
                "table rewritten in the same commit to the query's columns (on_schema_change: sync_all_columns)"
            }
            OnSchemaChange::SyncAllColumns => {
                "new columns added (on_schema_change: sync_all_columns)"
            }
        };
        format!("schema change: {self}; {what}")
    }

    /// The columns a run writes under `policy`: the table's (the query's value cast to the
    /// table's type, or null where the query lacks it), then, unless ignored, the new ones.
    /// A rewrite (see [`Self::rewrites`]) writes the query's columns as they are.
    pub fn columns(&self, policy: OnSchemaChange, table: &Schema, query: &Schema) -> Vec<Expr> {
        if self.rewrites(policy) {
            return query
                .fields()
                .iter()
                .map(|f| col(quoted(f.name())))
                .collect();
        }
        let mut columns: Vec<Expr> = table
            .fields()
            .iter()
            .map(|field| {
                let name = field.name();
                if query.field_with_name(name).is_err() {
                    null_of(field.data_type()).alias(name)
                } else if self.retyped.iter().any(|(n, ..)| n == name) {
                    cast(col(quoted(name)), field.data_type().clone()).alias(name)
                } else {
                    col(quoted(name))
                }
            })
            .collect();
        if policy != OnSchemaChange::Ignore {
            columns.extend(self.added.iter().map(|name| col(quoted(name))));
        }
        columns
    }
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("new columns {}", self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed columns {}", self.removed.join(", ")));
        }
        for (name, from, to) in &self.retyped {
            parts.push(format!("column {name} changed from {from} to {to}"));
        }
        f.write_str(&parts.join("; "))
    }
}

/// A typed null.
pub fn null_of(data_type: &DataType) -> Expr {
    cast(lit(ScalarValue::Null), data_type.clone())
}

/// A column reference that keeps the name's case and dots.
pub fn quoted(name: &str) -> datafusion::common::Column {
    datafusion::common::Column::new_unqualified(name)
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, TimeUnit};

    use super::*;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn changes_are_compared_as_delta_stores_them() {
        let table = schema(&[
            ("id", DataType::Int64),
            ("at", DataType::Timestamp(TimeUnit::Microsecond, None)),
            ("gone", DataType::Utf8),
            ("n", DataType::Int32),
        ]);
        let query = schema(&[
            ("id", DataType::Int64),
            ("at", DataType::Timestamp(TimeUnit::Nanosecond, None)),
            ("n", DataType::Utf8),
            ("new", DataType::Boolean),
        ]);
        let change = SchemaChange::between(&table, &query).unwrap();
        assert_eq!(change.added, ["new"]);
        assert_eq!(change.removed, ["gone"]);
        assert_eq!(change.retyped.len(), 1);
        assert_eq!(change.retyped[0].0, "n");
        assert_eq!(
            change.to_string(),
            "new columns new; removed columns gone; column n changed from integer to string"
        );
        assert!(change.rewrites(OnSchemaChange::SyncAllColumns));
        assert!(!change.rewrites(OnSchemaChange::AppendNewColumns));
        let names = |policy| {
            change
                .columns(policy, &table, &query)
                .iter()
                .map(|e| e.schema_name().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(OnSchemaChange::Ignore), ["id", "at", "gone", "n"]);
        assert_eq!(
            names(OnSchemaChange::AppendNewColumns),
            ["id", "at", "gone", "n", "new"]
        );
        assert_eq!(
            names(OnSchemaChange::SyncAllColumns),
            ["id", "at", "n", "new"]
        );
    }
}
