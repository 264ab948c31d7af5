//! The stylesheet and the script, embedded in the binary (no Node build step) and served with
//! a content hash in their URL, so a new binary never meets a stale cached copy.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::WebError;

const CSS: &str = include_str!("../../assets/web/app.css");
const JS: &str = include_str!("../../assets/web/app.js");

fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let digest = Sha256::new().chain_update(CSS).chain_update(JS).finalize();
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    })
}

/// The stylesheet's URL, e.g. `/static/app.css?v=1a2b3c4d5e6f`.
pub fn css_url() -> String {
    format!("/static/app.css?v={}", version())
}

/// The script's URL.
pub fn js_url() -> String {
    format!("/static/app.js?v={}", version())
}

/// `GET /static/{file}`: `app.css` or `app.js`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return WebError::not_found("No such file.").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            // The URL carries the content hash, so a year is safe.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
