//! A Delta table version read as the plain Parquet scan it resolves to. delta-rs's own scan
//! node cannot be sent to another process (delta-rs issue 4171), so a session whose queries run
//! on a cluster marks itself with [`ParquetReads`] and reads Delta tables through
//! [`DeltaParquetTable`]: the snapshot's files, with their partition values and row counts,
//! scanned by DataFusion's Parquet source, which DataFusion's protobuf carries anywhere. Other
//! sessions read Delta tables through delta-rs as always.
//!
//! Deletion vectors and column mapping change what a file's rows or columns mean; a table that
//! uses either is read through delta-rs (and so in this process), with a warning saying why.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{DataFusionError, Result, ScalarValue, Statistics};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::TableProvider;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion_datasource::PartitionedFile;
use deltalake::DeltaTable;
use object_store::path::Path;
use url::Url;

/// Session config extension: read Delta tables as Parquet scans ([`DeltaParquetTable`]), for
/// sessions whose plans travel to a cluster (`remote`) or that read many small queries (the
/// server: the scan is planned from the cached file list, footers come from the file-metadata
/// cache).
#[derive(Debug, Default, Clone, Copy)]
pub struct ParquetReads {
    pub remote: bool,
}

/// A loaded Delta table version and, once a session asked for it, that version's files as a
/// [`DeltaParquetTable`] (built once per version: listing a version's files walks its log data).
#[derive(Debug, Clone)]
pub struct TableVersion {
    table: DeltaTable,
    files: Arc<OnceLock<Result<Arc<DeltaParquetTable>, NotPlainParquet>>>,
}

impl TableVersion {
    pub fn new(table: DeltaTable) -> Self {
        Self {
            table,
            files: Arc::default(),
        }
    }

    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// The provider `state` reads this version with; `name` names the table in warnings.
    pub async fn provider(
        &self,
        name: &str,
        state: &dyn Session,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(reads) = state.config().get_extension::<ParquetReads>() {
            let files = match self.files.get() {
                Some(files) => files.clone(),
                None => {
                    let files = DeltaParquetTable::try_new(&self.table)?.map(Arc::new);
                    self.files.get_or_init(|| files).clone()
                }
            };
            match files {
                Ok(files) => return Ok(files),
                Err(why) if reads.remote => {
                    tracing::warn!("{name} is read in this process, not on the cluster: {why}")
                }
                Err(why) => tracing::debug!("{name} is read through delta-rs: {why}"),
            }
        }
        self.table
            .update_datafusion_session(state)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.table.table_provider().await
    }
}

/// The provider `state` reads the Delta table `table` (at the version it was loaded at) with;
/// `name` names it in warnings.
pub async fn provider(
    table: &DeltaTable,
    name: &str,
    state: &dyn Session,
) -> Result<Arc<dyn TableProvider>> {
    TableVersion::new(table.clone()).provider(name, state).await
}

/// Why a table cannot be read as plain Parquet files.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotPlainParquet {
    #[error("its file {0} has a deletion vector")]
    DeletionVectors(String),
    #[error("it maps columns by {0}")]
    ColumnMapping(String),
}

/// The files of one Delta table version, read as Parquet.
#[derive(Debug)]
pub struct DeltaParquetTable {
    /// The table's columns in its own order.
    schema: SchemaRef,
    /// The columns in the files: the table's, partition columns left out.
    file_schema: SchemaRef,
    partition_columns: Vec<FieldRef>,
    store_url: ObjectStoreUrl,
    files: Vec<PartitionedFile>,
}

