//! JSON: newline-delimited records ([`NdjsonFormat`]) and JSON-array documents
//! ([`JsonArrayFormat`]), both schema-on-read.
//!
//! # Design
//!
//! Records are cut by hand (NDJSON: one per line, found with `memchr`; arrays: the streaming
//! state machine of [`split`], so a document is never held in memory whole) and each record is
//! parsed straight into borrowed scalars that are appended to Arrow builders: by jiter
//! ([`fast`]) when it can read the record exactly as serde_json would, else by serde_json
//! ([`value`]), whose errors the rejections quote. arrow-json's decoder is not used: it cannot
//! turn nested objects/arrays into their JSON text, it fails a whole batch on one misfit, and
//! it cannot say which record or line was at fault; a per-record parse gives every rejection
//! its line, offset and reason directly.
//!
//! # Semantics
//!
//! - Columns are matched by key; missing keys are null, keys outside the schema are ignored
//!   (and not materialized). A repeated key: the last one wins.
//! - Inference: key order is first-seen across the sample; numbers are Int64 (integers that fit)
//!   or Float64; strings are Date32/Timestamp when ISO-formatted, else Utf8; objects and arrays
//!   are Utf8 holding their compact JSON text (members in their original order).
//! - Decoding is strict: a value must be of its column's JSON kind (Int64: an integer; Float64:
//!   any number; Boolean: true/false; Date32/Timestamp: an ISO string, offsets normalized to
//!   UTC). A Utf8 column takes anything: strings as they are, other values as JSON text.
//! - NDJSON: blank lines are skipped; a line that is not one complete JSON object is rejected
//!   ("invalid JSON: …").
//! - JSON arrays: a non-object element or a broken one is rejected with the line where it
//!   starts; a document that is not an array yields its top-level values as records.

mod fast;
mod split;
mod value;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, new_null_array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use memchr::memchr_iter;

use super::complete_lines;
use super::values::{self, Dialect, misfit_reason, rejected, shorten};
use crate::bronze::decode::{Decoded, RawDecoder, RawFormatReader};
use value::JVal;

/// Newline-delimited JSON: one object per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NdjsonFormat {}

/// A JSON document holding an array of objects (possibly pretty-printed over many lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonArrayFormat {}

fn no_options(format: &str, options: &BTreeMap<String, String>) -> Result<(), String> {
    match options.keys().next() {
        None => Ok(()),
        Some(key) => Err(format!(
            "unknown {format} option {key:?} ({format} takes no options)"
        )),
    }
}

impl NdjsonFormat {
    /// NDJSON takes no options yet; any key is an error.
    pub fn new(options: &BTreeMap<String, String>) -> Result<Self, String> {
        no_options("ndjson", options)?;
        Ok(NdjsonFormat {})
    }
}

impl JsonArrayFormat {
    /// JSON arrays take no options yet; any key is an error.
    pub fn new(options: &BTreeMap<String, String>) -> Result<Self, String> {
        no_options("json", options)?;
        Ok(JsonArrayFormat {})
    }
}

impl RawFormatReader for NdjsonFormat {
    fn infer_schema(&self, prefix: &[u8], complete: bool) -> Result<Schema, ArrowError> {
        let data = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
        let data = complete_lines(data, complete);
        let mut inference = Inference::default();
        for line in data.split(|&b| b == b'\n') {
            inference.vote(line.trim_ascii());
        }
        Ok(inference.schema())
    }

    fn decoder(&self, schema: SchemaRef, batch_size: usize) -> Box<dyn RawDecoder> {
        Box::new(NdjsonDecoder {
            records: Records::new(schema, batch_size),
            carry: Vec::new(),
            line: 1,
            offset: 0,
        })
    }
}

impl RawFormatReader for JsonArrayFormat {
    fn infer_schema(&self, prefix: &[u8], complete: bool) -> Result<Schema, ArrowError> {
        let mut inference = Inference::default();
        let mut cutter = split::Cutter::default();
        let mut vote = |record: &[u8], _line: u64, _offset: u64| {
            inference.vote(record);
            Ok(())
        };
        cutter.feed(prefix, &mut vote)?;
        if complete {
            cutter.finish(&mut vote)?;
        }
        Ok(inference.schema())
    }

