//! Key hashes for queries shaped like `unique`: `... group by <keys> having count(*) > 1`.
//!
//! Such a query keeps the key values that occur more than once. DataFusion answers it with a
//! hash aggregate that keeps every key (5M event ids: a table of 5M strings, built after a
//! repartition that hashes each one first). 64-bit hashes of the keys, 8 bytes a row, do much
//! of that work: values that group together hash alike, so a key whose hash occurs once
//! occurs once.
//! - A `unique` test passes when no two hashes are equal. Equal hashes prove nothing (a real
//!   duplicate, or a collision), and then the test's own SQL decides, as it does for every test
//!   of another shape.
//! - A query of that shape over rows held in memory (the keys of a CTE that repeat, to be joined
//!   back to it) needs to aggregate only the rows whose hash occurs more than once: the others are in
//!   groups of one, which its filter drops.

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::datatypes::DataType;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder,
    Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::StreamExt;

use super::partitions;

/// Above this many keys (8 bytes each) the hashes are not taken.
const MAX_KEYS: usize = 64 << 20;

/// Whether the test's `plan` is of the duplicate-key shape and its keys are all distinct.
/// `false` means only that this could not be shown.
pub async fn proven_unique(ctx: &SessionContext, plan: &LogicalPlan) -> Result<bool> {
    let Some((keys, _)) = duplicate_keys(plan)? else {
        return Ok(false);
    };
    let Some(hashes) = sorted_hashes(ctx, keys).await? else {
        return Ok(false);
    };
    Ok(hashes.windows(2).all(|w| w[0] != w[1]))
}

/// `plan`, if it is of the duplicate-key shape, with its aggregate fed only the rows whose key
/// hash occurs more than once: the same result, from a smaller aggregate. Its input is run
/// twice (once for the hashes), so this is for plans over rows already in memory.
pub async fn only_repeated_rows(
    ctx: &SessionContext,
    plan: &LogicalPlan,
) -> Result<Option<LogicalPlan>> {
    let Some((keys, aggregate)) = duplicate_keys(plan)? else {
        return Ok(None);
    };
    let Some(hashes) = sorted_hashes(ctx, keys).await? else {
        return Ok(None);
    };
    let repeated: Vec<u64> = hashes
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() > 1)
        .map(|run| run[0])
        .collect();
    let filter = ScalarUDF::new_from_impl(RepeatedHash {
        signature: Signature::variadic_any(Volatility::Immutable),
        hashes: Arc::new(repeated),
    });
    let input = LogicalPlanBuilder::from(aggregate.input.as_ref().clone())
        .filter(Arc::new(filter).call(aggregate.group_expr.clone()))?
        .build()?;
    let narrowed = LogicalPlan::Aggregate(Aggregate::try_new_with_schema(
        Arc::new(input),
        aggregate.group_expr.clone(),
        aggregate.aggr_expr.clone(),
        Arc::clone(&aggregate.schema),
    )?);
    let rewritten = plan.clone().transform_down(|node| {
        Ok(match &node {
            LogicalPlan::Aggregate(found) if found == aggregate => {
                Transformed::new(narrowed.clone(), true, TreeNodeRecursion::Stop)
            }
            _ => Transformed::no(node),
        })
    })?;
    Ok(Some(rewritten.data))
}

/// The hashes of all the rows of `keys`, sorted; `None` past [`MAX_KEYS`].
async fn sorted_hashes(ctx: &SessionContext, keys: LogicalPlan) -> Result<Option<Vec<u64>>> {
    let streams = ctx
        .execute_logical_plan(keys)
        .await?
        .execute_stream_partitioned()
        .await?;
    let Some(parts) = partitions::each(streams, hashes).await? else {
        return Ok(None);
    };
    if parts.iter().map(Vec::len).sum::<usize>() > MAX_KEYS {
        return Ok(None);
    }
    let mut all = parts.concat();
    all.sort_unstable();
    Ok(Some(all))
}

/// The hashes of one partition's keys; `None` past [`MAX_KEYS`].
async fn hashes(mut stream: SendableRecordBatchStream) -> Result<Option<Vec<u64>>> {
    let state = RandomState::default();
    let mut out = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if out.len() + batch.num_rows() > MAX_KEYS {
            return Ok(None);
        }
        let start = out.len();
        out.resize(start + batch.num_rows(), 0);
        create_hashes(batch.columns(), &state, &mut out[start..])?;
    }
    Ok(Some(out))
}

