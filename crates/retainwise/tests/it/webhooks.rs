//! Signed webhooks: endpoints registered through `/api/webhooks`, and deliveries to a receiver
//! on loopback that verifies every Standard Webhooks signature, counts what it gets and fails
//! the first few on purpose.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use hmac::{Hmac, Mac};
use retainwise::auth::AuthConfig;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

/// Attempts of a webhook delivery in these tests: more than the queue's `max_receives` (3), so
/// the deliveries' own schedule, not the queue's receive count, decides when one gives up.
const ATTEMPTS: usize = 5;

/// The address users reach the service at, in these tests (results URLs are absolute under it).
const PUBLIC: &str = "http://retainwise.test";

/// Signed in by API keys, with webhooks to private addresses allowed or not, and a retry
/// schedule of [`ATTEMPTS`] attempts without waiting (the default waits about a day).
fn settings(allow_private: bool) -> impl FnOnce(&mut retainwise::config::Config) + Send {
    move |c| {
        c.webhook_retry = vec![Duration::ZERO; ATTEMPTS - 1];
        c.http.public_origin = Some(PUBLIC.to_owned());
        c.auth = AuthConfig::Secret {
            secret: "webhook-tests-secret-of-at-least-32-bytes"
                .to_owned()
                .into(),
            issuer: None,
            audience: None,
        };
        c.webhook_allow_private = allow_private;
    }
}

/// The app on SQLite (see [`settings`]).
async fn app(allow_private: bool) -> TestApp {
    TestApp::spawn_with(settings(allow_private)).await
}

async fn key(t: &TestApp, user: &str) -> String {
    t.app
        .db
        .create_api_key(&user.parse().unwrap(), "test")
        .await
        .unwrap()
        .secret
}

async fn register(t: &TestApp, who: &str, body: Value) -> reqwest::Response {
    t.client
        .post(format!("{}/api/webhooks", t.base))
        .bearer_auth(who)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn listed(t: &TestApp, who: &str) -> Value {
    let r = t
        .client
        .get(format!("{}/api/webhooks", t.base))
        .bearer_auth(who)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["webhooks"].clone()
}

#[tokio::test]
async fn endpoints_are_registered_listed_without_secret_and_removed_by_their_owner_only() {
    let t = app(true).await;
    let (alice, bob) = (key(&t, "user_alice").await, key(&t, "user_bob").await);
    let r = register(
        &t,
        &alice,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["prediction.completed", "training.failed"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert!(retainwise::webhooks::signing::decode_secret(secret).is_ok());

    let list = listed(&t, &alice).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(
        list[0]["events"],
        json!(["prediction.completed", "training.failed"])
    );
    assert!(!list.to_string().contains("whsec_"), "{list}");
    assert_eq!(listed(&t, &bob).await, json!([]));

    // Bad bodies name what to fix.
    for (body, says) in [
        (
            json!({"url": "ftp://example.com/", "events": ["prediction.completed"]}),
            "http://",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "events": ["prediction.done"]}),
            "prediction.done",
        ),
        (json!({"url": "http://127.0.0.1:9/", "events": []}), "empty"),
        (json!({"url": "http://127.0.0.1:9/"}), "events"),
    ] {
        let r = register(&t, &alice, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{body}: {text}");
    }

    let delete = |who: String, id: String| {
        t.client
            .delete(format!("{}/api/webhooks/{id}", t.base))
            .bearer_auth(who)
            .send()
    };
    assert_eq!(delete(bob.clone(), id.clone()).await.unwrap().status(), 404);
    assert_eq!(listed(&t, &alice).await.as_array().unwrap().len(), 1);
    assert_eq!(
        delete(alice.clone(), id.clone()).await.unwrap().status(),
        200
    );
    assert_eq!(listed(&t, &alice).await, json!([]));
    assert_eq!(delete(alice.clone(), id).await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_private_url_is_refused_unless_the_operator_allows_it() {
    let t = app(false).await;
    let alice = key(&t, "user_alice").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
    ] {
        let r = register(
            &t,
            &alice,
            json!({"url": url, "events": ["prediction.completed"]}),
        )
        .await;
        assert_eq!(r.status(), 400, "{url}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("RETAINWISE_WEBHOOK_ALLOW_PRIVATE"),
            "{url}: {text}"
        );
    }
    assert_eq!(listed(&t, &alice).await, json!([]));
}

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

/// A webhook receiver on loopback: `/flaky` fails its first two requests with 500, `/dead`
/// always does, every other path answers 204.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut hits = receiver.hits.lock().unwrap();
    let path = uri.path().to_owned();
    let before = hits.iter().filter(|h| h.path == path).count();
    let status = match path.as_str() {
        "/flaky" if before < 2 => StatusCode::INTERNAL_SERVER_ERROR,
        "/dead" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::NO_CONTENT,
    };
    hits.push(Hit {
        path,
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        answered: status.as_u16(),
    });
    status
}

async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let router = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, receiver)
}

