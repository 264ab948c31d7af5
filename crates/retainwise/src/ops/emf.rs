//! Queue figures as CloudWatch metrics: one Embedded Metric Format (EMF) line on stdout every
//! interval. CloudWatch Logs extracts the metrics from such a line in any log group (the ECS
//! `awslogs` driver ships stdout there), so no `cloudwatch:PutMetricData` right is needed.
//! Source: Amazon CloudWatch User Guide, "Specification: Embedded metric format" and "Using the
//! PutLogEvents API to send manually-created embedded metric format logs" (the
//! `x-amzn-logs-format` header is optional).
//!
//! The metrics (namespace [`DEFAULT_NAMESPACE`] unless set, one dimension `Queue`):
//! `QueueDepth` (messages ready now), `QueueInFlight`, `QueueDelayed`, `QueueDead` (Count) and
//! `QueueOldestMessageAge` (Seconds; 0 when the queue holds no live message). The API emits
//! them too, so an autoscaler sees a backlog while no worker runs (scaling from zero).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use retainwise_queue::{Queue, QueueStats};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The namespace `deploy/aws` reads the metrics from when `RETAINWISE_EMF_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "Retainwise";

/// One EMF line (JSON, no newline) for `stats` of queue `queue` at `at`.
pub fn line(namespace: &str, queue: &str, stats: &QueueStats, at: SystemTime) -> String {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let count = |name: &str| json!({ "Name": name, "Unit": "Count" });
    json!({
        "_aws": {
            "Timestamp": ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Queue"]],
                "Metrics": [
                    count("QueueDepth"),
                    count("QueueInFlight"),
                    count("QueueDelayed"),
                    count("QueueDead"),
                    { "Name": "QueueOldestMessageAge", "Unit": "Seconds" },
                ],
            }],
        },
        "Queue": queue,
        "QueueDepth": stats.depth,
        "QueueInFlight": stats.in_flight,
        "QueueDelayed": stats.delayed,
        "QueueDead": stats.dead,
        "QueueOldestMessageAge": stats.oldest_age.map_or(0, |a| a.as_secs()),
    })
    .to_string()
}

/// Prints one line for `queue` every `interval` until `shutdown`; a failed read of the
/// figures is logged (`emf_stats_failed`) and that interval prints nothing, so CloudWatch sees
/// missing data rather than a false zero.
pub fn spawn(
    queue: Arc<dyn Queue>,
    namespace: String,
    interval: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match queue.stats().await {
                Ok(stats) => {
                    use std::io::Write;
                    let text = line(
                        &namespace,
                        crate::app::PREDICTIONS_QUEUE,
                        &stats,
                        SystemTime::now(),
                    );
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{text}");
                    let _ = out.flush();
                }
                Err(e) => tracing::warn!(error = %e, "emf_stats_failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_every_metric_it_carries() {
        let stats = QueueStats {
            depth: 7,
            in_flight: 2,
            delayed: 1,
            dead: 0,
            oldest_age: Some(Duration::from_millis(95_400)),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let v: serde_json::Value = serde_json::from_str(&line("Ns", "q", &stats, at)).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_800_000_000_000u64);
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "Ns");
        assert_eq!(v["Queue"], "q");
        // EMF: every declared metric and dimension must be a top-level member.
        for m in spec["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_u64(), "{name} missing");
        }
        assert_eq!(v["QueueDepth"], 7);
        assert_eq!(v["QueueOldestMessageAge"], 95);
        let empty = QueueStats {
            oldest_age: None,
            ..stats
        };
        let v: serde_json::Value = serde_json::from_str(&line("Ns", "q", &empty, at)).unwrap();
        assert_eq!(v["QueueOldestMessageAge"], 0);
    }
}
