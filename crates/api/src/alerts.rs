//! `/alerts`: the problems the fleet reported, and the operator's acknowledge and resolve
//! (behind the admin token). Live data, never cached.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
pub use penstock_db::AlertRow as Alert;
use penstock_db::{ALERT_STATUSES, AlertAction, AlertStatusName, SEVERITIES, SeverityName};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{ID_MAX, Params, Segment, parse_id};
use crate::state::Api;

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

/// Alerts, most recently seen first.
#[utoipa::path(get, path = "/alerts", tag = "alerts", params(AlertsQuery),
    responses(
        (status = 200, description = "One page of alerts, most recently seen first", body = AlertPage),
        (status = 400, description = "A parameter is invalid; the detail names it", body = ErrorBody),
    ))]
pub async fn alerts(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> ApiResult<Json<AlertPage>> {
    let p = Params::parse(raw.as_deref(), &["severity", "status", "page", "per_page"])?;
    let severity = p.choice("severity", &SEVERITIES)?;
    let status = p.choice("status", &ALERT_STATUSES)?;
    let page = p.page()?;
    let (alerts, total) =
        penstock_db::alerts_page(api.dbs.home(), severity, status, page.per_page, page.offset()).await?;
    Ok(Json(AlertPage {
        data: alerts,
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
    act(&api, &headers, &id, raw.as_deref(), AlertAction::Acknowledge).await
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
    act(&api, &headers, &id, raw.as_deref(), AlertAction::Resolve).await
}

/// Authorises an alert action, validates the request and applies the action if the alert's
/// status allows it. An alert already in the action's status is answered as it is; acknowledging
/// a resolved alert is a conflict.
async fn act(
    api: &Api,
    headers: &HeaderMap,
    id: &str,
    raw: Option<&str>,
    action: AlertAction,
) -> ApiResult<Json<Alert>> {
    api.authorize(headers)?;
    Params::parse(raw, &[])?;
    let id = parse_id(id, "alert id", ID_MAX)?;
    if let Some(alert) = penstock_db::change_alert(&api.writes, id, action).await? {
        tracing::info!(alert = id, status = action.status(), "alert changed by an operator");
        return Ok(Json(alert));
    }
    let alert = penstock_db::alert(&api.writes, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert has id {id}; GET /alerts lists them")))?;
    if action == AlertAction::Acknowledge && alert.status == "resolved" {
        return Err(ApiError::conflict(format!(
            "alert {id} is resolved already; a new occurrence of the problem opens a new alert"
        )));
    }
    Ok(Json(alert))
}
