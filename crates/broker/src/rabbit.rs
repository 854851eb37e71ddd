//! The work queue on RabbitMQ (lapin): the fleet's topology, publisher-confirmed persistent
//! publishing, and manual-ack consumers with bounded prefetch.
//!
//! Topology (declared idempotently by every role at start-up): durable quorum queues
//! `<prefix>.files`, `<prefix>.chunks`, `<prefix>.errors`, `<prefix>.events`, reached through
//! the default exchange, and per work queue one quorum retry queue per delay whose messages
//! wait out their TTL, then dead-letter back into the work queue. A publish returns only
//! once the broker has confirmed it; an unroutable publish (a queue deleted under us) is an
//! error, not a silent drop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use lapin::Acker;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

use crate::error::BrokerError;
use crate::queue::{Delivery, Meta, Settle, Subscription, WorkQueue};
use crate::queues::Queues;
use crate::topology::Topology;

const ATTEMPT: &str = "x-penstock-attempt";
const REASON: &str = "x-penstock-reason";
const SOURCE_QUEUE: &str = "x-penstock-source-queue";

/// The AMQP frame size penstock asks for unless the URL sets `frame_max` itself. lapin keeps
/// a receive and a send buffer of 32 frames per connection, touched in full: with RabbitMQ's
/// 128 KiB default that is 8 MiB per connection (measured: 41 of the 45 MiB a whole idle
/// fleet held). penstock's messages are work items of a few hundred bytes, so 16 KiB frames
/// cost nothing and keep a connection's buffers at 1 MiB.
const FRAME_MAX: u32 = 16 * 1024;

/// How long a goodbye (cancel a consumer, close a channel or the connection) may take: on a
/// connection that is half gone (a network that drops packets rather than refusing them)
/// the broker's answer may never come, and the supervisor must still get to reconnect.
const GOODBYE: Duration = Duration::from_secs(5);

/// How long penstock waits for the broker to answer one request: the connection handshake
/// (with the topology), opening a consumer, a publish's confirm, a settlement. lapin's futures
/// can wait forever on a connection that broke at the wrong moment (a socket cut during the
/// handshake, a close while a confirm is due: amqp-rs/lapin#409, #437, #470), and a role
/// waiting on one would never reconnect. A request not answered in time is an error instead,
/// and the supervisor reconnects.
const ANSWER: Duration = Duration::from_secs(30);

/// `request`, or [`BrokerError::NoAnswer`] naming `what` once [`ANSWER`] has passed.
async fn answer<T, E: Into<BrokerError>>(
    what: &'static str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(ANSWER, request).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(BrokerError::NoAnswer {
            what,
            seconds: ANSWER.as_secs(),
        }),
    }
}

/// Deliveries a work item gets without being settled (acked, retried or dead-lettered by
/// penstock) before RabbitMQ dead-letters it to the errors queue: each one means a consumer
/// stopped while holding it (a crash, a lost connection), so an item that crashes its
/// consumer ends there, with a reason, instead of looping forever. penstock's own retries
/// republish the item and do not count. One value for every process: queue arguments must
/// agree between everyone who declares the queue.
pub const DELIVERY_LIMIT: u32 = 20;

fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 406)
}

/// What a work queue declared before the delivery limit lacks.
const NO_DELIVERY_LIMIT: &str = "an earlier penstock declared it without a delivery limit: a message that crashes \
                                 its consumer is redelivered forever (or apply the limit as a policy)";
/// What a retry queue declared before they were quorum queues risks.
const CLASSIC_RETRY: &str = "an earlier penstock declared it as a classic queue: on a cluster, its items are out of reach while its node is down";
/// What else can differ on any queue.
const OTHER_GROUP_SIZE: &str = "another quorum_group_size declared it (the size counts only when a queue is first \
                                declared; `rabbitmq-queues grow` and `shrink` change it on a queue that exists)";

/// `url` with `frame_max` set to [`FRAME_MAX`] unless it names one already.
fn with_small_frames(url: &str) -> String {
    if url.contains("frame_max=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}frame_max={FRAME_MAX}")
}

