//! The `alerts` table: one open alert per dedupe key; a repeat of the same event bumps its
//! count and last-seen time (and raises its severity if the repeat is worse) instead of
//! inserting another row.

use penstock_core::event::Event;
use sqlx::PgPool;

use crate::error::DbError;

/// Raises or bumps the alert for an event; returns the alert's id and whether it is new.
pub async fn raise_alert(pool: &PgPool, event: &Event) -> Result<(i64, bool), DbError> {
    Ok(sqlx::query_as(
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
         RETURNING id, (xmax = 0) AS inserted",
    )
    .bind(event.dedupe_key())
    .bind(event.severity().as_str())
    .bind(&event.source)
    .bind(&event.message)
    .bind(&event.metadata)
    .fetch_one(pool)
    .await?)
}

/// Records the outcome of delivering an alert to a webhook.
pub async fn record_delivery(
    pool: &PgPool,
    alert_id: i64,
    url: &str,
    attempts: i32,
    status_code: Option<i32>,
    delivered: bool,
    error: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (alert_id, url, attempts, status_code, delivered, error)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(alert_id)
    .bind(url)
    .bind(attempts)
    .bind(status_code)
    .bind(delivered)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
