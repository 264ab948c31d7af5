//! Metering and quotas over the real server: the boundary (exactly at the quota, one row over,
//! rows held by a queued prediction), a completed prediction metered once however often its
//! completion is recorded, `GET /api/usage`, the Prometheus gauge, the default quota, and
//! `retainwise org quota` through the real binary.

use std::process::Command;

use retainwise::domain::OrgId;
use serde_json::Value;

use crate::helpers::{synthetic_telco, TestApp};

async fn usage(t: &TestApp) -> Value {
    t.get("/api/usage").await.json().await.unwrap()
}

/// The boundary on `t` (no sign-in: the local organisation): exactly at the quota accepted,
/// one row over refused, rows of a queued prediction held, a completion metered once.
async fn boundary(t: &TestApp) -> String {
    let org = OrgId::local();
    t.app.db.set_quota(&org, Some(10)).await.unwrap();

    let first = t
        .upload_ok("four.csv", synthetic_telco(4).into_bytes())
        .await;
    t.work_once().await;
    assert_eq!(t.prediction(&first).await["status"], "COMPLETED");
    let u = usage(t).await;
    assert_eq!(
        (
            &u["rows_scored"],
            &u["rows_reserved"],
            &u["quota"],
            &u["quota_source"]
        ),
        (
            &Value::from(4),
            &Value::from(0),
            &Value::from(10),
            &Value::from("organisation")
        ),
        "{u}"
    );

    // 4 used + 7 = 11 > 10: refused at once, naming quota, usage and the reset date.
    let r = t.upload("seven.csv", synthetic_telco(7).into_bytes()).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let detail = r.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    let resets_on = u["resets_on"].as_str().unwrap();
    for needle in [
        "7 rows",
        "used 4 of its 10 rows",
        resets_on,
        "retainwise org quota",
    ] {
        assert!(detail.contains(needle), "{needle:?} in {detail}");
    }
    let list: Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 1, "nothing was accepted");

    // Exactly at the quota: 4 + 6 = 10 is accepted; while it is queued its 6 rows are held,
    // so one more row is refused before it is even scored.
    let second = t
        .upload_ok("six.csv", synthetic_telco(6).into_bytes())
        .await;
    assert_eq!(usage(t).await["rows_reserved"], 6);
    let r = t.upload("one.csv", synthetic_telco(1).into_bytes()).await;
    assert_eq!(r.status(), 429);
    t.work_once().await;
    assert_eq!(t.prediction(&second).await["status"], "COMPLETED");
    let u = usage(t).await;
    assert_eq!(
        (&u["rows_scored"], &u["rows_reserved"]),
        (&Value::from(10), &Value::from(0))
    );
    let r = t.upload("one.csv", synthetic_telco(1).into_bytes()).await;
    assert_eq!(r.status(), 429, "one row over");
    let page = t.get("/").await.text().await.unwrap();
    assert!(
        page.contains(": 10 rows scored") && page.contains("of 10; resets on"),
        "the upload page shows the usage"
    );

    // Recording the completion again (a redelivered or retried job) meters nothing.
    let mut tx = t.app.db.pool().begin().await.unwrap();
    assert_eq!(
        retainwise::db::usage::meter_completed(&mut tx, &second, None)
            .await
            .unwrap(),
        retainwise::db::usage::Metered::default()
    );
    tx.commit().await.unwrap();
    assert_eq!(usage(t).await["rows_scored"], 10);
    second
}

