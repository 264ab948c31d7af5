//! The one conversion from errors to HTTP responses. Clients get a status and a sentence that
//! says what to fix; internals (database, storage) are logged with an id and never leaked.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tracing::error;

/// An error answered to an HTTP client as `{"success": false, "detail": "…"}`
/// (`detail` is the original FastAPI service's field).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the text says how.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the user may not do this; the text says who decides.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource for this user.
    #[error("{0}")]
    NotFound(String),
    /// 409: the resource is not in a state that allows this (e.g. results before completion).
    #[error("{0}")]
    Conflict(String),
    /// 410: the resource existed and was deleted on purpose (a deleted prediction, results
    /// removed by retention); the text says when and why.
    #[error("{0}")]
    Gone(String),
    /// 413: the upload is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// 422: the request is well formed but its content cannot be used (RFC 9110 §15.5.21): a
    /// column mapping that names the customer-id column for a model input, an uploaded file whose
    /// size or SHA-256 is not the declared one; the text names the field or expected and actual.
    #[error("{0}")]
    Unprocessable(String),
    /// 507 (RFC 4918 §11.5): the server's disk has less room than a job needs, so nothing is
    /// accepted that would fail later; the text says so (no path).
    #[error("{0}")]
    StorageFull(String),
    /// 401: missing or refused credentials. The reason is logged by the caller, never shown.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// 429: over a limit; the client may retry after the given time.
    #[error("too many {what}; retry after {} s", retry_after.as_secs().max(1))]
    TooManyRequests {
        /// How long to wait.
        retry_after: std::time::Duration,
        /// What was too many, e.g. "requests from this address".
        what: &'static str,
    },
    /// 429: an upload that would take the organisation past its monthly quota; the text names
    /// the quota, the usage and the reset date, `Retry-After` the time until the reset.
    #[error("{message}")]
    OverQuota {
        /// What was refused and why.
        message: String,
        /// Until the quota resets.
        retry_after: std::time::Duration,
    },
    /// 500: something failed on our side; the cause is logged, not shown. 507 when the cause
    /// is a full disk or quota on the server (see `storage::is_storage_full`).
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::Internal(anyhow::Error::new(e).context("object storage"))
    }
}

impl From<retainwise_queue::QueueError> for ApiError {
    fn from(e: retainwise_queue::QueueError) -> Self {
        Self::Internal(anyhow::Error::new(e).context("queue"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Unauthorized = self {
            let body = json!({ "success": false, "detail": self.to_string() });
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(body),
            )
                .into_response();
        }
        if let Self::TooManyRequests { retry_after, .. } | Self::OverQuota { retry_after, .. } =
            &self
        {
            let secs = retry_after.as_secs().max(1).to_string();
            let body = json!({ "success": false, "detail": self.to_string() });
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs)],
                Json(body),
            )
                .into_response();
        }
        let (status, detail) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            Self::Gone(m) => (StatusCode::GONE, m.clone()),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m.clone()),
            Self::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m.clone()),
            Self::StorageFull(m) => (StatusCode::INSUFFICIENT_STORAGE, m.clone()),
            Self::Unauthorized | Self::TooManyRequests { .. } | Self::OverQuota { .. } => {
                (StatusCode::BAD_REQUEST, self.to_string())
            }
            // RFC 4918 §11.5: 507, the server cannot store what the request needs. The
            // client learns the cause and that retrying at once will not help.
            Self::Internal(e) if crate::storage::is_storage_full(e.as_ref()) => {
                let incident = uuid::Uuid::new_v4();
                error!(%incident, error = crate::error_chain::chain_anyhow(e), "request failed: storage full");
                (
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!(
                        "the server's storage is full, so the upload could not be stored; try \
                         again later or contact the operator (incident {incident})"
                    ),
                )
            }
            Self::Internal(e) => {
                let incident = uuid::Uuid::new_v4();
                error!(%incident, error = crate::error_chain::chain_anyhow(e), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal error (incident {incident}); please try again"),
                )
            }
        };
        (status, Json(json!({ "success": false, "detail": detail }))).into_response()
    }
}

/// The answer for a known path with the wrong method: 405, JSON like every other error.
pub async fn method_not_allowed() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(
            json!({ "success": false, "detail": "this method is not allowed on this endpoint; see the README for the API" }),
        ),
    )
}

/// The answer for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see the README for the API".to_owned())
}
