//! One file, many workers: a file with more rows than `RETAINWISE_CHUNK_ROWS` is cut in
//! pieces, each scored by its own job, and merged. The central check: the result is byte for
//! byte what `retainwise predict` writes for the whole file, and the summary what one job
//! stores, on a file with quoted line breaks, CRLF, a byte-order mark, windows-1252 bytes past
//! the encoding sample, repeated ids across pieces and bad rows at every piece's boundary
//! (pieces of 29 rows, a bad row in about one of three). Then a piece that fails for good, a
//! cancel, and progress; on the embedded default and on Postgres + S3 + SQS.

use std::process::Command;
use std::time::Duration;

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::TestApp;

/// Rows per piece in these tests: small, so every few rows is a boundary.
const ROWS: u64 = 29;

fn awkward(seed: u64) -> Vec<u8> {
    retainwise_model::chunks::awkward_file(seed, 900, true, true)
}

/// `retainwise predict FILE -o OUT` on `bytes`: the offline result.
fn offline(bytes: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
    std::fs::write(&input, bytes).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(&output).unwrap()
}

async fn report(t: &TestApp, id: &str) -> Value {
    let r = t.get(&format!("/api/predictions/{id}/report")).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Uploads `bytes` to `t` and runs the worker until the queue is empty.
async fn upload_and_drain(t: &TestApp, bytes: Vec<u8>) -> (String, Vec<Outcome>) {
    let id = t.upload_ok("big.csv", bytes).await;
    let outcomes = TestApp::drain(&t.worker, 500).await;
    (id, outcomes)
}

/// The whole story on `cut` (pieces of [`ROWS`]) against `whole` (never cut), same backend.
async fn same_bytes_as_one_pass(cut: TestApp, whole: TestApp) {
    for seed in [5, 6] {
        let bytes = awkward(seed);
        assert!(bytes.len() > 70_000, "past the encoding sample");
        let (id, outcomes) = upload_and_drain(&cut, bytes.clone()).await;
        let p = cut.prediction(&id).await;
        assert_eq!(p["status"], "COMPLETED", "{p}");
        let total = p["chunks_total"].as_u64().expect("cut in pieces");
        assert!(total > 15, "{total} pieces");
        assert_eq!(p["chunks_done"].as_u64(), Some(total));
        // The coordinator, every piece, the merge: each completed once.
        let completed = outcomes
            .iter()
            .filter(|o| **o == Outcome::Completed)
            .count() as u64;
        assert_eq!(completed, total + 2, "{outcomes:?}");

        let (one, _) = upload_and_drain(&whole, bytes.clone()).await;
        let q = whole.prediction(&one).await;
        assert_eq!(q["status"], "COMPLETED", "{q}");
        assert!(q["chunks_total"].is_null());

        let results = cut.results(&id).await;
        assert_eq!(results, whole.results(&one).await, "seed {seed}: results");
        assert!(
            results.as_bytes() == offline(&bytes),
            "seed {seed}: not the bytes of retainwise predict"
        );
        for field in ["rows_total", "rows_processed", "rows_rejected"] {
            assert_eq!(p[field], q[field], "{field}");
        }
        let (s, t1) = (&p["summary"], &q["summary"]);
        assert!(s["validation"]["duplicate_ids"].as_u64() > Some(0), "{s}");
        assert!(s["rows_rejected"].as_u64() > Some(20), "{s}");
        assert_eq!(s, t1, "seed {seed}: summary");
        assert_eq!(report(&cut, &id).await, report(&whole, &one).await);
    }
    // The pieces' objects are removed once the merge is recorded.
    if let retainwise::config::StorageLocation::Local(root) = &cut.app.config.storage {
        let pieces = root.join("pieces");
        assert!(!pieces.exists() || walk(&pieces).is_empty(), "{pieces:?}");
    }
}

#[tokio::test]
async fn pieces_give_the_bytes_of_predict_on_the_embedded_default() {
    let cut = TestApp::spawn_with(|c| c.chunk_rows = ROWS).await;
    let whole = TestApp::spawn().await;
    same_bytes_as_one_pass(cut, whole).await;
}

#[tokio::test]
async fn pieces_give_the_bytes_of_predict_on_postgres_s3_sqs() {
    let Some(cut) = TestApp::spawn_postgres_s3_sqs_with(|c| c.chunk_rows = ROWS).await else {
        return;
    };
    let Some(whole) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    same_bytes_as_one_pass(cut, whole).await;
}

/// Runs the worker once on `t`: the coordinator's delivery, which cuts the file.
async fn cut_only(t: &TestApp, bytes: Vec<u8>) -> (String, u64) {
    let id = t.upload_ok("big.csv", bytes).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "RUNNING", "handed on to its pieces: {p}");
    assert_eq!(p["chunks_done"], 0);
    (id, p["chunks_total"].as_u64().expect("cut"))
}

