//! Landing: data from the sources declared in `catalog/sources.yml` into the bronze layer.
//! Files (folder, HTTP and S3 sources) land byte for byte (schema-on-read: nothing is parsed here);
//! database rows (PostgreSQL sources) land as Parquet files typed like their columns; events
//! from a message broker (NATS JetStream sources) land as micro-batch NDJSON files.
//!
//! Each source kind is one module behind [`Source`]. Every kind writes a file under a scratch
//! name and renames it into place, and the ingest log commit is what makes a file part of
//! bronze; files a killed run left behind without a log row are removed by the next run,
//! which lands them again.

mod copy;
pub(crate) mod declaration;
mod folder;
mod http;
mod postgres;
mod s3;
pub(crate) mod schedule;
mod scratch;
mod source;
pub mod stream;
pub(crate) mod watch;

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::Utc;
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::config::Config;
use crate::lake::s3::{S3Location, S3Settings};
use crate::lake::{Lake, layout};
use crate::meta::ingest_log::IngestLogError;
use crate::meta::{IngestLog, IngestRecord};
pub use copy::Digested;
pub use declaration::{SourceDecl, SourceKind, SourcesFile, TableDecl};
pub use source::{ByteStream, Landing, RawFile, ScratchFile, Source, TableOutcome};

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
    #[error(
        "{location} is a symbolic link out of the folder of source {source_name}, not landed \
         (set `follow_symlinks: true` on the source to land what such links point to)"
    )]
    OutsideSource {
        source_name: String,
        location: String,
    },
    #[error("cannot remove the scratch file {path}: {source}")]
    Scratch {
        path: String,
        source: std::io::Error,
    },
    #[error("{location} changed while it was being landed; run land again")]
    Changed { location: String },
    #[error("lake storage error at {uri}: {source}")]
    Lake {
        uri: String,
        source: object_store::Error,
    },
    #[error("source {source_name}: environment variable {var} is not set")]
    MissingEnv { source_name: String, var: String },
    #[error("source {source_name}, table {table}: {message}")]
    Postgres {
        source_name: String,
        table: String,
        message: String,
    },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: {source}")]
    S3 {
        url: String,
        source: object_store::Error,
    },
    #[error("source {source_name}, table {table}: {message}")]
    Stream {
        source_name: String,
        table: String,
        message: String,
    },
    #[error(transparent)]
    IngestLog(#[from] IngestLogError),
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
    /// Files copied at once (folder, HTTP and S3 sources).
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

/// Lands every selected table. Storage and ingest-log errors abort (whatever landed before is
/// committed); an unreadable file, a missing source or an unreachable peer is reported in
/// [`LandReport::failures`] while everything else lands.
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

    let mut report = LandReport {
        batch_id: batch_id.clone(),
        orphans_removed,
        ..LandReport::default()
    };
    for (decl, tables) in &selected {
        let reader = open_source(config, decl);
        let source_history: Vec<IngestRecord> = history
            .iter()
            .filter(|r| r.source == decl.name)
            .cloned()
            .collect();
        let landing = Landing {
            lake,
            log: &log,
            source: decl,
            batch_id: &batch_id,
            now,
            history: &source_history,
            concurrency: opts.concurrency.max(1),
            show_progress: opts.show_progress,
        };
        for &table in tables {
            let outcome = reader.land(table, &landing).await?;
            report.tables.push(TableReport {
                source: decl.name.clone(),
                table: table.name.clone(),
                ..outcome.report
            });
            report
                .failures
                .extend(outcome.failures.into_iter().map(|error| LandFailure {
                    source: decl.name.clone(),
                    table: table.name.clone(),
                    error,
                }));
        }
    }
    scratch::remove_own_folder(lake);
    Ok(report)
}

/// The reader for one declared source.
fn open_source(config: &Config, decl: &SourceDecl) -> Box<dyn Source> {
    match &decl.kind {
        SourceKind::Folder {
            location,
            follow_symlinks,
        } => Box::new(folder::FolderSource::new(
            &decl.name,
            config.project_path(location),
            *follow_symlinks,
        )),
        SourceKind::Postgres {
            connection,
            connection_env,
        } => Box::new(postgres::PostgresSource::new(
            &decl.name,
            connection.clone(),
            connection_env.clone(),
        )),
        SourceKind::Http { url, listing } => {
            Box::new(http::HttpSource::new(&decl.name, url, *listing))
        }
        SourceKind::S3 {
            url,
            endpoint,
            region,
            allow_http,
        } => Box::new(s3::S3Source::new(
            S3Location::parse(url).expect("S3 URLs are validated when the declaration loads"),
            S3Settings {
                endpoint: endpoint.clone(),
                region: region.clone(),
                allow_http: *allow_http,
            },
        )),
        SourceKind::Nats { .. } => Box::new(stream::StreamSource::nats(decl)),
    }
}

/// Removes what an interrupted run left behind: scratch files of runs that are gone (see
/// [`scratch`]), and bronze files of the selected tables that never got their ingest-log row
/// (this part assumes one lander per table at a time).
async fn remove_orphans(
    lake: &Lake,
    selected: &[(&SourceDecl, Vec<&TableDecl>)],
    history: &[IngestRecord],
) -> Result<usize, LandError> {
    let logged: HashSet<&str> = history.iter().map(|r| r.bronze_path.as_str()).collect();
    scratch::remove_stale(lake).await?;
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

/// An error with its chain of causes (the top level alone often says only "request error").
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = inner.source();
    }
    message
}

/// `url` as it may be shown and logged: a password in it is masked.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// A byte progress bar over `total` bytes, hidden unless asked for.
fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
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
