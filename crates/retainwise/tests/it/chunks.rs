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
