//! `/plants/top`, `/plants/search` and `/plants/{id}`: eGRID plants (generators grouped by
//! year, state and plant name), read from the `egrid_plants` view: computed when read, from
//! `egrid_generators` through its key index, so loading pays nothing for them. A file that is
//! loading shows the chunks it has committed so far. Responses are cached (see `cache.rs`);
//! the aggregates over all plants are in `summaries.rs`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{Params, Segment, like_literal, parse_id};
use crate::plant::Plant;
use crate::plant_index::Search;
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

const SORT_COLUMNS: &[&str] = &["net_generation_mwh", "plant_name", "state", "year", "generators"];

const PLANT_COLUMNS: &str = "id, year, state, plant_name, net_generation_mwh::float8 AS net_generation_mwh, generators";

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
            let (mut data, _) = index.search(&Search {
                q: None,
                year,
                state: state.as_deref(),
                min_mwh: None,
                max_mwh: None,
                sort: "net_generation_mwh",
                descending: true,
                offset: 0,
                limit: limit as usize,
            });
            // Unknown values sort last; the top lists known ones only.
            data.retain(|p| p.net_generation_mwh.is_some());
            return Ok(PlantList { data });
        }
        let sql = format!(
            "SELECT {PLANT_COLUMNS} FROM egrid_plants WHERE net_generation_mwh IS NOT NULL{}{}
             ORDER BY net_generation_mwh DESC, id LIMIT $3",
            if year.is_some() { " AND year = $1" } else { "" },
            if state.is_some() { " AND state = $2" } else { "" },
        );
        let data = sqlx::query_as::<_, Plant>(sqlx::AssertSqlSafe(sql))
            .bind(year)
            .bind(state)
            .bind(limit)
            .fetch_all(&pool)
            .await?;
        Ok(PlantList { data })
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
    let sort = p.choice("sort", SORT_COLUMNS)?.unwrap_or("net_generation_mwh");
    let order = p.choice("order", &["asc", "desc"])?.unwrap_or("desc");
    let page = p.page()?;
    // Free text makes the key space unbounded: those searches are answered from the
    // in-memory plant index instead of being kept.
    if q.is_some()
        && let Some(index) = api.plant_index().await?
    {
        let (data, total) = index.search(&Search {
            q: q.as_deref(),
            year,
            state: state.as_deref(),
            min_mwh: min,
            max_mwh: max,
            sort,
            descending: order == "desc",
            offset: page.offset() as usize,
            limit: page.per_page as usize,
        });
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
        let mut filters = Vec::new();
        if year.is_some() {
            filters.push("year = $1");
        }
        if state.is_some() {
            filters.push("state = $2");
        }
        if q.is_some() {
            filters.push("plant_name ILIKE $3");
        }
        if min.is_some() {
            filters.push("net_generation_mwh >= $4::numeric");
        }
        if max.is_some() {
            filters.push("net_generation_mwh <= $5::numeric");
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        };
        let pattern = q.map(|q| format!("%{}%", like_literal(&q)));
        // Every value is bound; only whitelisted words are formatted into the SQL.
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM egrid_plants{filter}"
        )))
        .bind(year)
        .bind(&state)
        .bind(&pattern)
        .bind(min)
        .bind(max)
        .fetch_one(&pool)
        .await?;
        let sql = format!(
            "SELECT {PLANT_COLUMNS} FROM egrid_plants{filter}
             ORDER BY {sort} {order} NULLS LAST, id LIMIT $6 OFFSET $7"
        );
        let data = sqlx::query_as::<_, Plant>(sqlx::AssertSqlSafe(sql))
            .bind(year)
            .bind(&state)
            .bind(&pattern)
            .bind(min)
            .bind(max)
            .bind(page.per_page)
            .bind(page.offset())
            .fetch_all(&pool)
            .await?;
        Ok(PlantPage {
            data,
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
            None => {
                sqlx::query_as::<_, Plant>(sqlx::AssertSqlSafe(format!(
                    "SELECT {PLANT_COLUMNS} FROM egrid_plants WHERE id = $1"
                )))
                .bind(id)
                .fetch_optional(&pool)
                .await?
            }
        }
        .ok_or_else(|| ApiError::not_found(format!("no plant has id {id}")))?;
        /// generator id, net generation, source file id and key, line, loaded at.
        type Row = (String, Option<f64>, i64, Option<String>, i64, DateTime<Utc>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT g.generator_id, g.net_generation_mwh::float8, g.source_file_id, f.key, g.source_line, g.loaded_at
             FROM egrid_generators g LEFT JOIN ingest_files f ON f.id = g.source_file_id
             WHERE g.year = $1 AND g.state = $2 AND g.plant_name = $3
             ORDER BY g.generator_id",
        )
        .bind(plant.year)
        .bind(&plant.state)
        .bind(&plant.plant_name)
        .fetch_all(&pool)
        .await?;
        let generators = rows
            .into_iter()
            .map(
                |(generator_id, net_generation_mwh, file_id, key, line, loaded_at)| Generator {
                    generator_id,
                    net_generation_mwh,
                    source: Lineage { file_id, key, line },
                    loaded_at,
                },
            )
            .collect();
        Ok(PlantDetail { plant, generators })
    })
    .await
}
