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
/// (unless already finished); each item recorded now has its event in the outbox, in the
/// same transaction. Items already recorded are skipped. Returns how many were new.
pub async fn record_dead_items(pool: &PgPool, items: &[DeadItem]) -> Result<u64, DbError> {
    let mut tx = pool.begin().await?;
    // A file id that names no file version (a corrupt item) is recorded as NULL.
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO ingest_errors (kind, file_id, raw, reason, message_id, attempts, source_queue, item)
         SELECT 'dead_item', f.id, d.raw, d.reason, d.message_id, d.attempts, d.source_queue, d.item
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::jsonb[])
              AS d(message_id, source_queue, reason, attempts, file_id, raw, item)
         LEFT JOIN ingest_files f ON f.id = d.file_id
         ON CONFLICT (message_id) WHERE message_id IS NOT NULL DO NOTHING
         RETURNING message_id AS "message_id!""#,
        // PostgreSQL text cannot hold NUL: each becomes U+FFFD (the item's own bytes are
        // kept as they are only in `raw`'s lossy text and, escaped, in `item`).
        &items.iter().map(|i| without_nul(&i.message_id)).collect::<Vec<_>>(),
        // Arrays with NULL elements: the macros expect arrays of values, so these say their type.
        items
            .iter()
            .map(|i| i.source_queue.as_deref().map(without_nul))
            .collect::<Vec<_>>() as Vec<Option<String>>,
        &items.iter().map(|i| without_nul(&i.reason)).collect::<Vec<_>>(),
        &items.iter().map(|i| i.attempts).collect::<Vec<_>>(),
        items.iter().map(|i| i.file_id).collect::<Vec<_>>() as Vec<Option<i64>>,
        &items.iter().map(|i| without_nul(&i.raw)).collect::<Vec<_>>(),
        items
            .iter()
            .map(|i| i.item.clone().map(json_without_nul))
            .collect::<Vec<_>>() as Vec<Option<serde_json::Value>>
    )
    .fetch_all(&mut *tx)
    .await?;
    for item in items.iter().filter(|i| inserted.contains(&without_nul(&i.message_id))) {
        // jsonb cannot hold NUL either.
        let event = penstock_core::event::Event::dead_item(
            item.source_queue.as_deref().map(without_nul).as_deref(),
            &without_nul(&item.message_id),
            item.file_id,
            item.attempts,
            &without_nul(&item.reason),
        );
        crate::outbox::write(&mut tx, &event).await?;
    }
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
            without_nul(&reason),
            &FileState::TERMINAL_NAMES[..] as &[&str]
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(inserted.len() as u64)
}

/// `text` with every NUL (which PostgreSQL text cannot hold) replaced by U+FFFD.
pub(crate) fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// `value` with every NUL in its strings and keys replaced by U+FFFD (jsonb refuses
/// `\u0000`).
fn json_without_nul(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(without_nul(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(json_without_nul).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (without_nul(&k), json_without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_in_a_dead_item_become_replacement_characters_everywhere() {
        assert_eq!(without_nul("a\0b"), "a\u{FFFD}b");
        let item = serde_json::json!({"key": "x\u{0}y", "k\u{0}": ["\u{0}", 1, {"n": "\u{0}"}]});
        assert_eq!(
            json_without_nul(item),
            serde_json::json!({"key": "x\u{FFFD}y", "k\u{FFFD}": ["\u{FFFD}", 1, {"n": "\u{FFFD}"}]})
        );
    }
}
