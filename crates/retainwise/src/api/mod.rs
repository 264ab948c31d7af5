//! The HTTP API (axum). Paths keep the original service's, so its clients keep working:
//! `POST /api/csv`, `GET /api/predictions`, `GET /api/predictions/{id}`,
//! `GET /api/predictions/{id}/results`, `GET /health`.
//!
//! Errors leave through [`ApiError`], the one place that maps errors to status codes.

mod csv_upload;
mod error;
mod health;
mod predictions;
mod user;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use user::CurrentUser;

use crate::app::App;

/// Bytes allowed beyond the upload limit for the multipart envelope (boundaries, headers).
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The API's routes over `app`.
pub fn router(app: App) -> Router {
    let body_limit = (app.config.max_upload_bytes + MULTIPART_OVERHEAD) as usize;
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route(
            "/api/csv",
            post(csv_upload::upload).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/api/predictions", get(predictions::list))
        .route("/api/predictions/{id}", get(predictions::show))
        .route("/api/predictions/{id}/results", get(predictions::results))
        .fallback(error::not_found)
        .with_state(app)
}