#[tokio::test]
async fn progress_counts_pieces_and_rows_across_them() {
    let t = TestApp::spawn_with(|c| c.chunk_rows = ROWS).await;
    let (id, total) = cut_only(&t, awkward(8)).await;
    for done in 1..=3u64 {
        assert_eq!(t.work_once().await, Outcome::Completed);
        let p = t.prediction(&id).await;
        assert_eq!(p["chunks_done"].as_u64(), Some(done));
        assert_eq!(p["chunks_total"].as_u64(), Some(total));
        assert_eq!(p["status"], "RUNNING");
        assert_eq!(p["rows_processed"].as_u64(), Some(done * ROWS), "{p}");
        let page = t.get("/predictions").await.text().await.unwrap();
        let shown = format!(
            "{} rows scored so far, {done} of {total} pieces done",
            done * ROWS
        );
        assert!(page.contains(&shown), "{shown} not in the page");
    }
    TestApp::drain(&t.worker, 500).await;
    assert_eq!(t.prediction(&id).await["status"], "COMPLETED");
}

#[tokio::test]
async fn a_piece_that_fails_for_good_fails_the_prediction_with_its_reason() {
    let t = TestApp::spawn_with(|c| c.chunk_rows = ROWS).await;
    let (id, _) = cut_only(&t, awkward(9)).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    // The upload disappears while its pieces wait: the next piece cannot be read, for good.
    let objects = t.dir.path().join("objects").join("uploads");
    for entry in walk(&objects) {
        std::fs::remove_file(entry).unwrap();
    }
    assert_eq!(t.work_once().await, Outcome::Failed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "FAILED", "{p}");
    let error = p["error_message"].as_str().unwrap();
    assert!(error.contains("no longer in storage"), "{error}");
    // The other pieces were cancelled with it: they run nothing, no merge is queued, and no
    // result is published.
    let rest = TestApp::drain(&t.worker, 500).await;
    assert!(rest.iter().all(|o| *o == Outcome::Cancelled), "{rest:?}");
    assert_eq!(t.prediction(&id).await["status"], "FAILED");
    let r = t.get(&format!("/api/predictions/{id}/results")).await;
    assert_ne!(r.status(), 200);
}

