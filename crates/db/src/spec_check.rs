//! Checking a dataset spec against the live table at start-up, so a typo fails fast with a
//! clear message instead of at the first row.

use penstock_core::{ColumnSpec, ColumnType, DatasetSpec};
use sqlx::PgPool;

use crate::error::DbError;

/// A column of the live table, as `information_schema.columns` describes it.
#[derive(Debug, Clone)]
struct TableColumn {
    name: String,
    data_type: String,
    not_null: bool,
    /// For `character varying(n)` and `character(n)`.
    max_length: Option<i32>,
    /// For `numeric(p, s)`.
    precision: Option<i32>,
    scale: Option<i32>,
}

/// Checks that the spec's table exists with every column (of a compatible type), the
/// lineage columns, and a unique constraint or index on exactly the conflict key. Returns
/// warnings for what the table accepts more narrowly than the spec (NOT NULL, lengths,
/// precision): rows PostgreSQL refuses for those are quarantined, not lost, but the user
/// should hear of it before the first file.
pub async fn check_spec(pool: &PgPool, spec: &DatasetSpec) -> Result<Vec<String>, DbError> {
    let table = spec.table();
    let live: Vec<TableColumn> = sqlx::query_as!(
        TableColumn,
        r#"SELECT column_name::text AS "name!", data_type::text AS "data_type!",
            is_nullable = 'NO' AS "not_null!",
            character_maximum_length::int4 AS max_length,
            CASE WHEN data_type = 'numeric' THEN numeric_precision::int4 END AS precision,
            CASE WHEN data_type = 'numeric' THEN numeric_scale::int4 END AS scale
         FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1"#,
        table
    )
    .fetch_all(pool)
    .await?;
    let columns: Vec<(String, String)> = live.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect();
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
    if let Some(rescue) = spec.rescue()
        && find(rescue) != Some("jsonb")
    {
        return fail(match find(rescue) {
            None => format!(
                "on_new_columns = \"rescue\" keeps undeclared columns in {rescue:?}, which table {table:?} lacks; \
                 add it in a migration: ALTER TABLE {table} ADD COLUMN {rescue} jsonb"
            ),
            Some(ty) => format!("the rescue column {rescue:?} is {ty} in table {table:?}; it must be jsonb"),
        });
    }
    if spec.on_conflict == penstock_core::spec::OnConflict::Record {
        let recorded = sqlx::query_scalar!(
            r#"SELECT EXISTS (
                SELECT 1 FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
                 WHERE tg.tgrelid = to_regclass(quote_ident($1)) AND p.proname = 'penstock_record_history'
                   AND NOT tg.tgisinternal AND tg.tgenabled IN ('O', 'A')
                   -- AFTER UPDATE, FOR EACH ROW, on every update (no WHEN, no UPDATE OF)
                   AND tg.tgtype & 1 = 1 AND tg.tgtype & 16 = 16 AND tg.tgtype & 2 = 0 AND tg.tgtype & 64 = 0
                   AND tg.tgqual IS NULL AND tg.tgattr = ''::int2vector
                   AND encode(tg.tgargs, 'escape') = $2 || '\000'
            ) AS "recorded!""#,
            table,
            &spec.name
        )
        .fetch_one(pool)
        .await?;
        if !recorded {
            return fail(format!(
                "on_conflict = \"record\" writes every replaced row to row_history by the table's trigger, which table \
                 {table:?} lacks; add it in a migration: CREATE TRIGGER {table}_history AFTER UPDATE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION penstock_record_history('{}')",
                spec.name
            ));
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
    let mut warnings: Vec<String> = spec
        .columns
        .iter()
        .filter_map(|column| {
            let live = live.iter().find(|c| c.name == column.name)?;
            narrower(table, column, live)
        })
        .collect();
    let partitioning = sqlx::query!(
        r#"SELECT pg_get_partkeydef(c.oid) AS partition_key,
                  -- The key's columns from the catalog, in order ('' for an expression), so
                  -- quoting, COLLATE and operator classes in the definition do not matter.
                  array(SELECT coalesce(a.attname::text, '')
                          FROM pg_partitioned_table pt
                         CROSS JOIN LATERAL unnest(pt.partattrs::int2[]) WITH ORDINALITY AS k(attnum, n)
                          LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum
                         WHERE pt.partrelid = c.oid
                         ORDER BY k.n) AS "key_columns!",
                  EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                          WHERE i.inhparent = c.oid AND p.relpartbound IS NOT NULL
                            AND pg_get_expr(p.relpartbound, p.oid) = 'DEFAULT') AS "has_default!"
             FROM pg_class c
            WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace"#,
        table
    )
    .fetch_one(pool)
    .await?;
    match partitioning_problem(
        table,
        spec.partition_by.as_deref(),
        partitioning
            .partition_key
            .as_deref()
            .map(|def| (def, partitioning.key_columns.as_slice())),
        partitioning.has_default,
    ) {
        Some(Problem::Fatal(message)) => return fail(message),
        Some(Problem::Warning(message)) => warnings.push(message),
        None => {}
    }
    Ok(warnings)
}

