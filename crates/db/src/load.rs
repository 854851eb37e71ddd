//! Loading one chunk, exactly once in effect. In one transaction:
//!
//! 1. insert the chunk's ledger row (`ingest_chunks`, unique per file and chunk); if it
//!    already exists the chunk was loaded before (a redelivery): roll back, change nothing;
//! 2. `COPY` the chunk's deduplicated rows into a temporary staging table;
//! 3. merge with one `INSERT … SELECT … ON CONFLICT (key) DO UPDATE … WHERE …`, where the
//!    condition compares lineage: an existing row is replaced only by a row from a later
//!    file version, or a later line of the same version (or the same line again: a replay). That makes the table independent
//!    of the order chunks and files are processed in. (A plain `IS DISTINCT FROM` on the
//!    values is not enough: skipping an equal-valued newer row would leave older lineage in
//!    place, and a later-processed older chunk could then overwrite the newer value.)
//! 4. insert the chunk's quarantined records into `ingest_errors`;
//! 5. add the chunk's counts to its file and, for the last chunk, set the final status — one
//!    guarded UPDATE under the file row's lock, so two consumers finishing at once cannot
//!    lose an update;
//! 6. when that finished the file: refresh the dataset's materialized views (readers of them
//!    see whole files only) and `NOTIFY penstock_data` (delivered on commit), which tells
//!    every API process to drop its cached aggregates.
//!
//! The caller acknowledges the message only after this commits.

use penstock_core::{ChunkItem, DatasetSpec, PreparedChunk};
use sqlx::PgPool;

use crate::{DbError, ident};

/// The statements for one dataset, built once.
#[derive(Debug, Clone)]
pub struct MergeSql {
    create_stage: String,
    copy: String,
    merge: String,
    refresh: Vec<String>,
}

/// The channel `load_chunk` notifies (payload: the dataset name) when a file finishes.
pub const DATA_CHANGED_CHANNEL: &str = "penstock_data";

impl MergeSql {
    pub fn new(spec: &DatasetSpec) -> MergeSql {
        let table = ident(spec.table());
        let columns: Vec<String> = spec.columns.iter().map(|c| ident(&c.name)).collect();
        let key: Vec<String> = spec.conflict_key.iter().map(|c| ident(c)).collect();
        let list = columns.join(", ");
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !key.contains(c))
            .chain(
                [
                    "source_file_id".to_string(),
                    "source_line".to_string(),
                    "loaded_at".to_string(),
                ]
                .iter(),
            )
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        MergeSql {
            create_stage: format!(
                "CREATE TEMP TABLE penstock_stage ON COMMIT DROP AS SELECT {list}, source_file_id, source_line FROM {table} WITH NO DATA"
            ),
            copy: format!("COPY penstock_stage ({list}, source_file_id, source_line) FROM STDIN"),
            merge: format!(
                "INSERT INTO {table} AS t ({list}, source_file_id, source_line, loaded_at)
                 SELECT {list}, source_file_id, source_line, now() FROM penstock_stage
                 ON CONFLICT ({keys}) DO UPDATE SET {updates}
                 WHERE (t.source_file_id, t.source_line) <= (EXCLUDED.source_file_id, EXCLUDED.source_line)",
                keys = key.join(", "),
                updates = updates.join(", "),
            ),
            refresh: spec
                .refresh_views
                .iter()
                .map(|v| format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {}", ident(v)))
                .collect(),
        }
    }
}

/// What loading a chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// The ledger already had this chunk: nothing changed.
    AlreadyLoaded,
    /// Committed; the file's status after this chunk.
    Loaded { file_status: String, rows_changed: u64 },
}

/// Loads one chunk in one transaction (see the module docs).
pub async fn load_chunk(
    pool: &PgPool,
    sql: &MergeSql,
    item: &ChunkItem,
    chunk: &PreparedChunk,
) -> Result<ChunkOutcome, DbError> {
    let mut tx = pool.begin().await?;
    let ledger = sqlx::query(
        "INSERT INTO ingest_chunks (file_id, chunk, byte_start, byte_end, first_line, records,
            rows_loaded, rows_quarantined, rows_superseded)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (file_id, chunk) DO NOTHING",
    )
    .bind(item.file_id)
    .bind(item.chunk as i32)
    .bind(item.start as i64)
    .bind(item.end as i64)
    .bind(item.first_line as i64)
    .bind(item.records as i64)
    .bind(chunk.rows as i64)
    .bind(chunk.quarantined.len() as i64)
    .bind(chunk.superseded as i64)
    .execute(&mut *tx)
    .await?;
    if ledger.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(ChunkOutcome::AlreadyLoaded);
    }

    let mut rows_changed = 0;
    if chunk.rows > 0 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.create_stage.clone()))
            .execute(&mut *tx)
            .await?;
        let mut copy = tx.copy_in_raw(&sql.copy).await?;
        if let Err(e) = copy.send(chunk.copy.as_slice()).await {
            let _ = copy.abort("send failed").await;
            return Err(e.into());
        }
        copy.finish().await?;
        rows_changed = sqlx::query(sqlx::AssertSqlSafe(sql.merge.clone()))
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }

    if !chunk.quarantined.is_empty() {
        let q = &chunk.quarantined;
        sqlx::query(
            "INSERT INTO ingest_errors (file_id, line, column_name, raw, reason)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[])
             ON CONFLICT (file_id, line) DO NOTHING",
        )
        .bind(item.file_id)
        .bind(q.iter().map(|r| r.line as i64).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.column.clone()).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.raw.replace('\0', "\u{FFFD}")).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.reason.replace('\0', "\u{FFFD}")).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }

    let file_status: String = sqlx::query_scalar(
        "UPDATE ingest_files SET
            chunks_done = chunks_done + 1,
            rows_loaded = rows_loaded + $2,
            rows_quarantined = rows_quarantined + $3,
            rows_superseded = rows_superseded + $4,
            status = CASE
                WHEN status = 'loading' AND chunks_done + 1 >= chunks_total THEN
                    CASE WHEN rows_quarantined + $3 > 0 THEN 'done_with_errors' ELSE 'done' END
                ELSE status END,
            finished_at = CASE
                WHEN status = 'loading' AND chunks_done + 1 >= chunks_total THEN now()
                ELSE finished_at END,
            updated_at = now()
         WHERE id = $1 RETURNING status",
    )
    .bind(item.file_id)
    .bind(chunk.rows as i64)
    .bind(chunk.quarantined.len() as i64)
    .bind(chunk.superseded as i64)
    .fetch_one(&mut *tx)
    .await?;
    if crate::is_terminal(&file_status) {
        for refresh in &sql.refresh {
            sqlx::raw_sql(sqlx::AssertSqlSafe(refresh.clone()))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(DATA_CHANGED_CHANNEL)
            .bind(&item.dataset)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(ChunkOutcome::Loaded {
        file_status,
        rows_changed,
    })
}
