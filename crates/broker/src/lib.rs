//! RabbitMQ adapter: the fleet's queues, publisher-confirmed persistent publishing, and
//! manual-ack consumers with bounded prefetch.
//!
//! Topology (declared idempotently by every role at start-up): durable quorum queues
//! `<prefix>.files`, `<prefix>.chunks`, `<prefix>.errors`, `<prefix>.events`, reached through
//! the default exchange. A publish returns only once the broker has confirmed it (so a work
//! item is never lost between "recorded in PostgreSQL" and "on the queue"); an unroutable
//! publish (a queue deleted under us) is an error, not a silent drop.

use std::sync::Arc;

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

pub use lapin::Consumer;
pub use lapin::message::Delivery;
pub use lapin::options::{BasicAckOptions, BasicNackOptions};

/// The fleet's queue names, all starting with the configured prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    pub files: String,
    pub chunks: String,
    pub errors: String,
    pub events: String,
}

impl Queues {
    pub fn new(prefix: &str) -> Queues {
        Queues {
            files: format!("{prefix}.files"),
            chunks: format!("{prefix}.chunks"),
            errors: format!("{prefix}.errors"),
            events: format!("{prefix}.events"),
        }
    }

    pub fn all(&self) -> [&str; 4] {
        [&self.files, &self.chunks, &self.errors, &self.events]
    }

    /// The queues whose items are retried through retry queues.
    pub fn work(&self) -> [&str; 3] {
        [&self.files, &self.chunks, &self.events]
    }

    /// The retry queue that holds items of `work_queue` for `delay`, then dead-letters them
    /// back into `work_queue`.
    pub fn retry(work_queue: &str, delay: std::time::Duration) -> String {
        format!("{work_queue}.{}", penstock_core::retry::queue_suffix(delay))
    }

    /// Every queue the fleet declares, retry queues included.
    pub fn every(&self) -> Vec<String> {
        let mut names: Vec<String> = self.all().iter().map(|q| q.to_string()).collect();
        for work in self.work() {
            names.extend(penstock_core::retry::DELAYS.iter().map(|d| Queues::retry(work, *d)));
        }
        names
    }
}

/// A broker failure. Connection-level failures are transient (retry after reconnecting);
/// a refused declaration (e.g. a queue that exists with other arguments) is not.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused the message for queue {queue} (negative confirm)")]
    Nacked { queue: String },
    #[error("RabbitMQ could not route the message to queue {queue}: does the queue exist?")]
    Unroutable { queue: String },
    #[error("RabbitMQ closed the consumer (connection or channel lost)")]
    ConsumerClosed,
    #[error("cannot encode the work item: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The AMQP frame size penstock asks for unless the URL sets `frame_max` itself. lapin keeps
/// a receive and a send buffer of 32 frames per connection, touched in full: with RabbitMQ's
/// 128 KiB default that is 8 MiB per connection (measured: 41 of the 45 MiB a whole idle
/// fleet held). penstock's messages are work items of a few hundred bytes, so 16 KiB frames
/// cost nothing and keep a connection's buffers at 1 MiB.
const FRAME_MAX: u32 = 16 * 1024;

/// `url` with `frame_max` set to [`FRAME_MAX`] unless it names one already.
fn with_small_frames(url: &str) -> String {
    if url.contains("frame_max=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}frame_max={FRAME_MAX}")
}

/// One connection with a confirm-mode channel for publishing.
#[derive(Clone)]
pub struct Broker {
    connection: Arc<Connection>,
    publisher: Channel,
    pub queues: Queues,
}

impl Broker {
    /// Connects and declares the topology.
    pub async fn connect(url: &str, prefix: &str) -> Result<Broker, BrokerError> {
        let properties = ConnectionProperties::default().with_connection_name(lapin::types::LongString::from(format!(
            "penstock {}",
            std::process::id()
        )));
        let connection = Connection::connect(&with_small_frames(url), properties).await?;
        let publisher = connection.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        let broker = Broker {
            connection: Arc::new(connection),
            publisher,
            queues: Queues::new(prefix),
        };
        broker.declare().await?;
        Ok(broker)
    }

    /// Connects and disconnects without declaring anything: a reachability and credentials
    /// check with no side effects (`penstock check`).
    pub async fn probe(url: &str) -> Result<(), BrokerError> {
        let connection = Connection::connect(&with_small_frames(url), ConnectionProperties::default()).await?;
        let _ = connection.close(200, "probe".into()).await;
        Ok(())
    }

