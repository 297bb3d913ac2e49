//! How a model's SELECT becomes a relation in the lake: one function per materialization, each
//! ending in a single commit, so a model that fails leaves its relation at the previous version.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{CsvReadOptions, DataFrame, SessionContext};
use deltalake::kernel::CommitInfo;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::merge::MergeBuilder;
use deltalake::{DeltaTable, DeltaTableError};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

use crate::lake::write::{CommitMetadata, DeltaWrite, WriteMode};
use crate::lake::{Lake, layout};
use crate::plan::reuse::{self, Held};
use crate::warehouse::views;

/// A relation in the lake: `schema.name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    pub schema: String,
    pub name: String,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// What a materialization committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Committed {
    /// Rows written (inserted plus updated for a merge); `None` for views.
    pub rows: Option<u64>,
    /// The Delta version the commit produced; `None` for views.
    pub version: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error("{relation}: {source}")]
    Query {
        relation: String,
        source: DataFusionError,
    },
    #[error("{relation}: writing the Delta table failed: {source}")]
    Delta {
        relation: String,
        source: DeltaTableError,
    },
    #[error("{relation}: {source}")]
    Store {
        relation: String,
        source: object_store::Error,
    },
}

impl MaterializeError {
    pub(super) fn query(relation: &Relation) -> impl FnOnce(DataFusionError) -> Self + '_ {
        move |source| Self::Query {
            relation: relation.to_string(),
            source,
        }
    }

    pub(super) fn delta(relation: &Relation) -> impl FnOnce(DeltaTableError) -> Self + '_ {
        move |source| Self::Delta {
            relation: relation.to_string(),
            source,
        }
    }

    fn store(relation: &Relation) -> impl FnOnce(object_store::Error) -> Self + '_ {
        move |source| Self::Store {
            relation: relation.to_string(),
            source,
        }
    }
}

/// The query's plan, analyzed and optimized: only then are expression types final (before
/// coercion a `CASE` takes its first branch's type), and Delta writes the plan's schema. Raw
/// reads it repeats are computed first ([`reuse`]); keep the [`Held`] while the plan runs.
pub(super) async fn planned(
    ctx: &SessionContext,
    relation: &Relation,
    sql: &str,
) -> Result<(LogicalPlan, Held), MaterializeError> {
    let state = ctx.state();
    let plan = state
        .create_logical_plan(sql)
        .await
        .map_err(MaterializeError::query(relation))?;
    let (plan, held) = reuse::computed_once(ctx, plan)
        .await
        .map_err(MaterializeError::query(relation))?;
    let plan = state
        .optimize(&plan)
        .map_err(MaterializeError::query(relation))?;
    Ok((plan, held))
}

/// Where a write's rows go in the table.
#[derive(Debug, Clone, Default)]
pub struct Placement<'a> {
    /// The table's partition columns (`partition_by`).
    pub partition_by: &'a [String],
    /// Replace only the rows this predicate selects (Delta's `replaceWhere`).
    pub replace_where: Option<Expr>,
}

impl<'a> Placement<'a> {
    pub fn partitioned(partition_by: &'a [String]) -> Self {
        Placement {
            partition_by,
            replace_where: None,
        }
    }
}

/// Replaces the table with the query's rows (and schema), partitioned by `partition_by`, in
/// one commit carrying `commit` (as every commit here: it says which run made it).
pub async fn table(
    ctx: &SessionContext,
    lake: &Lake,
    relation: &Relation,
    sql: &str,
    partition_by: &[String],
    commit: CommitMetadata,
) -> Result<Committed, MaterializeError> {
    let (plan, _held) = planned(ctx, relation, sql).await?;
    let placement = Placement::partitioned(partition_by);
    let table = replace(ctx, lake, relation, placement, plan, commit).await?;
    // A model that used to be a view is a table now.
    views::remove(lake, &relation.schema, &relation.name)
        .await
        .map_err(MaterializeError::store(relation))?;
    committed(&table)
        .await
        .map_err(MaterializeError::delta(relation))
}

/// Replaces the relation's table with `plan`'s rows (and schema), laid out by `placement`.
async fn replace(
    ctx: &SessionContext,
    lake: &Lake,
    relation: &Relation,
    placement: Placement<'_>,
    plan: LogicalPlan,
    commit: CommitMetadata,
) -> Result<DeltaTable, MaterializeError> {
    write(
        ctx,
        lake,
        relation,
        WriteMode::Replace,
        placement,
        plan,
        commit,
    )
    .await
}

/// Writes `plan`'s rows into the relation's table in one commit, its files in parallel.
pub(super) async fn write(
    ctx: &SessionContext,
    lake: &Lake,
    relation: &Relation,
    mode: WriteMode,
    placement: Placement<'_>,
    plan: LogicalPlan,
    commit: CommitMetadata,
) -> Result<DeltaTable, MaterializeError> {
    let path = layout::model_table(&relation.schema, &relation.name);
    DeltaWrite {
        lake,
        path: &path,
        name: &relation.name,
        mode,
        target_file_size: None,
        partition_by: placement.partition_by,
        replace_where: placement.replace_where,
    }
    .run(&ctx.state(), plan, commit)
    .await
    .map_err(MaterializeError::delta(relation))
}

