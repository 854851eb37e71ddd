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
//!    A row PostgreSQL refuses (a data exception or an integrity violation other than the
//!    conflict key, classes 22 and 23, or a trigger's `RAISE`: a CHECK the user added, a
//!    value too long for a `varchar(n)`, a NULL in a NOT NULL column) aborts the statement.
//!    The transaction is then rolled back and the chunk is loaded again with its refused rows
//!    isolated (see [`crate::isolate`]): the rest commits, each refused row is quarantined with
//!    PostgreSQL's message and constraint;
//! 4. insert the chunk's quarantined records into `ingest_errors`;
//! 5. add the chunk's counts to its file and, for the last chunk, set the final status — one
//!    guarded UPDATE under the file row's lock, so two consumers finishing at once cannot
//!    lose an update; the chunk that finishes the file writes the file's event to the
//!    `outbox` in the same transaction (see `outbox.rs`), so a finished file is always
//!    announced and a chunk that did not commit announces nothing;
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

use std::borrow::Cow;
use std::collections::HashMap;

use penstock_core::spec::OnConflict;
use penstock_core::{ChunkItem, CsvDialect, DatasetSpec, PreparedChunk, QuarantinedRecord, raw_records};
use sqlx::PgPool;

use crate::copy::copy_in;
use crate::error::DbError;
use crate::file_state::FileState;
use crate::isolate::{Statements, is_refusal, isolate};

/// The statements for one dataset, built once.
#[derive(Debug, Clone)]
pub struct MergeSql {
    /// The last file version one of whose chunks met existing keys: its other chunks go
    /// straight to the merge. (A direct COPY that fails has already written a batch of rows,
    /// up to about a thousand, that become dead tuples.)
    conflicted_file: Arc<AtomicI64>,
    /// `on_conflict = "keep"`: a row the merge did not write was kept out by an earlier
    /// row of its key, and is counted as kept-existing.
    keep: bool,
    /// `on_conflict = "record"`: records the staged rows that lost to a later row already in
    /// the table (an older version loading after a newer one); the trigger records the rows
    /// the merge replaced.
    record_losers: Option<String>,
    /// The files' dialect: to find a refused row's record as written.
    dialect: CsvDialect,
    copy_direct: String,
    create_stage: String,
    copy_stage: String,
    merge: String,
    /// The merge of the staged rows numbered in a range: the SQL before and after the range.
    merge_part: (String, String),
}

/// The channel `load_chunk` notifies (payload: the dataset name) when a chunk changed rows
/// or a file finished.
pub const DATA_CHANGED_CHANNEL: &str = "penstock_data";

impl MergeSql {
    pub fn new(spec: &DatasetSpec) -> MergeSql {
        let table = ident(spec.table());
        // The rescue column (a rescuing spec) follows the spec's columns, as in the COPY rows.
        let columns: Vec<String> = spec
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .chain(spec.rescue())
            .map(ident)
            .collect();
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
        // The lineage rule: a later row replaces (update, record), or an earlier one does
        // (keep); the same line again (a replay) rewrites the row under every policy.
        let replaces = match spec.on_conflict {
            OnConflict::Keep => ">=",
            OnConflict::Update | OnConflict::Record => "<=",
        };
        let merge_from = |from: &str| {
            format!(
                "INSERT INTO {table} AS t ({list}, source_file_id, source_line, loaded_at)
                 SELECT {list}, source_file_id, source_line, now() FROM {from}
                 ON CONFLICT ({keys}) DO UPDATE SET {updates}
                 WHERE (t.source_file_id, t.source_line) {replaces} (EXCLUDED.source_file_id, EXCLUDED.source_line)",
                keys = key.join(", "),
                updates = updates.join(", "),
            )
        };
        MergeSql {
            conflicted_file: Arc::new(AtomicI64::new(-1)),
            keep: spec.on_conflict == OnConflict::Keep,
            record_losers: (spec.on_conflict == OnConflict::Record).then(|| {
                let on = key
                    .iter()
                    .map(|k| format!("t.{k} = s.{k}"))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                format!(
                    "INSERT INTO row_history (dataset, old_row, old_file_id, old_line, new_file_id, new_line)
                     SELECT '{dataset}', to_jsonb(s), s.source_file_id, s.source_line, t.source_file_id, t.source_line
                       FROM penstock_stage s JOIN {table} t ON {on}
                      WHERE (t.source_file_id, t.source_line) > (s.source_file_id, s.source_line)",
                    dataset = spec.name,
                )
            }),
            dialect: spec.csv.clone(),
            create_stage: format!(
                "CREATE TEMP TABLE penstock_stage ON COMMIT DROP AS SELECT {list}, source_file_id, source_line FROM {table} WITH NO DATA"
            ),
            copy_stage: format!("COPY penstock_stage ({list}, source_file_id, source_line) FROM STDIN"),
            copy_direct: format!("COPY {table} ({list}, source_file_id, source_line) FROM STDIN"),
            merge: merge_from("penstock_stage"),
            merge_part: {
                let part = merge_from("penstock_stage WHERE \u{0}");
                let (head, tail) = part.split_once('\u{0}').expect("the placeholder is there");
                (head.to_string(), tail.to_string())
            },
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
        /// Rows PostgreSQL refused, quarantined with its reason.
        refused: u64,
        /// Rows an earlier row of their key kept out (`on_conflict = "keep"`).
        kept: u64,
        /// Set when this chunk finished the file (its event is in the outbox).
        finished: Option<Finished>,
    },
}

/// A file finished by the chunk that committed last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// From the file's start to its finish.
    pub took: Option<std::time::Duration>,
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
    /// PostgreSQL refused some row: the chunk was merged in parts to set those rows apart.
    Isolated,
}

