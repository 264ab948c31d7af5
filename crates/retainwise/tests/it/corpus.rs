//! The corpus of unusual files (`crates/retainwise-model/tests/data/`, with the outcome each
//! should have in `expected.json`) run through the HTTP API and the worker, and through
//! `retainwise predict`: both paths must agree with the manifest.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

fn corpus() -> (PathBuf, Vec<Value>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../retainwise-model/tests/data");
    let manifest: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    // Entries with their own input limits are checked by the model crate, where limits are set.
    let cases = manifest
        .into_iter()
        .filter(|e| e.get("limits").is_none())
        .collect();
    (dir, cases)
}

#[tokio::test]
async fn every_corpus_file_gets_its_expected_outcome_over_http() {
    let (dir, cases) = corpus();
    assert!(
        cases.len() >= 40,
        "the corpus has {} usable files",
        cases.len()
    );
    let t = TestApp::spawn().await;
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let response = t.upload(file, bytes).await;
        let status = response.status().as_u16();
        let expected_error = case.get("error");
        if expected_error.is_some() && status == 400 {
            continue; // refused at the door, with a message: also a correct outcome
        }
        assert_eq!(status, 202, "{file}: {}", response.text().await.unwrap());
        let id = response.json::<Value>().await.unwrap()["prediction_id"]
            .as_str()
            .unwrap()
            .to_owned();
        t.work_once().await;
        let p = t.prediction(&id).await;
        if let Some(error) = expected_error {
            assert_eq!(p["status"], "FAILED", "{file} should fail ({error}): {p}");
            assert!(
                !p["error_message"].as_str().unwrap_or("").is_empty(),
                "{file}: a failure says why"
            );
        } else {
            assert_eq!(p["status"], "COMPLETED", "{file}: {p}");
            assert_eq!(
                p["rows_processed"], case["rows_scored"],
                "{file}: rows scored"
            );
            assert_eq!(
                p["rows_rejected"], case["rows_rejected"],
                "{file}: rows rejected"
            );
            let (_, rows) = parse_csv(&t.results(&id).await);
            assert_eq!(
                Some(rows.len() as u64),
                case["rows_scored"].as_u64(),
                "{file}: result rows"
            );
        }
    }
}

#[test]
fn every_corpus_file_gets_its_expected_outcome_from_predict() {
    let (dir, cases) = corpus();
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let run = Command::new(env!("CARGO_BIN_EXE_retainwise"))
            .arg("predict")
            .arg(dir.join(file))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        if case.get("error").is_some() {
            assert!(!run.status.success(), "{file} should fail");
            assert!(stderr.contains("error:"), "{file}: {stderr}");
        } else {
            assert!(run.status.success(), "{file}: {stderr}");
            let (_, rows) = parse_csv(&String::from_utf8(run.stdout).unwrap());
            assert_eq!(
                Some(rows.len() as u64),
                case["rows_scored"].as_u64(),
                "{file}"
            );
        }
    }
}
