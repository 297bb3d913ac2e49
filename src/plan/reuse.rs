//! Raw reads a model's query makes more than once are made once. DataFusion 55 plans every
//! reference to a CTE as its own copy of the CTE's plan, so a model whose CTE over a bronze
//! table is read twice (a self-join, or both sides of a `union all`) decodes the
//! raw files, and parses their text, once per reference. Like DuckDB's CTE materialization,
//! such a repeated subplan is computed once into memory first, and every copy then reads that.
//!
//! Only subplans that read a bronze table qualify: decoding raw text is what repeats at a cost,
//! while a Delta table read twice is read with each reference's own columns and filters. Once a
//! result is held, a subplan that aggregates, joins or windows it and is itself repeated is
//! computed once too (a CTE's repeated keys, aggregated from the held CTE for two joins);
//! one that only filters or projects it streams from memory per reference at little cost. A
//! repeated-keys aggregate over a held result aggregates only the rows whose key hash repeats
//! (see `unique`).
//! Held results share a budget of a quarter of the machine's memory; a subplan that does not
//! fit is left as it was, to be computed once per reference as before.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, TableReference};
use datafusion::datasource::{MemTable, provider_as_source, source_as_provider};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryPool, MemoryReservation,
};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream_partitioned};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::{partitions, unique};
use crate::bronze::table::BronzeTable;
use crate::machine::physical_memory;

/// Memory all held results may take together, across the models running at once.
static BUDGET: LazyLock<Arc<dyn MemoryPool>> =
    LazyLock::new(|| Arc::new(GreedyMemoryPool::new(physical_memory().unwrap_or(0) / 4)));

/// The plan's computed subplans, by the name the plan reads each under, with the memory each
/// holds: keep it as long as the plan is executed.
#[derive(Debug, Default)]
pub struct Held(Vec<(TableReference, Arc<MemoryReservation>)>);

/// `plan` with each subplan that it computes more than once, and that reads raw files (or
/// does costly work on a result computed so), computed now and read from memory by every copy.
/// Its results are those of `plan`.
pub async fn computed_once(ctx: &SessionContext, plan: LogicalPlan) -> Result<(LogicalPlan, Held)> {
    // Analyzed first: only then are the plan's types final (before coercion a CASE has its
    // first branch's type), and the rows held must have the types their readers expect.
    let state = ctx.state();
    let mut plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})?;
    let mut held = Held::default();
    while let Some(repeated) = most_repeated_costly_subplan(&plan, &held) {
        let name = TableReference::bare(format!("__strata_computed_once_{}", held.0.len()));
        // Over rows held in memory, a repeated-keys aggregate runs on the rows that can repeat.
        let narrowed = if reads_held(&repeated, &held) && !reads_bronze(&repeated) {
            unique::only_repeated_rows(ctx, &repeated).await?
        } else {
            None
        };
        let computed = narrowed.as_ref().unwrap_or(&repeated);
        let Some((replacement, reservation)) = compute(ctx, computed, name.clone()).await? else {
            break;
        };
        tracing::debug!("{name}: computed once ({} bytes)", reservation.size());
        held.0.push((name, reservation));
        plan = plan
            .transform_down_with_subqueries(|node| {
                Ok(if node == repeated {
                    Transformed::new(replacement.clone(), true, TreeNodeRecursion::Jump)
                } else {
                    Transformed::no(node)
                })
            })?
            .data;
    }
    Ok((plan, held))
}

/// The subplan to compute once: among those occurring more than once that read a bronze table,
/// or that do costly work on a result in `held`, the most repeated, and of those the largest (a
/// CTE rather than the scan inside it).
fn most_repeated_costly_subplan(plan: &LogicalPlan, held: &Held) -> Option<LogicalPlan> {
    let mut counts: HashMap<LogicalPlan, usize> = HashMap::new();
    plan.apply_with_subqueries(|node| {
        *counts.entry(node.clone()).or_default() += 1;
        Ok(TreeNodeRecursion::Continue)
    })
    .ok()?;
    counts
        .into_iter()
        .filter(|(node, count)| {
            *count > 1
                && (reads_bronze(node) || (reads_held(node, held) && does_costly_work(node)))
                && !node.contains_outer_reference()
        })
        .max_by_key(|(node, count)| (*count, size(node)))
        .map(|(node, _)| node)
}

