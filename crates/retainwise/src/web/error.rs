//! Errors of the pages, answered as an HTML page with the status and a sentence that says what
//! to do. Internal causes are logged with an incident id by [`ApiError`]'s conversion and never
//! shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{self, Nav};
use crate::http::ApiError;

/// A page that could not be shown: its status and what the reader should do.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    message: String,
}

impl WebError {
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 409 with `message`: the thing exists but is not in a state that allows this.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        let (status, message) = match e {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Gone(m) => (StatusCode::GONE, m),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            ApiError::StorageFull(m) => (StatusCode::INSUFFICIENT_STORAGE, m),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "Please sign in.".to_owned()),
            e @ (ApiError::TooManyRequests { .. } | ApiError::OverQuota { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, e.to_string())
            }
            e @ ApiError::Internal(_) => {
                // The API's conversion logs the cause with an incident id; show the id only.
                let response = e.into_response();
                (
                    response.status(),
                    "Something failed on our side (the server log has the details); please try again in a moment."
                        .to_owned(),
                )
            }
        };
        Self { status, message }
    }
}

impl From<crate::storage::StorageError> for WebError {
    fn from(e: crate::storage::StorageError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Not ready",
            s if s.is_client_error() => "Cannot do that",
            _ => "Something went wrong",
        };
        let body = html! {
            h1 { (title) }
            p.alert.error role="alert" { (self.message) }
            p { a href="/predictions" { "Back to your predictions" } }
        };
        (self.status, layout::page(title, Nav::None, false, body)).into_response()
    }
}
