//! Erasure of one end customer over the real server, on SQLite + files and on Postgres + S3:
//! the Telco file uploaded twice, outcomes recorded, one customer erased; then every stored
//! object of the organisation (the whole store, listed) and every column of every table is
//! searched for the id and holds it nowhere, the other customers' rows are byte for byte what
//! they were, the audit entry names the hash only, the counts stay with a note, and a later
//! upload holding the customer again is noted and starts a fresh history.

use serde_json::{json, Value};

use crate::helpers::{telco_csv, TestApp};

/// A Telco customer whose TotalCharges is blank, so the report names them too.
const VICTIM: &str = "4472-LVYGI";
/// Another customer, kept.
const KEPT: &str = "7590-VHVEG";

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every text a stored object holds: as stored, and a zip's (an Excel workbook's) parts
/// decoded, so a compressed copy could not hide the id. The store keeps no gzip object (a new
/// one fails here until it is decoded too).
fn texts_of(name: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
    assert!(
        !bytes.starts_with(&[0x1f, 0x8b]),
        "{name} is gzip: decode it in this scan"
    );
    let mut out = vec![bytes.to_vec()];
    if bytes.starts_with(b"PK") {
        out.push(crate::masking::xlsx_text(bytes).into_bytes());
    }
    out
}

/// (table, column) pairs of every table of the app's database.
async fn columns(t: &TestApp) -> Vec<(String, String)> {
    let pool = t.app.db.pool();
    match t.app.db.dialect() {
        retainwise::db::Dialect::Sqlite => {
            let tables: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let mut out = Vec::new();
            for (table,) in tables {
                let cols: Vec<(String,)> =
                    sqlx::query_as(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                out.extend(cols.into_iter().map(|(c,)| (table.clone(), c)));
            }
            out
        }
        retainwise::db::Dialect::Postgres => sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

/// Rows of any column of any table whose text holds `needle`, as `table.column`.
async fn tables_holding(t: &TestApp, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let cols = columns(t).await;
    assert!(cols.len() > 50, "{cols:?}");
    for (table, column) in cols {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM \"{table}\" WHERE CAST(\"{column}\" AS TEXT) LIKE $1"
        ))
        .bind(format!("%{needle}%"))
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
        if n > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

/// Objects of the store whose bytes (or decoded bytes) hold `needle`, and how many were read.
async fn objects_holding(t: &TestApp, needle: &str) -> (Vec<String>, usize) {
    let names = t.app.storage.list_prefix("").await.unwrap();
    let mut found = Vec::new();
    for name in &names {
        let key = retainwise::domain::ObjectKey::parse_foreign(name).unwrap();
        let bytes = t.app.storage.get_bytes(&key).await.unwrap();
        let hit = texts_of(name, &bytes)
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()));
        if hit {
            found.push(name.clone());
        }
    }
    (found, names.len())
}

fn without_line(csv: &str, id: &str) -> String {
    csv.split_inclusive('\n')
        .filter(|l| !l.starts_with(id))
        .collect()
}

async fn erasure_story(t: &TestApp) {
    let Some(path) = telco_csv() else { return };
    let bytes = std::fs::read(path).unwrap();
    let first = t.upload_ok("telco.csv", bytes.clone()).await;
    TestApp::drain(&t.worker, JOBS_PER_STEP).await;
    let second = t.upload_ok("telco-again.csv", bytes.clone()).await;
    TestApp::drain(&t.worker, JOBS_PER_STEP).await;
    let outcomes = json!({"outcomes": [
        {"customer_id": VICTIM, "churned": true, "date": "2026-11-30"},
        {"customer_id": KEPT, "churned": false, "date": "2026-11-30"},
    ]});
    let r = t
        .client
        .post(format!("{}/api/outcomes", t.base))
        .json(&outcomes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let before = [t.results(&first).await, t.results(&second).await];
    assert!(before[0].contains(VICTIM));
    let counts = |p: &Value| {
        (
            p["rows_total"].clone(),
            p["rows_processed"].clone(),
            p["rows_rejected"].clone(),
            p["summary"]["risk_counts"].clone(),
        )
    };
    let counts_before = counts(&t.prediction(&first).await);
    // The customers table is viewed (its index cached) before the erasure.
    let page = t
        .get(&format!("/predictions/{first}/customers?q=LVYGI"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(VICTIM));
    let (found, _) = objects_holding(t, VICTIM).await;
    assert!(found.len() >= 5, "uploads, results, reports: {found:?}");

    let r = t
        .client
        .post(format!("{}/api/customers/{VICTIM}/erase", t.base))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 202, "{body}");
    assert!(!body.to_string().contains(VICTIM), "{body}");
    let erasure = body["erasure_id"].as_str().unwrap().to_owned();
    let hash = body["customer_hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);
    TestApp::drain(&t.worker, JOBS_PER_STEP).await;
    let (status, body) = json_of(t.get(&format!("/api/erasures/{erasure}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["erasure"]["status"], "COMPLETED", "{body}");
    // Two results and two uploads held the row.
    assert_eq!(body["erasure"]["rows_removed"], 4, "{body}");

    // Nothing stored holds the id, and the store still has what it had.
    let (found, read) = objects_holding(t, VICTIM).await;
    assert!(found.is_empty(), "objects still holding the id: {found:?}");
    assert!(read >= 6, "{read} objects");
    let found = tables_holding(t, VICTIM).await;
    assert!(found.is_empty(), "columns still holding the id: {found:?}");
    // The audit entry names the hash.
    let (record,): (String,) =
        sqlx::query_as("SELECT record_id FROM audit_log WHERE action = 'customer.erase'")
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(record, hash);

    // Every other row byte for byte; counts as computed, with a note.
    for (p, b) in [&first, &second].into_iter().zip(&before) {
        assert_eq!(t.results(p).await, without_line(b, VICTIM));
    }
    let p = t.prediction(&first).await;
    assert_eq!(counts(&p), counts_before);
    let notes = p["erasures"].to_string();
    assert!(notes.contains("1 customer erased on"), "{notes}");
    let report = t
        .get(&format!("/api/predictions/{first}/report"))
        .await
        .text()
        .await
        .unwrap();
    assert!(report.contains("1 customer erased on"), "{report}");
    let page = t
        .get(&format!("/predictions/{first}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("1 customer erased on"),
        "the dashboard says so"
    );
    // The customers table reads the new object: the customer is gone, the others are there.
    let page = t
        .get(&format!("/predictions/{first}/customers?q=LVYGI"))
        .await;
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains(VICTIM));
    let page = t
        .get(&format!("/predictions/{first}/customers?q=VHVEG"))
        .await;
    assert!(page.text().await.unwrap().contains(KEPT));
    // History and outcomes of the others are kept.
    let (status, kept) = json_of(t.get(&format!("/api/customers/{KEPT}")).await).await;
    assert_eq!((status, kept["total"].as_i64()), (200, Some(2)), "{kept}");
    let (_, list) = json_of(t.get("/api/outcomes").await).await;
    assert!(list.to_string().contains(KEPT) && !list.to_string().contains(VICTIM));
    let (status, _) = json_of(t.get(&format!("/api/customers/{VICTIM}")).await).await;
    assert_eq!(status, 404);

    // A later upload holding the customer again: noted, and a fresh history of one run.
    let third = t.upload_ok("telco-later.csv", bytes).await;
    TestApp::drain(&t.worker, JOBS_PER_STEP).await;
    let p = t.prediction(&third).await;
    assert_eq!(p["status"], "COMPLETED");
    let notes = p["erasures"].to_string();
    assert!(
        notes.contains("1 customer in this file was erased on")
            && notes.contains("at your request"),
        "{notes}"
    );
    let (status, runs) = json_of(t.get(&format!("/api/customers/{VICTIM}")).await).await;
    assert_eq!((status, runs["total"].as_i64()), (200, Some(1)), "{runs}");
    assert_eq!(runs["runs"][0]["prediction_id"], third.as_str());
    // The first prediction is not touched by the later file.
    assert!(!t.results(&first).await.contains(VICTIM));
}

/// At most this many jobs run after one step of the story: a prediction in pieces is a
/// coordinator, its pieces and a merge.
const JOBS_PER_STEP: usize = 12;

#[tokio::test]
async fn an_erased_customer_is_nowhere_in_the_store_or_the_database_sqlite() {
    let t = TestApp::spawn().await;
    erasure_story(&t).await;
}

#[tokio::test]
async fn an_erased_customer_is_nowhere_in_the_store_or_the_database_postgres_s3() {
    let Some(t) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    erasure_story(&t).await;
}

/// The same story with every file scored in pieces (7,043 rows, 2,000 a piece): the erasure
/// reaches what a merge stored, and a merged prediction notes a returning customer as one pass
/// does.
#[tokio::test]
async fn an_erased_customer_is_nowhere_when_every_file_is_scored_in_pieces() {
    let t = TestApp::spawn_with(|c| c.chunk_rows = 2_000).await;
    erasure_story(&t).await;
}

#[tokio::test]
async fn only_an_owner_erases_and_the_id_is_checked() {
    let t = TestApp::spawn_with(crate::masking::signed_in).await;
    let org: retainwise::domain::OrgId = "org_erase".parse().unwrap();
    let keys = crate::masking::team(&t, &org).await;
    for (role, key) in &keys {
        let r = t
            .client
            .post(format!("{}/api/customers/A-1/erase", t.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let want = if *role == retainwise::domain::Role::Owner {
            202
        } else {
            403
        };
        assert_eq!(r.status(), want, "{role}");
    }
    let owner = &keys.last().unwrap().1;
    let r = t
        .client
        .post(format!("{}/api/customers/%20%20/erase", t.base))
        .bearer_auth(owner)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 400);
    assert!(body.to_string().contains("1 to 2048 bytes"), "{body}");
}

#[tokio::test]
async fn an_erasure_stopped_anywhere_finishes_on_its_retry_and_counts_once() {
    let Some(path) = telco_csv() else { return };
    let t = TestApp::spawn().await;
    let bytes = std::fs::read(path).unwrap();
    let first = t.upload_ok("telco.csv", bytes.clone()).await;
    TestApp::drain(&t.worker, 5).await;
    let second = t.upload_ok("telco-again.csv", bytes).await;
    TestApp::drain(&t.worker, 5).await;
    let mut expected = [t.results(&first).await, t.results(&second).await];
    // Each erasure's first attempt is dropped at another moment (as a worker process dies:
    // its lease lapses and the message comes back); wherever it stopped, the retry finishes
    // the work, and the figures count each row once.
    let victims = [
        ("4472-LVYGI", 5),
        ("7590-VHVEG", 60),
        ("5575-GNVDE", 250),
        ("3668-QPYBK", 900),
    ];
    for (n, (victim, after_ms)) in victims.into_iter().enumerate() {
        let r = t
            .client
            .post(format!("{}/api/customers/{victim}/erase", t.base))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, 202);
        let erasure = body["erasure_id"].as_str().unwrap().to_owned();
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(after_ms),
            t.worker.run_once(std::time::Duration::from_secs(2)),
        )
        .await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let body = loop {
            let (_, body) = json_of(t.get(&format!("/api/erasures/{erasure}")).await).await;
            if body["erasure"]["status"] == "COMPLETED" {
                break body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never finished: {body}"
            );
            t.worker
                .run_once(std::time::Duration::from_secs(2))
                .await
                .unwrap();
        };
        assert_eq!(body["erasure"]["rows_removed"], 4, "{victim}: {body}");
        for (e, p) in expected.iter_mut().zip([&first, &second]) {
            *e = without_line(e, victim);
            assert_eq!(&t.results(p).await, e, "{victim}");
        }
        let (found, _) = objects_holding(&t, victim).await;
        assert!(found.is_empty(), "{victim}: {found:?}");
        assert!(tables_holding(&t, victim).await.is_empty(), "{victim}");
        let notes = t.prediction(&second).await["erasures"].to_string();
        let count = if n == 0 {
            "1 customer erased on".to_owned()
        } else {
            format!("{} customers erased on", n + 1)
        };
        assert!(notes.contains(&count), "{notes}");
    }
}
