//! eGRID plants (generators grouped by year, state and plant name) from the `egrid_plants`
//! view, computed when read from `egrid_generators` through its key index; and a plant's
//! generators with their lineage.
//!
//! `top_plants` and `search_plants` build their SQL from the filters given (only the
//! whitelisted sort column is formatted in; every value is bound), so each combination gets a
//! plan of its own; they use sqlx's runtime API. The rest are checked at compile time.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::DbError;

/// A plant: its generators' net generation summed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlantRow {
    pub id: i64,
    pub year: i32,
    pub state: String,
    pub plant_name: String,
    pub net_generation_mwh: Option<f64>,
    pub generators: i64,
}

/// A plant with its place in the database's collation order by name and by state (ties
/// share a rank), so a copy in memory can sort as `ORDER BY` would.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedPlant {
    pub plant: PlantRow,
    pub name_rank: i64,
    pub state_rank: i64,
}

/// The columns `search_plants` may sort by.
pub const PLANT_SORT_COLUMNS: [&str; 5] = ["net_generation_mwh", "plant_name", "state", "year", "generators"];

/// What `search_plants` filters, sorts and pages by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlantSearch<'a> {
    /// Part of the plant name, matched case-insensitively and literally (`%` and `_` too).
    pub name: Option<&'a str>,
    pub year: Option<i32>,
    pub state: Option<&'a str>,
    pub min_mwh: Option<f64>,
    pub max_mwh: Option<f64>,
    /// One of [`PLANT_SORT_COLUMNS`]; unknown values and NULLs sort last, ties by id.
    pub sort: &'a str,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// A plant's columns, for the SQL built at run time (the checked queries below spell them
/// with their not-null overrides).
const PLANT_COLUMNS: &str = "id, year, state, plant_name, net_generation_mwh::float8 AS net_generation_mwh, generators";

/// `sqlx::query_as!($record, …)` over a plant's columns (the view's columns are nullable to
/// the macros, hence the overrides); `$tail` follows the column list.
macro_rules! plant_query {
    ($record:ident, $tail:literal $(, $arg:expr)*) => {
        sqlx::query_as!(
            $record,
            r#"SELECT id AS "id!", year AS "year!", state AS "state!", plant_name AS "plant_name!",
                 net_generation_mwh::float8 AS net_generation_mwh, generators AS "generators!""# + $tail
            $(, $arg)*
        )
    };
}

/// The `limit` plants with the highest known net generation, optionally of one year and
/// state; ties by id.
pub async fn top_plants(
    pool: &PgPool,
    year: Option<i32>,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<PlantRow>, DbError> {
    let sql = format!(
        "SELECT {PLANT_COLUMNS} FROM egrid_plants WHERE net_generation_mwh IS NOT NULL{}{}
             ORDER BY net_generation_mwh DESC, id LIMIT $3",
        if year.is_some() { " AND year = $1" } else { "" },
        if state.is_some() { " AND state = $2" } else { "" },
    );
    Ok(sqlx::query_as::<_, PlantRow>(sqlx::AssertSqlSafe(sql))
        .bind(year)
        .bind(state)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// One page of the plants matching `search`, and how many match over all pages.
pub async fn search_plants(pool: &PgPool, search: &PlantSearch<'_>) -> Result<(Vec<PlantRow>, i64), DbError> {
    let sort = sort_column(search.sort)?;
    let order = if search.descending { "desc" } else { "asc" };
    let mut filters = Vec::new();
    if search.year.is_some() {
        filters.push("year = $1");
    }
    if search.state.is_some() {
        filters.push("state = $2");
    }
    if search.name.is_some() {
        filters.push("plant_name ILIKE $3");
    }
    if search.min_mwh.is_some() {
        filters.push("net_generation_mwh >= $4::numeric");
    }
    if search.max_mwh.is_some() {
        filters.push("net_generation_mwh <= $5::numeric");
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let pattern = search.name.map(|name| format!("%{}%", like_literal(name)));
    // Every value is bound; only whitelisted words are formatted into the SQL.
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM egrid_plants{filter}"
    )))
    .bind(search.year)
    .bind(search.state)
    .bind(&pattern)
    .bind(search.min_mwh)
    .bind(search.max_mwh)
    .fetch_one(pool)
    .await?;
    let sql = format!(
        "SELECT {PLANT_COLUMNS} FROM egrid_plants{filter}
             ORDER BY {sort} {order} NULLS LAST, id LIMIT $6 OFFSET $7"
    );
    let plants = sqlx::query_as::<_, PlantRow>(sqlx::AssertSqlSafe(sql))
        .bind(search.year)
        .bind(search.state)
        .bind(&pattern)
        .bind(search.min_mwh)
        .bind(search.max_mwh)
        .bind(search.limit)
        .bind(search.offset)
        .fetch_all(pool)
        .await?;
    Ok((plants, total))
}

/// The plant with this id. A scan of the view: ids are hashes of the grouping columns.
pub async fn plant(pool: &PgPool, id: i64) -> Result<Option<PlantRow>, DbError> {
    Ok(plant_query!(PlantRow, " FROM egrid_plants WHERE id = $1", id)
        .fetch_optional(pool)
        .await?)
}

/// Every plant with its ranks by name and by state.
pub async fn ranked_plants(pool: &PgPool) -> Result<Vec<RankedPlant>, DbError> {
    struct Row {
        id: i64,
        year: i32,
        state: String,
        plant_name: String,
        net_generation_mwh: Option<f64>,
        generators: i64,
        name_rank: i64,
        state_rank: i64,
    }
    let rows = plant_query!(
        Row,
        r#", rank() OVER (ORDER BY plant_name) AS "name_rank!", rank() OVER (ORDER BY state) AS "state_rank!"
             FROM egrid_plants"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RankedPlant {
            plant: PlantRow {
                id: r.id,
                year: r.year,
                state: r.state,
                plant_name: r.plant_name,
                net_generation_mwh: r.net_generation_mwh,
                generators: r.generators,
            },
            name_rank: r.name_rank,
            state_rank: r.state_rank,
        })
        .collect())
}

