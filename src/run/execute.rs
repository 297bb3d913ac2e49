//! Running selected nodes: as many at once as `threads` allows, each as soon as what it reads
//! is built, descendants of a failure skipped, every outcome reported as it happens and then
//! recorded in the run log (each commit stamped with the run, so a killed run's commits are
//! recorded by the next one).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::util::pretty::pretty_format_batches;
use chrono::{DateTime, Utc};
use datafusion::prelude::{DataFrame, SessionContext};
use tokio::task::JoinSet;

use super::RunError;
use super::artifacts::state::{self, StateManifest};
use super::contract;
use super::hooks;
use super::incremental::microbatch::{self, BatchResults, EventTimes, Window};
use super::incremental::{self, Incremental, IncrementalError, Strategy, config};
use super::introspect::SessionWarehouse;
use super::materialize::{self, Committed, Relation};
use super::nodes::{self, graph_of, relation_of, relation_sql, source_sql};
use super::priority;
use super::reconcile::{self, RunStamp};
use super::run_context;
use super::snapshot;
use super::test_config::{self, StoreAs, TestConfig};
use super::unit_test;
use super::upkeep::{Upkeep, UpkeepError};
use crate::cluster::client::naming_jobs;
use crate::compile::{self, CompileContext, CompileError};
use crate::graph;
use crate::jinja::Warehouse;
use crate::lake::write::CommitMetadata;
use crate::lake::{Lake, delta, layout};
use crate::meta::{IngestLog, RunLog, RunRecord};
use crate::plan::unique;
use crate::project::{Materialized, Node, Project, Resource, SourceTable, UnitTest};

/// Which nodes a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCommand {
    /// Models.
    Run,
    /// Data tests.
    Test,
    /// Seeds.
    Seed,
    /// Snapshots.
    Snapshot,
    /// Seeds, snapshots, models and tests, each model tested before its children are built.
    Build,
}

impl RunCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            RunCommand::Run => "run",
            RunCommand::Test => "test",
            RunCommand::Seed => "seed",
            RunCommand::Snapshot => "snapshot",
            RunCommand::Build => "build",
        }
    }

    fn runs(self, resource: Resource) -> bool {
        match self {
            RunCommand::Run => resource == Resource::Model,
            RunCommand::Test => resource == Resource::Test,
            RunCommand::Seed => resource == Resource::Seed,
            RunCommand::Snapshot => resource == Resource::Snapshot,
            RunCommand::Build => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub command: RunCommand,
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
    pub threads: usize,
    /// The windows microbatch models build (`--event-time-start/--event-time-end`).
    pub event_times: EventTimes,
    /// Every data test stores its failing rows unless its config says otherwise
    /// (`--store-failures`).
    pub store_failures: bool,
    /// The saved manifest `state:` selectors compare with (`--state`).
    pub state: Option<Arc<StateManifest>>,
    /// Exactly these nodes, not a selection (a retry, or a selection already resolved).
    pub only: Option<Arc<BTreeSet<String>>>,
    /// Per microbatch model, the only windows to build (a retry of its failed batches).
    pub retry_batches: Arc<BTreeMap<String, Vec<Window>>>,
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Fail,
    Warn,
    /// A microbatch model some of whose batches failed (the others are committed).
    PartialSuccess,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::PartialSuccess => "partial success",
        }
    }

    /// Whether the node's descendants may go on.
    pub fn ok(self) -> bool {
        matches!(self, Status::Success | Status::Pass | Status::Warn)
    }
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub id: String,
    pub name: String,
    pub resource: Resource,
    pub materialized: Materialized,
    pub relation: Option<Relation>,
    pub status: Status,
    /// Rows written, or a test's failing rows.
    pub rows: Option<u64>,
    pub version: Option<u64>,
    pub seconds: f64,
    pub message: String,
    /// When it started (for a skipped node, when the skip was decided).
    pub started_at: DateTime<Utc>,
    /// Which of the run's `threads` slots ran it (1-based; 0 for a skipped node).
    pub thread: usize,
    /// A microbatch model's batches, committed and failed.
    pub batches: Option<BatchResults>,
}

/// A run's id (its start, to the millisecond: `20261206T153821123Z`) and start.
#[derive(Debug, Clone)]
pub struct RunId {
    pub id: String,
    pub started_at: DateTime<Utc>,
}

