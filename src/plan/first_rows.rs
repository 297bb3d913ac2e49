//! Windows as dedupes use them, without sorting everything. [`GroupedWindowExec`] computes
//! ranking functions over one `partition by … order by …` and aggregates over whole
//! partitions of the same keys by hash grouping; filtered to the first row per key
//! (`row_number() = 1`, or `rank()`), it keeps only those. The first `n > 1` rows come from a
//! heap of the best `n` per key, DataFusion's per-partition top-K (`WindowTopN`,
//! `PartitionedTopKExec`).
//!
//! Two rules make that apply to SQL as users write it, and only where it is exact:
//! - [`FirstRows`] (logical) turns `rank = 1` (in a `WHERE` over a subquery, or in `QUALIFY`)
//!   into `rank <= 1`, the shape `WindowTopN` recognizes; the two agree on every row, since a
//!   rank is never below 1.
//! - [`GuardedWindowTopN`] (physical) plans `rank <= 1` over windows [`GroupedWindowExec`] can
//!   compute as one that keeps the first rows; then runs `WindowTopN` in place of DataFusion's
//!   own (which DataFusion 55 ships switched off), keeping its result only where every
//!   function of the window it feeds is a ranking one over the same keys and order
//!   (DataFusion's rule also fires when that window computes, say, a running `sum` beside the
//!   `row_number`, whose value then misses the rows the heap dropped); then plans the
//!   remaining windows [`GroupedWindowExec`] can compute, unless their input comes sorted.

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
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_expr::expressions::{BinaryExpr as PhysicalBinary, Literal};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::window_topn::WindowTopN;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::partitioned_topk::PartitionedTopKExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use super::grouped_window::{GroupedWindowExec, Keep, Output, Ranking};

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
        if !plan.exists(|node| Ok(is_window(node)))? {
            return Ok(plan);
        }
        let mut enabled = config.clone();
        enabled.optimizer.enable_window_topn = true;
        let first = plan
            .transform_up(filter_on_window)?
            .data
            .transform_up(first_rows)?
            .data;
        let rewritten = WindowTopN::new().optimize(Arc::clone(&first), &enabled)?;
        let chosen = if exact(&rewritten)? { rewritten } else { first };
        Ok(chosen.transform_down(whole_windows)?.data)
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
    if above.is_empty() || !is_window(&input) {
        return Ok(Transformed::no(node));
    }
    let mut plan: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(predicate, input)?);
    for projection in above.into_iter().rev() {
        plan = Arc::new(ProjectionExec::try_new(projection, plan)?);
    }
    Ok(Transformed::yes(plan))
}

fn is_window(node: &Arc<dyn ExecutionPlan>) -> bool {
    node.downcast_ref::<BoundedWindowAggExec>().is_some()
        || node.downcast_ref::<WindowAggExec>().is_some()
}

/// The functions of the stack of windows at `node`, in output order (the bottom window's
/// first), and what the stack reads.
fn window_stack(
    node: &Arc<dyn ExecutionPlan>,
) -> (Vec<&Arc<dyn WindowExpr>>, &Arc<dyn ExecutionPlan>) {
    let mut stack: Vec<&[Arc<dyn WindowExpr>]> = Vec::new();
    let mut input = node;
    loop {
        if let Some(window) = input.downcast_ref::<BoundedWindowAggExec>() {
            stack.push(window.window_expr());
            input = window.input();
        } else if let Some(window) = input.downcast_ref::<WindowAggExec>() {
            stack.push(window.window_expr());
            input = window.input();
        } else {
            break;
        }
    }
    (stack.iter().rev().flat_map(|w| w.iter()).collect(), input)
}

