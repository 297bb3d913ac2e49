//! Reading text-format raw files inside DataFusion's file scan: a [`FileSource`] whose opener
//! streams a file (or a line-aligned byte range of it) through a [`RawDecoder`] and adapts each
//! batch to the table's columns by name. The same source in [`ScanMode::Rejected`] emits the
//! records the decoder set aside instead of the rows.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::{
    FileOpenFuture, FileOpener, FileScanConfig, FileSource,
};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::DisplayFormatType;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExprs;
use datafusion_datasource::PartitionedFile;
use datafusion_datasource::boundary_stream::AlignedBoundaryStream;
use datafusion_datasource::projection::{ProjectionOpener, SplitProjection};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::chunked::ChunkedStore;
use object_store::path::Path;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt};

use super::decode::{Decoded, RawDecoder, Rejected};
use super::format::TextReader;

/// What a scan emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// The decoded rows, in the table's columns.
    Rows,
    /// The rejected records, in [`rejected_columns`].
    Rejected,
}

/// The schema a file is decoded with (its own columns, at the table's widened types); attached
/// to each [`PartitionedFile`] of a text scan.
#[derive(Debug)]
pub struct DecodeSchema(pub SchemaRef);

/// Columns of a `__rejected` table, before the per-file `_file` and `_ingested_at`.
pub fn rejected_columns() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("line", DataType::Int64, true),
        Field::new("byte_offset", DataType::Int64, false),
        Field::new("raw", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// Default rows per batch when the session does not say.
const BATCH_SIZE: usize = 8192;

#[derive(Clone)]
pub struct TextSource {
    reader: TextReader,
    mode: ScanMode,
    table_schema: TableSchema,
    projection: SplitProjection,
    batch_size: Option<usize>,
    metrics: ExecutionPlanMetricsSet,
}

impl TextSource {
    pub fn new(reader: TextReader, mode: ScanMode, table_schema: TableSchema) -> Self {
        Self {
            projection: SplitProjection::unprojected(&table_schema),
            reader,
            mode,
            table_schema,
            batch_size: None,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    pub fn reader(&self) -> &TextReader {
        &self.reader
    }

    pub fn mode(&self) -> ScanMode {
        self.mode
    }
}

impl fmt::Debug for TextSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TextSource({}, {:?})", self.reader.format, self.mode)
    }
}

impl FileSource for TextSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        _base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let file_schema = self.table_schema.file_schema();
        let output = Arc::new(file_schema.project(&self.projection.file_indices)?);
        let opener = Arc::new(TextOpener {
            reader: self.reader.clone(),
            mode: self.mode,
            output,
            batch_size: self.batch_size.unwrap_or(BATCH_SIZE),
            store: object_store,
        });
        ProjectionOpener::try_new(self.projection.clone(), opener, file_schema)
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut source = self.clone();
        source.batch_size = Some(batch_size);
        Arc::new(source)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        let mut source = self.clone();
        let merged = self.projection.source.try_merge(projection)?;
        source.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(source)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        self.reader.format.extension()
    }

    /// Rows of line-oriented formats can be read in parallel ranges; rejected records are
    /// read whole-file so that their line numbers are exact.
    fn supports_repartitioning(&self) -> bool {
        self.reader.splittable && self.mode == ScanMode::Rows
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, ", mode={:?}", self.mode)
            }
            DisplayFormatType::TreeRender => Ok(()),
        }
    }
}

struct TextOpener {
    reader: TextReader,
    mode: ScanMode,
    /// The projected file columns this opener must produce.
    output: SchemaRef,
    batch_size: usize,
    store: Arc<dyn ObjectStore>,
}

impl FileOpener for TextOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let decode_schema = file
            .extensions
            .get::<DecodeSchema>()
            .map(|s| Arc::clone(&s.0))
            .ok_or_else(|| {
                DataFusionError::Internal("text scan file without a decode schema".into())
            })?;
        let decode_schema = match self.mode {
            ScanMode::Rows => project_by_name(&decode_schema, &self.output),
            // Every column is decoded so that every reason to reject a record is found.
            ScanMode::Rejected => decode_schema,
        };
        let decoder = self.reader.decoder.decoder(decode_schema, self.batch_size);
        let store = Arc::clone(&self.store);
        let header = self.reader.header;
        let mode = self.mode;
        let output = Arc::clone(&self.output);
        Ok(Box::pin(async move {
            let location = file.object_meta.location.clone();
            let bytes = open_bytes(store, &file, header).await?;
            let decoded = decode_stream(bytes, decoder);
            let stream = decoded
                .map_ok(move |d| batches_of(d, mode, &output))
                .map(|r| r.and_then(|batches| batches))
                .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
                .try_flatten()
                .map_err(move |e: DataFusionError| e.context(format!("reading {location}")));
            Ok(stream.boxed())
        }))
    }
}

