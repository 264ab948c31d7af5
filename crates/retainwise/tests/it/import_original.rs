//! `retainwise import-original`, run as the real binary against a database made with
//! the original service's table definitions (`tests/fixtures/original/schema.sql`, from its
//! Alembic migrations) on the test Postgres, and a folder holding a copy of its bucket. Then
//! the original frontend's calls see the imported data.

use std::path::Path;
use std::process::Command;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use retainwise::auth::AuthConfig;
use retainwise::config::StorageLocation;
use serde_json::{json, Value};

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");
const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
const ALICE: &str = "user_2alice0000000000000000000";
const BOB: &str = "user_2bob000000000000000000000";
const P1: &str = "11111111-1111-4111-8111-111111111111";
const P2: &str = "22222222-2222-4222-8222-222222222222";
const P3: &str = "33333333-3333-4333-8333-333333333333";
const P4: &str = "44444444-4444-4444-8444-444444444444";
const P5: &str = "55555555-5555-4555-8555-555555555555";
/// Results of P5 in a shape the customers index cannot read (no churn probability).
const P5_RESULTS: &str = "customerID,note\nC-9,x\n";

/// The original's results CSV for P1 (its column names: `customerID`, …).
const P1_RESULTS: &str = "customerID,risk_level,churn_risk_pct,recommendation,summary,key_risks,strengths,churn_probability,retention_probability,risk_factors,protective_factors,explanation\n\
C-1,high,81.0%,HIGH RISK - Immediate intervention needed,Month-to-month contract,Month-to-month contract,,0.81,0.19,\"[{\"\"factor\"\":\"\"Contract\"\",\"\"impact\"\":\"\"high\"\",\"\"message\"\":\"\"Month-to-month contract\"\"}]\",[],\"{\"\"summary\"\":\"\"High risk\"\"}\"\n\
C-2,low,10.0%,LOW RISK - Continue monitoring,Long tenure,,Long tenure,0.1,0.9,[],[],{}\n\
C-3,medium,50.0%,MEDIUM RISK - Proactive engagement recommended,Some risk,,,0.5,0.5,[],[],{}\n";

fn fixture_rows() -> String {
    format!(
        "INSERT INTO users (id, email, clerk_id, full_name, created_at, updated_at) VALUES \
           ('db-alice', 'alice@example.com', '{ALICE}', 'Alice', now(), now()), \
           ('db-bob', 'bob@example.com', '{BOB}', 'Bob', now(), now()); \
         INSERT INTO uploads (id, filename, s3_object_key, file_size, user_id, upload_time, status, created_at, updated_at) VALUES \
           (1, 'customers.csv', 'uploads/{ALICE}/20251102_120000-customers.csv', 17, 'db-alice', now(), 'processed', '2025-11-02 12:00:00+00', now()), \
           (2, 'old file.csv', 'local/{ALICE}/old_file.csv', NULL, 'db-alice', now(), 'uploaded', '2025-11-01 08:00:00+00', now()), \
           (3, 'bob.csv', 'uploads/{BOB}/20251103_090000-bob.csv', 11, 'db-bob', now(), 'uploaded', '2025-11-03 09:00:00+00', now()); \
         INSERT INTO predictions (id, upload_id, user_id, status, s3_output_key, rows_processed, error_message, created_at, updated_at, sqs_message_id) VALUES \
           ('{P1}', 1, 'db-alice', 'COMPLETED', 'uploads/{ALICE}/20251102_120100-{P1}.csv', 3, NULL, '2025-11-02 12:00:01+00', '2025-11-02 12:01:00+00', 'm-1'), \
           ('{P2}', 2, 'db-alice', 'FAILED', NULL, 0, 'Missing required columns: tenure', '2025-11-01 08:00:01+00', '2025-11-01 08:00:30+00', 'm-2'), \
           ('{P3}', 3, 'db-bob', 'QUEUED', NULL, 0, NULL, '2025-11-03 09:00:01+00', '2025-11-03 09:00:01+00', 'm-3'), \
           ('{P4}', 3, 'db-bob', 'COMPLETED', 'predictions/{BOB}/{P4}.csv', 11, NULL, '2025-11-03 09:00:02+00', '2025-11-03 09:05:00+00', 'm-4'), \
           ('{P5}', 1, 'db-alice', 'COMPLETED', 'uploads/{ALICE}/20251030_100000-{P5}.csv', 1, NULL, '2025-10-30 10:00:00+00', '2025-10-30 10:01:00+00', 'm-5');"
    )
}