    fn decoder(&self, schema: SchemaRef, batch_size: usize) -> Box<dyn RawDecoder> {
        Box::new(JsonArrayDecoder {
            records: Records::new(schema, batch_size),
            cutter: split::Cutter::default(),
        })
    }
}

/// Schema inference: key order first-seen, types widened across records.
#[derive(Default)]
struct Inference {
    index: HashMap<String, usize>,
    columns: Vec<(String, DataType)>,
}

impl Inference {
    fn vote(&mut self, record: &[u8]) {
        if record.is_empty() {
            return;
        }
        // Records that would be rejected do not vote.
        let Ok(members) = value::parse_record_named(record) else {
            return;
        };
        for (key, v) in members {
            let t = match &v {
                JVal::Null => DataType::Null,
                JVal::Bool(_) => DataType::Boolean,
                JVal::I64(_) => DataType::Int64,
                JVal::U64(_) | JVal::F64(_) => DataType::Float64,
                JVal::Str(s) => values::classify_json_string(s),
                JVal::Nested(_) => DataType::Utf8,
            };
            match self.index.get(key.as_ref()) {
                Some(&i) => {
                    let column = &mut self.columns[i].1;
                    *column = values::widen(column, &t);
                }
                None => {
                    self.index.insert(key.to_string(), self.columns.len());
                    self.columns.push((key.into_owned(), t));
                }
            }
        }
    }

    fn schema(self) -> Schema {
        Schema::new(
            self.columns
                .into_iter()
                .map(|(n, t)| Field::new(n, t, true))
                .collect::<Vec<_>>(),
        )
    }
}

/// One column's builder.
enum Column {
    Bool(BooleanBuilder),
    I64(Int64Builder),
    F64(Float64Builder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Str(StringBuilder),
    Null,
}

/// A value converted to its column's type.
#[derive(Debug, Clone)]
enum Cell<'a> {
    Null,
    Bool(bool),
    I64(i64),
    F64(f64),
    Date(i32),
    Ts(i64),
    Str(Cow<'a, str>),
}

/// Converts a member value to the column type, or gives it back when it does not fit.
fn convert<'a>(v: JVal<'a>, t: &DataType) -> Result<Cell<'a>, JVal<'a>> {
    Ok(match (t, v) {
        (_, JVal::Null) => Cell::Null,
        (DataType::Utf8, JVal::Str(s)) => Cell::Str(s),
        (DataType::Utf8, JVal::Nested(s)) => Cell::Str(s),
        (DataType::Utf8, v) => Cell::Str(Cow::Owned(v.to_json_text())),
        (DataType::Boolean, JVal::Bool(b)) => Cell::Bool(b),
        (DataType::Int64, JVal::I64(i)) => Cell::I64(i),
        (DataType::Float64, JVal::I64(i)) => Cell::F64(i as f64),
        (DataType::Float64, JVal::U64(u)) => Cell::F64(u as f64),
        (DataType::Float64, JVal::F64(f)) => Cell::F64(f),
        (DataType::Date32, JVal::Str(s)) => match values::parse_date32(&s, Dialect::JSON) {
            Some(d) => Cell::Date(d),
            None => return Err(JVal::Str(s)),
        },
        (DataType::Timestamp(..), JVal::Str(s)) => {
            match values::parse_timestamp_micros(&s, Dialect::JSON) {
                Some(t) => Cell::Ts(t),
                None => return Err(JVal::Str(s)),
            }
        }
        (_, v) => return Err(v),
    })
}

