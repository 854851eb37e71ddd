//! The ingest ledger: one `ingest_files` row per object version and its life cycle
//! (discovered → chunking → loading → done | done_with_errors | rejected | failed), the
//! objects that match no dataset, and the status views `penstock status` prints.
//!
//! Every transition is a single guarded UPDATE, so concurrent workers and redelivered items
//! cannot move a file backwards or finish it twice.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::DbError;
use crate::file_state::FileState;

// What `GET /files/{id}` serves too: the `File` schema, with the `utoipa` feature the read
// API turns on.
/// One file version in the ingest ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = File))]
pub struct FileStatus {
    pub id: i64,
    /// The store it was found in (a folder path or s3://bucket).
    pub store: String,
    /// Object key.
    pub key: String,
    /// ETag (S3) or sha256 (local folder) of the bytes.
    pub version: String,
    pub dataset: String,
    pub size_bytes: i64,
    #[cfg_attr(feature = "utoipa", schema(inline))]
    pub status: FileState,
    /// Why the file was rejected or failed.
    pub reason: Option<String>,
    pub chunks_total: Option<i32>,
    pub chunks_done: i32,
    /// Share of chunks loaded, 0 to 1 (1 for a finished file).
    pub progress: f64,
    /// Data records in the file (known once it is chunked).
    pub records_total: Option<i64>,
    pub rows_loaded: i64,
    pub rows_quarantined: i64,
    /// Rows replaced by a later row with the same key in the same file.
    pub rows_superseded: i64,
    /// Rows an earlier file version's row of the same key kept out (`on_conflict = "keep"`).
    pub rows_kept: i64,
    pub discovered_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// From start to finish (or to now, while loading), seconds.
    pub duration_seconds: Option<f64>,
    /// Columns of the file's header that its dataset does not declare (schema drift): alerted
    /// on, rescued, or ignored as the dataset's `on_new_columns` says. Known once chunked.
    pub new_columns: Vec<String>,
    /// Optional columns of the dataset (`required = false`) the file lacks: loaded as NULL.
    pub absent_columns: Vec<String>,
}

impl FileStatus {
    /// Whether nothing more will happen to this file version.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// `sqlx::query_as!(FileStatus, …)` over the ledger's columns: `$tail` is the SQL after
/// `FROM ingest_files` (a macro because the query macros need their SQL as literals; this
/// way the column list is written once).
macro_rules! select_file_status {
    ($($tail:literal)+ $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            FileStatus,
            r#"SELECT id, store, key, version, dataset, size_bytes, status AS "status: FileState", reason, chunks_total, chunks_done,
    CASE WHEN status IN ('done', 'done_with_errors') THEN 1.0::float8
         WHEN coalesce(chunks_total, 0) = 0 THEN 0.0::float8
         ELSE chunks_done::float8 / chunks_total END AS "progress!",
    records_total, rows_loaded, rows_quarantined, rows_superseded, rows_kept, discovered_at, started_at, finished_at,
    extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8 AS duration_seconds,
    array(SELECT c->>'name' FROM jsonb_array_elements(coalesce(plan_new_columns, '[]')) AS c
          WHERE NOT coalesce((c->>'blank')::bool, false)) AS "new_columns!",
    coalesce(absent_columns, '{}') AS "absent_columns!"
    FROM ingest_files"# $(+ $tail)+
            $(, $arg)*
        )
    };
}
pub(crate) use select_file_status;

/// Records an object version unless it is the latest version of its key already; returns
/// the new id (None if nothing changed). Serialised per key with an advisory lock, so two
/// scanners cannot record the same change twice.
pub async fn discover(
    pool: &PgPool,
    store: &str,
    key: &str,
    version: &str,
    dataset: &str,
    size: u64,
) -> Result<Option<i64>, DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || '\x1f' || $2, 0))",
        store,
        key
    )
    .execute(&mut *tx)
    .await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO ingest_files (store, key, version, dataset, size_bytes)
         SELECT $1, $2, $3, $4, $5
         WHERE $3 IS DISTINCT FROM (SELECT version FROM ingest_files WHERE store = $1 AND key = $2 ORDER BY id DESC LIMIT 1)
         RETURNING id",
        store,
        key,
        version,
        dataset,
        size as i64
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The latest recorded version of every key of a store.
pub async fn latest_versions(pool: &PgPool, store: &str) -> Result<Vec<(String, String)>, DbError> {
    let rows = sqlx::query!(
        "SELECT DISTINCT ON (key) key, version FROM ingest_files WHERE store = $1 ORDER BY key, id DESC",
        store
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.key, r.version)).collect())
}

