//! [`DataChanges`]: hearing the `NOTIFY` that [`crate::load_chunk`] sends when a chunk changed
//! rows or a file finished (the read API drops its cached aggregates on each), and on a hot
//! standby, which hears no NOTIFY, [`replica_status`]: its replay position and lag.

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::error::DbError;
use crate::load::DATA_CHANGED_CHANNEL;

/// A connection listening on [`DATA_CHANGED_CHANNEL`].
pub struct DataChanges {
    listener: PgListener,
}

impl DataChanges {
    /// Takes a connection from the pool (held until dropped) and listens on it.
    pub async fn listen(pool: &PgPool) -> Result<DataChanges, DbError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(DATA_CHANGED_CHANNEL).await?;
        Ok(DataChanges { listener })
    }

    /// The next change: the name of the dataset whose data changed. `Ok(None)` when the
    /// connection was lost, so notifications may have been missed.
    pub async fn next(&mut self) -> Result<Option<String>, DbError> {
        Ok(self.listener.try_recv().await?.map(|n| n.payload().to_string()))
    }
}

/// Where a hot standby stands (see [`replica_status`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    /// The last WAL position replayed: it moves with every transaction the standby applies,
    /// so a reader of the standby hears data changes by watching it (NOTIFY does not reach a
    /// standby).
    pub replay_lsn: String,
    /// Whether the standby's WAL receiver runs (it streams from its primary, or is
    /// connecting). Read from `pg_stat_wal_receiver`'s pid, which every user may see (its
    /// other columns need `pg_read_all_stats`).
    pub streaming: bool,
    /// How far behind the primary the data read here may be, in seconds: 0 while streaming
    /// with everything received replayed, otherwise the age of the last transaction
    /// replayed; `None` when that cannot be told (not streaming, and nothing replayed since
    /// the standby started).
    pub lag_seconds: Option<f64>,
}

/// The standby status of the server `pool` reads from, or `None` when it is a primary.
pub async fn replica_status(pool: &PgPool) -> Result<Option<ReplicaStatus>, DbError> {
    let row = sqlx::query!(
        r#"WITH receiver AS (SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE pid IS NOT NULL) AS streaming)
           SELECT pg_is_in_recovery() AS "standby!",
                  coalesce(pg_last_wal_replay_lsn()::text, '') AS "replay_lsn!",
                  receiver.streaming AS "streaming!",
                  (CASE
                      WHEN receiver.streaming AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                      WHEN receiver.streaming
                          THEN coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
                      ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
                  END)::float8 AS lag_seconds
             FROM receiver"#
    )
    .fetch_one(pool)
    .await?;
    Ok(row.standby.then_some(ReplicaStatus {
        replay_lsn: row.replay_lsn,
        streaming: row.streaming,
        lag_seconds: row.lag_seconds.map(|lag| lag.max(0.0)),
    }))
}
