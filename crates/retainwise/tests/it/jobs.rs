//! The job layer under deterministic failures: a worker made to crash at each failure point of
//! the driver (before start, after start, inside the run, after the run, after the record,
//! after the ack) must still end with the job done exactly once; a panicking run is an attempt
//! like any failure; a receive loop that dies is replaced. A failing assertion prints the queue
//! and job tables (`snapshot`).

use std::time::Duration;

use retainwise::worker::{FailurePoint, FailurePoints, Outcome, Worker, WorkerOptions};
use retainwise_queue::OutgoingMessage;

use crate::helpers::*;

/// A `queue_messages` row: id, receive count, leased, dead at, last error.
type MessageRow = (String, i64, bool, Option<i64>, Option<String>);
/// A `predictions` row: id, status, attempt, leased, dead-lettered at, result key, error.
type JobRowText = (
    String,
    String,
    i64,
    bool,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The queue's messages and the prediction rows, one line each, for a failing test's message.
async fn snapshot(t: &TestApp) -> String {
    let pool = t.app.db.pool();
    let mut out = String::from("queue_messages (id, receive_count, leased, dead, last_error):\n");
    let messages: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, receive_count, receipt IS NOT NULL, dead_at, last_error FROM queue_messages \
         ORDER BY sent_at, id",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for m in messages {
        out.push_str(&format!("  {m:?}\n"));
    }
    out.push_str(
        "predictions (id, status, attempt, leased, dead_lettered_at, result_key, error_message):\n",
    );
    let rows: Vec<JobRowText> = sqlx::query_as(
        "SELECT id, status, attempt, lease_token IS NOT NULL, dead_lettered_at, result_key, \
             error_message FROM predictions ORDER BY queued_at, id",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for r in rows {
        out.push_str(&format!("  {r:?}\n"));
    }
    out
}

fn armed_worker(t: &TestApp) -> (Worker, FailurePoints) {
    let points = FailurePoints::armable();
    let options = WorkerOptions {
        failure_points: points.clone(),
        ..fast_worker_options()
    };
    (Worker::new(t.app.clone(), options), points)
}

/// One receive and its processing on a task of its own, so a crash (a panic at a failure
/// point) ends that task as it would end a process. `None`: crashed, or nothing arrived.
async fn step(worker: &Worker) -> Option<Outcome> {
    let worker = worker.clone();
    tokio::spawn(async move { worker.run_once(Duration::from_secs(3)).await })
        .await
        .ok()
        .and_then(|received| received.expect("queue reachable"))
}

#[tokio::test]
async fn a_crash_at_every_failure_point_ends_with_the_job_done_exactly_once() {
    // (point, the attempt that completes: a crash after the start costs an attempt)
    let cases = [
        (FailurePoint::BeforeStart, 1),
        (FailurePoint::AfterStart, 2),
        (FailurePoint::DuringRun, 2),
        (FailurePoint::AfterRun, 2),
        (FailurePoint::AfterRecord, 1),
        (FailurePoint::AfterAck, 1),
    ];
    assert_eq!(cases.len(), FailurePoint::ALL.len(), "every point is tried");
    for (point, attempts) in cases {
        // A crashed attempt's lease lapses after a second and the message comes back.
        let t = TestApp::spawn_with(|c| c.visibility_timeout = Duration::from_secs(1)).await;
        let (worker, points) = armed_worker(&t);
        points.arm(point, 1);
        let id = t
            .upload_ok("customers.csv", synthetic_telco(40).into_bytes())
            .await;
        let mut outcomes = Vec::new();
        for _ in 0..6 {
            let stats = t.app.queue.stats().await.unwrap();
            if stats.depth + stats.in_flight + stats.delayed == 0 {
                break;
            }
            outcomes.push(step(&worker).await);
        }
        let snap = snapshot(&t).await;
        let p = t.prediction(&id).await;
        assert_eq!(p["status"], "COMPLETED", "{point:?}: {outcomes:?}\n{snap}");
        assert_eq!(p["attempt"], attempts, "{point:?}: {outcomes:?}\n{snap}");
        assert_eq!(p["rows_processed"], 40, "{point:?}\n{snap}");
        assert_eq!(
            points.passed(FailurePoint::AfterRecord),
            1,
            "{point:?}: the outcome was recorded exactly once: {outcomes:?}\n{snap}"
        );
        let stats = t.app.queue.stats().await.unwrap();
        assert_eq!(
            (stats.depth, stats.in_flight, stats.delayed, stats.dead),
            (0, 0, 0, 0),
            "{point:?}: the message is gone, not dead\n{snap}"
        );
        let results: Vec<_> = std::fs::read_dir(t.dir.path().join("objects/results/local"))
            .unwrap()
            .collect();
        assert_eq!(results.len(), 1, "{point:?}: one result object\n{snap}");
        assert_eq!(
            parse_csv(&t.results(&id).await).1.len(),
            40,
            "{point:?}\n{snap}"
        );
    }
}

#[tokio::test]
async fn a_panicking_run_is_an_attempt_retried_then_dead_lettered_with_its_message() {
    let t = TestApp::spawn().await;
    let (worker, points) = armed_worker(&t);
    points.arm(FailurePoint::DuringRun, 3);
    let id = t
        .upload_ok("customers.csv", synthetic_telco(5).into_bytes())
        .await;
    assert_eq!(step(&worker).await, Some(Outcome::Retried));
    let p = t.prediction(&id).await;
    assert_eq!(
        (p["status"].as_str(), p["attempt"].as_i64()),
        (Some("QUEUED"), Some(1)),
        "{p}"
    );
    assert!(
        p["error_message"]
            .as_str()
            .unwrap()
            .starts_with("retrying after"),
        "{p}"
    );
    assert_eq!(step(&worker).await, Some(Outcome::Retried));
    assert_eq!(step(&worker).await, Some(Outcome::DeadLettered));
    let snap = snapshot(&t).await;
    let dead = t.app.queue.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{snap}");
    let last = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(
        last.contains("the job panicked: failure point DuringRun"),
        "{last}\n{snap}"
    );
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "FAILED", "{snap}");
    assert_eq!(p["attempt"], 3, "{snap}");
    let row = t
        .app
        .db
        .prediction(&retainwise::domain::OrgId::local(), id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(row.dead_lettered_at.is_some(), "{snap}");
    // Redriven once the cause is gone, it runs again and completes.
    assert_eq!(t.app.queue.redrive(None).await.unwrap(), 1);
    assert_eq!(step(&worker).await, Some(Outcome::Completed), "{snap}");
    let row = t
        .app
        .db
        .prediction(&retainwise::domain::OrgId::local(), id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.dead_lettered_at, None);
    assert_eq!(row.attempt, 4);
}

/// A receive loop that dies (here: a crash after the start, outside the job's own run) is
/// replaced: with one loop, the job still completes, on its redelivery.
#[tokio::test]
async fn a_receive_loop_that_dies_is_replaced() {
    let t = TestApp::spawn_with(|c| c.visibility_timeout = Duration::from_secs(1)).await;
    let (worker, points) = armed_worker(&t);
    points.arm(FailurePoint::AfterStart, 1);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (worker, stop) = (worker.clone(), stop.clone());
        async move { worker.run(stop).await }
    });
    let id = t
        .upload_ok("customers.csv", synthetic_telco(5).into_bytes())
        .await;
    let p = t.wait_finished(&id, Duration::from_secs(60)).await;
    stop.cancel();
    let summary = running.await.unwrap();
    let snap = snapshot(&t).await;
    assert_eq!(p["status"], "COMPLETED", "{p}\n{snap}");
    assert_eq!(p["attempt"], 2, "{snap}");
    assert_eq!(points.passed(FailurePoint::AfterStart), 2);
    assert_eq!(summary.completed, 1);
}

/// Every message names its kind; a message whose kind no one registered is dead-lettered at
/// once with the kinds that exist, and a prediction message without a kind (the original
/// service's format) is still a prediction.
#[tokio::test]
async fn messages_name_their_kind_and_an_unknown_kind_is_dead_lettered() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(3).into_bytes())
        .await;
    let (body,): (String,) = sqlx::query_as("SELECT body FROM queue_messages")
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["kind"], "predict", "{body}");
    assert_eq!(t.work_once().await, Outcome::Completed);
    t.app
        .queue
        .send(&OutgoingMessage::new(r#"{"kind": "mystery", "x": 1}"#))
        .await
        .unwrap();
    assert_eq!(t.work_once().await, Outcome::DeadLettered);
    let dead = t.app.queue.dead(10).await.unwrap();
    let last = dead[0].last_error.as_deref().unwrap();
    assert!(
        last.contains("\"mystery\"") && last.contains("predict, train"),
        "{last}"
    );
    assert_eq!(t.prediction(&id).await["status"], "COMPLETED");
}
