//! Stopping a query's work: a cancel request, the statement timeout, or the client leaving.
//! Each query gets a token; whatever fires first cancels it with its reason: the client is
//! answered at once, and the query's plan stops at its next check (see `interruptible`).

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{Shutdown, shutdown};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::errors::{sqlstate, user_error};
use pgwire::error::PgWireError;

/// Why a query stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Canceled,
    Timeout,
    ClientGone,
    Shutdown,
}

impl Reason {
    pub fn error(self) -> PgWireError {
        match self {
            Reason::Canceled => user_error(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to user request",
            ),
            Reason::Timeout => user_error(
                sqlstate::QUERY_CANCELED,
                "canceling statement due to statement timeout",
            ),
            Reason::ClientGone => user_error(
                sqlstate::QUERY_CANCELED,
                "canceling statement: the client closed the connection",
            ),
            Reason::Shutdown => user_error(
                sqlstate::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            ),
        }
    }
}

/// The token of the query that is running now, with the reason it was cancelled.
#[derive(Debug)]
struct Running {
    token: CancellationToken,
    reason: Arc<Mutex<Option<Reason>>>,
}

/// A connection's side of interruption: cancel requests and shutdown reach it here.
#[derive(Debug)]
pub struct Interrupts {
    running: Mutex<Option<Running>>,
    /// When the last query ended (idle sessions are timed from it).
    last_end: Mutex<Instant>,
}

impl Default for Interrupts {
    fn default() -> Self {
        Self {
            running: Mutex::new(None),
            last_end: Mutex::new(Instant::now()),
        }
    }
}

impl Interrupts {
    /// Cancels the running query, if any (a cancel request between queries is a no-op, as in
    /// PostgreSQL).
    pub fn cancel(&self, reason: Reason) {
        if let Some(running) = self.running.lock().as_ref() {
            running.reason.lock().get_or_insert(reason);
            running.token.cancel();
        }
    }

    pub fn busy(&self) -> bool {
        self.running.lock().is_some()
    }

    /// Time since the last query ended.
    pub fn since_last_query(&self) -> Duration {
        self.last_end.lock().elapsed()
    }

    /// Starts a query: a fresh token, watched by the statement timeout and the client probe.
    pub fn start(self: &Arc<Self>, timeout: Option<Duration>, probe: Option<Arc<Probe>>) -> Guard {
        let token = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        *self.running.lock() = Some(Running {
            token: token.clone(),
            reason: Arc::clone(&reason),
        });
        let watcher = (timeout.is_some() || probe.is_some()).then(|| {
            let token = token.clone();
            let reason = Arc::clone(&reason);
            tokio::spawn(async move {
                let fired = tokio::select! {
                    _ = sleep_or_forever(timeout) => Reason::Timeout,
                    _ = watch_client(probe) => Reason::ClientGone,
                    _ = token.cancelled() => return,
                };
                reason.lock().get_or_insert(fired);
                token.cancel();
            })
        });
        Guard {
            owner: Arc::clone(self),
            token,
            reason,
            watcher,
        }
    }
}

async fn sleep_or_forever(timeout: Option<Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

async fn watch_client(probe: Option<Arc<Probe>>) {
    let Some(probe) = probe else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if probe.peer_closed() {
            return;
        }
    }
}

/// The running query's hold on its token; dropping it ends the query's watch.
#[derive(Debug)]
pub struct Guard {
    owner: Arc<Interrupts>,
    token: CancellationToken,
    reason: Arc<Mutex<Option<Reason>>>,
    watcher: Option<JoinHandle<()>>,
}

impl Guard {
    /// Why the query was cancelled, once it was.
    pub fn reason(&self) -> Option<Reason> {
        self.token
            .is_cancelled()
            .then(|| self.reason.lock().unwrap_or(Reason::Canceled))
    }

    /// Runs `work` unless the query is cancelled first.
    pub async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, PgWireError>>,
    ) -> Result<T, PgWireError> {
        tokio::select! {
            result = work => result,
            _ = self.token.cancelled() => Err(self.reason().unwrap_or(Reason::Canceled).error()),
        }
    }

    /// A token cancelled with the query, for its plan (which may also be stopped alone,
    /// when its rows are no longer wanted).
    pub(super) fn stop_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    pub(super) fn cancelled_owned(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        let mut running = self.owner.running.lock();
        if running
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(&r.reason, &self.reason))
        {
            *running = None;
        }
        *self.owner.last_end.lock() = Instant::now();
    }
}

/// A second handle on a client's socket, to notice the peer closing while the connection's
/// own task is busy computing (it reads the socket only between messages).
#[derive(Debug)]
pub struct Probe(OwnedFd);

impl Probe {
    pub fn new(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Whether the peer has closed or reset the connection. POLLRDHUP reports a closed peer
    /// even when unread bytes (a pipelined Sync, a TLS alert) are still queued.
    pub fn peer_closed(&self) -> bool {
        let mut fds = [PollFd::new(&self.0, PollFlags::RDHUP)];
        let gone = PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR;
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0) && fds[0].revents().intersects(gone)
    }

    /// Closes the connection from the server side (idle timeout, shutdown): the connection's
    /// task then reads end-of-stream and finishes. A socket the peer already closed may
    /// refuse; either way the connection ends.
    pub fn shutdown(&self) {
        let _ = shutdown(&self.0, Shutdown::Both);
    }
}
