//! A bronze table: a set of raw files of one format read as one relation, its schema the
//! union of the files' inferred schemas, with `_file` and `_ingested_at` on every row.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::TableProvider;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion_datasource::PartitionedFile;
use futures::{StreamExt, TryStreamExt};

use object_store::ObjectStore;
use object_store::path::Path;

use super::BronzeError;
use super::format::Reader;
use super::infer::{self, FileToInfer};
use super::scan::{DecodeSchema, ScanMode, TextSource, rejected_columns};
use super::schema::{union, widened_to};

/// Column holding the URI of the raw file a row came from.
pub const FILE_COLUMN: &str = "_file";
/// Column holding when that file landed.
pub const INGESTED_AT_COLUMN: &str = "_ingested_at";
/// Files whose schemas are inferred at once.
const INFER_CONCURRENCY: usize = 8;

/// The most bytes of a raw text file one scan stream takes at a time. A scan's streams share
/// one queue of file pieces, each taking the next when it is done (and one ahead), so with
/// whole files, or halves, as pieces one stream can be left decoding alone for seconds: three
/// 600 MB NDJSON files on two cores left one stream three pieces to the other's one. Pieces
/// this size keep the streams within a fraction of a second of each other.
const SCAN_PIECE: u64 = 32 << 20;

/// One raw file of a table.
#[derive(Debug, Clone)]
pub struct RawFileRef {
    /// Full URI, shown in `_file`.
    pub uri: String,
    /// Path inside the store registered for the table's [`ObjectStoreUrl`].
    pub location: Path,
    pub size: u64,
    /// Content identity for the schema cache (sha256 for landed files).
    pub identity: String,
    /// Microseconds since the epoch, UTC.
    pub ingested_at: i64,
}

/// What a table is made of, before its schema is known.
pub struct TableSpec {
    pub reader: Reader,
    /// Identifies the reader's settings in the schema cache.
    pub fingerprint: String,
    pub store_url: ObjectStoreUrl,
    pub store: Arc<dyn ObjectStore>,
    pub files: Vec<RawFileRef>,
}

#[derive(Debug)]
pub struct BronzeTable {
    reader: ReaderKind,
    mode: ScanMode,
    store_url: ObjectStoreUrl,
    files: Vec<PartitionedFile>,
    file_schema: SchemaRef,
    schema: SchemaRef,
}

/// [`Reader`] without its trait objects, which are not `Debug`.
#[derive(Clone)]
struct ReaderKind(Reader);

impl std::fmt::Debug for ReaderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Reader::Parquet => f.write_str("parquet"),
            Reader::Text(t) => write!(f, "{}", t.format),
        }
    }
}

impl BronzeTable {
    /// Infers every file's schema (cached by content) and builds the table in `mode`.
    pub async fn try_new(spec: TableSpec, mode: ScanMode) -> Result<Self, BronzeError> {
        // Each inference owns what it reads, so the futures can run concurrently on any thread.
        let inferences: Vec<_> = spec
            .files
            .iter()
            .map(|f| {
                let (store, reader) = (Arc::clone(&spec.store), spec.reader.clone());
                let fingerprint = spec.fingerprint.clone();
                let (location, size, identity) = (f.location.clone(), f.size, f.identity.clone());
                async move {
                    let file = FileToInfer {
                        location: &location,
                        size,
                        identity: &identity,
                    };
                    infer::file_schema(&store, &file, &reader, &fingerprint).await
                }
            })
            .collect();
        let schemas: Vec<SchemaRef> = futures::stream::iter(inferences)
            .buffered(INFER_CONCURRENCY)
            .try_collect()
            .await?;
        let table_columns = Arc::new(union(schemas.iter().map(|s| s.as_ref())));
        let file_schema = match mode {
            ScanMode::Rows => Arc::clone(&table_columns),
            ScanMode::Rejected => rejected_columns(),
        };
        // Parquet files are well-formed by construction: there is nothing to reject.
        let rejects_impossible =
            mode == ScanMode::Rejected && matches!(spec.reader, Reader::Parquet);
        let files = if rejects_impossible {
            Vec::new()
        } else {
            spec.files
                .iter()
                .zip(&schemas)
                .map(|(f, schema)| {
                    let mut file = PartitionedFile::new(f.location.to_string(), f.size);
                    file.partition_values = vec![
                        ScalarValue::Utf8(Some(f.uri.clone())),
                        ScalarValue::TimestampMicrosecond(Some(f.ingested_at), Some("UTC".into())),
                    ];
                    file.extensions
                        .insert(DecodeSchema(Arc::new(widened_to(schema, &table_columns))));
                    file
                })
                .collect()
        };
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.extend(extra_columns());
        Ok(Self {
            reader: ReaderKind(spec.reader),
            mode,
            store_url: spec.store_url,
            files,
            file_schema,
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

/// The per-file columns every bronze table has.
fn extra_columns() -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new(FILE_COLUMN, DataType::Utf8, false)),
        Arc::new(Field::new(
            INGESTED_AT_COLUMN,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        )),
    ]
}

/// `file` as byte ranges of at most [`SCAN_PIECE`] (the scan aligns each to whole lines); a
/// file no larger stays whole.
fn pieces(file: &PartitionedFile) -> Vec<PartitionedFile> {
    let (start, end) = file.range();
    if end - start <= SCAN_PIECE {
        return vec![file.clone()];
    }
    (start..end)
        .step_by(SCAN_PIECE as usize)
        .map(|from| {
            let to = (from + SCAN_PIECE).min(end);
            file.clone().with_range(from as i64, to as i64)
        })
        .collect()
}

#[async_trait]
impl TableProvider for BronzeTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(extra_columns())
            .build();
        let source: Arc<dyn FileSource> = match &self.reader.0 {
            Reader::Parquet => Arc::new(ParquetSource::new(table_schema)),
            Reader::Text(text) => Arc::new(TextSource::new(text.clone(), self.mode, table_schema)),
        };
        let files = if source.supports_repartitioning() {
            self.files.iter().flat_map(pieces).collect()
        } else {
            self.files.clone()
        };
        let partitions = state.config().target_partitions().max(1);
        let groups = FileGroup::new(files).split_files(partitions);
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        let scan = DataSourceExec::from_data_source(config);
        // A scan of no files has no partitions, which operators that need one (a limit with
        // an offset) refuse; an empty table is one empty partition.
        if self.files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(scan.schema())));
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(file: &PartitionedFile) -> Vec<(u64, u64)> {
        pieces(file).iter().map(PartitionedFile::range).collect()
    }

    #[test]
    fn a_large_file_is_scanned_in_contiguous_pieces_and_a_small_one_whole() {
        let size = 3 * SCAN_PIECE + 5;
        let large = PartitionedFile::new("raw/big.ndjson", size);
        let got = ranges(&large);
        let piece = SCAN_PIECE;
        let expected = [
            (0, piece),
            (piece, 2 * piece),
            (2 * piece, 3 * piece),
            (3 * piece, size),
        ];
        assert_eq!(got, expected);
        // A range the optimizer already cut is cut within its bounds.
        let half = large.clone().with_range(100, (SCAN_PIECE + 200) as i64);
        assert_eq!(
            ranges(&half),
            [
                (100, SCAN_PIECE + 100),
                (SCAN_PIECE + 100, SCAN_PIECE + 200)
            ]
        );
        let small = PartitionedFile::new("raw/small.ndjson", SCAN_PIECE);
        let kept = pieces(&small);
        assert_eq!(kept.len(), 1);
        assert!(kept[0].range.is_none(), "a small file is read whole");
    }
}
