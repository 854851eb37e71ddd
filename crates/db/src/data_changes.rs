//! [`DataChanges`]: hearing the `NOTIFY` that [`crate::load_chunk`] sends when a chunk changed
//! rows or a file finished (the read API drops its cached aggregates on each).

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
