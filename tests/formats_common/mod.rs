//! Scaffolding shared by the raw-format tests (`bronze_formats`, `bronze_xml`): options, schemas,
//! running a decoder over chunks, and rendering what it produced.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use strata::bronze::decode::{RawFormatReader, Rejected};

/// The contract's timestamp type.
pub const TS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// A format's options from `(key, value)` pairs.
pub fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A schema of nullable columns.
pub fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// A schema's columns as (name, type).
pub fn columns(s: &Schema) -> Vec<(String, DataType)> {
    s.fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

/// Expected columns, comparable with [`columns`].
pub fn cols(fields: &[(&str, DataType)]) -> Vec<(String, DataType)> {
    fields
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

/// Pushes `chunks` to a new decoder, then finishes it: every batch and rejection, in the order
/// produced. Checks that each batch has exactly `schema` and between 1 and `batch_size` rows.
pub fn run_decoder<'a>(
    format: &dyn RawFormatReader,
    schema: &SchemaRef,
    batch_size: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<RecordBatch>, Vec<Rejected>) {
    let mut decoder = format.decoder(schema.clone(), batch_size);
    let mut batches = Vec::new();
    let mut rejected = Vec::new();
    for chunk in chunks {
        let out = decoder.push(chunk).unwrap();
        batches.extend(out.batches);
        rejected.extend(out.rejected);
    }
    let out = decoder.finish().unwrap();
    batches.extend(out.batches);
    rejected.extend(out.rejected);
    for b in &batches {
        assert_eq!(b.schema(), *schema, "batches have exactly the given schema");
        assert!(b.num_rows() <= batch_size, "batch of {} rows", b.num_rows());
        assert!(b.num_rows() > 0, "no empty batches");
    }
    (batches, rejected)
}

/// Rows as display strings ("∅" for null), one vector of cells per row.
pub fn display(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("∅");
    let mut rows = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    rows
}

/// (line, reason) of each rejection.
pub fn reasons(rejected: &[Rejected]) -> Vec<(u64, &str)> {
    rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect()
}

/// The byte offset at which 1-based `line` of `text` starts.
pub fn line_offset(text: &str, line: usize) -> u64 {
    text.split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum::<usize>() as u64
}