/// A generator of a plant, with where its row came from.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorRow {
    pub generator_id: String,
    pub net_generation_mwh: Option<f64>,
    pub source_file_id: i64,
    /// The object key of the source file version (None if its ledger row is gone).
    pub key: Option<String>,
    pub source_line: i64,
    pub loaded_at: DateTime<Utc>,
}

/// The generators of the plant (year, state, name), by generator id.
pub async fn generators(pool: &PgPool, year: i32, state: &str, plant_name: &str) -> Result<Vec<GeneratorRow>, DbError> {
    Ok(sqlx::query_as!(
        GeneratorRow,
        "SELECT g.generator_id, g.net_generation_mwh::float8, g.source_file_id, f.key, g.source_line, g.loaded_at
             FROM egrid_generators g LEFT JOIN ingest_files f ON f.id = g.source_file_id
             WHERE g.year = $1 AND g.state = $2 AND g.plant_name = $3
             ORDER BY g.generator_id",
        year,
        state,
        plant_name
    )
    .fetch_all(pool)
    .await?)
}

/// The whitelisted column `name` stands for: the only word of a search formatted into SQL.
fn sort_column(name: &str) -> Result<&'static str, DbError> {
    PLANT_SORT_COLUMNS.into_iter().find(|c| *c == name).ok_or_else(|| {
        DbError::Invalid(format!(
            "cannot sort plants by {name:?}; use one of {}",
            PLANT_SORT_COLUMNS.join(", ")
        ))
    })
}

/// Escapes `%`, `_` and `\` so user text matches literally inside an `ILIKE` pattern.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whitelisted_sort_column_reaches_the_sql() {
        assert_eq!(sort_column("plant_name").unwrap(), "plant_name");
        let refused = sort_column("plant_name; DROP TABLE x").unwrap_err().to_string();
        assert!(
            refused.contains("use one of net_generation_mwh, plant_name"),
            "{refused}"
        );
    }

    #[test]
    fn like_wildcards_in_user_text_match_literally() {
        assert_eq!(like_literal("50%_a\\b"), "50\\%\\_a\\\\b");
        assert_eq!(like_literal("solar"), "solar");
    }
}
