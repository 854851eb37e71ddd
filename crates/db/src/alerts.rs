//! The `alerts` table: one open alert per dedupe key; a repeat of the same event bumps its
//! count and last-seen time (and raises its severity if the repeat is worse) instead of
//! inserting another row.

use penstock_core::event::Event;
use sqlx::PgPool;

use crate::DbError;

/// Raises or bumps the alert for an event; returns the alert's id.
pub async fn raise_alert(pool: &PgPool, event: &Event) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO alerts (dedupe_key, severity, source, message, metadata)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (dedupe_key) WHERE status <> 'resolved' DO UPDATE SET
             count = alerts.count + 1,
             last_seen = now(),
             message = EXCLUDED.message,
             metadata = EXCLUDED.metadata,
             severity = CASE
                 WHEN array_position(ARRAY['info','warning','error','critical'], EXCLUDED.severity)
                    > array_position(ARRAY['info','warning','error','critical'], alerts.severity)
                 THEN EXCLUDED.severity ELSE alerts.severity END
         RETURNING id",
    )
    .bind(event.dedupe_key())
    .bind(event.severity().as_str())
    .bind(&event.source)
    .bind(&event.message)
    .bind(&event.metadata)
    .fetch_one(pool)
    .await?)
}
