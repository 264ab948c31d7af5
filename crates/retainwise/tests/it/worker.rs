//! Worker semantics on the real queue and database: retries, dead-letter, redrive, fencing,
//! invalid messages, and jobs orphaned by a crash.

use std::time::Duration;

use retainwise::domain::{OrgId, PredictionId};
use retainwise::worker::Outcome;
use retainwise_queue::{OutgoingMessage, QueueError};

use crate::helpers::*;

fn local() -> OrgId {
    OrgId::local()
}

fn row(id: PredictionId) -> retainwise::db::JobRow {
    retainwise::db::JobRow::prediction(id, &local())
}

#[tokio::test]
async fn transient_errors_retry_then_dead_letter_and_redrive_runs_the_job() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(30).into_bytes())
        .await;
    // Make the result folder a file: every result upload now fails, as a broken store would.
    let blocker = t.dir.path().join("objects/results/local");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();

    assert_eq!(t.work_once().await, Outcome::Retried);
    let p = t.prediction(&id).await;
    assert_eq!(
        p["status"], "QUEUED",
        "a retried job goes back to QUEUED: {p}"
    );
    assert!(p["error_message"]
        .as_str()
        .unwrap()
        .starts_with("retrying after"));
    assert_eq!(t.work_once().await, Outcome::Retried);
    assert_eq!(t.work_once().await, Outcome::DeadLettered);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "FAILED");
    assert!(
        p["error_message"]
            .as_str()
            .unwrap()
            .starts_with("dead-lettered: after 3 attempts"),
        "{p}"
    );
    let dead = t.app.queue.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("object storage"),
        "{:?}",
        dead[0].last_error
    );
    assert_eq!(t.app.queue.stats().await.unwrap().dead, 1);

    // The operator fixes storage and redrives: the job runs again and completes.
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(t.app.queue.redrive(None).await.unwrap(), 1);
    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(p["attempt"], 4);
    assert_eq!(p["rows_processed"], 30);
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0));
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_complete_or_ack() {
    let t = TestApp::spawn_with(|c| c.visibility_timeout = Duration::from_secs(1)).await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(10).into_bytes())
        .await;
    let pid: PredictionId = id.parse().unwrap();
    // Worker A takes the job and then stalls (no heartbeat), as a frozen process would.
    let a = t
        .app
        .queue
        .receive(1, Duration::from_secs(1))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        row(pid)
            .start(t.app.db.pool(), a.receipt.as_str())
            .await
            .unwrap(),
        Some(1)
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Worker B gets the message after the visibility timeout and finishes the job.
    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(
        (
            p["status"].as_str().unwrap(),
            p["attempt"].as_i64().unwrap()
        ),
        ("COMPLETED", 2)
    );
    // A wakes up: its writes and its ack are refused.
    assert!(!row(pid)
        .fail(t.app.db.pool(), a.receipt.as_str(), "late", &[])
        .await
        .unwrap());
    assert!(matches!(
        t.app.queue.ack(&a.receipt).await,
        Err(QueueError::LeaseLost { .. })
    ));
    assert_eq!(t.prediction(&id).await["status"], "COMPLETED");
}

#[tokio::test]
async fn invalid_messages_are_dead_lettered_not_retried() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(5).into_bytes())
        .await;
    // Drain the real message so only the forged ones remain.
    assert_eq!(t.work_once().await, Outcome::Completed);
    let forged = serde_json::json!({
        "prediction_id": id, "user_id": "local", "upload_id": "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5",
        "object_key": "uploads/local/../../etc/passwd.csv",
        "timestamp": retainwise::time::rfc3339(retainwise::time::now_ms()), "priority": "normal"
    });
    for body in [forged.to_string(), "hello".to_owned()] {
        t.app
            .queue
            .send(&OutgoingMessage {
                body,
                priority: Default::default(),
            })
            .await
            .unwrap();
        assert_eq!(t.work_once().await, Outcome::DeadLettered);
    }
    let dead = t.app.queue.dead(10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter().any(|d| d
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("'..' segment")),
        "{dead:?}"
    );
    // The finished prediction the forged message named is untouched.
    assert_eq!(t.prediction(&id).await["status"], "COMPLETED");
    assert!(
        t.worker
            .run_once(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none(),
        "nothing is retried"
    );
}

