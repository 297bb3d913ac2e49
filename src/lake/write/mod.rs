//! A query's rows written into a Delta table in one commit. The data files are written in
//! parallel, one writer per partition of the query, by [`exec::DeltaWriteExec`] wherever the
//! session runs its queries (in this process, or on the cluster's executors); the `add`
//! actions they return are then committed here, once, with the table's metadata and (for a
//! replace) the removal of its previous files. Until that commit nothing written is visible.
//!
//! A write that changes an existing table's schema, writes to a partitioned or column-mapped
//! table, or replaces only the rows a predicate selects goes through delta-rs's own write,
//! which evolves the schema, lays out partitions and checks the predicate; it writes through
//! one task.

pub(crate) mod exec;
pub(crate) mod node;
mod pool;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use datafusion::common::{Column, DataFusionError};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::schema::cast::normalize_for_delta;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{Action, Add, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::operations::write::{SchemaMode, WriteMetrics, WriterStatsConfig};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt;
use object_store::path::Path;
use serde_json::Value;

use self::exec::WriteTarget;
use self::node::DeltaWriteNode;
use super::{Lake, delta};

pub use self::node::LakePlanner;

/// Entries a commit's info carries besides its operation and metrics (which run made it).
pub type CommitMetadata = HashMap<String, Value>;

/// How the rows meet the table's current ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The rows (and their schema) replace the table's.
    Replace,
    /// The rows are added; new columns join the table's schema.
    Append,
}

impl WriteMode {
    fn save_mode(self) -> SaveMode {
        match self {
            Self::Replace => SaveMode::Overwrite,
            Self::Append => SaveMode::Append,
        }
    }

    fn schema_mode(self) -> SchemaMode {
        match self {
            Self::Replace => SchemaMode::Overwrite,
            Self::Append => SchemaMode::Merge,
        }
    }
}

/// A write into the Delta table at `path` of `lake`, named `name` in its metadata.
#[derive(Debug, Clone)]
pub struct DeltaWrite<'a> {
    pub lake: &'a Lake,
    pub path: &'a Path,
    pub name: &'a str,
    pub mode: WriteMode,
    /// Overrides the table's `delta.targetFileSize` (and delta-rs's default, 100 MiB).
    pub target_file_size: Option<u64>,
    /// The table's partition columns (a replace sets them; other writes must match them).
    pub partition_by: &'a [String],
    /// With [`WriteMode::Replace`]: only the rows this predicate selects are replaced (Delta's
    /// `replaceWhere`); every written row must satisfy it.
    pub replace_where: Option<Expr>,
}

