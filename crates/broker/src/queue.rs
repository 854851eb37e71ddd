//! The work-queue boundary every role talks to: publish with confirm, consume with manual
//! ack and bounded prefetch, delayed retry, dead-letter, queue depth. `RabbitMq`
//! implements it on RabbitMQ, `MemoryQueue` in memory for unit tests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::BrokerError;
use crate::queues::Queues;

/// What travels with a work item besides its body: its id and penstock's own headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Stable per work item (`file-7`, `chunk-7-3`), so redelivery can be recognised.
    pub message_id: String,
    /// 1 on first delivery; bumped by every delayed retry.
    pub attempt: u32,
    /// Why the item was dead-lettered (items on the errors queue only).
    pub reason: Option<String>,
    /// The queue a dead-lettered item came from.
    pub source_queue: Option<String>,
}

impl Meta {
    /// A first attempt of item `message_id`.
    pub fn new(message_id: impl Into<String>) -> Meta {
        Meta {
            message_id: message_id.into(),
            attempt: 1,
            reason: None,
            source_queue: None,
        }
    }

    /// The same item, for its next attempt.
    pub fn next_attempt(&self, attempt: u32) -> Meta {
        Meta {
            attempt,
            ..self.clone()
        }
    }

    /// The same item, dead-lettered from `queue` for `reason`.
    pub fn dead_lettered(&self, queue: &str, reason: &str) -> Meta {
        Meta {
            reason: Some(reason.to_string()),
            source_queue: Some(queue.to_string()),
            ..self.clone()
        }
    }
}

/// Settles one delivery; implemented by each queue.
#[async_trait::async_trait]
pub(crate) trait Settle: Send + Sync {
    async fn ack(&self) -> Result<(), BrokerError>;
    async fn release(&self) -> Result<(), BrokerError>;
}

/// One delivered work item, unacknowledged until [`Delivery::ack`] or
/// [`Delivery::release`]. Dropped unsettled, it stays with its subscription and goes back to
/// the queue when the subscription closes.
pub struct Delivery {
    pub body: Bytes,
    pub meta: Meta,
    /// Whether the queue delivered it before (and it was released, not acked).
    pub redelivered: bool,
    pub(crate) settle: Box<dyn Settle>,
}

impl Delivery {
    /// The item is done with: the queue forgets it.
    pub async fn ack(self) -> Result<(), BrokerError> {
        self.settle.ack().await
    }

    /// The item goes back to the queue, to be delivered again (to any consumer).
    pub async fn release(self) -> Result<(), BrokerError> {
        self.settle.release().await
    }

    /// Acks the item while keeping its body and metadata at hand (a long handler that must
    /// not be caught by the broker's consumer timeout). Settle it no more after this: a
    /// second ack or a release would refer to a delivery the queue has forgotten.
    pub async fn ack_in_place(&self) -> Result<(), BrokerError> {
        self.settle.ack().await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("meta", &self.meta)
            .field("redelivered", &self.redelivered)
            .field("bytes", &self.body.len())
            .finish()
    }
}

/// A manual-ack consumer on one queue, holding at most its prefetch of unsettled deliveries.
#[async_trait::async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` once stopped, `Some(Err)` when the connection is lost.
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>>;
    /// Stops intake: nothing more is delivered; deliveries in hand can still be settled.
    async fn stop(&mut self);
    /// Returns every unsettled delivery to the queue.
    async fn close(self: Box<Self>);
}

/// A queue service: the fleet's queues, their retry queues and the errors queue.
#[async_trait::async_trait]
pub trait WorkQueue: Send + Sync {
    /// The fleet's queue names.
    fn queues(&self) -> &Queues;
    /// Whether the connection is up.
    fn is_connected(&self) -> bool;
    /// Returns once the connection is lost (looked at four times a second). A role races its
    /// work against it, so a connection that dies while nothing waits on it (an idle
    /// scanner, a consumer stream that never ends) is noticed and replaced.
    async fn lost(&self) {
        while self.is_connected() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    /// Publishes an item, persistent; returns once the queue has confirmed it, so an item
    /// is never lost between "recorded" and "queued". A queue that does not exist is an error.
    async fn publish(&self, queue: &str, body: &[u8], meta: &Meta) -> Result<(), BrokerError>;
    /// Publishes an item that becomes deliverable on `queue` after `delay` (one of
    /// [`penstock_core::retry::DELAYS`]).
    async fn publish_later(&self, queue: &str, body: &[u8], meta: &Meta, delay: Duration) -> Result<(), BrokerError>;
    /// Starts a manual-ack consumer holding at most `prefetch` unsettled deliveries.
    async fn subscribe(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Subscription>, BrokerError>;
    /// Items ready (not yet delivered) in a queue.
    async fn ready_count(&self, queue: &str) -> Result<u32, BrokerError>;
    /// Makes sure a queue that another system publishes to exists, whatever its arguments.
    async fn ensure_external_queue(&self, queue: &str) -> Result<(), BrokerError>;
    /// Closes the connection; unsettled deliveries go back to their queues.
    async fn close(&self);
}

/// How roles hold a queue service.
pub type SharedQueue = Arc<dyn WorkQueue>;

impl<'q> dyn WorkQueue + 'q {
    /// Publishes a JSON work item (first attempt).
    pub async fn publish_json<T: serde::Serialize + ?Sized>(
        &self,
        queue: &str,
        item: &T,
        message_id: &str,
    ) -> Result<(), BrokerError> {
        let body = serde_json::to_vec(item)?;
        self.publish(queue, &body, &Meta::new(message_id)).await
    }

    /// Puts an item on the errors queue with why and where from. Confirmed before it
    /// returns, so the caller may then ack the original.
    pub async fn dead_letter(
        &self,
        from_queue: &str,
        body: &[u8],
        meta: &Meta,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let errors = self.queues().errors.clone();
        self.publish(&errors, body, &meta.dead_lettered(from_queue, reason))
            .await
    }

    /// Items ready in each of the fleet's queues, leaving out any that cannot be read now.
    pub async fn ready_counts(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for queue in self.queues().all() {
            if let Ok(ready) = self.ready_count(queue).await {
                out.push((queue.to_string(), ready));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_lettered_item_keeps_its_id_and_attempt_and_says_why_and_where_from() {
        let meta = Meta::new("chunk-1-2").next_attempt(3);
        let dead = meta.dead_lettered("p.chunks", "bad bytes");
        assert_eq!(dead.message_id, "chunk-1-2");
        assert_eq!(dead.attempt, 3);
        assert_eq!(dead.reason.as_deref(), Some("bad bytes"));
        assert_eq!(dead.source_queue.as_deref(), Some("p.chunks"));
    }
}
