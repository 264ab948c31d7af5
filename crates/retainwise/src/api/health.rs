//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;

/// `GET /health`: the process answers. Always 200.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /metrics`: Prometheus text format (see [`crate::telemetry`] for the names). Queue
/// gauges are read from the queue at each scrape, so every API process reports the same queue.
pub async fn metrics(State(app): State<App>) -> impl axum::response::IntoResponse {
    if let Ok(stats) = app.queue.stats().await {
        metrics::gauge!("retainwise_queue_depth").set(stats.depth as f64);
        metrics::gauge!("retainwise_queue_in_flight").set(stats.in_flight as f64);
        metrics::gauge!("retainwise_queue_dead").set(stats.dead as f64);
        metrics::gauge!("retainwise_queue_oldest_message_age_seconds")
            .set(stats.oldest_age.map_or(0.0, |a| a.as_secs_f64()));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::handle().render(),
    )
}

/// `GET /ready`: 200 when the database, storage and queue all answer, else 503 naming the
/// failing part.
pub async fn ready(State(app): State<App>) -> (StatusCode, Json<Value>) {
    let database = app.db.check().await.map_err(|e| e.to_string());
    let storage = app.storage.check().await.map_err(|e| e.to_string());
    let queue = app
        .queue
        .stats()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let part = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let ok = database.is_ok() && storage.is_ok() && queue.is_ok();
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "database": part(&database),
        "storage": part(&storage),
        "queue": part(&queue),
    });
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
