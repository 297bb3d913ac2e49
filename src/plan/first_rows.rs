//! The first rows per key without sorting everything: `row_number() over (partition by k order
//! by t) <= n` (or `rank()`) is computed from a heap of the best `n` rows per key, by
//! DataFusion's per-partition top-K (`WindowTopN`, `PartitionedTopKExec`).
//!
//! Two rules make that apply to SQL as users write it, and only where it is exact:
//! - [`FirstRows`] (logical) turns `rank = 1` (in a `WHERE` over a subquery, or in `QUALIFY`)
//!   into `rank <= 1`, the shape `WindowTopN` recognizes; the two agree on every row, since a
//!   rank is never below 1.
//! - [`GuardedWindowTopN`] (physical) runs `WindowTopN` in place of DataFusion's own (which
//!   DataFusion 55 ships switched off) and keeps its result only where every function of the
//!   window it feeds is a ranking one over the same keys and order. DataFusion's rule also
//!   fires when that window computes, say, a running `sum` beside the `row_number`, whose
//!   value then misses the rows the heap dropped.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Filter, LogicalPlan, Operator, WindowFunctionDefinition,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::window_topn::WindowTopN;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::partitioned_topk::PartitionedTopKExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};

/// The optimizer rule; see the module documentation.
#[derive(Debug, Default)]
pub struct FirstRows;

/// Window functions whose value is 1 for the first row of a partition and above 1 after it.
const RANKINGS: [&str; 3] = ["row_number", "rank", "dense_rank"];

impl OptimizerRule for FirstRows {
    fn name(&self) -> &str {
        "first_rows"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Filter(filter) = plan else {
            return Ok(Transformed::no(plan));
        };
        let ranks = ranking_columns(&filter.input);
        if ranks.is_empty() {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        }
        let predicate = filter
            .predicate
            .clone()
            .transform(|e| Ok(at_most_one(e, &ranks)))?;
        if !predicate.transformed {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        }
        Filter::try_new(predicate.data, filter.input)
            .map(|f| Transformed::yes(LogicalPlan::Filter(f)))
    }
}

/// The output columns of `plan` that carry a ranking window function's value: the window's
/// own outputs, and projections passing them on.
fn ranking_columns(plan: &LogicalPlan) -> HashSet<Column> {
    match plan {
        LogicalPlan::Window(window) => {
            let first = window.input.schema().fields().len();
            let columns = window.schema.columns();
            window
                .window_expr
                .iter()
                .enumerate()
                .filter(|(_, e)| is_ranking(e))
                .map(|(i, _)| columns[first + i].clone())
                .collect()
        }
        LogicalPlan::Projection(projection) => {
            let below = ranking_columns(&projection.input);
            let columns = projection.schema.columns();
            projection
                .expr
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(unaliased(e), Expr::Column(c) if below.contains(c)))
                .map(|(i, _)| columns[i].clone())
                .collect()
        }
        _ => HashSet::new(),
    }
}

fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unaliased(&alias.expr),
        e => e,
    }
}

fn is_ranking(expr: &Expr) -> bool {
    match unaliased(expr) {
        Expr::WindowFunction(window) => matches!(
            &window.fun,
            WindowFunctionDefinition::WindowUDF(udf) if RANKINGS.contains(&udf.name())
        ),
        _ => false,
    }
}

/// `rank = 1` as `rank <= 1` (and `1 = rank` as `1 >= rank`) for a ranking column.
fn at_most_one(expr: Expr, ranks: &HashSet<Column>) -> Transformed<Expr> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = expr
    else {
        return Transformed::no(expr);
    };
    let rank = |e: &Expr| matches!(e, Expr::Column(c) if ranks.contains(c));
    let op = if rank(&left) && is_one(&right) {
        Operator::LtEq
    } else if is_one(&left) && rank(&right) {
        Operator::GtEq
    } else {
        return Transformed::no(Expr::BinaryExpr(BinaryExpr::new(left, Operator::Eq, right)));
    };
    Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(left, op, right)))
}

fn is_one(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(value, _) if value.data_type().is_integer() => {
            value.cast_to(&DataType::Int64).ok() == Some(ScalarValue::Int64(Some(1)))
        }
        _ => false,
    }
}

/// Puts [`GuardedWindowTopN`] in the place of DataFusion's `WindowTopN` in `rules`.
pub fn guard_window_top_n(rules: &mut [Arc<dyn PhysicalOptimizerRule + Send + Sync>]) {
    for rule in rules.iter_mut().filter(|r| r.name() == "WindowTopN") {
        *rule = Arc::new(GuardedWindowTopN);
    }
}

