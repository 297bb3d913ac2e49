//! Stream source kinds: events from a message broker, landed as micro-batch files.
//!
//! Each table reads one subject through a durable consumer. A run fetches micro-batches (up to
//! `max_rows` events or `max_bytes`, or whatever came within `max_wait_ms`), writes each as one
//! NDJSON file in bronze (scratch name, then one rename), commits its ingest-log row, and only
//! then acknowledges its events. The row's `source_state` lists the stream positions the file
//! holds, so the file and the positions it accounts for commit in one transaction:
//!
//! - a run that dies before the commit leaves its events unacknowledged, and the broker
//!   redelivers them (after the consumer's `ack_wait`) to a later run;
//! - a run that dies between the commit and the acknowledgement gets those events again, finds
//!   their positions in the log, and acknowledges them without landing them twice;
//! - an event delivered twice within one batch lands once.
//!
//! The broker sits behind [`Broker`] and [`Subscription`], so a Kafka client can be added as
//! another implementation (its partition offsets in place of JetStream's stream sequence).

mod lander;
pub mod nats;
mod positions;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::LandError;
use super::declaration::TableDecl;
pub use lander::StreamSource;

/// Events per micro-batch unless the table says otherwise.
const DEFAULT_MAX_ROWS: usize = 10_000;
/// Bytes per micro-batch unless the table says otherwise.
const DEFAULT_MAX_BYTES: usize = 16 << 20;
/// How long a micro-batch waits to fill unless the table says otherwise.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(1);

/// One event as the broker delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Where the event sits in the stream: unique and stable across redeliveries (JetStream's
    /// stream sequence).
    pub position: u64,
    /// Whether the broker delivered it before (to this run or to one that did not acknowledge).
    pub redelivered: bool,
    pub payload: Bytes,
}

/// When a micro-batch is full: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_wait: Duration,
}

impl BatchLimits {
    pub fn of(table: &TableDecl) -> Self {
        Self {
            max_rows: table.max_rows.unwrap_or(DEFAULT_MAX_ROWS),
            max_bytes: table.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
            max_wait: table
                .max_wait_ms
                .map_or(DEFAULT_MAX_WAIT, Duration::from_millis),
        }
    }
}

/// A message broker a source reads from.
#[async_trait]
pub trait Broker: Send + Sync {
    /// Where `table`'s events come from, as logged: never with credentials.
    fn location(&self, table: &TableDecl) -> String;

    /// Opens `table`'s durable consumer, creating it on first use.
    async fn subscribe(&self, table: &TableDecl) -> Result<Box<dyn Subscription>, LandError>;
}

/// One table's durable consumer, for the length of a run.
#[async_trait]
pub trait Subscription: Send {
    /// Names the stream's incarnation: positions recorded under another epoch (a stream deleted
    /// and created again restarts its positions) say nothing about this one.
    fn epoch(&self) -> &str;

    /// Events not yet delivered to the consumer when the subscription opened: a run stops
    /// once it has had that many new events, so a busy stream cannot keep it going forever.
    fn backlog(&self) -> u64;

    /// The next micro-batch: at most `limits.max_rows` events and `limits.max_bytes`, waiting
    /// at most `limits.max_wait` for it to fill. Empty when nothing came.
    async fn fetch(&mut self, limits: &BatchLimits) -> Result<Vec<Delivery>, LandError>;

    /// Acknowledges every event fetched so far: the broker will not deliver them again.
    async fn ack_fetched(&mut self) -> Result<(), LandError>;
}
