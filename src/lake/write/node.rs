//! The write as a logical plan node, so that the session's planner (in one process or the
//! cluster's) plans the files' writing together with the query that feeds it, and runs both
//! where the query runs.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, DFSchemaRef, Result, internal_datafusion_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use deltalake::delta_datafusion::planner::DeltaExtensionPlanner;

use super::exec::{DeltaWriteExec, WriteTarget, output_schema};

/// Writes its input's rows as data files of a Delta table; yields their `add` actions.
#[derive(Debug, Clone)]
pub struct DeltaWriteNode {
    input: LogicalPlan,
    target: WriteTarget,
    schema: DFSchemaRef,
}

impl DeltaWriteNode {
    pub fn plan(input: LogicalPlan, target: WriteTarget) -> Result<LogicalPlan> {
        let schema = Arc::new(DFSchema::try_from(output_schema())?);
        Ok(LogicalPlan::Extension(Extension {
            node: Arc::new(Self {
                input,
                target,
                schema,
            }),
        }))
    }
}

impl PartialEq for DeltaWriteNode {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && self.target == other.target
    }
}

impl Eq for DeltaWriteNode {}

impl Hash for DeltaWriteNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.target.table.hash(state);
    }
}

impl PartialOrd for DeltaWriteNode {
    /// Writes are not ordered among themselves.
    fn partial_cmp(&self, _other: &Self) -> Option<Ordering> {
        None
    }
}

impl UserDefinedLogicalNodeCore for DeltaWriteNode {
    fn name(&self) -> &str {
        "DeltaWrite"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeltaWrite: table={}", self.target.table)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let [input] = <[LogicalPlan; 1]>::try_from(inputs)
            .map_err(|_| internal_datafusion_err!("DeltaWrite takes one input"))?;
        Ok(Self {
            input,
            target: self.target.clone(),
            schema: Arc::clone(&self.schema),
        })
    }
}

/// Plans [`DeltaWriteNode`] as [`DeltaWriteExec`].
#[derive(Debug)]
struct DeltaWritePlanner;

#[async_trait]
impl ExtensionPlanner for DeltaWritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(write) = node.as_any().downcast_ref::<DeltaWriteNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return Err(internal_datafusion_err!("DeltaWrite takes one input"));
        };
        Ok(Some(Arc::new(DeltaWriteExec::new(
            Arc::clone(input),
            write.target.clone(),
        ))))
    }
}

/// The planner of queries run in this process: DataFusion's, with Delta's nodes and
/// [`DeltaWriteNode`].
#[derive(Debug)]
pub struct LakePlanner;

#[async_trait]
impl QueryPlanner for LakePlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let extensions: Vec<Arc<dyn ExtensionPlanner + Send + Sync>> =
            vec![DeltaExtensionPlanner::new(), Arc::new(DeltaWritePlanner)];
        DefaultPhysicalPlanner::with_extension_planners(extensions)
            .create_physical_plan(logical_plan, session)
            .await
    }
}
