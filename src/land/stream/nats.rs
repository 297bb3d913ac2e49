//! NATS JetStream behind [`Broker`]: one durable pull consumer per table (explicit acks), and
//! a publisher for feeding a stream (`strata generate --publish-events`).

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions, Subject, connection::State};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use url::Url;

use super::{BatchLimits, Broker, Delivery, Subscription};
use crate::land::declaration::{SourceDecl, SourceKind, TableDecl};
use crate::land::{LandError, error_chain, redacted};

/// How long the server waits for an acknowledgement unless the source says otherwise.
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long acknowledgements may take to reach the server.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Publishes awaiting the server's acknowledgement at once.
const PUBLISHES_IN_FLIGHT: usize = 256;

pub struct NatsBroker {
    source: String,
    url: String,
    stream: String,
    consumer: String,
    credentials_env: Option<String>,
    ack_wait: Duration,
}

impl NatsBroker {
    pub fn new(decl: &SourceDecl) -> Self {
        let SourceKind::Nats {
            url,
            stream,
            consumer,
            credentials_env,
            ack_wait_ms,
        } = &decl.kind
        else {
            unreachable!("a NATS broker is made for nats sources only")
        };
        Self {
            source: decl.name.clone(),
            url: url.clone(),
            stream: stream.clone(),
            consumer: consumer.clone(),
            credentials_env: credentials_env.clone(),
            ack_wait: ack_wait_ms.map_or(DEFAULT_ACK_WAIT, Duration::from_millis),
        }
    }

    fn origin(&self, table: &TableDecl) -> Origin {
        Origin {
            source: self.source.clone(),
            table: table.name.clone(),
            url: self.url.clone(),
        }
    }

    fn error(&self, table: &TableDecl, message: impl std::fmt::Display) -> LandError {
        self.origin(table).error(message)
    }

    async fn connect(&self, table: &TableDecl) -> Result<Client, LandError> {
        let mut options = ConnectOptions::new()
            .name(format!("strata-land {}.{}", self.source, table.name))
            .connection_timeout(CONNECT_TIMEOUT);
        if let Some(var) = &self.credentials_env {
            let secret = std::env::var(var).map_err(|_| LandError::MissingEnv {
                source_name: self.source.clone(),
                var: var.clone(),
            })?;
            options = match secret.split_once(':') {
                Some((user, password)) => options.user_and_password(user.into(), password.into()),
                None => options.token(secret),
            };
        }
        options
            .connect(&self.url)
            .await
            .map_err(|e| self.error(table, error_chain(&e)))
    }

    /// The table's consumer: durable, explicitly acknowledged, from the stream's first event.
    /// Creating it again with the same settings is a no-op; changed limits (`ack_wait`) apply.
    fn consumer_config(&self, table: &TableDecl) -> pull::Config {
        pull::Config {
            durable_name: Some(format!("{}_{}", self.consumer, table.name)),
            description: Some(format!("strata land {}.{}", self.source, table.name)),
            filter_subject: subject_of(table).to_string(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // A micro-batch is acknowledged only once landed: the server must not stop
            // delivering at its default of 1,000 unacknowledged events.
            max_ack_pending: -1,
            ..Default::default()
        }
    }
}

fn subject_of(table: &TableDecl) -> &str {
    table
        .subject
        .as_deref()
        .expect("stream tables have a subject (checked at load)")
}

#[async_trait]
impl Broker for NatsBroker {
    fn location(&self, table: &TableDecl) -> String {
        format!("{}/{}/{}", self.url, self.stream, subject_of(table))
    }

    async fn subscribe(&self, table: &TableDecl) -> Result<Box<dyn Subscription>, LandError> {
        let client = self.connect(table).await?;
        let context = jetstream::new(client.clone());
        let stream = context.get_stream(&self.stream).await.map_err(|e| {
            self.error(
                table,
                format!("stream {}: {}", self.stream, error_chain(&e)),
            )
        })?;
        let created = stream.cached_info().created;
        let config = self.consumer_config(table);
        let name = config.durable_name.clone().unwrap_or_default();
        let consumer: PullConsumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| self.error(table, format!("consumer {name}: {}", error_chain(&e))))?;
        let backlog = consumer.cached_info().num_pending;
        Ok(Box::new(NatsSubscription {
            origin: self.origin(table),
            epoch: format!(
                "{}@{}",
                self.stream,
                created.timestamp_nanos_opt().unwrap_or(0)
            ),
            backlog,
            client,
            consumer,
            unacked: Vec::new(),
        }))
    }
}

/// Which table of which source an error is about.
struct Origin {
    source: String,
    table: String,
    url: String,
}

impl Origin {
    fn error(&self, message: impl std::fmt::Display) -> LandError {
        LandError::Stream {
            source_name: self.source.clone(),
            table: self.table.clone(),
            message: format!("NATS at {}: {message}", self.url),
        }
    }
}

struct NatsSubscription {
    origin: Origin,
    epoch: String,
    backlog: u64,
    client: Client,
    consumer: PullConsumer,
    /// Reply subjects of the events fetched and not yet acknowledged.
    unacked: Vec<Subject>,
}

impl NatsSubscription {
    fn error(&self, message: impl std::fmt::Display) -> LandError {
        self.origin.error(message)
    }

    /// A batch that ends while the connection is down was cut short by it, not drained.
    fn check_connected(&self) -> Result<(), LandError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            _ => Err(self.error("lost the connection to the server")),
        }
    }
}

#[async_trait]
impl Subscription for NatsSubscription {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn backlog(&self) -> u64 {
        self.backlog
    }

