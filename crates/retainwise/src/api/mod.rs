//! The HTTP API (axum). Paths keep the original service's, so its clients keep working:
//! `POST /api/csv`, `GET /api/predictions`, `GET /api/predictions/{id}`,
//! `GET /api/predictions/{id}/results`, `GET /health`.
//!
//! The router around these routes, authentication ([`CurrentUser`]) and the error edge
//! ([`ApiError`]) are `http/`'s, shared with the web pages.

pub(crate) mod audit;
mod compat;
mod csv_tools;
mod csv_upload;
pub mod deletion;
pub mod direct_upload;
mod erasure;
pub(crate) mod health;
mod history;
mod models;
pub(crate) mod orgs;
mod outcomes;
mod predictions;
mod quota;
mod schedules;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use crate::http::{ApiError, CurrentUser};
pub(crate) use csv_upload::{queue_prediction_in, quota_hold, QueueSettings, StoredCsv};

use crate::app::App;

/// Bytes allowed beyond the upload limit for the multipart envelope (boundaries, headers).
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The API's routes (the original service's paths, `/health`, `/ready`, `/metrics`) over
/// `app`; `indexes` is the customers index cache the original frontend's dashboard call shares
/// with the pages. `http::router` adds the web pages and the layers around both.
pub(crate) fn routes(app: &App, indexes: Arc<crate::customer_index::IndexCache>) -> Router<App> {
    let body_limit = (app.config.max_upload_bytes + MULTIPART_OVERHEAD) as usize;
    let api = Router::new()
        .route(
            "/api/csv",
            post(csv_upload::upload).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            "/api/csv/preview-mapping",
            post(csv_tools::preview_mapping).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            "/api/models",
            get(models::list)
                .post(models::train)
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/api/models/trainings/{id}", get(models::training))
        .route("/api/models/{id}", get(models::show))
        .route("/api/models/{id}/activate", post(models::activate))
        .route("/api/predictions", get(predictions::list))
        // The original frontend's spellings, with the trailing slash.
        .route("/api/predictions/", get(predictions::list))
        .route("/api/predictions/{id}/", get(predictions::show))
        .route("/api/predictions/{id}/report", get(predictions::report))
        .route(
            "/api/predictions/{id}",
            get(predictions::show).delete(deletion::delete_prediction),
        )
        .route("/api/deletions/{id}", get(deletion::show))
        .route("/api/predictions/{id}/results", get(predictions::results))
        .route("/api/predictions/{id}/cancel", post(predictions::cancel))
        .route("/api/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/api/webhooks/{id}",
            axum::routing::delete(webhooks::remove),
        )
        .route("/api/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/api/audit", get(audit::list))
        .route(
            "/api/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/api/schedules/{id}",
            get(schedules::show).delete(schedules::remove),
        )
        .route("/api/schedules/{id}/pause", post(schedules::pause))
        .route("/api/schedules/{id}/resume", post(schedules::resume))
        .route("/api/org", get(orgs::show).delete(deletion::delete_org))
        .route(
            "/api/org/retention",
            get(deletion::retention).put(deletion::set_retention),
        )
        .route("/api/usage", get(quota::usage))
        .route("/api/org/members", get(orgs::members).post(orgs::add))
        .route(
            "/api/org/members/{user}",
            axum::routing::put(orgs::set_role).delete(orgs::remove),
        );
    api.merge(outcomes::routes(indexes.clone(), body_limit))
        .merge(compat::routes(indexes))
        .merge(direct_upload::routes())
        .merge(history::routes())
        .merge(erasure::routes())
        .merge(
            Router::new()
                .route("/health", get(health::health))
                .route("/ready", get(health::ready))
                .route("/__version", get(crate::ops::version::handler))
                .route("/metrics", get(health::metrics))
                .route("/api/csv/sample-csv/{industry}", get(csv_tools::sample_csv))
                .route(
                    "/api/csv/supported-columns/{industry}",
                    get(csv_tools::supported_columns),
                ),
        )
}
