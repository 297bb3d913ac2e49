//! The physical node that writes a Delta table's data files. Each partition of its input
//! becomes Parquet files, written by delta-rs's `DeltaWriter` (with the statistics readers
//! prune by), and comes out as the `add` actions of those files, one row each, for the caller
//! to commit in one transaction. Nothing it writes is visible before that commit: a failed or
//! killed write leaves the table at its previous version, and its files are the orphans
//! `vacuum` removes.
//!
//! File sizes: a partition writes its own files (up to the target size each) once it has
//! produced a quarter of the target size in memory; until then its rows are held. In one
//! process the last partition to finish writes all the rows every other partition held into
//! its file, so a small model is one file. A node decoded on a cluster executor runs alone,
//! so there each partition writes the rows it held itself, and the client pools those files
//! (see [`super::pool`]).

use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, internal_datafusion_err};
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use deltalake::DeltaTableError;
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use deltalake::kernel::Add;
use deltalake::operations::write::WriterStatsConfig;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use url::Url;

/// Where and how the files are written: everything a process needs to write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTarget {
    /// The table's root.
    pub table: Url,
    /// Size at which a file is closed and the next one started.
    pub target_file_size: u64,
    /// Leading columns statistics are kept for (`-1`: all), as `delta.dataSkippingNumIndexedCols`.
    pub stats_num_columns: i64,
    /// The columns statistics are kept for, as `delta.dataSkippingStatsColumns` (overrides
    /// the number).
    pub stats_columns: Option<Vec<String>>,
}

impl WriteTarget {
    /// The statistics `stats` says to keep.
    pub fn with_stats(mut self, stats: &WriterStatsConfig) -> Self {
        self.stats_num_columns = match stats.num_indexed_cols {
            delta_kernel::table_properties::DataSkippingNumIndexedCols::AllColumns => -1,
            delta_kernel::table_properties::DataSkippingNumIndexedCols::NumColumns(n) => {
                i64::try_from(n).unwrap_or(i64::MAX)
            }
        };
        self.stats_columns = stats.stats_columns.clone();
        self
    }

    /// What a partition holds in memory before it writes files of its own.
    pub fn held_size(&self) -> u64 {
        (self.target_file_size / 4).max(1)
    }

    pub(super) fn writer_config(&self, schema: SchemaRef) -> WriterConfig {
        let num_indexed_cols = match u64::try_from(self.stats_num_columns) {
            Ok(n) => delta_kernel::table_properties::DataSkippingNumIndexedCols::NumColumns(n),
            Err(_) => delta_kernel::table_properties::DataSkippingNumIndexedCols::AllColumns,
        };
        WriterConfig::new(
            schema,
            Vec::new(),
            None,
            std::num::NonZeroU64::new(self.target_file_size),
            None,
            num_indexed_cols,
            self.stats_columns.clone(),
        )
    }

    /// The table's root in the store registered for its scheme and authority.
    fn store(&self, context: &TaskContext) -> Result<Arc<dyn ObjectStore>> {
        let url = ObjectStoreUrl::parse(format!(
            "{}://{}",
            self.table.scheme(),
            self.table.authority()
        ))?;
        let store = context.runtime_env().object_store(url)?;
        let root = Path::from_url_path(self.table.path())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(PrefixStore::new(store, root)))
    }
}

/// The node's output: per file written, its `add` action (JSON, as the log holds it) and rows.
pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("add", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
    ]))
}

/// Writes its input's rows as data files of [`WriteTarget`]; see the module's notes.
#[derive(Debug)]
pub struct DeltaWriteExec {
    input: Arc<dyn ExecutionPlan>,
    target: WriteTarget,
    /// The rows partitions held back, when its partitions run in this one process.
    held: Option<Arc<HeldRows>>,
    properties: Arc<PlanProperties>,
}

impl DeltaWriteExec {
    /// A node whose partitions all run in this process and share the rows they hold back.
    pub fn new(input: Arc<dyn ExecutionPlan>, target: WriteTarget) -> Self {
        let held = HeldRows::new(input.output_partitioning().partition_count());
        Self::with_held(input, target, Some(held))
    }

    /// A node whose partitions may run in separate processes (a cluster's tasks).
    pub fn alone(input: Arc<dyn ExecutionPlan>, target: WriteTarget) -> Self {
        Self::with_held(input, target, None)
    }

    fn with_held(
        input: Arc<dyn ExecutionPlan>,
        target: WriteTarget,
        held: Option<Arc<HeldRows>>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output_schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            target,
            held,
            properties,
        }
    }

    pub fn target(&self) -> &WriteTarget {
        &self.target
    }
}

impl DisplayAs for DeltaWriteExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "DeltaWriteExec: table={}, target_file_size={}",
            self.target.table, self.target.target_file_size
        )
    }
}

