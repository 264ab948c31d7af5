//! The whole flow: upload → queue → worker → results, on the embedded default.

use std::time::Duration;

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn telco_file_is_scored_end_to_end_and_ranks_churners() {
    let Some(telco) = telco_csv() else { return };
    let bytes = std::fs::read(&telco).unwrap();
    let t = TestApp::spawn().await;
    let id = t.upload_ok("telco.csv", bytes.clone()).await;
    assert_eq!(t.prediction(&id).await["status"], "QUEUED");
    let early = t.get(&format!("/api/predictions/{id}/results")).await;
    assert_eq!(early.status(), 409, "results before completion must be 409");

    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(p["rows_processed"], 7043);
    assert_eq!(p["rows_rejected"], 0);
    assert_eq!(p["attempt"], 1);
    assert_eq!(p["summary"]["rows_scored"], 7043);

    let response = t.get(&format!("/api/predictions/{id}/results")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let text = response.text().await.unwrap();
    let (header, rows) = parse_csv(&text);
    for name in [
        "customer_id",
        "churn_probability",
        "retention_probability",
        "risk_level",
        "model_version",
    ] {
        column(&header, name);
    }
    assert_eq!(rows.len(), 7043);
    let (pc, rc, lc) = (
        column(&header, "churn_probability"),
        column(&header, "retention_probability"),
        column(&header, "risk_level"),
    );
    let mut probabilities = Vec::new();
    for row in &rows {
        let p: f64 = row[pc].parse().unwrap();
        let r: f64 = row[rc].parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{p}");
        assert!((p + r - 1.0).abs() < 1e-5);
        let expected = if p >= 0.70 {
            "high"
        } else if p >= 0.40 {
            "medium"
        } else {
            "low"
        };
        assert_eq!(row[lc], expected);
        probabilities.push(p);
    }
    // The file's own Churn column, in the same order, judges the ranking.
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let churn_col = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "Churn")
        .unwrap();
    let labels: Vec<bool> = reader
        .records()
        .map(|r| &r.unwrap()[churn_col] == "Yes")
        .collect();
    let auc =
        retainwise_model::metrics::roc_auc(&labels, &probabilities).expect("both classes present");
    assert!(auc >= 0.80, "ROC AUC {auc} below 0.80");

    // A duplicate delivery of the same message changes nothing.
    let body = serde_json::to_string(&retainwise::message::PredictionMessage {
        prediction_id: id.clone(),
        user_id: "local".into(),
        upload_id: p["upload_id"].as_str().unwrap().into(),
        object_key: format!("uploads/local/{}.csv", p["upload_id"].as_str().unwrap()),
        timestamp: retainwise::time::rfc3339(retainwise::time::now_ms()),
        priority: "normal".into(),
    })
    .unwrap();
    t.app
        .queue
        .send(&retainwise_queue::OutgoingMessage {
            body,
            priority: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(t.work_once().await, Outcome::Skipped);
    assert_eq!(
        t.results(&id).await,
        text,
        "a duplicate delivery must not change the result"
    );
    assert_eq!(t.prediction(&id).await["attempt"], 1);
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0));
}

