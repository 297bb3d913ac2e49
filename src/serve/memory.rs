//! Memory for queries: one query (a session runs one at a time) may use `query_memory_mb`,
//! and all sessions together `memory_mb`, so many sessions cannot take the machine's memory
//! between them. Each session's DataFusion memory pool admits a reservation only when it fits
//! both its own limit and the server's shared pool; otherwise the query fails (53200).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
    TrackConsumersPool,
};

/// How many of the largest consumers an out-of-memory error names.
const TOP_CONSUMERS: usize = 5;

/// The server's memory, shared by every session.
#[derive(Debug)]
pub struct ServerMemory {
    shared: Arc<dyn MemoryPool>,
    mb: usize,
}

impl ServerMemory {
    /// `memory_mb` of `[server]`; when unset, half of the machine's physical memory.
    pub fn new(memory_mb: Option<usize>) -> Self {
        let mb = memory_mb.unwrap_or_else(|| physical_memory_mb() / 2).max(1);
        Self {
            shared: greedy(mb.saturating_mul(1024 * 1024)),
            mb,
        }
    }

    /// A session's pool: `query_bytes` for its query, within what the server has left.
    pub fn session_pool(&self, query_bytes: usize) -> Arc<dyn MemoryPool> {
        Arc::new(SessionPool {
            own: greedy(query_bytes),
            shared: Arc::clone(&self.shared),
            server_mb: self.mb,
        })
    }
}

fn greedy(bytes: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(
        GreedyMemoryPool::new(bytes),
        NonZeroUsize::new(TOP_CONSUMERS).expect("nonzero"),
    ))
}

/// Physical memory in MiB (4 GiB when the system does not say).
fn physical_memory_mb() -> usize {
    crate::machine::physical_memory().map_or(4096, |bytes| bytes / (1024 * 1024))
}

/// A session's limit in front of the server's.
#[derive(Debug)]
struct SessionPool {
    own: Arc<dyn MemoryPool>,
    shared: Arc<dyn MemoryPool>,
    server_mb: usize,
}

impl fmt::Display for SessionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session {} within server {}", self.own, self.shared)
    }
}

impl MemoryPool for SessionPool {
    fn name(&self) -> &str {
        "strata session pool"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.own.register(consumer);
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.own.unregister(consumer);
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.own.grow(reservation, additional);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.own.shrink(reservation, shrink);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.own.try_grow(reservation, additional)?;
        self.shared
            .try_grow(reservation, additional)
            .map_err(|e| {
                self.own.shrink(reservation, additional);
                match e {
                    DataFusionError::ResourcesExhausted(message) => {
                        DataFusionError::ResourcesExhausted(format!(
                            "the server's memory for all queries ([server] memory_mb = {}) is used up: {message}",
                            self.server_mb
                        ))
                    }
                    other => other,
                }
            })
    }

    fn reserved(&self) -> usize {
        self.own.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.own.memory_limit()
    }
}
