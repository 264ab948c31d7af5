//! Drop-in for the original service: every backend call its React frontend makes
//! (muhammadzeb86/churn-saas `frontend/src/services/api.ts`, `pages/*.tsx`,
//! `components/dashboard/*`), sent as the frontend sends it (a Clerk-style Bearer token, its
//! origin, its form fields and query parameters), and every field the frontend reads checked.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use retainwise::auth::AuthConfig;
use serde_json::{json, Value};

use crate::helpers::*;

const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
/// The frontend's origin, configured as `RETAINWISE_CORS_ORIGINS`.
const ORIGIN: &str = "https://app.retainwise.test";
const ALICE: &str = "user_2alice0000000000000000000";
const BOB: &str = "user_2bob000000000000000000000";

fn token(sub: &str) -> String {
    let now = retainwise::time::now_ms() / 1000;
    let claims = json!({ "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 600 });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The frontend's axios instance: base URL, `Authorization: Bearer`, and the page's origin.
struct Frontend<'a> {
    t: &'a TestApp,
    bearer: String,
}

impl Frontend<'_> {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.t
            .client
            .get(format!("{}{path}", self.t.base))
            .bearer_auth(&self.bearer)
            .header("origin", ORIGIN)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.t
            .client
            .post(format!("{}{path}", self.t.base))
            .bearer_auth(&self.bearer)
            .header("origin", ORIGIN)
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }
}

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| retainwise::time::parse_rfc3339(s).is_ok())
}

fn is_probability(v: &Value) -> bool {
    v.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p))
}

/// A factor list as `parseFactors` reads it: objects with a non-empty `message`.
fn check_factors(list: &Value, verb: &str) {
    for f in list.as_array().expect("factors are a list") {
        let message = f["message"].as_str().expect("a factor has a message");
        assert!(message.contains(verb), "{message}");
        assert!(f["feature"].is_string() && f["impact"].is_number(), "{f}");
    }
}

