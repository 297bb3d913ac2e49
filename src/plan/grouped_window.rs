//! Window functions by hash grouping, for the windows dedupes are made of: ranking functions
//! (`row_number`, `rank`, `dense_rank`) over one `partition by … order by …`, and aggregates
//! over whole partitions of the same keys (`count(*) over (partition by k)`). DataFusion 55
//! sorts every row by key and order, then walks the partitions one by one, slicing every
//! column for each: slow when most keys occur once or twice, as in a dedupe. Here one pass
//! groups the rows by key (DataFusion's own group-by tables), aggregates with its group-by
//! accumulators, and orders only the rows that share a key.
//!
//! Three kinds of output ([`Keep`]): the first row per key (`row_number() = 1`), the rows
//! tied for first (`rank() = 1`), or every row with its window values. For the first two,
//! rows wait in their input batches and are picked at the end; when those hold many more rows
//! than are kept, the kept ones are gathered into one batch and the rest freed.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use arrow::compute::{cast, interleave_record_batch, take};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator, WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::window::PlainAggregateWindowExpr;
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::execution_plan::{Boundedness, CardinalityEffect, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::WindowExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};

/// Which rows come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// One of the rows that sort first per key (`row_number() = 1`).
    First,
    /// Every row that sorts first per key (`rank() = 1`, `dense_rank() = 1`).
    Ties,
    /// Every row.
    All,
}

/// A ranking window function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    RowNumber,
    Rank,
    DenseRank,
}

impl Ranking {
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "row_number" => Some(Self::RowNumber),
            "rank" => Some(Self::Rank),
            "dense_rank" => Some(Self::DenseRank),
            _ => None,
        }
    }
}

/// A window function's value for a row.
#[derive(Debug, Clone)]
pub enum Output {
    /// A ranking function over the keys and order.
    Rank(Ranking),
    /// An aggregate over the whole partition (its frame covers every row of the key).
    Aggregate(Arc<dyn WindowExpr>),
}

impl Output {
    /// The aggregate output of `expr` when it covers whole partitions and DataFusion can
    /// compute it per group.
    pub fn aggregate(expr: &Arc<dyn WindowExpr>) -> Option<Self> {
        let plain = expr.as_any().downcast_ref::<PlainAggregateWindowExpr>()?;
        let aggregate = plain.get_aggregate_expr();
        (whole_partition(expr)
            && !filtered(plain)
            && !aggregate.is_distinct()
            && aggregate.groups_accumulator_supported())
        .then(|| Self::Aggregate(Arc::clone(expr)))
    }
}

/// Whether every row's frame is its whole partition: unbounded on both sides, or, without
/// ORDER BY, up to the current row's peers (all of them).
fn whole_partition(expr: &Arc<dyn WindowExpr>) -> bool {
    let frame = expr.get_window_frame();
    let whole = |bound: &WindowFrameBound| match bound {
        WindowFrameBound::CurrentRow => {
            frame.units == WindowFrameUnits::Range && expr.order_by().is_empty()
        }
        bound => bound.is_unbounded(),
    };
    whole(&frame.start_bound) && whole(&frame.end_bound)
}

/// Whether the aggregate has a `FILTER (WHERE …)`. DataFusion 55 keeps a window aggregate's
/// filter private, so it is read from what it shows: its name (the SQL it was planned from)
/// and its debug form. Either one showing a filter is enough to leave it to DataFusion.
fn filtered(plain: &PlainAggregateWindowExpr) -> bool {
    plain
        .get_aggregate_expr()
        .name()
        .contains(" FILTER (WHERE ")
        || format!("{plain:?}").contains("filter: Some(")
}

/// A window computed by hash grouping; see the module docs.
#[derive(Debug)]
pub struct GroupedWindowExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    order: Option<LexOrdering>,
    keep: Keep,
    outputs: Vec<Output>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl GroupedWindowExec {
    /// `keys` are not empty; `schema` is the window's: the input's columns, then one per
    /// output.
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        order: Option<LexOrdering>,
        keep: Keep,
        outputs: Vec<Output>,
        schema: SchemaRef,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            // The rows of a key stay in the partition they were in.
            input.output_partitioning().clone(),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            keys,
            order,
            keep,
            outputs,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for GroupedWindowExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        let order = self
            .order
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_default();
        let keep = match self.keep {
            Keep::First => "first",
            Keep::Ties => "ties",
            Keep::All => "all",
        };
        write!(
            f,
            "GroupedWindowExec: keys=[{}], order=[{order}], rows={keep}",
            keys.join(", ")
        )
    }
}