    async fn fetch(&mut self, limits: &BatchLimits) -> Result<Vec<Delivery>, LandError> {
        let mut messages = self
            .consumer
            .batch()
            .max_messages(limits.max_rows)
            .max_bytes(limits.max_bytes)
            .expires(limits.max_wait)
            .messages()
            .await
            .map_err(|e| self.error(error_chain(&e)))?;
        let mut batch = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| self.error(error_chain(&*e)))?;
            let info = message.info().map_err(|e| self.error(error_chain(&*e)))?;
            let delivery = Delivery {
                position: info.stream_sequence,
                redelivered: info.delivered > 1,
                payload: message.payload.clone(),
            };
            if let Some(reply) = &message.reply {
                self.unacked.push(reply.clone());
            }
            batch.push(delivery);
        }
        // Whatever arrived is real and lands; an outage shows once the batch is handled.
        if batch.is_empty() {
            self.check_connected()?;
        }
        Ok(batch)
    }

    async fn ack_fetched(&mut self) -> Result<(), LandError> {
        self.check_connected()?;
        for reply in self.unacked.drain(..) {
            self.client
                .publish(reply, Bytes::new())
                .await
                .map_err(|e| self.origin.error(error_chain(&e)))?;
        }
        match tokio::time::timeout(FLUSH_TIMEOUT, self.client.flush()).await {
            Ok(Ok(())) => self.check_connected(),
            Ok(Err(e)) => Err(self.error(error_chain(&e))),
            Err(_) => Err(self.error(format!(
                "acknowledgements not confirmed within {FLUSH_TIMEOUT:?}"
            ))),
        }
    }
}

/// Where `strata generate --publish-events` sends events: `nats://host:port/<stream>/<subject>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishTarget {
    /// The server URL without the path (credentials, if any, stay in it).
    server: String,
    stream: String,
    subject: String,
}

/// What the server did with published events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    pub stored: u64,
    /// Dropped as repeats of a message id stored within the duplicate window.
    pub repeats: u64,
}

impl Published {
    fn count(&mut self, stored: bool) {
        if stored {
            self.stored += 1;
        } else {
            self.repeats += 1;
        }
    }
}

/// Why events could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0:?} is not nats://host:port/<stream>/<subject>")]
    BadTarget(String),
    #[error("NATS at {server}: {message}")]
    Nats { server: String, message: String },
}

impl std::str::FromStr for PublishTarget {
    type Err = PublishError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PublishError::BadTarget(redacted(text));
        let url = Url::parse(text).map_err(|_| bad())?;
        if !matches!(url.scheme(), "nats" | "tls") || url.host_str().is_none() {
            return Err(bad());
        }
        let (stream, subject) = url
            .path()
            .trim_start_matches('/')
            .split_once('/')
            .filter(|(stream, subject)| !stream.is_empty() && !subject.is_empty())
            .ok_or_else(bad)?;
        let mut server = url.clone();
        server.set_path("");
        Ok(Self {
            server: server.as_str().trim_end_matches('/').to_string(),
            stream: stream.to_string(),
            subject: subject.to_string(),
        })
    }
}

impl std::fmt::Display for PublishTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            redacted(&self.server),
            self.stream,
            self.subject
        )
    }
}

impl PublishTarget {
    fn error(&self, message: impl std::fmt::Display) -> PublishError {
        PublishError::Nats {
            server: redacted(&self.server),
            message: message.to_string(),
        }
    }

    /// Publishes `events` (message id, payload) in order, creating the stream (file storage,
    /// capturing the subject) when missing. The ids (`Nats-Msg-Id`) let the server drop a
    /// repeat published within its duplicate window.
    pub async fn publish(
        &self,
        events: impl IntoIterator<Item = (String, Bytes)>,
    ) -> Result<Published, PublishError> {
        let client = ConnectOptions::new()
            .name("strata-publish")
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(&self.server)
            .await
            .map_err(|e| self.error(error_chain(&e)))?;
        let context = jetstream::new(client.clone());
        context
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![self.subject.clone()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| self.error(format!("stream {}: {}", self.stream, error_chain(&e))))?;
        let mut in_flight: VecDeque<PublishAckFuture> = VecDeque::new();
        let mut published = Published::default();
        for (id, payload) in events {
            if in_flight.len() >= PUBLISHES_IN_FLIGHT {
                let oldest = in_flight.pop_front().expect("publishes are in flight");
                published.count(self.stored(oldest).await?);
            }
            let message = PublishMessage::build().payload(payload).message_id(id);
            let ack = context
                .send_publish(self.subject.clone(), message)
                .await
                .map_err(|e| self.error(error_chain(&e)))?;
            in_flight.push_back(ack);
        }
        for ack in in_flight {
            published.count(self.stored(ack).await?);
        }
        Ok(published)
    }

    /// Whether the server stored a published event (rather than dropping it as a repeat).
    async fn stored(&self, ack: PublishAckFuture) -> Result<bool, PublishError> {
        let ack = ack.await.map_err(|e| self.error(error_chain(&e)))?;
        Ok(!ack.duplicate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_targets_name_server_stream_and_subject() {
        let target: PublishTarget = "nats://127.0.0.1:4222/EVENTS/shop.events".parse().unwrap();
        assert_eq!(target.server, "nats://127.0.0.1:4222");
        assert_eq!(target.stream, "EVENTS");
        assert_eq!(target.subject, "shop.events");
        let secret: PublishTarget = "nats://u:pw@h:4222/S/x".parse().unwrap();
        assert_eq!(secret.to_string(), "nats://u:***@h:4222/S/x");
        for bad in [
            "http://h/S/x",
            "nats://h:4222/S",
            "nats://h:4222/",
            "nats://u:pw@h/S",
        ] {
            let err = bad.parse::<PublishTarget>().unwrap_err().to_string();
            assert!(!err.contains("pw"), "{err}");
        }
    }
}
