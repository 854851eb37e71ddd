//! `/files` and `/datasets`: the pipeline itself. Live data, never cached. (Alerts are in
//! `alerts.rs`.)

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use chrono::{DateTime, Utc};
use penstock_db::FileState;
pub use penstock_db::FileStatus as File;
use penstock_db::read::DatasetFiles;
pub use penstock_db::read::QuarantinedRow;
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{ID_MAX, Params, Segment, parse_id};
use crate::state::Api;

pub const FILE_STATUSES: &[&str] = &FileState::NAMES;

#[derive(Debug, Serialize, ToSchema)]
pub struct FilePage {
    pub data: Vec<File>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinePage {
    pub file_id: i64,
    pub data: Vec<QuarantinedRow>,
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
    /// Whether a file must have it (false: a file without it loads NULL there).
    pub required: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dataset {
    pub name: String,
    pub table: String,
    /// Objects whose key starts with this belong to the dataset.
    pub key_prefix: String,
    pub conflict_key: Vec<String>,
    pub columns: Vec<DatasetColumn>,
    /// What a file with columns the spec does not declare does: alert, rescue, ignore or
    /// reject (see each file's `new_columns`).
    pub on_new_columns: String,
    /// With `on_new_columns = "rescue"`: the jsonb column that keeps them.
    pub rescue_column: Option<String>,
    /// Which row stands when a key meets itself again: update (the later file version),
    /// keep (the earliest) or record (the later, and the replaced row in history).
    pub on_conflict: String,
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
    status: Option<FileState>,
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

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 10000)]
    page: Option<i32>,
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i32>,
}

/// File versions, newest first.
#[utoipa::path(get, path = "/files", tag = "pipeline", params(FilesQuery),
    responses(
        (status = 200, description = "One page of files, newest first", body = FilePage),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
    ))]
pub async fn files(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<FilePage>> {
    let p = Params::parse(raw.as_deref(), &["status", "dataset", "page", "per_page"])?;
    let status = p.choice("status", FILE_STATUSES)?.and_then(FileState::parse);
    let names: Vec<&str> = api.datasets.iter().map(|d| d.name.as_str()).collect();
    let dataset = p.choice("dataset", &names)?;
    let page = p.page()?;
    let (files, total) =
        penstock_db::read::everywhere::files_page(&api.dbs, status, dataset, page.per_page, page.offset()).await?;
    Ok(Json(FilePage {
        data: files,
        total,
        page: page.page,
        per_page: page.per_page,
    }))
}

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
    penstock_db::read::everywhere::file_row(&api.dbs, id)
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
    let (rows, total) =
        penstock_db::read::everywhere::quarantined_page(&api.dbs, id, page.per_page, page.offset()).await?;
    Ok(Json(QuarantinePage {
        file_id: file.id,
        data: rows,
        total,
        page: page.page,
        per_page: page.per_page,
    }))
}

/// One row of a diff: its conflict key and, per column, its value in each file version.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffRow {
    #[schema(value_type = Object)]
    pub key: serde_json::Map<String, serde_json::Value>,
    /// Column → `{"old": …, "new": …}`; a changed row lists only the columns that differ,
    /// an added or absent row every column (the missing side null).
    #[schema(value_type = Object)]
    pub columns: serde_json::Map<String, serde_json::Value>,
}

/// What changed from file version `against` to file version `id`, by conflict key.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileDiff {
    pub dataset: String,
    /// The older side (`against`) and the newer one (`id`).
    pub from: i64,
    pub to: i64,
    pub added_total: i64,
    pub changed_total: i64,
    pub absent_total: i64,
    pub unchanged: i64,
    /// False when some of a side's rows are no longer known (replaced, and the dataset's
    /// on_conflict is not "record"); `note` says which.
    pub complete: bool,
    pub note: Option<String>,
    /// At most `limit` rows of each kind, by key.
    pub added: Vec<DiffRow>,
    pub changed: Vec<DiffRow>,
    pub absent: Vec<DiffRow>,
}

