//! Setting apart the rows of a chunk PostgreSQL refuses (see `load`'s module docs, step 3),
//! so the rest of the chunk commits and each refused row is quarantined with PostgreSQL's
//! reason.

use sqlx::PgConnection;
use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;

use crate::copy::copy_in;
use crate::error::DbError;

/// A row PostgreSQL refused, and why.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) line: u64,
    pub(crate) column: Option<String>,
    pub(crate) reason: String,
    /// The row as sent (COPY text), where it is at hand: the quarantine's record if the
    /// file's cannot be found.
    pub(crate) copy_row: Option<String>,
}

/// The statements setting refused rows apart takes (built once per dataset, by `MergeSql`).
pub(crate) struct Statements<'a> {
    /// Creates the temporary staging table `penstock_stage`, like the table, empty.
    pub(crate) create_stage: &'a str,
    /// COPYs rows into it.
    pub(crate) copy_stage: &'a str,
    /// The merge of staged rows into the table, before and after a `WHERE` condition on them.
    pub(crate) merge_part: (&'a str, &'a str),
}

/// Whether an error refuses the data rather than the statement: a data exception (class
/// 22: a value too long, out of range, …), an integrity violation (class 23: NOT NULL,
/// CHECK, a foreign key, a unique constraint other than the merge's conflict key, which the
/// merge handles) or a trigger's `RAISE EXCEPTION` / `ASSERT` (P0001, P0004).
pub(crate) fn is_refusal(e: &dyn DatabaseError) -> bool {
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
pub(crate) async fn isolate(
    tx: &mut PgConnection,
    sql: &Statements<'_>,
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
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.create_stage.to_string()))
        .execute(&mut *tx)
        .await?;
    let mut refused = Vec::new();
    let staged = bisect(tx, sql, Step::Stage, copy_text, &bounds, bounds.len() - 1, &mut refused).await?;
    // Number the staged rows in order, 1 to `staged`, for the merges to pick parts by.
    sqlx::raw_sql(
        "ALTER TABLE penstock_stage ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
         CREATE INDEX ON penstock_stage (n); ANALYZE penstock_stage",
    )
    .execute(&mut *tx)
    .await?;
    let changed = bisect(tx, sql, Step::Merge, copy_text, &bounds, staged as usize, &mut refused).await?;
    Ok((changed, refused))
}

/// Runs one step over parts `0..count` (rows of `copy_text` for [`Step::Stage`], staged
/// rows `1..=count` for [`Step::Merge`]), splitting refused parts down to single rows and
/// adding those to `refused`. Returns the rows the step wrote.
async fn bisect(
    tx: &mut PgConnection,
    sql: &Statements<'_>,
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
                match copy_in(tx, sql.copy_stage, text()).await {
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
                let (head, tail) = sql.merge_part;
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