/// One RabbitMQ connection with a confirm-mode channel for publishing.
#[derive(Clone)]
pub struct RabbitMq {
    connection: Arc<Connection>,
    publisher: Channel,
    topology: Arc<Topology>,
}

impl RabbitMq {
    /// Connects and declares the queues of `prefix` (the broker's default group size).
    pub async fn connect(url: &str, prefix: &str) -> Result<RabbitMq, BrokerError> {
        RabbitMq::connect_with(url, &Topology::new(prefix)).await
    }

    /// Connects and declares `topology`.
    pub async fn connect_with(url: &str, topology: &Topology) -> Result<RabbitMq, BrokerError> {
        answer("the connection handshake", RabbitMq::open(url, topology)).await
    }

    /// Connects to the first of `urls` (the nodes of a cluster, or one broker) that answers,
    /// starting with the one that answered last in this process, so connections stay on a
    /// node while it is up and move to the next when it fails.
    pub async fn connect_any(urls: &[String], topology: &Topology) -> Result<RabbitMq, BrokerError> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static PREFERRED: AtomicUsize = AtomicUsize::new(0);
        let first = PREFERRED.load(Ordering::Relaxed);
        let mut failed = None;
        for i in penstock_core::endpoints::order(urls.len(), first) {
            match RabbitMq::connect_with(&urls[i], topology).await {
                Ok(broker) => {
                    PREFERRED.store(i, Ordering::Relaxed);
                    return Ok(broker);
                }
                Err(e) => {
                    if urls.len() > 1 {
                        tracing::warn!(
                            endpoint = %penstock_core::redact::password(&urls[i]),
                            error = %e,
                            "RabbitMQ endpoint does not answer; trying the next"
                        );
                    }
                    failed = Some(e);
                }
            }
        }
        Err(failed.unwrap_or(BrokerError::Disconnected))
    }

    async fn open(url: &str, topology: &Topology) -> Result<RabbitMq, BrokerError> {
        let name = LongString::from(format!("penstock {}", std::process::id()));
        let properties = ConnectionProperties::default().with_connection_name(name);
        let connection = Connection::connect(&with_small_frames(url), properties).await?;
        let publisher = connection.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        let broker = RabbitMq {
            connection: Arc::new(connection),
            publisher,
            topology: Arc::new(topology.clone()),
        };
        broker.declare().await?;
        Ok(broker)
    }

    /// Connects and disconnects without declaring anything: a reachability and credentials
    /// check with no side effects (`penstock check`, readiness).
    pub async fn probe(url: &str) -> Result<(), BrokerError> {
        let connection = answer(
            "the connection handshake",
            Connection::connect(&with_small_frames(url), ConnectionProperties::default()),
        )
        .await?;
        let _ = connection.close(200, "probe".into()).await;
        Ok(())
    }

    async fn declare(&self) -> Result<(), BrokerError> {
        let queues = &self.topology.queues;
        let quorum = self.topology.quorum();
        // One channel for every declaration, opened again only after a refusal closed it.
        let mut channel = None;
        for queue in [&queues.errors, &queues.parked] {
            self.declare_keeping_existing(&mut channel, queue, &quorum, None)
                .await?;
        }
        // Work queues: a message delivered DELIVERY_LIMIT times without being settled (its
        // consumer crashed each time) goes to the errors queue with why, instead of looping.
        let mut work = quorum;
        work.insert("x-delivery-limit".into(), AMQPValue::LongInt(DELIVERY_LIMIT as i32));
        work.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        work.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(queues.errors.as_str().into()),
        );
        for queue in queues.work() {
            self.declare_keeping_existing(&mut channel, queue, &work, Some(NO_DELIVERY_LIMIT))
                .await?;
        }
        // Retry queues: message TTL, then dead-lettering back to the work queue. Quorum too:
        // a classic queue lives on one node of a cluster, and while that node is down its
        // items are out of reach and a role connecting elsewhere cannot declare it.
        for work in queues.work() {
            for delay in penstock_core::retry::DELAYS {
                let mut retry = self.topology.quorum();
                retry.insert("x-message-ttl".into(), AMQPValue::LongLongInt(delay.as_millis() as i64));
                retry.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
                retry.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(work.into()));
                let name = Queues::retry(work, delay);
                self.declare_keeping_existing(&mut channel, &name, &retry, Some(CLASSIC_RETRY))
                    .await?;
            }
        }
        if let Some(channel) = channel {
            let _ = channel.close(200, "declared".into()).await;
        }
        Ok(())
    }

    /// Declares a queue with `args` on `channel` (the declaring channel, opened when there
    /// is none; the publisher's stays clear of refusals): a queue declared before with other
    /// arguments refuses the new ones (PRECONDITION_FAILED, which closes the channel, so it
    /// is dropped here). It is then used as it is, with a warning naming what may differ
    /// (`earlier`: what an earlier penstock declared it without) and how to redeclare it
    /// (README, "Upgrading").
    async fn declare_keeping_existing(
        &self,
        channel: &mut Option<Channel>,
        queue: &str,
        args: &FieldTable,
        earlier: Option<&str>,
    ) -> Result<(), BrokerError> {
        if channel.is_none() {
            *channel = Some(self.connection.create_channel().await?);
        }
        let declaring = channel.as_ref().expect("opened above");
        match declaring
            .queue_declare(queue.into(), QueueDeclareOptions::durable(), args.clone())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_precondition_failed(&e) => {
                *channel = None;
                let why = match earlier {
                    Some(earlier) => format!("{earlier}, or {OTHER_GROUP_SIZE}"),
                    None => OTHER_GROUP_SIZE.to_string(),
                };
                tracing::warn!(
                    queue,
                    "queue exists with other arguments than this process declares: {why}. It is used as it is. To \
                     redeclare it once it is empty: stop the fleet, `rabbitmqctl delete_queue {queue}`, start the \
                     fleet (README, \"Upgrading\")"
                );
                self.existing(queue).await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes one queue by name (tests' teardown of queues that are not the fleet's own).
    pub async fn delete_queue(&self, queue: &str) -> Result<(), BrokerError> {
        answer("a queue deletion", self.delete_one(queue)).await
    }

    /// Drops every ready message of one queue, as `rabbitmqctl purge_queue` does (the chaos
    /// soak's lost work items); returns how many there were.
    pub async fn purge(&self, queue: &str) -> Result<u32, BrokerError> {
        let purge = async {
            let channel = self.connection.create_channel().await?;
            let purged = channel.queue_purge(queue.into(), QueuePurgeOptions::default()).await?;
            let _ = channel.close(200, "purged".into()).await;
            Ok::<u32, BrokerError>(purged)
        };
        answer("a queue purge", purge).await
    }

    async fn delete_one(&self, queue: &str) -> Result<(), BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await?;
        let _ = channel.close(200, "deleted".into()).await;
        Ok(())
    }

    /// Deletes the fleet's queues, retry queues included (tests and teardown).
    pub async fn delete_queues(&self) -> Result<(), BrokerError> {
        for queue in self.topology.queues.every() {
            let delete = self
                .publisher
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default());
            answer("a queue deletion", delete).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl WorkQueue for RabbitMq {
    fn queues(&self) -> &Queues {
        &self.topology.queues
    }

    fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    async fn publish(&self, queue: &str, body: &[u8], meta: &Meta) -> Result<(), BrokerError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(meta.message_id.as_str().into())
            .with_headers(headers(meta));
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let publish = async {
            self.publisher
                .basic_publish("".into(), queue.into(), options, body, properties)
                .await?
                .await
        };
        let confirm = answer("a publish confirm", publish).await?;
        if !confirm.is_ack() {
            return Err(BrokerError::Nacked { queue: queue.into() });
        }
        if confirm.take_message().is_some() {
            return Err(BrokerError::Unroutable { queue: queue.into() });
        }
        Ok(())
    }

    async fn publish_later(&self, queue: &str, body: &[u8], meta: &Meta, delay: Duration) -> Result<(), BrokerError> {
        self.publish(&Queues::retry(queue, delay), body, meta).await
    }

    async fn subscribe(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Subscription>, BrokerError> {
        answer("opening a consumer", self.consume(queue, prefetch)).await
    }

    async fn ready_count(&self, queue: &str) -> Result<u32, BrokerError> {
        answer("a queue's depth", self.depth(queue)).await
    }

    async fn ensure_external_queue(&self, queue: &str) -> Result<(), BrokerError> {
        answer("a queue declaration", self.ensure_external(queue)).await
    }

    async fn close(&self) {
        let close = self.connection.close(200, "penstock shutting down".into());
        let _ = tokio::time::timeout(GOODBYE, close).await;
    }
}

impl RabbitMq {
    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Subscription>, BrokerError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tag = format!(
            "{queue}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let channel = self.connection.create_channel().await?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Box::new(RabbitSubscription {
            channel,
            consumer,
            tag,
            stopped: false,
        }))
    }

    /// A queue as it is (a passive declare on a channel of its own), or an error if it does
    /// not exist. A failed passive declare closes its channel, so it never shares one.
    async fn existing(&self, queue: &str) -> Result<lapin::Queue, BrokerError> {
        let channel = self.connection.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let q = channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await?;
        let _ = channel.close(200, "done".into()).await;
        Ok(q)
    }

    async fn depth(&self, queue: &str) -> Result<u32, BrokerError> {
        Ok(self.existing(queue).await?.message_count())
    }

    async fn ensure_external(&self, queue: &str) -> Result<(), BrokerError> {
        if self.existing(queue).await.is_ok() {
            return Ok(());
        }
        let channel = self.connection.create_channel().await?;
        channel
            .queue_declare(queue.into(), QueueDeclareOptions::durable(), FieldTable::default())
            .await?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(())
    }
}

