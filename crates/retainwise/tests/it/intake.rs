//! The file-preparation endpoints and the validation report, through HTTP.

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn preview_shows_how_a_file_will_be_read_before_anything_is_queued() {
    let t = TestApp::spawn().await;
    // Semicolons, decimal commas, lower-case and aliased headers, columns in another order.
    let csv = "user_id;Contract;tenure;gender;SeniorCitizen;Partner;Dependents;PhoneService;MultipleLines;\
InternetService;OnlineSecurity;OnlineBackup;DeviceProtection;TechSupport;StreamingTV;StreamingMovies;\
PaperlessBilling;PaymentMethod;mrr;total_revenue\n\
A-1;Month-to-month;2;Female;0;Yes;No;Yes;No;Fiber optic;No;No;No;No;Yes;No;Yes;Electronic check;84,50;169,00\n";
    let part = reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("crm-export.csv");
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = t
        .client
        .post(format!("{}/api/csv/preview-mapping", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let preview = &body["preview"];
    assert_eq!(preview["delimiter"], ";", "{preview}");
    assert_eq!(preview["decimal_comma"], true);
    assert_eq!(preview["ready"], true, "{preview}");
    let text = preview["mapping"].to_string();
    assert!(
        text.contains("mrr") && text.contains("MonthlyCharges"),
        "{text}"
    );
    assert_eq!(preview["rows"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.app.queue.stats().await.unwrap().depth,
        0,
        "a preview queues nothing"
    );
}

#[tokio::test]
async fn the_sample_template_scores_as_is_and_supported_columns_describe_the_model() {
    let t = TestApp::spawn().await;
    let r = t.get("/api/csv/sample-csv/telecom").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("sample-telecom.csv"));
    let sample = r.bytes().await.unwrap().to_vec();
    let id = t.upload_ok("sample-telecom.csv", sample).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(
        (p["rows_processed"].as_i64(), p["rows_rejected"].as_i64()),
        (Some(5), Some(0)),
        "{p}"
    );
    assert_eq!(t.get("/api/csv/sample-csv/bakery").await.status(), 404);

    let cols: Value = t
        .get("/api/csv/supported-columns/telecom")
        .await
        .json()
        .await
        .unwrap();
    let tenure = cols["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["feature"] == "tenure")
        .expect("tenure listed");
    assert_eq!(tenure["kind"], "numeric");
    assert_eq!(tenure["required"], true);
    assert_eq!(
        t.get("/api/csv/supported-columns/bakery").await.status(),
        404
    );
}

#[tokio::test]
async fn every_prediction_has_a_report_even_a_failed_one() {
    let t = TestApp::spawn().await;
    let good = t
        .upload_ok("good.csv", synthetic_telco(10).into_bytes())
        .await;
    assert_eq!(
        t.get(&format!("/api/predictions/{good}/report"))
            .await
            .status(),
        409,
        "no report before the job has run"
    );
    assert_eq!(t.work_once().await, Outcome::Completed);
    let report: Value = t
        .get(&format!("/api/predictions/{good}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["rows_scored"], 10);
    assert!(report["validation"].is_object(), "{report}");

    // Only the first five columns: refused at upload, naming what is missing.
    let bad: String = synthetic_telco(5)
        .lines()
        .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    let r = t.upload("bad.csv", bad.into_bytes()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("tenure"));
    // Every row's tenure unreadable: a file longer than what the upload reads first (a short
    // one is refused at once) fails in the worker, and its report says why.
    let bad: String = synthetic_telco(4000)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut cells: Vec<&str> = l.split(',').collect();
            if i > 0 {
                cells[5] = "many";
            }
            cells.join(",") + "\n"
        })
        .collect();
    let failed = t.upload_ok("bad.csv", bad.into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Failed);
    let r = t.get(&format!("/api/predictions/{failed}/report")).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert!(
        report["error"].as_str().unwrap().contains("tenure"),
        "{report}"
    );
    assert!(
        report["mapping"].is_object(),
        "the failed job's report keeps the mapping: {report}"
    );
}
