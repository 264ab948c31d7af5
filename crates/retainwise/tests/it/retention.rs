//! Deleting a prediction and an organisation as jobs, and retention, over the real server and
//! worker: what is left is checked by listing every stored object and scanning every column of
//! every table of the database (SQLite and Postgres) for the deleted ids, so a table or a
//! folder that a deletion forgets fails here. A worker that dies midway (a crash at each of the
//! driver's failure points) still ends with the deletion complete. Retention moves an injected
//! clock: day 29 removes nothing, day 31 the upload, day 366 the results.

use std::time::Duration;

use retainwise::auth::AuthConfig;
use retainwise::domain::{OrgId, Role, UserId};
use retainwise::time::{utc_day, FixedClock, DAY_MS};
use retainwise::worker::{FailurePoint, FailurePoints, Outcome, Worker, WorkerOptions};
use serde_json::{json, Value};

use crate::helpers::{fast_worker_options, synthetic_telco, TestApp};

fn signed_in(c: &mut retainwise::config::Config) {
    c.auth = AuthConfig::Secret {
        secret: "retention-tests-secret-of-at-least-32-bytes"
            .to_owned()
            .into(),
        issuer: None,
        audience: None,
    };
    // A crashed attempt's lease lapses after a second and its message comes back.
    c.visibility_timeout = Duration::from_secs(1);
}

/// A team `org` with an owner and an API key of `role` for it; returns the key.
async fn team(t: &TestApp, org: &str, role: Role) -> String {
    let db = &t.app.db;
    let org: OrgId = org.parse().unwrap();
    let owner: UserId = format!("user_owner_{org}").parse().unwrap();
    db.create_org(&org, org.as_str(), &owner).await.unwrap();
    let user: UserId = format!("user_{role}_{org}").parse().unwrap();
    if role != Role::Owner {
        db.set_member(&org, &user, role, None).await.unwrap();
    }
    let user = if role == Role::Owner { owner } else { user };
    db.create_org_api_key(&org, &user, role, "retention")
        .await
        .unwrap()
        .secret
}

