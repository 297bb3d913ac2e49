//! dbt-databricks's `tblproperties` on table and incremental models: the Delta table's
//! properties (`delta.targetFileSize`, `delta.dataSkippingNumIndexedCols`, ...), set in a
//! commit of their own after the model's write when the table's differ. Strata's writer and
//! OPTIMIZE read them from the table, so they shape the files of the next write and of the
//! `cluster_by` OPTIMIZE that follows.

use std::collections::HashMap;

use deltalake::kernel::transaction::CommitProperties;
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value as Json;

use super::incremental::ConfigError;
use crate::lake::write::CommitMetadata;
use crate::project::{Materialized, Node};

/// The properties `node` sets on its table (empty: none).
pub fn of(node: &Node) -> Result<HashMap<String, String>, ConfigError> {
    let fail = |message: String| ConfigError {
        model: node.name.clone(),
        message: format!("`tblproperties` {message}"),
    };
    let map = match node.config.extra.get("tblproperties") {
        None | Some(Json::Null) => return Ok(HashMap::new()),
        Some(Json::Object(map)) => map,
        Some(other) => return Err(fail(format!("must be a mapping, got {other}"))),
    };
    if !map.is_empty()
        && !matches!(
            node.config.materialized,
            Materialized::Table | Materialized::Incremental
        )
    {
        return Err(fail(format!(
            "applies to table and incremental models, not to a {} model",
            node.config.materialized.as_str()
        )));
    }
    map.iter()
        .map(|(key, value)| match value {
            Json::String(s) => Ok((key.clone(), s.clone())),
            Json::Number(_) | Json::Bool(_) => Ok((key.clone(), value.to_string())),
            other => Err(fail(format!(
                "'{key}' must be a text, number or boolean, got {other}"
            ))),
        })
        .collect()
}

/// Sets on `table` the `wanted` properties it does not have with those values, in one commit
/// carrying `commit`; the table as it is then.
pub async fn apply(
    table: DeltaTable,
    wanted: &HashMap<String, String>,
    commit: CommitMetadata,
) -> Result<DeltaTable, DeltaTableError> {
    let configuration = table.snapshot()?.metadata().configuration().clone();
    let changed: HashMap<String, String> = wanted
        .iter()
        .filter(|(k, v)| configuration.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if changed.is_empty() {
        return Ok(table);
    }
    table
        .set_tbl_properties()
        .with_properties(changed)
        .with_commit_properties(CommitProperties::default().with_metadata(commit))
        .await
}
