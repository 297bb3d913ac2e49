//! The contract between bronze tables and raw formats: infer a file's schema from a bounded
//! prefix, then decode its bytes incrementally into Arrow batches, setting aside (never
//! dropping) the records that cannot be decoded.

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// Longest raw text kept for one rejected record.
pub const MAX_REJECTED_RAW: usize = 64 * 1024;

/// A record a reader could not decode: it becomes a row of `<table>__rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line on which the record starts.
    pub line: u64,
    /// Byte offset of the record's first byte in the file.
    pub offset: u64,
    /// The record's text (lossy UTF-8, at most [`MAX_REJECTED_RAW`] bytes, no trailing newline).
    pub raw: String,
    /// Why, in words a user can act on: "expected 7 fields, found 8", "unterminated quote",
    /// "truncated JSON object", "value \"N/A\" in column qty is not an Int64".
    pub reason: String,
}

/// What a stretch of decoding produced.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Rows in the decoder's schema, each batch at most the decoder's batch size.
    pub batches: Vec<RecordBatch>,
    pub rejected: Vec<Rejected>,
}

/// Decodes one raw file whose bytes arrive in chunks of any size (a chunk may end mid-record
/// or mid-UTF-8 character). Bad data never makes it return `Err`: the record is rejected and
/// decoding goes on. `Err` is for broken invariants only.
pub trait RawDecoder: Send {
    /// Feeds the next chunk; returns what is complete so far.
    fn push(&mut self, chunk: &[u8]) -> Result<Decoded, ArrowError>;

    /// End of file: flushes buffered rows; a trailing record without its terminator is decoded
    /// if it is complete, otherwise rejected.
    fn finish(&mut self) -> Result<Decoded, ArrowError>;
}

/// One raw format (CSV, JSON, NDJSON, XML), configured with its table's options.
///
/// Inferred types are drawn from one small set so that files of a table union cleanly:
/// Boolean, Int64, Float64, Date32, Timestamp(Microsecond, None), Utf8, and Null for a column
/// that is empty in the sample. Nested values (objects, arrays) are Utf8 JSON text unless the
/// format says otherwise.
pub trait RawFormatReader: Send + Sync {
    /// Infers one file's schema (columns in file order) from its first bytes. `complete` is
    /// false when `prefix` is cut short, in which case its last, partial record is ignored.
    /// Records that would be rejected do not vote.
    fn infer_schema(&self, prefix: &[u8], complete: bool) -> Result<Schema, ArrowError>;

    /// A decoder for a file of this format producing exactly `schema` (the file's inferred
    /// schema, or one whose column types were widened to the table's: Int64→Float64,
    /// Date32→Timestamp, anything→Utf8, Null→anything). A value that does not fit its column's
    /// type rejects its record.
    fn decoder(&self, schema: SchemaRef, batch_size: usize) -> Box<dyn RawDecoder>;
}
