//! What every connection shares: the options, the sessions' source, connection limits, and
//! the register of connections that cancel requests, idle timeouts and shutdown act on
//! (running queries are drained on SIGTERM).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use parking_lot::Mutex;
use pgwire::api::{ClientInfo, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::messages::startup::SecretKey;
use tokio::task::JoinSet;

use super::auth::AuthPolicy;
use super::connection::Connection;
use super::execute::Executor;
use super::interrupt::Reason;
use super::memory::ServerMemory;
use super::metrics::Metrics;
use super::pg_catalog::{self, Descriptions};
use crate::config::ServerConfig;
use crate::session::Sessions;

/// How long SIGTERM waits for running queries before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connections get to end once closed at shutdown before their tasks are dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Connections still logging in, at most (beyond, new ones are closed at once): each lasts at
/// most `auth_timeout_ms`, and this bounds the sockets and memory a flood of them can hold.
pub(super) const MAX_LOGGING_IN: usize = 512;

/// What every connection shares.
pub struct Server {
    pub(super) options: ServerConfig,
    pub(super) auth: AuthPolicy,
    pub(super) metrics: Arc<Metrics>,
    sessions: Sessions,
    descriptions: Arc<Descriptions>,
    pids: RandomPidSecretKeyGenerator,
    next_id: AtomicU64,
    /// Connections logged in (bounded by `max_connections`) and still logging in (bounded by
    /// [`MAX_LOGGING_IN`]).
    logged_in: Arc<AtomicUsize>,
    logging_in: Arc<AtomicUsize>,
    connections: Mutex<HashMap<u64, Weak<Connection>>>,
    pub(super) executor: Executor,
    memory: ServerMemory,
}

/// A connection's place in one of the server's connection limits, given back when dropped.
#[derive(Debug)]
pub struct Place(Arc<AtomicUsize>);

impl Place {
    fn take(count: &Arc<AtomicUsize>, limit: usize) -> Option<Place> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(Arc::clone(count)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    pub fn new(
        options: ServerConfig,
        auth: AuthPolicy,
        sessions: Sessions,
        descriptions: Descriptions,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let memory = ServerMemory::new(options.memory_mb);
        Ok(Self {
            options,
            auth,
            metrics,
            sessions,
            descriptions: Arc::new(descriptions),
            pids: RandomPidSecretKeyGenerator::default(),
            next_id: AtomicU64::new(1),
            logged_in: Arc::default(),
            logging_in: Arc::default(),
            connections: Mutex::new(HashMap::new()),
            executor: Executor::new()?,
            memory,
        })
    }

    /// A place among the connections logging in, unless [`MAX_LOGGING_IN`] are.
    pub(super) fn logging_in_place(&self) -> Option<Place> {
        Place::take(&self.logging_in, MAX_LOGGING_IN)
    }

    /// Enters a new connection in the register; its id there.
    pub(super) fn track(&self, conn: &Arc<Connection>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.connections.lock().insert(id, Arc::downgrade(conn));
        id
    }

    /// Takes an ended connection out of the register.
    pub(super) fn forget(&self, id: u64) {
        self.connections.lock().remove(&id);
    }

    /// A place among the logged-in connections, unless `max_connections` are.
    pub(super) fn login_place(&self) -> Option<Place> {
        Place::take(&self.logged_in, self.options.max_connections)
    }

    /// A logged-in client's session: the lake catalog, `pg_catalog`, memory limits.
    pub(super) async fn new_session(&self) -> Result<SessionContext, DataFusionError> {
        let limit = self.options.query_memory_mb.saturating_mul(1024 * 1024);
        let ctx = self
            .sessions
            .context(Some(self.memory.session_pool(limit)))
            .await?;
        pg_catalog::register(&ctx, Arc::clone(&self.descriptions))?;
        Ok(ctx)
    }

    pub(super) fn lake(&self) -> &crate::lake::Lake {
        self.sessions.lake()
    }

    /// The cancel key of a logged-in connection.
    pub(super) fn register<C: ClientInfo>(
        &self,
        client: &C,
        conn: &Connection,
    ) -> (i32, SecretKey) {
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

    /// Lets running queries finish (up to [`DRAIN_TIMEOUT`]), closing each connection once
    /// it is idle; then closes what is left, and drops the tasks of connections that do not
    /// end within [`CLOSE_GRACE`] of that.
    pub(super) async fn drain(&self, tasks: &mut JoinSet<()>) {
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
        let closed = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(CLOSE_GRACE, closed).await.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }

    /// Closes sessions idle longer than their `idle_session_timeout`.
    pub(super) async fn close_idle_sessions(self: Arc<Self>) {
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
