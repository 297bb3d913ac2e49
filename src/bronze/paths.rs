//! Which raw paths SQL may read. The table functions and bare quoted paths take user input
//! (and, through the server, remote users' input), so for the server a path is resolved and
//! allowed only inside the lake or a declared folder source: by its text first, then, for
//! local files, by the real path of every file it names (a symbolic link can lead anywhere).
//! The local engine reads any local file its user can read, as DuckDB does, unless its
//! configuration confines it the same way.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use globset::{Glob, GlobBuilder};
use object_store::path::Path as StorePath;
use url::Url;

use super::BronzeError;
use crate::confine::{self, Confined};
use crate::lake::LakeRoot;

/// The roots raw reads are confined to.
#[derive(Debug, Clone)]
pub struct AllowedRoots {
    /// Base for relative paths (the project directory).
    base: PathBuf,
    lake: LakeRoot,
    /// Local directories (folder sources), absolute and normalized.
    folders: Vec<PathBuf>,
    /// Any local file may be read (the local engine of a user reading their own files).
    anywhere: bool,
}

/// A user path resolved to a store and a glob inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPath {
    /// The path as the user wrote it (for messages).
    pub raw: String,
    /// Scheme and authority of the store (`file://`, `hdfs://host:port`).
    pub store_url: Url,
    /// The longest literal directory before any glob character.
    pub prefix: StorePath,
    /// The full pattern (store path), `None` when the path names one file or directory.
    pub glob: Option<String>,
}

impl AllowedRoots {
    /// Reads confined to the lake and `folders` (relative to `base`).
    pub fn new(base: &Path, lake: LakeRoot, folders: Vec<PathBuf>) -> Self {
        Self {
            base: base.to_path_buf(),
            lake,
            folders: folders.iter().map(|f| normalize(&base.join(f))).collect(),
            anywhere: false,
        }
    }

    /// Reads of any local file (relative paths from `base`) and of the lake's store.
    pub fn anywhere(base: &Path, lake: LakeRoot) -> Self {
        Self {
            anywhere: true,
            ..Self::new(base, lake, Vec::new())
        }
    }

    /// Resolves `raw` (a local path, relative to the project, or a URL on the lake's store),
    /// refusing anything outside the allowed roots.
    pub fn resolve(&self, raw: &str) -> Result<ResolvedPath, BronzeError> {
        let refused = |why: &str| BronzeError::PathRefused {
            path: raw.to_string(),
            reason: why.to_string(),
        };
        if raw.contains("..") && !self.anywhere {
            return Err(refused("'..' is not allowed in raw paths"));
        }
        let (store_url, full) = if raw.contains("://") {
            let url = Url::parse(raw).map_err(|e| refused(&e.to_string()))?;
            let lake = self.lake.url();
            let same_store = url.scheme() == lake.scheme() && url.authority() == lake.authority();
            let path = percent_decode(url.path());
            let inside_lake = same_store && is_within(&path, &percent_decode(lake.path()));
            let inside_folder = url.scheme() == "file"
                && (self.anywhere
                    || self
                        .folders
                        .iter()
                        .any(|f| is_within(&path, &f.to_string_lossy())));
            if !(inside_lake || inside_folder) {
                return Err(refused(
                    "it is outside the lake and the declared source folders",
                ));
            }
            let store = Url::parse(&format!("{}://{}", url.scheme(), url.authority()))
                .map_err(|e| refused(&e.to_string()))?;
            (store, path)
        } else {
            let path = normalize(&self.base.join(raw));
            let text = path.to_string_lossy().to_string();
            let lake_dir = match &self.lake {
                LakeRoot::Local(dir) => Some(dir.to_string_lossy().to_string()),
                LakeRoot::Hdfs(_) | LakeRoot::S3(_) => None,
            };
            let allowed = self.anywhere
                || lake_dir.iter().any(|d| is_within(&text, d))
                || self
                    .folders
                    .iter()
                    .any(|f| is_within(&text, &f.to_string_lossy()));
            if !allowed {
                return Err(refused(
                    "it is outside the lake and the declared source folders",
                ));
            }
            (Url::parse("file://").expect("valid URL"), text)
        };
        let trimmed = full.trim_start_matches('/');
        let literal: Vec<&str> = trimmed
            .split('/')
            .take_while(|seg| !seg.contains(['*', '?', '[', '{']))
            .collect();
        let has_glob = literal.len() < trimmed.split('/').count();
        Ok(ResolvedPath {
            raw: raw.to_string(),
            store_url,
            prefix: StorePath::from_iter(literal.iter().copied().filter(|s| !s.is_empty())),
            glob: has_glob.then(|| trimmed.to_string()),
        })
    }

    /// The local directories reads are confined to: the lake (when local) and the folders.
    fn local_dirs(&self) -> impl Iterator<Item = &Path> {
        let lake = match &self.lake {
            LakeRoot::Local(dir) => Some(dir.as_path()),
            LakeRoot::Hdfs(_) | LakeRoot::S3(_) => None,
        };
        lake.into_iter()
            .chain(self.folders.iter().map(PathBuf::as_path))
    }

