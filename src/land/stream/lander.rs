//! Landing one stream table: micro-batches fetched, written, committed, then acknowledged.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream;

use super::positions::Positions;
use super::{BatchLimits, Broker, Delivery};
use crate::land::LandError;
use crate::land::copy;
use crate::land::declaration::{SourceDecl, SourceKind, TableDecl};
use crate::land::source::{Landing, Source, TableFailure, TableOutcome};
use crate::meta::IngestRecord;

/// A source whose tables are subjects of a message broker. Its report counts events: offered
/// (delivered), landed, and already landed (redeliveries of events bronze holds).
pub struct StreamSource {
    broker: Box<dyn Broker>,
}

impl StreamSource {
    pub fn new(broker: Box<dyn Broker>) -> Self {
        Self { broker }
    }

    /// The source for a declared `nats` source.
    pub fn nats(decl: &SourceDecl) -> Self {
        match &decl.kind {
            SourceKind::Nats { .. } => Self::new(Box::new(super::nats::NatsBroker::new(decl))),
            other => unreachable!("a {} source is not a stream", other.label()),
        }
    }

    /// Lands micro-batches until a fetch comes back empty or the backlog seen at the start has
    /// been delivered.
    async fn drain(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        let mut subscription = self
            .broker
            .subscribe(table)
            .await
            .map_err(TableFailure::Source)?;
        let epoch = subscription.epoch().to_string();
        let mut landed = Positions::landed(landing.history_of(table), &epoch);
        let limits = BatchLimits::of(table);
        let backlog = subscription.backlog();
        let mut new = 0u64;
        let mut files = 0;
        loop {
            let batch = subscription
                .fetch(&limits)
                .await
                .map_err(TableFailure::Source)?;
            if batch.is_empty() {
                return Ok(());
            }
            outcome.report.offered += batch.len();
            new += batch.iter().filter(|d| !d.redelivered).count() as u64;
            let fresh = MicroBatch::of(batch, &landed);
            outcome.report.skipped += fresh.skipped;
            if !fresh.events.is_empty() {
                let record = self
                    .write(table, landing, &fresh, &epoch, files)
                    .await
                    .map_err(TableFailure::Abort)?;
                landing
                    .commit(&[record])
                    .await
                    .map_err(TableFailure::Abort)?;
                files += 1;
                outcome.report.landed += fresh.events.len();
                outcome.report.bytes += fresh.bytes.len() as u64;
                landed.extend(&fresh.positions);
            }
            // Only now is the batch in bronze for good: the broker may forget it.
            subscription
                .ack_fetched()
                .await
                .map_err(TableFailure::Source)?;
            if new >= backlog {
                return Ok(());
            }
        }
    }

    /// Writes a micro-batch into bronze as this run's `n`th file of `table`, returning its log
    /// record (not yet committed).
    async fn write(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        batch: &MicroBatch,
        epoch: &str,
        n: usize,
    ) -> Result<IngestRecord, LandError> {
        let body = Box::pin(stream::iter([Ok(batch.bytes.clone())]));
        let (tmp, written) = copy::write_scratch(landing.lake, body, |_| ()).await?;
        let dest = landing.bronze_path(table, n, table.raw_format().extension());
        copy::publish(landing.lake, &tmp, &dest).await?;
        Ok(landing.record(
            table,
            &self.broker.location(table),
            &dest,
            &written,
            Some(batch.positions.state(epoch)),
        ))
    }
}

#[async_trait]
impl Source for StreamSource {
    async fn land_table(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        self.drain(table, landing, outcome).await
    }
}

/// The events of a fetched batch that bronze does not hold yet, as NDJSON.
struct MicroBatch {
    events: Vec<u64>,
    positions: Positions,
    bytes: Bytes,
    /// Deliveries dropped: already landed, or delivered twice in this batch.
    skipped: usize,
}

impl MicroBatch {
    fn of(batch: Vec<Delivery>, landed: &Positions) -> Self {
        let mut seen = std::collections::HashSet::new();
        let mut events = Vec::new();
        let mut bytes = Vec::new();
        let mut skipped = 0;
        for delivery in batch {
            if landed.contains(delivery.position) || !seen.insert(delivery.position) {
                skipped += 1;
                continue;
            }
            events.push(delivery.position);
            push_line(&mut bytes, &delivery.payload);
        }
        Self {
            positions: Positions::of(events.iter().copied()),
            events,
            bytes: Bytes::from(bytes),
            skipped,
        }
    }
}

/// Appends `payload` as one NDJSON line. Line breaks inside it become spaces: between JSON
/// tokens they are insignificant whitespace (and raw ones inside strings are invalid JSON), so
/// a valid document stays valid and equal, and an invalid one stays one line a reader rejects.
fn push_line(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend(payload.iter().map(|&b| match b {
        b'\n' | b'\r' => b' ',
        b => b,
    }));
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(position: u64, payload: &str) -> Delivery {
        Delivery {
            position,
            redelivered: false,
            payload: Bytes::from(payload.to_string()),
        }
    }

    #[test]
    fn batches_drop_landed_and_repeated_events() {
        let landed = Positions::of([1, 2]);
        let batch = vec![
            delivery(2, r#"{"a":2}"#),
            delivery(3, "{\"a\":\n3}\r\n"),
            delivery(3, r#"{"a":3}"#),
            delivery(4, "not json"),
        ];
        let micro = MicroBatch::of(batch, &landed);
        assert_eq!(micro.events, [3, 4]);
        assert_eq!(micro.skipped, 2);
        assert_eq!(&micro.bytes[..], b"{\"a\": 3}  \nnot json\n");
        assert_eq!(micro.positions, Positions::of([3, 4]));
    }
}