impl DeltaWrite<'_> {
    /// Writes `plan`'s rows, planned and run by `state`, in one commit carrying `metadata`.
    pub async fn run(
        &self,
        state: &SessionState,
        plan: LogicalPlan,
        metadata: CommitMetadata,
    ) -> Result<DeltaTable, DeltaTableError> {
        let started = Instant::now();
        let plan = normalized(plan)?;
        let schema: StructType = plan.schema().as_arrow().try_into_kernel()?;
        let existing = delta::open(self.lake, self.path).await?;
        if !self.partition_by.is_empty() || self.replace_where.is_some() {
            let table = match existing {
                Some(table) => table,
                None => self.uncreated()?,
            };
            return self.by_delta_rs(table, state, plan, metadata).await;
        }
        let (table, new, mut actions) = match existing {
            None => {
                let (table, actions) = self.created(&schema).await?;
                (table, true, actions)
            }
            Some(table) if self.in_parallel(&table, &schema)? => {
                let removes = match self.mode {
                    WriteMode::Replace => removes(&table).await?,
                    WriteMode::Append => Vec::new(),
                };
                (table, false, removes)
            }
            Some(table) => return self.by_delta_rs(table, state, plan, metadata).await,
        };
        let num_removed_files = actions.len();
        let target = self.target(&table)?;
        let written = files(state, DeltaWriteNode::plan(plan, target.clone())?).await?;
        let files_written = started.elapsed();
        let adds = pool::pooled(table.object_store(), &target, written.adds).await?;
        let metrics = WriteMetrics {
            num_added_files: adds.len(),
            num_removed_files,
            num_added_rows: written.rows as usize,
            execution_time_ms: started.elapsed().as_millis() as u64,
            ..Default::default()
        };
        actions.extend(adds.into_iter().map(Action::Add));
        let committing = Instant::now();
        let table = self.commit(table, new, actions, metrics, metadata).await?;
        // bench/cluster.sh reads these to say where a build's time went.
        tracing::debug!(
            table = self.name,
            write_ms = files_written.as_millis() as u64,
            pool_ms = (committing - started - files_written).as_millis() as u64,
            commit_ms = committing.elapsed().as_millis() as u64,
            "delta write"
        );
        Ok(table)
    }

    /// Whether this write's files can be written in parallel and committed here: the table
    /// keeps its schema (as delta-rs compares them) and is plain.
    fn in_parallel(
        &self,
        table: &DeltaTable,
        schema: &StructType,
    ) -> Result<bool, DeltaTableError> {
        let snapshot = table.snapshot()?;
        let metadata = snapshot.metadata();
        let mapped = metadata
            .configuration()
            .get("delta.columnMapping.mode")
            .is_some_and(|mode| mode != "none");
        Ok(snapshot.schema().as_ref() == schema
            && metadata.partition_columns().is_empty()
            && !mapped)
    }

    /// A table not committed yet, and the actions that create it (protocol and metadata),
    /// as delta-rs's `create` makes them: it builds them in memory, and they are committed
    /// with the first files.
    async fn created(
        &self,
        schema: &StructType,
    ) -> Result<(DeltaTable, Vec<Action>), DeltaTableError> {
        let memory = CreateBuilder::new()
            .with_location("memory:///")
            .with_columns(schema.fields().cloned())
            .with_table_name(self.name)
            .await?;
        let created = memory.snapshot()?;
        let actions = vec![
            Action::Protocol(created.protocol().clone()),
            Action::Metadata(created.metadata().clone()),
        ];
        let mut table = self.uncreated()?;
        table.state = memory.state.clone();
        Ok((table, actions))
    }

    /// The table at this write's path, not created yet (its folder made on a local lake).
    fn uncreated(&self) -> Result<DeltaTable, DeltaTableError> {
        let url = self.lake.url_of(self.path);
        if let Ok(dir) = url.to_file_path() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                DeltaTableError::Generic(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        DeltaTableBuilder::from_url(url)?.build()
    }

    /// Where and how the files are written: the table's own file size and statistics
    /// settings (a new table's are delta-rs's defaults).
    fn target(&self, table: &DeltaTable) -> Result<WriteTarget, DeltaTableError> {
        let snapshot = table.snapshot()?;
        let size = self
            .target_file_size
            .unwrap_or_else(|| snapshot.table_config().target_file_size().get());
        let stats = WriterStatsConfig::from_config(snapshot.snapshot().table_configuration());
        Ok(WriteTarget {
            table: table.table_url().clone(),
            target_file_size: size,
            stats_num_columns: 0,
            stats_columns: None,
        }
        .with_stats(&stats))
    }

    /// Commits `actions` as one write over the state `table` was loaded at (a `new` table's
    /// is its creation's, which the commit does not check against).
    async fn commit(
        &self,
        table: DeltaTable,
        new: bool,
        actions: Vec<Action>,
        metrics: WriteMetrics,
        mut metadata: CommitMetadata,
    ) -> Result<DeltaTable, DeltaTableError> {
        metadata.insert("operationMetrics".into(), serde_json::to_value(&metrics)?);
        let log_store = table.log_store();
        let base = match (&table.state, new) {
            (Some(state), false) => Some(state as &dyn TableReference),
            _ => None,
        };
        let operation = DeltaOperation::Write {
            mode: self.mode.save_mode(),
            partition_by: None,
            predicate: None,
        };
        let finalized = CommitBuilder::from(CommitProperties::default())
            .with_app_metadata(metadata)
            .with_actions(actions)
            .build(base, Arc::clone(&log_store), operation)
            .await?;
        let mut table = DeltaTable::new(log_store);
        table.state = Some(finalized.snapshot);
        Ok(table)
    }

    /// The write as delta-rs does it, for what [`Self::in_parallel`] leaves out.
    async fn by_delta_rs(
        &self,
        table: DeltaTable,
        state: &SessionState,
        plan: LogicalPlan,
        metadata: CommitMetadata,
    ) -> Result<DeltaTable, DeltaTableError> {
        let mut write = table
            .write(Vec::new())
            .with_input_plan(plan)
            .with_session_state(Arc::new(state.clone()))
            .with_commit_properties(CommitProperties::default().with_metadata(metadata))
            .with_save_mode(self.mode.save_mode())
            .with_schema_mode(match self.replace_where {
                // Rows outside the predicate stay: their columns can only be added to.
                Some(_) => SchemaMode::Merge,
                None => self.mode.schema_mode(),
            })
            .with_table_name(self.name);
        if let Some(size) = self.target_file_size.and_then(std::num::NonZeroU64::new) {
            write = write.with_target_file_size(Some(size));
        }
        if let Some(predicate) = &self.replace_where {
            write = write.with_replace_where(predicate.clone());
        }
        // A replace lays the table out anew (also unpartitioned); other writes keep its layout.
        if (self.mode == WriteMode::Replace && self.replace_where.is_none())
            || !self.partition_by.is_empty()
        {
            write = write.with_partition_columns(self.partition_by.to_vec());
        }
        write.await
    }
}

