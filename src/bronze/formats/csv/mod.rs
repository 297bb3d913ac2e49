//! CSV: schema-on-read of delimited text.
//!
//! Options: `delimiter` (one character; sniffed among `,` `;` tab `|` when absent), `header`
//! (`true` by default), `quote` (`"` by default), `null` (an extra null token; an empty field
//! is always null).
//!
//! # Design
//!
//! Decoding is split between a hand-written pre-pass and arrow-csv:
//!
//! 1. **Pre-pass** ([`scan`]): each chunk is walked in 64-byte blocks turned into bit masks
//!    (newline, delimiter, quote-or-CR; SSE2 on x86_64), which give every line its delimiter
//!    count for a few bit operations. A line without quotes is good when the count matches the
//!    header; only lines with a quote (or a stray CR) run a small state machine. Bad lines
//!    (wrong field count, unterminated quote) become [`Rejected`] at once; good lines are not
//!    copied: runs of consecutive good lines are remembered as byte ranges of the chunk.
//! 2. **Typed decoding**: whenever `batch_size` good lines are pending, their byte ranges go
//!    straight to `arrow::csv::reader::Decoder` (built for the file's header columns, projected
//!    onto the columns the output schema wants), which parses each field once into typed
//!    arrays. Only the good lines still pending when a chunk ends are copied (they must outlive
//!    the chunk).
//! 3. **Text fallback**: arrow-csv fails a whole batch when one value does not parse as its
//!    column's type (or a line is not UTF-8). That rare batch is decoded again with every
//!    column as text; each value is then parsed with the same Arrow parsers, the records with a
//!    misfit are rejected (naming column and value) and the rest are kept. The text path is
//!    also the only path when a `null` token is configured (arrow-csv can only express extra
//!    null tokens with a regex, which this crate does not depend on).
//!
//! # Projection
//!
//! Output columns are matched to the header by name, so a caller that needs only some columns
//! should pass a schema holding just those: arrow-csv then tokenizes every field but parses
//! only the wanted ones (as DataFusion's own CSV scan does). Type misfits are found only in
//! the columns decoded, so with a narrower schema fewer records may be rejected; structural
//! rejections (field count, quotes, invalid UTF-8) do not depend on it.
//!
//! # Limits
//!
//! - **A record is one line.** Quoted fields spanning lines are not supported: a quoted field
//!   still open at the end of its line rejects that line alone ("unterminated quote") and
//!   decoding resumes on the next line, so one stray quote never swallows the rest of the file.
//! - A carriage return outside quotes anywhere but at the end of a line rejects the line.
//! - The header is the first non-empty line; empty lines are skipped everywhere.
//! - Without a `delimiter` option, both schema inference and the decoder sniff the delimiter
//!   from the file's first 20 lines (within 64 KiB), so they agree.
//! - Rejected records are reported in line order within one `push`/`finish` call.
//!
//! [`Rejected`]: crate::bronze::decode::Rejected

mod scan;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringArray,
    TimestampMicrosecondBuilder, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options, filter};
use arrow::csv::reader::{Decoder as ArrowDecoder, ReaderBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use memchr::memchr;

use super::complete_lines;
use super::values::{
    self, Dialect, misfit_reason, parse_bool, parse_date32, parse_f64, parse_i64,
    parse_timestamp_micros, quoted, rejected,
};
use crate::bronze::decode::{Decoded, RawDecoder, RawFormatReader};
use scan::{LineClass, line_content, strip_bom};

/// The CSV raw format, configured with its table's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvFormat {
    delimiter: Option<u8>,
    header: bool,
    quote: u8,
    null: Option<String>,
}

