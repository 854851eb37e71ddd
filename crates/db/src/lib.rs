//! PostgreSQL layer: connection and migrations, the ingest ledger (file versions, chunks,
//! quarantine, ignored objects), checking dataset specs against live tables, and the chunk
//! load (COPY straight into the table for new keys, else COPY into staging and one
//! `INSERT … ON CONFLICT` merge; ledger and quarantine in the same transaction).

mod alerts;
mod dead;
mod error;
mod file_state;
mod ledger;
mod load;
mod setup;
mod spec_check;

pub use alerts::{raise_alert, record_delivery};
pub use dead::{DeadItem, record_dead_items};
pub use error::DbError;
pub use file_state::FileState;
pub use ledger::*;
pub use load::{ChunkOutcome, DATA_CHANGED_CHANNEL, LoadPath, MergeSql, load_chunk};
pub use setup::{
    MIGRATOR, MigrationState, connect, connect_lazy, ensure_database, migrate, migrate_with, migration_status,
    revert_latest,
};
pub use spec_check::check_spec;
/// The connection pool every other crate holds (they name no sqlx type of their own).
pub use sqlx::PgPool;
