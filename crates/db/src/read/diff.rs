//! The rows of two file versions compared by conflict key: added, changed (old → new value
//! per column) and absent. A file version's rows are those the table still holds from it
//! plus, for a dataset with `on_conflict = "record"`, those later versions replaced
//! (`row_history`); under another policy a replaced row is gone, and the diff says it is
//! incomplete rather than guess.
//!
//! It reads the table by `source_file_id`, which has no index (every index costs each
//! loaded row a write): a diff scans the table once per side, a cost paid when asked, never
//! by loading.

use std::collections::BTreeMap;

use penstock_core::DatasetSpec;
use serde_json::{Map, Value};
use sqlx::PgPool;

use crate::error::DbError;
use crate::load::ident;

/// What changed from file version `from` to file version `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub added: Vec<DiffRow>,
    pub changed: Vec<DiffRow>,
    pub absent: Vec<DiffRow>,
    pub unchanged: u64,
    /// Totals (the lists stop at the limit).
    pub added_total: u64,
    pub changed_total: u64,
    pub absent_total: u64,
    /// False when some of a side's rows are no longer known (replaced under a policy that
    /// does not record), with why.
    pub complete: bool,
    pub note: Option<String>,
}

/// A row of the diff: its key and, per column, the value on each side that has it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub key: Map<String, Value>,
    /// Column → (value in `from`, value in `to`): for a changed row only the columns that
    /// differ; for an added or absent row every column, the missing side `None`.
    pub columns: BTreeMap<String, (Option<Value>, Option<Value>)>,
}

/// A row of the comparison: its kind, the kind's total, its key, and the old and new row.
type Found = (String, i64, Value, Option<Value>, Option<Value>);

/// Compares the rows of file versions `from` and `to` of dataset `spec`, listing at most
/// `limit` rows of each kind (by key). The comparison runs in PostgreSQL: memory does not
/// grow with the files.
pub async fn diff(pool: &PgPool, spec: &DatasetSpec, from: i64, to: i64, limit: usize) -> Result<Diff, DbError> {
    let table = ident(spec.table());
    let key_of = |row: &str| {
        spec.conflict_key
            .iter()
            .map(|k| format!("'{}', {row}->'{}'", k.replace('\'', "''"), k.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // A side: the table's rows from the file version, then the rows of it that later
    // versions replaced (row_history, newest replacement first), one per key.
    let side = |file: &str| {
        format!(
            "SELECT DISTINCT ON (k) k, r FROM (
                 SELECT jsonb_build_object({table_key}) AS k,
                        jsonb_strip_nulls(to_jsonb(t) - 'loaded_at' - 'source_file_id' - 'source_line') AS r,
                        0::int8 AS o
                   FROM {table} t WHERE source_file_id = {file}
                 UNION ALL
                 SELECT jsonb_build_object({history_key}), jsonb_strip_nulls(old_row - 'source_file_id' - 'source_line'), h.id
                   FROM row_history h WHERE old_file_id = {file} AND dataset = $3
             ) x ORDER BY k, o = 0 DESC, o DESC",
            table_key = key_of("to_jsonb(t)"),
            history_key = key_of("old_row"),
        )
    };
    let sql = format!(
        "WITH a AS ({a}), b AS ({b}),
         d AS (SELECT coalesce(a.k, b.k) AS k, a.r AS old, b.r AS new,
                      CASE WHEN a.k IS NULL THEN 'added' WHEN b.k IS NULL THEN 'absent'
                           WHEN a.r = b.r THEN 'unchanged' ELSE 'changed' END AS kind
                 FROM a FULL JOIN b ON a.k = b.k)
         SELECT kind, total, k, old, new FROM (
             SELECT kind, k, old, new, count(*) OVER (PARTITION BY kind) AS total,
                    row_number() OVER (PARTITION BY kind ORDER BY k) AS n
               FROM d) x
          WHERE (kind <> 'unchanged' AND n <= $4) OR (kind = 'unchanged' AND n = 1)
          ORDER BY kind, k",
        a = side("$1"),
        b = side("$2"),
    );
    let found: Vec<Found> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .bind(&spec.name)
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
    let loaded: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, rows_loaded + rows_kept FROM ingest_files WHERE id = ANY($1)")
            .bind(vec![from, to])
            .fetch_all(pool)
            .await?;
    let mut diff = Diff {
        added: Vec::new(),
        changed: Vec::new(),
        absent: Vec::new(),
        unchanged: 0,
        added_total: 0,
        changed_total: 0,
        absent_total: 0,
        complete: true,
        note: None,
    };
    let object = |v: Option<Value>| match v {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (kind, total, key, old, new) in found {
        let (old, new) = (object(old), object(new));
        let mut columns = BTreeMap::new();
        for column in old.keys().chain(new.keys()) {
            let (before, after) = (old.get(column).cloned(), new.get(column).cloned());
            if before != after && !spec.conflict_key.contains(column) {
                columns.insert(column.clone(), (before, after));
            }
        }
        let row = DiffRow {
            key: object(Some(key)),
            columns,
        };
        let total = total as u64;
        let (rows, count) = match kind.as_str() {
            "added" => (&mut diff.added, &mut diff.added_total),
            "absent" => (&mut diff.absent, &mut diff.absent_total),
            "changed" => (&mut diff.changed, &mut diff.changed_total),
            _ => {
                diff.unchanged = total;
                continue;
            }
        };
        *count = total;
        rows.push(row);
    }
    let known = |id: i64| match id == from {
        true => diff.absent_total + diff.changed_total + diff.unchanged,
        false => diff.added_total + diff.changed_total + diff.unchanged,
    };
    let short: Vec<String> = [from, to]
        .into_iter()
        .filter_map(|id| {
            let expected = loaded.iter().find(|(i, _)| *i == id).map_or(0, |(_, n)| *n) as u64;
            (expected > known(id)).then(|| format!("file {id} loaded {expected} rows, {} are known", known(id)))
        })
        .collect();
    // Recorded, every row a version ever stood with is known (a key's standing line; the
    // rows a later line of the same file replaced are the file's own history). Otherwise a
    // side with fewer rows than it brought is short: replaced, or kept out, and gone.
    if spec.on_conflict != penstock_core::spec::OnConflict::Record && !short.is_empty() {
        diff.complete = false;
        diff.note = Some(format!(
            "{}: rows a later file version replaced (or, under keep, an earlier one kept out) are kept only with \
             on_conflict = \"record\" (this dataset's is {:?}), so missing ones show as added or absent (a key repeated \
             in two chunks of one file also counts twice here)",
            short.join("; "),
            spec.on_conflict.as_str()
        ));
    }
    Ok(diff)
}