#[tokio::test]
async fn background_worker_wakes_on_upload_and_lists_newest_first() {
    let t = TestApp::spawn().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut options = fast_worker_options();
    // A long receive wait proves the wake-up comes from the send, not from a poll timeout.
    options.receive_wait = Duration::from_secs(20);
    let worker = retainwise::worker::Worker::new(t.app.clone(), options);
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { worker.run(shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = t
        .upload_ok("first.csv", synthetic_telco(50).into_bytes())
        .await;
    let p = t.wait_finished(&first, Duration::from_secs(5)).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    let second = t
        .upload_ok("second.csv", synthetic_telco(10).into_bytes())
        .await;
    assert_eq!(
        t.wait_finished(&second, Duration::from_secs(5)).await["status"],
        "COMPLETED"
    );

    let list: Value = t
        .get("/api/predictions?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["predictions"].as_array().unwrap().len(), 1);
    assert_eq!(list["predictions"][0]["id"], second.as_str());
    let page2: Value = t
        .get("/api/predictions?limit=1&offset=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["predictions"][0]["id"], first.as_str());
    assert_eq!(t.get("/api/predictions?limit=0").await.status(), 400);

    shutdown.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(25), running)
        .await
        .expect("worker stops")
        .unwrap();
    assert_eq!(
        (summary.processed, summary.completed, summary.failed),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn bad_rows_are_listed_and_the_rest_scored() {
    let t = TestApp::spawn().await;
    let mut csv = synthetic_telco(20);
    // Row 3: a tenure that is not a number. Row 5: a blank TotalCharges (missing, still scored).
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let mut fields: Vec<String> = lines[3].split(',').map(str::to_owned).collect();
    fields[5] = "twelve".into();
    lines[3] = fields.join(",");
    let mut fields: Vec<String> = lines[5].split(',').map(str::to_owned).collect();
    fields[19] = " ".into();
    lines[5] = fields.join(",");
    csv = lines.join("\n") + "\n";
    let id = t.upload_ok("bad_rows.csv", csv.into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED");
    assert_eq!(p["rows_rejected"], 1);
    assert_eq!(p["rows_processed"], 19);
    let issue = &p["summary"]["issues"][0];
    assert_eq!(issue["row"], 3, "{issue}");
    assert_eq!(issue["column"], "tenure");
    assert_eq!(issue["value"], "twelve");
    assert_eq!(issue["customer_id"], "0002-SYNT");
    let (_, rows) = parse_csv(&t.results(&id).await);
    assert_eq!(rows.len(), 19);
}

/// What the worker would refuse at once is refused at upload (400 with the scorer's own
/// sentence), not accepted with 202 to fail later: columns the model cannot map, a header with
/// no rows, binary junk. Nothing is queued or stored for it.
#[tokio::test]
async fn a_file_the_model_cannot_read_is_refused_at_upload() {
    let t = TestApp::spawn().await;
    // Ten of the model's nineteen inputs absent: more than half, so every row would be
    // rejected (fewer are scored as missing).
    let too_few: String = synthetic_telco(5)
        .lines()
        .map(|l| l.split(',').take(10).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    let mut duplicated = String::new();
    for (i, line) in synthetic_telco(5).lines().enumerate() {
        let extra = if i == 0 {
            "Tenure"
        } else {
            line.split(',').nth(5).unwrap()
        };
        duplicated.push_str(&format!("{line},{extra}\n"));
    }
    let mut junk = b"customerID,tenure\n".to_vec();
    junk.extend((0..2000u32).map(|i| (i % 7) as u8));
    for (name, bytes, needed) in [
        (
            "too_few.csv",
            too_few.into_bytes(),
            vec!["MonthlyCharges", "TotalCharges", "at most 9 may be absent"],
        ),
        (
            "header.csv",
            format!("{TELCO_HEADER}\n").into_bytes(),
            vec!["no customer rows"],
        ),
        (
            "dupes.csv",
            duplicated.into_bytes(),
            vec!["\"tenure\" (column 6)", "\"Tenure\" (column 21)"],
        ),
        ("junk.csv", junk, vec!["not a CSV"]),
    ] {
        let r = t.upload(name, bytes).await;
        assert_eq!(r.status(), 400, "{name}");
        let body: serde_json::Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        for word in needed {
            assert!(detail.contains(word), "{name}: {detail}");
        }
    }
    let list: serde_json::Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 0, "nothing was queued");
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0));
    let uploads = t.dir.path().join("objects/uploads/local");
    assert!(
        !uploads.exists() || std::fs::read_dir(&uploads).unwrap().next().is_none(),
        "no stored object is left behind"
    );
}

/// The same story on Postgres: upload, a transient failure retried, completion, a duplicate
/// skipped — the portable SQL and the queue's Postgres claim under the real application.
#[tokio::test]
async fn the_story_runs_on_postgres_too() {
    let Some(t) = TestApp::spawn_postgres().await else {
        return;
    };
    let id = t
        .upload_ok("customers.csv", synthetic_telco(200).into_bytes())
        .await;
    let blocker = t.dir.path().join("objects/results/local");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    assert_eq!(t.work_once().await, Outcome::Retried);
    assert_eq!(t.prediction(&id).await["status"], "QUEUED");
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(
        (p["attempt"].as_i64(), p["rows_processed"].as_i64()),
        (Some(2), Some(200))
    );
    let (_, rows) = parse_csv(&t.results(&id).await);
    assert_eq!(rows.len(), 200);
    let list: Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0));
}

/// The story on the scale-out engines: Postgres for the database and queue, S3 (SeaweedFS) for
/// the objects. Upload, score, download, duplicate delivery skipped.
#[tokio::test]
async fn the_story_runs_on_postgres_and_s3() {
    let Some(t) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    assert!(t.app.storage.root_url().starts_with("s3://"));
    let id = t
        .upload_ok("customers.csv", synthetic_telco(300).into_bytes())
        .await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(p["rows_processed"], 300);
    let text = t.results(&id).await;
    assert_eq!(parse_csv(&text).1.len(), 300);
    // The result is an object in the bucket under the configured prefix.
    let key = retainwise::domain::ObjectKey::result(
        &retainwise::domain::OrgId::local(),
        id.parse().unwrap(),
    );
    assert!(t.app.storage.get_stream(&key).await.is_ok());
    let ready = t.get("/ready").await;
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    assert!(
        t.dir.path().join("objects").read_dir().is_err(),
        "nothing was written to the local folder"
    );
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format() {
    let t = TestApp::spawn().await;
    t.upload_ok("customers.csv", synthetic_telco(7).into_bytes())
        .await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let r = t.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for needle in [
        "retainwise_jobs_received_total",
        "retainwise_jobs_completed_total",
        "retainwise_job_stage_seconds_bucket{stage=\"score\"",
        "retainwise_rows_scored_total",
        "retainwise_queue_depth",
        "retainwise_http_requests_total{method=\"POST\",route=\"/api/csv\",status=\"202\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

/// The whole fleet configuration: Postgres, S3 and SQS (moto). The message goes through the
/// transactional outbox, the worker receives it from SQS, the result lands in S3.
#[tokio::test]
async fn the_story_runs_on_postgres_s3_and_sqs() {
    let Some(t) = TestApp::spawn_postgres_s3_sqs().await else {
        return;
    };
    let id = t
        .upload_ok("customers.csv", synthetic_telco(50).into_bytes())
        .await;
    let outcome = t
        .worker
        .run_once(std::time::Duration::from_secs(10))
        .await
        .unwrap()
        .expect("delivered");
    assert_eq!(outcome, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(p["rows_processed"], 50);
    assert_eq!(parse_csv(&t.results(&id).await).1.len(), 50);
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.dead),
        (0, 0, 0),
        "{stats:?}"
    );
}