/// The physical rule; see the module documentation.
#[derive(Debug, Default)]
pub struct GuardedWindowTopN;

impl PhysicalOptimizerRule for GuardedWindowTopN {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Most plans have no window: they pay one walk, not a copy of the config and a rewrite.
        let windowed =
            plan.exists(|node| Ok(node.downcast_ref::<BoundedWindowAggExec>().is_some()))?;
        if !windowed {
            return Ok(plan);
        }
        let mut enabled = config.clone();
        enabled.optimizer.enable_window_topn = true;
        let split = Arc::clone(&plan).transform_up(filter_on_window)?.data;
        let rewritten = WindowTopN::new().optimize(split, &enabled)?;
        Ok(if exact(&rewritten)? { rewritten } else { plan })
    }

    fn name(&self) -> &str {
        "guarded_window_top_n"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A filter over a window, with the projections between them (its own, when `rn` is not
/// selected, and column-only ones below it) moved above it, so that the filter reads the
/// window's output directly: the only shape in which `WindowTopN` reads the filtered column
/// right. The rows are the same.
fn filter_on_window(node: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    let Some(filter) = node.downcast_ref::<FilterExec>() else {
        return Ok(Transformed::no(node));
    };
    let mut predicate = Arc::clone(filter.predicate());
    let mut input = Arc::clone(filter.input());
    // Outermost first.
    let mut above: Vec<Vec<ProjectionExpr>> = Vec::new();
    if let Some(projection) = filter.projection() {
        let schema = input.schema();
        above.push(
            projection
                .iter()
                .map(|&i| column(schema.field(i).name(), i))
                .collect(),
        );
    }
    while let Some(projection) = input.downcast_ref::<ProjectionExec>() {
        let Some(sources) = projection
            .expr()
            .iter()
            .map(|e| {
                e.expr
                    .downcast_ref::<PhysicalColumn>()
                    .map(PhysicalColumn::index)
            })
            .collect::<Option<Vec<usize>>>()
        else {
            break;
        };
        let below = projection.input().schema();
        predicate = predicate
            .transform(|e| {
                Ok(match e.downcast_ref::<PhysicalColumn>() {
                    Some(c) => {
                        let source = sources[c.index()];
                        Transformed::yes(column(below.field(source).name(), source).expr)
                    }
                    None => Transformed::no(e),
                })
            })?
            .data;
        above.push(projection.expr().to_vec());
        input = Arc::clone(projection.input());
    }
    if above.is_empty() || input.downcast_ref::<BoundedWindowAggExec>().is_none() {
        return Ok(Transformed::no(node));
    }
    let mut plan: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(predicate, input)?);
    for projection in above.into_iter().rev() {
        plan = Arc::new(ProjectionExec::try_new(projection, plan)?);
    }
    Ok(Transformed::yes(plan))
}

fn column(name: &str, index: usize) -> ProjectionExpr {
    ProjectionExpr {
        expr: Arc::new(PhysicalColumn::new(name, index)),
        alias: name.to_string(),
    }
}

/// Whether every window fed by a per-partition top-K computes only ranking functions over
/// the top-K's keys and order, whose values for the kept rows do not depend on dropped ones.
fn exact(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let mut exact = true;
    plan.apply(|node| {
        let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let Some(top) = window.input().downcast_ref::<PartitionedTopKExec>() else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let (keys, order) = top.expr().split_at(top.partition_prefix_len());
        exact = window.window_expr().iter().all(|expr| {
            ranking_name(expr).is_some_and(|name| RANKINGS.contains(&name))
                && expr.partition_by().len() == keys.len()
                && expr
                    .partition_by()
                    .iter()
                    .zip(keys)
                    .all(|(p, k)| p.as_ref() == k.expr.as_ref())
                && expr.order_by() == order
        });
        Ok(if exact {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })?;
    Ok(exact)
}

fn ranking_name(expr: &Arc<dyn WindowExpr>) -> Option<&str> {
    let standard = expr.as_any().downcast_ref::<StandardWindowExpr>()?;
    let udf = standard
        .get_standard_func_expr()
        .as_any()
        .downcast_ref::<WindowUDFExpr>()?;
    Some(udf.fun().name())
}

#[cfg(test)]
mod tests {
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// Rows with repeated keys, NULL keys, ties in the order column and NULL order values.
    const ROWS: &str = "CREATE TABLE t AS SELECT * FROM (VALUES
        (1, 10, 'a'), (1, 20, 'b'), (1, 20, 'c'), (1, NULL, 'd'),
        (2, 5, 'e'),
        (NULL, 7, 'f'), (NULL, 7, 'g'), (NULL, 3, 'h'),
        (3, NULL, 'i'), (3, NULL, 'j'),
        (4, 1, 'k'), (4, 2, 'l'), (4, 3, 'm')
    ) v(k, o, x)";

    async fn context(first_rows: bool) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if first_rows {
            let mut rules = PhysicalOptimizer::new().rules;
            guard_window_top_n(&mut rules);
            state = state
                .with_optimizer_rule(Arc::new(FirstRows))
                .with_physical_optimizer_rules(rules);
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.sql(ROWS).await.unwrap().collect().await.unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx
            .sql(&format!("EXPLAIN {sql}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    /// Results that do not depend on which of two tied rows comes first.
    const DETERMINED: [&str; 7] = [
        "SELECT count(*), sum(o) FROM (SELECT k, o, row_number() OVER (PARTITION BY k ORDER BY o \
         DESC) AS rn FROM t) WHERE rn = 1",
        "SELECT k, o FROM (SELECT k, o, row_number() OVER (PARTITION BY k ORDER BY o DESC) AS rn \
         FROM t) WHERE rn = 1 ORDER BY k",
        "SELECT k, o, x FROM t QUALIFY rank() OVER (PARTITION BY k ORDER BY o DESC NULLS LAST) = 1 \
         ORDER BY k, x",
        "SELECT k, o, x FROM t QUALIFY 1 = dense_rank() OVER (PARTITION BY k ORDER BY o) ORDER BY k, x",
        "SELECT k, x FROM t QUALIFY row_number() OVER (PARTITION BY k ORDER BY o, x) = 1 ORDER BY k",
        "SELECT k, x, rn FROM (SELECT k, x, row_number() OVER (PARTITION BY k ORDER BY x DESC) AS rn \
         FROM t) WHERE rn = 1 AND x > 'b' ORDER BY k",
        "SELECT k, x FROM (SELECT k, x, row_number() OVER (PARTITION BY k ORDER BY x) AS rn FROM t) \
         WHERE NOT (rn = 1) ORDER BY k, x",
    ];

    #[tokio::test]
    async fn first_rows_equal_the_plain_window() {
        let (plain, fast) = (context(false).await, context(true).await);
        for sql in DETERMINED {
            assert_eq!(rows(&fast, sql).await, rows(&plain, sql).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn other_functions_of_the_window_keep_every_row() {
        let (plain, fast) = (context(false).await, context(true).await);
        // The running sum shares the row_number's window; with ties in `o` its first value
        // counts rows a top-1 heap would drop.
        let sql = "SELECT k, o, rn, s FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o) \
                   AS rn, sum(o) OVER (PARTITION BY k ORDER BY o) AS s FROM t) WHERE rn <= 1 \
                   ORDER BY k";
        assert_eq!(rows(&fast, sql).await, rows(&plain, sql).await);
        assert!(!plan(&fast, sql).await.contains("PartitionedTopKExec"));
    }

    #[tokio::test]
    async fn a_tie_for_first_keeps_one_of_the_tied_rows() {
        let ctx = context(true).await;
        let sql = "SELECT k, o FROM (SELECT k, o, x, row_number() OVER (PARTITION BY k ORDER BY o DESC \
                   NULLS LAST) AS rn FROM t) WHERE rn = 1 ORDER BY k";
        let plain = context(false).await;
        assert_eq!(rows(&ctx, sql).await, rows(&plain, sql).await);
    }

    #[tokio::test]
    async fn equal_to_one_plans_a_top_k_per_key() {
        let ctx = context(true).await;
        let dedupe = "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o DESC) AS rn \
                      FROM t) WHERE rn = 1";
        assert!(
            plan(&ctx, dedupe).await.contains("PartitionedTopKExec"),
            "{}",
            plan(&ctx, dedupe).await
        );
        let projected = "SELECT count(*), sum(o) FROM (SELECT k, o, row_number() OVER (PARTITION BY k \
                         ORDER BY o DESC) AS rn FROM t) WHERE rn = 1";
        assert!(plan(&ctx, projected).await.contains("PartitionedTopKExec"));
        let qualify = "SELECT * FROM t QUALIFY rank() OVER (PARTITION BY k ORDER BY o) = 1";
        assert!(plan(&ctx, qualify).await.contains("PartitionedTopKExec"));
        // Not a ranking function: left alone.
        let other =
            "SELECT * FROM (SELECT *, count(*) OVER (PARTITION BY k) AS n FROM t) WHERE n = 1";
        assert!(!plan(&ctx, other).await.contains("<= Int64(1)"));
    }
}
