//! `/alerts`: the problems the fleet reported, and the operator's acknowledge and resolve
//! (behind the admin token). Live data, never cached.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use penstock_db::{AlertAction, AlertRow};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{ID_MAX, Params, Segment, parse_id};
use crate::state::Api;

pub const SEVERITIES: &[&str] = &["info", "warning", "error", "critical"];
pub const ALERT_STATUSES: &[&str] = &["active", "acknowledged", "resolved"];

#[derive(Debug, Serialize, ToSchema)]
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
    let (alerts, total) = penstock_db::alerts_page(&api.pool, severity, status, page.per_page, page.offset()).await?;
    Ok(Json(AlertPage {
        data: alerts.into_iter().map(Alert::from).collect(),
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
    let (id, updated) = alert_action(&api, &headers, &id, raw.as_deref(), AlertAction::Acknowledge).await?;
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
    let (id, updated) = alert_action(&api, &headers, &id, raw.as_deref(), AlertAction::Resolve).await?;
    match updated {
        Some(alert) => Ok(Json(alert)),
        None => Ok(Json(find_alert(&api, id).await?)),
    }
}

/// Authorises an alert action, validates the request and applies the action if the alert's
/// status allows it; returns the id and the updated alert (None: not changed).
async fn alert_action(
    api: &Api,
    headers: &HeaderMap,
    id: &str,
    raw: Option<&str>,
    action: AlertAction,
) -> ApiResult<(i64, Option<Alert>)> {
    api.authorize(headers)?;
    Params::parse(raw, &[])?;
    let id = parse_id(id, "alert id", ID_MAX)?;
    let updated = penstock_db::change_alert(&api.pool, id, action).await?;
    if updated.is_some() {
        tracing::info!(alert = id, status = action.status(), "alert changed by an operator");
    }
    Ok((id, updated.map(Alert::from)))
}

async fn find_alert(api: &Api, id: i64) -> ApiResult<Alert> {
    penstock_db::alert(&api.pool, id)
        .await?
        .map(Alert::from)
        .ok_or_else(|| ApiError::not_found(format!("no alert has id {id}; GET /alerts lists them")))
}

impl From<AlertRow> for Alert {
    fn from(a: AlertRow) -> Alert {
        Alert {
            id: a.id,
            severity: a.severity,
            status: a.status,
            source: a.source,
            message: a.message,
            metadata: a.metadata,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            count: a.count,
        }
    }
}
