//! `/plants/top`, `/plants/search` and `/plants/{id}`: eGRID plants (generators grouped by
//! year, state and plant name), read from the `egrid_plants` view: computed when read, from
//! `egrid_generators` through its key index, so loading pays nothing for them. A file that is
//! loading shows the chunks it has committed so far. Responses are cached (see `cache.rs`);
//! the aggregates over all plants are in `summaries.rs`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use penstock_db::read::{PLANT_SORT_COLUMNS, PlantSearch};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{Params, Segment, parse_id};
use crate::plant::Plant;
use crate::state::Api;

#[derive(Debug, Serialize, ToSchema)]
pub struct PlantList {
    pub data: Vec<Plant>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlantPage {
    pub data: Vec<Plant>,
    /// Plants matching the filters, over all pages.
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Where a row came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lineage {
    pub file_id: i64,
    /// The object key of that file.
    pub key: Option<String>,
    /// Physical line in the file (header lines counted).
    pub line: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Generator {
    pub generator_id: String,
    pub net_generation_mwh: Option<f64>,
    pub source: Lineage,
    pub loaded_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlantDetail {
    pub plant: Plant,
    /// The plant's generators, by generator id.
    pub generators: Vec<Generator>,
}

/// Filters of `/plants/top`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TopQuery {
    /// Data year.
    #[param(minimum = 1990, maximum = 2100)]
    year: Option<i32>,
    /// Two-letter state code (any case).
    #[param(pattern = "^[A-Za-z]{2}$", example = "TX")]
    state: Option<String>,
    /// How many plants (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i32>,
}

/// Filters, sorting and paging of `/plants/search`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SearchQuery {
    /// Part of the plant name, case-insensitive.
    #[param(min_length = 1, max_length = 100, pattern = "^[^\\x00]*$", example = "solar")]
    q: Option<String>,
    #[param(pattern = "^[A-Za-z]{2}$", example = "TX")]
    state: Option<String>,
    #[param(minimum = 1990, maximum = 2100)]
    year: Option<i32>,
    /// Lowest plant net generation, MWh; not above max_mwh (a 400 says to swap them).
    #[param(minimum = -1e15, maximum = 1e15)]
    min_mwh: Option<f64>,
    /// Highest plant net generation, MWh; not below min_mwh.
    #[param(minimum = -1e15, maximum = 1e15)]
    max_mwh: Option<f64>,
    /// Sort column (default net_generation_mwh).
    #[param(inline)]
    sort: Option<SortColumn>,
    /// Sort direction (default desc).
    #[param(inline)]
    order: Option<SortOrder>,
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i32>,
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i32>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SortColumn {
    NetGenerationMwh,
    PlantName,
    State,
    Year,
    Generators,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SortOrder {
    Asc,
    Desc,
}

/// Plants by net generation, highest first.
#[utoipa::path(get, path = "/plants/top", tag = "plants", params(TopQuery),
    responses(
        (status = 200, description = "The plants, highest net generation first", body = PlantList),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
    ))]
pub async fn top(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &["year", "state", "limit"])?;
    let (year, state, limit) = (p.year()?, p.state()?, p.int("limit", 1, 100)?.unwrap_or(10));
    // A miss is computed from the in-memory plant index when it can be had: each year,
    // state and limit is a key of its own, and aggregating the generators again per key
    // would cost ~30 ms each.
    let source = api.clone();
    api.cached("/plants/top", &p, |pool| async move {
        if let Some(index) = source.plant_index().await? {
            let (mut data, _) = index.search(&PlantSearch {
                name: None,
                year,
                state: state.as_deref(),
                min_mwh: None,
                max_mwh: None,
                sort: "net_generation_mwh",
                descending: true,
                limit,
                offset: 0,
            });
            // Unknown values sort last; the top lists known ones only.
            data.retain(|p| p.net_generation_mwh.is_some());
            return Ok(PlantList { data });
        }
        let plants = penstock_db::read::top_plants(&pool, year, state.as_deref(), limit).await?;
        Ok(PlantList {
            data: plants.into_iter().map(Plant::from).collect(),
        })
    })
    .await
}

/// Searches plants by name with filters, sorting and pages.
#[utoipa::path(get, path = "/plants/search", tag = "plants", params(SearchQuery),
    responses(
        (status = 200, description = "One page of matching plants", body = PlantPage),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
    ))]
