//! Where queries run: a runtime of their own, apart from the one that accepts connections and
//! speaks the protocol. A query that keeps its threads busy then never delays a login, a
//! cancel request, a statement timeout or another session's answer; its rows come back
//! through a small buffer, and stopping it reaches the plan's every operator (see
//! [`super::interruptible`]).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::{FutureExt, Stream, StreamExt};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;

use super::interruptible;

/// Batches a running query may have ready before the client reads them.
const BUFFERED_BATCHES: usize = 2;

/// The runtime queries run on.
pub struct Executor {
    runtime: Option<Runtime>,
}

impl Executor {
    /// Twice as many threads as cores: one query's partitions take about as many threads as
    /// there are cores, and the rest keep answering other sessions meanwhile (the operating
    /// system shares the cores between them).
    pub fn new() -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores * 2)
            .thread_name("strata-query")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Plans `frame` physically and runs it on the query runtime. The query stops when
    /// `stop` is cancelled or the returned stream is dropped, whichever comes first.
    pub async fn start(
        &self,
        frame: DataFrame,
        stop: CancellationToken,
    ) -> Result<(Arc<dyn ExecutionPlan>, SendableRecordBatchStream)> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| DataFusionError::Execution("the server is stopping".to_string()))?;
        let (planned_tx, planned_rx) = oneshot::channel();
        let (batches_tx, batches_rx) = mpsc::channel(BUFFERED_BATCHES);
        let task = runtime.spawn(drive(frame, stop.clone(), planned_tx, batches_tx));
        // From here on, dropping the query (even before it is planned) stops it.
        let remote = Remote {
            batches: batches_rx,
            _stop: stop.drop_guard(),
            task: task.abort_handle(),
        };
        let (plan, schema) = planned_rx
            .await
            .map_err(|_| DataFusionError::Execution("the query's task ended early".into()))??;
        Ok((
            plan,
            Box::pin(RecordBatchStreamAdapter::new(schema, remote)),
        ))
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Queries still on their threads end at their next check; nobody waits for them.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type Planned = Result<(Arc<dyn ExecutionPlan>, SchemaRef)>;

/// The query's task: plans, then forwards batches until the end, an error, or nobody
/// listening. A panic becomes an error, never a result cut short that looks complete.
async fn drive(
    frame: DataFrame,
    stop: CancellationToken,
    planned: oneshot::Sender<Planned>,
    batches: mpsc::Sender<Result<RecordBatch>>,
) {
    let started = AssertUnwindSafe(plan_and_execute(frame, &stop))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(panicked(panic)));
    let execution = tracing::debug_span!("execution");
    let mut stream = match started {
        Ok((plan, stream)) => {
            let _ = planned.send(Ok((plan, stream.schema())));
            stream
        }
        Err(e) => {
            let _ = planned.send(Err(e));
            return;
        }
    };
    loop {
        let next = AssertUnwindSafe(stream.next())
            .catch_unwind()
            .instrument(execution.clone())
            .await
            .unwrap_or_else(|panic| Some(Err(panicked(panic))));
        let Some(item) = next else { break };
        let last = item.is_err();
        if batches.send(item).await.is_err() || last {
            break;
        }
    }
}

async fn plan_and_execute(
    frame: DataFrame,
    stop: &CancellationToken,
) -> Result<(Arc<dyn ExecutionPlan>, SendableRecordBatchStream)> {
    let task_ctx = Arc::new(frame.task_ctx());
    let physical = frame
        .create_physical_plan()
        .instrument(tracing::debug_span!("physical plan"))
        .await?;
    let plan = interruptible::wrap(physical, stop)?;
    let stream = execute_stream(Arc::clone(&plan), task_ctx)?;
    Ok((plan, stream))
}

fn panicked(panic: Box<dyn Any + Send>) -> DataFusionError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_string());
    DataFusionError::Execution(format!("the query panicked: {message}"))
}

/// The client's end of a running query; dropping it stops the query.
struct Remote {
    batches: mpsc::Receiver<Result<RecordBatch>>,
    _stop: DropGuard,
    task: AbortHandle,
}

impl Stream for Remote {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.batches.poll_recv(cx)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.task.abort();
    }
}