async fn call(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = t
        .client
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(key);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Uploads a small file for `key`'s organisation and scores it; returns the prediction id.
async fn scored(t: &TestApp, key: &str, rows: usize) -> String {
    let r = t
        .upload_as(key, "customers.csv", synthetic_telco(rows).into_bytes())
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    TestApp::drain(&t.worker, 10).await;
    let (status, p) = call(
        t,
        reqwest::Method::GET,
        &format!("/api/predictions/{id}"),
        key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(p["prediction"]["status"], "COMPLETED", "{p}");
    id
}

/// Every stored object whose key contains `needle`.
async fn objects_naming(t: &TestApp, needle: &str) -> Vec<String> {
    let mut keys = t.app.storage.list_prefix("").await.unwrap();
    keys.retain(|k| k.contains(needle));
    keys.sort();
    keys
}

/// Every table (but `except`) with rows in which some column's text contains `needle`, and how
/// many: every table of the database, read from its catalogue, so a new table is scanned too.
async fn rows_naming(t: &TestApp, needle: &str, except: &[&str]) -> Vec<(String, i64)> {
    let pool = t.app.db.pool();
    let postgres = t.app.db.dialect() == retainwise::db::Dialect::Postgres;
    let tables: Vec<(String,)> = if postgres {
        sqlx::query_as(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    } else {
        sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    };
    assert!(tables.len() > 20, "{tables:?}");
    let mut found = Vec::new();
    for (table,) in tables {
        if except.contains(&table.as_str()) {
            continue;
        }
        let columns: Vec<(String,)> = if postgres {
            sqlx::query_as(
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(&table)
            .fetch_all(pool)
            .await
            .unwrap()
        } else {
            sqlx::query_as("SELECT name FROM pragma_table_info($1)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap()
        };
        let any: Vec<String> = columns
            .iter()
            .map(|(c,)| format!("CAST(\"{c}\" AS TEXT) LIKE $1"))
            .collect();
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM \"{table}\" WHERE {}",
            any.join(" OR ")
        ))
        .bind(format!("%{needle}%"))
        .fetch_one(pool)
        .await
        .unwrap();
        if n > 0 {
            found.push((table, n));
        }
    }
    found
}

fn armed_worker(t: &TestApp, point: FailurePoint) -> (Worker, FailurePoints) {
    let points = FailurePoints::armable();
    points.arm(point, 1);
    let options = WorkerOptions {
        failure_points: points.clone(),
        ..fast_worker_options()
    };
    (Worker::new(t.app.clone(), options), points)
}

/// Runs `worker` until the queue is empty, each receive on a task of its own so that a crash at
/// a failure point ends that task as it would end a process.
async fn drain_crashing(t: &TestApp, worker: &Worker) -> Vec<Option<Outcome>> {
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let stats = t.app.queue.stats().await.unwrap();
        if stats.depth + stats.in_flight + stats.delayed == 0 {
            break;
        }
        let w = worker.clone();
        outcomes.push(
            tokio::spawn(async move { w.run_once(Duration::from_secs(3)).await })
                .await
                .ok()
                .and_then(|r| r.expect("queue reachable")),
        );
    }
    outcomes
}

/// The rows a deleted prediction keeps: its tombstone, its upload's row (its name), the
/// deletion's record and the audit log's entries.
const KEPT_FOR_A_PREDICTION: &[&str] = &["predictions", "uploads", "deletions", "audit_log"];

#[tokio::test]
async fn deleting_a_prediction_removes_every_object_and_row_even_when_the_worker_dies_midway() {
    for point in [
        None,
        Some(FailurePoint::AfterStart),
        Some(FailurePoint::DuringRun),
        Some(FailurePoint::AfterRun),
        Some(FailurePoint::AfterRecord),
    ] {
        let t = TestApp::spawn_with(signed_in).await;
        let owner = team(&t, "org_acme", Role::Owner).await;
        let analyst = team(&t, "org_acme", Role::Analyst).await;
        let id = scored(&t, &owner, 30).await;
        let kept = scored(&t, &owner, 20).await;
        let (_, p) = call(
            &t,
            reqwest::Method::GET,
            &format!("/api/predictions/{id}"),
            &owner,
            None,
        )
        .await;
        let upload = p["prediction"]["upload_id"].as_str().unwrap().to_owned();
        assert!(
            objects_naming(&t, &id).await.len() >= 2,
            "results and report stored"
        );
        assert_eq!(
            objects_naming(&t, &upload).await.len(),
            1,
            "the upload stored"
        );
        assert!(
            !rows_naming(&t, &id, KEPT_FOR_A_PREDICTION).await.is_empty(),
            "history rows"
        );

        // Only an owner deletes.
        let path = format!("/api/predictions/{id}");
        let (status, body) = call(&t, reqwest::Method::DELETE, &path, &analyst, None).await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = call(&t, reqwest::Method::DELETE, &path, &owner, None).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["deletion"]["status"], "QUEUED", "{body}");
        assert_eq!(
            body["prediction"]["deleted"]["status"], "DELETING",
            "{body}"
        );
        let deletion = body["deletion"]["id"].as_str().unwrap().to_owned();
        // Asked twice: refused, nothing queued twice.
        let (status, body) = call(&t, reqwest::Method::DELETE, &path, &owner, None).await;
        assert_eq!(status, 409, "{body}");
        // From now on its results are refused with the reason, not served.
        let (status, body) = call(
            &t,
            reqwest::Method::GET,
            &format!("{path}/results"),
            &owner,
            None,
        )
        .await;
        assert_eq!(status, 410, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("being deleted"),
            "{body}"
        );

        let worker = match point {
            Some(point) => armed_worker(&t, point).0,
            None => t.worker.clone(),
        };
        let outcomes = drain_crashing(&t, &worker).await;

        let (_, job) = call(
            &t,
            reqwest::Method::GET,
            &format!("/api/deletions/{deletion}"),
            &owner,
            None,
        )
        .await;
        assert_eq!(
            job["deletion"]["status"], "COMPLETED",
            "{point:?} {outcomes:?}: {job}"
        );
        assert!(
            job["deletion"]["removed"]["objects"].as_u64().unwrap() >= 3 || point.is_some(),
            "{job}"
        );
        assert_eq!(
            objects_naming(&t, &id).await,
            Vec::<String>::new(),
            "{point:?}"
        );
        assert_eq!(
            objects_naming(&t, &upload).await,
            Vec::<String>::new(),
            "{point:?}"
        );
        assert_eq!(
            rows_naming(&t, &id, KEPT_FOR_A_PREDICTION).await,
            Vec::<(String, i64)>::new(),
            "{point:?}: rows still naming the prediction"
        );
        let stats = t.app.queue.stats().await.unwrap();
        assert_eq!(
            (stats.depth, stats.in_flight, stats.dead),
            (0, 0, 0),
            "{point:?}"
        );

        // The tombstone says when and by whom; the other prediction is untouched.
        let (status, p) = call(&t, reqwest::Method::GET, &path, &owner, None).await;
        assert_eq!(status, 200);
        let deleted = &p["prediction"]["deleted"];
        assert_eq!(deleted["status"], "DELETED", "{p}");
        assert_eq!(deleted["deleted_by"], "user_owner_org_acme", "{p}");
        let today = utc_day(retainwise::time::now_ms());
        assert!(
            deleted["note"]
                .as_str()
                .unwrap()
                .contains(&format!("was deleted on {today} by user_owner_org_acme")),
            "{p}"
        );
        assert_eq!(p["prediction"]["has_output"], false);
        assert_eq!(p["prediction"]["summary"], Value::Null);
        let (status, _) = call(
            &t,
            reqwest::Method::GET,
            &format!("/api/predictions/{kept}/results"),
            &owner,
            None,
        )
        .await;
        assert_eq!(status, 200, "the other prediction keeps its results");
        let page = t
            .client
            .get(format!("{}/predictions/{id}", t.base))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("was deleted on {today}")), "{page}");

        // Audited in the transaction that queued it.
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'prediction.delete' AND record_id = $1",
        )
        .bind(&id)
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
        assert_eq!(n, 1);
    }
}