#[tokio::test]
async fn cancel_stops_every_piece() {
    let t = TestApp::spawn_with(|c| c.chunk_rows = ROWS).await;
    let (id, _) = cut_only(&t, awkward(10)).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let r = t
        .client
        .post(format!("{}/api/predictions/{id}/cancel", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let rest = TestApp::drain(&t.worker, 500).await;
    assert!(rest.iter().all(|o| *o == Outcome::Cancelled), "{rest:?}");
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "CANCELLED");
    let r = t.get(&format!("/api/predictions/{id}/results")).await;
    assert_ne!(r.status(), 200);
}

/// Every file under `dir`.
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

/// A crash at every failure point of the driver, once in a piece (its third) and once in the
/// merge, with a lease that lapses after a second: every prediction ends COMPLETED with the
/// bytes of `retainwise predict`, each piece counted once, no message left or dead.
#[tokio::test]
async fn a_crash_in_a_piece_or_in_the_merge_costs_that_job_only() {
    use retainwise::worker::{FailurePoint, FailurePoints, Worker, WorkerOptions};
    let bytes = retainwise_model::chunks::awkward_file(12, 200, true, true);
    let expected = offline(&bytes);
    for point in FailurePoint::ALL {
        for in_merge in [false, true] {
            let t = TestApp::spawn_with(|c| {
                c.chunk_rows = ROWS;
                c.visibility_timeout = Duration::from_secs(1);
            })
            .await;
            let points = FailurePoints::armable();
            let worker = Worker::new(
                t.app.clone(),
                WorkerOptions {
                    failure_points: points.clone(),
                    ..crate::helpers::fast_worker_options()
                },
            );
            let (id, total) = cut_only(&t, bytes.clone()).await;
            let mut outcomes = Vec::new();
            let mut armed = false;
            for _ in 0..(total as usize * 3 + 20) {
                let stats = t.app.queue.stats().await.unwrap();
                if stats.depth + stats.in_flight + stats.delayed == 0 {
                    break;
                }
                if !armed {
                    let p = t.prediction(&id).await;
                    let done = p["chunks_done"].as_u64().unwrap();
                    if (in_merge && done == total) || (!in_merge && done == 2) {
                        points.arm(point, 1);
                        armed = true;
                    }
                }
                outcomes.push(step(&worker).await);
            }
            let case = format!("{point:?}, in the merge: {in_merge}: {outcomes:?}");
            assert!(armed, "{case}");
            // The crash happened: a delivery ended without an outcome (or, inside the run,
            // as a failed attempt retried).
            assert!(
                outcomes
                    .iter()
                    .any(|o| o.is_none() || *o == Some(Outcome::Retried)),
                "{case}"
            );
            let p = t.prediction(&id).await;
            assert_eq!(p["status"], "COMPLETED", "{case}\n{p}");
            assert_eq!(p["chunks_done"].as_u64(), Some(total), "{case}");
            assert!(t.results(&id).await.as_bytes() == expected, "{case}");
            let stats = t.app.queue.stats().await.unwrap();
            assert_eq!(
                (stats.depth, stats.in_flight, stats.delayed, stats.dead),
                (0, 0, 0, 0),
                "{case}"
            );
        }
    }
}

/// One receive and its processing on a task of its own, so a crash (a panic at a failure
/// point) ends that task as it would end a process. `None`: crashed, or nothing arrived.
async fn step(worker: &retainwise::worker::Worker) -> Option<Outcome> {
    let worker = worker.clone();
    tokio::spawn(async move { worker.run_once(Duration::from_secs(3)).await })
        .await
        .ok()
        .and_then(|received| received.expect("queue reachable"))
}

/// A piece that fails on its last allowed receive (a crash inside its run, with one receive
/// allowed) is dead-lettered, and the prediction fails saying so; the other pieces stop with
/// it and no merge runs.
#[tokio::test]
async fn a_piece_dead_lettered_fails_the_prediction() {
    use retainwise::worker::{FailurePoint, FailurePoints, Worker, WorkerOptions};
    let t = TestApp::spawn_with(|c| {
        c.chunk_rows = ROWS;
        c.max_receives = 1;
    })
    .await;
    let points = FailurePoints::armable();
    let worker = Worker::new(
        t.app.clone(),
        WorkerOptions {
            failure_points: points.clone(),
            ..crate::helpers::fast_worker_options()
        },
    );
    let bytes = retainwise_model::chunks::awkward_file(13, 200, false, true);
    let (id, _) = cut_only(&t, bytes).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    points.arm(FailurePoint::DuringRun, 1);
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        let stats = t.app.queue.stats().await.unwrap();
        if stats.depth + stats.in_flight + stats.delayed == 0 {
            break;
        }
        outcomes.push(step(&worker).await);
    }
    assert!(
        outcomes.contains(&Some(Outcome::DeadLettered)),
        "{outcomes:?}"
    );
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "FAILED", "{p}");
    let error = p["error_message"].as_str().unwrap();
    assert!(error.starts_with("dead-lettered:"), "{error}");
    assert!(
        outcomes.iter().all(|o| *o != Some(Outcome::Completed)
            || p["chunks_done"].as_u64() < p["chunks_total"].as_u64()),
        "no merge ran: {outcomes:?}"
    );
    let r = t.get(&format!("/api/predictions/{id}/results")).await;
    assert_ne!(r.status(), 200);
}