enum Problem {
    Fatal(String),
    Warning(String),
}

/// Whether the table's partitioning agrees with the spec's `partition_by`. `live` is none
/// for a plain table, else the key as `pg_get_partkeydef` gives it (e.g. `LIST (year)`) and
/// its columns from the catalog (`""` for an expression): it agrees when it is the one
/// declared column.
fn partitioning_problem(
    table: &str,
    declared: Option<&str>,
    live: Option<(&str, &[String])>,
    has_default: bool,
) -> Option<Problem> {
    let partition_key = live.map(|(def, _)| def);
    let live_column = live.map(|(_, columns)| match columns {
        [column] => column.clone(),
        _ => String::new(), // several columns, or an expression: never the declared column
    });
    match (declared, live_column) {
        (None, None) => None,
        (Some(column), None) => Some(Problem::Fatal(format!(
            "the spec declares partition_by = {column:?}, but table {table:?} is not partitioned; create it with \
             PARTITION BY LIST ({column}) (or RANGE) in a migration, or remove partition_by"
        ))),
        (None, Some(_)) => Some(Problem::Warning(format!(
            "table {table:?} is partitioned ({}); declare it in the spec (partition_by) so the start-up check \
             keeps it so",
            partition_key.unwrap_or_default()
        ))),
        (Some(column), Some(live)) if live != column => Some(Problem::Fatal(format!(
            "the spec declares partition_by = {column:?}, but table {table:?} is partitioned by {}; make them agree",
            partition_key.unwrap_or_default()
        ))),
        (Some(column), Some(_)) if !has_default => Some(Problem::Warning(format!(
            "table {table:?} has no DEFAULT partition: a row whose {column} no partition holds is refused, and \
             quarantined with PostgreSQL's reason; add one (CREATE TABLE {table}_default PARTITION OF {table} \
             DEFAULT) or a partition for each new value before its files arrive"
        ))),
        (Some(_), Some(_)) => None,
    }
}

