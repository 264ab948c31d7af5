//! Drift against the training data on the real Telco file: a file whose every contract is
//! month-to-month is flagged on `Contract` (PSI > 0.25); a seeded random half of the file,
//! unshifted, is flagged on nothing. Through `retainwise predict` and through an HTTP upload
//! (summary, dashboard, Prometheus gauge).

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// The Telco file with every `Contract` cell set to `Month-to-month`.
fn month_to_month(text: &str) -> String {
    let (header, rows) = parse_csv(text);
    let c = column(&header, "Contract");
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for mut r in rows {
        r[c] = "Month-to-month".into();
        w.write_record(&r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// A random half of the Telco file's rows (xorshift64*, fixed seed), unchanged.
fn random_half(text: &str) -> String {
    let (header, rows) = parse_csv(text);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for r in rows {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        if state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 63 == 1 {
            w.write_record(&r).unwrap();
        }
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn contract_psi(drift: &Value) -> f64 {
    drift["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "Contract")
        .unwrap()["psi"]
        .as_f64()
        .unwrap()
}

/// Asserts `drift` (a `ScoreReport.drift` as JSON) flags `Contract`, and only as `act`.
fn assert_flags_contract(drift: &Value) {
    assert_eq!(drift["measured"], true, "{drift}");
    assert!(contract_psi(drift) > 0.25, "{drift}");
    assert!(
        drift["act"]
            .as_array()
            .unwrap()
            .contains(&"Contract".into()),
        "{drift}"
    );
}

/// Asserts `drift` flags nothing: no feature above PSI 0.1, the score stable too.
fn assert_flags_nothing(drift: &Value) {
    assert_eq!(drift["measured"], true, "{drift}");
    assert_eq!(drift["act"], serde_json::json!([]), "{drift}");
    assert_eq!(drift["watch"], serde_json::json!([]), "{drift}");
    assert_eq!(drift["score_level"], "stable", "{drift}");
    assert!(drift["score_psi"].as_f64().unwrap() <= 0.1, "{drift}");
}

fn predict(dir: &std::path::Path, name: &str, text: &str) -> (Value, String) {
    let input = dir.join(format!("{name}.csv"));
    let report = dir.join(format!("{name}.json"));
    std::fs::write(&input, text).unwrap();
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(dir.join(format!("{name}_out.csv")))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (report["drift"].clone(), stderr)
}

#[test]
fn predict_flags_a_month_to_month_file_on_contract_and_a_random_half_on_nothing() {
    let Some(path) = telco_csv() else { return };
    let text = std::fs::read_to_string(path).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let (drift, stderr) = predict(dir.path(), "shifted", &month_to_month(&text));
    assert_flags_contract(&drift);
    println!(
        "month-to-month: Contract PSI {}, score PSI {}",
        contract_psi(&drift),
        drift["score_psi"]
    );
    assert!(stderr.contains("drift: act on Contract (PSI"), "{stderr}");

    let (drift, stderr) = predict(dir.path(), "half", &random_half(&text));
    assert_flags_nothing(&drift);
    let worst = drift["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["psi"].as_f64().unwrap())
        .fold(0.0, f64::max);
    println!(
        "random half: largest feature PSI {worst}, score PSI {}",
        drift["score_psi"]
    );
    assert!(stderr.contains("drift: none above PSI 0.1"), "{stderr}");
}

#[tokio::test]
async fn an_upload_shows_drift_in_its_summary_dashboard_and_metrics() {
    let Some(path) = telco_csv() else { return };
    let text = std::fs::read_to_string(path).unwrap();
    let t = TestApp::spawn().await;

    let half = t
        .upload_ok("half.csv", random_half(&text).into_bytes())
        .await;
    t.work_once().await;
    let p = t.wait_finished(&half, Duration::from_secs(60)).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_flags_nothing(&p["summary"]["drift"]);
    let page = t
        .get(&format!("/predictions/{half}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Drift from the training data")
            && page.contains("No feature has moved from training beyond PSI 0.1"),
        "{page}"
    );

    let shifted = t
        .upload_ok("shifted.csv", month_to_month(&text).into_bytes())
        .await;
    t.work_once().await;
    let p = t.wait_finished(&shifted, Duration::from_secs(60)).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    let drift = &p["summary"]["drift"];
    assert_flags_contract(drift);
    let page = t
        .get(&format!("/predictions/{shifted}"))
        .await
        .text()
        .await
        .unwrap();
    let flags = page
        .split("id=\"drift-flags\"")
        .nth(1)
        .expect("the drift flags paragraph");
    let flags = &flags[..flags.find("</p>").unwrap()];
    assert!(
        flags.contains("data-level=\"act\"") && flags.contains("Act: </strong>Contract"),
        "{flags}"
    );

    // The gauge holds the last file's PSI per model and feature; the recorder is process-wide
    // and other tests score the same model, so its value is not asserted, only its presence
    // and the count of files flagged `act` for this model.
    let metrics = t.get("/metrics").await.text().await.unwrap();
    let model = p["summary"]["model_id"].as_str().unwrap().to_owned();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("retainwise_drift_psi{") && l.contains("feature=\"Contract\"")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("retainwise_drift_files_total{")
                && l.contains("level=\"act\"")
                && l.contains(&format!("model=\"{model}\""))),
        "{metrics}"
    );
}
