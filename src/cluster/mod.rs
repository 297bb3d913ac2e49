//! Running on a cluster: Apache DataFusion Ballista's scheduler and executors embedded in the
//! `strata` binary, and the client side that sends a session's queries to them. Every process
//! opens the same lake from the project's `strata.toml`; plans travel as DataFusion protobuf,
//! with Strata's own nodes in [`codec`].

pub(crate) mod client;
pub(crate) mod codec;
pub(crate) mod executor;
pub(crate) mod scheduler;
pub mod status;

use std::path::PathBuf;

use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(std::io::Error),
    #[error(transparent)]
    Ballista(#[from] ballista_core::error::BallistaError),
    #[error("bad status URL {url}: {reason}")]
    StatusUrl { url: Url, reason: String },
    #[error("cannot reach the scheduler's status endpoint at {url}: {source}")]
    StatusUnreachable {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the scheduler's status endpoint at {url} answered something else than a status: {source}"
    )]
    StatusBody {
        url: Url,
        #[source]
        source: serde_json::Error,
    },
}