impl DeltaParquetTable {
    /// The loaded version of `table` as files, or why it cannot be read so.
    pub fn try_new(table: &DeltaTable) -> Result<Result<Self, NotPlainParquet>> {
        let external = |e: deltalake::DeltaTableError| DataFusionError::External(Box::new(e));
        let snapshot = table.snapshot().map_err(external)?;
        let metadata = snapshot.metadata();
        if let Some(mode) = metadata
            .configuration()
            .get("delta.columnMapping.mode")
            .filter(|mode| mode.as_str() != "none")
        {
            return Ok(Err(NotPlainParquet::ColumnMapping(mode.clone())));
        }
        let schema = snapshot.snapshot().arrow_schema();
        let partition_names = metadata.partition_columns();
        let (partition_columns, file_columns): (Vec<FieldRef>, Vec<FieldRef>) = schema
            .fields()
            .iter()
            .cloned()
            .partition(|f| partition_names.contains(f.name()));
        let root = table.table_url();
        let store_url = ObjectStoreUrl::parse(format!("{}://{}", root.scheme(), root.authority()))?;
        let scan_schema = Schema::new(
            file_columns
                .iter()
                .chain(&partition_columns)
                .cloned()
                .collect::<Vec<_>>(),
        );
        let mut files = Vec::new();
        for file in snapshot.log_data().iter() {
            if file.deletion_vector_descriptor().is_some() {
                return Ok(Err(NotPlainParquet::DeletionVectors(file.path().into())));
            }
            let mut part = PartitionedFile::new(
                file_location(root, &file.object_store_path()),
                file.size() as u64,
            );
            part.partition_values =
                partition_values(&partition_columns, &file.partition_values_map())?;
            if let Some(rows) = file.num_records() {
                let stats =
                    Statistics::new_unknown(&scan_schema).with_num_rows(Precision::Exact(rows));
                part = part.with_statistics(Arc::new(stats));
            }
            files.push(part);
        }
        Ok(Ok(Self {
            file_schema: Arc::new(Schema::new(file_columns)),
            schema,
            partition_columns,
            store_url,
            files,
        }))
    }

    /// The index in the scan's columns (files' columns, then partition columns) of each of the
    /// table's columns.
    fn scan_index(&self, table_index: usize) -> usize {
        let name = self.schema.field(table_index).name();
        match self.file_schema.index_of(name) {
            Ok(i) => i,
            Err(_) => {
                let at = self
                    .partition_columns
                    .iter()
                    .position(|f| f.name() == name)
                    .expect("every column is a file or a partition column");
                self.file_schema.fields().len() + at
            }
        }
    }
}

/// The object store path of a file a table's log names relative to the table's root.
fn file_location(root: &Url, relative: &Path) -> Path {
    let joined = format!("{}/{}", root.path().trim_matches('/'), relative.as_ref());
    Path::parse(&joined).unwrap_or_else(|_| Path::from(joined))
}

/// The typed values of `columns` from a file's partition values (as the log writes them).
fn partition_values(
    columns: &[FieldRef],
    values: &HashMap<String, Option<String>>,
) -> Result<Vec<ScalarValue>> {
    columns
        .iter()
        .map(|field| match values.get(field.name()).cloned().flatten() {
            Some(text) => ScalarValue::try_from_string(text, field.data_type()),
            None => ScalarValue::try_from(field.data_type()),
        })
        .collect()
}

#[async_trait]
impl TableProvider for DeltaParquetTable {
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
        let columns: Vec<usize> = match projection {
            Some(projection) => projection.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let projected = Arc::new(self.schema.project(&columns)?);
        if self.files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition_columns.clone())
            .build();
        // The session's Parquet options (pruning by statistics and page index, filter
        // pushdown), and footers and page indexes read once per file across queries.
        let store = state.runtime_env().object_store(&self.store_url)?;
        let footers = state.runtime_env().cache_manager.get_file_metadata_cache();
        let source = Arc::new(
            ParquetSource::new(table_schema)
                .with_table_parquet_options(TableParquetOptions {
                    global: state.config_options().execution.parquet.clone(),
                    ..TableParquetOptions::default()
                })
                .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                    store, footers,
                ))),
        );
        let partitions = state.config().target_partitions().max(1);
        let groups = FileGroup::new(self.files.clone()).split_files(partitions);
        let indices = columns.iter().map(|&i| self.scan_index(i)).collect();
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(Some(indices))?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
