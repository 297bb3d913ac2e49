//! What a cluster is doing: its executors and their task slots, and its jobs with the tasks
//! each executor ran for them. The scheduler serves it as JSON (`GET /status` on its status
//! port); `strata cluster status` and the build log read it. Ballista's own REST API does not
//! say which executor ran a task, so the scheduler answers from its job state directly.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use ballista_core::serde::protobuf::{executor_status, job_status, task_status};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::state::execution_stage::{ExecutionStage, TaskInfo};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use serde::{Deserialize, Serialize};
use url::Url;

use super::ClusterError;
use crate::lake::write::exec::DeltaWriteExec;

/// The cluster as its scheduler sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub executors: Vec<ExecutorStatus>,
    /// Newest first.
    pub jobs: Vec<JobStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorStatus {
    pub id: String,
    pub host: String,
    /// Arrow Flight port (shuffle and results are read from it).
    pub port: u16,
    pub grpc_port: u16,
    /// Tasks it runs at once.
    pub slots: u32,
    /// `active`, `terminating`, `dead` or `unknown`, from its last heartbeat.
    pub state: String,
    /// Seconds since its last heartbeat, if one came.
    pub last_seen_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: String,
    pub name: String,
    /// `queued`, `running`, `failed` or `successful`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    pub stages: usize,
    /// Tasks run (or running) per executor id; failed attempts are in `failed_tasks`.
    pub tasks: BTreeMap<String, usize>,
    pub failed_tasks: usize,
    /// Milliseconds since the epoch.
    pub started_ms: u64,
    pub ended_ms: u64,
    #[serde(default)]
    pub work: JobWork,
}

/// Where a job's time went, in task milliseconds: summed over its tasks, which run side by
/// side, so the sum can exceed the job's wall time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobWork {
    /// From a task's scheduling to its launch on an executor (waiting for a slot).
    pub waiting_ms: u64,
    /// Running tasks of the stages that feed a shuffle (scans, joins, partial aggregates).
    pub shuffle_stages_ms: u64,
    /// Of those, writing the shuffle files.
    pub shuffle_write_ms: u64,
    /// Running tasks of final stages that write a Delta table's files.
    pub write_ms: u64,
    /// Running tasks of other final stages (a query's result).
    pub result_ms: u64,
}

impl JobWork {
    fn add_stage(&mut self, stage: &ExecutionStage) {
        let tasks = stage.task_infos().unwrap_or_default();
        let span = |from: u128, to: u128| u64::try_from(to.saturating_sub(from)).unwrap_or(0);
        self.waiting_ms += tasks
            .iter()
            .map(|t| span(t.scheduled_time, t.launch_time))
            .sum::<u64>();
        let running: u64 = tasks
            .iter()
            .filter(|t| t.end_exec_time > 0)
            .map(|t: &TaskInfo| span(t.start_exec_time, t.end_exec_time))
            .sum();
        if !stage.output_links().is_empty() {
            self.shuffle_stages_ms += running;
            self.shuffle_write_ms += metric_ms(stage_metrics(stage), "write_time");
        } else if writes_delta_files(stage.plan()) {
            self.write_ms += running;
        } else {
            self.result_ms += running;
        }
    }
}

fn stage_metrics(stage: &ExecutionStage) -> &[MetricsSet] {
    match stage {
        ExecutionStage::Running(s) => s.stage_metrics.as_deref().unwrap_or_default(),
        ExecutionStage::Successful(s) => &s.stage_metrics,
        ExecutionStage::Failed(s) => s.stage_metrics.as_deref().unwrap_or_default(),
        ExecutionStage::UnResolved(_) | ExecutionStage::Resolved(_) => &[],
    }
}

/// A time metric (nanoseconds) summed over a stage's operators, in milliseconds.
fn metric_ms(metrics: &[MetricsSet], name: &str) -> u64 {
    let nanos: usize = metrics
        .iter()
        .filter_map(|set| set.sum_by_name(name))
        .map(|value| value.as_usize())
        .sum();
    (nanos / 1_000_000) as u64
}

