//! `/plants/states`, `/plants/years`, `/plants/chart/{chart}` and `/plants/statistics`:
//! aggregates over the `egrid_plants` view (computed when read), cached like every plant
//! response (see `cache.rs`).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{Params, Segment};
use crate::state::Api;

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct StateSummary {
    pub state: String,
    pub plants: i64,
    pub generators: i64,
    pub net_generation_mwh: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StateList {
    pub data: Vec<StateSummary>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct YearSummary {
    pub year: i32,
    pub plants: i64,
    pub generators: i64,
    pub net_generation_mwh: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct YearList {
    pub data: Vec<YearSummary>,
}

/// A chart-ready series: `labels[i]` goes with `values[i]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Chart {
    #[schema(example = "by-state")]
    pub chart: String,
    #[schema(example = "Net generation by state, 2023")]
    pub title: String,
    #[schema(example = "MWh")]
    pub unit: String,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
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

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct YearFilter {
    #[param(minimum = 1990, maximum = 2100)]
    year: Option<i32>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ChartQuery {
    /// Data year (by-state, top-plants).
    #[param(minimum = 1990, maximum = 2100)]
    year: Option<i32>,
    /// Two-letter state code (by-year, top-plants).
    #[param(pattern = "^[A-Za-z]{2}$", example = "TX")]
    state: Option<String>,
}

/// States with their plant and generator counts and net generation.
#[utoipa::path(get, path = "/plants/states", tag = "plants", params(YearFilter),
    responses(
        (status = 200, description = "Every state, alphabetically", body = StateList),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
    ))]
pub async fn states(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["year"])?;
    let year = p.year()?;
    api.cached("/plants/states", &p, |pool| async move {
        let data = sqlx::query_as::<_, StateSummary>(
            "SELECT state, count(*) AS plants, sum(generators)::int8 AS generators,
                    sum(net_generation_mwh)::float8 AS net_generation_mwh
             FROM egrid_plants WHERE ($1::int4 IS NULL OR year = $1) GROUP BY state ORDER BY state",
        )
        .bind(year)
        .fetch_all(&pool)
        .await?;
        Ok(StateList { data })
    })
    .await
}

/// Data years with their plant and generator counts and net generation.
#[utoipa::path(get, path = "/plants/years", tag = "plants",
    responses(
        (status = 200, description = "Every data year, oldest first", body = YearList),
        (status = 400, description = "This endpoint takes no parameters", body = ErrorBody),
    ))]
pub async fn years(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &[])?;
    api.cached("/plants/years", &p, |pool| async move {
        let data = sqlx::query_as::<_, YearSummary>(
            "SELECT year, count(*) AS plants, sum(generators)::int8 AS generators,
                    sum(net_generation_mwh)::float8 AS net_generation_mwh
             FROM egrid_plants GROUP BY year ORDER BY year",
        )
        .fetch_all(&pool)
        .await?;
        Ok(YearList { data })
    })
    .await
}

/// A chart-ready series: `by-state` (net generation per state, optional `year`), `by-year`
/// (per year, optional `state`) or `top-plants` (the ten largest plants, optional `year`
/// and `state`).
#[utoipa::path(get, path = "/plants/chart/{chart}", tag = "plants",
    params(("chart" = String, Path, description = "by-state, by-year or top-plants", pattern = "^(by-state|by-year|top-plants)$"), ChartQuery),
    responses(
        (status = 200, description = "Labels and values, largest first (by-year: oldest first)", body = Chart),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
        (status = 404, description = "No such chart", body = ErrorBody),
    ))]
pub async fn chart(
    State(api): State<Arc<Api>>,
    Segment(chart): Segment,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let charts = ["by-state", "by-year", "top-plants"];
    let Some(chart) = charts.iter().find(|c| **c == chart).copied() else {
        return Err(ApiError::not_found(format!(
            "no chart {chart:?}; use one of {}",
            charts.join(", ")
        )));
    };
    let p = Params::parse(raw.as_deref(), &["year", "state"])?;
    let (year, state) = (p.year()?, p.state()?);
    let route = format!("/plants/chart/{chart}");
    api.cached(&route, &p, |pool| async move {
        let scope = match (year, &state) {
            (Some(y), Some(s)) => format!(", {s} {y}"),
            (Some(y), None) => format!(", {y}"),
            (None, Some(s)) => format!(", {s}"),
            (None, None) => String::new(),
        };
        let (title, sql) = match chart {
            "by-state" => (
                format!("Net generation by state{scope}"),
                "SELECT state, coalesce(sum(net_generation_mwh), 0)::float8 FROM egrid_plants
                 WHERE ($1::int4 IS NULL OR year = $1) AND ($2::text IS NULL OR state = $2)
                 GROUP BY state ORDER BY 2 DESC, 1",
            ),
            "by-year" => (
                format!("Net generation by year{scope}"),
                "SELECT year::text, coalesce(sum(net_generation_mwh), 0)::float8 FROM egrid_plants
                 WHERE ($1::int4 IS NULL OR year = $1) AND ($2::text IS NULL OR state = $2)
                 GROUP BY year ORDER BY year",
            ),
            _ => (
                format!("Largest plants by net generation{scope}"),
                "SELECT plant_name || ' (' || state || ', ' || year || ')', net_generation_mwh::float8
                 FROM egrid_plants
                 WHERE net_generation_mwh IS NOT NULL
                   AND ($1::int4 IS NULL OR year = $1) AND ($2::text IS NULL OR state = $2)
                 ORDER BY net_generation_mwh DESC, id LIMIT 10",
            ),
        };
        let rows: Vec<(String, f64)> = sqlx::query_as(sql).bind(year).bind(&state).fetch_all(&pool).await?;
        let (labels, values) = rows.into_iter().unzip();
        Ok(Chart {
            chart: chart.to_string(),
            title,
            unit: "MWh".into(),
            labels,
            values,
        })
    })
    .await
}

/// Headline numbers over every loaded eGRID file.
#[utoipa::path(get, path = "/plants/statistics", tag = "plants",
    responses(
        (status = 200, description = "Counts and totals", body = Statistics),
        (status = 400, description = "This endpoint takes no parameters", body = ErrorBody),
    ))]
pub async fn statistics(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &[])?;
    api.cached("/plants/statistics", &p, |pool| async move {
        let stats = sqlx::query_as::<_, Statistics>(
            "SELECT count(*) AS plants,
                    coalesce(sum(generators), 0)::int8 AS generators,
                    count(DISTINCT state) AS states,
                    count(DISTINCT year) AS years,
                    sum(net_generation_mwh)::float8 AS total_net_generation_mwh,
                    coalesce(sum(generators_negative), 0)::int8 AS generators_negative,
                    coalesce(sum(generators - generators_reported), 0)::int8 AS generators_unknown,
                    (SELECT max(finished_at) FROM ingest_files
                     WHERE dataset = 'egrid_generators' AND status IN ('done', 'done_with_errors')) AS last_load_at
             FROM egrid_plants",
        )
        .fetch_one(&pool)
        .await?;
        Ok(stats)
    })
    .await
}
