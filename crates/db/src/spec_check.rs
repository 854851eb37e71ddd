//! Checking a dataset spec against the live table at start-up, so a typo fails fast with a
//! clear message instead of at the first row.

use penstock_core::DatasetSpec;
use sqlx::PgPool;

use crate::error::DbError;

/// Checks that the spec's table exists with every column (of a compatible type), the
/// lineage columns, and a unique constraint or index on exactly the conflict key.
pub async fn check_spec(pool: &PgPool, spec: &DatasetSpec) -> Result<(), DbError> {
    let table = spec.table();
    let columns: Vec<(String, String)> = sqlx::query!(
        r#"SELECT column_name::text AS "column_name!", data_type::text AS "data_type!" FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1"#,
        table
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|c| (c.column_name, c.data_type))
    .collect();
    let fail = |message: String| Err(DbError::Invalid(format!("dataset {:?}: {message}", spec.name)));
    if columns.is_empty() {
        return fail(format!(
            "table {table:?} does not exist; add a migration that creates it and run `penstock migrate`"
        ));
    }
    let find = |name: &str| columns.iter().find(|(c, _)| c == name).map(|(_, t)| t.as_str());
    for column in &spec.columns {
        match find(&column.name) {
            None => {
                return fail(format!(
                    "column {:?} is not in table {table:?} (its columns: {}); fix the spec's name or add the column in a migration",
                    column.name,
                    columns.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            Some(ty) if !column.ty.compatible_pg_types().contains(&ty) => {
                return fail(format!(
                    "column {:?} is {ty} in table {table:?}, which cannot hold the spec's type {:?}; use one of {}",
                    column.name,
                    column.ty,
                    column.ty.compatible_pg_types().join(", ")
                ));
            }
            Some(_) => {}
        }
    }
    for (lineage, ty) in [
        ("source_file_id", "bigint"),
        ("source_line", "bigint"),
        ("loaded_at", "timestamp with time zone"),
    ] {
        if find(lineage) != Some(ty) {
            return fail(format!(
                "table {table:?} needs the lineage column {lineage} {ty}; add it in a migration"
            ));
        }
    }
    let unique_sets: Vec<Vec<String>> = sqlx::query_scalar!(
        r#"SELECT array_agg(a.attname::text ORDER BY a.attname) AS "columns!"
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
         WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace
           AND i.indisunique AND i.indpred IS NULL
         GROUP BY i.indexrelid"#,
        table
    )
    .fetch_all(pool)
    .await?;
    let mut key: Vec<String> = spec.conflict_key.clone();
    key.sort();
    if !unique_sets.contains(&key) {
        return fail(format!(
            "table {table:?} has no unique constraint on the conflict key ({}); add UNIQUE ({}) in a migration",
            spec.conflict_key.join(", "),
            spec.conflict_key.join(", ")
        ));
    }
    Ok(())
}
