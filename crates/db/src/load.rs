//! Loading one chunk, exactly once in effect. In one transaction:
//!
//! 1. insert the chunk's ledger row (`ingest_chunks`, unique per file and chunk); if it
//!    already exists the chunk was loaded before (a redelivery): roll back, change nothing;
//! 2. the fast path, for keys the table does not hold yet (first loads, a new year): `COPY`
//!    the chunk's deduplicated rows straight into the table, inside a savepoint. A key that
//!    is already there makes the COPY fail with a unique violation; the savepoint is rolled
//!    back and the chunk takes step 3 instead; the file's later chunks (in this process) go
//!    to step 3 at once, so a re-load wastes at most one COPY batch per process;
//! 3. the merge, for chunks that meet existing keys: `COPY` into a temporary staging table,
//!    then one `INSERT … SELECT … ON CONFLICT (key) DO UPDATE … WHERE …`, where the condition
//!    compares lineage: an existing row is replaced only by a row from a later file version,
//!    or a later line of the same version (or the same line again: a replay). That makes the
//!    table independent of the order chunks and files are processed in. (A plain
//!    `IS DISTINCT FROM` on the values is not enough: skipping an equal-valued newer row would
//!    leave older lineage in place, and a later-processed older chunk could then overwrite
//!    the newer value.)
//! 4. insert the chunk's quarantined records into `ingest_errors`;
//! 5. add the chunk's counts to its file and, for the last chunk, set the final status — one
//!    guarded UPDATE under the file row's lock, so two consumers finishing at once cannot
//!    lose an update;
//! 6. when rows changed or the file finished: `NOTIFY penstock_data` (delivered on commit),
//!    which tells every API process to drop its cached aggregates.
//!
//! Nothing here reads or writes more than the chunk's own rows and one row of each ledger
//! table: read models are computed when read (see migration 0008), so the cost of a chunk
//! does not grow with the table.
//!
//! The caller acknowledges the message only after this commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use penstock_core::{ChunkItem, DatasetSpec, PreparedChunk};
use sqlx::PgPool;

use crate::error::DbError;
use crate::file_state::FileState;

/// The statements for one dataset, built once.
#[derive(Debug, Clone)]
pub struct MergeSql {
    /// The last file version one of whose chunks met existing keys: its other chunks go
    /// straight to the merge. (A direct COPY that fails has already written a batch of rows,
    /// up to about a thousand, that become dead tuples.)
    conflicted_file: Arc<AtomicI64>,
    copy_direct: String,
    create_stage: String,
    copy_stage: String,
    merge: String,
}

/// The channel `load_chunk` notifies (payload: the dataset name) when a chunk changed rows
/// or a file finished.
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
            conflicted_file: Arc::new(AtomicI64::new(-1)),
            create_stage: format!(
                "CREATE TEMP TABLE penstock_stage ON COMMIT DROP AS SELECT {list}, source_file_id, source_line FROM {table} WITH NO DATA"
            ),
            copy_stage: format!("COPY penstock_stage ({list}, source_file_id, source_line) FROM STDIN"),
            copy_direct: format!("COPY {table} ({list}, source_file_id, source_line) FROM STDIN"),
            merge: format!(
                "INSERT INTO {table} AS t ({list}, source_file_id, source_line, loaded_at)
                 SELECT {list}, source_file_id, source_line, now() FROM penstock_stage
                 ON CONFLICT ({keys}) DO UPDATE SET {updates}
                 WHERE (t.source_file_id, t.source_line) <= (EXCLUDED.source_file_id, EXCLUDED.source_line)",
                keys = key.join(", "),
                updates = updates.join(", "),
            ),
        }
    }
}

/// What loading a chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// The ledger already had this chunk: nothing changed.
    AlreadyLoaded,
    /// Committed; the file's status after this chunk.
    Loaded {
        file_status: FileState,
        rows_changed: u64,
        path: LoadPath,
    },
}

/// How a chunk's rows went into the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPath {
    /// The chunk had no rows to write (all quarantined, or none).
    Empty,
    /// Every key was new: one COPY straight into the table.
    Direct,
    /// Some key existed: COPY into staging, then the lineage-guarded merge.
    Merged,
}

impl LoadPath {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadPath::Empty => "empty",
            LoadPath::Direct => "direct",
            LoadPath::Merged => "merged",
        }
    }
}