impl ExecutionPlan for GroupedWindowExec {
    fn name(&self) -> &str {
        "GroupedWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::KeyPartitioned(self.keys.clone())]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let order = self.order.iter().flat_map(|o| o.iter().map(|s| &s.expr));
        for expr in self.keys.iter().chain(order) {
            if f(expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            self.keys.clone(),
            self.order.clone(),
            self.keep,
            self.outputs.clone(),
            Arc::clone(&self.schema),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let reservation = MemoryConsumer::new(format!("GroupedWindowExec[{partition}]"))
            .register(context.memory_pool());
        let mut state = Grouped::try_new(self, reservation, context.session_config().batch_size())?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let schema = Arc::clone(&self.schema);
        let output = futures::stream::once(async move {
            let mut input = input;
            while let Some(batch) = input.next().await {
                let _timer = metrics.elapsed_compute().timer();
                state.insert(batch?)?;
            }
            let _timer = metrics.elapsed_compute().timer();
            let batches = state.emit()?;
            metrics.record_output(batches.iter().map(RecordBatch::num_rows).sum());
            metrics.done();
            Ok::<_, DataFusionError>(futures::stream::iter(batches.into_iter().map(Ok)))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        match self.keep {
            Keep::All => CardinalityEffect::Equal,
            Keep::First | Keep::Ties => CardinalityEffect::LowerEqual,
        }
    }
}

/// A row of a buffered batch.
#[derive(Debug, Clone, Copy)]
struct At {
    batch: u32,
    row: u32,
}

/// One partition's state.
struct Grouped {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    order: Option<(LexOrdering, RowConverter)>,
    keep: Keep,
    schema: SchemaRef,
    batch_size: usize,
    groups: Box<dyn GroupValues>,
    group_ids: Vec<usize>,
    /// With [`Keep::All`]: every buffered row's group, in input order.
    row_groups: Vec<u32>,
    /// With [`Keep::All`]: the rows per group.
    sizes: Vec<u32>,
    /// Otherwise, per group: the first row so far.
    first: Vec<At>,
    /// With [`Keep::Ties`], per group: the other rows tied with `first`.
    ties: HashMap<usize, Vec<At>>,
    batches: Vec<RecordBatch>,
    /// The ORDER BY values of `batches` (none without ORDER BY), encoded to compare as bytes.
    order_rows: Vec<Rows>,
    buffered_rows: usize,
    columns: Vec<Column>,
    reservation: MemoryReservation,
}

/// How an output column is computed.
enum Column {
    Rank(Ranking),
    Aggregate {
        expr: Arc<dyn WindowExpr>,
        accumulator: Box<dyn GroupsAccumulator>,
    },
}

/// An output column's values, once every row was seen.
enum Values {
    Rank(Ranking),
    /// Per group.
    Aggregate(ArrayRef),
}

impl Grouped {
    fn try_new(
        exec: &GroupedWindowExec,
        reservation: MemoryReservation,
        batch_size: usize,
    ) -> Result<Self> {
        let input = exec.input.schema();
        let key_fields = exec
            .keys
            .iter()
            .map(|k| k.return_field(&input))
            .collect::<Result<Vec<_>>>()?;
        let groups = new_group_values(Arc::new(Schema::new(key_fields)), &GroupOrdering::None)?;
        let order = match &exec.order {
            Some(order) => {
                let fields = order
                    .iter()
                    .map(|s| {
                        Ok(SortField::new_with_options(
                            s.expr.data_type(&input)?,
                            s.options,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some((order.clone(), RowConverter::new(fields)?))
            }
            None => None,
        };
        let columns = exec
            .outputs
            .iter()
            .map(|o| match o {
                Output::Rank(rank) => Ok(Column::Rank(*rank)),
                Output::Aggregate(expr) => Ok(Column::Aggregate {
                    expr: Arc::clone(expr),
                    accumulator: plain(expr)
                        .get_aggregate_expr()
                        .create_groups_accumulator()?,
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            keys: exec.keys.clone(),
            order,
            keep: exec.keep,
            schema: Arc::clone(&exec.schema),
            batch_size: batch_size.max(1),
            groups,
            group_ids: Vec::new(),
            row_groups: Vec::new(),
            sizes: Vec::new(),
            first: Vec::new(),
            ties: HashMap::new(),
            batches: Vec::new(),
            order_rows: Vec::new(),
            buffered_rows: 0,
            columns,
            reservation,
        })
    }

    fn insert(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = evaluate(&self.keys, &batch)?;
        self.groups.intern(&keys, &mut self.group_ids)?;
        self.accumulate(&batch)?;
        let order_rows = match &self.order {
            Some((order, converter)) => {
                let columns = order
                    .iter()
                    .map(|s| s.expr.evaluate(&batch)?.into_array(n))
                    .collect::<Result<Vec<_>>>()?;
                Some(converter.convert_columns(&columns)?)
            }
            None => None,
        };
        match self.keep {
            Keep::All => {
                self.sizes.resize(self.groups.len(), 0);
                for &group in &self.group_ids {
                    self.sizes[group] += 1;
                    self.row_groups.push(group as u32);
                }
            }
            Keep::First | Keep::Ties => self.pick_first(order_rows.as_ref()),
        }
        self.reservation.try_grow(batch.get_array_memory_size())?;
        if let Some(rows) = order_rows {
            self.reservation.try_grow(rows.size())?;
            self.order_rows.push(rows);
        }
        self.buffered_rows += n;
        self.batches.push(batch);
        if self.keep != Keep::All && self.buffered_rows > 2 * self.kept() + 16 * self.batch_size {
            self.compact()?;
        }
        Ok(())
    }

    fn accumulate(&mut self, batch: &RecordBatch) -> Result<()> {
        let total = self.groups.len();
        for column in &mut self.columns {
            let Column::Aggregate { expr, accumulator } = column else {
                continue;
            };
            let values = evaluate(&plain(expr).get_aggregate_expr().expressions(), batch)?;
            accumulator.update_batch(&values, &self.group_ids, None, total)?;
        }
        Ok(())
    }

    /// Updates the first rows per group with the batch about to be buffered.
    fn pick_first(&mut self, order_rows: Option<&Rows>) {
        let current = self.batches.len() as u32;
        for (row, &group) in self.group_ids.iter().enumerate() {
            let at = At {
                batch: current,
                row: row as u32,
            };
            // Group ids are handed out in order, so a key first seen here gets the next one.
            if group == self.first.len() {
                self.first.push(at);
                continue;
            }
            let first = self.first[group];
            let ordering = match order_rows {
                Some(rows) => {
                    let held = if first.batch == current {
                        rows
                    } else {
                        &self.order_rows[first.batch as usize]
                    };
                    rows.row(row).cmp(&held.row(first.row as usize))
                }
                // Without ORDER BY every row of a key ties for first.
                None => Ordering::Equal,
            };
            match (ordering, self.keep) {
                (Ordering::Less, _) => {
                    self.first[group] = at;
                    self.ties.remove(&group);
                }
                (Ordering::Equal, Keep::Ties) => self.ties.entry(group).or_default().push(at),
                _ => {}
            }
        }
    }

    fn kept(&self) -> usize {
        self.first.len() + self.ties.values().map(Vec::len).sum::<usize>()
    }

    /// Every kept row, group by group, with its group.
    fn kept_rows(&self) -> Vec<(usize, At)> {
        let mut rows = Vec::with_capacity(self.kept());
        for (group, &first) in self.first.iter().enumerate() {
            rows.push((group, first));
            if let Some(ties) = self.ties.get(&group) {
                rows.extend(ties.iter().map(|&at| (group, at)));
            }
        }
        rows
    }

    /// The kept rows gathered into one batch, the rest of the buffered rows freed.
    fn compact(&mut self) -> Result<()> {
        let rows = self.kept_rows();
        let batch = self.gather(&rows)?;
        let order_rows = match &self.order {
            Some((_, converter)) => {
                let mut gathered = converter.empty_rows(rows.len(), 0);
                for (_, at) in &rows {
                    gathered.push(self.order_rows[at.batch as usize].row(at.row as usize));
                }
                vec![gathered]
            }
            None => Vec::new(),
        };
        self.ties.clear();
        for (position, &(group, _)) in rows.iter().enumerate() {
            let at = At {
                batch: 0,
                row: position as u32,
            };
            if position == 0 || rows[position - 1].0 != group {
                self.first[group] = at;
            } else {
                self.ties.entry(group).or_default().push(at);
            }
        }
        let order_size = order_rows.iter().map(Rows::size).sum::<usize>();
        self.reservation
            .try_resize(batch.get_array_memory_size() + order_size)?;
        self.buffered_rows = batch.num_rows();
        self.batches = vec![batch];
        self.order_rows = order_rows;
        Ok(())
    }

    fn gather(&self, rows: &[(usize, At)]) -> Result<RecordBatch> {
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        let indices: Vec<(usize, usize)> = rows
            .iter()
            .map(|(_, at)| (at.batch as usize, at.row as usize))
            .collect();
        Ok(interleave_record_batch(&batches, &indices)?)
    }

    /// The output rows with the window functions' values, in batches of the session's size.
    fn emit(mut self) -> Result<Vec<RecordBatch>> {
        let values = std::mem::take(&mut self.columns)
            .into_iter()
            .map(|c| match c {
                Column::Rank(rank) => Ok(Values::Rank(rank)),
                Column::Aggregate {
                    mut accumulator, ..
                } => accumulator.evaluate(EmitTo::All).map(Values::Aggregate),
            })
            .collect::<Result<Vec<_>>>()?;
        if self.keep == Keep::All {
            return self.emit_all(&values);
        }
        let rows = self.kept_rows();
        let mut out = Vec::with_capacity(rows.len().div_ceil(self.batch_size));
        for chunk in rows.chunks(self.batch_size) {
            let batch = self.gather(chunk)?;
            let groups = UInt32Array::from_iter_values(chunk.iter().map(|(g, _)| *g as u32));
            let ones = vec![1; chunk.len()];
            let ranks = [ones.as_slice(), &ones, &ones];
            out.push(self.with_outputs(batch, &groups, ranks, &values)?);
        }
        Ok(out)
    }

    /// Every buffered row, in input order, with its ranks: only rows that share their key
    /// are sorted, by key and order.
    fn emit_all(&self, values: &[Values]) -> Result<Vec<RecordBatch>> {
        let mut starts = Vec::with_capacity(self.batches.len());
        let mut shared = Vec::new();
        let mut index = 0;
        for (batch, rows) in self.batches.iter().enumerate() {
            starts.push(index);
            for row in 0..rows.num_rows() {
                if self.sizes[self.row_groups[index] as usize] > 1 {
                    shared.push((self.row_groups[index], batch as u32, row as u32));
                }
                index += 1;
            }
        }
        // Stable: rows that tie keep their input order, as row_number's tie-break.
        shared.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| self.compare_order(a, b)));
        let total = self.buffered_rows;
        let (mut row_number, mut rank, mut dense) =
            (vec![1; total], vec![1; total], vec![1; total]);
        let mut at_group = 0;
        for (i, entry) in shared.iter().enumerate() {
            let at = starts[entry.1 as usize] + entry.2 as usize;
            let new_group = i == 0 || shared[i - 1].0 != entry.0;
            if new_group {
                at_group = i;
                continue;
            }
            let previous = starts[shared[i - 1].1 as usize] + shared[i - 1].2 as usize;
            row_number[at] = (i - at_group + 1) as u64;
            if self.compare_order(&shared[i - 1], entry) == Ordering::Equal {
                rank[at] = rank[previous];
                dense[at] = dense[previous];
            } else {
                rank[at] = row_number[at];
                dense[at] = dense[previous] + 1;
            }
        }
        let mut out = Vec::with_capacity(self.batches.len());
        for (batch, &start) in self.batches.iter().zip(&starts) {
            let range = start..start + batch.num_rows();
            let groups =
                UInt32Array::from_iter_values(self.row_groups[range.clone()].iter().copied());
            let ranks = [
                &row_number[range.clone()],
                &rank[range.clone()],
                &dense[range],
            ];
            out.push(self.with_outputs(batch.clone(), &groups, ranks, values)?);
        }
        Ok(out)
    }

    fn compare_order(&self, a: &(u32, u32, u32), b: &(u32, u32, u32)) -> Ordering {
        if self.order.is_none() {
            return Ordering::Equal;
        }
        let row = |e: &(u32, u32, u32)| self.order_rows[e.1 as usize].row(e.2 as usize);
        row(a).cmp(&row(b))
    }

    /// `batch` with a column per output: `ranks` are the row_number, rank and dense_rank of
    /// its rows, `groups` their groups, to read the aggregates' `values` at.
    fn with_outputs(
        &self,
        batch: RecordBatch,
        groups: &UInt32Array,
        ranks: [&[u64]; 3],
        values: &[Values],
    ) -> Result<RecordBatch> {
        let mut columns = batch.columns().to_vec();
        let first_output = columns.len();
        for (i, value) in values.iter().enumerate() {
            let field = self.schema.field(first_output + i);
            let column = match value {
                Values::Aggregate(all) => take(all, groups, None)?,
                Values::Rank(rank) => {
                    let values = match rank {
                        Ranking::RowNumber => ranks[0],
                        Ranking::Rank => ranks[1],
                        Ranking::DenseRank => ranks[2],
                    };
                    Arc::new(UInt64Array::from(values.to_vec())) as ArrayRef
                }
            };
            columns.push(if column.data_type() == field.data_type() {
                column
            } else {
                cast(&column, field.data_type())?
            });
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

fn plain(expr: &Arc<dyn WindowExpr>) -> &PlainAggregateWindowExpr {
    expr.as_any()
        .downcast_ref::<PlainAggregateWindowExpr>()
        .expect("Output::Aggregate holds a plain aggregate window expression")
}

fn evaluate(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
        .collect()
}