impl CsvFormat {
    /// Reads the options `delimiter`, `header`, `quote` and `null`; any other key is an error.
    pub fn new(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut format = CsvFormat {
            delimiter: None,
            header: true,
            quote: b'"',
            null: None,
        };
        for (key, value) in options {
            match key.as_str() {
                "delimiter" => format.delimiter = Some(single_byte("delimiter", value)?),
                "quote" => format.quote = single_byte("quote", value)?,
                "header" => {
                    format.header = match value.trim().to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => {
                            return Err(format!(
                                "csv option header must be true or false, not {value:?}"
                            ));
                        }
                    }
                }
                "null" => format.null = (!value.is_empty()).then(|| value.clone()),
                other => {
                    return Err(format!(
                        "unknown csv option {other:?} (known: delimiter, header, quote, null)"
                    ));
                }
            }
        }
        if Some(format.quote) == format.delimiter {
            return Err("csv options delimiter and quote must differ".into());
        }
        if let Some(d) = format.delimiter
            && matches!(d, b'\n' | b'\r')
        {
            return Err("csv option delimiter cannot be a line break".into());
        }
        if matches!(format.quote, b'\n' | b'\r') {
            return Err("csv option quote cannot be a line break".into());
        }
        Ok(format)
    }

    /// The configured delimiter, if any (otherwise it is sniffed per file).
    pub fn delimiter(&self) -> Option<u8> {
        self.delimiter
    }

    fn resolve_delimiter(&self, data: &[u8], at_eof: bool) -> u8 {
        self.delimiter
            .unwrap_or_else(|| scan::sniff(scan::sniff_window(data, at_eof), self.quote))
    }
}

fn single_byte(name: &str, value: &str) -> Result<u8, String> {
    let v = match value {
        "\\t" | "tab" | "TAB" => "\t",
        v => v,
    };
    match v.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!(
            "csv option {name} must be a single ASCII character, not {value:?}"
        )),
    }
}