impl FileDiff {
    /// The API's form of a diff of `dataset` from `from` to `to`.
    pub fn new(dataset: &str, from: i64, to: i64, diff: penstock_db::read::Diff) -> FileDiff {
        let rows = |rows: Vec<penstock_db::read::DiffRow>| {
            rows.into_iter()
                .map(|r| DiffRow {
                    key: r.key,
                    columns: r
                        .columns
                        .into_iter()
                        .map(|(c, (old, new))| (c, serde_json::json!({ "old": old, "new": new })))
                        .collect(),
                })
                .collect()
        };
        FileDiff {
            dataset: dataset.to_string(),
            from,
            to,
            added_total: diff.added_total as i64,
            changed_total: diff.changed_total as i64,
            absent_total: diff.absent_total as i64,
            unchanged: diff.unchanged as i64,
            complete: diff.complete,
            note: diff.note,
            added: rows(diff.added),
            changed: rows(diff.changed),
            absent: rows(diff.absent),
        }
    }
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DiffQuery {
    /// The file version to compare with (the older side), of the same dataset.
    #[param(minimum = 0)]
    against: i64,
    /// Rows listed of each kind (the totals count them all).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i32>,
}

/// The rows added, changed (old → new values) and absent from file version `against` to
/// file version `id`.
#[utoipa::path(get, path = "/files/{id}/diff", tag = "pipeline",
    params(("id" = i64, Path, description = "File id (the newer side)", minimum = 0), DiffQuery),
    responses(
        (status = 200, description = "The diff, by conflict key", body = FileDiff),
        (status = 400, description = "A parameter is invalid, or the files are of different datasets", body = ErrorBody),
        (status = 404, description = "No file has this id", body = ErrorBody),
    ))]
pub async fn file_diff(
    State(api): State<Arc<Api>>,
    Segment(id): Segment,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<FileDiff>> {
    let p = Params::parse(raw.as_deref(), &["against", "limit"])?;
    let id = parse_id(&id, "file id", ID_MAX)?;
    let against = p
        .int("against", 0, ID_MAX)?
        .ok_or_else(|| ApiError::bad_parameter("against is required: the id of the file version to compare with"))?;
    let limit = p.int("limit", 1, 1000)?.unwrap_or(100) as usize;
    let (to, from) = (find_file(&api, id).await?, find_file(&api, against).await?);
    if to.dataset != from.dataset {
        return Err(ApiError::bad_parameter(format!(
            "file {id} is of dataset {} and file {against} of {}: a diff compares versions of one dataset",
            to.dataset, from.dataset
        )));
    }
    let spec = api
        .datasets
        .iter()
        .find(|d| d.name == to.dataset)
        .ok_or_else(|| ApiError::not_found(format!("dataset {:?} is not configured", to.dataset)))?;
    let diff = penstock_db::read::diff(api.dbs.for_file(id), spec, against, id, limit).await?;
    Ok(Json(FileDiff::new(&spec.name, against, id, diff)))
}

/// The configured datasets with their files and row counts.
#[utoipa::path(get, path = "/datasets", tag = "pipeline",
    responses(
        (status = 200, description = "Every configured dataset", body = DatasetList),
        (status = 400, description = "This endpoint takes no parameters", body = ErrorBody),
    ))]
pub async fn datasets(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<DatasetList>> {
    Params::parse(raw.as_deref(), &[])?;
    let counts: Vec<DatasetFiles> = penstock_db::read::everywhere::dataset_files(&api.dbs).await?;
    let data = api
        .datasets
        .iter()
        .map(|spec| {
            let mine: Vec<_> = counts.iter().filter(|c| c.dataset == spec.name).collect();
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
                        required: c.required,
                    })
                    .collect(),
                on_new_columns: spec.on_new_columns.as_str().to_string(),
                rescue_column: spec.rescue().map(str::to_string),
                on_conflict: spec.on_conflict.as_str().to_string(),
                files: mine.iter().map(|c| (c.status.to_string(), c.files)).collect(),
                rows_loaded: mine.iter().map(|c| c.rows_loaded).sum(),
                rows_quarantined: mine.iter().map(|c| c.rows_quarantined).sum(),
                last_finished_at: mine.iter().filter_map(|c| c.last_finished_at).max(),
            }
        })
        .collect();
    Ok(Json(DatasetList { data }))
}