impl ExecutionPlan for DeltaWriteExec {
    fn name(&self) -> &str {
        "DeltaWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = children
            .try_into()
            .map_err(|_| internal_datafusion_err!("DeltaWriteExec takes one input"))?;
        let held = self
            .held
            .as_ref()
            .map(|_| HeldRows::new(input.output_partitioning().partition_count()));
        Ok(Arc::new(Self::with_held(input, self.target.clone(), held)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let store = self.target.store(&context)?;
        let config = self.target.writer_config(self.input.schema());
        let threshold = self.target.held_size() as usize;
        let held = self.held.clone();
        let written = async move {
            let mut writer = PartitionFiles::new(store, config, threshold);
            let adds = match writer.write_all(input, held.as_deref()).await {
                Ok(()) => writer.close().await,
                Err(e) => {
                    writer.abort().await;
                    Err(e)
                }
            }?;
            adds_batch(&adds)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            output_schema(),
            futures::stream::once(written),
        )))
    }
}

/// The rows partitions held back, and how many partitions have not finished yet.
#[derive(Debug)]
struct HeldRows {
    state: Mutex<(usize, Vec<RecordBatch>)>,
}

impl HeldRows {
    fn new(partitions: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((partitions, Vec::new())),
        })
    }

    /// Adds a finished partition's held rows; the last partition to finish gets them all.
    fn finish(&self, rows: Vec<RecordBatch>) -> Option<Vec<RecordBatch>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1.extend(rows);
        state.0 = state.0.saturating_sub(1);
        (state.0 == 0).then(|| std::mem::take(&mut state.1))
    }
}

/// One partition's files: its rows held until they are worth a file of their own.
struct PartitionFiles {
    store: Arc<dyn ObjectStore>,
    config: WriterConfig,
    /// The schema the writer takes batches in (the query's, without schema metadata).
    schema: SchemaRef,
    threshold: usize,
    held: Vec<RecordBatch>,
    held_bytes: usize,
    writer: Option<DeltaWriter>,
}

impl PartitionFiles {
    fn new(store: Arc<dyn ObjectStore>, config: WriterConfig, threshold: usize) -> Self {
        Self {
            store,
            schema: config.file_schema(),
            config,
            threshold,
            held: Vec::new(),
            held_bytes: 0,
            writer: None,
        }
    }

    async fn write_all(
        &mut self,
        mut input: SendableRecordBatchStream,
        shared: Option<&HeldRows>,
    ) -> Result<()> {
        while let Some(batch) = input.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = if batch.schema() == self.schema {
                batch
            } else {
                RecordBatch::try_new(Arc::clone(&self.schema), batch.columns().to_vec())?
            };
            if let Some(writer) = &mut self.writer {
                writer.write(&batch).await.map_err(external)?;
                continue;
            }
            self.held_bytes += slice_bytes(&batch)?;
            self.held.push(batch);
            if self.held_bytes >= self.threshold {
                let held = std::mem::take(&mut self.held);
                self.write_batches(held).await?;
            }
        }
        let held = std::mem::take(&mut self.held);
        let tail = match shared {
            Some(shared) => shared.finish(held).unwrap_or_default(),
            None => held,
        };
        self.write_batches(tail).await
    }

    async fn write_batches(&mut self, batches: Vec<RecordBatch>) -> Result<()> {
        if batches.is_empty() {
            return Ok(());
        }
        let writer = self
            .writer
            .get_or_insert_with(|| DeltaWriter::new(Arc::clone(&self.store), self.config.clone()));
        for batch in &batches {
            writer.write(batch).await.map_err(external)?;
        }
        Ok(())
    }

    async fn close(self) -> Result<Vec<Add>> {
        match self.writer {
            Some(writer) => writer.close().await.map_err(external),
            None => Ok(Vec::new()),
        }
    }

    /// Stops the uploads under way; files already written are left for `vacuum`.
    async fn abort(self) {
        if let Some(writer) = self.writer
            && let Err(e) = writer.abort().await
        {
            tracing::warn!("aborting a failed write's uploads: {e}");
        }
    }
}

/// Bytes of the batch's own slice of its buffers (batches out of a filter or a repartition
/// share larger buffers).
fn slice_bytes(batch: &RecordBatch) -> Result<usize> {
    batch.columns().iter().try_fold(0, |sum, column| {
        Ok(sum + column.to_data().get_slice_memory_size()?)
    })
}

fn adds_batch(adds: &[Add]) -> Result<RecordBatch> {
    let json = adds
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let rows: Vec<u64> = adds.iter().map(rows_of).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(json)),
        Arc::new(UInt64Array::from(rows)),
    ];
    Ok(RecordBatch::try_new(output_schema(), columns)?)
}

/// The rows of a file, from the statistics its `add` action carries.
pub(super) fn rows_of(add: &Add) -> u64 {
    add.stats
        .as_deref()
        .and_then(|stats| serde_json::from_str::<serde_json::Value>(stats).ok())
        .and_then(|stats| stats.get("numRecords")?.as_u64())
        .unwrap_or_default()
}

fn external(e: DeltaTableError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
