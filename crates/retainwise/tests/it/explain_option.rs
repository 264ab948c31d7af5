//! How much explanation the results carry, chosen with `retainwise predict --explain`
//! and the upload's `explain` form field: `top` (the default), `none` (scores only) or `all`
//! (every input's SHAP value as well).

use std::process::Command;

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;
use crate::mapping::telco_row;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

fn file() -> String {
    let mut csv = format!("{TELCO_HEADER}\n");
    for (id, tenure) in [("A1", "2"), ("A2", "40"), ("A3", "")] {
        csv.push_str(&telco_row(id, &[("tenure", tenure)]));
        csv.push('\n');
    }
    csv
}

fn header(results: &str) -> Vec<String> {
    results
        .lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect()
}

fn rows(results: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(results.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

/// The three settings' columns, given the default run's results.
fn check(top: &str, none: &str, all: &str) {
    let explanation = [
        "risk_factors",
        "protective_factors",
        "summary",
        "recommendation",
    ];
    let top_header = header(top);
    assert_eq!(top_header.len(), 10, "{top}");
    let none_header = header(none);
    let kept: Vec<String> = top_header
        .iter()
        .filter(|h| !explanation.contains(&h.as_str()))
        .cloned()
        .collect();
    assert_eq!(none_header, kept, "{none}");
    let all_header = header(all);
    assert_eq!(&all_header[..10], &top_header[..], "{all}");
    assert!(all_header.contains(&"shap_tenure".to_owned()), "{all}");
    assert_eq!(all_header.last().unwrap(), "shap_base_value");
    let (top_rows, none_rows, all_rows) = (rows(top), rows(none), rows(all));
    assert_eq!(top_rows.len(), 3);
    for ((t, n), a) in top_rows.iter().zip(&none_rows).zip(&all_rows) {
        // Same customer, same probabilities and quality note; the SHAP values are numbers.
        assert_eq!(n[..5], t[..5]);
        assert_eq!(n[5], t[9]);
        assert_eq!(a[..10], t[..]);
        assert_eq!(a.len(), all_header.len());
        for v in &a[10..] {
            v.parse::<f64>().unwrap();
        }
    }
    // The blank tenure is flagged in every setting.
    assert_eq!(none_rows[2][5], "tenure: missing");
}

fn predict(dir: &std::path::Path, explain: Option<&str>) -> (bool, String, String) {
    let input = dir.join("in.csv");
    let output = dir.join(format!("out-{}.csv", explain.unwrap_or("default")));
    std::fs::write(&input, file()).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("predict").arg(&input).arg("-o").arg(&output);
    if let Some(e) = explain {
        cmd.args(["--explain", e]);
    }
    let run = cmd.output().unwrap();
    (
        run.status.success(),
        std::fs::read_to_string(&output).unwrap_or_default(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

#[test]
fn predict_explain_none_and_all_change_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, top, err) = predict(dir.path(), None);
    assert!(ok, "{err}");
    let (_, explicit_top, _) = predict(dir.path(), Some("top"));
    assert_eq!(explicit_top, top);
    let (ok, none, err) = predict(dir.path(), Some("none"));
    assert!(ok, "{err}");
    let (ok, all, err) = predict(dir.path(), Some("all"));
    assert!(ok, "{err}");
    check(&top, &none, &all);
    let (ok, _, err) = predict(dir.path(), Some("some"));
    assert!(!ok && err.contains("none, top or all"), "{err}");
}

async fn upload_with_explain(t: &TestApp, explain: &'static str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file().into_bytes()).file_name("customers.csv"),
        )
        .text("explain", explain);
    t.client
        .post(format!("{}/api/csv", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn scored(t: &TestApp, explain: &'static str) -> String {
    let response = upload_with_explain(t, explain).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let id = response.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, Outcome::Completed);
    assert_eq!(t.prediction(&id).await["status"], "COMPLETED");
    t.results(&id).await
}

async fn upload_api_passes_explain_to_the_worker(t: &TestApp) {
    let top = scored(t, "").await;
    let none = scored(t, "none").await;
    let all = scored(t, " ALL ").await;
    check(&top, &none, &all);
    let refused = upload_with_explain(t, "everything").await;
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("explain") && body.contains("none, top or all"),
        "{body}"
    );
}

#[tokio::test]
async fn the_upload_api_passes_explain_to_the_worker() {
    let t = TestApp::spawn().await;
    upload_api_passes_explain_to_the_worker(&t).await;
}

/// The direct upload carries the same setting from its creation to the queued prediction.
#[tokio::test]
async fn a_direct_upload_passes_explain_to_the_worker() {
    let t = TestApp::spawn().await;
    let top = scored(&t, "").await;
    let bytes = file().into_bytes();
    let create = |explain: &'static str| {
        t.client
            .post(format!("{}/api/uploads", t.base))
            .json(
                &serde_json::json!({"filename": "c.csv", "size": bytes.len(), "explain": explain}),
            )
            .send()
    };
    let refused = create("everything").await.unwrap();
    assert_eq!(refused.status(), 400);
    let created: Value = create("none").await.unwrap().json().await.unwrap();
    let url = created["url"].as_str().expect("one url for a small file");
    let put = reqwest::Client::new()
        .put(url)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let id = created["upload_id"].as_str().unwrap();
    let done: Value = t
        .client
        .post(format!("{}/api/uploads/{id}/complete", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prediction = done["prediction_id"].as_str().expect("queued").to_owned();
    assert_eq!(t.work_once().await, Outcome::Completed);
    let none = t.results(&prediction).await;
    let all = scored(&t, "all").await;
    check(&top, &none, &all);
}

#[tokio::test]
async fn the_explain_column_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else {
        return;
    };
    upload_api_passes_explain_to_the_worker(&t).await;
}