/// Turns records into batches of the decoder's schema.
struct Records {
    schema: SchemaRef,
    batch_size: usize,
    columns_by_key: value::Columns,
    /// One record's members and cells: allocations kept across records (see [`recycle`]).
    members: Vec<(usize, JVal<'static>)>,
    cells: Vec<Cell<'static>>,
    types: Vec<DataType>,
    columns: Vec<Column>,
    rows: usize,
    /// A schema type this reader cannot produce (reported on first use).
    unsupported: Option<String>,
}

impl Records {
    fn new(schema: SchemaRef, batch_size: usize) -> Self {
        let batch_size = batch_size.max(1);
        let mut unsupported = None;
        let mut index = HashMap::new();
        let mut types = Vec::new();
        let mut columns = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            index.insert(f.name().clone(), i);
            types.push(f.data_type().clone());
            let cap = batch_size.min(8192);
            columns.push(match f.data_type() {
                DataType::Boolean => Column::Bool(BooleanBuilder::with_capacity(cap)),
                DataType::Int64 => Column::I64(Int64Builder::with_capacity(cap)),
                DataType::Float64 => Column::F64(Float64Builder::with_capacity(cap)),
                DataType::Date32 => Column::Date(Date32Builder::with_capacity(cap)),
                DataType::Timestamp(TimeUnit::Microsecond, None) => {
                    Column::Ts(TimestampMicrosecondBuilder::with_capacity(cap))
                }
                DataType::Utf8 => Column::Str(StringBuilder::with_capacity(cap, cap * 16)),
                DataType::Null => Column::Null,
                other => {
                    unsupported.get_or_insert_with(|| {
                        format!(
                            "json reader cannot produce column {} of type {other}",
                            f.name()
                        )
                    });
                    Column::Null
                }
            });
        }
        Records {
            schema,
            batch_size,
            columns_by_key: value::Columns::new(index),
            members: Vec::new(),
            cells: Vec::new(),
            types,
            columns,
            rows: 0,
            unsupported,
        }
    }

    fn check(&self) -> Result<(), ArrowError> {
        match &self.unsupported {
            Some(msg) => Err(ArrowError::NotYetImplemented(msg.clone())),
            None => Ok(()),
        }
    }

    /// Decodes one record (or rejects it).
    fn add(
        &mut self,
        record: &[u8],
        line: u64,
        offset: u64,
        out: &mut Decoded,
    ) -> Result<(), ArrowError> {
        let reject = |reason: String, out: &mut Decoded| {
            out.rejected.push(rejected(line, offset, record, reason))
        };
        let mut members = recycle(std::mem::take(&mut self.members));
        if let Err(e) = value::parse_record(record, &mut self.columns_by_key, &mut members) {
            reject(json_error_reason(&e, record), out);
            return Ok(());
        }
        let mut cells: Vec<Cell> = recycle(std::mem::take(&mut self.cells));
        cells.resize(self.columns.len(), Cell::Null);
        for (idx, v) in members.drain(..) {
            match convert(v, &self.types[idx]) {
                Ok(c) => cells[idx] = c,
                Err(v) => {
                    let field = &self.schema.fields()[idx];
                    let reason = misfit_reason(
                        &shorten(&v.to_json_text()),
                        field.name(),
                        field.data_type(),
                        Dialect::JSON,
                    );
                    reject(reason, out);
                    return Ok(());
                }
            }
        }
        self.members = recycle(members);
        for (column, cell) in self.columns.iter_mut().zip(cells.drain(..)) {
            match (column, cell) {
                (Column::Bool(b), Cell::Bool(v)) => b.append_value(v),
                (Column::Bool(b), _) => b.append_null(),
                (Column::I64(b), Cell::I64(v)) => b.append_value(v),
                (Column::I64(b), _) => b.append_null(),
                (Column::F64(b), Cell::F64(v)) => b.append_value(v),
                (Column::F64(b), _) => b.append_null(),
                (Column::Date(b), Cell::Date(v)) => b.append_value(v),
                (Column::Date(b), _) => b.append_null(),
                (Column::Ts(b), Cell::Ts(v)) => b.append_value(v),
                (Column::Ts(b), _) => b.append_null(),
                (Column::Str(b), Cell::Str(v)) => b.append_value(v),
                (Column::Str(b), _) => b.append_null(),
                (Column::Null, _) => {}
            }
        }
        self.cells = recycle(cells);
        self.rows += 1;
        if self.rows == self.batch_size {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Emits the rows built so far as one batch.
    fn flush(&mut self, out: &mut Decoded) -> Result<(), ArrowError> {
        if self.rows == 0 {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Bool(b) => Arc::new(b.finish()),
                    Column::I64(b) => Arc::new(b.finish()),
                    Column::F64(b) => Arc::new(b.finish()),
                    Column::Date(b) => Arc::new(b.finish()),
                    Column::Ts(b) => Arc::new(b.finish()),
                    Column::Str(b) => Arc::new(b.finish()),
                    Column::Null => new_null_array(&DataType::Null, rows),
                }
            })
            .collect();
        out.batches.push(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?);
        Ok(())
    }
}

