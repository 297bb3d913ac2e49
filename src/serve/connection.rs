//! One client connection's state: who it is (peer, user, cancel key), its session
//! parameters, its activity, and the means to interrupt it. The server's register of
//! connections (cancel requests, idle timeouts, shutdown) and the pgwire handlers both act
//! on it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pgwire::messages::startup::SecretKey;

use super::interrupt::{Interrupts, Probe};
use super::settings::Settings;

/// A client connection's state.
pub struct Connection {
    pub(super) peer: SocketAddr,
    pub(super) probe: Arc<Probe>,
    pub(super) interrupts: Arc<Interrupts>,
    /// Whether the client has authenticated (the login deadline no longer applies).
    authenticated: AtomicBool,
    /// The session parameters, once logged in.
    pub(super) settings: Mutex<Option<Settings>>,
    /// Whether a query changed the parameters (`set_config`) since they were last applied.
    settings_changed: AtomicBool,
    pub(super) user: OnceLock<String>,
    pub(super) cancel_key: OnceLock<(i32, SecretKey)>,
    last_active: Mutex<Instant>,
}

impl Connection {
    pub fn new(peer: SocketAddr, probe: Arc<Probe>) -> Self {
        Self {
            peer,
            probe,
            interrupts: Arc::default(),
            authenticated: AtomicBool::new(false),
            settings: Mutex::new(None),
            settings_changed: AtomicBool::new(false),
            user: OnceLock::new(),
            cancel_key: OnceLock::new(),
            last_active: Mutex::new(Instant::now()),
        }
    }

    pub(super) fn authenticated(&self) -> bool {
        self.authenticated.load(Ordering::SeqCst)
    }

    pub(super) fn set_authenticated(&self) {
        self.authenticated.store(true, Ordering::SeqCst);
    }

    pub fn interrupts(&self) -> &Arc<Interrupts> {
        &self.interrupts
    }

    pub fn probe(&self) -> &Arc<Probe> {
        &self.probe
    }

    /// Marks the session active now (each statement answered).
    pub(super) fn touch(&self) {
        *self.last_active.lock() = Instant::now();
    }

    pub(super) fn idle_for(&self) -> Duration {
        self.last_active
            .lock()
            .elapsed()
            .min(self.interrupts.since_last_query())
    }

    /// The session's `idle_session_timeout`; before login, the startup deadline applies.
    pub(super) fn idle_timeout(&self) -> Option<Duration> {
        self.settings.lock().as_ref()?.idle_session_timeout()
    }

    /// Notes that a query changed the parameters, to be applied before the next statement.
    pub(super) fn settings_changed(&self) {
        self.settings_changed.store(true, Ordering::SeqCst);
    }

    /// Whether the parameters changed since the last call.
    pub(super) fn take_settings_changed(&self) -> bool {
        self.settings_changed.swap(false, Ordering::SeqCst)
    }

    pub(super) fn user_name(&self) -> &str {
        self.user.get().map(String::as_str).unwrap_or("")
    }
}