/// The columns of a file's decode schema that the scan outputs: decoding only those is what
/// keeps a narrow query over a wide file fast. (A value that does not fit its column's type
/// is then only noticed when that column is read; `__rejected` always decodes every column.)
fn project_by_name(decode: &SchemaRef, output: &SchemaRef) -> SchemaRef {
    let fields: Vec<_> = decode
        .fields()
        .iter()
        .filter(|f| output.field_with_name(f.name()).is_ok())
        .cloned()
        .collect();
    Arc::new(Schema::new(fields))
}

/// Steps a whole local file is read in. object_store reads it 8 KiB per trip to a blocking
/// thread: a scan of the shipments' XML made 48,000 context switches that way.
const LOCAL_READ_STEP: usize = 4 << 20;

/// The file's bytes: all of them, or a line-aligned range preceded by the header line.
async fn open_bytes(
    store: Arc<dyn ObjectStore>,
    file: &PartitionedFile,
    header: bool,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    let location = file.object_meta.location.clone();
    let Some(range) = &file.range else {
        let whole = store.get(&location).await?;
        let whole = match whole.payload {
            GetResultPayload::File(..) => ChunkedStore::new(store, LOCAL_READ_STEP)
                .get(&location)
                .await?
                .into_stream(),
            GetResultPayload::Stream(_) => whole.into_stream(),
        };
        return Ok(whole.map_err(DataFusionError::from).boxed());
    };
    let (start, end) = (range.start as u64, range.end as u64);
    let aligned = AlignedBoundaryStream::new(
        Arc::clone(&store),
        location.clone(),
        start,
        end,
        file.object_meta.size,
        b'\n',
    )
    .await?
    .map_err(DataFusionError::from);
    if !header || start == 0 {
        return Ok(aligned.boxed());
    }
    let first_line = header_line(&store, &location, file.object_meta.size).await?;
    Ok(futures::stream::once(async move { Ok(first_line) })
        .chain(aligned)
        .boxed())
}

/// The first line of a file, newline included, read in growing steps.
async fn header_line(store: &Arc<dyn ObjectStore>, location: &Path, size: u64) -> Result<Bytes> {
    let mut len = 4096u64;
    loop {
        let head = store.get_range(location, 0..len.min(size)).await?;
        if let Some(nl) = memchr::memchr(b'\n', &head) {
            return Ok(head.slice(..=nl));
        }
        if len >= size {
            let mut line = head.to_vec();
            line.push(b'\n');
            return Ok(Bytes::from(line));
        }
        len *= 4;
    }
}

/// Feeds a byte stream through a decoder, yielding what each chunk (and the end) produced.
fn decode_stream(
    bytes: BoxStream<'static, Result<Bytes>>,
    decoder: Box<dyn RawDecoder>,
) -> BoxStream<'static, Result<Decoded>> {
    struct State {
        bytes: BoxStream<'static, Result<Bytes>>,
        decoder: Box<dyn RawDecoder>,
        done: bool,
    }
    futures::stream::unfold(
        State {
            bytes,
            decoder,
            done: false,
        },
        |mut state| async move {
            if state.done {
                return None;
            }
            let item = match state.bytes.next().await {
                Some(Ok(chunk)) => state.decoder.push(&chunk).map_err(DataFusionError::from),
                Some(Err(e)) => Err(e),
                None => {
                    state.done = true;
                    state.decoder.finish().map_err(DataFusionError::from)
                }
            };
            if item.is_err() {
                state.done = true;
            }
            Some((item, state))
        },
    )
    .boxed()
}

/// The batches a scan emits for one decoded stretch.
fn batches_of(decoded: Decoded, mode: ScanMode, output: &SchemaRef) -> Result<Vec<RecordBatch>> {
    match mode {
        ScanMode::Rows => decoded.batches.iter().map(|b| adapt(b, output)).collect(),
        ScanMode::Rejected if decoded.rejected.is_empty() => Ok(Vec::new()),
        ScanMode::Rejected => {
            let all = rejected_batch(&decoded.rejected)?;
            Ok(vec![adapt(&all, output)?])
        }
    }
}

/// `batch` re-shaped to `output` by column name: missing columns become nulls, differing types
/// are cast (widened), columns `output` does not ask for are dropped.
pub fn adapt(batch: &RecordBatch, output: &SchemaRef) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let columns = output
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(col) if col.data_type() == field.data_type() => Ok(Arc::clone(col)),
            Some(col) => Ok(cast(col, field.data_type())?),
            None => Ok(new_null_array(field.data_type(), rows)),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(output),
        columns,
        &options,
    )?)
}

fn rejected_batch(rejected: &[Rejected]) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter(
            rejected.iter().map(|r| Some(r.line as i64)),
        )),
        Arc::new(Int64Array::from_iter_values(
            rejected.iter().map(|r| r.offset as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            rejected.iter().map(|r| r.raw.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rejected.iter().map(|r| r.reason.as_str()),
        )),
    ];
    Ok(RecordBatch::try_new(rejected_columns(), columns)?)
}
