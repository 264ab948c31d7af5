//! Prometheus metrics (text exposition format 0.0.4) through the `metrics` facade. Names follow
//! Prometheus conventions: `_total` for counters, `_seconds` for durations.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `retainwise_jobs_received_total` | counter | |
//! | `retainwise_jobs_completed_total`, `_failed_total`, `_retried_total`, `_dead_lettered_total`, `_skipped_total` | counter | |
//! | `retainwise_job_duration_seconds` | histogram | |
//! | `retainwise_job_stage_seconds` | histogram | `stage` = download, score, upload, history |
//! | `retainwise_rows_scored_total`, `retainwise_rows_rejected_total` | counter | |
//! | `retainwise_queue_depth`, `_in_flight`, `_dead`, `_oldest_message_age_seconds` | gauge | read from the queue at each scrape |
//! | `retainwise_drift_psi` | gauge | `model`, `feature`: the PSI of the model's last scored file against its training profile ([`record_drift`]) |
//! | `retainwise_drift_score_psi` | gauge | `model`: the same for the churn-probability histogram |
//! | `retainwise_drift_files_total` | counter | `model`, `level` = stable, watch, act: scored files by their worst drift level |
//! | `retainwise_usage_rows_scored` | gauge | `org`: rows scored this calendar month (UTC), metered once per completed prediction; read from the database at each scrape |
//! | `retainwise_http_requests_total` | counter | `method`, `route`, `status` |
//! | `retainwise_http_request_duration_seconds` | histogram | `method`, `route` |

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets in seconds: from 1 ms (an API read) to 10 minutes (a large file).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// The process-wide recorder, installed on first use (every `App` in a process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
            .expect("static, non-empty bucket list")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program); the handle
        // then renders only what this recorder sees, which is still a valid exposition.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Middleware: counts and times every request by its route pattern (never the raw path, so ids
/// do not explode the label set).
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("retainwise_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("retainwise_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Records a scored file's drift ([`retainwise_model::drift::DriftReport`]) for model
/// `model_id`: one `retainwise_drift_psi` gauge per feature (the last file's PSI), the score's
/// `retainwise_drift_score_psi`, and one count in `retainwise_drift_files_total` by the file's
/// worst level. Nothing for a report that was not measured (a model without training profiles).
/// Labels are bounded by models × their features, never by files or customers.
pub fn record_drift(model_id: &str, drift: &retainwise_model::drift::DriftReport) {
    if !drift.measured {
        return;
    }
    for f in &drift.features {
        metrics::gauge!("retainwise_drift_psi", "model" => model_id.to_owned(), "feature" => f.feature.clone())
            .set(f.psi);
    }
    if let Some(p) = drift.score_psi {
        metrics::gauge!("retainwise_drift_score_psi", "model" => model_id.to_owned()).set(p);
    }
    metrics::counter!("retainwise_drift_files_total", "model" => model_id.to_owned(), "level" => drift.level().as_str())
        .increment(1);
}
