//! penstock's roles (the fleet that runs them is `penstock-fleet`).
//!
//! - [`scanner`]: lists the store, records new object versions, publishes file items.
//! - [`chunker`]: validates a file and publishes record-aligned chunk items.
//! - [`loader`]: the database consumer; loads chunks exactly once in effect.
//! - [`dead_letters`]: the error consumer; records dead work items, fails their files.
//! - [`notifications`] and [`relay`]: events from the outbox to alerts and webhooks.
//!
//! Roles share [`context::Context`] (pool, config, store, datasets, events) and
//! [`outcome`] (what a handler returns and how a delivery is settled); they never name the
//! fleet. Each consumer role is a [`stage::Stage`] run by [`stage::run`]; [`shutdown`] is the
//! one shutdown path.

pub mod backfill;
pub mod chunker;
pub mod context;
pub mod dead_letters;
pub mod loader;
pub mod metrics;
pub mod notifications;
pub mod outcome;
pub mod reconciler;
pub mod relay;
pub mod scanner;
pub mod shutdown;
pub mod stage;
pub mod startup;
mod watch;
pub mod webhooks;

pub use outcome::RunError;
