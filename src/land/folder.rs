//! The `folder` source kind: files under a local directory that match a table's glob.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use globset::Glob;
use tokio_util::io::ReaderStream;

use super::LandError;
use super::declaration::TableDecl;
use super::source::{ByteStream, RawFile, Source, extension_of};

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
    async fn discover(&self, table: &TableDecl) -> Result<Vec<RawFile>, LandError> {
        if !self.dir.is_dir() {
            return Err(LandError::MissingSource {
                source_name: self.source.clone(),
                location: self.dir.display().to_string(),
            });
        }
        let matcher = Glob::new(&table.pattern)
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
