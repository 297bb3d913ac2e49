//! Limits that reach the scan whatever the scan says. DataFusion's `LimitPushdown` removes a
//! limit above an operator that claims to pass limits on to its inputs
//! (`supports_limit_pushdown`). delta-rs's metadata-only scan (`DeltaScanMetaExec`, planned
//! when a query reads no column of a Delta table, as a BI tool's `select 1 from t limit 1`
//! does) makes that claim while being a leaf with no inputs and no `with_fetch`, so the limit
//! vanished and the whole table came back. [`LeafLimits`] runs just before `LimitPushdown`
//! and puts every such leaf under a [`Fetch`], which takes the limit and applies it.

use std::fmt;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::limit::{GlobalLimitExec, LimitStream, LocalLimitExec};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    SendableRecordBatchStream, Statistics, StatisticsArgs,
};

/// Name of the DataFusion rule [`LeafLimits`] must run before.
pub const LIMIT_PUSHDOWN: &str = "LimitPushdown";

/// Wraps leaves that would drop a limit in a [`Fetch`], in plans that have a limit.
#[derive(Debug, Default)]
pub struct LeafLimits;

impl PhysicalOptimizerRule for LeafLimits {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !has_limit(&plan)? {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let drops_limits = node.children().is_empty() && node.supports_limit_pushdown();
            Ok(if drops_limits {
                Transformed::yes(Arc::new(Fetch::new(node, None)) as Arc<dyn ExecutionPlan>)
            } else {
                Transformed::no(node)
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "LeafLimits"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn has_limit(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    plan.exists(|node| {
        Ok(node.fetch().is_some() || node.is::<GlobalLimitExec>() || node.is::<LocalLimitExec>())
    })
}

/// Passes its input's rows through, at most `fetch` of them per partition once `LimitPushdown`
/// has handed it a limit (the limits above it still bound the total and apply any offset).
#[derive(Debug)]
pub struct Fetch {
    input: Arc<dyn ExecutionPlan>,
    fetch: Option<usize>,
    metrics: ExecutionPlanMetricsSet,
}

impl Fetch {
    pub fn new(input: Arc<dyn ExecutionPlan>, fetch: Option<usize>) -> Self {
        Self {
            input,
            fetch,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The rows it passes per partition at most, once a limit was pushed to it.
    pub fn limit(&self) -> Option<usize> {
        self.fetch
    }
}

impl DisplayAs for Fetch {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match self.fetch {
            Some(n) => write!(f, "Fetch: fetch={n}"),
            None => write!(f, "Fetch"),
        }
    }
}

impl ExecutionPlan for Fetch {
    fn name(&self) -> &str {
        "Fetch"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
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
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(children.swap_remove(0), self.fetch)))
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        Ok(match self.fetch {
            Some(fetch) => Box::pin(LimitStream::new(
                stream,
                0,
                Some(fetch),
                BaselineMetrics::new(&self.metrics, partition),
            )),
            None => stream,
        })
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let stats = input_stats[0].as_ref().clone();
        Ok(Arc::new(stats.with_fetch(self.fetch, 0, 1)?))
    }

    fn with_fetch(&self, fetch: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        Some(Arc::new(Self::new(Arc::clone(&self.input), fetch)))
    }

    fn fetch(&self) -> Option<usize> {
        self.fetch
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::LowerEqual
    }
}
