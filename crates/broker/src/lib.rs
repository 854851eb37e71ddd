//! The work-queue boundary: the [`WorkQueue`] trait every role talks to (publish with
//! confirm, consume with manual ack and bounded prefetch, delayed retry, dead-letter, queue
//! depth), [`RabbitMq`] implementing it on RabbitMQ with lapin, and [`MemoryQueue`]
//! implementing it in memory for unit tests. No lapin type leaves this crate.

mod error;
mod memory;
mod queue;
mod queues;
mod rabbit;
mod topology;

pub use error::BrokerError;
pub use memory::MemoryQueue;
pub use queue::{Delivery, Meta, SharedQueue, Subscription, WorkQueue};
pub use queues::Queues;
pub use rabbit::{DELIVERY_LIMIT, RabbitMq};
pub use topology::Topology;
