//! The streaming decoder: framer → row parser → typed values → Arrow batches.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, LargeStringBuilder,
    NullArray, PrimitiveArray, StringBuilder, StringViewBuilder,
};
use arrow::datatypes::{
    DataType, Field, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::frame::{Framer, Sink, rejected};
use super::row::RowParser;
use crate::bronze::decode::{Decoded, RawDecoder, Rejected};
use crate::bronze::formats::values::{
    Dialect, micros_to, misfit_reason, parse_bool, parse_date32, parse_f64, parse_i64,
    parse_timestamp_micros, quoted,
};

pub(super) struct XmlDecoder {
    framer: Framer,
    sink: BatchSink,
}

impl XmlDecoder {
    pub(super) fn new(tag: &str, separator: &str, schema: SchemaRef, batch_size: usize) -> Self {
        Self {
            framer: Framer::new(tag),
            sink: BatchSink::new(separator, schema, batch_size),
        }
    }

    fn take(&mut self) -> Result<Decoded, ArrowError> {
        if let Some(error) = self.sink.error.take() {
            return Err(error);
        }
        Ok(std::mem::take(&mut self.sink.out))
    }
}

impl RawDecoder for XmlDecoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Decoded, ArrowError> {
        if self.sink.error.is_none() {
            self.framer.push(chunk, &mut self.sink);
        }
        self.take()
    }

    fn finish(&mut self) -> Result<Decoded, ArrowError> {
        if self.sink.error.is_none() {
            self.framer.finish(&mut self.sink);
            self.sink.flush();
        }
        self.take()
    }
}

/// One output column being built.
enum Column {
    Null,
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Date32(Date32Builder),
    /// Values in `unit` since the epoch (UTC), typed at the end.
    Timestamp(TimeUnit, Option<Arc<str>>, Int64Builder),
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    Utf8View(StringViewBuilder),
}

impl Column {
    fn new(data_type: &DataType) -> Option<Self> {
        Some(match data_type {
            DataType::Null => Column::Null,
            DataType::Boolean => Column::Boolean(BooleanBuilder::new()),
            DataType::Int64 => Column::Int64(Int64Builder::new()),
            DataType::Float64 => Column::Float64(Float64Builder::new()),
            DataType::Date32 => Column::Date32(Date32Builder::new()),
            DataType::Timestamp(unit, tz) => {
                Column::Timestamp(*unit, tz.clone(), Int64Builder::new())
            }
            DataType::Utf8 => Column::Utf8(StringBuilder::new()),
            DataType::LargeUtf8 => Column::LargeUtf8(LargeStringBuilder::new()),
            DataType::Utf8View => Column::Utf8View(StringViewBuilder::new()),
            _ => return None,
        })
    }

    /// The typed form of `text` for this column, if it fits.
    fn convert(&self, text: &str) -> Option<Staged> {
        const XML: Dialect = Dialect::XML;
        Some(match self {
            Column::Null => return None,
            Column::Boolean(_) => Staged::Bool(parse_bool(text)?),
            Column::Int64(_) => Staged::Int(parse_i64(text, XML)?),
            Column::Float64(_) => Staged::Float(parse_f64(text, XML)?),
            Column::Date32(_) => Staged::Int(i64::from(parse_date32(text, XML)?)),
            Column::Timestamp(unit, ..) => {
                Staged::Int(micros_to(*unit, parse_timestamp_micros(text, XML)?)?)
            }
            Column::Utf8(_) | Column::LargeUtf8(_) | Column::Utf8View(_) => return None,
        })
    }

    fn is_text(&self) -> bool {
        matches!(
            self,
            Column::Utf8(_) | Column::LargeUtf8(_) | Column::Utf8View(_)
        )
    }