#[tokio::test]
async fn a_job_orphaned_by_crashes_is_closed_when_its_message_dies() {
    let t = TestApp::spawn_with(|c| c.visibility_timeout = Duration::from_millis(400)).await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(5).into_bytes())
        .await;
    let pid: PredictionId = id.parse().unwrap();
    // Three workers in a row take the job and die before finishing.
    for attempt in 1..=3 {
        let d = t
            .app
            .queue
            .receive(1, Duration::from_secs(2))
            .await
            .unwrap()
            .pop()
            .expect("redelivered");
        assert_eq!(d.receive_count, attempt);
        assert!(row(pid)
            .start(t.app.db.pool(), d.receipt.as_str())
            .await
            .unwrap()
            .is_some());
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
    assert_eq!(t.prediction(&id).await["status"], "RUNNING");
    // The next receive moves the message to the dead-letter store instead of delivering it…
    assert!(t
        .app
        .queue
        .receive(1, Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(t.app.queue.stats().await.unwrap().dead, 1);
    // …and the sweeper closes the prediction instead of leaving it RUNNING forever.
    assert_eq!(retainwise::worker::sweep(&t.app).await.unwrap(), 1);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "FAILED");
    assert!(
        p["error_message"]
            .as_str()
            .unwrap()
            .starts_with("dead-lettered: after 3 attempts"),
        "{p}"
    );
}

/// An attempt whose job another attempt has taken over (as a worker does when the lease lapsed
/// and the message came back) learns it from the prediction row at its next beat, stops
/// scoring at its next batch and stores no result: the job is the new holder's.
#[tokio::test]
async fn an_attempt_that_learns_its_lease_is_lost_stops_and_writes_no_result() {
    let t = TestApp::spawn_with(|c| c.max_upload_bytes = 64 * 1024 * 1024).await;
    // Big enough that scoring lasts well beyond a beat (a few hundred milliseconds).
    let id = t
        .upload_ok("big.csv", synthetic_telco(150_000).into_bytes())
        .await;
    let pid: PredictionId = id.parse().unwrap();
    let worker = t.worker.clone();
    let run = tokio::spawn(async move { worker.run_once(Duration::from_secs(2)).await });
    // Wait until the attempt is running, then start the job under another lease.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while t.prediction(&id).await["status"] != "RUNNING" {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        row(pid)
            .start(t.app.db.pool(), "the-new-holder")
            .await
            .unwrap(),
        Some(2)
    );
    let outcome = run.await.unwrap().unwrap().unwrap();
    assert_eq!(outcome, Outcome::LeaseLost);
    let result = t.dir.path().join(format!("objects/results/local/{id}.csv"));
    assert!(
        !result.exists(),
        "an attempt that lost its lease must not store a result"
    );
    let p = t.prediction(&id).await;
    assert_eq!(
        (
            p["status"].as_str().unwrap(),
            p["attempt"].as_i64().unwrap()
        ),
        ("RUNNING", 2),
        "the new holder's attempt is untouched: {p}"
    );
}

/// A worker told to stop while it waits on the queue hands back what its last receive leased:
/// visible again at once, that receive not counted. Each round stops a worker at the moment a
/// job arrives, so its receive is as often as not in the middle of a claim.
#[tokio::test]
async fn a_worker_stopped_while_receiving_hands_the_message_back_at_once() {
    let t = TestApp::spawn_with(|c| c.visibility_timeout = Duration::from_secs(30)).await;
    let mut handed_back = 0;
    for round in 0..12 {
        let worker = retainwise::worker::Worker::new(t.app.clone(), fast_worker_options());
        let stop = tokio_util::sync::CancellationToken::new();
        let running = tokio::spawn({
            let stop = stop.clone();
            async move { worker.run(stop).await }
        });
        // Let the worker reach its long poll, then send a job and stop the worker at once.
        tokio::time::sleep(Duration::from_millis(50 + 7 * round)).await;
        let id = t
            .upload_ok("customers.csv", synthetic_telco(3).into_bytes())
            .await;
        stop.cancel();
        running.await.unwrap();
        let p = t.prediction(&id).await;
        match p["status"].as_str().unwrap() {
            // It received the job before the stop: a started job is finished.
            "COMPLETED" => continue,
            "QUEUED" => {}
            other => panic!("round {round}: unexpected status {other}: {p}"),
        }
        // Not started: the message is visible now (not after the 30 s timeout) and this is its
        // first counted receive.
        let again = t
            .app
            .queue
            .receive(1, Duration::from_millis(500))
            .await
            .unwrap()
            .pop()
            .unwrap_or_else(|| panic!("round {round}: the message stayed leased"));
        assert_eq!(
            again.receive_count, 1,
            "round {round}: the hand-back was counted"
        );
        t.app
            .queue
            .release(&again.receipt, Duration::ZERO)
            .await
            .expect("release");
        assert_eq!(t.work_once().await, Outcome::Completed);
        handed_back += 1;
    }
    eprintln!("{handed_back} of 12 rounds handed a message back");
}

/// The same on Postgres, with the race made certain: another connection holds the queue table
/// locked, so the worker's claim is under way (waiting for the lock) when the worker is told
/// to stop; the message it then leases is handed back at once, uncounted, instead of staying
/// leased for the whole visibility timeout.
#[tokio::test]
async fn a_worker_stopped_mid_claim_hands_the_message_back_on_postgres() {
    let Some(t) =
        TestApp::spawn_postgres_with(|c| c.visibility_timeout = Duration::from_secs(30)).await
    else {
        return;
    };
    let (pool, dialect) = retainwise_queue::connect(&t.app.config.database_url)
        .await
        .unwrap();
    let other = retainwise_queue::SqlQueue::new(
        pool.clone(),
        dialect,
        retainwise_queue::QueueConfig {
            name: retainwise::app::PREDICTIONS_QUEUE.to_owned(),
            visibility_timeout: Duration::from_secs(30),
            max_receives: 3,
            poll_interval: Duration::from_millis(500),
            migrate: true,
        },
    )
    .await
    .unwrap();
    let worker = retainwise::worker::Worker::new(t.app.clone(), fast_worker_options());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE queue_messages IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let id = retainwise_queue::Queue::send_in(&other, &mut tx, &OutgoingMessage::new("{}"))
        .await
        .unwrap();
    // The worker polls at least every 500 ms: by now its claim waits for the lock.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    running.await.unwrap();
    let again = t
        .app
        .queue
        .receive(1, Duration::from_secs(2))
        .await
        .unwrap()
        .pop()
        .expect("the message was handed back, not left leased");
    assert_eq!(again.message_id, id);
    assert_eq!(
        again.receive_count, 1,
        "the handed-back receive is not counted"
    );
}