fn put(root: &Path, key: &str, bytes: &str) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Runs the import; returns (exit code, stdout).
fn import(original: &str, bucket: &Path, target: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["import-original", "--database-url", original, "--bucket"])
        .arg(format!("file://{}", bucket.display()))
        .env(
            "RETAINWISE_DATABASE_URL",
            format!("sqlite://{}", target.join("retainwise.db").display()),
        )
        .env(
            "RETAINWISE_STORAGE_URL",
            format!("file://{}", target.join("objects").display()),
        )
        .env("RETAINWISE_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("S3_BUCKET")
        .env_remove("PREDICTIONS_BUCKET")
        .env_remove("RETAINWISE_QUEUE_URL")
        .env_remove("RETAINWISE_DATA_DIR")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 2,
        "exit {code}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, stdout)
}

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

async fn get_json(t: &TestApp, user: &str, path: &str) -> Value {
    let response = t
        .client
        .get(format!("{}{path}", t.base))
        .bearer_auth(token(user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn import_original_copies_once_and_the_frontend_sees_it() {
    let Some(original_url) = fresh_postgres_database("original").await else {
        return;
    };
    let (original, _) = retainwise_queue::connect(&original_url).await.unwrap();
    let schema = std::fs::read_to_string(format!(
        "{}/tests/fixtures/original/schema.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    sqlx::raw_sql(&schema).execute(&original).await.unwrap();
    sqlx::raw_sql(&fixture_rows())
        .execute(&original)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let upload_1 = "customerID,tenure\n";
    put(
        &bucket,
        &format!("uploads/{ALICE}/20251102_120000-customers.csv"),
        upload_1,
    );
    put(
        &bucket,
        &format!("uploads/{BOB}/20251103_090000-bob.csv"),
        "customerID\n",
    );
    put(
        &bucket,
        &format!("uploads/{ALICE}/20251102_120100-{P1}.csv"),
        P1_RESULTS,
    );
    put(
        &bucket,
        &format!("uploads/{ALICE}/20251030_100000-{P5}.csv"),
        P5_RESULTS,
    );
    let target = dir.path().join("target");

    // First run: everything that exists is copied; the rest is listed, exit code 2.
    let (code, out) = import(&original_url, &bucket, &target);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("users:       2"), "{out}");
    assert!(
        out.contains("uploads:     3 imported, 0 already imported"),
        "{out}"
    );
    assert!(
        out.contains("predictions: 4 imported, 0 already imported, 1 not finished"),
        "{out}"
    );
    let copied = upload_1.len() + "customerID\n".len() + P1_RESULTS.len() + P5_RESULTS.len();
    assert!(
        out.contains(&format!(
            "objects:     4 copied ({copied} bytes), 2 missing"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("not finished: prediction {P3} (QUEUED)")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "missing object: upload 2: local/{ALICE}/old_file.csv"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("missing object: results of prediction {P4}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "not browsable: results of prediction {P5}: no churn_probability column"
        )),
        "{out}"
    );

    // A rerun copies nothing twice.
    let (code, out) = import(&original_url, &bucket, &target);
    assert_eq!(code, 2, "P3 is still queued: {out}");
    assert!(
        out.contains("uploads:     0 imported, 3 already imported"),
        "{out}"
    );
    assert!(
        out.contains("predictions: 0 imported, 4 already imported, 1 not finished"),
        "{out}"
    );
    assert!(
        out.contains("objects:     0 copied (0 bytes), 0 missing"),
        "{out}"
    );

    // Once P3 has finished in the original, the next run takes it, and only it.
    sqlx::query(&format!(
        "UPDATE predictions SET status = 'FAILED', error_message = 'worker crashed' WHERE id = '{P3}'"
    ))
    .execute(&original)
    .await
    .unwrap();
    let (code, out) = import(&original_url, &bucket, &target);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("predictions: 1 imported, 4 already imported, 0 not finished"),
        "{out}"
    );

    // The original frontend, signed in as the same Clerk users, sees their data.
    let t = TestApp::spawn_with(|c| {
        c.database_url = format!("sqlite://{}", target.join("retainwise.db").display());
        c.storage = StorageLocation::Local(target.join("objects"));
        c.auth = AuthConfig::Secret {
            secret: SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        };
    })
    .await;
    let listed = get_json(&t, ALICE, "/api/predictions/").await;
    assert_eq!(listed["count"], 3);
    let p1 = &listed["predictions"][0];
    assert_eq!(p1["id"], P1, "newest first");
    assert_eq!(p1["status"], "COMPLETED");
    assert_eq!(p1["has_output"], true);
    assert_eq!(p1["rows_processed"], 3);
    assert_eq!(p1["created_at"], "2025-11-02T12:00:01.000Z");
    let p2 = &listed["predictions"][1];
    assert_eq!(p2["status"], "FAILED");
    assert_eq!(p2["has_output"], false);
    assert_eq!(p2["error_message"], "Missing required columns: tenure");
    let p5 = &listed["predictions"][2];
    assert_eq!(p5["id"], P5);
    assert_eq!(p5["has_output"], true, "it downloads");

    // The summary the pages show, counted from the imported results.
    let detail = get_json(&t, ALICE, &format!("/api/predictions/{P1}/")).await;
    let summary = &detail["prediction"]["summary"];
    assert_eq!(summary["rows_scored"], 3, "{summary}");
    assert_eq!(
        summary["risk_counts"],
        json!({"high": 1, "medium": 1, "low": 1})
    );
    assert!((summary["mean_churn_probability"].as_f64().unwrap() - 0.47).abs() < 1e-9);

    let uploads = get_json(&t, ALICE, "/api/uploads").await;
    let names: Vec<_> = uploads
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["filename"].as_str().unwrap(),
                u["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("customers.csv", "completed"), ("old file.csv", "failed")]
    );
    assert_eq!(uploads[0]["file_size"], 17);

    let dashboard = get_json(&t, ALICE, "/api/predictions/dashboard/data?limit=1000").await;
    let rows: Vec<(String, f64, String)> = dashboard["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["customer_id"].as_str().unwrap().to_owned(),
                r["churn_probability"].as_f64().unwrap(),
                r["risk_level"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("C-1".to_owned(), 0.81, "high".to_owned()),
            ("C-2".to_owned(), 0.1, "low".to_owned()),
            ("C-3".to_owned(), 0.5, "medium".to_owned()),
        ]
    );

    let link = get_json(
        &t,
        ALICE,
        &format!("/api/predictions/download_predictions/{P1}"),
    )
    .await;
    let file = t
        .client
        .get(link["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.text().await.unwrap(), P1_RESULTS);

    let bobs = get_json(&t, BOB, "/api/predictions/").await;
    let by_id = |id: &str| {
        bobs["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id(P3)["error_message"], "worker crashed");
    let p4 = by_id(P4);
    assert_eq!(p4["status"], "FAILED", "no results to offer");
    assert!(
        p4["error_message"]
            .as_str()
            .unwrap()
            .contains("were not found"),
        "{p4}"
    );
    original.close().await;
}
