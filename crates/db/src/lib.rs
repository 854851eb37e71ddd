//! PostgreSQL layer: connection and migrations, the ingest ledger (file versions, chunks,
//! quarantine, ignored objects), checking dataset specs against live tables, the chunk
//! load (COPY straight into the table for new keys, else COPY into staging and one
//! `INSERT … ON CONFLICT` merge; ledger and quarantine in the same transaction), and what the
//! read API asks ([`read`]). Every SQL statement of penstock is in this crate; the others name
//! the pool as [`PgPool`] and its failures as [`DbError`].
//!
//! Queries over fixed tables are checked at compile time (`sqlx::query!` and friends) against
//! the offline data in `.sqlx/` at the workspace root (`just prepare` refreshes it); those
//! whose text is built at run time (a dataset's table, optional filters, a sort column) use
//! sqlx's runtime API.

mod alerts;
mod copy;
mod data_changes;
mod databases;
mod dead;
mod error;
mod file_state;
mod isolate;
mod ledger;
mod load;
mod outbox;
mod plan;
pub mod read;
mod reconcile;
mod setup;
mod spec_check;

pub use alerts::{
    ALERT_STATUSES, AlertAction, AlertRow, SEVERITIES, alert, alerts_page, change_alert, raise_alert, raise_alert_once,
    record_delivery,
};
#[cfg(feature = "utoipa")]
pub use alerts::{AlertStatusName, SeverityName};
pub use data_changes::{DataChanges, ReplicaStatus, replica_status};
pub use databases::{Database, Databases, SHARD_BITS, shard_of};
pub use dead::{DeadItem, record_dead_items};
pub use error::DbError;
pub use file_state::FileState;
pub use ledger::*;
pub use load::{ChunkOutcome, DATA_CHANGED_CHANNEL, Finished, LoadPath, MergeSql, load_chunk};
pub use outbox::{Unsent, enqueue_event, prune_outbox};
pub use plan::{ChunkInPlan, PlanNotes, PlannedRange, StoredPlan, chunk_in_plan, store_plan, stored_plan};
pub use reconcile::{Reconciliation, Stalled, StalledPlan, touch};
pub use setup::{
    MIGRATOR, MigrationState, connect, connect_lazy, ensure_database, migrate, migrate_with, migration_status, ping,
    revert_latest, server_version,
};
pub use spec_check::check_spec;
/// The connection pool every other crate holds (they name no sqlx type of their own).
pub use sqlx::PgPool;