    async fn declare(&self) -> Result<(), BrokerError> {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        for queue in self.queues.all() {
            self.publisher
                .queue_declare(queue.into(), QueueDeclareOptions::durable(), args.clone())
                .await?;
        }
        // Retry queues: messages wait out their TTL, then dead-letter (through the default
        // exchange) back into their work queue. Classic queues: TTL plus dead-lettering is
        // their home ground, and they only ever hold items that will come back.
        for work in self.queues.work() {
            for delay in penstock_core::retry::DELAYS {
                let mut retry = FieldTable::default();
                retry.insert("x-message-ttl".into(), AMQPValue::LongLongInt(delay.as_millis() as i64));
                retry.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
                retry.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(work.into()));
                let name = Queues::retry(work, delay);
                self.publisher
                    .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), retry)
                    .await?;
            }
        }
        Ok(())
    }

    /// Makes sure a queue that another system publishes to (S3 event notifications) exists:
    /// an existing queue is used as it is, whatever its arguments; a missing one is created
    /// durable.
    pub async fn ensure_external_queue(&self, queue: &str) -> Result<(), BrokerError> {
        let probe = self.connection.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if probe
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .is_ok()
        {
            let _ = probe.close(200, "exists".into()).await;
            return Ok(());
        }
        // A failed passive declare closes the probe channel; declare on a fresh one.
        let channel = self.connection.create_channel().await?;
        channel
            .queue_declare(queue.into(), QueueDeclareOptions::durable(), FieldTable::default())
            .await?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(())
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// Publishes a JSON work item, persistent, and waits for the broker's confirm.
    pub async fn publish<T: serde::Serialize>(
        &self,
        queue: &str,
        item: &T,
        message_id: &str,
    ) -> Result<(), BrokerError> {
        let body = serde_json::to_vec(item)?;
        self.publish_raw(queue, &body, message_id, FieldTable::default()).await
    }

    /// Publishes raw bytes with headers; persistent, confirmed, mandatory.
    pub async fn publish_raw(
        &self,
        queue: &str,
        body: &[u8],
        message_id: &str,
        headers: FieldTable,
    ) -> Result<(), BrokerError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message_id.into())
            .with_headers(headers);
        let confirm = self
            .publisher
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                properties,
            )
            .await?
            .await?;
        if !confirm.is_ack() {
            return Err(BrokerError::Nacked { queue: queue.into() });
        }
        if confirm.take_message().is_some() {
            return Err(BrokerError::Unroutable { queue: queue.into() });
        }
        Ok(())
    }

    /// Opens a channel with `prefetch` unacknowledged deliveries at most and starts a
    /// manual-ack consumer on `queue`. Closing the channel releases what it holds.
    pub async fn consume(&self, queue: &str, prefetch: u16, tag: &str) -> Result<(Channel, Consumer), BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((channel, consumer))
    }

    /// Messages ready (not yet delivered) in a queue.
    pub async fn ready_count(&self, queue: &str) -> Result<u32, BrokerError> {
        let channel = self.connection.create_channel().await?;
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let _ = channel.close(200, "done".into()).await;
        Ok(q.message_count())
    }

    /// Messages ready in each of the fleet's queues (files, chunks, errors, events), leaving
    /// out any that cannot be read right now.
    pub async fn ready_counts(&self) -> Vec<(&str, u32)> {
        let mut out = Vec::new();
        for queue in self.queues.all() {
            if let Ok(ready) = self.ready_count(queue).await {
                out.push((queue, ready));
            }
        }
        out
    }

    /// Deletes one queue by name (tests' teardown of queues that are not the fleet's own).
    pub async fn delete_queue(&self, queue: &str) -> Result<(), BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel
            .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
            .await?;
        let _ = channel.close(200, "deleted".into()).await;
        Ok(())
    }

    /// Deletes the fleet's queues (tests and teardown).
    pub async fn delete_queues(&self) -> Result<(), BrokerError> {
        for queue in self.queues.every() {
            self.publisher
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        Ok(())
    }

    /// Closes the connection (and with it every channel: unacked deliveries are released).
    pub async fn close(&self) {
        let _ = self.connection.close(200, "penstock shutting down".into()).await;
    }
}

/// The attempt counter of a delivery (header `x-penstock-attempt`, 1 when absent).
pub fn attempt(delivery: &Delivery) -> u32 {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-penstock-attempt").cloned())
        .and_then(|v| match v {
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(1)
}

/// A string header of a delivery, if present.
pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| match h.inner().get(name) {
            Some(AMQPValue::LongString(s)) => Some(s.to_string()),
            Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
            _ => None,
        })
}

/// Headers for the next attempt of an item.
pub fn attempt_headers(attempt: u32) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert("x-penstock-attempt".into(), AMQPValue::LongUInt(attempt));
    headers
}

/// Headers for a dead-lettered item: its reason and attempt count.
pub fn dead_letter_headers(reason: &str, attempt: u32, source_queue: &str) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert("x-penstock-reason".into(), AMQPValue::LongString(reason.into()));
    headers.insert("x-penstock-attempt".into(), AMQPValue::LongUInt(attempt));
    headers.insert(
        "x-penstock-source-queue".into(),
        AMQPValue::LongString(source_queue.into()),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gets_small_frames_unless_it_sets_its_own() {
        assert_eq!(with_small_frames("amqp://h/%2f"), "amqp://h/%2f?frame_max=16384");
        assert_eq!(
            with_small_frames("amqp://h/%2f?heartbeat=10"),
            "amqp://h/%2f?heartbeat=10&frame_max=16384"
        );
        assert_eq!(
            with_small_frames("amqp://h/v?frame_max=65536"),
            "amqp://h/v?frame_max=65536"
        );
    }

    #[test]
    fn every_queue_name_starts_with_the_prefix() {
        let q = Queues::new("fleet-a");
        assert_eq!(
            q.all(),
            ["fleet-a.files", "fleet-a.chunks", "fleet-a.errors", "fleet-a.events"]
        );
        assert!(q.every().iter().all(|n| n.starts_with("fleet-a.")));
        assert!(q.every().contains(&"fleet-a.chunks.retry.30s".to_string()));
        assert_eq!(q.every().len(), 19);
    }
}
