//! The `folder` source kind: files under a local directory that match a table's glob.
//!
//! Each file is hashed first, skipped if the ingest log already holds that content for its
//! table, otherwise copied under a scratch name and renamed into place, several at a time.
//! A symbolic link out of the folder is not followed (it fails, named, like an unreadable
//! file) unless the source says `follow_symlinks: true`: whoever can write the folder must not
//! be able to land any file the lander can read.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::{StreamExt, stream};
use globset::Glob;
use indicatif::ProgressBar;
use tokio_util::io::ReaderStream;

use super::copy::{self, Digested};
use super::declaration::TableDecl;
use super::source::{
    ByteStream, Landing, RawFile, Source, TableFailure, TableOutcome, extension_of,
};
use super::{LandError, progress_bar};
use crate::confine::{self, Confined};
use crate::meta::IngestRecord;

/// Landed files are committed to the ingest log in groups this large, so a killed run loses
/// at most one group of progress while the log does not grow one commit per file.
const COMMIT_EVERY: usize = 256;

/// Reads 1 MiB at a time: large enough for throughput, small enough for bounded memory.
const READ_CHUNK: usize = 1 << 20;

pub struct FolderSource {
    source: String,
    dir: PathBuf,
    follow_symlinks: bool,
}

impl FolderSource {
    pub fn new(source: &str, dir: PathBuf, follow_symlinks: bool) -> Self {
        Self {
            source: source.to_string(),
            dir,
            follow_symlinks,
        }
    }
}

#[async_trait]
impl Source for FolderSource {
    async fn land_table(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        let (offered, refused) = self.discover(table).await.map_err(TableFailure::Source)?;
        outcome.failures.extend(refused);
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
                        landing
                            .commit(&pending)
                            .await
                            .map_err(TableFailure::Abort)?;
                        pending.clear();
                    }
                }
                Err(error) => outcome.failures.push(error),
            }
        }
        drop(results);
        landing
            .commit(&pending)
            .await
            .map_err(TableFailure::Abort)?;
        progress.finish_and_clear();
        Ok(())
    }
}

impl FolderSource {
    /// Lists the files matching `table`'s glob, in a stable order, and the matching links out
    /// of the folder it refuses to follow.
    async fn discover(
        &self,
        table: &TableDecl,
    ) -> Result<(Vec<RawFile>, Vec<LandError>), LandError> {
        if !self.dir.is_dir() {
            return Err(LandError::MissingSource {
                source_name: self.source.clone(),
                location: self.dir.display().to_string(),
            });
        }
        let glob = Glob::new(table.file_pattern())
            .expect("patterns are validated when the declaration loads");
        let dir = self.dir.clone();
        let source = self.source.clone();
        let follow = self.follow_symlinks;
        // Walking a directory is blocking I/O; keep it off the async workers.
        tokio::task::spawn_blocking(move || walk(&dir, &glob, &source, follow))
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

/// The files under `dir` matching `glob`, and a failure for each matching link out of `dir`
/// (unless `follow_symlinks`).
fn walk(
    dir: &Path,
    glob: &Glob,
    source: &str,
    follow_symlinks: bool,
) -> Result<(Vec<RawFile>, Vec<LandError>), LandError> {
    let confined = (!follow_symlinks).then(|| Confined::new([dir]));
    let walked = confine::walk(dir, confined.as_ref()).map_err(|e| {
        let at = e.path().unwrap_or(dir).display().to_string();
        LandError::read(&at, e.into())
    })?;
    let matcher = glob.compile_matcher();
    let offer = |path: &PathBuf| {
        let location = path.display().to_string();
        RawFile {
            extension: extension_of(&location),
            size: std::fs::metadata(path).ok().map(|m| m.len()),
            location,
        }
    };
    // A matching link to nothing is still offered, so opening it fails for that file alone,
    // naming it.
    let mut files: Vec<RawFile> = walked
        .files
        .iter()
        .chain(&walked.broken)
        .filter(|p| matches(dir, p, &matcher))
        .map(offer)
        .collect();
    files.sort_by(|a, b| a.location.cmp(&b.location));
    let refused = walked
        .escapes
        .into_iter()
        .filter(|e| {
            if e.is_dir {
                let relative = e.path.strip_prefix(dir).unwrap_or(&e.path);
                confine::may_match_below(glob, &relative.to_string_lossy())
            } else {
                matches(dir, &e.path, &matcher)
            }
        })
        .map(|e| LandError::OutsideSource {
            source_name: source.to_string(),
            location: e.path.display().to_string(),
        })
        .collect();
    Ok((files, refused))
}

fn matches(dir: &Path, path: &Path, matcher: &globset::GlobMatcher) -> bool {
    matcher.is_match(path.strip_prefix(dir).unwrap_or(path))
}
