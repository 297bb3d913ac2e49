//! Ctrl-C while a query runs. SIGINT is caught by a handler that writes a byte to a pipe, and
//! a thread of its own reads it and cancels the running query. Not tokio's signal stream:
//! that is serviced by the runtime's workers, which a heavy query can keep busy for seconds,
//! and the shell must answer at once.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Write end of the pipe, for the signal handler (only async-signal-safe work there).
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_interrupt(_: libc::c_int) {
    let fd = PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the byte lives on this stack frame.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Routes Ctrl-C to the query being run, if any; with none, Ctrl-C does nothing.
#[derive(Clone)]
pub struct Interrupts {
    current: Arc<Mutex<Option<CancellationToken>>>,
}

impl Interrupts {
    /// Installs the handler (once per process: the shell runs once).
    pub fn install() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the two descriptors of the array passed.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let [read, write] = fds;
        PIPE.store(write, Ordering::Relaxed);
        let current: Arc<Mutex<Option<CancellationToken>>> = Arc::default();
        let listener = Arc::clone(&current);
        std::thread::Builder::new()
            .name("strata-ctrl-c".into())
            .spawn(move || {
                let mut byte = 0u8;
                // SAFETY: reads one byte into `byte` from the pipe this thread owns.
                while unsafe { libc::read(read, (&raw mut byte).cast(), 1) } == 1 {
                    if let Some(token) = listener.lock().as_ref() {
                        token.cancel();
                    }
                }
            })?;
        // SAFETY: installs a handler that only calls write(2); SA_RESTART keeps other
        // threads' system calls from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_interrupt as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
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
