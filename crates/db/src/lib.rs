//! PostgreSQL layer: connection and migrations, the ingest ledger (file versions, chunks,
//! quarantine, ignored objects), checking dataset specs against live tables, and the chunk
//! load (COPY into a staging table, one `INSERT … ON CONFLICT` merge, ledger and quarantine
//! in the same transaction).

mod alerts;
mod dead;
mod ledger;
mod load;
mod spec_check;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use alerts::{raise_alert, record_delivery};
pub use dead::{DeadItem, record_dead_items};
pub use ledger::*;
pub use load::{ChunkOutcome, DATA_CHANGED_CHANNEL, MergeSql, load_chunk};
pub use spec_check::check_spec;

/// The embedded migrations (`migrations/` at the repository root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A database failure, classified: transient ones (connection loss, restarts, serialization
/// failures, deadlocks) are worth retrying; the rest are not.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("PostgreSQL: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Invalid(String),
}

impl DbError {
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Sql(e) => sql_error_is_transient(e),
            _ => false,
        }
    }
}

fn sql_error_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") // connection exceptions
                || code == "40001" // serialization failure
                || code == "40P01" // deadlock detected
                || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
                || code == "53300" // too many connections
        }),
        _ => false,
    }
}

/// Opens a pool.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url)?.log_statements(tracing::log::LevelFilter::Trace);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// Creates the database the URL names if it does not exist (connecting to `postgres`).
pub async fn ensure_database(url: &str) -> Result<(), DbError> {
    let options = PgConnectOptions::from_str(url)?;
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    if options.clone().connect().await.is_ok() {
        return Ok(());
    }
    let mut admin = options.database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await?;
        tracing::info!(database = %name, "created database");
    }
    admin.close().await?;
    Ok(())
}

/// Applies every pending built-in migration (idempotent).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    migrate_with(pool, None).await
}

/// Applies the built-in migrations, then those in `extra` (datasets added without
/// rebuilding penstock; versions are timestamps, far above the built-in ones). Each set
/// ignores the other's applied versions.
pub async fn migrate_with(pool: &PgPool, extra: Option<&std::path::Path>) -> Result<(), DbError> {
    let mut builtin = sqlx::migrate!("../../migrations");
    builtin.set_ignore_missing(true);
    builtin.run(pool).await?;
    if let Some(dir) = extra.filter(|d| d.is_dir()) {
        let mut added = sqlx::migrate::Migrator::new(dir.to_path_buf()).await?;
        if let Some(clash) = added.iter().find(|m| builtin.iter().any(|b| b.version == m.version)) {
            return Err(DbError::Invalid(format!(
                "migration {} in {} has the version of a built-in migration; give it a timestamp version, e.g. {}_{}",
                clash.version,
                dir.display(),
                chrono::Utc::now().format("%Y%m%d%H%M%S"),
                clash.description.replace(' ', "_")
            )));
        }
        added.set_ignore_missing(true);
        added.run(pool).await?;
    }
    Ok(())
}

/// Quotes an identifier (spec names are already checked to be plain lowercase identifiers).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
