//! Cancelling a prediction: through HTTP (`POST /api/predictions/{id}/cancel`), the binary
//! (`retainwise queue cancel ID`) and the predictions page's button in headless Chromium. A
//! queued job never starts; a running one stops at its next batch and records nothing; a
//! finished one answers 409 with its status; another user's answers 404 like a missing one.

use std::process::Command;
use std::time::Duration;

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;
use crate::web::{browser, screenshots, signed_in_app, text_of};

async fn cancel(t: &TestApp, id: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = t
        .client
        .post(format!("{}/api/predictions/{id}/cancel", t.base));
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

fn result_stored(t: &TestApp, id: &str) -> bool {
    t.dir
        .path()
        .join(format!("objects/results/local/{id}.csv"))
        .exists()
}

#[tokio::test]
async fn a_queued_prediction_that_is_cancelled_never_starts() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(5).into_bytes())
        .await;
    let r = cancel(&t, &id, None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["prediction"]["status"], "CANCELLED", "{body}");
    // The worker receives its message, starts nothing and deletes it.
    assert_eq!(t.work_once().await, Outcome::Cancelled);
    let p = t.prediction(&id).await;
    assert_eq!(
        (p["status"].as_str(), p["attempt"].as_i64()),
        (Some("CANCELLED"), Some(0)),
        "{p}"
    );
    assert!(p["completed_at"].is_null(), "nothing completed: {p}");
    assert!(!result_stored(&t, &id));
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0));
    assert_eq!(
        t.get(&format!("/api/predictions/{id}/results"))
            .await
            .status(),
        409
    );
    // Cancelling again: it has finished, as CANCELLED.
    let again = cancel(&t, &id, None).await;
    assert_eq!(again.status(), 409);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "CANCELLED");
}

#[tokio::test]
async fn a_running_prediction_stops_at_its_next_batch_and_records_nothing() {
    let t = TestApp::spawn_with(|c| c.max_upload_bytes = 64 * 1024 * 1024).await;
    // Big enough that scoring lasts well beyond a heartbeat.
    let id = t
        .upload_ok("big.csv", synthetic_telco(150_000).into_bytes())
        .await;
    let worker = t.worker.clone();
    let run = tokio::spawn(async move { worker.run_once(Duration::from_secs(2)).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while t.prediction(&id).await["status"] != "RUNNING" {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = cancel(&t, &id, None).await;
    assert_eq!(r.status(), 200);
    let outcome = run.await.unwrap().unwrap().unwrap();
    assert_eq!(outcome, Outcome::Cancelled);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "CANCELLED", "{p}");
    assert_eq!(p["rows_total"], Value::Null, "no result recorded: {p}");
    assert_eq!(p["results_url"], Value::Null, "{p}");
    assert!(!result_stored(&t, &id), "a cancelled run stores no result");
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.delayed, stats.dead),
        (0, 0, 0, 0),
        "the message is deleted, not retried"
    );
}

#[tokio::test]
async fn a_finished_job_answers_409_with_its_status_and_another_users_id_404() {
    let t = signed_in_app().await;
    let key = |user: &'static str| {
        let db = t.app.db.clone();
        async move {
            db.create_api_key(&user.parse().unwrap(), "test")
                .await
                .unwrap()
                .secret
        }
    };
    let (alice, bob) = (key("user_alice").await, key("user_bob").await);
    let app = &t;
    let upload = move |who: String, rows: usize| async move {
        app.upload_as(&who, "a.csv", synthetic_telco(rows).into_bytes())
            .await
    };
    let r = upload(alice.clone(), 5).await;
    assert_eq!(r.status(), 202);
    let done = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, Outcome::Completed);
    let r = cancel(&t, &done, Some(&alice)).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "COMPLETED", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already COMPLETED"),
        "{body}"
    );

    // Alice's queued job: Bob's cancel looks exactly like one of a missing id, and changes
    // nothing.
    let r = upload(alice.clone(), 5).await;
    let queued = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5";
    let theirs = cancel(&t, &queued, Some(&bob)).await;
    let absent = cancel(&t, missing, Some(&bob)).await;
    assert_eq!(
        (theirs.status().as_u16(), absent.status().as_u16()),
        (404, 404)
    );
    assert_eq!(
        theirs.text().await.unwrap().replace(&queued, "ID"),
        absent.text().await.unwrap().replace(missing, "ID")
    );
    let p: Value = t
        .client
        .get(format!("{}/api/predictions/{queued}", t.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["prediction"]["status"], "QUEUED", "{p}");
    assert_eq!(cancel(&t, "not-an-id", Some(&bob)).await.status(), 400);
    assert_eq!(cancel(&t, &queued, None).await.status(), 401);
}

#[tokio::test]
async fn the_binary_cancels_a_queued_prediction_and_refuses_a_finished_one() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(5).into_bytes())
        .await;
    let run = |id: &str| {
        Command::new(env!("CARGO_BIN_EXE_retainwise"))
            .args(["queue", "cancel", id])
            .env("RETAINWISE_DATA_DIR", t.dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("RETAINWISE_DATABASE_URL")
            .env_remove("RETAINWISE_STORAGE_URL")
            .env_remove("RETAINWISE_QUEUE_URL")
            .output()
            .unwrap()
    };
    let out = run(&id);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("prediction {id} cancelled")),
        "{text}"
    );
    assert_eq!(t.prediction(&id).await["status"], "CANCELLED");
    assert_eq!(t.work_once().await, Outcome::Cancelled);

    let out = run(&id);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already CANCELLED"), "{err}");
    let out = run("6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no prediction"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn browser_cancel_button_cancels_a_queued_job() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn().await;
    // No worker runs: the job stays QUEUED until the button is pressed.
    let id = t
        .upload_ok("customers.csv", synthetic_telco(5).into_bytes())
        .await;
    c.goto(&format!("{}/predictions", t.base)).await.unwrap();
    let status = text_of(&c, "table.jobs tbody td[data-label=Status]").await;
    assert!(status.contains("QUEUED"), "{status}");
    screenshots(&c, "predictions-cancel-button").await;
    // The listing is replaced every few seconds: find and press the button in one script call.
    c.execute(
        "document.querySelector('table.jobs form.cancel button').click()",
        vec![],
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = text_of(&c, "table.jobs tbody td[data-label=Status]").await;
        if status.contains("CANCELLED") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed CANCELLED: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.current_url().await.unwrap().path(), "/predictions");
    let buttons = c
        .execute(
            "return document.querySelectorAll('table.jobs form.cancel').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(buttons, 0, "a cancelled job has no cancel button");
    assert_eq!(t.prediction(&id).await["status"], "CANCELLED");
    c.close().await.unwrap();
}
