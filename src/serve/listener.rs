//! The listener: accepts connections (bounded while they log in, refused when they send no
//! plausible startup), gives each its state and handlers, and on shutdown lets the server
//! drain them.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::connection::Connection;
use super::handler::{Handler, Handlers};
use super::interrupt::Probe;
use super::server::{MAX_LOGGING_IN, Server};

/// How long to wait after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a connection that has sent fewer than 4 bytes is looked at again.
const STARTUP_POLL: Duration = Duration::from_millis(20);

/// Accepts connections until `shutdown` completes, then drains.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut tasks = JoinSet::new();
    let reaper = tokio::spawn(Arc::clone(&server).close_idle_sessions());
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
                let Some(place) = server.logging_in_place() else {
                    tracing::debug!("closing the connection from {peer}: {MAX_LOGGING_IN} connections are logging in");
                    server.metrics.connection_refused();
                    continue;
                };
                let probe = match socket.as_fd().try_clone_to_owned() {
                    Ok(fd) => Arc::new(Probe::new(fd)),
                    Err(e) => {
                        tracing::warn!("cannot watch the connection from {peer}: {e}");
                        continue;
                    }
                };
                let conn = Arc::new(Connection::new(peer, Arc::clone(&probe)));
                let id = server.track(&conn);
                let handler = Arc::new(Handler::new(Arc::clone(&server), conn, place));
                let counted = server.metrics.connection_opened();
                let server = Arc::clone(&server);
                let tls = tls.clone();
                let auth_timeout = Duration::from_millis(server.options.auth_timeout_ms);
                tasks.spawn(async move {
                    let session = async {
                        if !plausible_startup(&socket, &probe).await {
                            tracing::debug!("connection from {peer}: not a PostgreSQL startup");
                        } else if let Err(e) = pgwire::tokio::process_socket(socket, tls, Handlers(Arc::clone(&handler))).await {
                            tracing::debug!("connection from {peer} ended: {e}");
                        }
                    };
                    tokio::select! {
                        _ = session => {}
                        _ = login_deadline(&handler.conn, auth_timeout) => {
                            tracing::debug!("closing the connection from {peer}: no login within {auth_timeout:?}");
                        }
                    }
                    server.forget(id);
                    handler.release_place();
                    drop(counted);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    reaper.abort();
    server.drain(&mut tasks).await;
    Ok(())
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