/// What the live column refuses that the spec lets through, if anything.
fn narrower(table: &str, column: &ColumnSpec, live: &TableColumn) -> Option<String> {
    let name = &column.name;
    let mut notes = Vec::new();
    let nullable = column.nullable;
    if live.not_null && nullable {
        notes.push(format!(
            "is NOT NULL, but the spec lets it be empty (nullable = true): rows with an empty {:?} will be refused; \
             set nullable = false in the spec, or drop NOT NULL",
            column.source
        ));
    }
    if let Some(n) = live.max_length {
        notes.push(format!(
            "holds at most {n} characters ({}({n})): longer values will be refused",
            live.data_type
        ));
    }
    if let (Some(p), Some(s)) = (live.precision, live.scale) {
        notes.push(format!(
            "is numeric({p}, {s}): values with more than {} digits before the point will be refused, and digits past \
             the {s}th decimal are rounded without notice",
            p - s
        ));
    }
    if column.ty == ColumnType::Numeric && matches!(live.data_type.as_str(), "real" | "double precision") {
        notes.push(format!(
            "is {}: decimal values are stored as binary floating point and may be rounded",
            live.data_type
        ));
    }
    (!notes.is_empty()).then(|| {
        format!(
            "column {name:?} of table {table:?} {}; refused rows are quarantined with PostgreSQL's reason",
            notes.join("; it ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_column(ty: ColumnType, nullable: bool) -> ColumnSpec {
        ColumnSpec {
            name: "c".into(),
            source: "C".into(),
            ty,
            nullable,
            trim: true,
            thousands: None,
            accounting_negatives: false,
            case: None,
            required: true,
        }
    }

    fn live(data_type: &str, not_null: bool) -> TableColumn {
        TableColumn {
            name: "c".into(),
            data_type: data_type.into(),
            not_null,
            max_length: None,
            precision: None,
            scale: None,
        }
    }

    #[test]
    fn a_not_null_column_the_spec_calls_nullable_is_warned_about_with_the_fix() {
        let warning = narrower("t", &spec_column(ColumnType::Text, true), &live("text", true)).unwrap();
        assert!(warning.contains("NOT NULL"), "{warning}");
        assert!(warning.contains("nullable = false"), "{warning}");
        assert_eq!(
            narrower("t", &spec_column(ColumnType::Text, false), &live("text", true)),
            None
        );
    }

    #[test]
    fn lengths_and_precision_narrower_than_the_spec_are_warned_about() {
        let varchar = TableColumn {
            max_length: Some(10),
            ..live("character varying", false)
        };
        let warning = narrower("t", &spec_column(ColumnType::Text, true), &varchar).unwrap();
        assert!(
            warning.contains("at most 10 characters (character varying(10))"),
            "{warning}"
        );
        let numeric = TableColumn {
            precision: Some(6),
            scale: Some(2),
            ..live("numeric", false)
        };
        let warning = narrower("t", &spec_column(ColumnType::Numeric, true), &numeric).unwrap();
        assert!(warning.contains("more than 4 digits before the point"), "{warning}");
        assert!(warning.contains("rounded"), "{warning}");
    }

    fn problem(declared: Option<&str>, key: Option<(&str, &[&str])>, has_default: bool) -> Option<(bool, String)> {
        let columns: Option<(&str, Vec<String>)> =
            key.map(|(def, columns)| (def, columns.iter().map(|c| c.to_string()).collect()));
        let live = columns.as_ref().map(|(def, columns)| (*def, columns.as_slice()));
        partitioning_problem("t", declared, live, has_default).map(|p| match p {
            Problem::Fatal(m) => (true, m),
            Problem::Warning(m) => (false, m),
        })
    }

    #[test]
    fn a_partitioned_table_must_be_partitioned_by_the_declared_column_alone() {
        assert!(problem(None, None, false).is_none());
        assert!(problem(Some("year"), Some(("LIST (year)", &["year"])), true).is_none());
        assert!(problem(Some("year"), Some(("RANGE (\"year\")", &["year"])), true).is_none());
        let collated = ("LIST (region COLLATE \"C\" text_pattern_ops)", &["region"][..]);
        assert!(
            problem(Some("region"), Some(collated), true).is_none(),
            "COLLATE, opclass"
        );
        let (fatal, message) = problem(Some("year"), None, false).unwrap();
        assert!(fatal && message.contains("PARTITION BY LIST (year)"), "{message}");
        let (fatal, message) = problem(Some("year"), Some(("LIST (state)", &["state"])), true).unwrap();
        assert!(fatal && message.contains("partitioned by LIST (state)"), "{message}");
        let (fatal, message) = problem(Some("year"), Some(("RANGE (year, state)", &["year", "state"])), true).unwrap();
        assert!(
            fatal && message.contains("RANGE (year, state)"),
            "several columns: {message}"
        );
        let (fatal, message) = problem(Some("year"), Some(("RANGE ((year + 1))", &[""])), true).unwrap();
        assert!(fatal && message.contains("(year + 1)"), "an expression: {message}");
    }

    #[test]
    fn a_partitioned_table_without_a_default_partition_or_declaration_is_warned_about() {
        let (fatal, message) = problem(Some("year"), Some(("LIST (year)", &["year"])), false).unwrap();
        assert!(!fatal && message.contains("no DEFAULT partition"), "{message}");
        let (fatal, message) = problem(None, Some(("LIST (year)", &["year"])), true).unwrap();
        assert!(!fatal && message.contains("partition_by"), "{message}");
    }

    #[test]
    fn a_column_as_wide_as_the_spec_is_not_warned_about() {
        assert_eq!(
            narrower("t", &spec_column(ColumnType::Numeric, true), &live("numeric", false)),
            None
        );
        assert_eq!(
            narrower("t", &spec_column(ColumnType::Integer, true), &live("bigint", false)),
            None
        );
    }
}
