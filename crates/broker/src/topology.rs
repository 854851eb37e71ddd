//! [`Topology`]: what the fleet declares on RabbitMQ, and the arguments of its quorum queues.

use lapin::types::{AMQPValue, FieldTable};

use crate::queues::Queues;

/// What the fleet declares on RabbitMQ: its queues, named from the prefix, and how many
/// nodes of a cluster hold each new quorum queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub queues: Queues,
    /// Replicas a quorum queue gets when it is first declared (`x-quorum-initial-group-size`):
    /// `None` leaves it to the broker (every node of the cluster unless the broker's own
    /// configuration caps it). Odd sizes tolerate the most failures for their cost: 3 keeps
    /// a queue available with one node down, 5 with two.
    pub quorum_group_size: Option<u32>,
}

impl Topology {
    /// The queues of `prefix`, with the broker's default group size.
    pub fn new(prefix: &str) -> Topology {
        Topology {
            queues: Queues::new(prefix),
            quorum_group_size: None,
        }
    }

    /// The arguments every quorum queue of the fleet is declared with.
    pub(crate) fn quorum(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        if let Some(size) = self.quorum_group_size {
            args.insert("x-quorum-initial-group-size".into(), AMQPValue::LongInt(size as i32));
        }
        args
    }
}
