//! What can go wrong talking to a queue.

/// A broker failure. Every variant is transient for a handler (the item stays unacked and
/// comes back) except that a supervisor treats a refused declaration at start-up as fatal.
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
    #[error("the connection to the queue is lost")]
    Disconnected,
    #[error("RabbitMQ did not answer {what} within {seconds} s (connection half gone?)")]
    NoAnswer { what: &'static str, seconds: u64 },
    #[error("delivery {tag} was settled twice or belongs to a closed subscription")]
    UnknownDelivery { tag: u64 },
    #[error("cannot encode the work item: {0}")]
    Encode(#[from] serde_json::Error),
}
