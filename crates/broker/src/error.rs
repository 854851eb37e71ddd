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

impl BrokerError {
    /// Whether the broker could not be reached or the connection broke (it may answer in a
    /// moment), rather than answering with a refusal (a wrong password or vhost, a protocol
    /// it does not speak) that waiting does not change.
    pub fn is_unreachable(&self) -> bool {
        match self {
            BrokerError::Amqp(e) => !matches!(
                e.kind(),
                lapin::ErrorKind::ProtocolError(_)
                    | lapin::ErrorKind::AuthProviderError(_)
                    | lapin::ErrorKind::InvalidProtocolVersion(_)
            ),
            BrokerError::NoAnswer { .. } | BrokerError::Disconnected | BrokerError::ConsumerClosed => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_unreachable_and_a_refused_login_is_not() {
        let io = lapin::Error::from(lapin::ErrorKind::IOError(std::sync::Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        ))));
        assert!(BrokerError::Amqp(io).is_unreachable());
        let refused = lapin::Error::from(lapin::ErrorKind::AuthProviderError("bad password".into()));
        assert!(!BrokerError::Amqp(refused).is_unreachable());
        assert!(
            BrokerError::NoAnswer {
                what: "a handshake",
                seconds: 30
            }
            .is_unreachable()
        );
        assert!(!BrokerError::Nacked { queue: "q".into() }.is_unreachable());
    }
}
