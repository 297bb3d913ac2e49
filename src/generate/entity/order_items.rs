//! order_items: Parquet, written with Arrow in bounded row groups. The format cannot hold a
//! malformed record, and its dirt is in the values: missing products, negative quantities,
//! discounts entered as percentages. Drift widens `quantity` and `unit_price`.

use std::io;
use std::ops::RangeInclusive;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use indicatif::ProgressBar;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand_chacha::ChaCha8Rng;

use crate::generate::dirt::{Sink, Table, Tally, chance, maybe, pump};
use crate::generate::facts;
use crate::generate::manifest::DirtCounts;
use crate::generate::output::{OutFile, Written};
use crate::generate::plan::Plan;

const COLUMNS: &[&str] = &[
    "order_id",
    "line_no",
    "product_id",
    "quantity",
    "unit_price",
    "discount",
];
/// Rows per Arrow batch handed to the writer.
const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group, which bounds the writer's memory.
const ROW_GROUP_ROWS: usize = 65_536;

struct OrderItems<'p> {
    plan: &'p Plan,
    batch: u32,
    orders: RangeInclusive<u64>,
    /// The order being expanded and its number of lines.
    order: Option<(u64, u32)>,
    next_line: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum OutOfRange {
    NegativeQuantity,
    /// `15` where the schema means `0.15`.
    PercentDiscount,
}

#[derive(Clone, Copy)]
struct Row {
    order_id: u64,
    line_no: u32,
    product_id: Option<u64>,
    quantity: i64,
    unit_price_cents: i64,
    discount_pct: i64,
    out_of_range: Option<OutOfRange>,
}

impl Table for OrderItems<'_> {
    type Row = Row;

    fn columns(&self) -> &'static [&'static str] {
        COLUMNS
    }

    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Row> {
        let (order_id, lines) = match self.order {
            Some((id, lines)) if self.next_line <= lines => (id, lines),
            _ => {
                let id = self.orders.next()?;
                let lines = facts::order(self.plan, id, self.batch).lines;
                self.next_line = 1;
                (id, lines)
            }
        };
        self.order = Some((order_id, lines));
        let line_no = self.next_line;
        self.next_line += 1;
        let line = facts::line(self.plan, order_id, line_no, self.batch);
        let rates = &self.plan.rates;
        let out_of_range = maybe(
            rng,
            rates.out_of_range,
            &[OutOfRange::NegativeQuantity, OutOfRange::PercentDiscount],
        );
        Some(Row {
            order_id,
            line_no,
            product_id: (!chance(rng, rates.null)).then_some(line.product_id),
            quantity: match out_of_range {
                Some(OutOfRange::NegativeQuantity) => -line.quantity,
                _ => line.quantity,
            },
            unit_price_cents: line.unit_price_cents,
            discount_pct: match out_of_range {
                // Never 0, which would read the same either way.
                Some(OutOfRange::PercentDiscount) => line.discount_pct.max(10),
                _ => line.discount_pct,
            },
            out_of_range,
        })
    }

    fn nudge(&self, row: &mut Row, _rng: &mut ChaCha8Rng) {
        // The line re-sent after the customer changed the quantity.
        row.quantity += 1;
    }
}

/// Writes the order lines of `batch` to `out`.
pub(super) fn write(
    plan: &Plan,
    batch: u32,
    out: OutFile,
    rng: &mut ChaCha8Rng,
    progress: &ProgressBar,
) -> io::Result<(Tally, Written)> {
    let mut table = OrderItems {
        plan,
        batch,
        orders: plan.orders.new_in(batch),
        order: None,
        next_line: 1,
    };
    let wide = plan.drifted(batch);
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("line_no", DataType::Int32, false),
        Field::new("product_id", DataType::Int64, true),
        Field::new(
            "quantity",
            if wide {
                DataType::Int64
            } else {
                DataType::Int32
            },
            false,
        ),
        Field::new(
            "unit_price",
            if wide {
                DataType::Float64
            } else {
                DataType::Float32
            },
            false,
        ),
        Field::new("discount", DataType::Float64, false),
    ]));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let writer =
        ArrowWriter::try_new(out, schema.clone(), Some(properties)).map_err(io::Error::other)?;
    let mut sink = ParquetSink {
        writer,
        schema,
        wide,
        columns: Columns::default(),
    };
    let tally = pump(&mut table, &mut sink, rng, &plan.rates, progress)?;
    sink.flush()?;
    let out = sink.writer.into_inner().map_err(io::Error::other)?;
    Ok((tally, out.finish()?))
}

/// Arrow batches on their way to the Parquet writer.
struct ParquetSink {
    writer: ArrowWriter<OutFile>,
    schema: SchemaRef,
    /// Whether `quantity` and `unit_price` use the drifted, wider types.
    wide: bool,
    columns: Columns,
}

#[derive(Default)]
struct Columns {
    order_id: Vec<i64>,
    line_no: Vec<i32>,
    product_id: Vec<Option<i64>>,
    quantity: Vec<i64>,
    unit_price: Vec<f64>,
    discount: Vec<f64>,
}

impl ParquetSink {
    fn flush(&mut self) -> io::Result<()> {
        if self.columns.order_id.is_empty() {
            return Ok(());
        }
        let c = std::mem::take(&mut self.columns);
        let (quantity, unit_price): (ArrayRef, ArrayRef) = if self.wide {
            (
                Arc::new(Int64Array::from(c.quantity)),
                Arc::new(Float64Array::from(c.unit_price)),
            )
        } else {
            (
                Arc::new(Int32Array::from_iter_values(
                    c.quantity.iter().map(|&q| q as i32),
                )),
                Arc::new(Float32Array::from_iter_values(
                    c.unit_price.iter().map(|&p| p as f32),
                )),
            )
        };
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(Int64Array::from(c.order_id)),
                Arc::new(Int32Array::from(c.line_no)),
                Arc::new(Int64Array::from(c.product_id)),
                quantity,
                unit_price,
                Arc::new(Float64Array::from(c.discount)),
            ],
        )
        .map_err(io::Error::other)?;
        self.writer.write(&batch).map_err(io::Error::other)
    }
}

impl Sink<OrderItems<'_>> for ParquetSink {
    fn write(&mut self, _table: &OrderItems, row: &Row, dirt: &mut DirtCounts) -> io::Result<()> {
        let c = &mut self.columns;
        c.order_id.push(row.order_id as i64);
        c.line_no.push(row.line_no as i32);
        c.product_id.push(row.product_id.map(|id| id as i64));
        c.quantity.push(row.quantity);
        c.unit_price.push(row.unit_price_cents as f64 / 100.0);
        c.discount.push(match row.out_of_range {
            Some(OutOfRange::PercentDiscount) => row.discount_pct as f64,
            _ => row.discount_pct as f64 / 100.0,
        });
        dirt.null_required += u64::from(row.product_id.is_none());
        dirt.out_of_range += u64::from(row.out_of_range.is_some());
        if c.order_id.len() == BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn can_malform(&self) -> bool {
        false
    }

    fn write_malformed(&mut self, _: &OrderItems, _: &Row, _: &mut ChaCha8Rng) -> io::Result<()> {
        unreachable!("Parquet files hold no malformed records")
    }
}
