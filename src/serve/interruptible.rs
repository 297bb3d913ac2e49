//! Plans that stop when told. Dropping a DataFusion stream stops a query only at its next
//! yield, and some operators run long stretches without one (a nested loop join joins a whole
//! probe batch with every buffered row in one poll; under tokio's coop budget a task may run
//! 128 such polls before yielding). So every node of a running plan is wrapped: its stream
//! checks the query's stop token on each poll and hands the thread back to other queries when
//! it has held it for a while, and nested loop join filters check the token per build row.
//! The wrappers are transparent: EXPLAIN ANALYZE, metrics and downcasts see the plan as it was.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, FieldRef, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// How long one operator's stream keeps its thread before letting other tasks run.
const SLICE: Duration = Duration::from_millis(20);

/// `plan` with every node stopping once `stop` is cancelled.
pub fn wrap(
    plan: Arc<dyn ExecutionPlan>,
    stop: &CancellationToken,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let node = checked_join_filter(node, stop)?;
        Ok(Transformed::yes(Arc::new(Interruptible {
            inner: node,
            stop: stop.clone(),
        }) as Arc<dyn ExecutionPlan>))
    })
    .map(|t| t.data)
}

/// A nested loop join whose filter checks `stop` (it evaluates the filter once per build row
/// and probe batch, without polling its inputs in between).
fn checked_join_filter(
    node: Arc<dyn ExecutionPlan>,
    stop: &CancellationToken,
) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(join) = node.downcast_ref::<NestedLoopJoinExec>() else {
        return Ok(node);
    };
    let Some(filter) = join.filter() else {
        return Ok(node);
    };
    let checked = JoinFilter::new(
        Arc::new(CheckedExpr {
            inner: Arc::clone(filter.expression()),
            stop: stop.clone(),
        }),
        filter.column_indices().to_vec(),
        Arc::clone(filter.schema()),
    );
    let join = datafusion::physical_plan::joins::NestedLoopJoinExecBuilder::from(join)
        .with_filter(Some(checked))
        .build()?;
    Ok(Arc::new(join))
}

fn stopped() -> DataFusionError {
    DataFusionError::Execution("the query was stopped".to_string())
}

/// A plan node whose streams stop with the query (see the module doc).
#[derive(Debug)]
struct Interruptible {
    inner: Arc<dyn ExecutionPlan>,
    stop: CancellationToken,
}

impl DisplayAs for Interruptible {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for Interruptible {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.inner.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inner.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Interruptible {
            inner: Arc::clone(&self.inner).replace_children(children, options)?,
            stop: self.stop.clone(),
        }))
    }

    /// Still required by the trait: `replace_children`, recomputing properties.
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let recompute = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        self.replace_children(children, recompute)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if self.stop.is_cancelled() {
            return Err(stopped());
        }
        let inner = self.inner.execute(partition, context)?;
        let schema = inner.schema();
        let stream = Checked {
            inner,
            stop: self.stop.clone(),
            running_since: None,
            done: false,
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }
}

/// An operator's stream that ends with an error once the query is stopped.
struct Checked {
    inner: SendableRecordBatchStream,
    stop: CancellationToken,
    /// When this stream last started working without handing its thread back.
    running_since: Option<Instant>,
    done: bool,
}

impl Stream for Checked {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.stop.is_cancelled() {
            self.done = true;
            return Poll::Ready(Some(Err(stopped())));
        }
        let since = *self.running_since.get_or_insert_with(Instant::now);
        if since.elapsed() > SLICE {
            // Let other queries' tasks run; this one is rescheduled at once.
            self.running_since = None;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = self.inner.poll_next_unpin(cx);
        if polled.is_pending() {
            self.running_since = None;
        }
        polled
    }
}

/// A join filter that fails once the query is stopped.
#[derive(Debug)]
struct CheckedExpr {
    inner: Arc<dyn PhysicalExpr>,
    stop: CancellationToken,
}

impl fmt::Display for CheckedExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PartialEq for CheckedExpr {
    fn eq(&self, other: &Self) -> bool {
        self.inner.as_ref() == other.inner.as_ref()
    }
}

impl Eq for CheckedExpr {}

impl Hash for CheckedExpr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl PhysicalExpr for CheckedExpr {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.inner.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }

    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if self.stop.is_cancelled() {
            return Err(stopped());
        }
        self.inner.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.inner.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(CheckedExpr {
            inner: Arc::clone(&self.inner).with_new_children(children)?,
            stop: self.stop.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}
