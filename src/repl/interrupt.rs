//! Ctrl-C while a query runs. SIGINT reaches a thread of its own through signal-hook's
//! self-pipe, and that thread cancels the running query. Not tokio's signal stream:
//! that is serviced by the runtime's workers, which a heavy query can keep busy for seconds,
//! and the shell must answer at once.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;
use tokio_util::sync::CancellationToken;

/// Routes Ctrl-C to the query being run, if any; with none, Ctrl-C does nothing.
#[derive(Clone)]
pub struct CtrlC {
    current: Arc<Mutex<Option<CancellationToken>>>,
}

impl CtrlC {
    /// Installs the handler (once per process: the shell runs once).
    pub fn install() -> io::Result<Self> {
        let mut signals = Signals::new([SIGINT])?;
        let current: Arc<Mutex<Option<CancellationToken>>> = Arc::default();
        let listener = Arc::clone(&current);
        std::thread::Builder::new()
            .name("strata-ctrl-c".into())
            .spawn(move || {
                for _ in signals.forever() {
                    if let Some(token) = listener.lock().as_ref() {
                        token.cancel();
                    }
                }
            })?;
        Ok(Self { current })
    }

    /// A token Ctrl-C cancels until the guard is dropped.
    pub fn watch(&self) -> Watch {
        let token = CancellationToken::new();
        *self.current.lock() = Some(token.clone());
        Watch {
            token,
            current: Arc::clone(&self.current),
        }
    }
}

pub struct Watch {
    pub token: CancellationToken,
    current: Arc<Mutex<Option<CancellationToken>>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        *self.current.lock() = None;
    }
}
