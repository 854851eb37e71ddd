//! The API's errors: always JSON `{"error": "...", "detail": "..."}` with the right status.

use axum::Json;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use penstock_db::DbError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in a few words.
    #[schema(example = "bad parameter")]
    pub error: String,
    /// Which parameter or id, what was given and what is allowed.
    #[schema(example = "limit must be an integer from 1 to 100, got \"500\"")]
    pub detail: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_string(),
                detail: detail.into(),
            },
        }
    }

    pub fn bad_parameter(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad parameter", detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(error: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, error, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload too large", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        // axum's own rejection is plain text; every error of this API is JSON.
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => match e.into_kind() {
                ErrorKind::InvalidUtf8InPathParam { key } => {
                    ApiError::bad_parameter(format!("path parameter {key} must be UTF-8 text once percent-decoded"))
                }
                kind => ApiError::bad_parameter(format!("bad path: {kind}")),
            },
            // Only a route without parameters could get here: the server's mistake.
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", other.body_text()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        // Parameters are validated before any query runs, so a database error here is the
        // server's problem (down, or not migrated), not the caller's.
        let cause = match e {
            DbError::Sql(e) => e.to_string(),
            other => other.to_string(),
        };
        tracing::error!(error = %cause, "query failed");
        ApiError::unavailable(format!(
            "the database did not answer the query ({cause}); check that PostgreSQL is up and `penstock migrate` ran"
        ))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
