//! The lake: one object store (local disk, HDFS or S3) that every stage reads and writes
//! through, addressed by lake-relative paths so commands work unchanged on any of them, and
//! the DataFusion context that reads it.

pub(crate) mod context;
pub mod delta;
pub mod delta_files;
mod format;
pub(crate) mod layout;
mod root;
pub(crate) mod s3;
pub mod snapshots;
pub mod write;

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use url::Url;

pub use format::RawFormat;
pub use root::{LakeRoot, S3Root};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("cannot create the lake directory {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the lake at {uri}: {source}")]
    Open {
        uri: Url,
        source: Box<object_store::Error>,
    },
}

/// An opened lake: its root and a store whose paths are relative to that root.
#[derive(Debug, Clone)]
pub struct Lake {
    root: LakeRoot,
    /// The store for the whole file system (what DataFusion registers for the URL's authority).
    base_store: Arc<dyn ObjectStore>,
    /// The same store, prefixed with the lake's directory.
    store: Arc<dyn ObjectStore>,
}

impl Lake {
    /// Opens the lake's store. A local root is created if missing; an HDFS NameNode or an S3
    /// service is only contacted by the first operation, so errors surface there, naming the URI.
    pub fn open(root: LakeRoot) -> Result<Self, LakeError> {
        let (base_store, prefix): (Arc<dyn ObjectStore>, Path) = match &root {
            LakeRoot::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| LakeError::CreateDir {
                    path: dir.clone(),
                    source,
                })?;
                (
                    Arc::new(LocalFileSystem::new()),
                    Path::from_absolute_path(dir).map_err(|e| LakeError::Open {
                        uri: root.url(),
                        source: Box::new(e.into()),
                    })?,
                )
            }
            LakeRoot::Hdfs(url) => {
                let authority = format!("{}://{}", url.scheme(), url.authority());
                let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new()
                    .with_url(authority)
                    .build()
                    .map_err(|source| LakeError::Open {
                        uri: url.clone(),
                        source: Box::new(source),
                    })?;
                (Arc::new(store), Path::from(url.path()))
            }
            LakeRoot::S3(s3) => {
                let store = s3::lake_store(&s3.location, &s3.settings).map_err(|source| {
                    LakeError::Open {
                        uri: s3.location.url().clone(),
                        source: Box::new(source),
                    }
                })?;
                (store, s3.location.prefix())
            }
        };
        let store = Arc::new(PrefixStore::new(Arc::clone(&base_store), prefix));
        Ok(Self {
            root,
            base_store,
            store,
        })
    }

    pub fn root(&self) -> &LakeRoot {
        &self.root
    }

    /// The store addressed by lake-relative paths.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The unprefixed store, for registering with DataFusion under [`Lake::store_url`].
    pub fn base_store(&self) -> &Arc<dyn ObjectStore> {
        &self.base_store
    }

    /// Scheme and authority of the lake's file system (`file://`, `hdfs://host:port`,
    /// `s3://bucket`).
    pub fn store_url(&self) -> Url {
        let url = self.root.url();
        Url::parse(&format!("{}://{}", url.scheme(), url.authority()))
            .expect("scheme and authority of a valid URL form a URL")
    }

    /// The absolute URL of a lake-relative path (what Delta and DataFusion are given).
    pub fn url_of(&self, path: &Path) -> Url {
        let mut url = self.root.url();
        if !path.as_ref().is_empty() {
            let joined = format!("{}/{}", url.path(), path.as_ref());
            url.set_path(&joined);
        }
        url
    }
}