impl RawFormatReader for CsvFormat {
    fn infer_schema(&self, prefix: &[u8], complete: bool) -> Result<Schema, ArrowError> {
        let data = complete_lines(strip_bom(prefix), complete);
        let delim = self.resolve_delimiter(data, true);
        let mut lines = data
            .split(|&b| b == b'\n')
            .map(line_content)
            .filter(|l| !l.is_empty());
        let Some(first) = lines.next() else {
            return Ok(Schema::empty());
        };
        let first_fields = scan::split_fields(first, delim, self.quote);
        let ncols = first_fields.len();
        let names = if self.header {
            scan::header_names(first_fields)
        } else {
            scan::default_names(ncols)
        };
        let mut types = vec![DataType::Null; ncols];
        let data_lines = if self.header { None } else { Some(first) };
        for line in data_lines.into_iter().chain(lines) {
            if scan::classify(line, delim, self.quote, ncols) != LineClass::Good {
                continue;
            }
            for (t, value) in types
                .iter_mut()
                .zip(scan::split_fields(line, delim, self.quote))
            {
                if value.is_empty() || self.null.as_deref() == Some(value.as_str()) {
                    continue;
                }
                *t = values::widen(t, &values::classify_text(&value, Dialect::CSV));
            }
        }
        Ok(Schema::new(
            names
                .into_iter()
                .zip(types)
                .map(|(n, t)| Field::new(n, t, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn decoder(&self, schema: SchemaRef, batch_size: usize) -> Box<dyn RawDecoder> {
        Box::new(CsvDecoder::new(self.clone(), schema, batch_size))
    }
}

/// A run of consecutive good (or empty) lines in one buffer.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    /// Exclusive; includes the last line's terminator.
    end: usize,
    /// Line number and file offset of the run's first byte.
    line: u64,
    offset: u64,
}

/// Where the file's columns go: built from the header (or first line).
struct Layout {
    ncols: usize,
    /// File column indices that the output schema wants, in output order of first use.
    projection: Vec<usize>,
    /// For each output column, its index among the projected arrays.
    out_map: Vec<Option<usize>>,
    /// Output types of the projected columns.
    proj_types: Vec<DataType>,
    /// The typed arrow-csv decoder (absent when a null token forces the text path).
    typed: Option<ArrowDecoder>,
    typed_schema: SchemaRef,
    /// The all-text arrow-csv decoder of the fallback path.
    text: ArrowDecoder,
}

/// Incremental decoder of one CSV file; see the module documentation.
pub struct CsvDecoder {
    format: CsvFormat,
    schema: SchemaRef,
    batch_size: usize,
    delim: Option<u8>,
    /// Bytes held back until the delimiter is sniffed.
    sniff_buf: Vec<u8>,
    sniff_newlines: usize,
    /// The current partial line (bytes after the last newline seen).
    carry: Vec<u8>,
    /// Line number and file offset of the next line (the carry's).
    line: u64,
    offset: u64,
    layout: Option<Layout>,
    /// Good lines pending for the next batch that outlived their chunk, and their runs.
    owned: Vec<u8>,
    owned_runs: Vec<Run>,
    pending_rows: usize,
    finished: bool,
}

impl CsvDecoder {
    fn new(format: CsvFormat, schema: SchemaRef, batch_size: usize) -> Self {
        CsvDecoder {
            delim: format.delimiter,
            format,
            schema,
            batch_size: batch_size.max(1),
            sniff_buf: Vec::new(),
            sniff_newlines: 0,
            carry: Vec::new(),
            line: 1,
            offset: 0,
            layout: None,
            owned: Vec::new(),
            owned_runs: Vec::new(),
            pending_rows: 0,
            finished: false,
        }
    }

    fn delim(&self) -> u8 {
        self.delim
            .expect("delimiter resolved before lines are read")
    }

    /// Builds the column layout from the file's column names.
    fn make_layout(&self, names: Vec<String>) -> Result<Layout, ArrowError> {
        let ncols = names.len();
        let mut projection = Vec::new();
        let mut proj_types = Vec::new();
        let mut out_map = Vec::with_capacity(self.schema.fields().len());
        let mut file_types = vec![DataType::Utf8; ncols];
        for field in self.schema.fields() {
            let pos = names.iter().position(|n| n == field.name());
            out_map.push(pos.map(|file_idx| {
                projection.push(file_idx);
                proj_types.push(field.data_type().clone());
                file_types[file_idx] = match field.data_type() {
                    // Parsed as text so that a value there can be detected and rejected.
                    DataType::Null => DataType::Utf8,
                    t => t.clone(),
                };
                projection.len() - 1
            }));
        }
        let fields = |types: &[DataType]| -> SchemaRef {
            Arc::new(Schema::new(
                names
                    .iter()
                    .zip(types)
                    .map(|(n, t)| Field::new(n, t.clone(), true))
                    .collect::<Vec<_>>(),
            ))
        };
        let typed_schema = fields(&file_types);
        let text_schema = fields(&vec![DataType::Utf8; ncols]);
        let typed = self
            .format
            .null
            .is_none()
            .then(|| self.arrow_decoder(&typed_schema, &projection));
        let text = self.arrow_decoder(&text_schema, &projection);
        Ok(Layout {
            ncols,
            projection,
            out_map,
            proj_types,
            typed,
            typed_schema,
            text,
        })
    }

    fn arrow_decoder(&self, schema: &SchemaRef, projection: &[usize]) -> ArrowDecoder {
        ReaderBuilder::new(schema.clone())
            .with_header(false)
            .with_delimiter(self.delim())
            .with_quote(self.format.quote)
            .with_batch_size(self.batch_size)
            .with_projection(projection.to_vec())
            .build_decoder()
    }

    /// Feeds bytes once the delimiter is known.
    fn push_lines(&mut self, chunk: &[u8], out: &mut Decoded) -> Result<(), ArrowError> {
        let mut pos = 0;
        if !self.carry.is_empty() {
            match memchr(b'\n', chunk) {
                None => {
                    self.carry.extend_from_slice(chunk);
                    return Ok(());
                }
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&chunk[..=nl]);
                    self.owned_line(&line, out)?;
                    line.clear();
                    self.carry = line;
                    pos = nl + 1;
                }
            }
        }
        let mut runs: Vec<Run> = Vec::new();
        let mut open: Option<Run> = None;
        // Line by line until the header (or first record) has fixed the columns.
        while self.layout.is_none() {
            let Some(nl) = memchr(b'\n', &chunk[pos..]) else {
                break;
            };
            let end = pos + nl + 1;
            self.chunk_line(chunk, pos, end, &mut runs, &mut open, out)?;
            pos = end;
        }
        if let Some(layout) = &self.layout {
            // The hot loop: block-wise masks give each line's delimiter count and whether it
            // holds a quote or CR; only those lines look at their bytes again.
            let (delim, quote, ncols) = (self.delim(), self.format.quote, layout.ncols);
            let body = &chunk[pos..];
            let done = scan::for_each_line(body, delim, quote, |start, end, delims, special| {
                let (start, end) = (pos + start, pos + end);
                let class = if !special {
                    let len = end - start;
                    if len == 1 || (len == 2 && chunk[start] == b'\r') {
                        LineClass::Blank
                    } else if delims + 1 == ncols {
                        LineClass::Good
                    } else {
                        LineClass::Bad(format!("expected {ncols} fields, found {}", delims + 1))
                    }
                } else {
                    scan::classify_counted(
                        line_content(&chunk[start..end]),
                        delims,
                        quote,
                        delim,
                        ncols,
                    )
                };
                self.place(chunk, start, end, class, &mut runs, &mut open, out)
            })?;
            pos += done;
        }
        runs.extend(open.take());
        // Good lines still pending must outlive the chunk.
        for run in runs {
            let start = self.owned.len();
            self.owned.extend_from_slice(&chunk[run.start..run.end]);
            self.owned_runs.push(Run {
                start,
                end: self.owned.len(),
                ..run
            });
        }
        self.carry.extend_from_slice(&chunk[pos..]);
        Ok(())
    }

    /// Classifies a line; returns (content range within `buf`, class), or None for a line
    /// consumed as the header.
    fn classify_line(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
    ) -> Result<Option<(usize, usize, LineClass)>, ArrowError> {
        let mut cstart = start;
        if self.line == 1 && buf[start..end].starts_with(b"\xEF\xBB\xBF") {
            cstart += 3;
        }
        let content = line_content(&buf[cstart..end]);
        let cend = cstart + content.len();
        if self.layout.is_none() {
            if content.is_empty() {
                return Ok(Some((cstart, cend, LineClass::Blank)));
            }
            let fields = scan::split_fields(content, self.delim(), self.format.quote);
            if self.format.header {
                let layout = self.make_layout(scan::header_names(fields))?;
                self.layout = Some(layout);
                return Ok(None);
            }
            let layout = self.make_layout(scan::default_names(fields.len()))?;
            self.layout = Some(layout);
        }
        let ncols = self.layout.as_ref().map_or(0, |l| l.ncols);
        let class = scan::classify(content, self.delim(), self.format.quote, ncols);
        Ok(Some((cstart, cend, class)))
    }

    fn reject(&self, content: &[u8], line: u64, offset: u64, reason: String, out: &mut Decoded) {
        out.rejected.push(rejected(line, offset, content, reason));
    }

    /// A complete line (with its `\n`, or at end of file without) that lives in `self.carry`.
    fn owned_line(&mut self, line: &[u8], out: &mut Decoded) -> Result<(), ArrowError> {
        let (line_no, offset) = (self.line, self.offset);
        let classified = self.classify_line(line, 0, line.len())?;
        self.line += 1;
        self.offset += line.len() as u64;
        let Some((cstart, cend, class)) = classified else {
            return Ok(());
        };
        let offset = offset + cstart as u64;
        match class {
            LineClass::Blank => {}
            LineClass::Bad(reason) => {
                self.reject(&line[cstart..cend], line_no, offset, reason, out)
            }
            LineClass::Good => {
                let start = self.owned.len();
                self.owned.extend_from_slice(&line[cstart..]);
                if self.owned.last() != Some(&b'\n') {
                    self.owned.push(b'\n');
                }
                self.owned_runs.push(Run {
                    start,
                    end: self.owned.len(),
                    line: line_no,
                    offset,
                });
                self.pending_rows += 1;
                if self.pending_rows == self.batch_size {
                    self.emit(&[], &[], out)?;
                }
            }
        }
        Ok(())
    }

    /// A complete line `chunk[start..end]` (with its `\n`), read before the columns are known.
    fn chunk_line(
        &mut self,
        chunk: &[u8],
        start: usize,
        end: usize,
        runs: &mut Vec<Run>,
        open: &mut Option<Run>,
        out: &mut Decoded,
    ) -> Result<(), ArrowError> {
        let classified = self.classify_line(chunk, start, end)?;
        let Some((cstart, _, class)) = classified else {
            // The header.
            self.line += 1;
            self.offset += (end - start) as u64;
            return Ok(());
        };
        // A BOM is not part of the record: its offset starts after it.
        self.offset += (cstart - start) as u64;
        self.place(chunk, cstart, end, class, runs, open, out)
    }

    /// Files a classified line `chunk[start..end]` (`start` past any BOM, `end` past its
    /// `\n`): extends the current run of good lines, or rejects it.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        chunk: &[u8],
        start: usize,
        end: usize,
        class: LineClass,
        runs: &mut Vec<Run>,
        open: &mut Option<Run>,
        out: &mut Decoded,
    ) -> Result<(), ArrowError> {
        let line_no = self.line;
        let line_start = self.offset;
        self.line += 1;
        self.offset += (end - start) as u64;
        match class {
            LineClass::Blank => {
                if let Some(run) = open {
                    run.end = end;
                }
            }
            LineClass::Bad(reason) => {
                runs.extend(open.take());
                let offset = line_start;
                let content = line_content(&chunk[start..end]);
                self.reject(content, line_no, offset, reason, out);
            }
            LineClass::Good => {
                match open {
                    Some(run) => run.end = end,
                    None => {
                        *open = Some(Run {
                            start,
                            end,
                            line: line_no,
                            offset: line_start,
                        })
                    }
                }
                self.pending_rows += 1;
                if self.pending_rows == self.batch_size {
                    runs.extend(open.take());
                    self.emit(chunk, runs, out)?;
                    runs.clear();
                }
            }
        }
        Ok(())
    }

    /// Decodes the pending good lines (the owned ones, then `runs` of `chunk`) into one batch.
    fn emit(&mut self, chunk: &[u8], runs: &[Run], out: &mut Decoded) -> Result<(), ArrowError> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let typed = self.decode_typed(chunk, runs);
        let batch = match typed {
            Some(Ok(batch)) => batch,
            fallback => {
                if let Some(Err(_)) = fallback {
                    // The failed decoder may hold a partial record: start afresh.
                    let layout = self.layout.as_ref().expect("layout");
                    let fresh = self.arrow_decoder(&layout.typed_schema, &layout.projection);
                    self.layout.as_mut().expect("layout").typed = Some(fresh);
                }
                self.decode_text(chunk, runs, out)?
            }
        };
        if batch.num_rows() > 0 {
            out.batches.push(batch);
        }
        self.owned.clear();
        self.owned_runs.clear();
        self.pending_rows = 0;
        Ok(())
    }