impl LoadPath {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadPath::Empty => "empty",
            LoadPath::Direct => "direct",
            LoadPath::Merged => "merged",
            LoadPath::Isolated => "isolated",
        }
    }
}

/// Loads one chunk in one transaction (see the module docs). `bytes` are the chunk's bytes
/// as read from the file: the quarantine keeps a refused row's record as written.
pub async fn load_chunk(
    pool: &PgPool,
    sql: &MergeSql,
    item: &ChunkItem,
    chunk: &PreparedChunk,
    bytes: &[u8],
) -> Result<ChunkOutcome, DbError> {
    match load_once(pool, sql, item, chunk, bytes, false).await? {
        Once::Done(outcome) => Ok(outcome),
        Once::Refused => match load_once(pool, sql, item, chunk, bytes, true).await? {
            Once::Done(outcome) => Ok(outcome),
            Once::Refused => unreachable!("an isolating load quarantines what is refused"),
        },
    }
}

/// One attempt at a chunk's transaction.
enum Once {
    Done(ChunkOutcome),
    /// PostgreSQL refused a row and the transaction was rolled back: load again, isolating.
    Refused,
}

async fn load_once(
    pool: &PgPool,
    sql: &MergeSql,
    item: &ChunkItem,
    chunk: &PreparedChunk,
    bytes: &[u8],
    isolating: bool,
) -> Result<Once, DbError> {
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
        return Ok(Once::Done(ChunkOutcome::AlreadyLoaded));
    }

    let (rows_changed, path, refused) = if chunk.rows == 0 {
        (0, LoadPath::Empty, Vec::new())
    } else if isolating {
        let statements = Statements {
            create_stage: &sql.create_stage,
            copy_stage: &sql.copy_stage,
            merge_part: (&sql.merge_part.0, &sql.merge_part.1),
        };
        let (rows, refused) = isolate(&mut tx, &statements, &chunk.copy).await?;
        (rows, LoadPath::Isolated, refused)
    } else {
        match write_rows(&mut tx, sql, item.file_id, &chunk.copy).await {
            Ok((rows, path)) => (rows, path, Vec::new()),
            Err(sqlx::Error::Database(e)) if is_refusal(e.as_ref()) => {
                tx.rollback().await?;
                return Ok(Once::Refused);
            }
            Err(e) => return Err(e.into()),
        }
    };

    // The records the chunk quarantined, and those PostgreSQL refused (rare: only then is
    // anything copied).
    let quarantine: Cow<[QuarantinedRecord]> = if refused.is_empty() {
        Cow::Borrowed(&chunk.quarantined)
    } else {
        let lines: Vec<u64> = refused.iter().map(|r| r.line).collect();
        let mut raws: HashMap<u64, String> = raw_records(bytes, &sql.dialect, item.first_line, &lines)
            .into_iter()
            .collect();
        let mut all = chunk.quarantined.clone();
        all.extend(refused.iter().map(|r| {
            QuarantinedRecord {
                line: r.line,
                column: r.column.clone(),
                raw: raws
                    .remove(&r.line)
                    .unwrap_or_else(|| r.copy_row.clone().unwrap_or_default()),
                reason: r.reason.clone(),
            }
        }));
        sqlx::query!(
            "UPDATE ingest_chunks SET rows_loaded = rows_loaded - $3, rows_quarantined = rows_quarantined + $3
             WHERE file_id = $1 AND chunk = $2",
            item.file_id,
            item.chunk as i32,
            refused.len() as i64
        )
        .execute(&mut *tx)
        .await?;
        Cow::Owned(all)
    };
    if !quarantine.is_empty() {
        let q = &quarantine;
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

    let (mut loaded, quarantined) = (
        chunk.rows - refused.len() as u64,
        (chunk.quarantined.len() + refused.len()) as i64,
    );
    // Keeping the first row of a key: the rows an earlier one kept out are not loaded.
    let kept = if sql.keep {
        loaded.saturating_sub(rows_changed)
    } else {
        0
    };
    if kept > 0 {
        loaded -= kept;
        sqlx::query!(
            "UPDATE ingest_chunks SET rows_loaded = rows_loaded - $3, rows_kept = $3 WHERE file_id = $1 AND chunk = $2",
            item.file_id,
            item.chunk as i32,
            kept as i64
        )
        .execute(&mut *tx)
        .await?;
    }
    // The states are bound (from FileState) rather than spelled in the SQL.
    let file = sqlx::query!(
        r#"UPDATE ingest_files SET
            chunks_done = chunks_done + 1,
            rows_loaded = rows_loaded + $2,
            rows_quarantined = rows_quarantined + $3,
            rows_superseded = rows_superseded + $4,
            rows_kept = rows_kept + $8,
            status = CASE
                WHEN status = $5 AND chunks_done + 1 >= chunks_total THEN
                    CASE WHEN rows_quarantined + $3 > 0 THEN $6 ELSE $7 END
                ELSE status END,
            finished_at = CASE
                WHEN status = $5 AND chunks_done + 1 >= chunks_total THEN now()
                ELSE finished_at END,
            updated_at = now()
         WHERE id = $1
         RETURNING status AS "status: FileState", key, rows_loaded, rows_quarantined, rows_superseded,
             status IN ($6, $7) AND chunks_done = chunks_total AS "finished!",
             extract(epoch FROM finished_at - started_at)::float8 AS took"#,
        item.file_id,
        loaded as i64,
        quarantined,
        chunk.superseded as i64,
        FileState::Loading.as_str(),
        FileState::DoneWithErrors.as_str(),
        FileState::Done.as_str(),
        kept as i64
    )
    .fetch_one(&mut *tx)
    .await?;
    let file_status = file.status;
    // This chunk finished the file (the one whose count reached the total, under the row
    // lock): its event goes in with the commit.
    let finished = file.finished.then(|| Finished {
        took: file.took.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()),
    });
    if finished.is_some() {
        let event = penstock_core::event::Event::file_finished(
            item.file_id,
            &file.key,
            file.rows_loaded,
            file.rows_quarantined,
            file.rows_superseded,
        );
        crate::outbox::write(&mut tx, &event).await?;
    }
    if rows_changed > 0 || file_status.is_terminal() {
        sqlx::query!("SELECT pg_notify($1, $2)", DATA_CHANGED_CHANNEL, &item.dataset)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Once::Done(ChunkOutcome::Loaded {
        file_status,
        rows_changed,
        path,
        refused: refused.len() as u64,
        kept,
        finished,
    }))
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
) -> Result<(u64, LoadPath), sqlx::Error> {
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
            Err(e) => return Err(e),
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
    if let Some(losers) = &sql.record_losers {
        sqlx::raw_sql(sqlx::AssertSqlSafe(losers.clone()))
            .execute(&mut *tx)
            .await?;
    }
    Ok((rows, LoadPath::Merged))
}

/// Quotes an identifier for SQL, doubling any `"` in it (spec names, a database name).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
