//! Connecting (a pool, the database itself, whether it answers) and the migrations:
//! embedded, a dataset folder's extra ones, their status and reverting the latest.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::error::DbError;
use crate::load::ident;

/// The embedded migrations (`migrations/` at the repository root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
/// Opens a pool.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url)?.log_statements(tracing::log::LevelFilter::Trace);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// A pool that connects on first use, waiting at most `acquire_timeout` for a connection
/// (a role that starts before PostgreSQL, or a unit test that never reaches it).
pub fn connect_lazy(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url)?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options))
}

// `ping` and `server_version` read no table, so there is nothing to check at compile time
// (and the query macros would see `?column?` and a nullable setting): runtime queries.

/// Whether the database answers a query (readiness probes).
pub async fn ping(pool: &PgPool) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// The server's version, e.g. `15.4` (`penstock check` shows it).
pub async fn server_version(pool: &PgPool) -> Result<String, DbError> {
    Ok(sqlx::query_scalar("SHOW server_version").fetch_one(pool).await?)
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
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        &name
    )
    .fetch_one(&mut admin)
    .await?;
    if !exists {
        let sql = format!("CREATE DATABASE {}", ident(&name));
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
    let exists = sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!("SELECT version, installed_on FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.version, r.installed_on)).collect())
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