fn writes_delta_files(plan: &dyn ExecutionPlan) -> bool {
    plan.is::<DeltaWriteExec>()
        || plan
            .children()
            .into_iter()
            .any(|child| writes_delta_files(child.as_ref()))
}

/// Reads the status of the cluster `scheduler` from its job and executor state.
pub async fn collect(cluster: &BallistaCluster) -> Result<ClusterStatus, ClusterError> {
    let state = cluster.cluster_state();
    let heartbeats = state.executor_heartbeats();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut executors: Vec<ExecutorStatus> = state
        .registered_executor_metadata()
        .await
        .into_iter()
        .map(|meta| {
            let beat = heartbeats.get(&meta.id);
            let state = match beat.and_then(|b| b.status.as_ref()?.status.as_ref()) {
                Some(executor_status::Status::Active(_)) => "active",
                Some(executor_status::Status::Terminating(_)) => "terminating",
                Some(executor_status::Status::Dead(_)) => "dead",
                Some(executor_status::Status::Unknown(_)) | None => "unknown",
            };
            ExecutorStatus {
                last_seen_secs: beat.map(|b| now.saturating_sub(b.timestamp)),
                state: state.to_string(),
                slots: meta.specification.vcores,
                id: meta.id,
                host: meta.host,
                port: meta.port,
                grpc_port: meta.grpc_port,
            }
        })
        .collect();
    executors.sort_by(|a, b| a.id.cmp(&b.id));

    let jobs_state = cluster.job_state();
    let mut jobs = Vec::new();
    for id in jobs_state.get_all_jobs().await? {
        let Some(graph) = jobs_state.get_execution_graph(&id).await? else {
            continue;
        };
        let (state, error) = match &graph.status().status {
            Some(job_status::Status::Queued(_)) | None => ("queued", None),
            Some(job_status::Status::Running(_)) => ("running", None),
            Some(job_status::Status::Failed(failed)) => ("failed", Some(failed.error.clone())),
            Some(job_status::Status::Successful(_)) => ("successful", None),
        };
        let mut tasks = BTreeMap::new();
        let mut failed_tasks = 0;
        let mut work = JobWork::default();
        for stage in graph.stages().values() {
            work.add_stage(stage);
            for task in stage.task_infos().unwrap_or_default() {
                let executor = match &task.task_status {
                    task_status::Status::Running(t) => &t.executor_id,
                    task_status::Status::Successful(t) => &t.executor_id,
                    task_status::Status::Failed(_) => {
                        failed_tasks += 1;
                        continue;
                    }
                };
                *tasks.entry(executor.clone()).or_insert(0) += 1;
            }
        }
        jobs.push(JobStatus {
            id: id.to_string(),
            name: graph.job_name().to_string(),
            state: state.to_string(),
            error,
            stages: graph.stages().len(),
            tasks,
            failed_tasks,
            started_ms: graph.start_time(),
            ended_ms: graph.end_time(),
            work,
        });
    }
    jobs.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(b.id.cmp(&a.id)));
    Ok(ClusterStatus { executors, jobs })
}

/// Asks the scheduler's status endpoint at `url` (`http://host:port`).
pub async fn fetch(url: &Url) -> Result<ClusterStatus, ClusterError> {
    let endpoint = url.join("status").map_err(|e| ClusterError::StatusUrl {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let unreachable = |source| ClusterError::StatusUnreachable {
        url: url.clone(),
        source,
    };
    let response = reqwest::get(endpoint.clone())
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unreachable)?;
    let body = response.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|source| ClusterError::StatusBody {
        url: url.clone(),
        source,
    })
}

