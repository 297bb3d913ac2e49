//! Where a lake lives: a local directory, an HDFS URI or an S3 bucket.

use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

use super::s3::{S3Location, S3Settings};

/// A lake root, validated at configuration time so later stages never see a malformed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeRoot {
    /// An absolute local directory (created on first write).
    Local(PathBuf),
    /// `hdfs://host:port/path`: the NameNode and the lake's directory on it.
    Hdfs(Url),
    /// `s3://bucket/path` on AWS S3 or an S3-compatible service.
    S3(S3Root),
}

/// An S3 lake: where it is and how to reach the service (credentials come from the
/// environment only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Root {
    pub location: S3Location,
    pub settings: S3Settings,
}

impl LakeRoot {
    /// Parses a configured root; relative local paths resolve against `base`.
    pub fn parse(root: &str, base: &Path) -> Result<Self, String> {
        if root.contains("://") {
            let mut url = Url::parse(root).map_err(|e| e.to_string())?;
            return match url.scheme() {
                "hdfs" | "viewfs" => {
                    if url.host_str().is_none_or(str::is_empty) {
                        return Err(
                            "an HDFS lake needs a NameNode host: hdfs://host:port/path".into()
                        );
                    }
                    let trimmed = url.path().trim_end_matches('/').to_string();
                    url.set_path(&trimmed);
                    Ok(Self::Hdfs(url))
                }
                "s3" => Ok(Self::S3(S3Root {
                    location: S3Location::parse(root)?,
                    settings: S3Settings::default(),
                })),
                "file" => url
                    .to_file_path()
                    .map(|p| Self::Local(normalize(&p)))
                    .map_err(|()| "not a local file URL".to_string()),
                other => Err(format!(
                    "unsupported scheme {other}:// (use a local path, hdfs://host:port/path or s3://bucket/path)"
                )),
            };
        }
        if root.trim().is_empty() {
            return Err("the lake root is empty".into());
        }
        Ok(Self::Local(normalize(&base.join(root))))
    }

    /// The root as a URL with no trailing slash (`file:///…`, `hdfs://…`, `s3://…`).
    pub fn url(&self) -> Url {
        match self {
            Self::Local(path) => Url::from_directory_path(path)
                .map(|mut u| {
                    let trimmed = u.path().trim_end_matches('/').to_string();
                    u.set_path(&trimmed);
                    u
                })
                .expect("local lake roots are absolute"),
            Self::Hdfs(url) => url.clone(),
            Self::S3(s3) => s3.location.url().clone(),
        }
    }
}

impl fmt::Display for LakeRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Hdfs(url) => write!(f, "{url}"),
            Self::S3(s3) => write!(f, "{}", s3.location),
        }
    }
}

/// Makes a path absolute and removes `.`/`..` without touching the file system (the directory
/// may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
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

    #[test]
    fn local_roots_resolve_against_the_project() {
        let root = LakeRoot::parse("./lake", Path::new("/proj/x/..")).unwrap();
        assert_eq!(root, LakeRoot::Local(PathBuf::from("/proj/lake")));
        assert_eq!(root.url().as_str(), "file:///proj/lake");
    }

    #[test]
    fn hdfs_roots_keep_host_port_and_path() {
        let root = LakeRoot::parse("hdfs://127.0.0.1:9000/lakes/shop/", Path::new("/")).unwrap();
        assert_eq!(root.url().as_str(), "hdfs://127.0.0.1:9000/lakes/shop");
    }

    #[test]
    fn s3_roots_keep_bucket_and_path() {
        let root = LakeRoot::parse("s3://lake-bucket/shop/", Path::new("/")).unwrap();
        assert_eq!(root.url().as_str(), "s3://lake-bucket/shop");
        assert!(matches!(root, LakeRoot::S3(ref s3) if s3.settings == S3Settings::default()));
    }

    #[test]
    fn bad_roots_are_refused() {
        assert!(LakeRoot::parse("ftp://x/y", Path::new("/")).is_err());
        assert!(LakeRoot::parse("hdfs:///nohost", Path::new("/")).is_err());
        assert!(LakeRoot::parse("s3:///nobucket", Path::new("/")).is_err());
        assert!(LakeRoot::parse("  ", Path::new("/")).is_err());
    }
}
