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
//!    isolated (see [`isolate`]): the rest commits, each refused row is quarantined with
//!    PostgreSQL's message and constraint;
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

use penstock_core::{ChunkItem, CsvDialect, DatasetSpec, PreparedChunk, raw_records};
use sqlx::PgPool;
use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;

use crate::error::DbError;
use crate::file_state::FileState;

/// The statements for one dataset, built once.
#[derive(Debug, Clone)]
pub struct MergeSql {
    /// The last file version one of whose chunks met existing keys: its other chunks go
    /// straight to the merge. (A direct COPY that fails has already written a batch of rows,
    /// up to about a thousand, that become dead tuples.)
    conflicted_file: Arc<AtomicI64>,
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
        let merge_from = |from: &str| {
            format!(
                "INSERT INTO {table} AS t ({list}, source_file_id, source_line, loaded_at)
                 SELECT {list}, source_file_id, source_line, now() FROM {from}
                 ON CONFLICT ({keys}) DO UPDATE SET {updates}
                 WHERE (t.source_file_id, t.source_line) <= (EXCLUDED.source_file_id, EXCLUDED.source_line)",
                keys = key.join(", "),
                updates = updates.join(", "),
            )
        };
        MergeSql {
            conflicted_file: Arc::new(AtomicI64::new(-1)),
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
        let (rows, refused) = isolate(&mut tx, sql, &chunk.copy).await?;
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

    let mut quarantine: Vec<(i64, Option<String>, String, String)> = chunk
        .quarantined
        .iter()
        .map(|r| (r.line as i64, r.column.clone(), r.raw.clone(), r.reason.clone()))
        .collect();
    if !refused.is_empty() {
        let lines: Vec<u64> = refused.iter().map(|r| r.line).collect();
        let raws = raw_records(bytes, &sql.dialect, item.first_line, &lines);
        for r in &refused {
            let raw = raws
                .iter()
                .find(|(line, _)| *line == r.line)
                .map_or_else(|| r.copy_row.clone().unwrap_or_default(), |(_, raw)| raw.clone());
            quarantine.push((r.line as i64, r.column.clone(), raw, r.reason.clone()));
        }
        sqlx::query!(
            "UPDATE ingest_chunks SET rows_loaded = rows_loaded - $3, rows_quarantined = rows_quarantined + $3
             WHERE file_id = $1 AND chunk = $2",
            item.file_id,
            item.chunk as i32,
            refused.len() as i64
        )
        .execute(&mut *tx)
        .await?;
    }
    if !quarantine.is_empty() {
        sqlx::query!(
            "INSERT INTO ingest_errors (file_id, line, column_name, raw, reason)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[])
             ON CONFLICT (file_id, line) DO NOTHING",
            item.file_id,
            &quarantine.iter().map(|r| r.0).collect::<Vec<_>>(),
            // NULL where the problem is not one column's (e.g. the wrong number of fields).
            quarantine.iter().map(|r| r.1.clone()).collect::<Vec<_>>() as Vec<Option<String>>,
            &quarantine
                .iter()
                .map(|r| crate::dead::without_nul(&r.2))
                .collect::<Vec<_>>(),
            &quarantine
                .iter()
                .map(|r| crate::dead::without_nul(&r.3))
                .collect::<Vec<_>>()
        )
        .execute(&mut *tx)
        .await?;
    }

    let (loaded, quarantined) = (
        chunk.rows - refused.len() as u64,
        (chunk.quarantined.len() + refused.len()) as i64,
    );
    // The states are bound (from FileState) rather than spelled in the SQL.
    let file = sqlx::query!(
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
        FileState::Done.as_str()
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
    Ok((rows, LoadPath::Merged))
}

/// A row PostgreSQL refused, and why.
#[derive(Debug)]
struct Refusal {
    line: u64,
    column: Option<String>,
    reason: String,
    /// The row as sent (COPY text), where it is at hand: the quarantine's record if the
    /// file's cannot be found.
    copy_row: Option<String>,
}

/// Whether an error refuses the data rather than the statement: a data exception (class
/// 22: a value too long, out of range, …), an integrity violation (class 23: NOT NULL,
/// CHECK, a foreign key, a unique constraint other than the merge's conflict key, which the
/// merge handles) or a trigger's `RAISE EXCEPTION` / `ASSERT` (P0001, P0004).
fn is_refusal(e: &dyn DatabaseError) -> bool {
    e.code()
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23") || code == "P0001" || code == "P0004")
}

/// One way of writing part of a chunk, each under its own savepoint.
#[derive(Clone, Copy)]
enum Step {
    /// COPY rows (by index) into the staging table: what the column types refuse (a value
    /// too long for a `varchar(n)`, a number out of a `numeric(p, s)`).
    Stage,
    /// Merge staged rows (by their number `n`) into the table: what constraints and
    /// triggers refuse.
    Merge,
}

/// Writes a chunk whose rows PostgreSQL refuses in part, setting the refused rows apart, in
/// two steps: the rows are copied into a staging table, then merged from it. Each step
/// works on parts under savepoints: a part that is refused is rolled back to its savepoint
/// and split in two, down to single rows, which are the refused ones. Each step usually
/// succeeds whole; for `k` refused rows among `n` a step takes about `2·k·log2(n/k)` parts,
/// one round trip each, and the merges find the rows of a part through an index, so a few
/// bad rows cost little more than the chunk itself. The happy path never comes here.
/// Returns the rows changed and the refusals.
async fn isolate(
    tx: &mut sqlx::PgConnection,
    sql: &MergeSql,
    copy_text: &[u8],
) -> Result<(u64, Vec<Refusal>), DbError> {
    // Rows are whole lines of COPY text (a newline inside a value is escaped).
    let mut bounds = vec![0];
    bounds.extend(
        copy_text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.create_stage.clone()))
        .execute(&mut *tx)
        .await?;
    let mut refused = Vec::new();
    bisect(tx, sql, Step::Stage, copy_text, &bounds, bounds.len() - 1, &mut refused).await?;
    // Number the staged rows in order, 1 to `staged`, for the merges to pick parts by.
    sqlx::raw_sql(
        "ALTER TABLE penstock_stage ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
         CREATE INDEX ON penstock_stage (n); ANALYZE penstock_stage",
    )
    .execute(&mut *tx)
    .await?;
    let staged: i64 = sqlx::query_scalar("SELECT count(*) FROM penstock_stage")
        .fetch_one(&mut *tx)
        .await?;
    let changed = bisect(tx, sql, Step::Merge, copy_text, &bounds, staged as usize, &mut refused).await?;
    Ok((changed, refused))
}

/// Runs one step over parts `0..count` (rows of `copy_text` for [`Step::Stage`], staged
/// rows `1..=count` for [`Step::Merge`]), splitting refused parts down to single rows and
/// adding those to `refused`. Returns the rows the step wrote.
async fn bisect(
    tx: &mut sqlx::PgConnection,
    sql: &MergeSql,
    step: Step,
    copy_text: &[u8],
    bounds: &[usize],
    count: usize,
    refused: &mut Vec<Refusal>,
) -> Result<u64, DbError> {
    let mut written = 0;
    // Parts still to write, the next on top.
    let mut parts = Vec::new();
    parts.push(0..count);
    while let Some(part) = parts.pop() {
        if part.is_empty() {
            continue;
        }
        let text = || &copy_text[bounds[part.start]..bounds[part.end]];
        let attempt = match step {
            Step::Stage => {
                sqlx::raw_sql("SAVEPOINT penstock_part").execute(&mut *tx).await?;
                match copy_in(tx, &sql.copy_stage, text()).await {
                    Ok(rows) => sqlx::raw_sql("RELEASE SAVEPOINT penstock_part")
                        .execute(&mut *tx)
                        .await
                        .map(|_| rows),
                    Err(e) => Err(e),
                }
            }
            // One round trip: the savepoint, the merge and the release go together (after
            // an error PostgreSQL skips the rest).
            Step::Merge => {
                let (head, tail) = &sql.merge_part;
                let statement = format!(
                    "SAVEPOINT penstock_part; {head}n > {} AND n <= {}{tail}; RELEASE SAVEPOINT penstock_part",
                    part.start, part.end
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await
                    .map(|done| done.rows_affected())
            }
        };
        match attempt {
            Ok(rows) => written += rows,
            Err(sqlx::Error::Database(e)) if is_refusal(e.as_ref()) => {
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT penstock_part; RELEASE SAVEPOINT penstock_part")
                    .execute(&mut *tx)
                    .await?;
                if part.len() > 1 {
                    push_halves(&mut parts, part);
                    continue;
                }
                let refusal = match step {
                    Step::Stage => refusal(Some(text()), None, e.as_ref()),
                    Step::Merge => {
                        let line: i64 = sqlx::query_scalar("SELECT source_line FROM penstock_stage WHERE n = $1")
                            .bind(part.end as i64)
                            .fetch_one(&mut *tx)
                            .await?;
                        refusal(None, Some(line as u64), e.as_ref())
                    }
                };
                refused.push(refusal);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(written)
}

/// Pushes the two halves of `part` so that the first half is written next.
fn push_halves(parts: &mut Vec<std::ops::Range<usize>>, part: std::ops::Range<usize>) {
    let middle = part.start + part.len() / 2;
    parts.push(middle..part.end);
    parts.push(part.start..middle);
}

/// Describes one refused row from PostgreSQL's error: from its COPY text `row` (its last
/// field is its source line, see `PreparedChunk::copy`) or from its `line`.
fn refusal(row: Option<&[u8]>, line: Option<u64>, e: &dyn DatabaseError) -> Refusal {
    let text = row.map(|row| String::from_utf8_lossy(row.strip_suffix(b"\n").unwrap_or(row)).into_owned());
    let line = line
        .or_else(|| text.as_deref()?.rsplit('\t').next()?.parse().ok())
        .unwrap_or(0);
    let pg = e.try_downcast_ref::<PgDatabaseError>();
    let column = pg.and_then(|pg| pg.column().map(str::to_string).or_else(|| copy_column(pg.r#where()?)));
    let code = e.code().unwrap_or_default();
    let mut reason = format!("PostgreSQL refused the row (SQLSTATE {code}");
    if let Some(constraint) = e.constraint() {
        reason.push_str(&format!(", constraint {constraint:?}"));
    }
    reason.push_str(&format!("): {}", e.message()));
    if let Some(hint) = pg.and_then(|pg| pg.hint()) {
        reason.push_str(&format!(" ({hint})"));
    }
    Refusal {
        line,
        column,
        reason,
        copy_row: text,
    }
}

/// The column a COPY error's context names (`COPY t, line 1, column c: "…"`), if it does.
fn copy_column(context: &str) -> Option<String> {
    let first = context.lines().next()?;
    let (_, rest) = first.split_once(", column ")?;
    let name = rest.split_once(':').map_or(rest, |(name, _)| name);
    Some(name.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_writes_the_first_half_next() {
        let mut parts = Vec::new();
        push_halves(&mut parts, 0..5);
        assert_eq!(parts, vec![2..5, 0..2]);
    }

    #[test]
    fn a_copy_errors_context_names_its_column() {
        assert_eq!(
            copy_column("COPY penstock_stage, line 1, column plant_name: \"A very long name\"").as_deref(),
            Some("plant_name")
        );
        assert_eq!(copy_column("PL/pgSQL function refuse() line 3 at RAISE"), None);
    }
}
