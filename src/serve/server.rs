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
use super::execute::Executor;
use super::interrupt::{Probe, Reason};
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
const MAX_LOGGING_IN: usize = 512;
/// How long to wait after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a connection that has sent fewer than 4 bytes is looked at again.
const STARTUP_POLL: Duration = Duration::from_millis(20);

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
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let Some(place) = Place::take(&self.logging_in, MAX_LOGGING_IN) else {
                        tracing::debug!("closing the connection from {peer}: {MAX_LOGGING_IN} connections are logging in");
                        self.metrics.connection_refused();
                        continue;
                    };
                    let probe = match socket.as_fd().try_clone_to_owned() {
                        Ok(fd) => Arc::new(Probe::new(fd)),
                        Err(e) => {
                            tracing::warn!("cannot watch the connection from {peer}: {e}");
                            continue;
                        }
                    };
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let conn = Arc::new(Connection::new(Arc::clone(&self), peer, Arc::clone(&probe), place));
                    self.connections.lock().insert(id, Arc::downgrade(&conn));
                    let counted = self.metrics.connection_opened();
                    let server = Arc::clone(&self);
                    let tls = tls.clone();
                    let auth_timeout = Duration::from_millis(self.options.auth_timeout_ms);
                    tasks.spawn(async move {
                        let session = async {
                            if !plausible_startup(&socket, &probe).await {
                                tracing::debug!("connection from {peer}: not a PostgreSQL startup");
                            } else if let Err(e) = pgwire::tokio::process_socket(socket, tls, Handlers(Arc::clone(&conn))).await {
                                tracing::debug!("connection from {peer} ended: {e}");
                            }
                        };
                        tokio::select! {
                            _ = session => {}
                            _ = login_deadline(&conn, auth_timeout) => {
                                tracing::debug!("closing the connection from {peer}: no login within {auth_timeout:?}");
                            }
                        }
                        server.connections.lock().remove(&id);
                        conn.release_place();
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
    /// it is idle; then closes what is left, and drops the tasks of connections that do not
    /// end within [`CLOSE_GRACE`] of that.
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
        let closed = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(CLOSE_GRACE, closed).await.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
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

/// Completes `auth_timeout` after connecting unless the connection has authenticated by
/// then (then never).
async fn login_deadline(conn: &Connection, auth_timeout: Duration) {
    tokio::time::sleep(auth_timeout).await;
    if conn.authenticated() {
        std::future::pending::<()>().await;
    }
}

/// Whether the first packet's length can be a startup, SSL or cancel request (at least 8
/// bytes). pgwire would wait for more bytes after a shorter one; PostgreSQL hangs up. A
/// client that leaves before sending 4 bytes is let go at once (peeking would return the
/// same bytes forever); one that stays silent meets the login deadline.
async fn plausible_startup(socket: &tokio::net::TcpStream, probe: &Probe) -> bool {
    let mut head = [0u8; 4];
    loop {
        match socket.peek(&mut head).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n >= head.len() => return i32::from_be_bytes(head) >= 8,
            Ok(_) if probe.peer_closed() => return false,
            // Fewer than 4 bytes so far: peek returns them at once, so look again shortly.
            Ok(_) => tokio::time::sleep(STARTUP_POLL).await,
        }
    }
}
