//! The pipeline as the read API shows it: file versions with their progress, a file's
//! quarantined records, and per-dataset counts. All checked at compile time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::DbError;
use crate::file_state::FileState;

// With its progress and duration, what `GET /files/{id}` serves: the `File` schema, with the
// `utoipa` feature the read API turns on.
/// One file version in the ingest ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = File))]
pub struct FileRow {
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
    pub discovered_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// From start to finish (or to now, while loading), seconds.
    pub duration_seconds: Option<f64>,
}

/// The file queries. A macro because the query macros need their SQL as literals: this way
/// the column list and the list's filter are each written once.
macro_rules! file_query {
    // FileRows: the columns, then `$tail`.
    (rows $($tail:literal)* ; $($arg:expr),*) => {
        sqlx::query_as!(
            FileRow,
            r#"SELECT id, store, key, version, dataset, size_bytes, status AS "status: FileState", reason, chunks_total, chunks_done,
    CASE WHEN status IN ('done', 'done_with_errors') THEN 1.0::float8
         WHEN coalesce(chunks_total, 0) = 0 THEN 0.0::float8
         ELSE chunks_done::float8 / chunks_total END AS "progress!",
    records_total, rows_loaded, rows_quarantined, rows_superseded, discovered_at, started_at, finished_at,
    extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8 AS duration_seconds
    FROM ingest_files"# $(+ $tail)*,
            $($arg),*
        )
    };
    (count $($tail:literal)* ; $($arg:expr),*) => {
        sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM ingest_files"# $(+ $tail)*, $($arg),*)
    };
    // Rows or count of the files the list keeps: optional status ($1) and dataset ($2).
    (listed $kind:ident $($tail:literal)* ; $($arg:expr),*) => {
        file_query!(
            $kind " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR dataset = $2)" $($tail)*;
            $($arg),*
        )
    };
}

/// One page of file versions, newest first, optionally of one status and dataset; and how
/// many there are over all pages.
pub async fn files_page(
    pool: &PgPool,
    status: Option<FileState>,
    dataset: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<FileRow>, i64), DbError> {
    let status = status.map(FileState::as_str);
    let total = file_query!(listed count; status, dataset).fetch_one(pool).await?;
    let files = file_query!(listed rows " ORDER BY id DESC LIMIT $3 OFFSET $4"; status, dataset, limit, offset)
        .fetch_all(pool)
        .await?;
    Ok((files, total))
}

/// The file version with this id.
pub async fn file_row(pool: &PgPool, id: i64) -> Result<Option<FileRow>, DbError> {
    Ok(file_query!(rows " WHERE id = $1"; id).fetch_optional(pool).await?)
}

/// A quarantined record: what was wrong and the raw text, to fix and drop again; or a
/// dead-lettered work item that named the file (no line; after the records).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct QuarantinedRow {
    /// Physical line where the record starts (header lines counted, 1-based); null for a
    /// dead-lettered work item.
    pub line: Option<i64>,
    /// The column at fault, when one is.
    pub column: Option<String>,
    pub raw: String,
    pub reason: String,
}

/// One page of a file's quarantined records, by line, and how many there are.
pub async fn quarantined_page(
    pool: &PgPool,
    file_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<QuarantinedRow>, i64), DbError> {
    let rows = sqlx::query_as!(
        QuarantinedRow,
        r#"SELECT line, column_name AS column, raw, reason FROM ingest_errors WHERE file_id = $1
         ORDER BY line LIMIT $2 OFFSET $3"#,
        file_id,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM ingest_errors WHERE file_id = $1"#,
        file_id
    )
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// The file versions of one dataset in one status, with their rows.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetFiles {
    pub dataset: String,
    pub status: FileState,
    pub files: i64,
    pub rows_loaded: i64,
    pub rows_quarantined: i64,
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// Files and rows per dataset and status.
pub async fn dataset_files(pool: &PgPool) -> Result<Vec<DatasetFiles>, DbError> {
    Ok(sqlx::query_as!(
        DatasetFiles,
        r#"SELECT dataset, status AS "status: FileState", count(*) AS "files!", sum(rows_loaded)::int8 AS "rows_loaded!",
            sum(rows_quarantined)::int8 AS "rows_quarantined!", max(finished_at) AS last_finished_at
         FROM ingest_files GROUP BY dataset, status"#
    )
    .fetch_all(pool)
    .await?)
}
