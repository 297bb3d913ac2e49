//! `strata serve`: the warehouse over the PostgreSQL wire protocol, for psql, drivers and BI
//! tools. Every connection gets its own DataFusion session over the live lake catalog (and
//! `pg_catalog`), read-only, with the limits of `[server]` in strata.toml.
//!
//! Dependencies run one way: the listener gives each accepted connection its state
//! ([`connection`]) and handlers ([`handler`]: [`startup`], [`query`]), which use the shared
//! [`server`] and the connection's [`planner`]. SQL is parsed and rewritten (dialect, time
//! travel) by [`crate::sql`], as `strata sql` and the REPL read it.

mod apply;
pub(crate) mod auth;
mod connection;
mod cursor;
mod encode;
mod errors;
mod execute;
mod handler;
mod interrupt;
mod interruptible;
mod listener;
mod log;
mod memory;
pub(crate) mod metrics;
pub mod pg_catalog;
mod planner;
mod query;
mod results;
mod server;
mod settings;
mod startup;
mod statement;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use tokio::net::TcpListener;

pub use startup::DATABASE;

use crate::config::{Config, ServerConfig};
use crate::lake::Lake;
use crate::session::Sessions;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Auth(#[from] auth::PolicyError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("tls_cert and tls_key must be set together (tls_required needs both)")]
    TlsIncomplete,
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot open the lake: {0}")]
    Lake(#[from] DataFusionError),
    #[error(transparent)]
    Descriptions(#[from] crate::project::ProjectError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the server listens, once it does.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub postgres: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

/// Serves until `shutdown` completes, then drains running queries. `ready` is told the
/// bound addresses (port 0 picks a free port).
pub async fn run(
    config: &Config,
    lake: Lake,
    ready: impl FnOnce(Listening),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let options = config.server.clone();
    let auth = auth::AuthPolicy::from_config(&options)?;
    let tls = tls_acceptor(&options)?;
    let sessions = Sessions::new(config, &lake).await?;
    let descriptions = pg_catalog::Descriptions::load(config)?;
    let metrics = Arc::new(metrics::Metrics::default());

    let listener = bind(&options.listen).await?;
    let metrics_listener = match &options.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    ready(Listening {
        postgres: listener.local_addr()?,
        metrics: metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?,
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_task = metrics_listener.map(|listener| {
        let mut stop = stop_rx.clone();
        tokio::spawn(metrics::serve_http(
            listener,
            Arc::clone(&metrics),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    });
    let server = Arc::new(server::Server::new(
        options,
        auth,
        sessions,
        descriptions,
        metrics,
    )?);
    listener::serve(server, listener, tls, shutdown).await?;
    let _ = stop_tx.send(true);
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    Ok(())
}

async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })
}

fn tls_acceptor(options: &ServerConfig) -> Result<Option<pgwire::tokio::TlsAcceptor>, ServeError> {
    match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(tls::acceptor(cert, key)?)),
        (None, None) if !options.tls_required => Ok(None),
        _ => Err(ServeError::TlsIncomplete),
    }
}
