//! `/plants/states`, `/plants/years`, `/plants/chart/{chart}` and `/plants/statistics`:
//! aggregates over the `egrid_plants` view (computed when read), cached like every plant
//! response (see `cache.rs`).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
pub use penstock_db::read::Statistics;
use penstock_db::read::{ChartSeries, Summary};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{Params, Segment};
use crate::state::Api;

#[derive(Debug, Serialize, ToSchema)]
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

#[derive(Debug, Serialize, ToSchema)]
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
        let data = penstock_db::read::states(&pool, year).await?;
        Ok(StateList {
            data: data.into_iter().map(StateSummary::from).collect(),
        })
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
        let data = penstock_db::read::years(&pool).await?;
        Ok(YearList {
            data: data.into_iter().map(YearSummary::from).collect(),
        })
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
    let charts = [
        ("by-state", ChartSeries::ByState),
        ("by-year", ChartSeries::ByYear),
        ("top-plants", ChartSeries::TopPlants),
    ];
    let Some((chart, series)) = charts.iter().find(|(name, _)| *name == chart).copied() else {
        return Err(ApiError::not_found(format!(
            "no chart {chart:?}; use one of {}",
            charts.map(|(name, _)| name).join(", ")
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
        let title = match series {
            ChartSeries::ByState => format!("Net generation by state{scope}"),
            ChartSeries::ByYear => format!("Net generation by year{scope}"),
            ChartSeries::TopPlants => format!("Largest plants by net generation{scope}"),
        };
        let points = penstock_db::read::chart(&pool, series, year, state.as_deref()).await?;
        let (labels, values) = points.into_iter().map(|p| (p.label, p.value)).unzip();
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
        Ok(penstock_db::read::statistics(&pool).await?)
    })
    .await
}

impl From<Summary<String>> for StateSummary {
    fn from(s: Summary<String>) -> StateSummary {
        StateSummary {
            state: s.key,
            plants: s.plants,
            generators: s.generators,
            net_generation_mwh: s.net_generation_mwh,
        }
    }
}

impl From<Summary<i32>> for YearSummary {
    fn from(s: Summary<i32>) -> YearSummary {
        YearSummary {
            year: s.key,
            plants: s.plants,
            generators: s.generators,
            net_generation_mwh: s.net_generation_mwh,
        }
    }
}
