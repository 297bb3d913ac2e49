//! The `bronze` schema: one table per landed source table (`<source>_<table>`) and its
//! `<source>_<table>__rejected` twin, resolved from the ingest log when a query names them,
//! so tables landed after the session started are visible at once. Also builds tables over
//! ad-hoc raw paths for the table functions and bare quoted paths.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableProvider;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::BronzeError;
use super::format::{self, Reader};
use super::paths::{AllowedRoots, LocalFile, ResolvedPath};
use super::scan::ScanMode;
use super::table::{BronzeTable, RawFileRef, TableSpec};
use crate::lake::RawFormat;
use crate::lake::{Lake, delta, layout};
use crate::land::SourcesFile;
use crate::meta::{IngestLog, IngestRecord, ingest_log};

/// Suffix of the table holding a bronze table's rejected records.
pub const REJECTED_SUFFIX: &str = "__rejected";

/// Everything bronze reads need to know about a project and its lake.
#[derive(Debug)]
pub struct Bronze {
    lake: Lake,
    /// Reader options declared per `(source, table)`.
    options: HashMap<(String, String), BTreeMap<String, String>>,
    roots: AllowedRoots,
    /// Table names as of the last look at the ingest log (listing is synchronous).
    names: RwLock<Vec<String>>,
    /// The ingest log as last read, with the Delta version it was read at: lookups re-read it
    /// only when a newer commit exists.
    log: RwLock<Option<(u64, Arc<Vec<IngestRecord>>)>>,
}

