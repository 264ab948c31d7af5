//! The web app: server-rendered pages (maud) over the same data as the JSON API, for the
//! customer-success and finance people who use a churn service.
//!
//! | path | page |
//! |---|---|
//! | `GET /` | upload: drag-and-drop, size check, progress bar, column-mapping preview, sample CSV |
//! | `GET /predictions?page=N` | every job with live status (the rows fragment is polled) |
//! | `GET /predictions/{id}` | a job's dashboard (counts, revenue at risk, SVG charts, top drivers), or its live status |
//! | `GET /predictions/{id}/customers?level=&q=&sort=&page=` | the customers table, filtered and paginated on the server |
//! | `GET /predictions/{id}/customers/{row}` | one customer's explanation |
//! | `GET /customers/{customer_id}` | one customer across predictions: risk over time (SVG line), each run's drivers |
//! | `GET /predictions/{id}/export.xlsx` | the Excel workbook (summary + customers); CSV is `GET /api/predictions/{id}/results` |
//! | `GET /models/{id}` | a model's card: cross-validated and live (measured on outcomes) accuracy side by side |
//! | `GET|POST /webhooks`, `POST /webhooks/{id}/remove` | signed webhook endpoints: list, add (secret shown once), remove |
//! | `GET /webhooks/{id}`, `POST /webhooks/{id}/deliveries/{delivery}/redrive` | an endpoint's deliveries; send a dead-lettered one again |
//! | `GET|POST /members`, `POST /members/{user}/role`, `POST /members/{user}/remove` | an owner's members: add, change a role, remove |
//! | `GET|POST /signin`, `POST /signout` | sign-in with an API key kept in an HttpOnly cookie (when sign-in is configured) |
//!
//! Every page takes a [`WebUser`], which is the API's [`CurrentUser`](crate::http::CurrentUser)
//! (so the same authentication, rate limit and per-user scoping apply) with a redirect to the
//! sign-in page instead of a JSON 401. Filters and the page number live in the URL, so a view can
//! be shared and reloaded. The pages follow the API's Content-Security-Policy: no inline script
//! or style; the one script and stylesheet are embedded in the binary (`assets.rs`).

mod assets;
mod audit;
mod charts;
mod customers;
mod dashboard;
mod error;
mod export;
mod format;
mod history;
/// The customers index (it moved to the crate's root: the API's dashboard call reads it too).
pub use crate::customer_index as index;
mod layout;
mod members;
mod model_card;
mod predictions;
mod query;
mod schedules;
pub mod session;
mod upload;
mod webhooks;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use crate::http::session::SESSION_COOKIE;
pub use index::{CustomerIndex, IndexCache};
pub use session::WebUser;

use crate::app::App;

/// Predictions whose customer index is kept in memory (least recently used goes first). An
/// index costs about 45 bytes per scored row (≈ 45 MB for 1,000,000 rows).
pub const INDEXES_KEPT: usize = 4;

/// The state of the web routes: the app and the customer-index cache.
#[derive(Clone)]
pub struct WebState {
    /// The shared application parts.
    pub app: App,
    /// Customer indexes of recently viewed predictions.
    pub indexes: Arc<IndexCache>,
    /// Excel workbooks in preparation, per user.
    pub(crate) exports: Arc<export::ExportSlots>,
}

/// The web pages and their assets, ready to merge into the API router (any outer state), with
/// the customers index cache they share with the API.
pub fn router<S: Clone + Send + Sync + 'static>(app: App, indexes: Arc<IndexCache>) -> Router<S> {
    let state = WebState {
        app,
        indexes,
        exports: Arc::default(),
    };
    Router::new()
        .route("/", get(upload::page))
        .route("/predictions", get(predictions::page))
        .route("/predictions/rows", get(predictions::rows))
        .route("/predictions/{id}", get(dashboard::page))
        .route("/predictions/{id}/cancel", post(predictions::cancel))
        .route("/predictions/{id}/status", get(dashboard::status_fragment))
        .route("/predictions/{id}/customers", get(customers::table))
        .route("/predictions/{id}/customers/{row}", get(customers::detail))
        .route("/predictions/{id}/export.xlsx", get(export::xlsx))
        .route("/customers/{customer_id}", get(history::page))
        .route("/models/{id}", get(model_card::page))
        .route("/webhooks", get(webhooks::page).post(webhooks::add))
        .route("/webhooks/{id}", get(webhooks::deliveries))
        .route("/webhooks/{id}/remove", post(webhooks::remove))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redrive",
            post(webhooks::redrive),
        )
        .route("/schedules", get(schedules::page).post(schedules::add))
        .route("/schedules/{id}/remove", post(schedules::remove))
        .route("/schedules/{id}/pause", post(schedules::pause))
        .route("/schedules/{id}/resume", post(schedules::resume))
        .route("/audit", get(audit::page))
        .route("/members", get(members::page).post(members::add))
        .route("/members/{user}/role", post(members::set_role))
        .route("/members/{user}/remove", post(members::remove))
        .route("/signin", get(session::page).post(session::sign_in))
        .route("/signout", post(session::sign_out))
        .route("/static/{file}", get(assets::serve))
        .with_state(state)
}
