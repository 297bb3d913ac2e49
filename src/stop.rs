//! Stopping the long-running commands (`land --watch`, `build --watch`, `serve`) the way
//! services are stopped: the first request (Ctrl-C or SIGTERM) lets the batch at hand finish,
//! a second one abandons it. Abandoning is safe because every kind of write commits in one
//! step at its end (the ingest log, a Delta commit): what was cut off is never visible.

use tokio::sync::watch;

/// Requests a stop; each call is one more request.
#[derive(Debug, Clone)]
pub struct StopHandle {
    requests: watch::Sender<u32>,
}

/// What the running command watches.
#[derive(Debug, Clone)]
pub struct Stop {
    requests: watch::Receiver<u32>,
}

pub fn channel() -> (StopHandle, Stop) {
    let (requests, rx) = watch::channel(0);
    (StopHandle { requests }, Stop { requests: rx })
}

impl StopHandle {
    /// Records one more request and returns how many there have been.
    pub fn request(&self) -> u32 {
        let mut count = 0;
        self.requests.send_modify(|n| {
            *n += 1;
            count = *n;
        });
        count
    }
}

impl Stop {
    /// Whether a stop was asked for: finish what is running, start nothing new.
    pub fn requested(&self) -> bool {
        *self.requests.borrow() >= 1
    }

    /// Resolves at the first request.
    pub async fn finish_requested(&mut self) {
        self.reached(1).await;
    }

    /// Resolves at the second request: drop the batch at hand.
    pub async fn abandon_requested(&mut self) {
        self.reached(2).await;
    }

    async fn reached(&mut self, count: u32) {
        if self.requests.wait_for(|n| *n >= count).await.is_err() {
            // Nobody can ask any more (the handle is gone): never resolves.
            std::future::pending::<()>().await;
        }
    }
}

/// A [`Stop`] fed by SIGINT (Ctrl-C) and SIGTERM; `on_request` is told each request's number.
pub fn on_signals(on_request: impl Fn(u32) + Send + 'static) -> std::io::Result<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (handle, stop) = channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            on_request(handle.request());
        }
    });
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_request_finishes_second_abandons() {
        let (handle, mut stop) = channel();
        assert!(!stop.requested());
        assert_eq!(handle.request(), 1);
        assert!(stop.requested());
        stop.finish_requested().await;
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            stop.clone().abandon_requested(),
        )
        .await;
        assert!(abandoned.is_err(), "one request does not abandon");
        handle.request();
        stop.abandon_requested().await;
    }
}
