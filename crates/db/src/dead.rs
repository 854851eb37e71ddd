//! Dead work items: what the error consumer records in `ingest_errors` (kind `dead_item`),
//! and the failed files they stand for. Idempotent: unique by message id.

use sqlx::PgPool;

use crate::error::DbError;
use crate::file_state::FileState;

/// One dead-lettered work item.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadItem {
    pub message_id: String,
    pub source_queue: Option<String>,
    pub reason: String,
    pub attempts: i32,
    /// The file version the item named, if any.
    pub file_id: Option<i64>,
    /// The body as text (lossy for bytes that are not UTF-8).
    pub raw: String,
    /// The body, when it is JSON.
    pub item: Option<serde_json::Value>,
}

/// Records a batch of dead items in one transaction and fails the file versions they name
/// (unless already finished). Items already recorded are skipped.
pub async fn record_dead_items(pool: &PgPool, items: &[DeadItem]) -> Result<u64, DbError> {
    let mut tx = pool.begin().await?;
    // A file id that names no file version (a corrupt item) is recorded as NULL.
    let inserted = sqlx::query!(
        "INSERT INTO ingest_errors (kind, file_id, raw, reason, message_id, attempts, source_queue, item)
         SELECT 'dead_item', f.id, d.raw, d.reason, d.message_id, d.attempts, d.source_queue, d.item
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::jsonb[])
              AS d(message_id, source_queue, reason, attempts, file_id, raw, item)
         LEFT JOIN ingest_files f ON f.id = d.file_id
         ON CONFLICT (message_id) WHERE message_id IS NOT NULL DO NOTHING",
        &items.iter().map(|i| i.message_id.clone()).collect::<Vec<_>>(),
        // Arrays with NULL elements: the macros expect arrays of values, so these say their type.
        items.iter().map(|i| i.source_queue.clone()).collect::<Vec<_>>() as Vec<Option<String>>,
        &items
            .iter()
            .map(|i| i.reason.replace('\0', "\u{FFFD}"))
            .collect::<Vec<_>>(),
        &items.iter().map(|i| i.attempts).collect::<Vec<_>>(),
        items.iter().map(|i| i.file_id).collect::<Vec<_>>() as Vec<Option<i64>>,
        &items
            .iter()
            .map(|i| i.raw.replace('\0', "\u{FFFD}"))
            .collect::<Vec<_>>(),
        items.iter().map(|i| i.item.clone()).collect::<Vec<_>>() as Vec<Option<serde_json::Value>>
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    for item in items.iter().filter(|i| i.file_id.is_some()) {
        let reason = format!(
            "dead-lettered from {} after {} attempt(s): {}",
            item.source_queue.as_deref().unwrap_or("a work queue"),
            item.attempts,
            item.reason
        );
        sqlx::query!(
            "UPDATE ingest_files SET status = 'failed', reason = $2, finished_at = now(), updated_at = now()
             WHERE id = $1 AND status <> ALL ($3::text[])",
            item.file_id,
            reason,
            &FileState::TERMINAL_NAMES[..] as &[&str]
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(inserted)
}