#[tokio::test]
async fn original_frontend_calls_answer_what_it_reads() {
    let t = TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        };
        c.cors_origins = vec![ORIGIN.to_owned()];
    })
    .await;
    let alice = Frontend {
        t: &t,
        bearer: token(ALICE),
    };

    // The browser's preflight for the upload (Authorization is not a simple header).
    let preflight = t
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/api/csv", t.base))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        ORIGIN,
        "RETAINWISE_CORS_ORIGINS lets the frontend's origin call"
    );

    // authAPI.checkHealth, authAPI.syncUser (after sign-in).
    assert_eq!(alice.get("/health").send().await.unwrap().status(), 200);
    let synced = alice.json(alice.post("/api/sync-user")).await;
    assert_eq!(synced["success"], true);
    assert_eq!(synced["user_id"], ALICE);

    // Upload page: uploadAPI.getUploads(user.id) before any upload: an array.
    let uploads = alice
        .json(alice.get("/api/uploads").query(&[("user_id", ALICE)]))
        .await;
    assert_eq!(uploads, json!([]));
    let foreign = alice
        .get("/api/uploads")
        .query(&[("user_id", BOB)])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "another user's uploads are refused");
    // Every page shows `err.response.data.detail` on failure.
    let refusal: Value = foreign.json().await.unwrap();
    assert!(refusal["detail"].as_str().is_some_and(|d| !d.is_empty()));

    // The sample CSV (fetch without credentials).
    let sample = t
        .client
        .get(format!("{}/api/csv/sample-csv/telecom", t.base))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(sample.status(), 200);

    // uploadAPI.uploadCSV: multipart `file` and `user_id`; the banner reads upload_id,
    // filename, file_size; the toast prediction_id.
    let csv = synthetic_telco(12);
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.clone().into_bytes()).file_name("customers.csv"),
        )
        .text("user_id", ALICE);
    let response = alice.post("/api/csv").multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let uploaded: Value = response.json().await.unwrap();
    assert_eq!(uploaded["success"], true);
    assert!(uploaded["message"].is_string());
    assert!(uploaded["upload_id"].is_string());
    assert_eq!(uploaded["filename"], "customers.csv");
    assert_eq!(uploaded["file_size"], csv.len() as u64);
    let id = uploaded["prediction_id"].as_str().unwrap().to_owned();

    // Predictions page: predictionsAPI.getPredictions() with the trailing slash, while queued.
    let listed = alice.json(alice.get("/api/predictions/")).await;
    assert_eq!(listed["success"], true);
    assert_eq!(listed["count"], 1);
    let p = &listed["predictions"][0];
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["upload_id"], uploaded["upload_id"]);
    assert_eq!(p["status"], "QUEUED");
    assert!(
        p["rows_processed"].is_number(),
        "toLocaleString() needs a number"
    );
    assert!(is_time(&p["created_at"]));
    assert_eq!(p["has_output"], false);

    t.work_once().await;

    let listed = alice.json(alice.get("/api/predictions/")).await;
    let p = &listed["predictions"][0];
    assert_eq!(p["status"], "COMPLETED");
    assert_eq!(p["rows_processed"], 12);
    assert_eq!(p["has_output"], true, "the Download button shows");

    // predictionsAPI.getPredictionDetail(id): `/api/predictions/{id}/`.
    let detail = alice
        .json(alice.get(&format!("/api/predictions/{id}/")))
        .await;
    assert_eq!(detail["success"], true);
    assert_eq!(detail["prediction"]["id"], id.as_str());
    assert_eq!(detail["prediction"]["status"], "COMPLETED");

    // The upload list now shows the file and its status.
    let uploads = alice
        .json(alice.get("/api/uploads").query(&[("user_id", ALICE)]))
        .await;
    assert_eq!(uploads.as_array().unwrap().len(), 1);
    assert_eq!(uploads[0]["id"], uploaded["upload_id"]);
    assert_eq!(uploads[0]["filename"], "customers.csv");
    assert_eq!(uploads[0]["status"], "completed");
    assert!(is_time(&uploads[0]["created_at"]));

    // Dashboard: predictionsAPI.getDashboardData() sends limit=1000.
    let dashboard = alice
        .json(
            alice
                .get("/api/predictions/dashboard/data")
                .query(&[("limit", "1000")]),
        )
        .await;
    assert_eq!(dashboard["success"], true);
    let rows = dashboard["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 12, "every customer of the file");
    let response = alice
        .get(&format!("/api/predictions/{id}/results"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let results = response.text().await.unwrap();
    let (header, records) = parse_csv(&results);
    let (cid, prob) = (
        column(&header, "customer_id"),
        column(&header, "churn_probability"),
    );
    let mut ids = std::collections::HashSet::new();
    for (row, record) in rows.iter().zip(&records) {
        // validatePrediction / the zod schemas / the table's columns.
        assert!(row["id"].is_string() && ids.insert(row["id"].to_string()));
        assert_eq!(row["customer_id"], record[cid].as_str(), "file order");
        assert!(is_probability(&row["churn_probability"]));
        let p: f64 = record[prob].parse().unwrap();
        assert!((row["churn_probability"].as_f64().unwrap() - p).abs() < 1e-9);
        assert!(is_probability(&row["retention_probability"]));
        let level = row["risk_level"].as_str().unwrap();
        assert!(["high", "medium", "low"].contains(&level), "{level}");
        assert!(is_time(&row["created_at"]));
        assert_eq!(
            row["status"], "completed",
            "RiskDistributionChart keeps only this"
        );
        check_factors(&row["risk_factors"], "raises");
        check_factors(&row["protective_factors"], "lowers");
        // parseExplanation: a JSON string holding `summary`.
        let explanation: Value =
            serde_json::from_str(row["explanation"].as_str().expect("a JSON string")).unwrap();
        assert!(!explanation["summary"].as_str().unwrap().is_empty());
    }
    assert!(
        rows.iter()
            .any(|r| !r["risk_factors"].as_array().unwrap().is_empty()),
        "some customer has a risk driver"
    );
    let two = alice
        .json(
            alice
                .get("/api/predictions/dashboard/data")
                .query(&[("limit", "2")]),
        )
        .await;
    assert_eq!(two["predictions"].as_array().unwrap().len(), 2);
    assert_eq!(two["predictions"][1], rows[1]);
    for bad in ["0", "10001", "many"] {
        let response = alice
            .get("/api/predictions/dashboard/data")
            .query(&[("limit", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "limit={bad}");
    }

    // predictionsAPI.downloadPrediction(id): a link the browser opens without credentials.
    let link = alice
        .json(alice.get(&format!("/api/predictions/download_predictions/{id}")))
        .await;
    assert_eq!(link["success"], true);
    assert_eq!(link["expires_in"], 600);
    let url = link["download_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&t.base), "an absolute URL: {url}");
    let file = t.client.get(&url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert!(file.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(
        file.text().await.unwrap(),
        results,
        "the same spreadsheet-safe bytes"
    );
    let forged = url.replace("signature=", "signature=A");
    assert_eq!(t.client.get(&forged).send().await.unwrap().status(), 403);
    let longer = url.replace("expires=", "expires=9");
    assert_eq!(t.client.get(&longer).send().await.unwrap().status(), 403);
    // A link cut short (a parameter removed) is refused like a forged one.
    let (base, query) = url.split_once('?').unwrap();
    let cut: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("signature="))
        .collect();
    let cut = format!("{base}?{}", cut.join("&"));
    assert_eq!(t.client.get(&cut).send().await.unwrap().status(), 403);
    // Asked for under a name other than loopback (behind a TLS-ending proxy, without
    // RETAINWISE_PUBLIC_URL), the link is https, as the session cookie is Secure there.
    let proxied = alice
        .json(
            alice
                .get(&format!("/api/predictions/download_predictions/{id}"))
                .header("host", "10.1.2.3"),
        )
        .await;
    let proxied = proxied["download_url"].as_str().unwrap();
    assert!(
        proxied.starts_with("https://10.1.2.3/api/downloads/"),
        "{proxied}"
    );

    // Bob sees none of it: his dashboard is empty, Alice's ids answer like missing ones.
    let bob = Frontend {
        t: &t,
        bearer: token(BOB),
    };
    let empty = bob.json(bob.get("/api/predictions/dashboard/data")).await;
    assert_eq!(empty["predictions"], json!([]));
    assert_eq!(bob.json(bob.get("/api/uploads")).await, json!([]));
    let missing = uuid::Uuid::new_v4();
    for path in [
        format!("/api/predictions/download_predictions/{id}"),
        format!("/api/predictions/download_predictions/{missing}"),
        format!("/api/predictions/{id}/"),
    ] {
        let response = bob.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // A link made for Alice does not open with Bob's name on it.
    let swapped = url.replace(&format!("user={ALICE}"), &format!("user={BOB}"));
    assert_ne!(swapped, url);
    assert_eq!(t.client.get(&swapped).send().await.unwrap().status(), 403);
}

/// On S3 the download link is a presigned GET (10 minutes) of the spreadsheet-safe copy,
/// fetched straight from the S3 server.
#[tokio::test]
async fn download_link_on_s3_is_presigned() {
    let Some(t) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    let id = t
        .upload_ok("customers.csv", synthetic_telco(8).into_bytes())
        .await;
    t.work_once().await;
    let p = t.wait_finished(&id, Duration::from_secs(30)).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    let response = t
        .get(&format!("/api/predictions/download_predictions/{id}"))
        .await;
    assert_eq!(response.status(), 200);
    let link: Value = response.json().await.unwrap();
    let url = link["download_url"].as_str().unwrap().to_owned();
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=600"),
        "{url}"
    );
    assert!(!url.starts_with(&t.base), "served by S3, not by retainwise");
    // The S3 server checks the signature: an altered one is refused, so the 200s below come
    // from the presigning, not from an open bucket.
    let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut forged = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    forged.replace_range(sig_at..sig_at + 1, flipped);
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);
    let results = t.results(&id).await;
    for _ in 0..2 {
        // The same link works again (it is valid for 10 minutes).
        let file = reqwest::get(&url).await.unwrap();
        assert_eq!(file.status(), 200);
        assert!(file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("prediction_results_{id}.csv")));
        assert_eq!(file.text().await.unwrap(), results);
    }
    let again: Value = t
        .get(&format!("/api/predictions/download_predictions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let file = reqwest::get(again["download_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(file.text().await.unwrap(), results);
}

/// The original publisher's message (`tests/fixtures/original/sqs_message.json`, the body
/// `backend/services/sqs_service.py` sends: `s3_file_path` as an `s3://` URL, the upload id an
/// integer as text, `datetime.utcnow().isoformat()` without a zone, and its three message
/// attributes), published straight onto the SQS queue for a prediction created through the API,
/// is taken and completed by a retainwise worker.
#[tokio::test]
async fn original_queue_message_completes_on_sqs() {
    let Some(t) = TestApp::spawn_postgres_s3_sqs().await else {
        return;
    };
    let id = t
        .upload_ok("customers.csv", synthetic_telco(6).into_bytes())
        .await;
    // Take retainwise's own message off the queue, unprocessed, so only the original's can
    // run the job.
    let ours = t
        .app
        .queue
        .receive(1, Duration::from_secs(10))
        .await
        .unwrap()
        .pop()
        .expect("the upload's own message");
    let ours_body: Value = serde_json::from_str(&ours.body).unwrap();
    assert_eq!(ours_body["prediction_id"], id.as_str());
    t.app.queue.ack(&ours.receipt).await.unwrap();
    assert_eq!(t.prediction(&id).await["status"], "QUEUED");

    let user = ours_body["user_id"].as_str().unwrap();
    let path = format!(
        "{}/{}",
        t.app.storage.root_url(),
        ours_body["object_key"].as_str().unwrap()
    );
    assert!(path.starts_with("s3://"), "{path}");
    let stamp = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let body = std::fs::read_to_string(format!(
        "{}/tests/fixtures/original/sqs_message.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .trim()
    .replace("{prediction_id}", &id)
    .replace("{upload_id}", "15")
    .replace("{user_id}", user)
    .replace("{s3_file_path}", &path)
    .replace("{timestamp}", stamp.trim_end_matches('Z'));
    let endpoint = std::env::var("RETAINWISE_TEST_SQS_ENDPOINT").unwrap();
    let sqs = retainwise_queue::sqs::client(Some(&endpoint), Some("us-east-1")).await;
    let retainwise::config::QueueBackend::Sqs(queue_url) = &t.app.config.queue else {
        panic!("an SQS queue");
    };
    let attribute = |v: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(&body)
        .message_attributes("user_id", attribute(user))
        .message_attributes("prediction_id", attribute(&id))
        .message_attributes("upload_id", attribute("15"))
        .send()
        .await
        .unwrap();

    let outcome = t.work_once().await;
    let p = t.wait_finished(&id, Duration::from_secs(30)).await;
    assert_eq!(p["status"], "COMPLETED", "{outcome:?}: {p}");
    assert_eq!(p["rows_processed"], 6);
    assert_eq!(parse_csv(&t.results(&id).await).1.len(), 6);
}