/// Checks that the query plans, then saves it as the view's definition.
pub async fn view(
    ctx: &SessionContext,
    lake: &Lake,
    relation: &Relation,
    sql: &str,
) -> Result<Committed, MaterializeError> {
    ctx.state()
        .create_logical_plan(sql)
        .await
        .map_err(MaterializeError::query(relation))?;
    views::save(lake, &relation.schema, &relation.name, sql)
        .await
        .map_err(MaterializeError::store(relation))?;
    // A model that used to be a table is a view now (dbt drops the old relation too).
    let dir = layout::model_table(&relation.schema, &relation.name);
    let old: Vec<_> = lake
        .store()
        .list(Some(&dir))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(MaterializeError::store(relation))?;
    for path in old {
        lake.store()
            .delete(&path)
            .await
            .map_err(MaterializeError::store(relation))?;
    }
    Ok(Committed::default())
}

/// Loads a seed CSV (types inferred) into a Delta table, replacing it.
pub async fn seed(
    ctx: &SessionContext,
    lake: &Lake,
    relation: &Relation,
    csv: &FsPath,
    column_types: &BTreeMap<String, String>,
    commit: CommitMetadata,
) -> Result<Committed, MaterializeError> {
    let frame = seed_frame(ctx, csv, column_types)
        .await
        .map_err(MaterializeError::query(relation))?;
    let plan = frame.logical_plan().clone();
    let table = replace(ctx, lake, relation, Placement::default(), plan, commit).await?;
    committed(&table)
        .await
        .map_err(MaterializeError::delta(relation))
}

/// A seed's rows: the CSV with its types inferred, but for the columns of dbt's
/// `column_types`, which are read as text (keeping `007` as written) and cast to their type.
pub async fn seed_frame(
    ctx: &SessionContext,
    csv: &FsPath,
    column_types: &BTreeMap<String, String>,
) -> Result<DataFrame, DataFusionError> {
    let path = csv.to_string_lossy();
    let inferred = ctx
        .read_csv(path.as_ref(), CsvReadOptions::new().has_header(true))
        .await?;
    if column_types.is_empty() {
        return Ok(inferred);
    }
    let fields = inferred.schema().as_arrow().fields().clone();
    for name in column_types.keys() {
        if !fields.iter().any(|f| f.name() == name) {
            return Err(DataFusionError::Plan(format!(
                "column_types names the column '{name}', which {} does not have",
                csv.display()
            )));
        }
    }
    let as_text: Vec<Field> = fields
        .iter()
        .map(|f| match column_types.contains_key(f.name()) {
            true => Field::new(f.name(), DataType::Utf8, true),
            false => f.as_ref().clone(),
        })
        .collect();
    let schema = Schema::new(as_text);
    let frame = ctx
        .read_csv(
            path.as_ref(),
            CsvReadOptions::new().has_header(true).schema(&schema),
        )
        .await?;
    let columns: Vec<String> = fields
        .iter()
        .map(|f| {
            let quoted = format!("\"{}\"", f.name().replace('"', "\"\""));
            match column_types.get(f.name()) {
                Some(t) => format!("cast({quoted} as {t}) as {quoted}"),
                None => quoted,
            }
        })
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    frame.select_exprs(&columns)
}

/// Rows and version of the table's latest commit, from the commit's own metrics.
pub(super) async fn committed(table: &DeltaTable) -> Result<Committed, DeltaTableError> {
    let mut history = table.history(Some(1));
    let rows = match history.next().await {
        Some(info) => rows_written(&info?),
        None => None,
    };
    Ok(Committed {
        rows,
        version: table.version(),
    })
}

/// Rows a commit wrote, from its metrics: a merge's inserted plus updated rows, else the
/// added rows.
pub fn rows_written(info: &CommitInfo) -> Option<u64> {
    let metrics = info.info.get("operationMetrics")?;
    let metric = |name: &str| {
        let value = metrics.get(name)?;
        value.as_u64().or_else(|| value.as_str()?.parse().ok())
    };
    match (
        metric("num_target_rows_inserted"),
        metric("num_target_rows_updated"),
    ) {
        (Some(inserted), Some(updated)) => Some(inserted + updated),
        _ => metric("num_added_rows"),
    }
}

/// A double-quoted SQL identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A MERGE of `source` into `existing` on `predicate` (over `source.` and `target.`), with
/// schema evolution, in the session's state, committed with the run's metadata: the opening
/// every merge of a run shares; the caller adds its matched and unmatched clauses.
pub(super) fn merge(
    ctx: &SessionContext,
    existing: DeltaTable,
    source: DataFrame,
    predicate: &str,
    commit: CommitMetadata,
) -> MergeBuilder {
    merge_as(
        ctx,
        existing,
        source,
        predicate,
        ("target", "source"),
        commit,
    )
}

/// [`merge`] with the target and source named `aliases` in `predicate` and the clauses.
pub(super) fn merge_as(
    ctx: &SessionContext,
    existing: DeltaTable,
    source: DataFrame,
    predicate: &str,
    (target, source_alias): (&str, &str),
    commit: CommitMetadata,
) -> MergeBuilder {
    existing
        .merge(source, predicate)
        .with_source_alias(source_alias)
        .with_target_alias(target)
        .with_merge_schema(true)
        .with_session_state(Arc::new(ctx.state()))
        .with_commit_properties(CommitProperties::default().with_metadata(commit))
}
