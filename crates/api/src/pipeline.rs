//! `/files`, `/alerts`, `/datasets`: the pipeline itself. Live data, never cached.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::parse_id;
use crate::params::{Params, Segment};
use crate::state::Api;

pub const FILE_STATUSES: &[&str] = &penstock_db::FileState::NAMES;
pub const SEVERITIES: &[&str] = &["info", "warning", "error", "critical"];
pub const ALERT_STATUSES: &[&str] = &["active", "acknowledged", "resolved"];

/// One file version in the ingest ledger.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct File {
    pub id: i64,
    /// The store it was found in (a folder path or s3://bucket).
    pub store: String,
    /// Object key.
    pub key: String,
    /// ETag (S3) or sha256 (local folder) of the bytes.
    pub version: String,
    pub dataset: String,
    pub size_bytes: i64,
    #[schema(inline, value_type = FileStatusName)]
    pub status: String,
    /// Why the file was rejected or failed.
    pub reason: Option<String>,
    pub chunks_total: Option<i32>,
    pub chunks_done: i32,
    /// Share of chunks loaded, 0 to 1 (1 for a finished file).
    pub progress: f64,
    /// Data records in the file (known once it is chunked).
    pub records_total: Option<i64>,
    pub rows_loaded: i64,
    pub rows_quarantined: i64,
    /// Rows replaced by a later row with the same key in the same file.
    pub rows_superseded: i64,
    pub discovered_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// From start to finish (or to now, while loading), seconds.
    pub duration_seconds: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FilePage {
    pub data: Vec<File>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// A quarantined record: what was wrong and the raw text, to fix and drop again; or a
/// dead-lettered work item that named the file (no line; after the records).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct QuarantinedRow {
    /// Physical line where the record starts (header lines counted, 1-based); null for a
    /// dead-lettered work item.
    pub line: Option<i64>,
    /// The column at fault, when one is.
    pub column: Option<String>,
    pub raw: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinePage {
    pub file_id: i64,
    pub data: Vec<QuarantinedRow>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Alert {
    pub id: i64,
    #[schema(inline, value_type = SeverityName)]
    pub severity: String,
    #[schema(inline, value_type = AlertStatusName)]
    pub status: String,
    /// The role that raised it.
    pub source: String,
    pub message: String,
    pub metadata: serde_json::Value,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How many times the same problem was reported.
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    pub data: Vec<Alert>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetColumn {
    pub name: String,
    /// The CSV header it is read from.
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub nullable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dataset {
    pub name: String,
    pub table: String,
    /// Objects whose key starts with this belong to the dataset.
    pub key_prefix: String,
    pub conflict_key: Vec<String>,
    pub columns: Vec<DatasetColumn>,
    /// File versions seen, by status.
    pub files: std::collections::BTreeMap<String, i64>,
    pub rows_loaded: i64,
    pub rows_quarantined: i64,
    pub last_finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    pub data: Vec<Dataset>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FilesQuery {
    #[param(inline)]
    status: Option<FileStatusName>,
    /// A configured dataset name (see /datasets).
    // The served document lists the names (`document_dataset_names`); this is their shape.
    #[param(pattern = "^[a-z_][a-z0-9_]{0,62}$")]
    dataset: Option<String>,
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i32>,
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i32>,
}

/// Lists the configured dataset names as the only values of `GET /files?dataset=`, which
/// refuses any other name with a 400: the annotation can give only their shape, since the
/// names come from the configuration.
pub fn document_dataset_names(doc: &mut OpenApi, names: &[&str]) {
    if names.is_empty() {
        return;
    }
    let parameters = doc
        .paths
        .paths
        .get_mut("/files")
        .and_then(|item| item.get.as_mut())
        .and_then(|operation| operation.parameters.as_mut());
    for parameter in parameters.into_iter().flatten() {
        if let RefOr::T(parameter) = parameter
            && parameter.name == "dataset"
        {
            let names = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names.iter().copied()));
            parameter.schema = Some(names.into());
        }
    }
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum FileStatusName {
    Discovered,
    Chunking,
    Loading,
    Done,
    DoneWithErrors,
    Rejected,
    Failed,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i32>,
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i32>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AlertsQuery {
    #[param(inline)]
    severity: Option<SeverityName>,
    #[param(inline)]
    status: Option<AlertStatusName>,
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i32>,
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i32>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SeverityName {
    Info,
    Warning,
    Error,
    Critical,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AlertStatusName {
    Active,
    Acknowledged,
    Resolved,
}

const FILE_SELECT: &str =
    "SELECT id, store, key, version, dataset, size_bytes, status, reason, chunks_total, chunks_done,
    CASE WHEN status IN ('done', 'done_with_errors') THEN 1.0::float8
         WHEN coalesce(chunks_total, 0) = 0 THEN 0.0::float8
         ELSE chunks_done::float8 / chunks_total END AS progress,
    records_total, rows_loaded, rows_quarantined, rows_superseded, discovered_at, started_at, finished_at,
    extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8 AS duration_seconds
    FROM ingest_files";

/// File versions, newest first.
#[utoipa::path(get, path = "/files", tag = "pipeline", params(FilesQuery),
    responses(
        (status = 200, description = "One page of files, newest first", body = FilePage),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
    ))]
pub async fn files(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<FilePage>> {
    let p = Params::parse(raw.as_deref(), &["status", "dataset", "page", "per_page"])?;
    let status = p.choice("status", FILE_STATUSES)?;
    let names: Vec<&str> = api.datasets.iter().map(|d| d.name.as_str()).collect();
    let dataset = p.choice("dataset", &names)?;
    let page = p.page()?;
    let filter = "WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR dataset = $2)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM ingest_files {filter}"
    )))
    .bind(status)
    .bind(dataset)
    .fetch_one(&api.pool)
    .await?;
    let data = sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(format!(
        "{FILE_SELECT} {filter} ORDER BY id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(status)
    .bind(dataset)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(&api.pool)
    .await?;
    Ok(Json(FilePage {
        data,
        total,
        page: page.page,
        per_page: page.per_page,
    }))
}

const ID_MAX: i64 = i64::MAX;

/// One file version: status, progress, counts, timings and the reason it failed.
#[utoipa::path(get, path = "/files/{id}", tag = "pipeline",
    params(("id" = i64, Path, description = "File id", minimum = 0)),
    responses(
        (status = 200, description = "The file", body = File),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No file has this id", body = ErrorBody),
    ))]
pub async fn file(State(api): State<Arc<Api>>, Segment(id): Segment, RawQuery(raw): RawQuery) -> ApiResult<Json<File>> {
    Params::parse(raw.as_deref(), &[])?;
    let id = parse_id(&id, "file id", ID_MAX)?;
    Ok(Json(find_file(&api, id).await?))
}

async fn find_file(api: &Api, id: i64) -> ApiResult<File> {
    sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(format!("{FILE_SELECT} WHERE id = $1")))
        .bind(id)
        .fetch_optional(&api.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no file has id {id}; GET /files lists them")))
}

/// A file's quarantined records, by line.
#[utoipa::path(get, path = "/files/{id}/errors", tag = "pipeline",
    params(("id" = i64, Path, description = "File id", minimum = 0), PageQuery),
    responses(
        (status = 200, description = "One page of quarantined records, by line", body = QuarantinePage),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
        (status = 404, description = "No file has this id", body = ErrorBody),
    ))]
pub async fn file_errors(
    State(api): State<Arc<Api>>,
    Segment(id): Segment,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<QuarantinePage>> {
    let p = Params::parse(raw.as_deref(), &["page", "per_page"])?;
    let id = parse_id(&id, "file id", ID_MAX)?;
    let page = p.page()?;
    let file = find_file(&api, id).await?;
    let data = sqlx::query_as::<_, QuarantinedRow>(
        "SELECT line, column_name AS column, raw, reason FROM ingest_errors WHERE file_id = $1
         ORDER BY line LIMIT $2 OFFSET $3",
    )
    .bind(id)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(&api.pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM ingest_errors WHERE file_id = $1")
        .bind(id)
        .fetch_one(&api.pool)
        .await?;
    Ok(Json(QuarantinePage {
        file_id: file.id,
        data,
        total,
        page: page.page,
        per_page: page.per_page,
    }))
}

const ALERT_COLUMNS: &str = "id, severity, status, source, message, metadata, first_seen, last_seen, count";

/// Alerts, most recently seen first.
#[utoipa::path(get, path = "/alerts", tag = "alerts", params(AlertsQuery),
    responses(
        (status = 200, description = "One page of alerts, most recently seen first", body = AlertPage),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
    ))]
pub async fn alerts(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<AlertPage>> {
    let p = Params::parse(raw.as_deref(), &["severity", "status", "page", "per_page"])?;
    let severity = p.choice("severity", SEVERITIES)?;
    let status = p.choice("status", ALERT_STATUSES)?;
    let page = p.page()?;
    let filter = "WHERE ($1::text IS NULL OR severity = $1) AND ($2::text IS NULL OR status = $2)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM alerts {filter}")))
        .bind(severity)
        .bind(status)
        .fetch_one(&api.pool)
        .await?;
    let data = sqlx::query_as::<_, Alert>(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts {filter} ORDER BY last_seen DESC, id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(severity)
    .bind(status)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(&api.pool)
    .await?;
    Ok(Json(AlertPage {
        data,
        total,
        page: page.page,
        per_page: page.per_page,
    }))
}

