//! Work on each partition of a running plan, each on a task of its own as DataFusion's
//! `collect_partitioned` runs them, for callers that do more with a batch than keep it.

use std::future::Future;

use datafusion::common::runtime::SpawnedTask;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::SendableRecordBatchStream;

/// What `work` gives for each stream, in partition order; `None` as soon as one gives `None`.
/// Tasks still running when this returns are dropped, which aborts them.
pub async fn each<T, F>(
    streams: Vec<SendableRecordBatchStream>,
    work: impl Fn(SendableRecordBatchStream) -> F,
) -> Result<Option<Vec<T>>>
where
    F: Future<Output = Result<Option<T>>> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| SpawnedTask::spawn(work(stream)))
        .collect();
    let mut parts = Vec::with_capacity(tasks.len());
    for task in tasks {
        let part = task
            .join_unwind()
            .await
            .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
        match part {
            Some(part) => parts.push(part),
            None => return Ok(None),
        }
    }
    Ok(Some(parts))
}
