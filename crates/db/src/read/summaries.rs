//! Aggregates over every eGRID plant (the `egrid_plants` view): per state, per year, chart
//! series and headline statistics. All checked at compile time.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::DbError;

/// Plants, generators and net generation of one state (or one year: `key` is the year).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary<K> {
    pub key: K,
    pub plants: i64,
    pub generators: i64,
    pub net_generation_mwh: Option<f64>,
}

/// Every state, alphabetically, optionally for one year.
pub async fn states(pool: &PgPool, year: Option<i32>) -> Result<Vec<Summary<String>>, DbError> {
    Ok(sqlx::query_as!(
        Summary::<String>,
        r#"SELECT state AS "key!", count(*) AS "plants!", sum(generators)::int8 AS "generators!",
                    sum(net_generation_mwh)::float8 AS net_generation_mwh
             FROM egrid_plants WHERE ($1::int4 IS NULL OR year = $1) GROUP BY state ORDER BY state"#,
        year
    )
    .fetch_all(pool)
    .await?)
}

/// Every data year, oldest first.
pub async fn years(pool: &PgPool) -> Result<Vec<Summary<i32>>, DbError> {
    Ok(sqlx::query_as!(
        Summary::<i32>,
        r#"SELECT year AS "key!", count(*) AS "plants!", sum(generators)::int8 AS "generators!",
                    sum(net_generation_mwh)::float8 AS net_generation_mwh
             FROM egrid_plants GROUP BY year ORDER BY year"#
    )
    .fetch_all(pool)
    .await?)
}

/// Which series a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartSeries {
    /// Net generation per state, largest first.
    ByState,
    /// Net generation per year, oldest first.
    ByYear,
    /// The ten largest plants.
    TopPlants,
}

/// One label and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPoint {
    pub label: String,
    pub value: f64,
}

/// A chart's points, optionally for one year and one state.
pub async fn chart(
    pool: &PgPool,
    series: ChartSeries,
    year: Option<i32>,
    state: Option<&str>,
) -> Result<Vec<ChartPoint>, DbError> {
    let points = match series {
        ChartSeries::ByState => {
            sqlx::query_as!(
                ChartPoint,
                r#"SELECT state AS "label!", coalesce(sum(net_generation_mwh), 0)::float8 AS "value!" FROM egrid_plants
                 WHERE ($1::int4 IS NULL OR year = $1) AND ($2::text IS NULL OR state = $2)
                 GROUP BY state ORDER BY 2 DESC, 1"#,
                year,
                state
            )
            .fetch_all(pool)
            .await?
        }
        ChartSeries::ByYear => {
            sqlx::query_as!(
                ChartPoint,
                r#"SELECT year::text AS "label!", coalesce(sum(net_generation_mwh), 0)::float8 AS "value!" FROM egrid_plants
                 WHERE ($1::int4 IS NULL OR year = $1) AND ($2::text IS NULL OR state = $2)
                 GROUP BY year ORDER BY year"#,
                year,
                state
            )
            .fetch_all(pool)
            .await?
        }
        ChartSeries::TopPlants => {
            sqlx::query_as!(
                ChartPoint,
                r#"SELECT plant_name || ' (' || state || ', ' || year || ')' AS "label!", net_generation_mwh::float8 AS "value!"
                 FROM egrid_plants
                 WHERE net_generation_mwh IS NOT NULL
                   AND ($1::int4 IS NULL OR year = $1) AND ($2::text IS NULL OR state = $2)
                 ORDER BY net_generation_mwh DESC, id LIMIT 10"#,
                year,
                state
            )
            .fetch_all(pool)
            .await?
        }
    };
    Ok(points)
}

// Headline numbers over every loaded eGRID plant (`/plants/statistics`; a plain comment, as
// the schema has no description).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Statistics {
    pub plants: i64,
    pub generators: i64,
    pub states: i64,
    pub years: i64,
    /// Sum of every known generator value, MWh.
    pub total_net_generation_mwh: Option<f64>,
    /// Generators that consumed more than they produced.
    pub generators_negative: i64,
    /// Generators whose net generation the file left blank.
    pub generators_unknown: i64,
    /// When the last eGRID file finished loading.
    pub last_load_at: Option<DateTime<Utc>>,
}

/// The headline numbers.
pub async fn statistics(pool: &PgPool) -> Result<Statistics, DbError> {
    Ok(sqlx::query_as!(
        Statistics,
        r#"SELECT count(*) AS "plants!",
                    coalesce(sum(generators), 0)::int8 AS "generators!",
                    count(DISTINCT state) AS "states!",
                    count(DISTINCT year) AS "years!",
                    sum(net_generation_mwh)::float8 AS total_net_generation_mwh,
                    coalesce(sum(generators_negative), 0)::int8 AS "generators_negative!",
                    coalesce(sum(generators - generators_reported), 0)::int8 AS "generators_unknown!",
                    (SELECT max(finished_at) FROM ingest_files
                     WHERE dataset = 'egrid_generators' AND status IN ('done', 'done_with_errors')) AS last_load_at
             FROM egrid_plants"#
    )
    .fetch_one(pool)
    .await?)
}