impl RunId {
    pub fn now() -> RunId {
        let started_at = Utc::now();
        RunId {
            id: started_at.format("%Y%m%dT%H%M%S%3fZ").to_string(),
            started_at,
        }
    }
}

/// The outcome of a run.
#[derive(Debug)]
pub struct RunSummary {
    pub run_id: String,
    pub results: Vec<NodeResult>,
    /// Versions earlier runs committed but did not record, now recorded under those runs.
    pub recovered: Vec<RunRecord>,
    pub seconds: f64,
}

impl RunSummary {
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| {
            matches!(
                r.status,
                Status::Error | Status::Fail | Status::PartialSuccess
            )
        })
    }

    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }
}

/// Selected node ids the command runs, in dependency order (ephemeral models are compiled
/// into their readers, never run).
pub fn selected(
    project: &Project,
    opts: &RunOptions,
) -> Result<(Vec<String>, Vec<String>), RunError> {
    let (graph, selection) = match &opts.only {
        Some(only) => (
            graph_of(project)?,
            graph::Selection {
                ids: only.as_ref().clone(),
                unmatched: Vec::new(),
            },
        ),
        None => state::select(project, opts.state.as_deref(), &opts.select, &opts.exclude)?,
    };
    let ids = graph
        .topological()
        .into_iter()
        .filter(|id| selection.ids.contains(*id))
        .filter_map(|id| project.nodes.get(id))
        .filter(|n| {
            opts.command.runs(n.resource) && n.config.materialized != Materialized::Ephemeral
        })
        .map(|n| n.unique_id.clone())
        .collect();
    Ok((ids, selection.unmatched))
}

