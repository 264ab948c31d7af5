//! Scheduled re-scoring with an injected clock (`schedules::tick::tick(app, now)`, never a real
//! wait): two workers ticking at the same slot queue one prediction; three slots give three
//! predictions and each customer three points of history; a missing source and a quota refusal
//! are recorded skipped with the reason; missed slots run once; the API's refusals name the
//! field; the page lists next run and runs; the CLI adds, lists and removes.

use retainwise::app::App;
use retainwise::domain::{ObjectKey, OrgId};
use retainwise::schedules::{self, tick::tick, CronExpr};
use serde_json::{json, Value};

use crate::helpers::*;

async fn post(t: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = t
        .client
        .post(format!("{}{path}", t.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn json_of(t: &TestApp, path: &str) -> Value {
    let r = t.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Adds a schedule through the API; returns its id.
async fn add(t: &TestApp, cron: &str, source: &str) -> String {
    let (status, body) = post(
        t,
        "/api/schedules",
        json!({ "cron": cron, "source": source }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["schedule"]["id"].as_str().unwrap().to_owned()
}

/// The schedule's next slot after its creation, by the same cron arithmetic as the worker.
fn next_slot(cron: &str, after: i64) -> i64 {
    cron.parse::<CronExpr>().unwrap().next_after(after).unwrap()
}

async fn count(app: &App, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(app.db.pool()).await.unwrap();
    n
}

/// The org's upload folder key of `name`.
fn org_key(name: &str) -> ObjectKey {
    let raw = format!("uploads/{}/{name}", OrgId::local().folder());
    ObjectKey::parse_upload(&raw, "file:///unused", &OrgId::local()).unwrap()
}

#[tokio::test]
async fn two_workers_ticking_at_the_same_slot_queue_exactly_one_prediction() {
    let t = TestApp::spawn().await;
    two_workers_one_prediction(&t).await;
}

#[tokio::test]
async fn on_postgres_two_workers_ticking_at_the_same_slot_queue_exactly_one_prediction() {
    let Some(t) = TestApp::spawn_postgres().await else {
        return;
    };
    two_workers_one_prediction(&t).await;
}

async fn two_workers_one_prediction(t: &TestApp) {
    let first = t
        .upload_ok("jan.csv", synthetic_telco(40).into_bytes())
        .await;
    TestApp::drain(&t.worker, 5).await;
    assert_eq!(t.prediction(&first).await["status"], "COMPLETED");
    let now = retainwise::time::now_ms();
    let id = add(t, "0 * * * *", "latest").await;
    let slot = next_slot("0 * * * *", now);
    // A second worker process: its own pools on the same database and objects.
    let other = App::open((*t.app.config).clone()).await.unwrap();
    let apps = [t.app.clone(), other.clone(), t.app.clone(), other];
    let ticks = apps.iter().map(|app| tick(app, slot + 1_000));
    let ticked: Vec<_> = futures::future::join_all(ticks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let queued: u64 = ticked.iter().map(|t| t.queued).sum();
    let taken: u64 = ticked.iter().map(|t| t.taken).sum();
    let skipped: u64 = ticked.iter().map(|t| t.skipped).sum();
    assert_eq!((queued, skipped), (1, 0), "{ticked:?}");
    assert!(taken <= 3, "{ticked:?}");
    assert_eq!(count(&t.app, "SELECT COUNT(*) FROM schedule_runs").await, 1);
    assert_eq!(count(&t.app, "SELECT COUNT(*) FROM predictions").await, 2);
    // The same slot ticked again later queues nothing more.
    let again = tick(&t.app, slot + 30_000).await.unwrap();
    assert_eq!(again.queued + again.skipped, 0, "{again:?}");
    assert_eq!(count(&t.app, "SELECT COUNT(*) FROM predictions").await, 2);

    // The queued prediction is an ordinary one and completes with the same rows.
    TestApp::drain(&t.worker, 5).await;
    let body = json_of(t, &format!("/api/schedules/{id}")).await;
    let runs = body["schedule"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{body}");
    assert_eq!(runs[0]["status"], "QUEUED");
    assert_eq!(runs[0]["slot"], retainwise::time::rfc3339(slot));
    let scheduled = runs[0]["prediction_id"].as_str().unwrap();
    let p = t.prediction(scheduled).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(t.results(scheduled).await, t.results(&first).await);
}

#[tokio::test]
async fn three_slots_queue_three_predictions_and_each_customer_has_three_points_of_history() {
    let t = TestApp::spawn().await;
    three_slots(&t).await;
}

/// The same on Postgres and S3 (each run's copy of the source made by S3's CopyObject).
#[tokio::test]
async fn on_postgres_s3_three_slots_queue_three_predictions_with_three_points_of_history() {
    let Some(t) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    three_slots(&t).await;
}

async fn three_slots(t: &TestApp) {
    let csv = synthetic_telco(30);
    let customer = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let key = org_key("nightly-export.csv");
    t.app
        .storage
        .put_bytes(&key, csv.clone().into_bytes())
        .await
        .unwrap();
    let cron = "*/15 * * * *";
    let now = retainwise::time::now_ms();
    let id = add(t, cron, key.as_str()).await;
    let listed = json_of(t, "/api/schedules").await;
    let first = next_slot(cron, now);
    assert_eq!(
        listed["schedules"][0]["next_run_at"],
        retainwise::time::rfc3339(first),
        "{listed}"
    );
    // Before the first slot nothing is due.
    let early = tick(&t.app, first - 1).await.unwrap();
    assert_eq!(early.queued + early.skipped, 0);

    let mut slot = first;
    for _ in 0..3 {
        let ticked = tick(&t.app, slot + 5_000).await.unwrap();
        assert_eq!(ticked.queued, 1, "{ticked:?}");
        let outcomes = TestApp::drain(&t.worker, 5).await;
        assert!(
            outcomes.contains(&retainwise::worker::Outcome::Completed),
            "{outcomes:?}"
        );
        slot = next_slot(cron, slot);
    }
    let history = json_of(t, &format!("/api/customers/{customer}")).await;
    assert_eq!(history["total"], 3, "{history}");
    let body = json_of(t, &format!("/api/schedules/{id}")).await;
    let runs = body["schedule"]["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 3, "{body}");
    let from_runs: std::collections::BTreeSet<_> = runs
        .iter()
        .map(|r| r["prediction_id"].as_str().unwrap().to_owned())
        .collect();
    let from_history: std::collections::BTreeSet<_> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prediction_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(from_runs, from_history);

    // Each run scored its own copy of the source: rewriting the export later changes none.
    for p in &from_runs {
        assert_eq!(t.prediction(p).await["status"], "COMPLETED");
    }
    // The audit log says which schedule queued each run.
    let uploads = count(
        &t.app,
        &format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'upload' AND user_id = 'schedule {id}'"
        ),
    )
    .await;
    assert_eq!(uploads, 3);

    // Five slots pass with no worker: one run, at the latest of them, counting four missed.
    let latest_missed = (0..4).fold(slot, |s, _| next_slot(cron, s));
    let ticked = tick(&t.app, latest_missed + 60_000).await.unwrap();
    assert_eq!(ticked.queued, 1, "{ticked:?}");
    let body = json_of(t, &format!("/api/schedules/{id}")).await;
    let newest = &body["schedule"]["runs"][0];
    assert_eq!(
        newest["slot"],
        retainwise::time::rfc3339(latest_missed),
        "{body}"
    );
    assert_eq!(newest["missed"], 4, "{body}");
    assert_eq!(count(&t.app, "SELECT COUNT(*) FROM schedule_runs").await, 4);
}

#[tokio::test]
async fn a_missing_source_and_a_quota_refusal_are_recorded_skipped_with_the_reason() {
    let t = TestApp::spawn_with(|c| c.default_quota_rows = Some(25)).await;
    let now = retainwise::time::now_ms();
    // No completed upload yet, and a key nobody wrote.
    let latest = add(&t, "0 6 * * *", "latest").await;
    let missing_key = org_key("not-written.csv");
    let missing = add(&t, "0 6 * * *", missing_key.as_str()).await;
    let slot = next_slot("0 6 * * *", now);
    let ticked = tick(&t.app, slot + 1_000).await.unwrap();
    assert_eq!((ticked.queued, ticked.skipped), (0, 2), "{ticked:?}");
    let run = |id: String| {
        let t = &t;
        async move { json_of(t, &format!("/api/schedules/{id}")).await["schedule"]["runs"][0].clone() }
    };
    let r = run(latest.clone()).await;
    assert_eq!(r["status"], "SKIPPED");
    assert!(r["reason"].as_str().unwrap().contains("no upload"), "{r}");
    let r = run(missing.clone()).await;
    assert_eq!(r["status"], "SKIPPED");
    assert!(
        r["reason"].as_str().unwrap().contains("not-written.csv"),
        "{r}"
    );

    // Twenty rows are scored; the next slot's 20 more would pass the quota of 25.
    let upload = t.upload_ok("a.csv", synthetic_telco(20).into_bytes()).await;
    TestApp::drain(&t.worker, 5).await;
    assert_eq!(t.prediction(&upload).await["status"], "COMPLETED");
    let next = next_slot("0 6 * * *", slot);
    let ticked = tick(&t.app, next + 1_000).await.unwrap();
    assert_eq!(ticked.skipped, 2, "{ticked:?}");
    let r = run(latest).await;
    assert_eq!(r["status"], "SKIPPED", "{r}");
    assert!(r["prediction_id"].is_null(), "{r}");
    assert!(r["reason"].as_str().unwrap().contains("quota"), "{r}");
    // Nothing was queued, and no copy of the source is left behind.
    assert_eq!(count(&t.app, "SELECT COUNT(*) FROM predictions").await, 1);
    let folder = t
        .dir
        .path()
        .join("objects/uploads")
        .join(OrgId::local().folder().as_ref());
    assert_eq!(std::fs::read_dir(folder).unwrap().count(), 1);

    // The page shows both reasons.
    let page = t.get("/schedules").await.text().await.unwrap();
    assert!(page.contains("quota"), "{page}");
    assert!(page.contains("not-written.csv"), "{page}");
}

#[tokio::test]
async fn bad_fields_are_422_naming_the_field_and_pause_resume_remove_are_audited() {
    let t = TestApp::spawn().await;
    for (body, field, expected) in [
        (
            json!({ "cron": "61 * * * *" }),
            "cron",
            "5-field cron expression in UTC",
        ),
        (json!({ "cron": "0 6 * *" }), "cron", "has 4 fields"),
        (
            json!({ "cron": "0 0 6 * * 1" }),
            "cron",
            "minute hour day-of-month",
        ),
        (json!({ "source": "latest" }), "cron", "missing"),
        (
            json!({ "cron": "0 6 * * 1", "source": "results/other/x.csv" }),
            "source",
            "uploads/",
        ),
    ] {
        let (status, answer) = post(&t, "/api/schedules", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        let text = answer.to_string();
        assert!(
            text.contains(&format!("field {field}")) && text.contains(expected),
            "{body}: {text}"
        );
    }
    let (status, _) = post(&t, "/api/schedules", json!({ "when": "daily" })).await;
    assert_eq!(status, 400);

    let id = add(&t, "0 6 * * 1", "latest").await;
    let (status, body) = post(&t, &format!("/api/schedules/{id}/pause"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schedule"]["paused"], true);
    assert!(body["schedule"]["next_run_at"].is_null());
    // Paused: a slot passes and nothing runs.
    let slot = next_slot("0 6 * * 1", retainwise::time::now_ms());
    let ticked = tick(&t.app, slot + 1_000).await.unwrap();
    assert_eq!(ticked.queued + ticked.skipped, 0);
    let (status, body) = post(&t, &format!("/api/schedules/{id}/resume"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schedule"]["paused"], false);
    let r = t
        .client
        .delete(format!("{}/api/schedules/{id}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = t
        .client
        .delete(format!("{}/api/schedules/{id}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(&t, "/api/schedules").await["schedules"], json!([]));
    let actions: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_log WHERE record_id = $1 ORDER BY seq")
            .bind(&id)
            .fetch_all(t.app.db.pool())
            .await
            .unwrap();
    let actions: Vec<_> = actions.into_iter().map(|(a,)| a).collect();
    assert_eq!(
        actions,
        [
            "schedule.add",
            "schedule.pause",
            "schedule.resume",
            "schedule.remove"
        ]
    );
}

#[tokio::test]
async fn the_page_adds_a_schedule_and_lists_its_next_run_and_runs_linking_to_predictions() {
    let t = TestApp::spawn().await;
    t.upload_ok("jan.csv", synthetic_telco(10).into_bytes())
        .await;
    TestApp::drain(&t.worker, 5).await;
    let origin = t.base.clone();
    let form = |fields: &[(&str, &str)]| {
        t.client
            .post(format!("{}/schedules", t.base))
            .header("Origin", &origin)
            .form(fields)
            .send()
    };
    let refused = form(&[("cron", "every day"), ("source", "latest")])
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let text = refused.text().await.unwrap();
    assert!(text.contains("cron: "), "{text}");
    let added = form(&[
        ("cron", "30 2 * * *"),
        ("source", "latest"),
        ("name", "Nightly"),
    ])
    .await
    .unwrap();
    assert!(added.status().is_success() || added.status().is_redirection());
    let list = schedules::list(t.app.db.pool(), &OrgId::local(), retainwise::time::now_ms())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    let slot = list[0].next_run_at.unwrap();
    assert_eq!(tick(&t.app, slot).await.unwrap().queued, 1);
    let page = t.get("/schedules").await.text().await.unwrap();
    let run = schedules::list(t.app.db.pool(), &OrgId::local(), retainwise::time::now_ms())
        .await
        .unwrap()
        .remove(0)
        .runs
        .remove(0);
    let prediction = run.prediction_id.unwrap();
    assert!(page.contains("Nightly"), "{page}");
    assert!(page.contains("next run"), "{page}");
    assert!(
        page.contains(&format!("href=\"/predictions/{prediction}\"")),
        "{page}"
    );
}

#[tokio::test]
async fn the_cli_adds_lists_and_removes_a_schedule_and_names_a_bad_cron() {
    let t = TestApp::spawn().await;
    let org = OrgId::local();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
            .args(args)
            .env("RETAINWISE_DATABASE_URL", &t.app.config.database_url)
            .env("RETAINWISE_DATA_DIR", t.dir.path())
            .output()
            .unwrap()
    };
    let text = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let bad = run(&[
        "schedule",
        "add",
        "--org",
        org.as_str(),
        "--cron",
        "0 25 * * *",
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("--cron: \"0 25 * * *\""),
        "{}",
        text(&bad)
    );
    let added = run(&[
        "schedule",
        "add",
        "--org",
        org.as_str(),
        "--cron",
        "0 6 * * 1",
        "--name",
        "Mondays",
    ]);
    assert!(added.status.success(), "{}", text(&added));
    let id = String::from_utf8_lossy(&added.stdout).trim().to_owned();
    let listed = run(&["schedule", "list", "--org", org.as_str()]);
    let listed = text(&listed);
    assert!(
        listed.contains(&id) && listed.contains("\"Mondays\""),
        "{listed}"
    );
    assert!(listed.contains("next=20"), "{listed}");
    // The API sees what the operator added.
    let api = json_of(&t, "/api/schedules").await;
    assert_eq!(api["schedules"][0]["id"], id.as_str());
    assert_eq!(api["schedules"][0]["created_by"], "operator (cli)");
    let removed = run(&["schedule", "remove", "--org", org.as_str(), &id]);
    assert!(removed.status.success(), "{}", text(&removed));
    let again = run(&["schedule", "remove", "--org", org.as_str(), &id]);
    assert!(!again.status.success());
    assert!(text(&again).contains("has no schedule"), "{}", text(&again));
}
