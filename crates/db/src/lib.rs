//! PostgreSQL layer: connection and migrations, the ingest ledger (file versions, chunks,
//! quarantine, ignored objects), checking dataset specs against live tables, and the chunk
//! load (COPY straight into the table for new keys, else COPY into staging and one
//! `INSERT … ON CONFLICT` merge; ledger and quarantine in the same transaction).

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
pub use load::{ChunkOutcome, DATA_CHANGED_CHANNEL, LoadPath, MergeSql, load_chunk};
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
    for (_, migrator) in migrators(extra).await? {
        migrator.run(pool).await?;
    }
    Ok(())
}

/// One migration, built in or from `migrations_dir`, and whether it is applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    /// `built-in` or the folder it came from.
    pub source: String,
    pub applied_on: Option<chrono::DateTime<chrono::Utc>>,
    pub reversible: bool,
}

/// The built-in migrations, then those in `extra` (refused if a version clashes), each
/// ignoring the other's applied versions.
async fn migrators(extra: Option<&std::path::Path>) -> Result<Vec<(String, sqlx::migrate::Migrator)>, DbError> {
    let mut builtin = sqlx::migrate!("../../migrations");
    builtin.set_ignore_missing(true);
    let mut out = vec![("built-in".to_string(), builtin)];
    if let Some(dir) = extra.filter(|d| d.is_dir()) {
        let mut added = sqlx::migrate::Migrator::new(dir.to_path_buf()).await?;
        if let Some(clash) = added.iter().find(|m| out[0].1.iter().any(|b| b.version == m.version)) {
            return Err(DbError::Invalid(format!(
                "migration {} in {} has the version of a built-in migration; give it a timestamp version, e.g. {}_{}",
                clash.version,
                dir.display(),
                chrono::Utc::now().format("%Y%m%d%H%M%S"),
                clash.description.replace(' ', "_")
            )));
        }
        added.set_ignore_missing(true);
        out.push((dir.display().to_string(), added));
    }
    Ok(out)
}

async fn applied(pool: &PgPool) -> Result<Vec<(i64, chrono::DateTime<chrono::Utc>)>, DbError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_as("SELECT version, installed_on FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?,
    )
}

/// Every known migration with its state, by version.
pub async fn migration_status(pool: &PgPool, extra: Option<&std::path::Path>) -> Result<Vec<MigrationState>, DbError> {
    let applied = applied(pool).await?;
    let mut out = Vec::new();
    for (source, migrator) in migrators(extra).await? {
        for m in migrator.iter().filter(|m| m.migration_type.is_up_migration()) {
            out.push(MigrationState {
                version: m.version,
                description: m.description.to_string(),
                source: source.clone(),
                applied_on: applied.iter().find(|(v, _)| *v == m.version).map(|(_, at)| *at),
                reversible: migrator
                    .iter()
                    .any(|d| d.version == m.version && d.migration_type.is_down_migration()),
            });
        }
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

/// Reverts the most recently applied migration (its `.down.sql`); returns it, or None when
/// nothing is applied.
pub async fn revert_latest(pool: &PgPool, extra: Option<&std::path::Path>) -> Result<Option<MigrationState>, DbError> {
    let applied = applied(pool).await?;
    let Some(&(latest, _)) = applied.last() else {
        return Ok(None);
    };
    let target = applied.iter().rev().nth(1).map(|(v, _)| *v).unwrap_or(0);
    let state = migration_status(pool, extra)
        .await?
        .into_iter()
        .find(|m| m.version == latest)
        .ok_or_else(|| {
            DbError::Invalid(format!(
                "migration {latest} is applied but not known here (neither built in nor in migrations_dir); cannot revert it"
            ))
        })?;
    if !state.reversible {
        return Err(DbError::Invalid(format!(
            "migration {latest} ({}) has no .down.sql; it cannot be reverted",
            state.description
        )));
    }
    for (_, migrator) in migrators(extra).await? {
        if migrator.iter().any(|m| m.version == latest) {
            migrator.undo(pool, target).await?;
        }
    }
    Ok(Some(state))
}

/// Resets a finished file version so it is chunked and loaded again from its stored object:
/// its chunk ledger, quarantined rows and counts are cleared, and it is marked unpublished
/// (`penstock replay` then publishes it; a running scanner would too). Rows it loaded stay
/// and are rewritten by the replay. Errors if the file is unknown or still in progress.
pub async fn reset_for_replay(pool: &PgPool, id: i64) -> Result<FileStatus, DbError> {
    let mut tx = pool.begin().await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM ingest_files WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    match status.as_deref() {
        None => {
            return Err(DbError::Invalid(format!(
                "no file version has id {id}; `penstock status` lists them"
            )));
        }
        Some(s) if !is_terminal(s) => {
            return Err(DbError::Invalid(format!(
                "file {id} is {s}; replay it once it has finished or failed"
            )));
        }
        Some(_) => {}
    }
    sqlx::query("DELETE FROM ingest_chunks WHERE file_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM ingest_errors WHERE file_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE ingest_files SET status = 'discovered', reason = NULL, chunks_total = NULL, chunks_done = 0,
            records_total = NULL, rows_loaded = 0, rows_quarantined = 0, rows_superseded = 0,
            published_at = NULL, started_at = NULL, finished_at = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(file(pool, id).await?.expect("the row exists"))
}

/// Quotes an identifier (spec names are already checked to be plain lowercase identifiers).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
