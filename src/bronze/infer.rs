//! Per-file schema inference from a bounded prefix, cached by file content and reader settings
//! so that a file is sampled once however often its table is queried.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::datatypes::SchemaRef;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::BronzeError;
use super::format::Reader;

/// Bytes sampled from the start of a text file: enough for thousands of records, bounded so
/// inference costs the same for a 1 KB and a 10 GB file.
pub const SAMPLE_BYTES: u64 = 1 << 20;

/// Inferred schemas by `"<reader fingerprint>|<file identity>"`, for the whole process.
static CACHE: LazyLock<Mutex<HashMap<String, SchemaRef>>> = LazyLock::new(Default::default);

/// A file to infer: where it is and what identifies its content.
pub struct FileToInfer<'a> {
    pub location: &'a Path,
    pub size: u64,
    /// A content identity: the sha256 for landed files, else path, size and modification time.
    pub identity: &'a str,
}

/// The schema of one file, from the cache or by sampling it.
pub async fn file_schema(
    store: &Arc<dyn ObjectStore>,
    file: &FileToInfer<'_>,
    reader: &Reader,
    fingerprint: &str,
) -> Result<SchemaRef, BronzeError> {
    let key = format!("{fingerprint}|{}", file.identity);
    if let Some(schema) = CACHE.lock().expect("cache lock").get(&key) {
        return Ok(Arc::clone(schema));
    }
    let failed = |message: String| BronzeError::Infer {
        file: file.location.to_string(),
        message,
    };
    let schema = match reader {
        Reader::Parquet => {
            let meta = ObjectMeta {
                location: file.location.clone(),
                last_modified: chrono::DateTime::UNIX_EPOCH,
                size: file.size,
                e_tag: None,
                version: None,
            };
            let schema = DFParquetMetadata::new(store.as_ref(), &meta)
                .fetch_schema()
                .await
                .map_err(|e| failed(e.to_string()))?;
            Arc::new(schema)
        }
        Reader::Text(text) => {
            let end = file.size.min(SAMPLE_BYTES);
            let prefix = store
                .get_range(file.location, 0..end)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let schema = text
                .decoder
                .infer_schema(&prefix, end == file.size)
                .map_err(|e| failed(e.to_string()))?;
            Arc::new(schema)
        }
    };
    CACHE
        .lock()
        .expect("cache lock")
        .insert(key, Arc::clone(&schema));
    Ok(schema)
}
