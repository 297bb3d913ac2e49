//! The client side: a session whose queries run on a Ballista cluster. Each query is planned
//! here, with Strata's full planner (its rules, Delta's nodes, the catalog), and the physical
//! plan is then sent to the scheduler, which cuts it into stages at its shuffles and runs them
//! on the executors; the results stream back here. Plans that read only what lives in this
//! process (the catalog's tables, `information_schema`, in-memory tables, a Delta table delta-rs
//! must read) run here as before. A Delta write's files are written on the cluster (its
//! write node travels with the query) and committed here; a DataFusion sink runs here over its
//! input read on the cluster.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::{
    Distribution, EquivalenceProperties, PhysicalExpr, ScalarFunctionExpr,
};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, replace_children_if_necessary,
};
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use datafusion::prelude::SessionContext;
use datafusion_datasource::sink::DataSinkExec;
use datafusion_proto::physical_plan::AsExecutionPlan;
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::{StreamExt, TryStreamExt};
use url::Url;

use super::codec::StrataCodec;
use crate::lake::delta_files::ParquetReads;

/// A context over `ctx`'s session whose cluster jobs are named `name` (the node they run for),
/// so the scheduler's job list and the build log say which node each job ran for. Outside a
/// cluster it reads and runs as `ctx` does.
pub fn naming_jobs(ctx: &SessionContext, name: &str) -> SessionContext {
    let mut state = ctx.state();
    // A session on a cluster marks itself so (see `crate::session`).
    if state.config().get_extension::<ParquetReads>().is_some() {
        let config = state.config().clone().with_ballista_job_name(name);
        *state.config_mut() = config;
    }
    SessionContext::new_with_state(state)
}

/// Plans queries here and runs those that read lake files on the cluster at `scheduler`.
#[derive(Debug)]
pub struct ClusterPlanner {
    local: Arc<dyn QueryPlanner + Send + Sync>,
    scheduler: Url,
    codec: Arc<StrataCodec>,
    /// The scalar functions executors know (a session's own, such as the server's PostgreSQL
    /// functions, keep the part of a plan that calls them here).
    functions: HashSet<String>,
}

impl ClusterPlanner {
    /// `local` plans every query (and runs those that stay here); `scheduler` is `df://host:port`;
    /// `functions` names the scalar functions every process of the cluster has.
    pub fn new(
        local: Arc<dyn QueryPlanner + Send + Sync>,
        scheduler: Url,
        functions: impl IntoIterator<Item = String>,
    ) -> Self {
        let codec = Arc::new(StrataCodec::default());
        let mut functions: HashSet<String> = functions.into_iter().collect();
        functions.extend(codec.own_functions());
        Self {
            local,
            scheduler,
            codec,
            functions,
        }
    }

    /// Whether `plan` calls only functions the executors know.
    fn calls_known_functions(&self, plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
        let mut known = true;
        plan.apply(|node| {
            node.apply_expressions(&mut |expr| {
                expr.apply(|e| {
                    if let Some(call) = e.downcast_ref::<ScalarFunctionExpr>()
                        && !self.functions.contains(call.name())
                    {
                        known = false;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })?;
            Ok(if known {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        })?;
        Ok(known)
    }
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self
            .local
            .create_physical_plan(logical_plan, session)
            .await?;
        self.distribute(plan)
    }
}

impl ClusterPlanner {
    /// `plan` with its largest parts that read only lake files and can travel run on the
    /// cluster: the whole plan when it can, else the inputs of what must run here (a write,
    /// delta-rs's nodes) where the node takes its input in any partitioning and order.
    fn distribute(&self, plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        if reads_only_lake_files(&plan)?
            && self.calls_known_functions(&plan)?
            && PhysicalPlanNode::try_from_physical_plan(Arc::clone(&plan), self.codec.as_ref())
                .is_ok()
        {
            return Ok(Arc::new(ClusterExec::new(
                plan,
                self.scheduler.clone(),
                Arc::clone(&self.codec),
            )));
        }
        let children = plan.children();
        if children.is_empty() {
            return Ok(plan);
        }
        let distributions = plan.input_distribution_requirements();
        let orderings = plan.required_input_ordering();
        let mut changed = false;
        let mut inputs = Vec::with_capacity(children.len());
        for (i, child) in children.into_iter().enumerate() {
            let any_partitioning = matches!(
                distributions.child_distribution(i),
                Some(Distribution::UnspecifiedDistribution | Distribution::SinglePartition)
            );
            let any_order = orderings.get(i).is_none_or(Option::is_none);
            let input = if any_partitioning && any_order {
                self.distribute(Arc::clone(child))?
            } else {
                Arc::clone(child)
            };
            changed |= !Arc::ptr_eq(&input, child);
            inputs.push(input);
        }
        if changed {
            replace_children_if_necessary(plan, inputs)
        } else {
            Ok(plan)
        }
    }
}

/// Whether every leaf of `plan` scans files (or produces no rows or one empty row), at least
/// one scans files, and nothing in it writes: what is worth and possible to run elsewhere.
fn reads_only_lake_files(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let (mut scans, mut elsewhere) = (0, false);
    plan.apply(|node| {
        if node.is::<DataSinkExec>() {
            elsewhere = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        if !node.children().is_empty() {
            return Ok(TreeNodeRecursion::Continue);
        }
        let scans_files = node.downcast_ref::<DataSourceExec>().is_some_and(|exec| {
            exec.data_source()
                .downcast_ref::<FileScanConfig>()
                .is_some()
        });
        if scans_files {
            scans += 1;
        } else if !(node.is::<EmptyExec>() || node.is::<PlaceholderRowExec>()) {
            elsewhere = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(scans > 0 && !elsewhere)
}

/// A plan run on the cluster: its one partition is the job's result.
#[derive(Debug)]
pub struct ClusterExec {
    plan: Arc<dyn ExecutionPlan>,
    scheduler: Url,
    codec: Arc<StrataCodec>,
    properties: Arc<PlanProperties>,
}

impl ClusterExec {
    fn new(plan: Arc<dyn ExecutionPlan>, scheduler: Url, codec: Arc<StrataCodec>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(plan.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            plan,
            scheduler,
            codec,
            properties,
        }
    }

    /// The address Ballista's client connects to.
    fn grpc_address(&self) -> String {
        let host = self.scheduler.host_str().unwrap_or("localhost");
        let port = self
            .scheduler
            .port()
            .unwrap_or(crate::config::SCHEDULER_PORT);
        format!("http://{host}:{port}")
    }
}

impl DisplayAs for ClusterExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ClusterExec: scheduler={}", self.scheduler)
    }
}

impl ExecutionPlan for ClusterExec {
    fn name(&self) -> &str {
        "ClusterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    /// None: the plan it holds runs elsewhere, and no rule here may rewrite it.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let plan = Arc::clone(&self.plan);
        let codec = Arc::clone(&self.codec);
        let address = self.grpc_address();
        let scheduler = self.scheduler.to_string();
        let config = context.session_config().clone();
        let session_id = context.session_id();
        let results = futures::stream::once(async move {
            let ballista = config.ballista_config();
            execute_physical_plan::<PhysicalPlanNode>(
                address,
                &ballista,
                plan,
                codec.as_ref(),
                session_id,
                config,
            )
            .await
        })
        .try_flatten()
        .map_err(move |e| e.context(format!("running on the cluster at {scheduler}")));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            results.boxed(),
        )))
    }
}
