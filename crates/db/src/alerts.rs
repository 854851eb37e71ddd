//! The `alerts` table: one open alert per dedupe key; a repeat of the same event bumps its
//! count and last-seen time (and raises its severity if the repeat is worse) instead of
//! inserting another row. Also what the read API lists and what an operator changes.

use chrono::{DateTime, Utc};
use penstock_core::event::Event;
use serde::Serialize;
use sqlx::PgPool;

use crate::databases::Databases;
use crate::error::DbError;

/// Raises or bumps the alert for an event; returns the alert's id and whether it is new.
pub async fn raise_alert(pool: &PgPool, event: &Event) -> Result<(i64, bool), DbError> {
    let mut conn = pool.acquire().await?;
    raise_alert_in(&mut conn, event).await
}

/// [`raise_alert`] on the caller's connection (or transaction).
pub(crate) async fn raise_alert_in(conn: &mut sqlx::PgConnection, event: &Event) -> Result<(i64, bool), DbError> {
    let raised = sqlx::query!(
        r#"INSERT INTO alerts (dedupe_key, severity, source, message, metadata)
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
         RETURNING id, (xmax = 0) AS "inserted!""#,
        event.dedupe_key(),
        event.severity().as_str(),
        &event.source,
        &event.message,
        &event.metadata
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((raised.id, raised.inserted))
}

/// Raises (or bumps) the alert of outbox event `id` unless it was raised before; returns
/// the alert's id and whether it is new, or None for an event already alerted (a second
/// publish of the same event, after a relay stopped between its publish and its commit).
/// An id the outbox does not hold (pruned) raises as usual.
///
/// Alerts live in the home database. For an event of the home outbox, marking it alerted
/// and raising its alert are one transaction. For an event of a dataset's own database the
/// outbox row stays locked while the alert commits at home, then is marked: only a process
/// that stops between those two commits lets a second publish bump the alert's count again
/// (the same open alert, never a second one).
pub async fn raise_alert_once(dbs: &Databases, id: i64, event: &Event) -> Result<Option<(i64, bool)>, DbError> {
    let outbox = dbs.for_file(id);
    let mut tx = outbox.begin().await?;
    let claimed = sqlx::query_scalar!(
        r#"SELECT alerted_at IS NULL AS "unalerted!" FROM outbox WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if claimed == Some(false) {
        tx.rollback().await?;
        return Ok(None);
    }
    sqlx::query!("UPDATE outbox SET alerted_at = now() WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    let raised = if dbs.is_home(id) {
        raise_alert_in(&mut tx, event).await?
    } else {
        raise_alert(dbs.home(), event).await?
    };
    tx.commit().await?;
    Ok(Some(raised))
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
    sqlx::query!(
        "INSERT INTO webhook_deliveries (alert_id, url, attempts, status_code, delivered, error)
         VALUES ($1, $2, $3, $4, $5, $6)",
        alert_id,
        url,
        attempts,
        status_code,
        delivered,
        error
    )
    .execute(pool)
    .await?;
    Ok(())
}

// An alert as the read API shows it (the `Alert` schema, with the `utoipa` feature the read
// API turns on; a plain comment, as the schema has no description).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = Alert))]
pub struct AlertRow {
    pub id: i64,
    #[cfg_attr(feature = "utoipa", schema(inline, value_type = SeverityName))]
    pub severity: String,
    #[cfg_attr(feature = "utoipa", schema(inline, value_type = AlertStatusName))]
    pub status: String,
    /// The role that raised it.
    pub source: String,
    pub message: String,
    pub metadata: serde_json::Value,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How many times the same problem was reported.
    pub count: i64,
}

/// The severities an alert has, as the read API documents them.
pub const SEVERITIES: [&str; 4] = ["info", "warning", "error", "critical"];
/// The statuses an alert has, as the read API documents them.
pub const ALERT_STATUSES: [&str; 3] = ["active", "acknowledged", "resolved"];

// SEVERITIES as an OpenAPI schema (no description in the document).
#[cfg(feature = "utoipa")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SeverityName {
    Info,
    Warning,
    Error,
    Critical,
}

// ALERT_STATUSES as an OpenAPI schema (no description in the document).
#[cfg(feature = "utoipa")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AlertStatusName {
    Active,
    Acknowledged,
    Resolved,
}

/// The read API's alert queries. A macro because the query macros need their SQL as
/// literals: this way the column list and the list's filter are each written once.
macro_rules! alert_query {
    // AlertRows: `$head`, the columns, then `$tail`.
    (rows $head:literal $($tail:literal)* ; $($arg:expr),*) => {
        sqlx::query_as!(
            AlertRow,
            $head + "id, severity, status, source, message, metadata, first_seen, last_seen, count" $(+ $tail)*,
            $($arg),*
        )
    };
    (count $head:literal $($tail:literal)* ; $($arg:expr),*) => {
        sqlx::query_scalar!($head $(+ $tail)*, $($arg),*)
    };
    // Rows or count of the alerts the list keeps: optional severity ($1) and status ($2).
    (listed $kind:ident $head:literal $($tail:literal)* ; $($arg:expr),*) => {
        alert_query!(
            $kind $head " FROM alerts WHERE ($1::text IS NULL OR severity = $1) AND ($2::text IS NULL OR status = $2)" $($tail)*;
            $($arg),*
        )
    };
}

/// One page of alerts, most recently seen first, optionally of one severity and status; and
/// how many there are over all pages.
pub async fn alerts_page(
    pool: &PgPool,
    severity: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AlertRow>, i64), DbError> {
    let total = alert_query!(listed count r#"SELECT count(*) AS "count!""#; severity, status)
        .fetch_one(pool)
        .await?;
    let rows = alert_query!(
        listed rows "SELECT " " ORDER BY last_seen DESC, id DESC LIMIT $3 OFFSET $4";
        severity, status, limit, offset
    )
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// The alert with this id.
pub async fn alert(pool: &PgPool, id: i64) -> Result<Option<AlertRow>, DbError> {
    Ok(alert_query!(rows "SELECT " " FROM alerts WHERE id = $1"; id)
        .fetch_optional(pool)
        .await?)
}

/// What an operator does to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    /// Seen by someone: an active alert becomes `acknowledged`.
    Acknowledge,
    /// Fixed: any alert not resolved yet becomes `resolved` (a repeat opens a new one).
    Resolve,
}

impl AlertAction {
    /// The status the alert has afterwards.
    pub fn status(self) -> &'static str {
        match self {
            AlertAction::Acknowledge => "acknowledged",
            AlertAction::Resolve => "resolved",
        }
    }
}

/// Applies `action` to the alert if its status allows it; returns the changed alert (None:
/// no alert has the id, or its status does not allow the action).
pub async fn change_alert(pool: &PgPool, id: i64, action: AlertAction) -> Result<Option<AlertRow>, DbError> {
    let changed = match action {
        AlertAction::Acknowledge => {
            alert_query!(rows "UPDATE alerts SET status = 'acknowledged' WHERE id = $1 AND status = 'active' RETURNING "; id)
                .fetch_optional(pool)
                .await?
        }
        AlertAction::Resolve => {
            alert_query!(rows "UPDATE alerts SET status = 'resolved' WHERE id = $1 AND status <> 'resolved' RETURNING "; id)
                .fetch_optional(pool)
                .await?
        }
    };
    Ok(changed)
}