    /// The fast path: arrow-csv's typed decoder over the pending bytes. `None` when the text
    /// path must be used (a null token is configured, or a Null column holds a value).
    fn decode_typed(
        &mut self,
        chunk: &[u8],
        runs: &[Run],
    ) -> Option<Result<RecordBatch, ArrowError>> {
        let layout = self.layout.as_mut().expect("layout");
        let decoder = layout.typed.as_mut()?;
        let result = (|| {
            feed(decoder, &self.owned)?;
            for run in runs {
                feed(decoder, &chunk[run.start..run.end])?;
            }
            decoder.flush()
        })();
        match result {
            Ok(Some(batch)) => {
                let columns = batch.columns();
                let null_col_has_value = layout
                    .proj_types
                    .iter()
                    .zip(columns)
                    .any(|(t, c)| *t == DataType::Null && c.null_count() != c.len());
                if null_col_has_value {
                    return None;
                }
                let n = batch.num_rows();
                if n != self.pending_rows {
                    return Some(Err(row_count_mismatch(n, self.pending_rows)));
                }
                Some(assemble(&self.schema, layout, columns, n))
            }
            Ok(None) => Some(Err(row_count_mismatch(0, self.pending_rows))),
            Err(e) => Some(Err(e)),
        }
    }

    /// The fallback path: every column as text, then parsed value by value; records with a
    /// value that does not fit are rejected.
    fn decode_text(
        &mut self,
        chunk: &[u8],
        runs: &[Run],
        out: &mut Decoded,
    ) -> Result<RecordBatch, ArrowError> {
        let layout = self.layout.as_mut().expect("layout");
        // (line, offset, content) of each row fed, in order.
        let mut rows: Vec<(u64, u64, &[u8])> = Vec::with_capacity(self.pending_rows);
        let mut rejects = Vec::new();
        let owned_runs = self.owned_runs.iter().map(|r| (&self.owned[..], r));
        for (buf, run) in owned_runs.chain(runs.iter().map(|r| (chunk, r))) {
            let mut line = run.line;
            let mut pos = run.start;
            while pos < run.end {
                let end = memchr(b'\n', &buf[pos..run.end]).map_or(run.end, |i| pos + i + 1);
                let content = line_content(&buf[pos..end]);
                let offset = run.offset + (pos - run.start) as u64;
                if !content.is_empty() {
                    if std::str::from_utf8(content).is_ok() {
                        feed(&mut layout.text, &buf[pos..end])?;
                        if buf[end - 1] != b'\n' {
                            feed(&mut layout.text, b"\n")?;
                        }
                        rows.push((line, offset, content));
                    } else {
                        rejects.push(rejected(line, offset, content, "invalid UTF-8".into()));
                    }
                }
                line += 1;
                pos = end;
            }
        }
        let text = layout.text.flush()?;
        let n = text.as_ref().map_or(0, RecordBatch::num_rows);
        if n != rows.len() {
            return Err(row_count_mismatch(n, rows.len()));
        }
        let Some(text) = text else {
            out.rejected.extend(rejects);
            return assemble(&self.schema, layout, &[], 0);
        };
        let mut bad: Vec<Option<(usize, String)>> = vec![None; n];
        let null_token = self.format.null.as_deref();
        let mut arrays = Vec::with_capacity(layout.projection.len());
        for (k, t) in layout.proj_types.iter().enumerate() {
            let col = text
                .column(k)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("text decoder yields strings");
            arrays.push(convert_text(col, t, null_token, k, &mut bad)?);
        }
        let keep: Vec<bool> = bad.iter().map(Option::is_none).collect();
        for (i, b) in bad.into_iter().enumerate() {
            if let Some((k, value)) = b {
                let out_idx = layout.out_map.iter().position(|m| *m == Some(k));
                let field = &self.schema.fields()[out_idx.expect("projected column is mapped")];
                let (line, offset, content) = rows[i];
                let reason = misfit_reason(
                    &quoted(&value),
                    field.name(),
                    field.data_type(),
                    Dialect::CSV,
                );
                rejects.push(rejected(line, offset, content, reason));
            }
        }
        out.rejected.extend(rejects);
        let kept = keep.iter().filter(|k| **k).count();
        if kept < n {
            let mask = arrow::array::BooleanArray::from(keep);
            arrays = arrays
                .iter()
                .map(|a| filter(a.as_ref(), &mask))
                .collect::<Result<_, _>>()?;
        }
        assemble(&self.schema, layout, &arrays, kept)
    }
}