#[tokio::test]
async fn an_upload_past_the_quota_is_refused_at_once_and_rows_are_metered_once() {
    let t = TestApp::spawn().await;
    // An endpoint for the threshold events (never reached: its deliveries are only queued here).
    let mut config = (*t.app.config).clone();
    config.http.public_origin = Some("https://churn.example.com".to_owned());
    config.webhook_allow_private = true;
    retainwise::webhooks::register(
        t.app.db.pool(),
        &config,
        &OrgId::local(),
        "http://127.0.0.1:9/hook",
        &["usage.threshold".to_owned()],
        &retainwise::audit::Actor::operator(Some(&OrgId::local())),
    )
    .await
    .unwrap();
    boundary(&t).await;
    // 4 of 10 crossed nothing; 10 of 10 crossed 80 % and 100 % at once: one event each.
    let sent: Vec<(String, String)> = sqlx::query_as(
        "SELECT subject_id, body FROM webhook_deliveries WHERE event = 'usage.threshold' ORDER BY subject_id",
    )
    .fetch_all(t.app.db.pool())
    .await
    .unwrap();
    let month = usage(&t).await["month"].as_str().unwrap().to_owned();
    let subjects: Vec<&str> = sent.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [format!("usage:{month}:100"), format!("usage:{month}:80")]
    );
    let body: Value = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(body["type"], "usage.threshold");
    assert_eq!(
        (
            &body["data"]["percent"],
            &body["data"]["rows_scored"],
            &body["data"]["quota"]
        ),
        (&Value::from(100), &Value::from(10), &Value::from(10))
    );

    // The Prometheus gauge.
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("retainwise_usage_rows_scored{org=\"local\"} 10"),
        "{metrics}"
    );

    // The operator raises the quota with the binary; the upload goes through.
    let out = Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .args(["org", "quota", "local", "--rows-per-month", "11"])
        .env("RETAINWISE_DATA_DIR", t.dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("RETAINWISE_DATABASE_URL")
        .env_remove("RETAINWISE_STORAGE_URL")
        .env_remove("RETAINWISE_QUEUE_URL")
        .env_remove("RETAINWISE_DEFAULT_QUOTA_ROWS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("10 rows scored") && text.contains("quota 11"),
        "{text}"
    );
    let r = t.upload("one.csv", synthetic_telco(1).into_bytes()).await;
    assert_eq!(r.status(), 202);
    // 11 of 11: 100 % again this month, no second event. (The queued deliveries run too and
    // fail against the closed port; their retries wait.)
    TestApp::drain(&t.worker, 10).await;
    assert_eq!(usage(&t).await["rows_scored"], 11);
    let (events,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM webhook_deliveries WHERE event = 'usage.threshold'")
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(events, 2);
}

#[tokio::test]
async fn the_quota_boundary_on_postgres_s3() {
    let Some(t) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    boundary(&t).await;
}

#[tokio::test]
async fn the_default_quota_applies_to_organisations_without_their_own() {
    let t = TestApp::spawn_with(|c| c.default_quota_rows = Some(3)).await;
    let u = usage(&t).await;
    assert_eq!(
        (&u["quota"], &u["quota_source"]),
        (&Value::from(3), &Value::from("default"))
    );
    // Blank lines are not rows: 3 customers and empty lines fit a quota of 3.
    let mut three = synthetic_telco(3);
    three.push_str("\n\n");
    assert_eq!(
        t.upload("three.csv", three.into_bytes()).await.status(),
        202
    );
    let r = t.upload("five.csv", synthetic_telco(5).into_bytes()).await;
    assert_eq!(r.status(), 429);
    t.app
        .db
        .set_quota(&OrgId::local(), Some(100))
        .await
        .unwrap();
    assert_eq!(usage(&t).await["quota_source"], "organisation");
    assert_eq!(
        t.upload("five.csv", synthetic_telco(5).into_bytes())
            .await
            .status(),
        202
    );
}

/// A file scored in pieces is metered once, as its rows: 25 rows cut into three pieces and a
/// merge fill a quota of 25 exactly (accepted at the quota), and one more row is refused.
#[tokio::test]
async fn a_file_scored_in_pieces_is_metered_once() {
    let t = TestApp::spawn_with(|c| c.chunk_rows = 10).await;
    t.app.db.set_quota(&OrgId::local(), Some(25)).await.unwrap();
    let id = t
        .upload_ok("pieces.csv", synthetic_telco(25).into_bytes())
        .await;
    TestApp::drain(&t.worker, 10).await;
    let p = t.prediction(&id).await;
    assert_eq!(
        (&p["status"], &p["chunks_total"], &p["chunks_done"]),
        (&Value::from("COMPLETED"), &Value::from(3), &Value::from(3)),
        "{p}"
    );
    let u = usage(&t).await;
    assert_eq!(
        (&u["rows_scored"], &u["rows_reserved"]),
        (&Value::from(25), &Value::from(0)),
        "{u}"
    );
    let r = t.upload("one.csv", synthetic_telco(1).into_bytes()).await;
    assert_eq!(r.status(), 429);
}