/// The first 600 Telco rows with their Churn labels permuted: a challenger that learns noise.
fn noise_training_file(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let churn = crate::helpers::column(header, "Churn");
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header).unwrap();
    for (i, r) in rows[..600].iter().enumerate() {
        let mut r = r.clone();
        // 7 and 600 are coprime: a permutation of the labels.
        r[churn] = rows[(i * 7 + 3) % 600][churn].clone();
        out.write_record(&r).unwrap();
    }
    out.into_inner().unwrap()
}

/// Telco rows `range` as a CSV, each passed through `change(index, cells)`, then `extra` rows.
fn telco_file(
    header: &[String],
    rows: &[Vec<String>],
    range: std::ops::Range<usize>,
    change: impl Fn(usize, &mut Vec<String>),
    extra: &[Vec<String>],
) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header).unwrap();
    for i in range {
        let mut cells = rows[i].clone();
        change(i, &mut cells);
        out.write_record(&cells).unwrap();
    }
    for cells in extra {
        out.write_record(cells).unwrap();
    }
    out.into_inner().unwrap()
}

/// `v` with every prediction id named by `names` replaced by its name and the fields that
/// carry a time removed: what two runs of the same story must agree on.
fn normalised(mut v: Value, names: &[(String, &str)]) -> Value {
    fn walk(v: &mut Value, names: &[(String, &str)]) {
        match v {
            Value::String(s) => {
                if let Some((_, name)) = names.iter().find(|(id, _)| id == s) {
                    *s = (*name).to_owned();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, names)),
            Value::Object(map) => {
                for time in ["scored_at", "timestamp", "created_at", "id"] {
                    map.remove(time);
                }
                map.values_mut().for_each(|i| walk(i, names));
            }
            _ => {}
        }
    }
    walk(&mut v, names);
    v
}