/// Loads one chunk in one transaction (see the module docs).
pub async fn load_chunk(
    pool: &PgPool,
    sql: &MergeSql,
    item: &ChunkItem,
    chunk: &PreparedChunk,
) -> Result<ChunkOutcome, DbError> {
    let mut tx = pool.begin().await?;
    let ledger = sqlx::query!(
        "INSERT INTO ingest_chunks (file_id, chunk, byte_start, byte_end, first_line, records,
            rows_loaded, rows_quarantined, rows_superseded)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (file_id, chunk) DO NOTHING",
        item.file_id,
        item.chunk as i32,
        item.start as i64,
        item.end as i64,
        item.first_line as i64,
        item.records as i64,
        chunk.rows as i64,
        chunk.quarantined.len() as i64,
        chunk.superseded as i64
    )
    .execute(&mut *tx)
    .await?;
    if ledger.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(ChunkOutcome::AlreadyLoaded);
    }

    let (rows_changed, path) = if chunk.rows == 0 {
        (0, LoadPath::Empty)
    } else {
        write_rows(&mut tx, sql, item.file_id, &chunk.copy).await?
    };

    if !chunk.quarantined.is_empty() {
        let q = &chunk.quarantined;
        sqlx::query!(
            "INSERT INTO ingest_errors (file_id, line, column_name, raw, reason)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[])
             ON CONFLICT (file_id, line) DO NOTHING",
            item.file_id,
            &q.iter().map(|r| r.line as i64).collect::<Vec<_>>(),
            // NULL where the problem is not one column's (e.g. the wrong number of fields).
            q.iter().map(|r| r.column.clone()).collect::<Vec<_>>() as Vec<Option<String>>,
            &q.iter().map(|r| crate::dead::without_nul(&r.raw)).collect::<Vec<_>>(),
            &q.iter()
                .map(|r| crate::dead::without_nul(&r.reason))
                .collect::<Vec<_>>()
        )
        .execute(&mut *tx)
        .await?;
    }

    // The states are bound (from FileState) rather than spelled in the SQL.
    let file_status = sqlx::query_scalar!(
        r#"UPDATE ingest_files SET
            chunks_done = chunks_done + 1,
            rows_loaded = rows_loaded + $2,
            rows_quarantined = rows_quarantined + $3,
            rows_superseded = rows_superseded + $4,
            status = CASE
                WHEN status = $5 AND chunks_done + 1 >= chunks_total THEN
                    CASE WHEN rows_quarantined + $3 > 0 THEN $6 ELSE $7 END
                ELSE status END,
            finished_at = CASE
                WHEN status = $5 AND chunks_done + 1 >= chunks_total THEN now()
                ELSE finished_at END,
            updated_at = now()
         WHERE id = $1 RETURNING status AS "status: FileState""#,
        item.file_id,
        chunk.rows as i64,
        chunk.quarantined.len() as i64,
        chunk.superseded as i64,
        FileState::Loading.as_str(),
        FileState::DoneWithErrors.as_str(),
        FileState::Done.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    if rows_changed > 0 || file_status.is_terminal() {
        sqlx::query!("SELECT pg_notify($1, $2)", DATA_CHANGED_CHANNEL, &item.dataset)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(ChunkOutcome::Loaded {
        file_status,
        rows_changed,
        path,
    })
}

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

/// Writes a chunk's rows: straight into the table while its keys are new, else through the
/// staging merge (see the module docs, steps 2 and 3). Returns the rows inserted or updated.
async fn write_rows(
    tx: &mut sqlx::PgConnection,
    sql: &MergeSql,
    file_id: i64,
    copy_text: &[u8],
) -> Result<(u64, LoadPath), DbError> {
    if sql.conflicted_file.load(Ordering::Relaxed) != file_id {
        sqlx::raw_sql("SAVEPOINT penstock_direct").execute(&mut *tx).await?;
        match copy_in(tx, &sql.copy_direct, copy_text).await {
            Ok(rows) => {
                sqlx::raw_sql("RELEASE SAVEPOINT penstock_direct")
                    .execute(&mut *tx)
                    .await?;
                return Ok((rows, LoadPath::Direct));
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT penstock_direct")
                    .execute(&mut *tx)
                    .await?;
                sql.conflicted_file.store(file_id, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.create_stage.clone()))
        .execute(&mut *tx)
        .await?;
    copy_in(tx, &sql.copy_stage, copy_text).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.merge.clone()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok((rows, LoadPath::Merged))
}

/// Bytes of COPY data sent per message. sqlx's connection write buffer grows to the largest
/// message it has sent and never shrinks, so sending a whole chunk at once left every pooled
/// connection holding a chunk-sized buffer: a long load, which sooner or later copies on each
/// of them, ended ~16 MiB above a short one (README, "Benchmarks", (d)).
const COPY_PIECE: usize = 64 * 1024;

/// Runs one `COPY … FROM STDIN` with `data`; returns the rows it wrote.
async fn copy_in(tx: &mut sqlx::PgConnection, statement: &str, data: &[u8]) -> Result<u64, sqlx::Error> {
    let mut copy = tx.copy_in_raw(statement).await?;
    for piece in data.chunks(COPY_PIECE) {
        if let Err(e) = copy.send(piece).await {
            let _ = copy.abort("send failed").await;
            return Err(e);
        }
    }
    copy.finish().await
}

/// Quotes an identifier for SQL, doubling any `"` in it (spec names, a database name).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