/// The Standard Webhooks check, computed here from the specification rather than with the
/// app's code: `v1,` + base64(HMAC-SHA256(base64-decoded secret, "{id}.{timestamp}.{body}")).
fn signed_correctly(secret: &str, hit: &Hit) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", hit.id, hit.timestamp, hit.body).as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    hit.signature.split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn a_prediction_sends_one_signed_event_per_endpoint_retried_with_the_same_id() {
    one_signed_event_per_endpoint(app(true).await).await;
}

#[tokio::test]
async fn on_postgres_a_prediction_sends_one_signed_event_per_endpoint() {
    if let Some(t) = TestApp::spawn_postgres_with(settings(true)).await {
        one_signed_event_per_endpoint(t).await;
    }
}

#[tokio::test]
async fn on_sqs_a_prediction_sends_one_signed_event_per_endpoint() {
    if let Some(t) = TestApp::spawn_postgres_s3_sqs_with(settings(true)).await {
        one_signed_event_per_endpoint(t).await;
    }
}

async fn one_signed_event_per_endpoint(t: TestApp) {
    let alice = key(&t, "user_alice").await;
    let (base, receiver) = start_receiver().await;
    let mut secrets = BTreeMap::new();
    let mut endpoint_ids = BTreeMap::new();
    for (path, events) in [
        ("/steady", json!(["prediction.completed"])),
        (
            "/flaky",
            json!(["prediction.completed", "prediction.failed"]),
        ),
        ("/dead", json!(["prediction.completed"])),
        ("/failures-only", json!(["prediction.failed"])),
    ] {
        let r = register(
            &t,
            &alice,
            json!({"url": format!("{base}{path}"), "events": events}),
        )
        .await;
        assert_eq!(r.status(), 201);
        let created: Value = r.json().await.unwrap();
        secrets.insert(path, created["secret"].as_str().unwrap().to_owned());
        endpoint_ids.insert(path, created["id"].as_str().unwrap().to_owned());
    }
    let csv = synthetic_telco(20);
    let r = t.upload_as(&alice, "c.csv", csv.clone().into_bytes()).await;
    assert_eq!(r.status(), 202);
    let prediction = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The prediction, then every delivery and its retries, until the queue is empty.
    let outcomes = TestApp::drain(&t.worker, 49).await;
    use retainwise::worker::Outcome;
    assert_eq!(outcomes[0], Outcome::Completed, "{outcomes:?}");

    let hits = receiver.hits.lock().unwrap().clone();
    let of = |path: &str| hits.iter().filter(|h| h.path == path).collect::<Vec<_>>();
    assert!(of("/failures-only").is_empty(), "{hits:?}");
    // Exactly one accepted delivery per endpoint that wants the event; the flaky one was
    // tried three times under one webhook-id, the dead one ATTEMPTS times (the schedule's
    // count, past the queue's max_receives of 3).
    assert_eq!(of("/steady").len(), 1, "{hits:?}");
    let flaky = of("/flaky");
    assert_eq!(
        flaky.iter().map(|h| h.answered).collect::<Vec<_>>(),
        [500, 500, 204]
    );
    assert!(flaky.iter().all(|h| h.id == flaky[0].id), "{flaky:?}");
    let dead = of("/dead");
    assert_eq!(dead.len(), ATTEMPTS, "{hits:?}");
    assert_ne!(of("/steady")[0].id, flaky[0].id);
    for hit in &hits {
        assert!(
            signed_correctly(&secrets[hit.path.as_str()], hit),
            "bad signature: {hit:?}"
        );
        let other = if hit.path == "/steady" {
            "/flaky"
        } else {
            "/steady"
        };
        assert!(!signed_correctly(&secrets[other], hit));
        assert!(hit.id.starts_with("msg_"), "{hit:?}");
        let body: Value = serde_json::from_str(&hit.body).unwrap();
        assert_eq!(body["type"], "prediction.completed", "{body}");
        assert_eq!(body["data"]["prediction_id"], prediction.as_str());
        assert_eq!(body["data"]["status"], "COMPLETED");
        assert_eq!(body["data"]["rows_scored"], 20);
        assert_eq!(body["data"]["rows_rejected"], 0);
        assert_eq!(
            body["data"]["results_url"],
            format!("{PUBLIC}/api/predictions/{prediction}/results")
        );
        let risk: i64 = ["low", "medium", "high"]
            .iter()
            .map(|l| {
                body["data"]["summary"]["risk_counts"][l]
                    .as_i64()
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(risk, 20, "{body}");
        // No customer row: no customer id of the file appears in the body.
        assert!(!hit.body.contains("-SYNT"), "{}", hit.body);
    }

    // The rows: two delivered, the dead one dead-lettered with its last status code.
    let rows: Vec<(String, String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT w.url, d.status, d.last_status_code, d.dead_lettered_at \
         FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id ORDER BY w.url",
    )
    .fetch_all(t.app.db.pool())
    .await
    .unwrap();
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(url, status, code, dead)| {
            (
                url.trim_start_matches(&base).to_owned(),
                status,
                code,
                dead.is_some(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("/dead".to_owned(), "FAILED".to_owned(), Some(500), true),
            (
                "/flaky".to_owned(),
                "COMPLETED".to_owned(),
                Some(204),
                false
            ),
            (
                "/steady".to_owned(),
                "COMPLETED".to_owned(),
                Some(204),
                false
            ),
        ]
    );
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 1));
    // Every job names the message that carries it (written by `worker::enqueue`).
    for table in ["predictions", "webhook_deliveries"] {
        let unset: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE queue_message_id IS NULL"
        ))
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
        assert_eq!(unset, 0, "{table}");
    }

    // The owner sees the dead delivery with its last status code.
    let deliveries = |id: String| {
        t.client
            .get(format!("{}/api/webhooks/{id}/deliveries", t.base))
            .bearer_auth(&alice)
            .send()
    };
    let r = deliveries(endpoint_ids["/dead"].clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let shown: Value = r.json().await.unwrap();
    let shown = &shown["deliveries"];
    assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown[0]["id"], dead[0].id.as_str());
    assert_eq!(shown[0]["status"], "FAILED");
    assert_eq!(shown[0]["last_status_code"], 500);
    assert_eq!(shown[0]["attempt"], ATTEMPTS);
    // Why, in the endpoint's terms (never the server-trouble sentence of a scoring job).
    let why = shown[0]["error"].as_str().unwrap();
    assert!(
        why.contains("answered HTTP 500")
            && why.contains("send it again")
            && !why.contains("storage"),
        "{why}"
    );
    let dead_at = shown[0]["dead_lettered_at"].as_str().unwrap();
    assert!(
        dead_at.ends_with('Z') && dead_at.contains('T'),
        "RFC 3339: {shown}"
    );
    assert!(
        shown[0]["queued_at"].as_str().unwrap().ends_with('Z'),
        "{shown}"
    );
    assert_eq!(shown[0]["event"], "prediction.completed");
    assert_eq!(shown[0]["subject_id"], prediction.as_str());
    let r = deliveries("we_unknown".to_owned()).await.unwrap();
    assert_eq!(r.status(), 404);

    // The operator redrives the dead delivery: sent again under the same webhook-id.
    let dead_id = dead[0].id.clone();
    assert_eq!(t.app.queue.redrive(None).await.unwrap(), 1);
    let outcomes = TestApp::drain(&t.worker, 9).await;
    let hits = receiver.hits.lock().unwrap().clone();
    let dead: Vec<_> = hits.iter().filter(|h| h.path == "/dead").collect();
    assert!(dead.len() > ATTEMPTS, "{outcomes:?}: {hits:?}");
    assert!(dead.iter().all(|h| h.id == dead_id), "{dead:?}");
    assert!(dead.iter().all(|h| signed_correctly(&secrets["/dead"], h)));
}