/// What [`GroupedWindowExec`] computes for `exprs`, if it can: each a ranking function over
/// `keys` and `order`, or an aggregate over whole partitions of `keys`.
fn grouped_outputs(
    exprs: &[&Arc<dyn WindowExpr>],
    keys: &[Arc<dyn PhysicalExpr>],
    order: &[PhysicalSortExpr],
    keep: Keep,
) -> Option<Vec<Output>> {
    exprs
        .iter()
        .map(|&e| {
            let same_keys = e.partition_by().len() == keys.len()
                && e.partition_by()
                    .iter()
                    .zip(keys)
                    .all(|(a, b)| a.as_ref() == b.as_ref());
            if !same_keys {
                return None;
            }
            match ranking_name(e).and_then(Ranking::named) {
                // Among rows tied for first, row_number still counts 1, 2, 3.
                Some(Ranking::RowNumber) if keep == Keep::Ties => None,
                Some(rank) => (e.order_by() == order).then_some(Output::Rank(rank)),
                None => Output::aggregate(e),
            }
        })
        .collect()
}

/// A filter reading `rank <= 1` right off a stack of windows, as a [`GroupedWindowExec`] that
/// keeps the first rows per key (under a filter of the predicate's other conjuncts, if any).
fn first_rows(node: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    let Some(filter) = node.downcast_ref::<FilterExec>() else {
        return Ok(Transformed::no(node));
    };
    if filter.projection().is_some() {
        return Ok(Transformed::no(node));
    }
    let (exprs, input) = window_stack(filter.input());
    let first_output = input.schema().fields().len();
    let conjuncts = split_conjunction(filter.predicate());
    let Some((at, chosen, rank)) = conjuncts.iter().enumerate().find_map(|(at, c)| {
        let expr = *exprs.get(first_rank(c)?.checked_sub(first_output)?)?;
        Some((at, expr, ranking_name(expr).and_then(Ranking::named)?))
    }) else {
        return Ok(Transformed::no(node));
    };
    let keep = match rank {
        Ranking::RowNumber => Keep::First,
        Ranking::Rank | Ranking::DenseRank => Keep::Ties,
    };
    let (keys, order) = (chosen.partition_by(), chosen.order_by());
    // Without keys it is one global first row: a sort's top-K does that.
    if keys.is_empty() {
        return Ok(Transformed::no(node));
    }
    let Some(outputs) = grouped_outputs(&exprs, keys, order, keep) else {
        return Ok(Transformed::no(node));
    };
    let grouped: Arc<dyn ExecutionPlan> = Arc::new(GroupedWindowExec::new(
        Arc::clone(input),
        keys.to_vec(),
        LexOrdering::new(order.to_vec()),
        keep,
        outputs,
        filter.input().schema(),
    ));
    let rest: Vec<_> = conjuncts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, c)| Arc::clone(c))
        .collect();
    Ok(Transformed::yes(if rest.is_empty() {
        grouped
    } else {
        Arc::new(FilterExec::try_new(conjunction(rest), grouped)?)
    }))
}

/// A stack of windows [`GroupedWindowExec`] can compute for every row, as one, unless its
/// input already comes sorted as the windows need (then they stream).
fn whole_windows(node: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if !is_window(&node) {
        return Ok(Transformed::no(node));
    }
    let (exprs, input) = window_stack(&node);
    let ranked = exprs
        .iter()
        .find(|e| ranking_name(e).and_then(Ranking::named).is_some())
        .unwrap_or(&exprs[0]);
    let (keys, order) = (ranked.partition_by(), ranked.order_by());
    if keys.is_empty() {
        return Ok(Transformed::no(node));
    }
    let Some(outputs) = grouped_outputs(&exprs, keys, order, Keep::All) else {
        return Ok(Transformed::no(node));
    };
    let sorted = keys
        .iter()
        .map(|k| PhysicalSortExpr::new_default(Arc::clone(k)))
        .chain(order.iter().cloned());
    if input.equivalence_properties().ordering_satisfy(sorted)? {
        return Ok(Transformed::no(node));
    }
    Ok(Transformed::yes(Arc::new(GroupedWindowExec::new(
        Arc::clone(input),
        keys.to_vec(),
        LexOrdering::new(order.to_vec()),
        Keep::All,
        outputs,
        node.schema(),
    ))))
}

