//! penstock's roles and the fleet that runs them.
//!
//! - [`scanner`]: lists the store, records new object versions, publishes file items.
//! - [`chunker`]: validates a file and publishes record-aligned chunk items.
//! - [`loader`]: the database consumer; loads chunks exactly once in effect.
//! - [`dead_letters`]: the error consumer; records dead work items, fails their files.
//!
//! Roles share [`context::Context`] (pool, config, store, datasets, events) and
//! [`outcome`] (what a handler returns and how a delivery is settled); they never name the
//! fleet. [`fleet::Fleet`] runs any subset of roles in one process, each under a supervisor that
//! reconnects after broker failures; [`shutdown`] is the one shutdown path.

pub mod chunker;
pub mod context;
pub mod dead_letters;
pub mod fleet;
pub mod health;
pub mod loader;
pub mod metrics;
pub mod notifications;
pub mod outcome;
pub mod scanner;
pub mod shutdown;
pub mod stage;
mod watch;
pub mod webhooks;

pub use fleet::{Fleet, Role};
pub use outcome::RunError;