#[tokio::test]
async fn a_queued_prediction_is_cancelled_before_it_is_deleted() {
    let t = TestApp::spawn_with(signed_in).await;
    let owner = team(&t, "org_acme", Role::Owner).await;
    let r = t
        .upload_as(&owner, "customers.csv", synthetic_telco(10).into_bytes())
        .await;
    let id = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = call(
        &t,
        reqwest::Method::DELETE,
        &format!("/api/predictions/{id}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("cancel it first"),
        "{body}"
    );
}

/// Moves `clock` to `at` (epoch ms), queues that day's retention runs (at least one) and runs
/// them.
async fn retention_day(t: &TestApp, clock: &FixedClock, at: i64) {
    clock.set(at);
    assert!(
        retainwise::retention::schedule(&t.app, clock)
            .await
            .unwrap()
            >= 1
    );
    TestApp::drain(&t.worker, 20).await;
}

async fn retention_with_an_injected_clock(t: &TestApp) {
    let owner = team(t, "org_keep", Role::Owner).await;
    let viewer = team(t, "org_keep", Role::Viewer).await;
    let id = scored(t, &owner, 25).await;
    let path = format!("/api/predictions/{id}");
    let (_, p) = call(t, reqwest::Method::GET, &path, &owner, None).await;
    let upload = p["prediction"]["upload_id"].as_str().unwrap().to_owned();
    let finished: i64 =
        sqlx::query_as::<_, (i64,)>("SELECT completed_at FROM predictions WHERE id = $1")
            .bind(&id)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap()
            .0;
    // Before: the pages say when each file will be deleted.
    let upload_day = utc_day(finished + 30 * DAY_MS);
    assert_eq!(
        p["prediction"]["retention"]["upload"]["deletes_on"],
        upload_day.as_str(),
        "{p}"
    );
    assert_eq!(
        p["prediction"]["retention"]["results"]["deletes_on"],
        utc_day(finished + 365 * DAY_MS).as_str()
    );
    let page = |who: String| {
        let (client, base, id) = (t.client.clone(), t.base.clone(), id.clone());
        async move {
            client
                .get(format!("{base}/predictions/{id}"))
                .bearer_auth(who)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert!(
        page(viewer.clone()).await.contains(&format!(
            "The uploaded file will be deleted on {upload_day}"
        )),
        "the page says it before"
    );

    let clock = FixedClock::at(finished + 29 * DAY_MS);
    let queued = retainwise::retention::schedule(&t.app, &clock)
        .await
        .unwrap();
    assert!(queued >= 1, "one run per organisation");
    assert_eq!(
        retainwise::retention::schedule(&t.app, &clock)
            .await
            .unwrap(),
        0,
        "once a day"
    );
    TestApp::drain(&t.worker, 20).await;
    assert_eq!(
        objects_naming(t, &upload).await.len(),
        1,
        "day 29: the upload is kept"
    );
    assert!(
        !objects_naming(t, &id).await.is_empty(),
        "day 29: the results are kept"
    );

    retention_day(t, &clock, finished + 31 * DAY_MS).await;
    assert_eq!(
        objects_naming(t, &upload).await,
        Vec::<String>::new(),
        "day 31: the upload is gone"
    );
    let (status, _) = call(
        t,
        reqwest::Method::GET,
        &format!("{path}/results"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 200, "day 31: the results stay");
    let deleted_day = utc_day(finished + 31 * DAY_MS);
    let (_, p) = call(t, reqwest::Method::GET, &path, &owner, None).await;
    let note = format!("upload deleted on {deleted_day} (retention: 30 days)");
    assert_eq!(
        p["prediction"]["retention"]["upload"]["note"],
        note.as_str(),
        "{p}"
    );
    assert!(page(viewer.clone()).await.contains(&format!(
        "Upload deleted on {deleted_day} (retention: 30 days)"
    )));
    let (n,): (i64,) = sqlx::query_as(
        "SELECT uploads_removed FROM retention_runs WHERE user_id = 'org_keep' AND day = $1 AND status = 'COMPLETED'",
    )
    .bind(&deleted_day)
    .fetch_one(t.app.db.pool())
    .await
    .unwrap();
    assert_eq!(n, 1, "the run records what it removed");

    retention_day(t, &clock, finished + 366 * DAY_MS).await;
    assert_eq!(
        objects_naming(t, &id).await,
        Vec::<String>::new(),
        "day 366: results and report gone"
    );
    let (status, body) = call(
        t,
        reqwest::Method::GET,
        &format!("{path}/results"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, 410, "{body}");
    let gone_day = utc_day(finished + 366 * DAY_MS);
    assert!(
        body["detail"].as_str().unwrap().contains(&format!(
            "results and report deleted on {gone_day} (retention: 365 days)"
        )),
        "{body}"
    );
    assert!(page(viewer)
        .await
        .contains(&format!("results and report deleted on {gone_day}")));
}

#[tokio::test]
async fn retention_removes_uploads_after_30_days_and_results_after_365_by_an_injected_clock() {
    let t = TestApp::spawn_with(signed_in).await;
    retention_with_an_injected_clock(&t).await;
}

/// The same with the file scored in three pieces: what the merge stored beside the results
/// (the customers index) goes with them.
#[tokio::test]
async fn retention_of_a_file_scored_in_pieces_removes_what_its_merge_stored() {
    let t = TestApp::spawn_with(|c| {
        signed_in(c);
        c.chunk_rows = 10;
    })
    .await;
    retention_with_an_injected_clock(&t).await;
}

#[tokio::test]
async fn retention_by_an_injected_clock_on_postgres_s3() {
    let Some(t) = TestApp::spawn_postgres_s3_with(signed_in).await else {
        return;
    };
    retention_with_an_injected_clock(&t).await;
}

#[tokio::test]
async fn an_owner_sets_the_organisations_retention_and_bad_days_are_refused() {
    let t = TestApp::spawn_with(signed_in).await;
    let owner = team(&t, "org_days", Role::Owner).await;
    let admin = team(&t, "org_days", Role::Admin).await;
    let (status, body) = call(&t, reqwest::Method::GET, "/api/org/retention", &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"success": true, "org": "org_days", "uploads_days": 30, "results_days": 365, "own": false})
    );
    let days = json!({"uploads_days": 7, "results_days": 90});
    let (status, _) = call(
        &t,
        reqwest::Method::PUT,
        "/api/org/retention",
        &admin,
        Some(days.clone()),
    )
    .await;
    assert_eq!(status, 403, "owners only");
    for (bad, field) in [
        (
            json!({"uploads_days": 0, "results_days": 90}),
            "uploads_days 0",
        ),
        (
            json!({"uploads_days": 7, "results_days": 99999}),
            "results_days 99999",
        ),
        (json!({"uploads_days": 7}), "results_days"),
    ] {
        let (status, body) = call(
            &t,
            reqwest::Method::PUT,
            "/api/org/retention",
            &owner,
            Some(bad),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(field), "{body}");
    }
    let (status, body) = call(
        &t,
        reqwest::Method::PUT,
        "/api/org/retention",
        &owner,
        Some(days),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = call(&t, reqwest::Method::GET, "/api/org/retention", &admin, None).await;
    assert_eq!(
        (body["uploads_days"].as_u64(), body["own"].as_bool()),
        (Some(7), Some(true))
    );
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'organisation.retention' AND org_id = 'org_days'",
    )
    .fetch_one(t.app.db.pool())
    .await
    .unwrap();
    assert_eq!(n, 1);
    // The prediction then says 7 days.
    let id = scored(&t, &owner, 10).await;
    let (_, p) = call(
        &t,
        reqwest::Method::GET,
        &format!("/api/predictions/{id}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(p["prediction"]["retention"]["upload"]["days"], 7);
}

/// [`signed_in`], with webhooks allowed to a loopback receiver (none answers: the endpoints
/// want an event these tests never cause).
fn with_webhooks(c: &mut retainwise::config::Config) {
    signed_in(c);
    c.webhook_allow_private = true;
    c.http.public_origin = Some("https://churn.example.com".to_owned());
}

/// Everything an organisation can store through the API: scored predictions (history rows,
/// results, reports), a deleted prediction, a webhook endpoint, outcomes, its own retention and
/// a retention run.
async fn footprint(t: &TestApp, key: &str) {
    scored(t, key, 30).await;
    let gone = scored(t, key, 12).await;
    let (status, body) = call(
        t,
        reqwest::Method::DELETE,
        &format!("/api/predictions/{gone}"),
        key,
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["training.completed"]});
    let (status, body) = call(t, reqwest::Method::POST, "/api/webhooks", key, Some(hook)).await;
    assert_eq!(status, 201, "{body}");
    let outcomes =
        json!({"outcomes": [{"customer_id": "C-1", "churned": true, "date": "2026-11-01"}]});
    let (status, body) = call(
        t,
        reqwest::Method::POST,
        "/api/outcomes",
        key,
        Some(outcomes),
    )
    .await;
    assert!(status < 300, "{status} {body}");
    let days = json!({"uploads_days": 40, "results_days": 400});
    let (status, _) = call(
        t,
        reqwest::Method::PUT,
        "/api/org/retention",
        key,
        Some(days),
    )
    .await;
    assert_eq!(status, 200);
    TestApp::drain(&t.worker, 20).await;
}

/// A model `org` trained, as the registry records one: its row and its artifact object (model
/// ids cannot hold an organisation's id, so the artifact is checked by its own key).
async fn trained_model(t: &TestApp, org: &str, model: &str) -> retainwise::domain::ObjectKey {
    let key = retainwise::domain::ObjectKey::model(&model.parse().unwrap());
    t.app.storage.put_bytes(&key, b"{}".to_vec()).await.unwrap();
    sqlx::query(
        "INSERT INTO models (id, card, created_at, owner_id, artifact_key) VALUES ($1, '{}', 0, $2, $3)",
    )
    .bind(model)
    .bind(org)
    .bind(key.as_str())
    .execute(t.app.db.pool())
    .await
    .unwrap();
    key
}

/// Rows naming `org` outside the audit log (append-only) and the deletions' records.
async fn org_rows(t: &TestApp, org: &str) -> Vec<(String, i64)> {
    rows_naming(t, org, &["audit_log", "deletions"]).await
}

async fn deleting_an_organisation(t: &TestApp, crash: Option<FailurePoint>) {
    let acme = team(t, "org_acme", Role::Owner).await;
    let acme_admin = team(t, "org_acme", Role::Admin).await;
    let globex = team(t, "org_globex", Role::Owner).await;
    footprint(t, &acme).await;
    footprint(t, &globex).await;
    let acme_model = trained_model(t, "org_acme", "acme-gbdt-1").await;
    let globex_model = trained_model(t, "org_globex", "globex-gbdt-1").await;
    retainwise::retention::schedule(&t.app, &retainwise::time::SystemClock)
        .await
        .unwrap();
    TestApp::drain(&t.worker, 20).await;
    let globex_objects = objects_naming(t, "org_globex").await;
    let globex_rows = org_rows(t, "org_globex").await;
    assert!(globex_objects.len() >= 3, "{globex_objects:?}");
    assert!(!objects_naming(t, "org_acme").await.is_empty());
    let tables: Vec<_> = org_rows(t, "org_acme")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for table in [
        "predictions",
        "uploads",
        "models",
        "customer_history",
        "webhook_endpoints",
        "outcomes",
        "org_retention",
        "retention_runs",
        "memberships",
        "api_keys",
        "usage_months",
        "organisations",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} holds rows of org_acme before: {tables:?}"
        );
    }
    let audited_before: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE org_id = 'org_acme'")
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();

    // Owners only, and only with the organisation named.
    let (status, _) = call(
        t,
        reqwest::Method::DELETE,
        "/api/org",
        &acme_admin,
        Some(json!({"confirm": "org_acme"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        t,
        reqwest::Method::DELETE,
        "/api/org",
        &acme,
        Some(json!({"confirm": "org_globex"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("\"org_acme\""),
        "{body}"
    );
    let (status, body) = call(t, reqwest::Method::DELETE, "/api/org", &acme, None).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        t,
        reqwest::Method::DELETE,
        "/api/org",
        &acme,
        Some(json!({"confirm": "org_acme"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deletion"]["status"], "QUEUED");
    let deletion = body["deletion"]["id"].as_str().unwrap().to_owned();
    // Its members lose access at once.
    let (status, _) = call(t, reqwest::Method::GET, "/api/predictions", &acme, None).await;
    assert_eq!(status, 401);

    let worker = match crash {
        Some(point) => armed_worker(t, point).0,
        None => t.worker.clone(),
    };
    let outcomes = drain_crashing(t, &worker).await;
    let (status, removed): (String, Option<String>) =
        sqlx::query_as("SELECT status, removed FROM deletions WHERE id = $1")
            .bind(&deletion)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(status, "COMPLETED", "{crash:?}: {outcomes:?}");
    assert!(removed.is_some());
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.dead),
        (0, 0, 0),
        "{crash:?}"
    );

    // Nothing of it left: no object in the bucket prefix, no row in any table.
    assert_eq!(
        objects_naming(t, "org_acme").await,
        Vec::<String>::new(),
        "{crash:?}"
    );
    assert_eq!(
        org_rows(t, "org_acme").await,
        Vec::<(String, i64)>::new(),
        "{crash:?}"
    );
    let (own,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM deletions WHERE user_id = 'org_acme'")
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(
        own, 1,
        "only the organisation's deletion's own record stays"
    );
    // The audit log keeps every entry, plus the deletion asked and done.
    let actions: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_log WHERE org_id = 'org_acme' ORDER BY seq")
            .fetch_all(t.app.db.pool())
            .await
            .unwrap();
    // (+ the admin's refusal above)
    assert_eq!(actions.len() as i64, audited_before.0 + 3, "{actions:?}");
    let last: Vec<_> = actions[actions.len() - 2..]
        .iter()
        .map(|(a,)| a.as_str())
        .collect();
    assert_eq!(last, ["organisation.delete", "organisation.deleted"]);

    assert!(
        !t.app.storage.exists(&acme_model).await.unwrap(),
        "its model's artifact"
    );
    assert!(t.app.storage.exists(&globex_model).await.unwrap());
    // The other organisation is intact.
    assert_eq!(objects_naming(t, "org_globex").await, globex_objects);
    assert_eq!(org_rows(t, "org_globex").await, globex_rows);
    let (status, list) = call(t, reqwest::Method::GET, "/api/predictions", &globex, None).await;
    assert_eq!(status, 200);
    let first = list["predictions"][1]["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        t,
        reqwest::Method::GET,
        &format!("/api/predictions/{first}/results"),
        &globex,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn deleting_an_organisation_leaves_no_object_and_no_row_and_the_other_intact() {
    let t = TestApp::spawn_with(with_webhooks).await;
    deleting_an_organisation(&t, None).await;
}

#[tokio::test]
async fn deleting_an_organisation_completes_when_the_worker_dies_midway() {
    for point in [FailurePoint::DuringRun, FailurePoint::AfterRun] {
        let t = TestApp::spawn_with(with_webhooks).await;
        deleting_an_organisation(&t, Some(point)).await;
    }
}

#[tokio::test]
async fn deleting_an_organisation_on_postgres_s3() {
    let Some(t) = TestApp::spawn_postgres_s3_with(with_webhooks).await else {
        return;
    };
    deleting_an_organisation(&t, Some(FailurePoint::AfterRun)).await;
}

#[tokio::test]
async fn the_operator_sets_retention_and_deletes_an_organisation_with_the_cli() {
    let t = TestApp::spawn_with(signed_in).await;
    let key = team(&t, "org_cli", Role::Owner).await;
    scored(&t, &key, 10).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
            .args(args)
            .env("RETAINWISE_DATA_DIR", t.dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("RETAINWISE_DATABASE_URL")
            .env_remove("RETAINWISE_STORAGE_URL")
            .env_remove("RETAINWISE_QUEUE_URL")
            .env_remove("RETAINWISE_RETENTION_UPLOAD_DAYS")
            .env_remove("RETAINWISE_RETENTION_RESULT_DAYS")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = cli(&["org", "retention", "org_cli"]);
    assert!(
        ok && text.contains("uploads kept 30 days, results and reports 365 days"),
        "{text}"
    );
    let (ok, text) = cli(&[
        "org",
        "retention",
        "org_cli",
        "--uploads-days",
        "0",
        "--results-days",
        "9",
    ]);
    assert!(
        !ok && text.contains("uploads_days 0 is out of range"),
        "{text}"
    );
    let (ok, text) = cli(&[
        "org",
        "retention",
        "org_cli",
        "--uploads-days",
        "3",
        "--results-days",
        "9",
    ]);
    assert!(
        ok && text.contains("uploads kept 3 days, results and reports 9 days")
            && text.contains("its own"),
        "{text}"
    );
    let (_, body) = call(&t, reqwest::Method::GET, "/api/org/retention", &key, None).await;
    assert_eq!(body["results_days"], 9);

    let (ok, text) = cli(&["org", "delete", "org_cli"]);
    assert!(ok && text.contains("queued"), "{text}");
    let (ok, text) = cli(&["org", "delete", "org_cli"]);
    assert!(!ok && text.contains("being deleted already"), "{text}");
    TestApp::drain(&t.worker, 10).await;
    assert_eq!(objects_naming(&t, "org_cli").await, Vec::<String>::new());
    assert_eq!(org_rows(&t, "org_cli").await, Vec::<(String, i64)>::new());
    let (ok, text) = cli(&["org", "delete", "org_cli"]);
    assert!(!ok && text.contains("not found"), "{text}");
}