/// The jobs started at or after `since_ms` as build log lines: per job name (the node a job ran
/// for), its jobs and tasks, then the tasks each executor (`host:port`) ran for all of them.
pub fn work_since(status: &ClusterStatus, since_ms: u64) -> String {
    let jobs: Vec<&JobStatus> = status
        .jobs
        .iter()
        .filter(|j| j.started_ms >= since_ms)
        .collect();
    let mut out = String::new();
    let mut per_name: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for job in &jobs {
        let counts = per_name.entry(job.name.as_str()).or_default();
        counts.0 += 1;
        counts.1 += job.tasks.values().sum::<usize>();
    }
    for (name, (jobs, tasks)) in per_name {
        let _ = writeln!(out, "  {name}: {jobs} job(s), {tasks} task(s)");
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for job in &jobs {
        for (id, n) in &job.tasks {
            let node = status
                .executors
                .iter()
                .find(|e| &e.id == id)
                .map_or_else(|| id.clone(), |e| format!("{}:{}", e.host, e.port));
            *per_node.entry(node).or_insert(0) += n;
        }
    }
    let nodes: Vec<String> = per_node
        .iter()
        .map(|(node, n)| format!("{node} {n} task(s)"))
        .collect();
    let nodes = if nodes.is_empty() {
        "no tasks".to_string()
    } else {
        nodes.join(", ")
    };
    let _ = write!(out, "{} job(s) on the cluster: {nodes}", jobs.len());
    out
}

/// The status as `strata cluster status` prints it.
pub fn render(status: &ClusterStatus, jobs: usize) -> String {
    let mut out = String::new();
    let slots: u32 = status.executors.iter().map(|e| e.slots).sum();
    let _ = writeln!(
        out,
        "{} executor(s), {slots} task slot(s)",
        status.executors.len()
    );
    for e in &status.executors {
        let seen = e
            .last_seen_secs
            .map(|s| format!(", last heartbeat {s}s ago"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {}:{} (grpc {})  {} slot(s)  {}{seen}",
            e.id, e.host, e.port, e.grpc_port, e.slots, e.state
        );
    }
    let running = status.jobs.iter().filter(|j| j.state == "running").count();
    let _ = writeln!(
        out,
        "{} job(s), {running} running; the latest {}:",
        status.jobs.len(),
        jobs.min(status.jobs.len())
    );
    for job in status.jobs.iter().take(jobs) {
        let per_node: Vec<String> = job
            .tasks
            .iter()
            .map(|(executor, n)| format!("{executor}: {n}"))
            .collect();
        let failed = match job.failed_tasks {
            0 => String::new(),
            n => format!(", {n} failed attempt(s)"),
        };
        let _ = writeln!(
            out,
            "  {}  {:<10}  {} stage(s)  tasks {}{failed}  {}",
            job.id,
            job.state,
            job.stages,
            if per_node.is_empty() {
                "none".to_string()
            } else {
                per_node.join(", ")
            },
            job.name
        );
        if let Some(error) = &job.error {
            let _ = writeln!(out, "      {error}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, started_ms: u64, tasks: &[(&str, usize)]) -> JobStatus {
        JobStatus {
            id: format!("{name}-{started_ms}"),
            name: name.into(),
            state: "successful".into(),
            error: None,
            stages: 1,
            tasks: tasks.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
            failed_tasks: 0,
            started_ms,
            ended_ms: started_ms + 1,
            work: JobWork::default(),
        }
    }

    #[test]
    fn the_build_log_counts_jobs_and_tasks_per_node_and_per_executor() {
        let executor = |id: &str, port| ExecutorStatus {
            id: id.into(),
            host: "h".into(),
            port,
            grpc_port: 0,
            slots: 1,
            state: "active".into(),
            last_seen_secs: None,
        };
        let status = ClusterStatus {
            executors: vec![executor("a", 1), executor("b", 2)],
            jobs: vec![
                job("model.p.big", 10, &[("a", 2), ("b", 2)]),
                job("model.p.big", 11, &[("a", 1)]),
                job("test.p.unique", 12, &[("b", 1)]),
                job("model.p.old", 1, &[("a", 9)]),
            ],
        };
        assert_eq!(
            work_since(&status, 10),
            "  model.p.big: 2 job(s), 5 task(s)\n  test.p.unique: 1 job(s), 1 task(s)\n\
             3 job(s) on the cluster: h:1 3 task(s), h:2 3 task(s)"
        );
    }
}
