//! The `folder` source kind: files under a local directory that match a table's glob.
//!
//! Each file is hashed first, skipped if the ingest log already holds that content for its
//! table, otherwise copied under a scratch name and renamed into place, several at a time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::{StreamExt, stream};
use globset::Glob;
use indicatif::ProgressBar;
use tokio_util::io::ReaderStream;

use super::copy::{self, Digested};
use super::declaration::TableDecl;
use super::source::{ByteStream, Landing, RawFile, Source, TableOutcome, extension_of};
use super::{IngestRecord, LandError, progress_bar};

/// Landed files are committed to the ingest log in groups this large, so a killed run loses
/// at most one group of progress while the log does not grow one commit per file.
const COMMIT_EVERY: usize = 256;

/// Reads 1 MiB at a time: large enough for throughput, small enough for bounded memory.
const READ_CHUNK: usize = 1 << 20;

pub struct FolderSource {
    source: String,
    dir: PathBuf,
}

impl FolderSource {
    pub fn new(source: &str, dir: PathBuf) -> Self {
        Self {
            source: source.to_string(),
            dir,
        }
    }
}

#[async_trait]
impl Source for FolderSource {
    async fn land(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
    ) -> Result<TableOutcome, LandError> {
        let mut outcome = TableOutcome::default();
        let offered = match self.discover(table).await {
            Ok(files) => files,
            Err(error) => {
                outcome.failures.push(error);
                return Ok(outcome);
            }
        };
        outcome.report.offered = offered.len();
        let mut known: HashSet<String> = landing
            .history_of(table)
            .map(|r| r.sha256.clone())
            .collect();
        let mut plan = Vec::new();
        for digested in self.digest_all(offered, landing.concurrency).await {
            let (file, digest) = match digested {
                Ok(ok) => ok,
                Err(error) => {
                    outcome.failures.push(error);
                    continue;
                }
            };
            // The same content offered twice, now or in an earlier run, lands once.
            if !known.insert(digest.sha256.clone()) {
                outcome.report.skipped += 1;
                continue;
            }
            let dest = landing.bronze_path(table, plan.len(), &file.extension);
            plan.push((file, digest, dest));
        }

        let total = plan.iter().map(|(_, digest, _)| digest.bytes).sum();
        let progress = progress_bar(landing.show_progress, total);
        // Each copy owns its plan entry: futures borrowing from `plan` would need a closure
        // over every lifetime, which the Send future of an async trait method cannot prove.
        let copies = plan.into_iter().map(|(file, digest, dest)| {
            let progress = &progress;
            async move {
                let result = self
                    .land_one(landing.lake, &file, &digest, &dest, progress)
                    .await;
                (file, dest, result)
            }
        });
        let mut results = stream::iter(copies).buffer_unordered(landing.concurrency);
        let mut pending: Vec<IngestRecord> = Vec::new();
        while let Some((file, dest, result)) = results.next().await {
            match result {
                Ok(written) => {
                    outcome.report.landed += 1;
                    outcome.report.bytes += written.bytes;
                    pending.push(landing.record(table, &file.location, &dest, &written, None));
                    if pending.len() >= COMMIT_EVERY {
                        landing.commit(&pending).await?;
                        pending.clear();
                    }
                }
                Err(error) => outcome.failures.push(error),
            }
        }
        drop(results);
        landing.commit(&pending).await?;
        progress.finish_and_clear();
        Ok(outcome)
    }
}

impl FolderSource {
    /// Lists the files matching `table`'s glob, in a stable order.
    async fn discover(&self, table: &TableDecl) -> Result<Vec<RawFile>, LandError> {
        if !self.dir.is_dir() {
            return Err(LandError::MissingSource {
                source_name: self.source.clone(),
                location: self.dir.display().to_string(),
            });
        }
        let matcher = Glob::new(table.file_pattern())
            .expect("patterns are validated when the declaration loads")
            .compile_matcher();
        let dir = self.dir.clone();
        // Walking a directory is blocking I/O; keep it off the async workers.
        tokio::task::spawn_blocking(move || walk(&dir, &matcher))
            .await
            .expect("directory walk does not panic")
    }

    async fn open(&self, file: &RawFile) -> Result<ByteStream, LandError> {
        let path = PathBuf::from(&file.location);
        let handle = tokio::fs::File::open(&path)
            .await
            .map_err(|e| LandError::read(&file.location, e))?;
        let location = file.location.clone();
        Ok(ReaderStream::with_capacity(handle, READ_CHUNK)
            .map(move |chunk| chunk.map_err(|e| LandError::read(&location, e)))
            .boxed())
    }

    /// Hashes the offered files, several at once, keeping their order.
    async fn digest_all(
        &self,
        files: Vec<RawFile>,
        concurrency: usize,
    ) -> Vec<Result<(RawFile, Digested), LandError>> {
        stream::iter(files)
            .map(|file| async move {
                let digest = copy::digest(self.open(&file).await?).await?;
                Ok((file, digest))
            })
            .buffered(concurrency)
            .collect()
            .await
    }

    /// Copies one file into bronze at `dest`, insisting on the content that was hashed.
    async fn land_one(
        &self,
        lake: &crate::lake::Lake,
        file: &RawFile,
        digest: &Digested,
        dest: &object_store::path::Path,
        progress: &ProgressBar,
    ) -> Result<Digested, LandError> {
        let bytes = self.open(file).await?;
        copy::write_atomically(lake, bytes, dest, digest, |n| progress.inc(n))
            .await
            .map_err(|e| match e {
                copy::WriteError::Changed => LandError::Changed {
                    location: file.location.clone(),
                },
                copy::WriteError::Land(e) => e,
            })
    }
}

fn walk(dir: &Path, matcher: &globset::GlobMatcher) -> Result<Vec<RawFile>, LandError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(entry) => entry,
            // A matching entry that cannot be followed (a dangling link) is still offered, so
            // opening it fails for that file alone, naming it.
            Err(e) if e.path().is_some_and(|p| matches(dir, p, matcher)) => {
                let location = e.path().unwrap_or(dir).display().to_string();
                files.push(RawFile {
                    extension: extension_of(&location),
                    location,
                    size: None,
                });
                continue;
            }
            Err(e) => {
                let at = e.path().unwrap_or(dir).display().to_string();
                return Err(LandError::read(&at, e.into()));
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        if !matches(dir, entry.path(), matcher) {
            continue;
        }
        let size = entry.metadata().ok().map(|m| m.len());
        let location = entry.path().display().to_string();
        files.push(RawFile {
            extension: extension_of(&location),
            location,
            size,
        });
    }
    Ok(files)
}

fn matches(dir: &Path, path: &Path, matcher: &globset::GlobMatcher) -> bool {
    matcher.is_match(path.strip_prefix(dir).unwrap_or(path))
}