/// `plan` with its columns cast to the types Delta stores (as delta-rs's write casts them:
/// `Date64` to `Date32`, large strings to strings, …).
fn normalized(plan: LogicalPlan) -> Result<LogicalPlan, DeltaTableError> {
    let arrow = Arc::clone(plan.schema().inner());
    let normal = normalize_for_delta(&arrow);
    if Arc::ptr_eq(&normal, &arrow) {
        return Ok(plan);
    }
    let columns: Vec<Expr> = normal
        .fields()
        .iter()
        .zip(plan.schema().columns())
        .map(|(field, column): (_, Column)| {
            let expr = Expr::Column(column);
            match plan.schema().field_with_unqualified_name(field.name()) {
                Ok(f) if f.data_type() == field.data_type() => expr,
                _ => cast(expr, field.data_type().clone()).alias(field.name()),
            }
        })
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(columns)?.build()?)
}

/// Removal of every file of the table's loaded version.
async fn removes(table: &DeltaTable) -> Result<Vec<Action>, DeltaTableError> {
    let log_store = table.log_store();
    table
        .snapshot()?
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .map_ok(|file| Action::Remove(file.remove_action(true)))
        .try_collect()
        .await
}

/// What the write node wrote.
struct Written {
    adds: Vec<Add>,
    rows: u64,
}

/// Runs the write node `plan` and reads the `add` actions it returns.
async fn files(state: &SessionState, plan: LogicalPlan) -> Result<Written, DeltaTableError> {
    let physical = state.create_physical_plan(&plan).await?;
    let batches: Vec<RecordBatch> =
        datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
    let mut written = Written {
        adds: Vec::new(),
        rows: 0,
    };
    for batch in &batches {
        let (adds, rows) = match (batch.column_by_name("add"), batch.column_by_name("rows")) {
            (Some(adds), Some(rows)) => {
                (adds.as_string::<i32>(), rows.as_primitive::<UInt64Type>())
            }
            _ => {
                return Err(DataFusionError::Internal(
                    "the write node returned other columns than add and rows".into(),
                )
                .into());
            }
        };
        for (add, rows) in adds.iter().zip(rows.values()) {
            let add = add.ok_or_else(|| DeltaTableError::Generic("a null add action".into()))?;
            written.adds.push(serde_json::from_str(add)?);
            written.rows += rows;
        }
    }
    Ok(written)
}