/// The column index of `rank` in `rank <= 1`, `rank = 1`, `1 >= rank` or `1 = rank`.
fn first_rank(predicate: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    let binary = predicate.downcast_ref::<PhysicalBinary>()?;
    let index = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<PhysicalColumn>()
            .map(PhysicalColumn::index)
    };
    let one = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Literal>().is_some_and(|l| {
            let value = l.value();
            value.data_type().is_integer()
                && value.cast_to(&DataType::Int64).ok() == Some(ScalarValue::Int64(Some(1)))
        })
    };
    match binary.op() {
        Operator::LtEq | Operator::Eq if one(binary.right()) => index(binary.left()),
        Operator::GtEq | Operator::Eq if one(binary.left()) => index(binary.right()),
        _ => None,
    }
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
    async fn equal_to_one_plans_the_first_row_per_key() {
        let ctx = context(true).await;
        let dedupe = "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o DESC) AS rn \
                      FROM t) WHERE rn = 1";
        assert!(
            plan(&ctx, dedupe).await.contains("GroupedWindowExec"),
            "{}",
            plan(&ctx, dedupe).await
        );
        let projected = "SELECT count(*), sum(o) FROM (SELECT k, o, row_number() OVER (PARTITION BY k \
                         ORDER BY o DESC) AS rn FROM t) WHERE rn = 1";
        assert!(plan(&ctx, projected).await.contains("GroupedWindowExec"));
        let qualify = "SELECT * FROM t QUALIFY rank() OVER (PARTITION BY k ORDER BY o) = 1";
        assert!(plan(&ctx, qualify).await.contains("rows=ties"));
        let counted = "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o) AS rn, \
                       count(*) OVER (PARTITION BY k) AS n FROM t) WHERE rn = 1";
        assert!(plan(&ctx, counted).await.contains("GroupedWindowExec"));
        // More than the first: the per-key heap.
        let top2 = "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY k ORDER BY o) <= 2";
        assert!(plan(&ctx, top2).await.contains("PartitionedTopKExec"));
        // A running sum's first value depends on the rows tied with the first: the plain window.
        let running = "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o) AS rn, \
                       sum(o) OVER (PARTITION BY k ORDER BY o) AS s FROM t) WHERE rn = 1";
        assert!(!plan(&ctx, running).await.contains("GroupedWindowExec"));
        // Not a ranking function: every row's count, then the filter.
        let other =
            "SELECT * FROM (SELECT *, count(*) OVER (PARTITION BY k) AS n FROM t) WHERE n = 1";
        assert!(!plan(&ctx, other).await.contains("<= Int64(1)"));
        assert!(plan(&ctx, other).await.contains("rows=all"));
    }

    /// Window aggregates over the whole partition beside the ranking, and filters on them.
    const WITH_AGGREGATES: [&str; 5] = [
        "SELECT k, o, n FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o DESC NULLS \
         LAST, x) AS rn, count(*) OVER (PARTITION BY k) AS n FROM t) WHERE rn = 1 ORDER BY k",
        "SELECT k, x, n, s, lo FROM (SELECT *, rank() OVER (PARTITION BY k ORDER BY o) AS r, \
         count(o) OVER (PARTITION BY k) AS n, sum(o) OVER (PARTITION BY k) AS s, min(x) OVER \
         (PARTITION BY k) AS lo FROM t) WHERE r = 1 ORDER BY k, x",
        "SELECT k, x FROM t QUALIFY dense_rank() OVER (PARTITION BY k ORDER BY o DESC) = 1 \
         AND count(*) FILTER (WHERE o > 5) OVER (PARTITION BY k) >= 0 ORDER BY k, x",
        "SELECT k, x, n FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o, x) AS rn, \
         count(*) OVER (PARTITION BY k) AS n FROM t) WHERE rn = 1 AND n > 1 ORDER BY k",
        "SELECT k, x FROM t QUALIFY row_number() OVER (ORDER BY o DESC NULLS LAST, x) = 1",
    ];

    #[tokio::test]
    async fn first_rows_with_aggregates_equal_the_plain_window() {
        let (plain, fast) = (context(false).await, context(true).await);
        for sql in WITH_AGGREGATES {
            assert_eq!(rows(&fast, sql).await, rows(&plain, sql).await, "{sql}");
        }
    }

    /// Enough rows, in batches small enough, that the kept rows are gathered several times.
    #[tokio::test]
    async fn first_rows_survive_gathering_the_kept_rows() {
        let contexts = [context(false).await, context(true).await];
        let mut answers = Vec::new();
        for ctx in &contexts {
            ctx.sql("SET datafusion.execution.batch_size = 64")
                .await
                .unwrap();
            ctx.sql(
                "CREATE TABLE many AS SELECT value % 997 AS k, (value * 7919) % 10007 AS o, value AS x \
                 FROM generate_series(1, 200000)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
            let sql = "SELECT count(*), sum(k), sum(o), sum(x), sum(n) FROM (SELECT *, row_number() \
                       OVER (PARTITION BY k ORDER BY o DESC, x) AS rn, count(*) OVER (PARTITION BY k) \
                       AS n FROM many) WHERE rn = 1";
            answers.push(rows(ctx, sql).await);
        }
        assert_eq!(answers[0], answers[1]);
    }

    /// Unfiltered windows computed for every row.
    const WHOLE: [&str; 4] = [
        "SELECT k, o, x, row_number() OVER w AS rn, rank() OVER w AS r, dense_rank() OVER w AS d, \
         count(*) OVER (PARTITION BY k) AS n FROM t WINDOW w AS (PARTITION BY k ORDER BY o DESC \
         NULLS LAST, x) ORDER BY k, x",
        "SELECT k, x, rank() OVER (PARTITION BY k ORDER BY o) AS r, dense_rank() OVER (PARTITION BY \
         k ORDER BY o) AS d FROM t ORDER BY k, x",
        "SELECT k, x, count(*) OVER (PARTITION BY k) AS n, sum(o) OVER (PARTITION BY k) AS s, \
         max(x) OVER (PARTITION BY k) AS hi FROM t ORDER BY k, x",
        "SELECT k, x, rn FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY x DESC) AS rn \
         FROM t) WHERE rn = 2 ORDER BY k",
    ];

    #[tokio::test]
    async fn whole_windows_equal_the_plain_window() {
        let (plain, fast) = (context(false).await, context(true).await);
        for sql in WHOLE {
            assert_eq!(rows(&fast, sql).await, rows(&plain, sql).await, "{sql}");
            assert!(
                plan(&fast, sql).await.contains("rows=all"),
                "{}",
                plan(&fast, sql).await
            );
        }
        // lag reads another row of the partition: the plain window.
        let lag = "SELECT k, x, lag(x) OVER (PARTITION BY k ORDER BY x) FROM t ORDER BY k, x";
        assert_eq!(rows(&fast, lag).await, rows(&plain, lag).await);
        assert!(!plan(&fast, lag).await.contains("GroupedWindowExec"));
    }

    #[tokio::test]
    async fn whole_windows_over_many_keys_equal_the_plain_window() {
        let contexts = [context(false).await, context(true).await];
        let mut answers = Vec::new();
        for ctx in &contexts {
            ctx.sql("SET datafusion.execution.batch_size = 100")
                .await
                .unwrap();
            ctx.sql(
                "CREATE TABLE many AS SELECT CASE WHEN value % 13 = 0 THEN NULL ELSE value % 5003 END \
                 AS k, (value * 7919) % 101 AS o, value AS x FROM generate_series(1, 50000)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
            let sql = "SELECT count(*), sum(rn * x), sum(r * x), sum(d * x), sum(n) FROM (SELECT *, \
                       row_number() OVER (PARTITION BY k ORDER BY o, x) AS rn, rank() OVER \
                       (PARTITION BY k ORDER BY o, x) AS r, dense_rank() OVER (PARTITION BY k \
                       ORDER BY o, x) AS d, count(*) OVER (PARTITION BY k) AS n FROM many)";
            answers.push(rows(ctx, sql).await);
        }
        assert_eq!(answers[0], answers[1]);
    }
}
