//! A model's configs checked before anything runs (`strata compile`, and the check before
//! `run` and `build`): an incremental model's strategy and settings as the run reads them,
//! `partition_by`, `cluster_by` and `tblproperties`, and the columns they name against the
//! model's planned columns. A bad one is reported naming the model, and nothing runs.

use arrow::datatypes::Schema;

use super::incremental::config::partition_by;
use super::incremental::{ConfigError, Incremental};
use super::{cluster, tblproperties};
use crate::project::{Materialized, Node};

/// Checks `node`'s configs, `schema` being its planned output.
pub fn check(node: &Node, schema: &Schema) -> Result<(), ConfigError> {
    tblproperties::of(node)?;
    columns_exist(node, "cluster_by", &cluster::columns_of(node)?, schema)?;
    if node.config.materialized == Materialized::Incremental {
        let config = Incremental::of(node)?;
        columns_exist(node, "unique_key", &config.unique_key, schema)?;
        let update = config.update_columns.as_deref().unwrap_or_default();
        columns_exist(node, "merge_update_columns", update, schema)?;
        columns_exist(
            node,
            "merge_exclude_columns",
            &config.exclude_columns,
            schema,
        )?;
        columns_exist(node, "partition_by", &config.partition_by, schema)?;
        if let Some(batch) = &config.microbatch {
            columns_exist(
                node,
                "event_time",
                std::slice::from_ref(&batch.event_time),
                schema,
            )?;
        }
    } else if node.config.materialized == Materialized::Table {
        columns_exist(node, "partition_by", &partition_by(node)?, schema)?;
    }
    Ok(())
}

/// Fails naming the first of `columns` (set by config `key`) that `schema` does not have.
fn columns_exist(
    node: &Node,
    key: &str,
    columns: &[String],
    schema: &Schema,
) -> Result<(), ConfigError> {
    match columns.iter().find(|c| schema.field_with_name(c).is_err()) {
        None => Ok(()),
        Some(column) => Err(ConfigError {
            model: node.name.clone(),
            message: format!(
                "`{key}` names the column '{column}', which the model does not return"
            ),
        }),
    }
}
