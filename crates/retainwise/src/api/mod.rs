//! The HTTP API (axum). Paths keep the original service's, so its clients keep working:
//! `POST /api/csv`, `GET /api/predictions`, `GET /api/predictions/{id}`,
//! `GET /api/predictions/{id}/results`, `GET /health`.
//!
//! Errors leave through [`ApiError`], the one place that maps errors to status codes.

mod compat;
mod csv_tools;
mod csv_upload;
pub mod direct_upload;
mod error;
pub(crate) mod health;
pub mod host;
pub mod limits;
mod models;
mod predictions;
mod user;
mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use limits::Limits;
pub use predictions::ascii_filename;
pub use user::CurrentUser;

use crate::app::App;

/// Bytes allowed beyond the upload limit for the multipart envelope (boundaries, headers).
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Headers set on every response unless a handler set them: no MIME sniffing, no framing, a
/// strict Content-Security-Policy (OWASP Secure Headers Project), and no referrer sent to other
/// sites. `same-origin`, not `no-referrer`: under `no-referrer` Chromium sends `Origin: null` on
/// this site's own form posts (Fetch standard, "serializing a request origin"), which the
/// cross-site check must refuse, so sign-in and sign-out failed in a real browser.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    // Pages, results and API answers are one user's data: never stored by a browser or a
    // shared cache (OWASP Session Management Cheat Sheet). Static assets set their own.
    ("cache-control", "no-store, private"),
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
];

/// The API's routes and the web pages over `app`, with the `Host` check, CORS, security headers,
/// a request timeout and the per-IP rate limit on every route. Serve it with
/// [`crate::server::serve`] (or any server that adds `ConnectInfo<SocketAddr>`) so the per-IP
/// limit sees client addresses.
pub fn router(app: App) -> Router {
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
        .route("/api/predictions/{id}", get(predictions::show))
        .route("/api/predictions/{id}/results", get(predictions::results))
        .route("/api/predictions/{id}/cancel", post(predictions::cancel))
        .route("/api/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/api/webhooks/{id}",
            axum::routing::delete(webhooks::remove),
        )
        .route("/api/webhooks/{id}/deliveries", get(webhooks::deliveries));
    // One customers index cache for the pages and the original frontend's dashboard call.
    let indexes = std::sync::Arc::new(crate::web::IndexCache::new(crate::web::INDEXES_KEPT));
    let api = api
        .merge(compat::routes(indexes.clone()))
        .merge(direct_upload::routes());
    let mut router = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/__version", get(crate::ops::version::handler))
        .route("/metrics", get(health::metrics))
        .route("/api/csv/sample-csv/{industry}", get(csv_tools::sample_csv))
        .route(
            "/api/csv/supported-columns/{industry}",
            get(csv_tools::supported_columns),
        )
        .merge(api)
        .merge(crate::web::router(app.clone(), indexes))
        .route_layer(axum::middleware::from_fn(crate::telemetry::track_http))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            limits::per_ip,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            app.config.request_timeout,
        ))
        .layer(cors(&app.config.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            host::allowed_host,
        ));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router.with_state(app)
}

/// CORS for the configured origins only; with none configured, no cross-origin access.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}