/// Runs the selection as run `run`, calling `report` with each result as it happens. Versions
/// an earlier run committed but did not record (it was killed) are recorded first.
pub async fn run(
    ctx: &SessionContext,
    lake: &Lake,
    project: Arc<Project>,
    opts: &RunOptions,
    run: RunId,
    mut report: impl FnMut(&NodeResult),
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let log = RunLog::new();
    let recorded = log.records(lake).await?;
    let recovered = reconcile::unrecorded(lake, &project, &recorded, &run.id).await?;
    log.append(lake, &recovered).await?;
    let (ids, _) = selected(&project, opts)?;
    let graph = graph_of(&project)?;
    let start = ("on-run-start", project.on_run_start.as_slice());
    project_hooks(ctx, lake, &project, start, &serde_json::Map::new()).await?;
    let mut schedule = graph.schedule(&ids.iter().cloned().collect());
    // Only an order: without the ingest log every node weighs the same, and the run is as right.
    let landed = IngestLog::new().records(lake).await.unwrap_or_else(|e| {
        tracing::debug!("run order without landed sizes: {e}");
        Vec::new()
    });
    let cost = priority::upstream_bytes(&project, &graph, &landed);
    schedule.prioritize(|id| cost.get(id).copied().unwrap_or(0));
    let mut running = JoinSet::new();
    let mut results = Vec::new();
    // The thread slots free to run a node, so that results say which one ran it.
    let mut free: Vec<usize> = (1..=opts.threads.max(1)).rev().collect();
    while !schedule.is_done() {
        while let Some(&thread) = free.last() {
            let Some(id) = schedule.start_next() else {
                break;
            };
            free.pop();
            let (ctx, lake, project) = (ctx.clone(), lake.clone(), Arc::clone(&project));
            let flags = NodeFlags {
                full_refresh: opts.full_refresh,
                times: opts.event_times,
                retry: opts.retry_batches.get(&id).cloned(),
                store_failures: opts.store_failures,
            };
            let stamp = RunStamp {
                run_id: run.id.clone(),
                command: opts.command.as_str().to_string(),
                node: id.clone(),
                started_at: run.started_at,
            };
            running.spawn(async move {
                let mut result = run_node(&ctx, &lake, &project, &id, flags, &stamp).await;
                result.thread = thread;
                result
            });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let result = done.map_err(|e| RunError::Internal(e.to_string()))?;
        free.push(result.thread);
        for skipped in schedule.complete(&result.id, result.status.ok()) {
            if let Some(node) = project.nodes.get(&skipped) {
                let skip = skipped_result(node, &result.name);
                report(&skip);
                results.push(skip);
            }
        }
        report(&result);
        results.push(result);
    }
    let records: Vec<RunRecord> = results
        .iter()
        .map(|r| RunRecord {
            run_id: run.id.clone(),
            command: opts.command.as_str().to_string(),
            node: r.id.clone(),
            relation: r
                .relation
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            status: r.status.as_str().to_string(),
            rows: r.rows,
            seconds: r.seconds,
            delta_version: r.version,
            message: r.message.clone(),
            started_at: run.started_at,
        })
        .collect();
    log.append(lake, &records).await?;
    let end = ("on-run-end", project.on_run_end.as_slice());
    let context = run_context::on_run_end(&project, &results);
    project_hooks(ctx, lake, &project, end, &context).await?;
    Ok(RunSummary {
        run_id: run.id,
        results,
        recovered,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn skipped_result(node: &Node, because: &str) -> NodeResult {
    NodeResult {
        id: node.unique_id.clone(),
        name: node.name.clone(),
        resource: node.resource,
        materialized: node.config.materialized,
        relation: (node.resource != Resource::Test).then(|| relation_of(node)),
        status: Status::Skipped,
        rows: None,
        version: None,
        seconds: 0.0,
        message: format!("skipped because {because} did not succeed"),
        started_at: Utc::now(),
        thread: 0,
        batches: None,
    }
}

/// What the command line asks of every node: how a model's incremental batches are chosen
/// (`--full-refresh`, `--event-time-*`, the failed windows a retry builds) and whether a test
/// stores its failures (`--store-failures`).
struct NodeFlags {
    full_refresh: bool,
    times: EventTimes,
    retry: Option<Vec<Window>>,
    store_failures: bool,
}

/// Builds or evaluates one node, its commit stamped with `stamp`; never fails the run itself.
async fn run_node(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    id: &str,
    flags: NodeFlags,
    stamp: &RunStamp,
) -> NodeResult {
    let node = &project.nodes[id];
    let started = Instant::now();
    let started_at = Utc::now();
    let ctx = &naming_jobs(ctx, id);
    let commit = stamp.commit_metadata();
    let hooked = node.resource != Resource::Test;
    if hooked && let Err(message) = node_hooks(ctx, lake, project, node, false).await {
        return NodeResult {
            id: id.to_string(),
            name: node.name.clone(),
            resource: node.resource,
            materialized: node.config.materialized,
            relation: Some(relation_of(node)),
            status: Status::Error,
            rows: None,
            version: None,
            seconds: started.elapsed().as_secs_f64(),
            message,
            started_at,
            thread: 0,
            batches: None,
        };
    }
    let mut batch_results = None;
    let outcome = match node.resource {
        Resource::Test => match node.unit_test() {
            Some(unit) => run_unit_test(ctx, project, node, unit).await,
            None => run_test(ctx, lake, project, node, flags.store_failures, commit).await,
        },
        Resource::Seed => {
            let relation = relation_of(node);
            let csv = project.root.join(&node.path);
            let types = nodes::column_types(node);
            materialize::seed(ctx, lake, &relation, &csv, &types, commit)
                .await
                .map(|c| (Status::Success, c, String::new()))
                .map_err(|e| e.to_string())
        }
        Resource::Model => {
            run_model(ctx, lake, project, node, flags, commit, &mut batch_results).await
        }
        Resource::Snapshot => run_snapshot(ctx, lake, project, node, commit).await,
    };
    let outcome = match outcome {
        Ok(done) if hooked => node_hooks(ctx, lake, project, node, true)
            .await
            .map(|()| done),
        other => other,
    };
    let (status, committed, message) = outcome.unwrap_or_else(|message| {
        let status = Status::Error;
        (status, Committed::default(), message)
    });
    NodeResult {
        id: id.to_string(),
        name: node.name.clone(),
        resource: node.resource,
        materialized: node.config.materialized,
        relation: (node.resource != Resource::Test).then(|| relation_of(node)),
        status,
        rows: committed.rows,
        version: committed.version,
        seconds: started.elapsed().as_secs_f64(),
        message,
        started_at,
        thread: 0,
        batches: batch_results,
    }
}

/// Renders a node's SQL with relations spelled for this lake, its compile-time queries going
/// to `warehouse`; DuckDB-style named table-function arguments are taken as `strata sql`
/// takes them (`read_csv('x.csv', header = true)`).
pub fn compile_node(
    project: &Project,
    node: &Node,
    is_incremental: bool,
    warehouse: Option<Arc<dyn Warehouse>>,
) -> Result<String, CompileError> {
    in_lake(project, is_incremental, warehouse, |ctx| {
        compile_in(project, node, ctx)
    })
}

/// One batch of a microbatch model: refs and sources spelled by `relation` and
/// `source_relation` (those with an `event_time` filtered to the window), `model.batch` set.
pub fn compile_batch(
    project: &Project,
    node: &Node,
    is_incremental: bool,
    warehouse: Option<Arc<dyn Warehouse>>,
    relation: &dyn Fn(&Node) -> String,
    source_relation: &dyn Fn(&SourceTable) -> String,
    batch: minijinja::Value,
) -> Result<String, CompileError> {
    let spelling = (relation, source_relation);
    in_context(project, is_incremental, warehouse, spelling, |ctx| {
        compile::compile_batch(project, &node.unique_id, ctx, batch)
            .map(|sql| crate::sql::rewrite::named_args_in_text(&sql).into_owned())
    })
}

fn compile_in(
    project: &Project,
    node: &Node,
    ctx: &CompileContext<'_>,
) -> Result<String, CompileError> {
    compile::compile(project, &node.unique_id, ctx)
        .map(|sql| crate::sql::rewrite::named_args_in_text(&sql).into_owned())
}

/// `f` given the compile context of a run: relations spelled for this lake.
fn in_lake<R>(
    project: &Project,
    is_incremental: bool,
    warehouse: Option<Arc<dyn Warehouse>>,
    f: impl FnOnce(&CompileContext<'_>) -> R,
) -> R {
    let relation = |n: &Node| relation_sql(&relation_of(n));
    in_context(
        project,
        is_incremental,
        warehouse,
        (&relation, &source_sql),
        f,
    )
}

/// How a compile spells a ref's relation and a source's.
type Spelling<'a> = (
    &'a dyn Fn(&Node) -> String,
    &'a dyn Fn(&SourceTable) -> String,
);

/// `f` given a compile context whose refs and sources are spelled by `spelling`.
fn in_context<R>(
    project: &Project,
    is_incremental: bool,
    warehouse: Option<Arc<dyn Warehouse>>,
    (relation, source_relation): Spelling<'_>,
    f: impl FnOnce(&CompileContext<'_>) -> R,
) -> R {
    let ctx = CompileContext {
        is_incremental,
        target: project.target.clone(),
        relation,
        source_relation,
        warehouse,
    };
    f(&ctx)
}

/// Runs the node's `pre_hook`s (`post = false`) or `post_hook`s, each rendered in its context.
async fn node_hooks(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    node: &Node,
    post: bool,
) -> Result<(), String> {
    let (key, label) = if post {
        ("post_hook", "post-hook")
    } else {
        ("pre_hook", "pre-hook")
    };
    for (i, text) in node.config.hooks(key).iter().enumerate() {
        let what = format!("{label} {} of {}", i + 1, node.unique_id);
        let sql = in_lake(project, false, Some(warehouse(ctx)), |c| {
            compile::render_hook(project, &node.unique_id, text, c)
        })
        .map_err(|e| format!("{}: {what}: {e}", node.path.display()))?;
        hooks::run(ctx, lake, &what, &sql)
            .await
            .map_err(|e| format!("{}: {e}", node.path.display()))?;
    }
    Ok(())
}

/// Runs the project's `on-run-start` or `on-run-end` hooks (`key`), in order, `run` in their
/// context.
async fn project_hooks(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    (key, texts): (&str, &[String]),
    run: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), hooks::HookError> {
    for (i, text) in texts.iter().enumerate() {
        let what = format!("{key} {} (dbt_project.yml)", i + 1);
        let sql = in_lake(project, false, Some(warehouse(ctx)), |c| {
            compile::render_project_hook(project, key, text, c, run)
        })
        .map_err(|e| hooks::HookError::new(&what, e))?;
        hooks::run(ctx, lake, &what, &sql).await?;
    }
    Ok(())
}

async fn run_model(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    node: &Node,
    flags: NodeFlags,
    commit: CommitMetadata,
    batch_results: &mut Option<BatchResults>,
) -> Result<(Status, Committed, String), String> {
    let relation = relation_of(node);
    let refresh = node.config.full_refresh.unwrap_or(flags.full_refresh);
    let existing = delta::open(lake, &layout::model_table(&relation.schema, &relation.name))
        .await
        .map_err(|e| format!("{relation}: {e}"))?;
    let exists = existing.is_some();
    let in_file = |e: IncrementalError| format!("{}: {e}", node.path.display());
    let partition_by = config::partition_by(node).map_err(|e| in_file(e.into()))?;
    let incremental = node.config.materialized == Materialized::Incremental && exists && !refresh;
    let config = match node.config.materialized {
        Materialized::Incremental => Some(Incremental::of(node).map_err(|e| in_file(e.into()))?),
        _ => None,
    };
    let upkeep = Upkeep::of(node).map_err(|e| in_file(e.into()))?;
    let in_file_upkeep = |e: UpkeepError| format!("{}: {e}", node.path.display());
    let dropped = upkeep
        .before_write(existing, &relation, node)
        .await
        .map_err(in_file_upkeep)?;
    let written = async {
        Ok(
            if let Some(config) = config
                .as_ref()
                .filter(|c| c.strategy == Strategy::Microbatch)
            {
                let windows = match &flags.retry {
                    Some(windows) => microbatch::Windows::Retry(windows),
                    None => microbatch::Windows::Planned(flags.times),
                };
                let run = microbatch::run(
                    ctx,
                    lake,
                    project,
                    node,
                    config,
                    incremental,
                    windows,
                    commit.clone(),
                )
                .await
                .map_err(in_file)?;
                let mut notes = run.outcome.notes;
                notes.extend(
                    run.errors
                        .iter()
                        .map(|e| format!("{}: {e}", node.path.display())),
                );
                let (committed, failed) = (run.batches.successful.len(), run.errors.len());
                *batch_results = Some(run.batches);
                let status = match (committed, failed) {
                    (_, 0) => Status::Success,
                    (0, _) => return Err(notes.join("\n")),
                    _ => Status::PartialSuccess,
                };
                (status, run.outcome.committed, notes)
            } else {
                let sql = compile_node(project, node, incremental, Some(warehouse(ctx)))
                    .map_err(|e| e.to_string())?;
                let sql = if node.contract_enforced() {
                    enforce_contract(ctx, node, &sql).await?
                } else {
                    sql
                };
                let (committed, notes) = match (node.config.materialized, &config) {
                    (Materialized::View, _) => {
                        let committed = materialize::view(ctx, lake, &relation, &sql)
                            .await
                            .map_err(|e| in_file(e.into()))?;
                        return Ok((Status::Success, committed, Vec::new()));
                    }
                    (_, Some(config)) if incremental => {
                        incremental::apply(ctx, lake, &relation, &sql, config, None, commit.clone())
                            .await
                            .map(|o| (o.committed, o.notes))
                            .map_err(in_file)?
                    }
                    _ => materialize::table(
                        ctx,
                        lake,
                        &relation,
                        &sql,
                        &partition_by,
                        commit.clone(),
                    )
                    .await
                    .map(|c| (c, Vec::new()))
                    .map_err(|e| in_file(e.into()))?,
                };
                (Status::Success, committed, notes)
            },
        )
    }
    .await;
    let (status, committed, notes) = match written {
        Ok(written) => written,
        Err(message) => {
            // The table keeps its rows; it keeps its constraints too.
            return Err(match upkeep.restore(lake, &relation, dropped).await {
                Ok(()) => message,
                Err(e) => format!("{message}\n{}", in_file_upkeep(e)),
            });
        }
    };
    if node.config.materialized == Materialized::View {
        return Ok((status, committed, notes.join("\n")));
    }
    let committed = upkeep
        .after_write(ctx, lake, &relation, node, committed, commit)
        .await
        .map_err(in_file_upkeep)?;
    Ok((status, committed, notes.join("\n")))
}

/// Checks the model's planned columns against its contract, before anything is written; the
/// SQL to build, its columns in the contract's order and its constraints enforced.
async fn enforce_contract(ctx: &SessionContext, node: &Node, sql: &str) -> Result<String, String> {
    let schema = contract_schema(ctx, sql)
        .await
        .map_err(|e| format!("{}: {e}", node.path.display()))?;
    contract::check(node, &schema).map_err(|e| e.to_string())?;
    let is_view = node.config.materialized == Materialized::View;
    if !is_view {
        ctx.register_udf(contract::constraint_function());
    }
    Ok(contract::guarded_sql(node, sql, !is_view))
}

/// The schema a query writes: its plan's once analyzed and optimized (only then are the
/// expression types final).
pub(crate) async fn contract_schema(
    ctx: &SessionContext,
    sql: &str,
) -> Result<arrow::datatypes::Schema, datafusion::error::DataFusionError> {
    let state = ctx.state();
    let plan = state.create_logical_plan(sql).await?;
    let plan = state.optimize(&plan)?;
    Ok(plan.schema().as_arrow().clone())
}

async fn run_snapshot(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    node: &Node,
    commit: CommitMetadata,
) -> Result<(Status, Committed, String), String> {
    let sql =
        compile_node(project, node, false, Some(warehouse(ctx))).map_err(|e| e.to_string())?;
    let committed = snapshot::snapshot(ctx, lake, &relation_of(node), node, &sql, commit)
        .await
        .map_err(|e| format!("{}: {e}", node.path.display()))?;
    Ok((Status::Success, committed, String::new()))
}

/// The warehouse a node's compile-time queries go to while it runs: its inputs are built.
fn warehouse(ctx: &SessionContext) -> Arc<dyn Warehouse> {
    Arc::new(SessionWarehouse::new(ctx.clone()))
}

/// A unit test: passes when the model returns the expected rows from the given ones.
async fn run_unit_test(
    ctx: &SessionContext,
    project: &Project,
    node: &Node,
    unit: &UnitTest,
) -> Result<(Status, Committed, String), String> {
    let outcome = unit_test::run(ctx, project, unit)
        .await
        .map_err(|e| format!("{}: unit test {}: {e}", node.path.display(), node.name))?;
    Ok(match outcome {
        None => (Status::Pass, Committed::default(), String::new()),
        Some((differing, diff)) => {
            let committed = Committed {
                rows: Some(differing as u64),
                version: None,
            };
            (Status::Fail, committed, diff)
        }
    })
}

/// Failing rows shown for a failed test.
const FAILURE_SAMPLE: usize = 5;

async fn run_test(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    node: &Node,
    store_failures: bool,
    commit: CommitMetadata,
) -> Result<(Status, Committed, String), String> {
    let config = TestConfig::of(node, store_failures)
        .map_err(|e| format!("{}: {}: {e}", node.path.display(), node.unique_id))?;
    let sql =
        compile_node(project, node, false, Some(warehouse(ctx))).map_err(|e| e.to_string())?;
    let sql = config.failing_rows(&sql);
    let in_file = |e: datafusion::error::DataFusionError| format!("{}: {e}", node.path.display());
    // Planned once: the proof and the queries below all read this plan.
    let plan = ctx
        .state()
        .create_logical_plan(&sql)
        .await
        .map_err(in_file)?;
    let fail_calc = node
        .config
        .extra
        .get("fail_calc")
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|c| !c.eq_ignore_ascii_case("count(*)"));
    let failures = if let Some(calc) = fail_calc {
        // dbt's `fail_calc`: the number of failures is computed over the failing rows.
        let calc_sql = format!("select cast(coalesce({calc}, 0) as bigint) from ({sql}) dbt_test");
        let batches = ctx
            .sql(&calc_sql)
            .await
            .map_err(in_file)?
            .collect()
            .await
            .map_err(in_file)?;
        batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .map(|a| a.value(0).max(0) as u64)
            })
            .unwrap_or(0)
    } else if unique::proven_unique(ctx, &plan).await.map_err(in_file)? {
        0
    } else {
        let count = DataFrame::new(ctx.state(), plan.clone())
            .alias("dbt_test")
            .map_err(in_file)?
            .count()
            .await
            .map_err(in_file)?;
        count as u64
    };
    let committed = Committed {
        rows: Some(failures),
        version: None,
    };
    let stored = match config.store {
        Some(kind) => {
            let relation = test_config::audit_relation(project, node);
            let stored = match kind {
                StoreAs::Table => materialize::table(ctx, lake, &relation, &sql, &[], commit).await,
                StoreAs::View => materialize::view(ctx, lake, &relation, &sql).await,
            };
            stored
                .map_err(|e| format!("{}: storing the failing rows: {e}", node.path.display()))?;
            format!("\nfailing rows stored in {relation}")
        }
        None => String::new(),
    };
    let status = config.status(ctx, node.config.severity, failures).await?;
    if status == Status::Pass {
        return Ok((Status::Pass, committed, stored.trim_start().to_string()));
    }
    let sample = DataFrame::new(ctx.state(), plan)
        .alias("dbt_test")
        .and_then(|t| t.limit(0, Some(FAILURE_SAMPLE)))
        .map_err(in_file)?
        .collect()
        .await
        .map_err(in_file)?;
    let shown = pretty_format_batches(&sample)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let message = format!("{failures} failing row(s), e.g.\n{shown}{stored}");
    Ok((status, committed, message))
}