/// Marks an active alert as seen by someone. Needs `Authorization: Bearer <PENSTOCK_ADMIN_TOKEN>`.
#[utoipa::path(post, path = "/alerts/{id}/acknowledge", tag = "alerts",
    params(("id" = i64, Path, description = "Alert id", minimum = 0)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The alert, now acknowledged (or already)", body = Alert),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 401, description = "No bearer token was sent", body = ErrorBody),
        (status = 403, description = "The token is wrong, or alert actions are disabled (no PENSTOCK_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No alert has this id", body = ErrorBody),
        (status = 409, description = "The alert is resolved already", body = ErrorBody),
    ))]
pub async fn acknowledge(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Segment(id): Segment,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Alert>> {
    let (id, updated) = alert_action(&api, &headers, &id, raw.as_deref(), "acknowledged", "status = 'active'").await?;
    if let Some(alert) = updated {
        return Ok(Json(alert));
    }
    let alert = find_alert(&api, id).await?;
    if alert.status == "resolved" {
        return Err(ApiError::conflict(format!(
            "alert {id} is resolved already; a new occurrence of the problem opens a new alert"
        )));
    }
    Ok(Json(alert))
}

/// Closes an alert: the problem is fixed; if it happens again, a new alert opens. Needs
/// `Authorization: Bearer <PENSTOCK_ADMIN_TOKEN>`.
#[utoipa::path(post, path = "/alerts/{id}/resolve", tag = "alerts",
    params(("id" = i64, Path, description = "Alert id", minimum = 0)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The alert, now resolved (or already)", body = Alert),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 401, description = "No bearer token was sent", body = ErrorBody),
        (status = 403, description = "The token is wrong, or alert actions are disabled (no PENSTOCK_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No alert has this id", body = ErrorBody),
    ))]