/// Registers `/failures` for `prediction.failed`, uploads a small file as alice, lets
/// `break_it` spoil the job, drains the queue with `worker`, and checks the one signed
/// `prediction.failed` the receiver got. Returns the worker's outcomes.
async fn failed_event(
    t: &TestApp,
    worker: &retainwise::worker::Worker,
    break_it: impl FnOnce(&str),
) -> Vec<retainwise::worker::Outcome> {
    let alice = key(t, "user_alice").await;
    let (base, receiver) = start_receiver().await;
    let r = register(
        t,
        &alice,
        json!({"url": format!("{base}/failures"), "events": ["prediction.failed"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .upload_as(&alice, "c.csv", synthetic_telco(5).into_bytes())
        .await;
    assert_eq!(r.status(), 202);
    let prediction = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    break_it(&prediction);
    let outcomes = TestApp::drain(worker, 19).await;
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(signed_correctly(&secret, &hits[0]), "{hits:?}");
    let body: Value = serde_json::from_str(&hits[0].body).unwrap();
    assert_eq!(body["type"], "prediction.failed", "{body}");
    assert_eq!(body["data"]["prediction_id"], prediction.as_str());
    assert_eq!(body["data"]["status"], "FAILED");
    assert_eq!(body["data"]["results_url"], Value::Null);
    assert_eq!(body["data"]["rows_scored"], 0, "nothing was stored: {body}");
    outcomes
}

#[tokio::test]
async fn a_prediction_that_fails_sends_prediction_failed() {
    use retainwise::worker::Outcome;
    let t = app(true).await;
    let uploads = t.dir.path().join("objects/uploads");
    let outcomes = failed_event(&t, &t.worker, |_| {
        // The stored upload becomes a folder: the job fails (the file is gone).
        let file = walk(&uploads).pop().expect("the stored upload");
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
    })
    .await;
    assert_eq!(outcomes, [Outcome::Failed, Outcome::Completed]);
}

#[tokio::test]
async fn a_prediction_dead_lettered_after_its_retries_sends_prediction_failed() {
    use retainwise::worker::{FailurePoint, FailurePoints, Outcome, Worker, WorkerOptions};
    let t = app(true).await;
    let points = FailurePoints::armable();
    let worker = Worker::new(
        t.app.clone(),
        WorkerOptions {
            failure_points: points.clone(),
            ..fast_worker_options()
        },
    );
    // The run panics on each of the prediction's three receives (max_receives = 3): two
    // retries, then the dead-letter, which records FAILED and queues the event together.
    let outcomes = failed_event(&t, &worker, |_| points.arm(FailurePoint::DuringRun, 3)).await;
    assert_eq!(
        outcomes,
        [
            Outcome::Retried,
            Outcome::Retried,
            Outcome::DeadLettered,
            Outcome::Completed
        ]
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn trainings_send_training_completed_and_training_failed() {
    let t = app(true).await;
    let alice = key(&t, "user_alice").await;
    let (base, receiver) = start_receiver().await;
    let r = register(
        &t,
        &alice,
        json!({"url": format!("{base}/trainings"), "events": ["training.completed", "training.failed"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = Vec::new();
    // The first names a label the file lacks (FAILED), the second trains.
    for label in ["Exited", "churned"] {
        let csv = crate::models::subscription_history(600);
        let part = reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("acme.csv");
        let form = reqwest::multipart::Form::new()
            .text("id_column", "account_id")
            .part("file", part);
        let r = t
            .client
            .post(format!("{}/api/models?label={label}", t.base))
            .bearer_auth(&alice)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.unwrap();
        ids.push(body["training_id"].as_str().unwrap().to_owned());
        // One training at a time per user: this one and its delivery first.
        TestApp::drain(&t.worker, 19).await;
    }
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 2, "{hits:?}");
    let mut bodies: Vec<Value> = hits
        .iter()
        .map(|h| {
            assert!(signed_correctly(&secret, h), "{h:?}");
            serde_json::from_str(&h.body).unwrap()
        })
        .collect();
    bodies.sort_by_key(|b| b["type"].as_str().unwrap().to_owned());
    assert_eq!(bodies[0]["type"], "training.completed", "{bodies:?}");
    assert_eq!(bodies[0]["data"]["training_id"], ids[1].as_str());
    assert_eq!(bodies[0]["data"]["status"], "COMPLETED");
    assert!(
        bodies[0]["data"]["model_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("acme")),
        "{bodies:?}"
    );
    assert_eq!(bodies[1]["type"], "training.failed", "{bodies:?}");
    assert_eq!(bodies[1]["data"]["training_id"], ids[0].as_str());
    assert_eq!(bodies[1]["data"]["status"], "FAILED");
    assert_eq!(bodies[1]["data"]["model_id"], Value::Null);
}

#[test]
fn the_cli_adds_lists_and_removes_endpoints_with_the_same_checks() {
    let bin = env!("CARGO_BIN_EXE_retainwise");
    let dir = tempfile::tempdir().unwrap();
    let public = std::cell::Cell::new(true);
    let run = |args: &[&str], allow_private: bool| {
        let mut command = std::process::Command::new(bin);
        if public.get() {
            command.env("RETAINWISE_PUBLIC_URL", PUBLIC);
        }
        let out = command
            .args(args)
            .env("RETAINWISE_DATA_DIR", dir.path().join("data"))
            .env(
                "RETAINWISE_WEBHOOK_ALLOW_PRIVATE",
                if allow_private { "true" } else { "false" },
            )
            .env_remove("RETAINWISE_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("RETAINWISE_STORAGE_URL")
            .env_remove("RETAINWISE_QUEUE_URL")
            .current_dir(dir.path())
            .output()
            .expect("run retainwise");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&["migrate"], false);
    assert!(ok, "{err}");
    let add = |url: &str, events: &str, allow: bool| {
        run(
            &[
                "webhook",
                "add",
                "--user",
                "user_alice",
                "--url",
                url,
                "--events",
                events,
            ],
            allow,
        )
    };
    let (ok, _, err) = add("http://127.0.0.1:9/hook", "prediction.completed", false);
    assert!(
        !ok && err.contains("RETAINWISE_WEBHOOK_ALLOW_PRIVATE"),
        "{err}"
    );
    // Without the public address an event's results URL could not be absolute: refused.
    public.set(false);
    let (ok, _, err) = add("http://127.0.0.1:9/hook", "prediction.completed", true);
    assert!(!ok && err.contains("RETAINWISE_PUBLIC_URL"), "{err}");
    public.set(true);
    let (ok, _, err) = add("http://127.0.0.1:9/hook", "prediction.done", true);
    assert!(!ok && err.contains("prediction.done"), "{err}");
    let (ok, secret, err) = add(
        "http://127.0.0.1:9/hook",
        "prediction.completed,training.failed",
        true,
    );
    assert!(ok, "{err}");
    assert!(secret.trim().starts_with("whsec_"), "{secret}");
    let (ok, list, err) = run(&["webhook", "list", "--user", "user_alice"], false);
    assert!(ok, "{err}");
    let id = list.split_whitespace().next().unwrap().to_owned();
    assert!(id.starts_with("we_"), "{list}");
    assert!(
        list.contains("events=prediction.completed,training.failed"),
        "{list}"
    );
    assert!(!list.contains("whsec_"), "{list}");
    // A password in a URL is listed as ***.
    let (ok, _, err) = add("http://u:hunter2@127.0.0.1:9/b", "training.failed", true);
    assert!(ok, "{err}");
    let (_, list, _) = run(&["webhook", "list", "--user", "user_alice"], false);
    assert!(
        list.contains("http://***@127.0.0.1:9/b") && !list.contains("hunter2"),
        "{list}"
    );
    let second = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (ok, _, err) = run(
        &["webhook", "remove", "--user", "user_alice", &second],
        false,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["webhook", "remove", "--user", "user_bob", &id], false);
    assert!(!ok && err.contains(&id), "{err}");
    let (ok, _, err) = run(&["webhook", "remove", "--user", "user_alice", &id], false);
    assert!(ok, "{err}");
    let (_, list, _) = run(&["webhook", "list", "--user", "user_alice"], false);
    assert_eq!(list, "");
}

#[tokio::test]
async fn a_worker_crash_at_any_point_of_the_prediction_still_sends_its_event_exactly_once() {
    use retainwise::worker::{FailurePoint, FailurePoints, Worker, WorkerOptions};
    for point in FailurePoint::ALL {
        // A crashed attempt's lease lapses after a second and the message comes back.
        let t = TestApp::spawn_with(|c| {
            settings(true)(c);
            c.visibility_timeout = Duration::from_secs(1);
        })
        .await;
        let points = FailurePoints::armable();
        let worker = Worker::new(
            t.app.clone(),
            WorkerOptions {
                failure_points: points.clone(),
                ..fast_worker_options()
            },
        );
        let alice = key(&t, "user_alice").await;
        let (base, receiver) = start_receiver().await;
        let r = register(
            &t,
            &alice,
            json!({"url": format!("{base}/hook"), "events": ["prediction.completed"]}),
        )
        .await;
        assert_eq!(r.status(), 201);
        let r = t
            .upload_as(&alice, "c.csv", synthetic_telco(10).into_bytes())
            .await;
        assert_eq!(r.status(), 202);
        // The first pass of `point` is the prediction's (the only message): it crashes there.
        points.arm(point, 1);
        for _ in 0..10 {
            let stats = t.app.queue.stats().await.unwrap();
            if stats.depth + stats.in_flight + stats.delayed == 0 {
                break;
            }
            // On a task of its own, so a crash ends it as it would end a process.
            let worker = worker.clone();
            let _ =
                tokio::spawn(async move { worker.run_once(Duration::from_secs(3)).await }).await;
        }
        // Passed by the crashed prediction, and again by its retry or the delivery.
        assert!(points.passed(point) >= 2, "{point:?} was not reached");
        let hits = receiver.hits.lock().unwrap().clone();
        assert_eq!(hits.len(), 1, "{point:?}: {hits:?}");
        assert_eq!(hits[0].answered, 204, "{point:?}");
        let stats = t.app.queue.stats().await.unwrap();
        assert_eq!(
            (stats.depth, stats.in_flight, stats.delayed, stats.dead),
            (0, 0, 0, 0),
            "{point:?}"
        );
    }
}

/// The Webhooks page in real Chromium, signed in through the form: add an endpoint (its secret
/// shown once), see its dead-lettered delivery with attempts and last status code, send it
/// again with the button (same webhook-id), remove the endpoint (its deliveries are gone from
/// the API too); a URL with a password is listed with the userinfo redacted.
#[tokio::test]
async fn browser_webhooks_page_adds_shows_deliveries_redrives_and_removes() {
    use crate::web::{browser, screenshots, text_of, wait_for};
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = browser(downloads.path()).await else {
        return;
    };
    let t = app(true).await;
    let alice = key(&t, "user_alice").await;
    let (base, receiver) = start_receiver().await;

    c.goto(&format!("{}/webhooks", t.base)).await.unwrap();
    wait_for(&c, "form[action='/signin'] #key")
        .await
        .send_keys(&alice)
        .await
        .unwrap();
    wait_for(&c, "form[action='/signin'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let body = text_of(&c, "main").await;
    assert!(body.contains("No webhooks yet"), "{body}");
    wait_for(&c, "#webhook-url")
        .await
        .send_keys(&format!("{base}/dead"))
        .await
        .unwrap();
    wait_for(&c, "#add-webhook button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let secret = text_of(&c, "#webhook-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    screenshots(&c, "webhooks-added").await;
    // Shown once: the page loaded again has no secret.
    c.goto(&format!("{}/webhooks", t.base)).await.unwrap();
    let listed_text = text_of(&c, "#webhooks").await;
    assert!(
        listed_text.contains(&format!("{base}/dead")),
        "{listed_text}"
    );
    assert!(!c.source().await.unwrap().contains(&secret));

    // A refused URL says why, on the page.
    wait_for(&c, "#webhook-url")
        .await
        .send_keys("ftp://example.com/x")
        .await
        .unwrap();
    wait_for(&c, "#add-webhook button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let refusal = text_of(&c, "p.alert.error").await;
    assert!(refusal.contains("http:// or https://"), "{refusal}");

    // A prediction's event, refused by the receiver every time: dead-lettered.
    let r = t
        .upload_as(&alice, "c.csv", synthetic_telco(5).into_bytes())
        .await;
    assert_eq!(r.status(), 202);
    TestApp::drain(&t.worker, 50).await;
    let endpoint = listed(&t, &alice).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.goto(&format!("{}/webhooks", t.base)).await.unwrap();
    wait_for(&c, "#webhooks tbody th a")
        .await
        .click()
        .await
        .unwrap();
    let row = text_of(&c, "table.jobs tbody tr").await;
    assert!(row.contains("FAILED") && row.contains("gave up"), "{row}");
    assert_eq!(
        text_of(&c, "td[data-label='Attempts']").await,
        ATTEMPTS.to_string()
    );
    assert!(text_of(&c, "td[data-label='Last HTTP status']")
        .await
        .contains("500"));
    screenshots(&c, "webhook-deliveries").await;
    let first_id = receiver.hits.lock().unwrap()[0].id.clone();
    let before = receiver.hits.lock().unwrap().len();
    assert_eq!(before, ATTEMPTS);
    wait_for(&c, "form.cancel button")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "table.jobs").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/webhooks/{endpoint}")
    );
    assert_eq!(t.app.queue.stats().await.unwrap().dead, 0, "redriven");
    TestApp::drain(&t.worker, 50).await;
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), before + 1, "sent once more: {hits:?}");
    assert_eq!(hits[before].id, first_id, "under the same webhook-id");

    // A password in the URL is never shown.
    let port = base.rsplit(':').next().unwrap();
    c.goto(&format!("{}/webhooks", t.base)).await.unwrap();
    wait_for(&c, "#webhook-url")
        .await
        .send_keys(&format!("http://hook:s3cret-pw@127.0.0.1:{port}/auth"))
        .await
        .unwrap();
    wait_for(&c, "#add-webhook button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "#webhook-secret").await;
    let page = c.source().await.unwrap();
    assert!(!page.contains("s3cret-pw"), "the password is shown");
    assert!(page.contains("http://***@127.0.0.1"), "{page}");
    let api = listed(&t, &alice).await.to_string();
    assert!(!api.contains("s3cret-pw") && api.contains("***@"), "{api}");

    // Remove the first endpoint: gone from the page, and its deliveries from the API.
    c.execute(
        "document.querySelector('#webhooks form.cancel button').click()",
        vec![],
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while listed(&t, &alice).await.as_array().unwrap().len() != 1 {
        assert!(std::time::Instant::now() < deadline, "never removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(&c, "#webhooks").await;
    assert!(!text_of(&c, "#webhooks").await.contains("/dead"));
    let r = t
        .client
        .get(format!("{}/api/webhooks/{endpoint}/deliveries", t.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a removed endpoint's deliveries are gone");
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_webhooks_page_refuses_a_cross_site_form() {
    let t = app(true).await;
    let alice = key(&t, "user_alice").await;
    let cookie = crate::web::sign_in(&t, &alice).await;
    let (base, _receiver) = start_receiver().await;
    let post = |origin: &'static str| {
        crate::web::no_redirects()
            .post(format!("{}/webhooks", t.base))
            .header("cookie", &cookie)
            .header("origin", origin)
            .form(&[
                ("url", format!("{base}/x")),
                ("events", "prediction.completed".to_owned()),
            ])
            .send()
    };
    assert_eq!(post("https://evil.example").await.unwrap().status(), 400);
    assert!(listed(&t, &alice).await.as_array().unwrap().is_empty());
}