/// File versions recorded but whose file item was never confirmed published (a scanner
/// stopped between the two): the scanner publishes them again.
pub async fn unpublished(pool: &PgPool, store: &str) -> Result<Vec<FileStatus>, DbError> {
    Ok(select_file_status!(
        " WHERE store = $1 AND published_at IS NULL AND status = 'discovered' ORDER BY id",
        store
    )
    .fetch_all(pool)
    .await?)
}

pub async fn mark_published(pool: &PgPool, id: i64) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE ingest_files SET published_at = now(), updated_at = now() WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records an object that matches no dataset; true the first time.
pub async fn record_ignored(pool: &PgPool, store: &str, key: &str) -> Result<bool, DbError> {
    let result = sqlx::query!(
        "INSERT INTO ingest_ignored (store, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        store,
        key
    )
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn file(pool: &PgPool, id: i64) -> Result<Option<FileStatus>, DbError> {
    Ok(select_file_status!(" WHERE id = $1", id).fetch_optional(pool).await?)
}

/// Moves a file to `chunking` unless it is already past it. Returns false if the file is
/// in `loading` or a terminal state (a redelivered file item: nothing to do but re-publish
/// chunks for `loading`, which the caller decides from [`file`]).
pub async fn start_chunking(pool: &PgPool, id: i64) -> Result<bool, DbError> {
    let result = sqlx::query!(
        "UPDATE ingest_files SET status = 'chunking', started_at = coalesce(started_at, now()), updated_at = now()
         WHERE id = $1 AND status IN ('discovered', 'chunking')",
        id
    )
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends a file version with `status` (`rejected` or `failed`) and a reason, unless it has
/// already ended; `event` (what the notification consumer hears of it) goes to the outbox in
/// the same transaction. Returns whether the file ended now.
pub async fn finish_with(
    pool: &PgPool,
    id: i64,
    status: FileState,
    reason: &str,
    event: &penstock_core::event::Event,
) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let result = sqlx::query!(
        "UPDATE ingest_files SET status = $2, reason = $3, finished_at = now(), updated_at = now()
         WHERE id = $1 AND status <> ALL ($4::text[])",
        id,
        status.as_str(),
        reason,
        &FileState::TERMINAL_NAMES[..] as &[&str]
    )
    .execute(&mut *tx)
    .await?;
    let ended = result.rows_affected() == 1;
    if ended {
        crate::outbox::write(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// Every file version, newest first.
pub async fn all_files(pool: &PgPool) -> Result<Vec<FileStatus>, DbError> {
    Ok(select_file_status!(" ORDER BY id DESC").fetch_all(pool).await?)
}

/// An object that matches no dataset.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredObject {
    pub store: String,
    pub key: String,
    pub first_seen: DateTime<Utc>,
}

pub async fn ignored_objects(pool: &PgPool) -> Result<Vec<IgnoredObject>, DbError> {
    Ok(sqlx::query_as!(
        IgnoredObject,
        "SELECT store, key, first_seen FROM ingest_ignored ORDER BY key"
    )
    .fetch_all(pool)
    .await?)
}

/// Resets a finished file version so it is chunked and loaded again from its stored object:
/// its chunk ledger, quarantined rows and counts are cleared, and it is marked unpublished
/// (`penstock replay` then publishes it; a running scanner would too). Rows it loaded stay
/// and are rewritten by the replay. Errors if the file is unknown or still in progress.
pub async fn reset_for_replay(pool: &PgPool, id: i64) -> Result<FileStatus, DbError> {
    let mut tx = pool.begin().await?;
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: FileState" FROM ingest_files WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    match status {
        None => {
            return Err(DbError::Invalid(format!(
                "no file version has id {id}; `penstock status` lists them"
            )));
        }
        Some(s) if !s.is_terminal() => {
            return Err(DbError::Invalid(format!(
                "file {id} is {s}; replay it once it has finished or failed"
            )));
        }
        Some(_) => {}
    }
    sqlx::query!("DELETE FROM ingest_chunks WHERE file_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("DELETE FROM ingest_errors WHERE file_id = $1", id)
        .execute(&mut *tx)
        .await?;
    // A replay plans again (the spec or the table may have changed).
    sqlx::query!("DELETE FROM ingest_chunk_plans WHERE file_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE ingest_files SET status = 'discovered', reason = NULL, chunks_total = NULL, chunks_done = 0,
            plan_field_count = NULL, plan_columns = NULL, plan_new_columns = NULL, absent_columns = NULL,
            records_total = NULL, rows_loaded = 0, rows_quarantined = 0, rows_superseded = 0, rows_kept = 0,
            published_at = NULL, started_at = NULL, finished_at = NULL, updated_at = now()
         WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(file(pool, id).await?.expect("the row exists"))
}