/// A broken invariant: arrow-csv split the lines the pre-pass accepted differently.
fn row_count_mismatch(got: usize, want: usize) -> ArrowError {
    ArrowError::CsvError(format!(
        "csv pre-pass and arrow-csv disagree: {got} records decoded from {want} lines"
    ))
}

/// Feeds all of `bytes` to an arrow-csv decoder (which buffers at most one batch).
fn feed(decoder: &mut ArrowDecoder, mut bytes: &[u8]) -> Result<(), ArrowError> {
    while !bytes.is_empty() {
        let n = decoder.decode(bytes)?;
        if n == 0 {
            // With a full batch, arrow-csv stops right after a record's `\r`, leaving the `\n`
            // of its CRLF (an empty line to csv-core anyway).
            if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                return Ok(());
            }
            return Err(ArrowError::CsvError(
                "csv decoder stopped before its batch was full".into(),
            ));
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// The output batch: projected arrays where the file has the column, nulls elsewhere.
fn assemble(
    schema: &SchemaRef,
    layout: &Layout,
    projected: &[ArrayRef],
    rows: usize,
) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .zip(&layout.out_map)
        .map(|(field, m)| match m {
            Some(k) if *field.data_type() != DataType::Null && !projected.is_empty() => {
                projected[*k].clone()
            }
            _ => new_null_array(field.data_type(), rows),
        })
        .collect();
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

/// Parses a text column into `t`, recording in `bad` the first misfit of each row.
fn convert_text(
    col: &StringArray,
    t: &DataType,
    null_token: Option<&str>,
    k: usize,
    bad: &mut [Option<(usize, String)>],
) -> Result<ArrayRef, ArrowError> {
    let value = |i: usize| -> Option<&str> {
        if col.is_null(i) {
            return None;
        }
        let v = col.value(i);
        (null_token != Some(v)).then_some(v)
    };
    let mut mark = |i: usize, v: &str| {
        if bad[i].is_none() {
            bad[i] = Some((k, v.to_string()));
        }
    };
    let n = col.len();
    const CSV: Dialect = Dialect::CSV;
    macro_rules! typed {
        ($builder:expr, $parse:expr) => {{
            let mut b = $builder;
            for i in 0..n {
                match value(i) {
                    None => b.append_null(),
                    Some(v) => match $parse(v) {
                        Some(x) => b.append_value(x),
                        None => {
                            mark(i, v);
                            b.append_null();
                        }
                    },
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match t {
        DataType::Utf8 => match null_token {
            None => Arc::new(col.clone()),
            Some(_) => Arc::new((0..n).map(value).collect::<StringArray>()),
        },
        DataType::Boolean => typed!(BooleanBuilder::with_capacity(n), parse_bool),
        DataType::Int64 => typed!(Int64Builder::with_capacity(n), |v| parse_i64(v, CSV)),
        DataType::Float64 => typed!(Float64Builder::with_capacity(n), |v| parse_f64(v, CSV)),
        DataType::Date32 => typed!(Date32Builder::with_capacity(n), |v| parse_date32(v, CSV)),
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            typed!(TimestampMicrosecondBuilder::with_capacity(n), |v| {
                parse_timestamp_micros(v, CSV)
            })
        }
        DataType::Null => {
            for i in 0..n {
                if let Some(v) = value(i) {
                    mark(i, v);
                }
            }
            new_null_array(&DataType::Null, n)
        }
        other => {
            // Outside the contract's set: Arrow's cast decides; a value it cannot convert is a
            // misfit.
            let text: StringArray = (0..n).map(value).collect();
            let options = CastOptions {
                safe: true,
                ..Default::default()
            };
            let cast = cast_with_options(&text, other, &options)?;
            for i in 0..n {
                if text.is_valid(i) && cast.is_null(i) {
                    mark(i, text.value(i));
                }
            }
            cast
        }
    })
}

impl RawDecoder for CsvDecoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Decoded, ArrowError> {
        if self.finished {
            return Err(ArrowError::InvalidArgumentError(
                "csv decoder: push after finish".into(),
            ));
        }
        let mut out = Decoded::default();
        if self.delim.is_none() {
            self.sniff_buf.extend_from_slice(chunk);
            self.sniff_newlines += memchr::memchr_iter(b'\n', chunk).count();
            if !scan::sniff_ready(self.sniff_buf.len(), self.sniff_newlines) {
                return Ok(out);
            }
            let buf = std::mem::take(&mut self.sniff_buf);
            self.delim = Some(self.format.resolve_delimiter(&buf, false));
            self.push_lines(&buf, &mut out)?;
        } else {
            self.push_lines(chunk, &mut out)?;
        }
        out.rejected.sort_by_key(|r| r.line);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Decoded, ArrowError> {
        let mut out = Decoded::default();
        if self.finished {
            return Ok(out);
        }
        self.finished = true;
        if self.delim.is_none() {
            let buf = std::mem::take(&mut self.sniff_buf);
            self.delim = Some(self.format.resolve_delimiter(&buf, true));
            self.push_lines(&buf, &mut out)?;
        }
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.owned_line(&line, &mut out)?;
        }
        self.emit(&[], &[], &mut out)?;
        out.rejected.sort_by_key(|r| r.line);
        Ok(out)
    }
}