/// A consumer on its own channel; closing the channel releases what it holds.
struct RabbitSubscription {
    channel: Channel,
    consumer: Consumer,
    tag: String,
    stopped: bool,
}

#[async_trait::async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        if self.stopped {
            return None;
        }
        match self.consumer.next().await {
            Some(Ok(delivery)) => Some(Ok(Delivery {
                meta: meta(&delivery.properties),
                redelivered: delivery.redelivered,
                body: Bytes::from(delivery.data),
                settle: Box::new(RabbitSettle(delivery.acker)),
            })),
            Some(Err(e)) => Some(Err(e.into())),
            None => Some(Err(BrokerError::ConsumerClosed)),
        }
    }

    async fn stop(&mut self) {
        self.stopped = true;
        let cancel = self
            .channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default());
        let _ = tokio::time::timeout(GOODBYE, cancel).await;
    }

    async fn close(self: Box<Self>) {
        let close = self.channel.close(200, "penstock consumer stopping".into());
        let _ = tokio::time::timeout(GOODBYE, close).await;
    }
}

struct RabbitSettle(Acker);

#[async_trait::async_trait]
impl Settle for RabbitSettle {
    async fn ack(&self) -> Result<(), BrokerError> {
        answer("an ack", self.0.ack(BasicAckOptions::default())).await?;
        Ok(())
    }