impl Bronze {
    pub fn new(lake: Lake, declaration: Option<&SourcesFile>, roots: AllowedRoots) -> Self {
        let options = declaration
            .map(|d| {
                d.sources
                    .iter()
                    .flat_map(|s| {
                        s.tables
                            .iter()
                            .map(|t| ((s.name.clone(), t.name.clone()), t.options.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            lake,
            options,
            roots,
            names: RwLock::new(Vec::new()),
            log: RwLock::new(None),
        }
    }

    /// The ingest log's records (re-read only when it has a newer commit than the last read),
    /// remembering the table names they imply.
    pub async fn refresh(&self) -> Result<Arc<Vec<IngestRecord>>, DataFusionError> {
        let path = layout::meta_table(ingest_log::TABLE);
        let Some(version) = delta::latest_version(&self.lake, &path).await? else {
            return Ok(Arc::default());
        };
        let cached = self.log.read().expect("log lock").clone();
        if let Some((_, records)) = cached.filter(|(seen, _)| *seen == version) {
            return Ok(records);
        }
        let records = Arc::new(
            IngestLog::new()
                .records(&self.lake)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
        );
        let mut names: Vec<String> = records
            .iter()
            .flat_map(|r| {
                let base = table_name(&r.source, &r.table_name);
                [format!("{base}{REJECTED_SUFFIX}"), base]
            })
            .collect();
        names.sort();
        names.dedup();
        *self.names.write().expect("names lock") = names;
        *self.log.write().expect("log lock") = Some((version, Arc::clone(&records)));
        Ok(records)
    }

    /// The landed table `name` (or its rejected twin), if it exists.
    pub async fn landed(&self, name: &str) -> Result<Option<BronzeTable>> {
        let (base, mode) = match name.strip_suffix(REJECTED_SUFFIX) {
            Some(base) => (base, ScanMode::Rejected),
            None => (name, ScanMode::Rows),
        };
        let records = self.refresh().await?;
        let files: Vec<&IngestRecord> = records
            .iter()
            .filter(|r| table_name(&r.source, &r.table_name) == base)
            .collect();
        let Some(first) = files.first() else {
            return Ok(None);
        };
        let format = parse_format(&first.format).map_err(DataFusionError::from)?;
        let no_options = BTreeMap::new();
        let options = self
            .options
            .get(&(first.source.clone(), first.table_name.clone()))
            .unwrap_or(&no_options);
        let spec = TableSpec {
            reader: Reader::new(format, options, base).map_err(DataFusionError::from)?,
            fingerprint: Reader::fingerprint(format, options),
            store_url: object_store_url(&self.lake.store_url())?,
            store: Arc::clone(self.lake.base_store()),
            files: files
                .iter()
                .map(|r| {
                    let url = self.lake.url_of(&Path::from(r.bronze_path.as_str()));
                    RawFileRef {
                        location: Path::from_url_path(url.path()).unwrap_or_default(),
                        uri: url.to_string(),
                        size: r.bytes,
                        identity: r.sha256.clone(),
                        ingested_at: r.landed_at.timestamp_micros(),
                    }
                })
                .collect(),
        };
        Ok(Some(
            BronzeTable::try_new(spec, mode)
                .await
                .map_err(DataFusionError::from)?,
        ))
    }

    /// A table over the raw files at `path` (a file, a directory or a glob).
    pub async fn at_path(
        &self,
        path: &str,
        format: RawFormat,
        options: &BTreeMap<String, String>,
    ) -> Result<BronzeTable> {
        let resolved = self.roots.resolve(path).map_err(DataFusionError::from)?;
        let store = self.store_for(&resolved);
        let files = if resolved.store_url.scheme() == "file" {
            let roots = self.roots.clone();
            let local = resolved.clone();
            tokio::task::spawn_blocking(move || roots.local_files(&local))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(DataFusionError::from)?
                .into_iter()
                .map(Listed::local)
                .collect::<Result<Vec<_>>>()?
        } else {
            list_files(&store, &resolved)
                .await?
                .into_iter()
                .map(|meta| Listed {
                    shown: meta.location.to_string(),
                    meta,
                })
                .collect()
        };
        if files.is_empty() {
            return Err(BronzeError::NoFiles {
                path: path.to_string(),
            }
            .into());
        }
        let (format, options) = sniff(&store, &files[0].meta, format, options).await?;
        let spec = TableSpec {
            reader: Reader::new(format, &options, path).map_err(DataFusionError::from)?,
            fingerprint: Reader::fingerprint(format, &options),
            store_url: object_store_url(&resolved.store_url)?,
            store,
            files: files
                .into_iter()
                .map(|Listed { meta, shown }| RawFileRef {
                    uri: format!(
                        "{}/{shown}",
                        resolved.store_url.as_str().trim_end_matches('/'),
                    ),
                    identity: format!(
                        "{}|{}|{}",
                        meta.location,
                        meta.size,
                        meta.last_modified.timestamp_micros()
                    ),
                    location: meta.location,
                    size: meta.size,
                    ingested_at: meta.last_modified.timestamp_micros(),
                })
                .collect(),
        };
        BronzeTable::try_new(spec, ScanMode::Rows)
            .await
            .map_err(DataFusionError::from)
    }

    fn store_for(&self, resolved: &ResolvedPath) -> Arc<dyn ObjectStore> {
        if resolved.store_url == self.lake.store_url() {
            Arc::clone(self.lake.base_store())
        } else {
            Arc::new(LocalFileSystem::new())
        }
    }
}

/// The SQL name of a landed table.
pub fn table_name(source: &str, table: &str) -> String {
    format!("{source}_{table}")
}

/// The raw format named `name` as the ingest log and codecs spell it (`csv`, `ndjson`, ...).
pub fn parse_format(name: &str) -> Result<RawFormat, BronzeError> {
    serde_norway::from_str(name).map_err(|_| BronzeError::UnknownFormat(name.to_string()))
}

fn object_store_url(url: &url::Url) -> Result<ObjectStoreUrl> {
    ObjectStoreUrl::parse(url.as_str())
}

/// A raw file a path names: where its store reads it, and the name `_file` shows (for a local
/// file reached through a link inside the lake, the link's path, not the real one).
struct Listed {
    meta: object_store::ObjectMeta,
    shown: String,
}

impl Listed {
    fn local(file: LocalFile) -> Result<Self> {
        let location = Path::from_absolute_path(&file.real)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Self {
            meta: object_store::ObjectMeta {
                location,
                last_modified: file.modified.into(),
                size: file.size,
                e_tag: None,
                version: None,
            },
            shown: file.shown,
        })
    }
}

/// Files at a resolved path on a remote store (HDFS, S3), sorted: the file itself, everything
/// under a directory, or what matches a glob. Remote stores have no symbolic links.
async fn list_files(
    store: &Arc<dyn ObjectStore>,
    resolved: &ResolvedPath,
) -> Result<Vec<object_store::ObjectMeta>> {
    let listed: Vec<object_store::ObjectMeta> =
        match store.list(Some(&resolved.prefix)).try_collect().await {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
    let mut files: Vec<_> = match resolved.glob().map_err(DataFusionError::from)? {
        Some(glob) => {
            let matcher = glob.compile_matcher();
            listed
                .into_iter()
                .filter(|m| matcher.is_match(m.location.as_ref()))
                .collect()
        }
        None if listed.is_empty() => {
            match object_store::ObjectStoreExt::head(store.as_ref(), &resolved.prefix).await {
                Ok(meta) => vec![meta],
                Err(object_store::Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e.into()),
            }
        }
        None => listed,
    };
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// Fills in what an ad-hoc read left unsaid, from the first file's first bytes: whether JSON
/// is an array document or one object per line, and which XML element is the row.
async fn sniff(
    store: &Arc<dyn ObjectStore>,
    first: &object_store::ObjectMeta,
    format: RawFormat,
    options: &BTreeMap<String, String>,
) -> Result<(RawFormat, BTreeMap<String, String>)> {
    let mut options = options.clone();
    let needs_sniff =
        format == RawFormat::Json || (format == RawFormat::Xml && !options.contains_key("row_tag"));
    if !needs_sniff {
        return Ok((format, options));
    }
    let head = object_store::ObjectStoreExt::get_range(
        store.as_ref(),
        &first.location,
        0..first.size.min(64 * 1024),
    )
    .await?;
    match format {
        RawFormat::Json if format::json_is_lines(&head) => Ok((RawFormat::Ndjson, options)),
        RawFormat::Xml => {
            let tag = format::xml_row_tag(&head).ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "cannot tell the row element of {}: pass row_tag => '…'",
                    first.location
                ))
            })?;
            options.insert("row_tag".to_string(), tag);
            Ok((format, options))
        }
        _ => Ok((format, options)),
    }
}

/// [`Bronze`] as DataFusion's `bronze` schema.
#[derive(Debug)]
pub struct BronzeSchema(pub Arc<Bronze>);

#[async_trait]
impl SchemaProvider for BronzeSchema {
    fn table_names(&self) -> Vec<String> {
        self.0.names.read().expect("names lock").clone()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .0
            .landed(name)
            .await?
            .map(|t| Arc::new(t) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|n| n == name)
    }
}
