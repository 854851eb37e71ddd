//! The pipeline as the read API shows it: file versions with their progress, a file's
//! quarantined records, and per-dataset counts. All checked at compile time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::DbError;
use crate::file_state::FileState;
use crate::ledger::{FileStatus, select_file_status};

/// The file queries. A macro because the query macros need their SQL as literals: this way
/// the list's filter is written once (the columns are the ledger's, `select_file_status!`).
macro_rules! file_query {
    // FileStatus rows: the ledger's columns, then `$tail`.
    (rows $($tail:literal)+ ; $($arg:expr),*) => {
        select_file_status!($($tail)+, $($arg),*)
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
) -> Result<(Vec<FileStatus>, i64), DbError> {
    let status = status.map(FileState::as_str);
    let total = file_query!(listed count; status, dataset).fetch_one(pool).await?;
    let files = file_query!(listed rows " ORDER BY id DESC LIMIT $3 OFFSET $4"; status, dataset, limit, offset)
        .fetch_all(pool)
        .await?;
    Ok((files, total))
}

/// The file version with this id.
pub async fn file_row(pool: &PgPool, id: i64) -> Result<Option<FileStatus>, DbError> {
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
