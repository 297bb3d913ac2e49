//! Rendering results: aligned tables for people, CSV and JSON for programs.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches_with_schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrintFormat {
    /// Aligned table with a row count
    Table,
    /// CSV with a header line
    Csv,
    /// A JSON array of objects
    Json,
}

/// Writes `batches` (all of `schema`) to `out` in `format`.
pub fn print_batches(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: PrintFormat,
) -> Result<(), ArrowError> {
    match format {
        PrintFormat::Table => {
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(
                out,
                "{}",
                pretty_format_batches_with_schema(schema.clone(), batches)?
            )?;
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        PrintFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        PrintFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}