/// The plan of the grouped keys, and the aggregate, when `plan` keeps the groups of its
/// aggregate that occur more than once (a filter `count(*) > 1` right above it, under
/// projections and aliases only).
fn duplicate_keys(plan: &LogicalPlan) -> Result<Option<(LogicalPlan, &Aggregate)>> {
    let mut node = plan;
    loop {
        node = match node {
            LogicalPlan::Projection(p) => &p.input,
            LogicalPlan::SubqueryAlias(a) => &a.input,
            _ => break,
        };
    }
    let LogicalPlan::Filter(filter) = node else {
        return Ok(None);
    };
    let LogicalPlan::Aggregate(aggregate) = filter.input.as_ref() else {
        return Ok(None);
    };
    if !counts_above_one(&filter.predicate, aggregate) || !keys_compare_bytewise(aggregate) {
        return Ok(None);
    }
    let keys = LogicalPlanBuilder::from(aggregate.input.as_ref().clone())
        .project(aggregate.group_expr.clone())?
        .build()?;
    Ok(Some((keys, aggregate)))
}

/// `predicate` is `<count of rows> > 1` over `aggregate`'s output.
fn counts_above_one(predicate: &Expr, aggregate: &Aggregate) -> bool {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Gt,
        right,
    }) = predicate
    else {
        return false;
    };
    let (Expr::Column(column), Expr::Literal(bound, _)) = (left.as_ref(), right.as_ref()) else {
        return false;
    };
    if !matches!(bound, ScalarValue::Int64(Some(1))) {
        return false;
    }
    let Ok(index) = aggregate.schema.index_of_column(column) else {
        return false;
    };
    let Some(counted) = index
        .checked_sub(aggregate.group_expr.len())
        .and_then(|i| aggregate.aggr_expr.get(i))
    else {
        return false;
    };
    match counted.clone().unalias() {
        Expr::AggregateFunction(f) => {
            f.func.name() == "count"
                && !f.params.distinct
                && f.params.filter.is_none()
                && matches!(f.params.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
        }
        _ => false,
    }
}

/// Every key is a plain expression of a type whose equal values are equal bytes (so they hash
/// alike); floats (NaN, -0) and nested types are left to the SQL.
fn keys_compare_bytewise(aggregate: &Aggregate) -> bool {
    let input = aggregate.input.schema();
    !aggregate.group_expr.is_empty()
        && aggregate.group_expr.iter().all(|e| {
            !matches!(e, Expr::GroupingSet(_))
                && e.get_type(input).is_ok_and(|t| {
                    t.is_integer()
                        || matches!(
                            t,
                            DataType::Utf8
                                | DataType::LargeUtf8
                                | DataType::Utf8View
                                | DataType::Binary
                                | DataType::LargeBinary
                                | DataType::BinaryView
                                | DataType::Boolean
                                | DataType::Date32
                                | DataType::Date64
                                | DataType::Timestamp(_, _)
                                | DataType::Decimal128(_, _)
                                | DataType::Decimal256(_, _)
                        )
                })
        })
}

/// `strata_repeated_key_hash(keys...)`: whether the keys' hash is one of `hashes` (sorted).
#[derive(Debug, PartialEq, Eq, Hash)]
struct RepeatedHash {
    signature: Signature,
    hashes: Arc<Vec<u64>>,
}