pub async fn resolve(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Segment(id): Segment,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Alert>> {
    let (id, updated) = alert_action(&api, &headers, &id, raw.as_deref(), "resolved", "status <> 'resolved'").await?;
    match updated {
        Some(alert) => Ok(Json(alert)),
        None => Ok(Json(find_alert(&api, id).await?)),
    }
}

/// Authorises an alert action, validates the request and moves the alert to `to` if it is
/// in a state `from` allows; returns the id and the updated alert (None: not moved).
async fn alert_action(
    api: &Api,
    headers: &HeaderMap,
    id: &str,
    raw: Option<&str>,
    to: &'static str,
    from: &'static str,
) -> ApiResult<(i64, Option<Alert>)> {
    api.authorize(headers)?;
    Params::parse(raw, &[])?;
    let id = parse_id(id, "alert id", ID_MAX)?;
    let updated = sqlx::query_as::<_, Alert>(sqlx::AssertSqlSafe(format!(
        "UPDATE alerts SET status = '{to}' WHERE id = $1 AND {from} RETURNING {ALERT_COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&api.pool)
    .await?;
    if updated.is_some() {
        tracing::info!(alert = id, status = to, "alert changed by an operator");
    }
    Ok((id, updated))
}

async fn find_alert(api: &Api, id: i64) -> ApiResult<Alert> {
    sqlx::query_as::<_, Alert>(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&api.pool)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no alert has id {id}; GET /alerts lists them")))
}

/// The configured datasets with their files and row counts.
#[utoipa::path(get, path = "/datasets", tag = "pipeline",
    responses(
        (status = 200, description = "Every configured dataset", body = DatasetList),
        (status = 400, description = "This endpoint takes no parameters", body = ErrorBody),
    ))]
pub async fn datasets(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<DatasetList>> {
    Params::parse(raw.as_deref(), &[])?;
    /// dataset, status, files, rows loaded, rows quarantined, last finished.
    type Counts = (String, String, i64, i64, i64, Option<DateTime<Utc>>);
    let counts: Vec<Counts> = sqlx::query_as(
        "SELECT dataset, status, count(*), sum(rows_loaded)::int8, sum(rows_quarantined)::int8, max(finished_at)
         FROM ingest_files GROUP BY dataset, status",
    )
    .fetch_all(&api.pool)
    .await?;
    let data = api
        .datasets
        .iter()
        .map(|spec| {
            let mine: Vec<_> = counts.iter().filter(|c| c.0 == spec.name).collect();
            Dataset {
                name: spec.name.clone(),
                table: spec.table().to_string(),
                key_prefix: spec.key_prefix.clone(),
                conflict_key: spec.conflict_key.clone(),
                columns: spec
                    .columns
                    .iter()
                    .map(|c| DatasetColumn {
                        name: c.name.clone(),
                        source: c.source.clone(),
                        ty: c.ty.name().to_string(),
                        nullable: c.nullable,
                    })
                    .collect(),
                files: mine.iter().map(|c| (c.1.clone(), c.2)).collect(),
                rows_loaded: mine.iter().map(|c| c.3).sum(),
                rows_quarantined: mine.iter().map(|c| c.4).sum(),
                last_finished_at: mine.iter().filter_map(|c| c.5).max(),
            }
        })
        .collect();
    Ok(Json(DatasetList { data }))
}
