//! The listener: accepts connections, keeps the register that cancel requests, idle timeouts
//! and shutdown act on, and drains running queries on SIGTERM.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use parking_lot::Mutex;
use pgwire::api::{ClientInfo, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::messages::startup::SecretKey;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::auth::AuthPolicy;
use super::connection::{Connection, Handlers};
use super::interrupt::{Probe, Reason};
use super::metrics::Metrics;
use super::pg_catalog::{self, Descriptions};
use crate::config::ServerConfig;
use crate::session::Sessions;

/// How long SIGTERM waits for running queries before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What every connection shares.
pub struct Server {
    pub(super) options: ServerConfig,
    pub(super) auth: AuthPolicy,
    pub(super) metrics: Arc<Metrics>,
    sessions: Sessions,
    descriptions: Arc<Descriptions>,
    pids: RandomPidSecretKeyGenerator,
    next_id: AtomicU64,
    open: AtomicUsize,
    connections: Mutex<HashMap<u64, Weak<Connection>>>,
}

impl Server {
    pub fn new(
        options: ServerConfig,
        auth: AuthPolicy,
        sessions: Sessions,
        descriptions: Descriptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            options,
            auth,
            metrics,
            sessions,
            descriptions: Arc::new(descriptions),
            pids: RandomPidSecretKeyGenerator::default(),
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// A logged-in client's session: the lake catalog, `pg_catalog`, a memory limit.
    pub(super) async fn new_session(&self) -> Result<SessionContext, DataFusionError> {
        let limit = self.options.query_memory_mb.saturating_mul(1024 * 1024);
        let ctx = self.sessions.context(Some(limit)).await?;
        pg_catalog::register(&ctx, Arc::clone(&self.descriptions))?;
        Ok(ctx)
    }

    pub(super) fn lake(&self) -> &crate::lake::Lake {
        self.sessions.lake()
    }

    /// The cancel key of a logged-in connection.
    pub(super) fn register<C: ClientInfo>(&self, client: &C, conn: &Connection) -> (i32, SecretKey) {
        let key = self.pids.generate(client);
        let _ = conn.cancel_key.set(key.clone());
        key
    }

    /// A CancelRequest: cancels the query running on the connection with that key.
    pub(super) fn cancel(&self, pid: i32, secret: &SecretKey) {
        let target = self.live().into_iter().find(|c| {
            c.cancel_key
                .get()
                .is_some_and(|(p, s)| *p == pid && s.to_bytes() == secret.to_bytes())
        });
        if let Some(conn) = target {
            conn.interrupts().cancel(Reason::Canceled);
        }
    }

    fn live(&self) -> Vec<Arc<Connection>> {
        self.connections
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Accepts connections until `shutdown` completes, then drains.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<pgwire::tokio::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut tasks = JoinSet::new();
        let reaper = tokio::spawn(Arc::clone(&self).close_idle_sessions());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (socket, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            continue;
                        }
                    };
                    let probe = match socket.as_fd().try_clone_to_owned() {
                        Ok(fd) => Arc::new(Probe::new(fd)),
                        Err(e) => {
                            tracing::warn!("cannot watch the connection from {peer}: {e}");
                            continue;
                        }
                    };
                    let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
                    let over_limit = open > self.options.max_connections;
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let conn = Arc::new(Connection::new(Arc::clone(&self), peer, probe, over_limit));
                    self.connections.lock().insert(id, Arc::downgrade(&conn));
                    let counted = self.metrics.connection_opened();
                    let server = Arc::clone(&self);
                    let tls = tls.clone();
                    tasks.spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, tls, Handlers(conn)).await {
                            tracing::debug!("connection from {peer} ended: {e}");
                        }
                        server.connections.lock().remove(&id);
                        server.open.fetch_sub(1, Ordering::SeqCst);
                        drop(counted);
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        reaper.abort();
        self.drain(&mut tasks).await;
        Ok(())
    }

    /// Lets running queries finish (up to [`DRAIN_TIMEOUT`]), closing each connection once
    /// it is idle; then closes what is left.
    async fn drain(&self, tasks: &mut JoinSet<()>) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !tasks.is_empty() && Instant::now() < deadline {
            for conn in self.live() {
                if !conn.interrupts().busy() {
                    conn.probe().shutdown();
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), tasks.join_next()).await;
        }
        for conn in self.live() {
            conn.interrupts().cancel(Reason::Shutdown);
            conn.probe().shutdown();
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Closes sessions idle longer than their `idle_session_timeout`.
    async fn close_idle_sessions(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            for conn in self.live() {
                if let Some(limit) = conn.idle_timeout()
                    && !conn.interrupts().busy()
                    && conn.idle_for() > limit
                {
                    tracing::info!("closing idle session from {}", conn.peer);
                    conn.probe().shutdown();
                }
            }
        }
    }
}
