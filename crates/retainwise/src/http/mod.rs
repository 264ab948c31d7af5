//! The HTTP layer above `api/` and `web/`: the one router (the API's routes and the pages,
//! with the `Host` check, CORS, security headers, the request timeout and the per-IP rate
//! limit), authentication ([`CurrentUser`]: a bearer credential or the session cookie,
//! `session.rs`; [`site`]: does a request come from this site), and the error edge
//! ([`ApiError`]: JSON for the API; the pages turn it into their HTML error page). `api/` and
//! `web/` import from here, never from each other.

pub mod access;
pub mod attachment;
mod error;
pub mod host;
pub mod limits;
pub mod session;
pub mod site;
mod user;

use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use limits::Limits;
pub use user::{AuditActor, Caller, CurrentUser};

use crate::app::App;

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
    // One customers index cache for the pages and the original frontend's dashboard call.
    let indexes = std::sync::Arc::new(crate::web::IndexCache::new(crate::web::INDEXES_KEPT));
    let mut router = crate::api::routes(&app, indexes.clone())
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
