//! What the reconciler reads and writes: the file versions that made no progress past a
//! deadline, each locked for one pass (`FOR UPDATE SKIP LOCKED`, so several reconcilers
//! never recover the same file at once), the planned chunks not in the ledger, and the
//! count of recoveries.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};

use crate::error::DbError;
use crate::file_state::FileState;
use crate::plan::PlannedRange;

/// A file version that made no progress for longer than the deadline.
#[derive(Debug, Clone)]
pub struct Stalled {
    pub id: i64,
    pub key: String,
    pub version: String,
    pub dataset: String,
    pub size_bytes: i64,
    pub status: FileState,
    pub recoveries: i32,
    /// Chunks of its plan, or None when it has none (not planned yet).
    pub plan: Option<StalledPlan>,
    /// Whether later work got further since this file's last progress: a later file was
    /// picked up by a chunker (for a file waiting on its file item), or a later file
    /// committed a chunk (for a file waiting on chunk items). Queues deliver in order, so its
    /// items were not simply waiting behind others.
    pub overtaken: bool,
}

/// A stalled file's plan: the header it was made against and the chunks not in the ledger.
#[derive(Debug, Clone)]
pub struct StalledPlan {
    pub field_count: i32,
    pub columns: Vec<i32>,
    pub new_columns: Vec<penstock_core::header::NewColumn>,
    pub chunks_total: i32,
    pub missing: Vec<PlannedRange>,
}

/// One reconciler pass: the stalled files it holds locked until [`Reconciliation::commit`].
pub struct Reconciliation {
    tx: Transaction<'static, Postgres>,
}

impl Reconciliation {
    /// Locks up to `limit` file versions that are not finished and made no progress for
    /// `stalled_for` (skipping any another pass holds) and reads what each still needs.
    pub async fn begin(
        pool: &PgPool,
        stalled_for: Duration,
        limit: i64,
    ) -> Result<(Reconciliation, Vec<Stalled>), DbError> {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query!(
            r#"SELECT f.id, f.key, f.version, f.dataset, f.size_bytes, f.status AS "status: FileState", f.recoveries,
                f.chunks_total, f.plan_field_count, f.plan_columns, f.plan_new_columns,
                CASE WHEN f.status = 'loading'
                    THEN EXISTS (SELECT 1 FROM ingest_chunks c WHERE c.file_id > f.id AND c.committed_at > f.updated_at)
                    ELSE EXISTS (SELECT 1 FROM ingest_files g WHERE g.id > f.id AND g.started_at > f.updated_at)
                END AS "overtaken!"
             FROM ingest_files f
             WHERE f.status IN ('discovered', 'chunking', 'loading')
               AND f.updated_at < now() - make_interval(secs => $1)
             ORDER BY f.updated_at
             LIMIT $2
             FOR UPDATE OF f SKIP LOCKED"#,
            stalled_for.as_secs_f64(),
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut stalled = Vec::with_capacity(rows.len());
        for row in rows {
            let plan = match (row.status, row.plan_field_count, row.plan_columns, row.chunks_total) {
                (FileState::Loading, Some(field_count), Some(columns), Some(chunks_total)) => {
                    let missing = sqlx::query_as!(
                        PlannedRange,
                        r#"SELECT p.chunk, p.byte_start AS start, p.byte_end AS "end", p.first_line, p.records, p.sha256
                         FROM ingest_chunk_plans p
                         WHERE p.file_id = $1
                           AND NOT EXISTS (SELECT 1 FROM ingest_chunks c WHERE c.file_id = p.file_id AND c.chunk = p.chunk)
                         ORDER BY p.chunk"#,
                        row.id
                    )
                    .fetch_all(&mut *tx)
                    .await?;
                    Some(StalledPlan {
                        field_count,
                        columns,
                        new_columns: crate::plan::new_columns(row.plan_new_columns)?,
                        chunks_total,
                        missing,
                    })
                }
                _ => None,
            };
            stalled.push(Stalled {
                id: row.id,
                key: row.key,
                version: row.version,
                dataset: row.dataset,
                size_bytes: row.size_bytes,
                status: row.status,
                recoveries: row.recoveries,
                plan,
                overtaken: row.overtaken,
            });
        }
        Ok((Reconciliation { tx }, stalled))
    }

    /// Counts a recovery of a file and restarts its deadline; `event` (built from the count
    /// returned) goes to the outbox with the pass's commit. Returns the recoveries so far.
    pub async fn recovered(
        &mut self,
        id: i64,
        event: impl FnOnce(u32) -> penstock_core::event::Event,
    ) -> Result<u32, DbError> {
        let recoveries = sqlx::query_scalar!(
            "UPDATE ingest_files SET recoveries = recoveries + 1, updated_at = now() WHERE id = $1 RETURNING recoveries",
            id
        )
        .fetch_one(&mut *self.tx)
        .await?;
        let recoveries = recoveries.max(0) as u32;
        crate::outbox::write(&mut self.tx, &event(recoveries)).await?;
        Ok(recoveries)
    }

    /// Ends the pass: the counts are stored and the files unlocked.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Restarts a file's deadline without changing anything else: a chunker streaming a long
/// file says it is still at work.
pub async fn touch(pool: &PgPool, id: i64) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE ingest_files SET updated_at = now() WHERE id = $1 AND status IN ('discovered', 'chunking', 'loading')",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}
