//! `cluster_by` (dbt-databricks, -bigquery, -snowflake; dbt-databricks's `zorder` is the same)
//! on table and incremental models: after the model's write the table's files are Z-ordered
//! by those columns with delta-rs's OPTIMIZE, so a reader filtering on them skips files by
//! their statistics. The OPTIMIZE is a commit of its own over the written version, its data
//! unchanged: if it fails, the written version stays the table's latest and readable.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::optimize::OptimizeType;
use deltalake::table::config::TablePropertiesExt;
use deltalake::{DeltaTable, DeltaTableError};

use super::incremental::ConfigError;
use super::incremental::config::columns;
use crate::lake::write::CommitMetadata;
use crate::project::{Materialized, Node};

/// The config keys that name the columns, dbt's first.
const KEYS: [&str; 2] = ["cluster_by", "zorder"];

/// The columns `node` clusters its table by (empty: none), checked against its materialization.
pub fn columns_of(node: &Node) -> Result<Vec<String>, ConfigError> {
    let fail = |message: String| ConfigError {
        model: node.name.clone(),
        message,
    };
    let mut set = KEYS
        .iter()
        .map(|key| {
            columns(node.config.extra.get(*key))
                .map(|c| (*key, c))
                .map_err(|m| fail(format!("`{key}` {m}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    set.retain(|(_, c)| !c.is_empty());
    let (key, found) = match set.as_slice() {
        [] => return Ok(Vec::new()),
        [(key, found)] => (*key, found.clone()),
        _ => return Err(fail("set `cluster_by` or `zorder`, not both".into())),
    };
    if !matches!(
        node.config.materialized,
        Materialized::Table | Materialized::Incremental
    ) {
        return Err(fail(format!(
            "`{key}` applies to table and incremental models, not to a {} model",
            node.config.materialized.as_str()
        )));
    }
    Ok(found)
}

/// Z-orders `table`'s files by `clustered` in one OPTIMIZE commit carrying `commit`, its files
/// of the table's `delta.targetFileSize`; its info names the columns (`zOrderBy`) as Spark's
/// does.
pub async fn optimize(
    ctx: &SessionContext,
    table: DeltaTable,
    clustered: &[String],
    mut commit: CommitMetadata,
) -> Result<DeltaTable, DeltaTableError> {
    let listed = serde_json::to_string(clustered)?;
    commit.insert(
        "operationParameters".into(),
        serde_json::json!({ "zOrderBy": listed }),
    );
    let size = table.snapshot()?.table_config().target_file_size();
    let (table, _) = table
        .optimize()
        .with_type(OptimizeType::ZOrder(clustered.to_vec()))
        .with_target_size(size)
        .with_session_state(Arc::new(ctx.state()))
        .with_commit_properties(CommitProperties::default().with_metadata(commit))
        .await?;
    Ok(table)
}
