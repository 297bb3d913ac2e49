//! Bronze: raw landed files queried with SQL, schemas inferred at read time.

pub(crate) mod catalog;
pub mod decode;
pub(crate) mod format;
pub mod formats;
pub(crate) mod functions;
pub(crate) mod infer;
pub(crate) mod paths;
pub(crate) mod scan;
pub(crate) mod schema;
pub(crate) mod table;

/// Errors reading bronze; each names the table or file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum BronzeError {
    #[error("table {table}: {message}")]
    Options { table: String, message: String },
    #[error("refusing to read {path}: {reason}")]
    PathRefused { path: String, reason: String },
    #[error("bad glob {path}: {source}")]
    Glob {
        path: String,
        #[source]
        source: globset::Error,
    },
    #[error("cannot list {path}: {source}")]
    List {
        path: String,
        #[source]
        source: walkdir::Error,
    },
    #[error("no raw files at {path}")]
    NoFiles { path: String },
    #[error("unknown raw format {0:?}")]
    UnknownFormat(String),
    #[error("cannot infer the schema of {file}: {message}")]
    Infer { file: String, message: String },
}

impl From<BronzeError> for datafusion::error::DataFusionError {
    fn from(e: BronzeError) -> Self {
        Self::External(Box::new(e))
    }
}