    /// The local files `resolved` (a `file://` path) names, by real path, refusing the read
    /// when any of them, or a folder a match could lie in, is reached through a symbolic link
    /// out of the lake and the folders. Blocking: walks the file system.
    pub fn local_files(&self, resolved: &ResolvedPath) -> Result<Vec<LocalFile>, BronzeError> {
        // Resolved on each read, not once: a root may be created or re-pointed while a server
        // runs.
        let confined = (!self.anywhere).then(|| Confined::new(self.local_dirs()));
        let start = PathBuf::from(format!("/{}", resolved.prefix));
        if start.symlink_metadata().is_err() {
            return Ok(Vec::new());
        }
        let walked =
            confine::walk(&start, confined.as_ref()).map_err(|source| BronzeError::List {
                path: resolved.raw.clone(),
                source,
            })?;
        let glob = resolved.glob()?;
        let text = |p: &Path| p.to_string_lossy().trim_start_matches('/').to_string();
        let matcher = glob.as_ref().map(Glob::compile_matcher);
        let wanted = |path: &str| matcher.as_ref().is_none_or(|m| m.is_match(path));
        for escape in &walked.escapes {
            let path = text(&escape.path);
            let reached = if escape.is_dir {
                glob.as_ref()
                    .is_none_or(|g| confine::may_match_below(g, &path))
            } else {
                wanted(&path)
            };
            if reached {
                return Err(BronzeError::PathRefused {
                    path: escape.path.display().to_string(),
                    reason: LEADS_OUT.to_string(),
                });
            }
        }
        let mut files = Vec::new();
        for path in walked.files {
            let shown = text(&path);
            if !wanted(&shown) || is_staging_file(&path) {
                continue;
            }
            // The walk followed no link out; resolving again closes the gap since then, and
            // the real path is what is read.
            let refused = |reason: &str| BronzeError::PathRefused {
                path: path.display().to_string(),
                reason: reason.to_string(),
            };
            let real = match confined.as_ref().map(|c| c.real(&path)) {
                Some(Ok(Some(real))) => real,
                Some(Ok(None)) => return Err(refused(LEADS_OUT)),
                Some(Err(e)) => return Err(refused(&e.to_string())),
                None => path.canonicalize().map_err(|e| refused(&e.to_string()))?,
            };
            let meta = std::fs::metadata(&real).map_err(|e| refused(&e.to_string()))?;
            files.push(LocalFile {
                shown,
                real,
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        files.sort_by(|a, b| a.shown.cmp(&b.shown));
        Ok(files)
    }
}

const LEADS_OUT: &str =
    "it leads (through a symbolic link) outside the lake and the declared source folders";

/// A local file a raw read names.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// The path it was named or matched at, without the leading `/` (shown in `_file`).
    pub shown: String,
    /// Its real path (what is read).
    pub real: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
}

impl ResolvedPath {
    /// The glob a listing is filtered with: `*` stays inside one folder.
    pub fn glob(&self) -> Result<Option<Glob>, BronzeError> {
        self.glob
            .as_ref()
            .map(|pattern| {
                GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|source| BronzeError::Glob {
                        path: self.raw.clone(),
                        source,
                    })
            })
            .transpose()
    }
}

/// object_store's local store writes `<name>#<n>` while a file is being written and skips such
/// names when it lists; a raw read skips them too.
fn is_staging_file(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn is_within(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    path == root || path.starts_with(&format!("{root}/"))
}

fn percent_decode(path: &str) -> String {
    StorePath::from_url_path(path)
        .map(|p| format!("/{p}"))
        .unwrap_or_else(|_| path.to_string())
}

/// Absolute, with `.` removed and `..` taken back (confined roots refuse `..` before this).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> AllowedRoots {
        AllowedRoots::new(
            Path::new("/proj"),
            LakeRoot::Local(PathBuf::from("/proj/lake")),
            vec![PathBuf::from("drop")],
        )
    }

    #[test]
    fn paths_inside_the_lake_or_a_source_folder_resolve() {
        let r = roots().resolve("drop/orders/*.csv").unwrap();
        assert_eq!(r.prefix.as_ref(), "proj/drop/orders");
        assert_eq!(r.glob.as_deref(), Some("proj/drop/orders/*.csv"));
        let r = roots().resolve("/proj/lake/bronze/shop/orders").unwrap();
        assert_eq!(r.glob, None);
        assert!(roots().resolve("file:///proj/lake/x.csv").is_ok());
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "/etc/passwd",
            "drop/../../etc/passwd",
            "file:///etc/passwd",
            "/proj/dropx/a.csv",
            "hdfs://nn:9000/lake/x",
        ] {
            let err = roots().resolve(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn the_local_engine_reads_any_local_path() {
        let roots = AllowedRoots::anywhere(
            Path::new("/proj"),
            LakeRoot::Local(PathBuf::from("/proj/lake")),
        );
        assert_eq!(
            roots.resolve("data.csv").unwrap().prefix.as_ref(),
            "proj/data.csv"
        );
        assert_eq!(
            roots.resolve("../shared/x.csv").unwrap().prefix.as_ref(),
            "shared/x.csv"
        );
        assert!(roots.resolve("/etc/passwd").is_ok());
        assert!(roots.resolve("file:///tmp/a.csv").is_ok());
        assert!(roots.resolve("hdfs://nn:9000/lake/x").is_err());
    }

    #[test]
    fn hdfs_lakes_allow_their_own_urls() {
        let roots = AllowedRoots::new(
            Path::new("/proj"),
            LakeRoot::Hdfs(Url::parse("hdfs://nn:9000/lake").unwrap()),
            vec![],
        );
        let r = roots
            .resolve("hdfs://nn:9000/lake/bronze/shop/orders/*/*.csv")
            .unwrap();
        assert_eq!(r.store_url.as_str(), "hdfs://nn:9000");
        assert_eq!(r.prefix.as_ref(), "lake/bronze/shop/orders");
        assert!(roots.resolve("hdfs://other:9000/lake/x").is_err());
        assert!(roots.resolve("/proj/lake/x").is_err());
    }
}