pub async fn search(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(
        raw.as_deref(),
        &[
            "q", "state", "year", "min_mwh", "max_mwh", "sort", "order", "page", "per_page",
        ],
    )?;
    let q = p.text("q", 100)?;
    let (state, year) = (p.state()?, p.year()?);
    let (min, max) = (p.number("min_mwh")?, p.number("max_mwh")?);
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(ApiError::bad_parameter(format!(
            "min_mwh ({min}) is greater than max_mwh ({max}); swap them"
        )));
    }
    let sort = p.choice("sort", &PLANT_SORT_COLUMNS)?.unwrap_or("net_generation_mwh");
    let order = p.choice("order", &["asc", "desc"])?.unwrap_or("desc");
    let page = p.page()?;
    let search = PlantSearch {
        name: q.as_deref(),
        year,
        state: state.as_deref(),
        min_mwh: min,
        max_mwh: max,
        sort,
        descending: order == "desc",
        limit: page.per_page,
        offset: page.offset(),
    };
    // Free text makes the key space unbounded: those searches are answered from the
    // in-memory plant index instead of being kept.
    if q.is_some()
        && let Some(index) = api.plant_index().await?
    {
        let (data, total) = index.search(&search);
        return Ok(crate::state::json_response(
            &PlantPage {
                data,
                total,
                page: page.page,
                per_page: page.per_page,
            },
            "index",
        ));
    }
    api.cached_if(q.is_none(), "/plants/search", &p, |pool| async move {
        let (plants, total) = penstock_db::read::search_plants(&pool, &search).await?;
        Ok(PlantPage {
            data: plants.into_iter().map(Plant::from).collect(),
            total,
            page: page.page,
            per_page: page.per_page,
        })
    })
    .await
}

/// One plant with its generators and where each came from.
#[utoipa::path(get, path = "/plants/{id}", tag = "plants",
    params(("id" = i64, Path, description = "Plant id (from /plants/top or /plants/search)", minimum = 0, maximum = 4503599627370495_i64)),
    responses(
        (status = 200, description = "The plant and its generators", body = PlantDetail),
        (status = 400, description = "The id is not a plant id", body = ErrorBody),
        (status = 404, description = "No plant has this id", body = ErrorBody),
    ))]
pub async fn plant(State(api): State<Arc<Api>>, Segment(id): Segment, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(raw.as_deref(), &[])?;
    let id = parse_id(&id, "plant id", (1 << 52) - 1)?;
    let route = format!("/plants/{id}");
    let source = api.clone();
    api.cached(&route, &p, |pool| async move {
        // The index knows which plant an id is; without it, the view is searched by id (a
        // scan: ids are hashes of the grouping columns).
        let plant = match source.plant_index().await? {
            Some(index) => index.plant(id).cloned(),
            None => penstock_db::read::plant(&pool, id).await?.map(Plant::from),
        }
        .ok_or_else(|| ApiError::not_found(format!("no plant has id {id}")))?;
        let generators = penstock_db::read::generators(&pool, plant.year, &plant.state, &plant.plant_name)
            .await?
            .into_iter()
            .map(|g| Generator {
                generator_id: g.generator_id,
                net_generation_mwh: g.net_generation_mwh,
                source: Lineage {
                    file_id: g.source_file_id,
                    key: g.key,
                    line: g.source_line,
                },
                loaded_at: g.loaded_at,
            })
            .collect();
        Ok(PlantDetail { plant, generators })
    })
    .await
}