/// Everything a prediction leaves besides its result, gathered from one app after the story
/// (a challenger marked, a January file, a February file with customers moved up and one id
/// repeated, January's outcomes): each part normalised by [`normalised`].
async fn beyond_the_result(
    t: &TestApp,
    header: &[String],
    rows: &[Vec<String>],
) -> Vec<(&'static str, Value)> {
    let at = |name: &str| crate::helpers::column(header, name);
    let (contract, payment, tenure, id_at, churn) = (
        at("Contract"),
        at("PaymentMethod"),
        at("tenure"),
        at("customerID"),
        at("Churn"),
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(noise_training_file(header, rows)).file_name("noise.csv"),
    );
    let r = t
        .client
        .post(format!(
            "{}/api/models?label=Churn&id_column=customerID&name=noise",
            t.base
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let training = r.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, Outcome::Completed);
    let body: Value = t
        .get(&format!("/api/models/trainings/{training}"))
        .await
        .json()
        .await
        .unwrap();
    let noise = body["training"]["model_id"].as_str().unwrap().to_owned();
    let r = t
        .client
        .post(format!("{}/api/models/{noise}/challenger", t.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Deliveries to a closed port: only the events' bodies, as queued, are compared.
    let r = t
        .client
        .post(format!("{}/api/webhooks", t.base))
        .json(&serde_json::json!({"url": "http://127.0.0.1:9/crm", "events": ["customers.risk_increased"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let jan = telco_file(header, rows, 0..3000, |_, _| {}, &[]);
    // February: customers moved to a riskier contract, and one customer's row repeated at the
    // end with another contract (the history keeps the first).
    let mut again = rows[1200].clone();
    again[contract] = "Two year".to_owned();
    let feb = telco_file(
        header,
        rows,
        500..3500,
        |i, c| {
            if (1000..2000).contains(&i) && i % 2 == 0 {
                c[contract] = "Month-to-month".to_owned();
                c[payment] = "Electronic check".to_owned();
                c[tenure] = "1".to_owned();
            }
        },
        &[again],
    );
    let jan_id = t.upload_ok("january.csv", jan).await;
    TestApp::drain(&t.worker, 500).await;
    let feb_id = t.upload_ok("february.csv", feb).await;
    TestApp::drain(&t.worker, 500).await;
    let mut outcomes = String::from("customerID,Churn,date\n");
    let day = retainwise_model::dates::iso(retainwise_model::dates::today());
    for r in &rows[..3000] {
        outcomes.push_str(&format!("{},{},{day}\n", r[id_at], r[churn]));
    }
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(outcomes.into_bytes()).file_name("outcomes.csv"),
    );
    let r = t
        .client
        .post(format!("{}/api/outcomes", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let names = [(jan_id.clone(), "january"), (feb_id.clone(), "february")];
    let mut parts = Vec::new();
    for (id, name) in &names {
        let p = t.prediction(id).await;
        assert_eq!(p["status"], "COMPLETED", "{name}: {p}");
        parts.push(("drift", p["summary"]["drift"].clone()));
        let history: Vec<(String, String, i64, String, String, i64)> = sqlx::query_as(
            "SELECT customer_id, model_id, probability_ppm, risk_level, drivers, row_number \
             FROM customer_history WHERE prediction_id = $1 ORDER BY customer_id",
        )
        .bind(id)
        .fetch_all(t.app.db.pool())
        .await
        .unwrap();
        assert!(
            history.len() >= 2999,
            "{name}: {} customers remembered",
            history.len()
        );
        parts.push(("history", serde_json::to_value(history).unwrap()));
        let run: Vec<(String, i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT model_id, customers, note, not_remembered FROM customer_runs WHERE prediction_id = $1",
        )
        .bind(id)
        .fetch_all(t.app.db.pool())
        .await
        .unwrap();
        parts.push(("customer_runs", serde_json::to_value(run).unwrap()));
        let shadow: Vec<(String, i64)> = sqlx::query_as(
            "SELECT model_id, rows_scored FROM shadow_scores WHERE prediction_id = $1",
        )
        .bind(id)
        .fetch_all(t.app.db.pool())
        .await
        .unwrap();
        assert_eq!(shadow.len(), 1, "{name}: shadow-scored once");
        assert_eq!(shadow[0].0, noise);
        parts.push(("shadow_scores", serde_json::to_value(shadow).unwrap()));
        let (key,): (String,) =
            sqlx::query_as("SELECT result_key FROM shadow_scores WHERE prediction_id = $1")
                .bind(id)
                .fetch_one(t.app.db.pool())
                .await
                .unwrap();
        let key = retainwise::domain::ObjectKey::parse_foreign(&key).unwrap();
        let bytes = t.app.storage.get_bytes(&key).await.unwrap();
        parts.push((
            "shadow result",
            Value::String(String::from_utf8(bytes.to_vec()).unwrap()),
        ));
    }
    let changes: Value = t
        .get(&format!("/api/predictions/{feb_id}/changes?limit=200"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        changes["counts"]["moved_up"].as_u64() > Some(50),
        "{changes}"
    );
    parts.push(("changes", normalised(changes, &names)));
    for customer in [
        &rows[1000][id_at],
        &rows[1200][id_at],
        &rows[2500][id_at],
        &rows[100][id_at],
    ] {
        let runs: Value = t
            .get(&format!("/api/customers/{customer}"))
            .await
            .json()
            .await
            .unwrap();
        parts.push(("customer", normalised(runs, &names)));
    }
    for design in ["", "?design=split"] {
        let r = t
            .get(&format!("/api/predictions/{jan_id}/comparison{design}"))
            .await;
        assert_eq!(r.status(), 200);
        let c: Value = r.json().await.unwrap();
        assert_eq!(c["comparison"]["common"], 3000, "{c}");
        parts.push(("comparison", normalised(c, &names)));
    }
    let events: Vec<(String,)> = sqlx::query_as(
        "SELECT body FROM webhook_deliveries WHERE event = 'customers.risk_increased'",
    )
    .fetch_all(t.app.db.pool())
    .await
    .unwrap();
    assert_eq!(events.len(), 1, "February raised risks: one event");
    let event: Value = serde_json::from_str(&events[0].0).unwrap();
    assert!(event["data"]["count"].as_u64() > Some(50), "{event}");
    parts.push(("customers.risk_increased", normalised(event, &names)));
    parts
}

/// A file scored in pieces does everything one pass does besides its result: its customers
/// are remembered (the same history rows, so the same customer pages, changes and
/// `customers.risk_increased` event), the challenger shadow-scores it (the same shadow result,
/// so the same comparison figures) and its drift is the same.
#[tokio::test]
async fn pieces_remember_customers_shadow_score_and_measure_drift_as_one_pass() {
    let Some(path) = crate::helpers::telco_csv() else {
        return;
    };
    let (header, rows) = crate::helpers::parse_csv(&std::fs::read_to_string(path).unwrap());
    let settings = |c: &mut retainwise::config::Config| {
        c.webhook_allow_private = true;
        c.http.public_origin = Some("http://retainwise.test".to_owned());
    };
    let cut = TestApp::spawn_with(|c| {
        c.chunk_rows = 500;
        settings(c);
    })
    .await;
    let whole = TestApp::spawn_with(settings).await;
    let pieces = beyond_the_result(&cut, &header, &rows).await;
    let (rows_cut,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM predictions WHERE chunks_total >= 6")
            .fetch_one(cut.app.db.pool())
            .await
            .unwrap();
    assert_eq!(rows_cut, 2, "both files were scored in pieces");
    let one_pass = beyond_the_result(&whole, &header, &rows).await;
    assert_eq!(pieces.len(), one_pass.len());
    for ((what, a), (_, b)) in pieces.iter().zip(&one_pass) {
        assert!(a == b, "{what} differs:\nin pieces: {a}\none pass:  {b}");
    }
}

/// The customers index of a file scored in pieces is the pieces' own parts merged and stored
/// beside the result (no process reads the whole result to index it), and the customers
/// table, a customer's page and the dashboard data answer exactly as after one pass: the
/// same rows for every search, level, order and page.
#[tokio::test]
async fn the_customers_of_a_file_in_pieces_page_search_and_sort_as_one_passs() {
    let cut = TestApp::spawn_with(|c| c.chunk_rows = ROWS).await;
    let whole = TestApp::spawn().await;
    customers_as_one_pass(cut, whole).await;
}

#[tokio::test]
async fn on_postgres_s3_sqs_the_customers_of_a_file_in_pieces_page_as_one_passs() {
    let Some(cut) = TestApp::spawn_postgres_s3_sqs_with(|c| c.chunk_rows = ROWS).await else {
        return;
    };
    let Some(whole) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    customers_as_one_pass(cut, whole).await;
}

/// The customers of one awkward file scored in pieces on `cut` and in one job on `whole`.
async fn customers_as_one_pass(cut: TestApp, whole: TestApp) {
    let bytes = awkward(7);
    let (a, _) = upload_and_drain(&cut, bytes.clone()).await;
    let (b, _) = upload_and_drain(&whole, bytes).await;
    assert!(cut.prediction(&a).await["chunks_total"].as_u64() > Some(15));
    assert!(whole.prediction(&b).await["chunks_total"].is_null());
    let stored = |t: &TestApp, id: &str| {
        let key = retainwise::domain::ObjectKey::result(
            &retainwise::domain::OrgId::local(),
            id.parse().unwrap(),
        );
        (
            retainwise::domain::ObjectKey::stored_index_of(&key).unwrap(),
            key,
            t.app.storage.clone(),
        )
    };
    let (index_key, result_key, storage) = stored(&cut, &a);
    let bytes = storage
        .get_bytes(&index_key)
        .await
        .expect("stored beside the result");
    let (none, _, whole_storage) = stored(&whole, &b);
    assert!(
        whole_storage.get_bytes(&none).await.is_err(),
        "one pass stores none"
    );
    // The stored index is the one built from the whole result.
    use retainwise::customer_index::{CustomerIndex, Filter};
    let loaded = CustomerIndex::from_stored(&bytes[..]).unwrap();
    let built = CustomerIndex::build(&storage, &result_key).await.unwrap();
    assert!(loaded.len() > 500);
    assert_eq!(loaded.counts, built.counts);
    let all = |i: &CustomerIndex, ascending| {
        let filter = Filter {
            ascending,
            ..Filter::default()
        };
        let (_, entries) = i.page(&filter, 0, i.len());
        entries
            .iter()
            .map(|e| {
                (
                    e.row,
                    e.offset,
                    e.len,
                    e.millionths,
                    e.level,
                    i.id(e).to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(all(&loaded, false), all(&built, false));
    assert_eq!(all(&loaded, true), all(&built, true));

    for query in [
        "",
        "?page=2",
        "?sort=churn_asc&page=3",
        "?level=high",
        "?level=medium&sort=churn_asc&page=2",
        "?level=low&page=4",
        "?q=c1",
        "?q=C12&level=low",
        "?q=0001&sort=churn_asc",
    ] {
        let path = format!("/predictions/{{id}}/customers{query}");
        let (x, y) = (
            page(&cut, &a, path.clone()).await,
            page(&whole, &b, path).await,
        );
        assert!(x.contains("<table") || query.starts_with("?q="), "{query}");
        assert!(x == y, "the customers table differs for {query:?}");
    }
    for row in [1, 28, 29, 30, 58, 400, loaded.len()] {
        let path = format!("/predictions/{{id}}/customers/{row}");
        let (x, y) = (
            page(&cut, &a, path.clone()).await,
            page(&whole, &b, path).await,
        );
        assert!(x == y, "customer row {row} differs");
    }
    let (x, y) = (data(&cut, &a).await, data(&whole, &b).await);
    assert!(x["predictions"].as_array().unwrap().len() > 500);
    assert!(x == y, "the dashboard data differs");
}

/// The page at `path` (`{id}` standing for prediction `id`) with the id written back as `{id}`.
async fn page(t: &TestApp, id: &str, path: String) -> String {
    let r = t.get(&path.replace("{id}", id)).await;
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap().replace(id, "{id}")
}

/// The dashboard data of the latest prediction, `id`, with its time left out.
async fn data(t: &TestApp, id: &str) -> Value {
    let r = t.get("/api/predictions/dashboard/data?limit=1000").await;
    assert_eq!(r.status(), 200);
    let mut v: Value = r.json().await.unwrap();
    v["metadata"]["generated_at"] = Value::Null;
    // The upload and its time are each app's own.
    for p in v["predictions"].as_array_mut().unwrap() {
        p["updated_at"] = Value::Null;
        p["upload_id"] = Value::Null;
    }
    normalised(v, &[(id.to_owned(), "the prediction")])
}

/// A piece's part of the customers index missing at the merge (a piece scored by a version
/// that wrote none) does not fail the prediction: no index is stored, and the customers page
/// indexes the result itself, as after one job.
#[tokio::test]
async fn a_missing_part_of_the_index_leaves_the_page_to_index_the_result() {
    let t = TestApp::spawn_with(|c| c.chunk_rows = ROWS).await;
    let (id, total) = cut_only(&t, awkward(11)).await;
    for _ in 0..total {
        assert_eq!(t.work_once().await, Outcome::Completed);
    }
    let parts: Vec<_> = walk(&t.dir.path().join("objects").join("pieces"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .collect();
    assert_eq!(parts.len() as u64, total, "one part per piece");
    std::fs::remove_file(&parts[3]).unwrap();
    TestApp::drain(&t.worker, 50).await;
    assert_eq!(t.prediction(&id).await["status"], "COMPLETED");
    let key = retainwise::domain::ObjectKey::result(
        &retainwise::domain::OrgId::local(),
        id.parse().unwrap(),
    );
    let index = retainwise::domain::ObjectKey::stored_index_of(&key).unwrap();
    assert!(
        t.app.storage.get_bytes(&index).await.is_err(),
        "none stored"
    );
    let r = t
        .get(&format!(
            "/predictions/{id}/customers?sort=churn_asc&page=2"
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<table"));
}