    fn append(&mut self, value: Option<&Staged>, text: &str) {
        match (self, value) {
            (Column::Null, _) => {}
            (Column::Boolean(b), Some(Staged::Bool(v))) => b.append_value(*v),
            (Column::Boolean(b), _) => b.append_null(),
            (Column::Int64(b) | Column::Timestamp(_, _, b), Some(Staged::Int(v))) => {
                b.append_value(*v)
            }
            (Column::Int64(b) | Column::Timestamp(_, _, b), _) => b.append_null(),
            (Column::Float64(b), Some(Staged::Float(v))) => b.append_value(*v),
            (Column::Float64(b), _) => b.append_null(),
            (Column::Date32(b), Some(Staged::Int(v))) => b.append_value(*v as i32),
            (Column::Date32(b), _) => b.append_null(),
            (Column::Utf8(b), Some(Staged::Text)) => b.append_value(text),
            (Column::Utf8(b), _) => b.append_null(),
            (Column::LargeUtf8(b), Some(Staged::Text)) => b.append_value(text),
            (Column::LargeUtf8(b), _) => b.append_null(),
            (Column::Utf8View(b), Some(Staged::Text)) => b.append_value(text),
            (Column::Utf8View(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self, rows: usize) -> ArrayRef {
        match self {
            Column::Null => Arc::new(NullArray::new(rows)),
            Column::Boolean(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(b.finish()),
            Column::Float64(b) => Arc::new(b.finish()),
            Column::Date32(b) => Arc::new(b.finish()),
            Column::Timestamp(unit, tz, b) => {
                let values: PrimitiveArray<Int64Type> = b.finish();
                let tz = tz.clone();
                match unit {
                    TimeUnit::Second => Arc::new(
                        values
                            .reinterpret_cast::<TimestampSecondType>()
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Millisecond => Arc::new(
                        values
                            .reinterpret_cast::<TimestampMillisecondType>()
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Microsecond => Arc::new(
                        values
                            .reinterpret_cast::<TimestampMicrosecondType>()
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Nanosecond => Arc::new(
                        values
                            .reinterpret_cast::<TimestampNanosecondType>()
                            .with_timezone_opt(tz),
                    ),
                }
            }
            Column::Utf8(b) => Arc::new(b.finish()),
            Column::LargeUtf8(b) => Arc::new(b.finish()),
            Column::Utf8View(b) => Arc::new(b.finish()),
        }
    }
}

/// A row's value for one column, checked against the column's type before anything is
/// appended (so that a rejected row leaves no trace in the builders).
enum Staged {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// The text is in `BatchSink::texts[column]`.
    Text,
}

/// Where a column's values are among the row's fields.
#[derive(Clone, Default)]
struct Slot {
    count: u32,
    first: u32,
}

struct BatchSink {
    schema: SchemaRef,
    batch_size: usize,
    parser: RowParser,
    index: HashMap<String, usize>,
    columns: Vec<Column>,
    rows: usize,
    out: Decoded,
    /// A schema this decoder cannot produce (a broken invariant, reported once).
    error: Option<ArrowError>,
    // Per-row scratch, reused.
    slots: Vec<Slot>,
    touched: Vec<usize>,
    field_columns: Vec<u32>,
    staged: Vec<Option<Staged>>,
    /// A column's text value: its JSON array text when repeated.
    texts: Vec<Range<usize>>,
    text: String,
    /// Columns the schema declares non-nullable: a row without a value for one is rejected
    /// (rather than failing the whole batch).
    required: Vec<usize>,
}

const NO_COLUMN: u32 = u32::MAX;

impl BatchSink {
    fn new(separator: &str, schema: SchemaRef, batch_size: usize) -> Self {
        let mut error = None;
        let columns: Vec<Column> = schema
            .fields()
            .iter()
            .map(|f| {
                Column::new(f.data_type()).unwrap_or_else(|| {
                    error.get_or_insert_with(|| {
                        ArrowError::SchemaError(format!(
                            "the XML reader cannot produce column {} of type {}",
                            f.name(),
                            f.data_type()
                        ))
                    });
                    Column::Null
                })
            })
            .collect();
        let n = columns.len();
        let required = (0..n).filter(|&c| !schema.field(c).is_nullable()).collect();
        Self {
            required,
            index: schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name().clone(), i))
                .collect(),
            schema,
            batch_size: batch_size.max(1),
            parser: RowParser::new(separator),
            columns,
            rows: 0,
            out: Decoded::default(),
            error,
            slots: vec![Slot::default(); n],
            touched: Vec::new(),
            field_columns: Vec::new(),
            staged: (0..n).map(|_| None).collect(),
            texts: vec![0..0; n],
            text: String::new(),
        }
    }

    /// Checks every value of the parsed row against its column; the reason if one does not fit.
    fn stage(&mut self) -> Result<(), String> {
        let fields = self.parser.fields();
        self.field_columns.clear();
        for (i, field) in fields.iter().enumerate() {
            let column = self.index.get(self.parser.name(field)).copied();
            self.field_columns
                .push(column.map_or(NO_COLUMN, |c| c as u32));
            if let Some(c) = column {
                let slot = &mut self.slots[c];
                if slot.count == 0 {
                    slot.first = i as u32;
                    self.touched.push(c);
                }
                slot.count += 1;
            }
        }
        self.text.clear();
        for &c in &self.touched {
            let Slot { count, first } = self.slots[c];
            let column = &self.columns[c];
            let start = self.text.len();
            let value = if count == 1 {
                let Some(value) = self.parser.value(&fields[first as usize]) else {
                    continue;
                };
                if column.is_text() {
                    self.text.push_str(value);
                    self.texts[c] = start..self.text.len();
                    Staged::Text
                } else {
                    column
                        .convert(value)
                        .ok_or_else(|| misfit(self.schema.field(c), value))?
                }
            } else {
                // A repeated element: a JSON array of its values.
                self.text.push('[');
                let mut sep = "";
                for (i, field) in fields.iter().enumerate().skip(first as usize) {
                    if self.field_columns[i] == c as u32 {
                        self.text.push_str(sep);
                        sep = ",";
                        match self.parser.value(field) {
                            Some(v) => self
                                .text
                                .push_str(&serde_json::to_string(v).unwrap_or_default()),
                            None => self.text.push_str("null"),
                        }
                    }
                }
                self.text.push(']');
                if !column.is_text() {
                    return Err(misfit(self.schema.field(c), &self.text[start..]));
                }
                self.texts[c] = start..self.text.len();
                Staged::Text
            };
            self.staged[c] = Some(value);
        }
        for &c in &self.required {
            if self.staged[c].is_none() && !matches!(self.columns[c], Column::Null) {
                return Err(format!(
                    "no value for column {}, which is not nullable",
                    self.schema.field(c).name()
                ));
            }
        }
        Ok(())
    }

    fn reset_row(&mut self) {
        for c in self.touched.drain(..) {
            self.slots[c] = Slot::default();
            self.staged[c] = None;
        }
    }

    fn flush(&mut self) {
        if self.rows == 0 {
            return;
        }
        let rows = std::mem::take(&mut self.rows);
        let arrays = self.columns.iter_mut().map(|c| c.finish(rows)).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        match RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options) {
            Ok(batch) => self.out.batches.push(batch),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

fn misfit(field: &Field, value: &str) -> String {
    misfit_reason(
        &quoted(value),
        field.name(),
        field.data_type(),
        Dialect::XML,
    )
}

impl Sink for BatchSink {
    fn row(&mut self, xml: &[u8], line: u64, offset: u64) {
        let result = self.parser.parse(xml).and_then(|()| self.stage());
        match result {
            Ok(()) => {
                for (c, column) in self.columns.iter_mut().enumerate() {
                    let staged = self.staged[c].as_ref();
                    let text = match staged {
                        Some(Staged::Text) => &self.text[self.texts[c].clone()],
                        _ => "",
                    };
                    column.append(staged, text);
                }
                self.rows += 1;
                if self.rows >= self.batch_size {
                    self.flush();
                }
            }
            Err(reason) => self.out.rejected.push(rejected(line, offset, xml, reason)),
        }
        self.reset_row();
    }

    fn reject(&mut self, rejected: Rejected) {
        self.out.rejected.push(rejected);
    }
}