impl ScalarUDFImpl for RepeatedHash {
    fn name(&self) -> &str {
        "strata_repeated_key_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let keys = ColumnarValue::values_to_arrays(&args.args)?;
        let mut hashes = vec![0; args.number_rows];
        create_hashes(&keys, &RandomState::default(), &mut hashes)?;
        let repeated = hashes.iter().map(|h| self.hashes.binary_search(h).is_ok());
        Ok(ColumnarValue::Array(Arc::new(
            repeated.map(Some).collect::<BooleanArray>(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::col;

    const UNIQUE: &str = "select k as unique_field, count(*) as n_records from t \
                          where k is not null group by k having count(*) > 1";

    /// `t(k, j, f)` from `k`, split over three partitions.
    fn context(k: &[Option<&str>]) -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("j", DataType::Int64, false),
            Field::new("f", DataType::Float64, false),
        ]));
        let partitions = k
            .chunks(k.len().div_ceil(3))
            .map(|part| {
                let batch = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(StringArray::from(part.to_vec())),
                        Arc::new(Int64Array::from_iter_values(
                            (0..part.len() as i64).map(|i| i % 2),
                        )),
                        Arc::new(Float64Array::from_iter_values(
                            (0..part.len()).map(|i| i as f64),
                        )),
                    ],
                )
                .unwrap();
                vec![batch]
            })
            .collect();
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema, partitions).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    /// Whether the test `sql` is proven, planned as `run_test` plans it.
    async fn proven(ctx: &SessionContext, sql: &str) -> Result<bool> {
        let plan = ctx.state().create_logical_plan(sql).await?;
        proven_unique(ctx, &plan).await
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("key-{i}")).collect()
    }

    #[tokio::test]
    async fn distinct_keys_are_proven_across_partitions() {
        let owned = keys(1000);
        let mut k: Vec<Option<&str>> = owned.iter().map(|s| Some(s.as_str())).collect();
        k.push(None);
        k.push(None);
        assert!(proven(&context(&k), UNIQUE).await.unwrap());
    }

    #[tokio::test]
    async fn a_repeated_key_in_another_partition_is_not_proven() {
        let owned = keys(1000);
        let mut k: Vec<Option<&str>> = owned.iter().map(|s| Some(s.as_str())).collect();
        k.push(Some("key-3"));
        assert!(!proven(&context(&k), UNIQUE).await.unwrap());
    }

    #[tokio::test]
    async fn nulls_kept_in_the_groups_form_one_repeated_group() {
        let k = [Some("a"), None, Some("b"), None];
        let sql = "select k, count(*) from t group by k having count(*) > 1";
        assert!(!proven(&context(&k), sql).await.unwrap());
    }

    #[tokio::test]
    async fn composite_keys_are_proven_by_their_combination() {
        // k repeats, but never with the same j.
        let k = [
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
            Some("c"),
            Some("c"),
        ];
        let sql = "select k, j from t group by k, j having count(*) > 1";
        assert!(proven(&context(&k), sql).await.unwrap());
        let sql = "select k from t group by k having count(*) > 1";
        assert!(!proven(&context(&k), sql).await.unwrap());
    }

    #[tokio::test]
    async fn other_shapes_and_float_keys_are_left_to_the_sql() {
        let owned = keys(10);
        let k: Vec<Option<&str>> = owned.iter().map(|s| Some(s.as_str())).collect();
        let ctx = context(&k);
        for sql in [
            "select k from t where k is null",
            "select k from t group by k having count(*) > 2",
            "select k from t group by k having count(j) > 1",
            "select k from t group by k having count(distinct j) > 1",
            "select f from t group by f having count(*) > 1",
            "select k, count(*) from t group by k",
        ] {
            assert!(!proven(&ctx, sql).await.unwrap(), "{sql}");
        }
    }

    /// The rows of `plan`, by `k`.
    async fn rows_by_k(ctx: &SessionContext, plan: LogicalPlan) -> String {
        let sorted = ctx.execute_logical_plan(plan).await.unwrap();
        let sorted = sorted.sort(vec![col("k").sort(true, true)]).unwrap();
        let batches = sorted.collect().await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn only_rows_whose_key_hash_repeats_are_aggregated_for_the_same_result() {
        let owned = keys(1000);
        let mut k: Vec<Option<&str>> = owned.iter().map(|s| Some(s.as_str())).collect();
        k.extend([Some("key-3"), Some("key-3"), Some("key-999"), None, None]);
        let ctx = context(&k);
        let sql = "select k, count(*) as n, sum(j) as s from t where k is not null \
                   group by k having count(*) > 1";
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let narrowed = only_repeated_rows(&ctx, &plan).await.unwrap().unwrap();
        assert!(
            narrowed
                .display_indent()
                .to_string()
                .contains("strata_repeated_key_hash"),
            "{narrowed}"
        );
        let expected = rows_by_k(&ctx, plan).await;
        assert!(expected.contains("| key-3   | 3 |"), "{expected}");
        assert!(expected.contains("| key-999 | 2 |"), "{expected}");
        assert_eq!(rows_by_k(&ctx, narrowed).await, expected);

        let other = ctx
            .state()
            .create_logical_plan("select k, count(*) from t group by k")
            .await
            .unwrap();
        assert!(only_repeated_rows(&ctx, &other).await.unwrap().is_none());
    }
}
