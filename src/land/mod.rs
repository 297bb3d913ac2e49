//! Landing: raw files from the sources declared in `catalog/sources.yml` into the bronze layer,
//! byte for byte (schema-on-read: nothing is parsed here).
//!
//! Each file is hashed, skipped if the ingest log already holds that content for its table,
//! otherwise copied under a scratch name and renamed into place, several at a time. The
//! ingest log commit is what makes a file part of bronze; files a killed run left behind
//! without a log row are removed by the next run, which lands them again.

mod copy;
pub mod declaration;
mod folder;
pub mod ingest_log;
mod source;

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::Utc;
use futures::{StreamExt, TryStreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::config::Config;
use crate::lake::{Lake, layout};
pub use copy::Digested;
pub use declaration::{SourceDecl, SourceKind, SourcesFile, TableDecl};
pub use ingest_log::{IngestLog, IngestRecord};
pub use source::{ByteStream, RawFile, Source};

/// Landed files are committed to the ingest log in groups this large, so a killed run loses
/// at most one group of progress while the log does not grow one commit per file.
const COMMIT_EVERY: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum LandError {
    #[error("cannot read the sources declaration {path}: {source}")]
    ReadDeclaration {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    InvalidDeclaration { path: PathBuf, message: String },
    #[error("no source or table named {0:?} in the sources declaration")]
    UnknownSelection(String),
    #[error("source {source_name}: location {location} does not exist or is not a directory")]
    MissingSource {
        source_name: String,
        location: String,
    },
    #[error("cannot read {location}: {source}")]
    Read {
        location: String,
        source: std::io::Error,
    },
    #[error("{location} changed while it was being landed; run land again")]
    Changed { location: String },
    #[error("lake storage error at {uri}: {source}")]
    Lake {
        uri: String,
        source: object_store::Error,
    },
    #[error("ingest log {0}")]
    IngestLog(#[from] crate::meta::MetaError),
}

impl LandError {
    pub(crate) fn read(location: &str, source: std::io::Error) -> Self {
        Self::Read {
            location: location.to_string(),
            source,
        }
    }

    pub(crate) fn lake(lake: &Lake, path: &Path, source: object_store::Error) -> Self {
        Self::Lake {
            uri: lake.url_of(path).to_string(),
            source,
        }
    }
}

/// What to land and how.
#[derive(Debug, Clone)]
pub struct LandOptions {
    /// `source` or `source.table`; empty lands everything declared.
    pub selectors: Vec<String>,
    /// Files copied at once.
    pub concurrency: usize,
    pub show_progress: bool,
}

/// Outcome of one `land`.
#[derive(Debug, Default)]
pub struct LandReport {
    pub batch_id: String,
    pub tables: Vec<TableReport>,
    /// Files that did not land (the rest did, and are logged).
    pub failures: Vec<LandFailure>,
    /// Files an interrupted earlier run left in bronze without a log row, now removed.
    pub orphans_removed: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub source: String,
    pub table: String,
    /// Files the source offered.
    pub offered: usize,
    pub landed: usize,
    /// Files whose content was already in bronze.
    pub skipped: usize,
    pub bytes: u64,
}

#[derive(Debug)]
pub struct LandFailure {
    pub source: String,
    pub table: String,
    pub error: LandError,
}

/// A file that will land, with everything decided up front so naming is deterministic.
struct Planned<'a> {
    source: &'a SourceDecl,
    table: &'a TableDecl,
    reader: &'a dyn Source,
    file: RawFile,
    digest: Digested,
    dest: Path,
}

/// Lands every selected table. Storage and ingest-log errors abort (whatever landed before is
/// committed); an unreadable file or a missing source is reported in [`LandReport::failures`]
/// while everything else lands.
pub async fn land(
    config: &Config,
    lake: &Lake,
    opts: &LandOptions,
) -> Result<LandReport, LandError> {
    let declaration = SourcesFile::load(&config.project_path(&config.land.sources))?;
    let selected = declaration.select(&opts.selectors)?;
    let log = IngestLog::new();
    let history = log.records(lake).await?;
    let orphans_removed = remove_orphans(lake, &selected, &history).await?;
    let now = Utc::now();
    let batch_id = now.format("%Y%m%dT%H%M%S%3fZ").to_string();
    let concurrency = opts.concurrency.max(1);

    let readers: Vec<Box<dyn Source>> = selected
        .iter()
        .map(|(decl, _)| open_source(config, decl))
        .collect();
    let mut known: HashSet<(String, String, String)> = history
        .into_iter()
        .map(|r| (r.source, r.table_name, r.sha256))
        .collect();
    let mut tables = Vec::new();
    let mut failures = Vec::new();
    let mut plan = Vec::new();
    for ((decl, decl_tables), reader) in selected.iter().zip(&readers) {
        for &table in decl_tables {
            let mut counts = TableReport {
                source: decl.name.clone(),
                table: table.name.clone(),
                ..TableReport::default()
            };
            let offered = match reader.discover(table).await {
                Ok(files) => files,
                Err(error) => {
                    failures.push(LandFailure::new(decl, table, error));
                    tables.push(counts);
                    continue;
                }
            };
            counts.offered = offered.len();
            let first = plan.len();
            for digested in digest_all(reader.as_ref(), offered, concurrency).await {
                let (file, digest) = match digested {
                    Ok(ok) => ok,
                    Err(error) => {
                        failures.push(LandFailure::new(decl, table, error));
                        continue;
                    }
                };
                // The same content offered twice, now or in an earlier run, lands once.
                let key = (decl.name.clone(), table.name.clone(), digest.sha256.clone());
                if !known.insert(key) {
                    counts.skipped += 1;
                    continue;
                }
                let dest = layout::bronze_file(
                    &decl.name,
                    &table.name,
                    now.date_naive(),
                    &batch_id,
                    plan.len() - first,
                    &file.extension,
                );
                plan.push(Planned {
                    source: decl,
                    table,
                    reader: reader.as_ref(),
                    file,
                    digest,
                    dest,
                });
            }
            tables.push(counts);
        }
    }

    let progress = progress_bar(opts.show_progress, &plan);
    let mut results = stream::iter(plan.iter())
        .map(|planned| {
            let progress = &progress;
            let batch_id = &batch_id;
            async move {
                let result = land_one(lake, planned, batch_id, now, progress).await;
                (planned, result)
            }
        })
        .buffer_unordered(concurrency);
    let mut pending = Vec::new();
    let mut done = 0;
    while let Some((planned, result)) = results.next().await {
        done += 1;
        progress.set_message(format!("{done}/{} files", plan.len()));
        match result {
            Ok(record) => {
                let counts = tables
                    .iter_mut()
                    .find(|t| t.source == planned.source.name && t.table == planned.table.name)
                    .expect("every planned table has a report");
                counts.landed += 1;
                counts.bytes += record.bytes;
                pending.push(record);
                if pending.len() >= COMMIT_EVERY {
                    log.append(lake, &pending).await?;
                    pending.clear();
                }
            }
            Err(error) => failures.push(LandFailure::new(planned.source, planned.table, error)),
        }
    }
    drop(results);
    log.append(lake, &pending).await?;
    progress.finish_and_clear();
    Ok(LandReport {
        batch_id,
        tables,
        failures,
        orphans_removed,
    })
}

impl LandFailure {
    fn new(source: &SourceDecl, table: &TableDecl, error: LandError) -> Self {
        Self {
            source: source.name.clone(),
            table: table.name.clone(),
            error,
        }
    }
}

/// The reader for one declared source.
fn open_source(config: &Config, decl: &SourceDecl) -> Box<dyn Source> {
    match &decl.kind {
        SourceKind::Folder { location } => Box::new(folder::FolderSource::new(
            &decl.name,
            config.project_path(location),
        )),
    }
}

/// Hashes the offered files, several at once, keeping their order.
async fn digest_all(
    reader: &dyn Source,
    files: Vec<RawFile>,
    concurrency: usize,
) -> Vec<Result<(RawFile, Digested), LandError>> {
    stream::iter(files)
        .map(|file| async move {
            let digest = copy::digest(reader.open(&file).await?).await?;
            Ok((file, digest))
        })
        .buffered(concurrency)
        .collect()
        .await
}

/// Copies one planned file into bronze and returns its log record.
async fn land_one(
    lake: &Lake,
    planned: &Planned<'_>,
    batch_id: &str,
    now: chrono::DateTime<Utc>,
    progress: &ProgressBar,
) -> Result<IngestRecord, LandError> {
    let bytes = planned.reader.open(&planned.file).await?;
    let written = copy::write_atomically(lake, bytes, &planned.dest, &planned.digest, |n| {
        progress.inc(n)
    })
    .await
    .map_err(|e| match e {
        copy::WriteError::Changed => LandError::Changed {
            location: planned.file.location.clone(),
        },
        copy::WriteError::Land(e) => e,
    })?;
    Ok(IngestRecord {
        batch_id: batch_id.to_string(),
        source: planned.source.name.clone(),
        table_name: planned.table.name.clone(),
        format: planned.table.format.to_string(),
        source_path: planned.file.location.clone(),
        bronze_path: planned.dest.to_string(),
        bytes: written.bytes,
        sha256: written.sha256,
        landed_at: now,
    })
}

/// Removes what an interrupted run left behind: scratch files, and bronze files of the
/// selected tables that never got their ingest-log row. Assumes one lander per lake at a time.
async fn remove_orphans(
    lake: &Lake,
    selected: &[(&SourceDecl, Vec<&TableDecl>)],
    history: &[IngestRecord],
) -> Result<usize, LandError> {
    let logged: HashSet<&str> = history.iter().map(|r| r.bronze_path.as_str()).collect();
    for scratch in list(lake, &layout::tmp_dir()).await? {
        delete(lake, &scratch).await?;
    }
    let mut removed = 0;
    for (source, tables) in selected {
        for table in tables {
            for path in list(lake, &layout::bronze_table(&source.name, &table.name)).await? {
                if !logged.contains(path.as_ref()) {
                    tracing::warn!(path = %lake.url_of(&path), "removing a file an interrupted land left unlogged");
                    delete(lake, &path).await?;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

/// Every file under `prefix`; a prefix that does not exist yet holds none.
async fn list(lake: &Lake, prefix: &Path) -> Result<Vec<Path>, LandError> {
    match lake
        .store()
        .list(Some(prefix))
        .map_ok(|m| m.location)
        .try_collect()
        .await
    {
        Ok(paths) => Ok(paths),
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(LandError::lake(lake, prefix, e)),
    }
}

async fn delete(lake: &Lake, path: &Path) -> Result<(), LandError> {
    match lake.store().delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(LandError::lake(lake, path, e)),
    }
}

fn progress_bar(show: bool, plan: &[Planned<'_>]) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let total = plan.iter().map(|p| p.digest.bytes).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "landing [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
