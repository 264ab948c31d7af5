//! Per-user caps under concurrency: many uploads (and trainings) of one user sent at once over
//! HTTP to the real server are admitted exactly up to the cap, on SQLite and on Postgres; the
//! rest get 429 with a sentence that says what the limit is.

use futures::future::join_all;
use serde_json::Value;

use crate::helpers::*;

/// Uploads sent at once by one user.
const PARALLEL: usize = 50;
/// The active-job cap of these tests.
const CAP: u32 = 20;

/// Sends `PARALLEL` uploads at once and returns each one's status and body.
async fn race_uploads(t: &TestApp) -> Vec<(u16, Value)> {
    // Files of a few hundred rows keep each request busy storing bytes between its early check
    // and its insert, the window that let every upload through before the cap was atomic.
    let csv = synthetic_telco(400);
    let uploads = (0..PARALLEL).map(|i| {
        let bytes = csv.clone().into_bytes();
        async move {
            let r = t.upload(&format!("race-{i}.csv"), bytes).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    join_all(uploads).await
}

/// Exactly `CAP` accepted, every other one 429 naming the limit, and the database agrees.
async fn assert_cap_held(t: &TestApp, outcomes: &[(u16, Value)]) {
    let accepted = outcomes.iter().filter(|(s, _)| *s == 202).count();
    let refused: Vec<&Value> = outcomes
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        accepted + refused.len(),
        PARALLEL,
        "every upload is either accepted or refused with 429: {outcomes:?}"
    );
    assert_eq!(accepted, CAP as usize, "exactly the cap is admitted");
    for body in refused {
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("RETAINWISE_MAX_ACTIVE_JOBS_PER_USER") && detail.contains("limit"),
            "the refusal names the limit: {detail}"
        );
    }
    let list: Value = t
        .get("/api/predictions?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], CAP, "as many predictions stored as admitted");
    // The refused uploads left no objects behind.
    let uploads = t.dir.path().join("objects/uploads");
    if uploads.exists() {
        let stored: usize = walk_files(&uploads);
        assert_eq!(stored, CAP as usize, "one stored file per admitted upload");
    }
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn parallel_uploads_are_admitted_exactly_up_to_the_cap_on_sqlite() {
    let t = TestApp::spawn_with(|c| c.max_active_jobs_per_user = CAP).await;
    let outcomes = race_uploads(&t).await;
    assert_cap_held(&t, &outcomes).await;
}

#[tokio::test]
async fn parallel_uploads_are_admitted_exactly_up_to_the_cap_on_postgres() {
    let Some(t) = TestApp::spawn_postgres_with(|c| c.max_active_jobs_per_user = CAP).await else {
        return;
    };
    let outcomes = race_uploads(&t).await;
    assert_cap_held(&t, &outcomes).await;
}

/// Sends `n` trainings at once; returns their statuses and bodies.
async fn race_trainings(t: &TestApp, n: usize) -> Vec<(u16, Value)> {
    let csv = synthetic_telco(400);
    let posts = (0..n).map(|i| {
        let part = reqwest::multipart::Part::bytes(csv.clone().into_bytes())
            .file_name(format!("history-{i}.csv"));
        let form = reqwest::multipart::Form::new()
            .text("label", "Partner")
            .part("file", part);
        async move {
            let r = t
                .client
                .post(format!("{}/api/models", t.base))
                .multipart(form)
                .send()
                .await
                .expect("training request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    join_all(posts).await
}

async fn assert_one_training(outcomes: &[(u16, Value)]) {
    let accepted = outcomes.iter().filter(|(s, _)| *s == 202).count();
    let refused: Vec<&Value> = outcomes
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(accepted + refused.len(), outcomes.len(), "{outcomes:?}");
    assert_eq!(accepted, 1, "one training at a time per user: {outcomes:?}");
    for body in refused {
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("one training per user"),
            "the refusal says why: {detail}"
        );
    }
}

#[tokio::test]
async fn parallel_trainings_admit_one_at_a_time_on_sqlite() {
    let t = TestApp::spawn().await;
    assert_one_training(&race_trainings(&t, 12).await).await;
}

#[tokio::test]
async fn parallel_trainings_admit_one_at_a_time_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else {
        return;
    };
    assert_one_training(&race_trainings(&t, 12).await).await;
}

/// Paging beyond what SQL's signed 64-bit OFFSET holds is refused with 400 (it wrapped to a
/// negative: SQLite answered the first page, Postgres 500), the largest offset answers an empty
/// page, and the web list's page number cannot overflow either.
async fn paging_is_validated(t: &TestApp) {
    t.upload_ok("one.csv", synthetic_telco(3).into_bytes())
        .await;
    let r = t.get("/api/predictions?offset=9223372036854775808").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("9223372036854775807"),
        "{body}"
    );
    let r = t.get("/api/predictions?offset=18446744073709551615").await;
    assert_eq!(r.status(), 400);
    let r = t.get("/api/predictions?offset=9223372036854775807").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["predictions"], serde_json::json!([]), "{body}");
    assert_eq!(body["total"], 1);
    let r = t.get("/predictions?page=18446744073709551615").await;
    assert!(
        r.status() == 200 || r.status() == 400,
        "the web list answers, no 500: {}",
        r.status()
    );
}

#[tokio::test]
async fn paging_is_validated_on_sqlite() {
    paging_is_validated(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn paging_is_validated_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else {
        return;
    };
    paging_is_validated(&t).await;
}

/// A file whose scored results would outgrow `RETAINWISE_MAX_RESULT_BYTES` (scoring adds
/// probabilities and explanations to every row) fails with the limit named, stores no result,
/// and is not retried.
#[tokio::test]
async fn results_larger_than_the_limit_fail_with_the_limit_named() {
    let t = TestApp::spawn_with(|c| c.max_result_bytes = 64 * 1024).await;
    let id = t
        .upload_ok("many.csv", synthetic_telco(2_000).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Failed);
    let p = t.prediction(&id).await;
    let error = p["error_message"].as_str().unwrap_or_default();
    assert!(
        error.contains("RETAINWISE_MAX_RESULT_BYTES") && error.contains("split"),
        "{p}"
    );
    // The limit as set, exactly (64 KiB, not a rounded "1 MB").
    assert!(error.contains("limit of 64 KiB"), "{p}");
    // Its report says why it failed.
    let r = t.get(&format!("/api/predictions/{id}/report")).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["status"], "FAILED");
    assert_eq!(report["error"], error);
    assert!(!t
        .dir
        .path()
        .join(format!("objects/results/local/{id}.csv"))
        .exists());
    // A small file under the same limit is scored as usual.
    let small = t
        .upload_ok("few.csv", synthetic_telco(20).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    assert_eq!(t.prediction(&small).await["status"], "COMPLETED");
}

/// Posts one training of `csv` (label `Partner`) and runs it; returns the training's JSON.
async fn train_once(t: &TestApp, csv: String) -> Value {
    let part = reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("history.csv");
    let form = reqwest::multipart::Form::new()
        .text("label", "Partner")
        .part("file", part);
    let r = t
        .client
        .post(format!("{}/api/models", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.work_once().await;
    let body: Value = t
        .get(&format!("/api/models/trainings/{id}"))
        .await
        .json()
        .await
        .unwrap();
    body["training"].clone()
}

/// A training over the row × column budget, or whose memory estimate is over the memory
/// budget, is refused before the search starts, with the limit named.
#[tokio::test]
async fn trainings_over_their_budget_are_refused_with_the_limit_named() {
    // 100 rows × 20 columns = 2,000 cells.
    let t = TestApp::spawn_with(|c| c.training_max_cells = 1_000).await;
    let training = train_once(&t, synthetic_telco(100)).await;
    assert_eq!(training["status"], "FAILED", "{training}");
    let error = training["error_message"].as_str().unwrap();
    assert!(
        error.contains("RETAINWISE_TRAINING_MAX_CELLS") && error.contains("2000 cells"),
        "{error}"
    );

    let t = TestApp::spawn_with(|c| c.training_max_memory_mb = 0).await;
    let training = train_once(&t, synthetic_telco(100)).await;
    assert_eq!(training["status"], "FAILED", "{training}");
    let error = training["error_message"].as_str().unwrap();
    assert!(
        error.contains("RETAINWISE_TRAINING_MAX_MEMORY_MB"),
        "{error}"
    );

    // The time budget stops a search under way (here at its first fit), naming the limit.
    let t = TestApp::spawn_with(|c| c.training_max_time = std::time::Duration::ZERO).await;
    let training = train_once(&t, synthetic_telco(100)).await;
    assert_eq!(training["status"], "FAILED", "{training}");
    let error = training["error_message"].as_str().unwrap();
    assert!(
        error.contains("RETAINWISE_TRAINING_MAX_SECONDS") && error.contains("time limit of 0 s"),
        "{error}"
    );
}

/// Trainings never take every receive loop of a worker: with two loops and two users'
/// trainings queued ahead of a third user's small scoring job, the scoring job completes while
/// both trainings are still unfinished (before, both loops trained and it waited).
#[tokio::test]
async fn scoring_does_not_wait_behind_other_users_trainings() {
    let t = TestApp::spawn_with(|c| {
        c.auth = retainwise::auth::AuthConfig::Secret {
            secret: "a-test-secret-that-is-at-least-32-bytes-long"
                .to_owned()
                .into(),
            issuer: None,
            audience: None,
        }
    })
    .await;
    let mut keys = Vec::new();
    for user in ["user_alice", "user_bob", "user_carol"] {
        keys.push(
            t.app
                .db
                .create_api_key(&user.parse().unwrap(), "test")
                .await
                .unwrap()
                .secret,
        );
    }
    let mut trainings = Vec::new();
    for key in &keys[..2] {
        let part = reqwest::multipart::Part::bytes(synthetic_telco(1_500).into_bytes())
            .file_name("history.csv");
        let form = reqwest::multipart::Form::new()
            .text("label", "Partner")
            .part("file", part);
        let r = t
            .client
            .post(format!("{}/api/models", t.base))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        trainings.push((
            key.clone(),
            r.json::<Value>().await.unwrap()["training_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    let r = t
        .upload_as(&keys[2], "c.csv", synthetic_telco(10).into_bytes())
        .await;
    assert_eq!(r.status(), 202);
    let scoring = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut options = fast_worker_options();
    options.concurrency = 2;
    let worker = retainwise::worker::Worker::new(t.app.clone(), options);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    let get = |key: &str, path: String| {
        t.client
            .get(format!("{}{path}", t.base))
            .bearer_auth(key.to_owned())
            .send()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let p: Value = get(&keys[2], format!("/api/predictions/{scoring}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if p["prediction"]["status"] == "COMPLETED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "scoring never completed: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (key, id) in &trainings {
        let body: Value = get(key, format!("/api/models/trainings/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(
            body["training"]["status"], "COMPLETED",
            "the scoring job waited for a training to finish: {body}"
        );
    }
    stop.cancel();
    running.await.unwrap();
}

/// At most two Excel workbooks of one user are prepared at once: six requests sent together
/// for a large result get 200 or 429 (naming what to wait for), never more than two 200s while
/// the first ones are still being written, and a later request succeeds again.
#[tokio::test]
async fn concurrent_excel_exports_of_one_user_are_bounded() {
    let t = TestApp::spawn_with(|c| c.max_upload_bytes = 32 * 1024 * 1024).await;
    let id = t
        .upload_ok("many.csv", synthetic_telco(20_000).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let path = format!("/predictions/{id}/export.xlsx");
    let requests = (0..6).map(|_| async {
        let r = t.get(&path).await;
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        (status, body)
    });
    let outcomes = join_all(requests).await;
    let ok = outcomes.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = outcomes.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(ok + refused.len(), 6, "only 200 or 429");
    assert!(!refused.is_empty(), "six at once were all prepared");
    for (_, body) in refused {
        assert!(String::from_utf8_lossy(body).contains("Excel exports at once"));
    }
    assert_eq!(
        t.get(&path).await.status(),
        200,
        "a slot is free again afterwards"
    );
}