    async fn release(&self) -> Result<(), BrokerError> {
        let requeue = BasicNackOptions {
            requeue: true,
            ..Default::default()
        };
        answer("a release", self.0.nack(requeue)).await?;
        Ok(())
    }
}

/// penstock's headers for `meta`.
fn headers(meta: &Meta) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(ATTEMPT.into(), AMQPValue::LongUInt(meta.attempt));
    if let Some(reason) = &meta.reason {
        headers.insert(REASON.into(), AMQPValue::LongString(reason.as_str().into()));
    }
    if let Some(queue) = &meta.source_queue {
        headers.insert(SOURCE_QUEUE.into(), AMQPValue::LongString(queue.as_str().into()));
    }
    headers
}

/// What a delivery's properties say about its item. A message published by another system
/// (an S3 event) has no penstock headers: attempt 1, no reason.
fn meta(properties: &BasicProperties) -> Meta {
    let table = properties.headers().as_ref().map(|h| h.inner());
    let get = |name: &str| table.and_then(|t| t.get(name));
    let text = |name: &str| as_text(get(name));
    let attempt = match get(ATTEMPT) {
        Some(AMQPValue::LongUInt(n)) => Some(*n),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).ok(),
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).ok(),
        _ => None,
    };
    // Dead-lettered by RabbitMQ itself (the delivery limit), not by penstock: no penstock
    // reason, but the broker's own record of why and where from.
    let limited = table.and_then(latest_death).filter(|(why, _)| why == "delivery_limit");
    let (reason, source_queue) = match (text(REASON), limited) {
        (None, Some((_, queue))) => (
            Some(format!(
                "RabbitMQ dead-lettered it after {DELIVERY_LIMIT} deliveries that were never settled: each time, \
                 the consumer holding it stopped (crashed, was killed or lost its connection) before it finished; \
                 look for what about this item stops its consumer"
            )),
            queue.or_else(|| text(SOURCE_QUEUE)),
        ),
        (reason, _) => (reason, text(SOURCE_QUEUE)),
    };
    Meta {
        message_id: properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        attempt: attempt.unwrap_or(1),
        reason,
        source_queue,
    }
}