/// An empty vector of another lifetime's values on the same allocation: std collects a mapped
/// `IntoIter` in place when the layouts agree, so each record's vectors of values borrowed from
/// it reuse one allocation instead of two allocations per record.
fn recycle<'a, 'b, T: 'a, U: 'b>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("cleared")).collect()
}

/// "invalid JSON: …" for a record serde_json could not parse.
fn json_error_reason(e: &serde_json::Error, record: &[u8]) -> String {
    if e.is_eof() {
        let what = match record.first() {
            Some(b'{') => "object",
            Some(b'[') => "array",
            _ => "value",
        };
        return format!("invalid JSON: truncated JSON {what}");
    }
    let msg = e.to_string();
    let msg = msg
        .rfind(" at line ")
        .map_or(msg.as_str(), |i| &msg[..i])
        .to_string();
    if e.line() <= 1 {
        format!("invalid JSON: {msg} at column {}", e.column())
    } else {
        format!(
            "invalid JSON: {msg} at line {} column {} of the record",
            e.line(),
            e.column()
        )
    }
}

/// Decoder of newline-delimited JSON.
struct NdjsonDecoder {
    records: Records,
    /// The current partial line.
    carry: Vec<u8>,
    /// Line number and file offset of the next line (the carry's).
    line: u64,
    offset: u64,
}

impl NdjsonDecoder {
    /// One line, without its `\n`.
    fn line(&mut self, bytes: &[u8], out: &mut Decoded) -> Result<(), ArrowError> {
        let (line, offset) = (self.line, self.offset);
        self.line += 1;
        self.offset += bytes.len() as u64 + 1;
        let mut content = bytes;
        if line == 1 {
            content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
        }
        let lead = content.len() - content.trim_ascii_start().len();
        let record = content.trim_ascii();
        if record.is_empty() {
            return Ok(());
        }
        let offset = offset + (bytes.len() - content.len() + lead) as u64;
        self.records.add(record, line, offset, out)
    }
}

impl RawDecoder for NdjsonDecoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Decoded, ArrowError> {
        self.records.check()?;
        let mut out = Decoded::default();
        let mut pos = 0;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                None => {
                    self.carry.extend_from_slice(chunk);
                    return Ok(out);
                }
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&chunk[..nl]);
                    self.line(&line, &mut out)?;
                    line.clear();
                    self.carry = line;
                    pos = nl + 1;
                }
            }
        }
        let base = pos;
        for nl in memchr_iter(b'\n', &chunk[base..]) {
            let end = base + nl;
            self.line(&chunk[pos..end], &mut out)?;
            pos = end + 1;
        }
        self.carry.extend_from_slice(&chunk[pos..]);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Decoded, ArrowError> {
        self.records.check()?;
        let mut out = Decoded::default();
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line, &mut out)?;
        }
        self.records.flush(&mut out)?;
        Ok(out)
    }
}

/// Decoder of a JSON-array document.
struct JsonArrayDecoder {
    records: Records,
    cutter: split::Cutter,
}

impl RawDecoder for JsonArrayDecoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Decoded, ArrowError> {
        self.records.check()?;
        let mut out = Decoded::default();
        let records = &mut self.records;
        self.cutter.feed(chunk, &mut |record, line, offset| {
            records.add(record, line, offset, &mut out)
        })?;
        Ok(out)
    }

    fn finish(&mut self) -> Result<Decoded, ArrowError> {
        self.records.check()?;
        let mut out = Decoded::default();
        let records = &mut self.records;
        self.cutter
            .finish(&mut |record, line, offset| records.add(record, line, offset, &mut out))?;
        self.records.flush(&mut out)?;
        Ok(out)
    }
}
