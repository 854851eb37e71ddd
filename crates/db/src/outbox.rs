//! The outbox (migration 0012): events written in the transaction that makes them true, so
//! no event is announced for work that did not commit and none is lost after a commit. The
//! relay claims unsent events ([`Unsent`]), publishes them and marks them sent in one
//! transaction; the notification consumer raises each event's alert at most once
//! ([`crate::raise_alert_once`]).

use penstock_core::event::Event;
use sqlx::{PgConnection, PgPool};

use crate::error::DbError;

/// Writes an event in the caller's transaction; returns its id.
pub(crate) async fn write(conn: &mut PgConnection, event: &Event) -> Result<i64, DbError> {
    let event = serde_json::to_value(event).expect("events serialise");
    Ok(
        sqlx::query_scalar!("INSERT INTO outbox (event) VALUES ($1) RETURNING id", event)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Writes an event that no state change of the ledger goes with (a parked item).
pub async fn enqueue_event(pool: &PgPool, event: &Event) -> Result<i64, DbError> {
    let mut conn = pool.acquire().await?;
    write(&mut conn, event).await
}

/// A batch of unsent events, locked by this relay (others skip them) until it is marked
/// sent or dropped (then they stay unsent).
pub struct Unsent {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    /// (id, event), oldest first; an event that cannot be read is `Err` with its text.
    pub events: Vec<(i64, Result<Event, String>)>,
}

impl Unsent {
    /// Claims up to `limit` unsent events, oldest first.
    pub async fn claim(pool: &PgPool, limit: i64) -> Result<Unsent, DbError> {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query!(
            "SELECT id, event FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        let events = rows
            .into_iter()
            .map(|row| {
                let text = row.event.to_string();
                (
                    row.id,
                    serde_json::from_value(row.event).map_err(|e| format!("{e}: {text}")),
                )
            })
            .collect();
        Ok(Unsent { tx, events })
    }

    /// Marks the batch sent (every event was published and confirmed).
    pub async fn sent(mut self) -> Result<(), DbError> {
        let ids: Vec<i64> = self.events.iter().map(|(id, _)| *id).collect();
        if !ids.is_empty() {
            sqlx::query!("UPDATE outbox SET sent_at = now() WHERE id = ANY ($1)", &ids)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Deletes events sent more than `days` days ago (their alerts keep what they said);
/// returns how many.
pub async fn prune_outbox(pool: &PgPool, days: i32) -> Result<u64, DbError> {
    Ok(sqlx::query!(
        "DELETE FROM outbox WHERE sent_at < now() - make_interval(days => $1)",
        days
    )
    .execute(pool)
    .await?
    .rows_affected())
}