/// The most recent entry of RabbitMQ's `x-death` header: why the message was dead-lettered
/// last, and from which queue.
fn latest_death(
    headers: &std::collections::BTreeMap<lapin::types::ShortString, AMQPValue>,
) -> Option<(String, Option<String>)> {
    let Some(AMQPValue::FieldArray(deaths)) = headers.get("x-death") else {
        return None;
    };
    let Some(AMQPValue::FieldTable(latest)) = deaths.as_slice().first() else {
        return None;
    };
    let text = |name: &str| as_text(latest.inner().get(name));
    Some((text("reason")?, text("queue")))
}

/// A header value that is text, as text.
fn as_text(value: Option<&AMQPValue>) -> Option<String> {
    match value {
        Some(AMQPValue::LongString(s)) => Some(s.to_string()),
        Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
        _ => None,
    }
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
    fn penstock_headers_survive_the_round_trip_through_amqp_properties() {
        let sent = Meta::new("chunk-4-1").next_attempt(3).dead_lettered("p.chunks", "bad");
        let properties = BasicProperties::default()
            .with_message_id(sent.message_id.as_str().into())
            .with_headers(headers(&sent));
        assert_eq!(meta(&properties), sent);
    }

    fn dead_lettered_by_rabbitmq(reason: &str, queue: &str) -> BasicProperties {
        let mut death = FieldTable::default();
        death.insert("reason".into(), AMQPValue::LongString(reason.into()));
        death.insert("queue".into(), AMQPValue::LongString(queue.into()));
        let mut headers = FieldTable::default();
        headers.insert(
            "x-death".into(),
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
        );
        BasicProperties::default()
            .with_message_id("chunk-3-1".into())
            .with_headers(headers)
    }

    #[test]
    fn an_item_rabbitmq_dead_lettered_at_its_delivery_limit_says_why_and_where_from() {
        let got = meta(&dead_lettered_by_rabbitmq("delivery_limit", "p.chunks"));
        assert_eq!(got.source_queue.as_deref(), Some("p.chunks"));
        let reason = got.reason.unwrap();
        assert!(
            reason.starts_with("RabbitMQ dead-lettered it after 20 deliveries that were never settled"),
            "{reason}"
        );
    }

    #[test]
    fn an_item_back_from_a_retry_queue_has_no_reason() {
        let got = meta(&dead_lettered_by_rabbitmq("expired", "p.chunks.retry.5s"));
        assert_eq!((got.reason, got.source_queue), (None, None));
    }

    #[test]
    fn a_message_without_penstock_headers_is_a_first_attempt_without_a_reason() {
        let got = meta(&BasicProperties::default());
        assert_eq!(got, Meta::new(""));
    }
}