/// Whether any node of `plan` is one `is` picks.
fn any_node(plan: &LogicalPlan, is: impl Fn(&LogicalPlan) -> bool) -> bool {
    plan.exists(|node| Ok(is(node))).unwrap_or(false)
}

fn reads_bronze(plan: &LogicalPlan) -> bool {
    any_node(plan, |node| {
        matches!(node, LogicalPlan::TableScan(scan)
            if source_as_provider(&scan.source).is_ok_and(|p| p.is::<BronzeTable>()))
    })
}

fn reads_held(plan: &LogicalPlan, held: &Held) -> bool {
    any_node(plan, |node| {
        matches!(node, LogicalPlan::TableScan(scan)
            if held.0.iter().any(|(name, _)| *name == scan.table_name))
    })
}

/// Whether the plan does work that holding its result saves: anything beyond a stream of
/// filtered and projected rows.
fn does_costly_work(plan: &LogicalPlan) -> bool {
    any_node(plan, |node| {
        matches!(
            node,
            LogicalPlan::Aggregate(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::Sort(_)
        )
    })
}

fn size(plan: &LogicalPlan) -> usize {
    let mut nodes = 0;
    let _ = plan.apply(|_| {
        nodes += 1;
        Ok(TreeNodeRecursion::Continue)
    });
    nodes
}

/// Computes `subplan` into memory and returns what reads it back under the same qualified
/// names, or `None` if the result does not fit the budget (or has names a table cannot hold).
async fn compute(
    ctx: &SessionContext,
    subplan: &LogicalPlan,
    name: TableReference,
) -> Result<Option<(LogicalPlan, Arc<MemoryReservation>)>> {
    let schema = Arc::new(subplan.schema().as_arrow().clone());
    let mut names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Ok(None);
    }
    let physical = ctx.state().create_physical_plan(subplan).await?;
    let reservation = Arc::new(MemoryConsumer::new(name.to_string()).register(&BUDGET));
    let Some(partitions) = collect_within(ctx, physical, &reservation).await? else {
        tracing::debug!("{name}: over the memory budget, computed once per reference instead");
        return Ok(None);
    };
    // The batches under the logical plan's schema (its field metadata and nullability), which
    // the plan reading them back was planned against.
    let partitions = partitions
        .into_iter()
        .map(|batches| {
            batches
                .into_iter()
                .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .collect::<std::result::Result<Vec<_>, _>>();
    let Ok(partitions) = partitions else {
        tracing::debug!("{name}: the rows do not match the plan's schema; not reused");
        return Ok(None);
    };
    let table = MemTable::try_new(Arc::clone(&schema), partitions)?;
    let columns: Vec<Expr> = subplan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            Expr::Column(Column::new(Some(name.clone()), field.name()))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let replacement = LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?
        .project(columns)?
        .build()?;
    Ok(Some((replacement, reservation)))
}

/// Every partition's batches, each partition collected on its own task as DataFusion's
/// `collect_partitioned` does; `None` as soon as they outgrow what `reservation` may take.
async fn collect_within(
    ctx: &SessionContext,
    plan: Arc<dyn ExecutionPlan>,
    reservation: &Arc<MemoryReservation>,
) -> Result<Option<Vec<Vec<RecordBatch>>>> {
    let streams = execute_stream_partitioned(plan, ctx.task_ctx())?;
    partitions::each(streams, |mut stream| {
        let reservation = Arc::clone(reservation);
        async move {
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                if reservation.try_grow(batch.get_array_memory_size()).is_err() {
                    return Ok(None);
                }
                batches.push(batch);
            }
            Ok(Some(batches))
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use arrow::util::pretty::pretty_format_batches;

    use super::*;
    use crate::config::Config;
    use crate::lake::Lake;

    /// A session in a fresh project whose lake holds `feed.csv` with `csv`.
    async fn session_over(csv: &str) -> (tempfile::TempDir, std::path::PathBuf, SessionContext) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(dir.path(), None).unwrap();
        let lake = Lake::open(config.lake.clone()).unwrap();
        let feed = dir.path().join("lake/feed.csv");
        std::fs::write(&feed, csv).unwrap();
        let ctx = crate::session::context(&config, &lake).await.unwrap();
        (dir, feed, ctx)
    }

    async fn rows(ctx: &SessionContext, plan: LogicalPlan) -> String {
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn a_repeated_raw_read_is_computed_once_with_the_same_rows() {
        let (_dir, feed, ctx) = session_over("k,v\n1,a\n1,b\n2,c\n,d\n3,e\n").await;
        // The CTE is read three times: twice directly, once in a scalar subquery. Its CASE is
        // an integer until type coercion makes it a double.
        let sql = format!(
            "WITH t AS (SELECT k, upper(v) AS v, CASE WHEN k = 1 THEN 1 ELSE 0.5 END AS w \
                        FROM '{}' WHERE v <> 'e') \
             SELECT t.k, t.v, t.w, r.n, (SELECT count(*) FROM t) AS total \
             FROM (SELECT k, count(*) AS n FROM t GROUP BY k) AS r RIGHT JOIN t ON r.k = t.k \
             ORDER BY t.v",
            feed.display()
        );
        let plan = ctx.state().create_logical_plan(&sql).await.unwrap();
        assert!(reads_bronze(&plan));
        let (once, held) = computed_once(&ctx, plan.clone()).await.unwrap();

        assert!(!reads_bronze(&once), "{once}");
        assert_eq!(held.0.len(), 1);
        // The schema after type coercion, which the optimizer keeps.
        let coerced = ctx.state().optimize(&plan).unwrap();
        assert_eq!(once.schema(), coerced.schema());
        let expected = rows(&ctx, plan).await;
        assert_eq!(rows(&ctx, once).await, expected);
        assert!(
            expected.contains("| 1 | A | 1.0 | 2 | 4     |"),
            "{expected}"
        );
    }

    #[tokio::test]
    async fn an_aggregate_of_a_held_result_read_twice_is_computed_once_too() {
        let (_dir, feed, ctx) = session_over("k,v\n1,a\n1,b\n2,c\n,d\n3,e\n").await;
        // Repeated keys that split the rows by a semi and an anti join.
        let sql = format!(
            "WITH t AS (SELECT k, v FROM '{}'), \
                  r AS (SELECT k FROM t WHERE k IS NOT NULL GROUP BY k HAVING count(*) > 1) \
             SELECT t.k, t.v, 'once' AS seen FROM r RIGHT ANTI JOIN t ON r.k = t.k \
             UNION ALL SELECT t.k, t.v, 'again' FROM r RIGHT SEMI JOIN t ON r.k = t.k \
             ORDER BY v",
            feed.display()
        );
        let plan = ctx.state().create_logical_plan(&sql).await.unwrap();
        let (once, held) = computed_once(&ctx, plan.clone()).await.unwrap();
        assert_eq!(held.0.len(), 2, "{once}");
        let mut aggregates = 0;
        once.apply_with_subqueries(|node| {
            aggregates += usize::from(matches!(node, LogicalPlan::Aggregate(_)));
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        assert_eq!(aggregates, 0, "{once}");
        let expected = rows(&ctx, plan).await;
        assert_eq!(rows(&ctx, once).await, expected);
        assert!(expected.contains("| 1 | b | again |"), "{expected}");
    }

    #[tokio::test]
    async fn a_raw_read_made_once_is_left_alone() {
        let (_dir, feed, ctx) = session_over("k,v\n1,a\n").await;
        let sql = format!(
            "WITH t AS (SELECT * FROM '{}') SELECT k FROM t UNION ALL SELECT 2",
            feed.display()
        );
        let plan = ctx.state().create_logical_plan(&sql).await.unwrap();
        let (same, held) = computed_once(&ctx, plan).await.unwrap();
        assert!(reads_bronze(&same));
        assert!(held.0.is_empty());
    }
}
