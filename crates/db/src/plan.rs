//! The chunk plan as data (`ingest_chunk_plans`, migration 0010): stored in the transaction
//! that moves a file to `loading`, republished as it is on a re-plan (whatever `chunk_bytes`
//! is now), and the reference every chunk item is checked against before it is loaded.

use penstock_core::event::Event;
use penstock_core::header::NewColumn;
use sqlx::PgPool;

use crate::error::DbError;

/// One planned chunk: a record-aligned byte range of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRange {
    pub chunk: i32,
    /// Half-open byte range `[start, end)`.
    pub start: i64,
    pub end: i64,
    pub first_line: i64,
    pub records: i64,
    pub sha256: String,
}

/// A file's plan: the header it was made against and its chunks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlan {
    pub field_count: i32,
    /// Each spec column's field, -1 for one the file lacks ([`penstock_core::header::ABSENT`]).
    pub columns: Vec<i32>,
    /// The header's columns the spec does not declare.
    pub new_columns: Vec<NewColumn>,
    pub chunks: Vec<PlannedRange>,
}

/// What else a plan records: the spec columns the file lacks (by name), and the event the
/// file's new columns raise (`on_new_columns = "alert"`), written to the outbox with it.
#[derive(Debug, Clone, Default)]
pub struct PlanNotes<'a> {
    pub absent: Vec<&'a str>,
    pub event: Option<Event>,
}

/// Stores the plan and moves the file from `chunking` to `loading` (or straight to `done`
/// when it holds no data records), in one transaction. Returns false, storing nothing, if
/// the file is no longer `chunking` (another chunker stored a plan first, or it ended).
pub async fn store_plan(
    pool: &PgPool,
    id: i64,
    plan: &StoredPlan,
    records_total: u64,
    notes: &PlanNotes<'_>,
) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let new_columns =
        (!plan.new_columns.is_empty()).then(|| serde_json::to_value(&plan.new_columns).expect("new columns serialise"));
    let absent: Option<Vec<String>> =
        (!notes.absent.is_empty()).then(|| notes.absent.iter().map(|c| c.to_string()).collect());
    let moved = sqlx::query!(
        "UPDATE ingest_files SET chunks_total = $2, records_total = $3, plan_field_count = $4, plan_columns = $5,
            plan_new_columns = $6, absent_columns = $7,
            status = CASE WHEN $2 = 0 THEN 'done' ELSE 'loading' END,
            finished_at = CASE WHEN $2 = 0 THEN now() END, updated_at = now()
         WHERE id = $1 AND status = 'chunking'",
        id,
        plan.chunks.len() as i32,
        records_total as i64,
        plan.field_count,
        &plan.columns,
        new_columns,
        absent.as_deref()
    )
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(event) = &notes.event {
        crate::outbox::write(&mut tx, event).await?;
    }
    let column = |f: fn(&PlannedRange) -> i64| plan.chunks.iter().map(f).collect::<Vec<i64>>();
    let numbers: Vec<i32> = plan.chunks.iter().map(|c| c.chunk).collect();
    let sums: Vec<String> = plan.chunks.iter().map(|c| c.sha256.clone()).collect();
    sqlx::query!(
        "INSERT INTO ingest_chunk_plans (file_id, chunk, byte_start, byte_end, first_line, records, sha256)
         SELECT $1, * FROM unnest($2::int4[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::text[])",
        id,
        &numbers,
        &column(|c| c.start),
        &column(|c| c.end),
        &column(|c| c.first_line),
        &column(|c| c.records),
        &sums
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// The stored plan of a file (None: none was stored, e.g. planned before migration 0010).
pub async fn stored_plan(pool: &PgPool, id: i64) -> Result<Option<StoredPlan>, DbError> {
    let header = sqlx::query!(
        r#"SELECT plan_field_count AS "field_count!", plan_columns AS "columns!", plan_new_columns AS new_columns
         FROM ingest_files
         WHERE id = $1 AND plan_field_count IS NOT NULL AND plan_columns IS NOT NULL"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    let Some(header) = header else {
        return Ok(None);
    };
    let chunks = sqlx::query_as!(
        PlannedRange,
        r#"SELECT chunk, byte_start AS start, byte_end AS "end", first_line, records, sha256
         FROM ingest_chunk_plans WHERE file_id = $1 ORDER BY chunk"#,
        id
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(StoredPlan {
        field_count: header.field_count,
        columns: header.columns,
        new_columns: new_columns(header.new_columns)?,
        chunks,
    }))
}

/// A stored plan's new columns (`plan_new_columns`; NULL: none).
pub(crate) fn new_columns(stored: Option<serde_json::Value>) -> Result<Vec<NewColumn>, DbError> {
    match stored {
        None => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            DbError::Invalid(format!(
                "ingest_files.plan_new_columns is not a list of new columns: {e}"
            ))
        }),
    }
}

/// What the plan says about one chunk of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkInPlan {
    /// The file has no stored plan (planned before migration 0010): nothing to check.
    Unplanned,
    /// The file's plan has no chunk of this number.
    Missing {
        chunks: i64,
    },
    Planned(PlannedRange),
}

/// Looks up one chunk in its file's stored plan.
pub async fn chunk_in_plan(pool: &PgPool, file_id: i64, chunk: i32) -> Result<ChunkInPlan, DbError> {
    let planned = sqlx::query_as!(
        PlannedRange,
        r#"SELECT chunk, byte_start AS start, byte_end AS "end", first_line, records, sha256
         FROM ingest_chunk_plans WHERE file_id = $1 AND chunk = $2"#,
        file_id,
        chunk
    )
    .fetch_optional(pool)
    .await?;
    if let Some(planned) = planned {
        return Ok(ChunkInPlan::Planned(planned));
    }
    let chunks = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM ingest_chunk_plans WHERE file_id = $1"#,
        file_id
    )
    .fetch_one(pool)
    .await?;
    Ok(if chunks == 0 {
        ChunkInPlan::Unplanned
    } else {
        ChunkInPlan::Missing { chunks }
    })
}
