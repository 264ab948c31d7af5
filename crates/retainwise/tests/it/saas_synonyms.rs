//! A subscription file whose columns carry the common synonyms
//! (`days_subscribed`, `monthly_spend`, `usage_score`, `tickets`, `days_since_last_login`)
//! reaches the SaaS baseline, through `retainwise predict` and HTTP; the preview says which
//! model will score it; revenue at risk is read from an MRR alias.

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;
use crate::mapping::{predict, preview};

/// Eight subscription customers under synonym column names.
fn file() -> String {
    let mut csv =
        "customer_id,days_subscribed,monthly_spend,usage_score,tickets,days_since_last_login\n"
            .to_owned();
    for i in 0..8u32 {
        csv.push_str(&format!(
            "S-{i},{},{}.00,{},{},{}\n",
            30 + 200 * i,
            40 + 50 * i,
            10 + 10 * i,
            8 - i,
            60 - 7 * i
        ));
    }
    csv
}

#[tokio::test]
async fn a_subscription_file_with_synonym_columns_reaches_the_saas_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, err) = predict(dir.path(), &file());
    assert!(ok, "{err}");
    let baseline = report["model_id"].as_str().unwrap().to_owned();
    assert!(baseline.starts_with("saas-baseline"), "{baseline}");
    let mapping = &report["validation"]["mapping"];
    for (input, column) in [
        ("months_subscribed", "days_subscribed"),
        ("mrr", "monthly_spend"),
        ("feature_usage_score", "usage_score"),
        ("support_tickets", "tickets"),
        ("last_activity_days_ago", "days_since_last_login"),
    ] {
        let f = mapping["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["feature"] == input)
            .unwrap();
        assert_eq!(f["column"], column, "{f}");
        assert_eq!(f["method"], "alias", "{f}");
    }
    // Revenue at risk from the MRR alias: Σ monthly spend × churn probability.
    let portfolio = &report["portfolio"];
    assert_eq!(portfolio["revenue_column"], "mrr");
    assert_eq!(portfolio["revenue_customers"], 8);
    let (header, rows) = parse_csv(&results);
    let p = column(&header, "churn_probability");
    let expected: f64 = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (40.0 + 50.0 * i as f64) * r[p].parse::<f64>().unwrap())
        .sum();
    let got = portfolio["revenue_at_risk"].as_f64().unwrap();
    assert!((got - expected).abs() < 0.01, "{got} vs {expected}");

    let t = TestApp::spawn().await;
    let (status, body) = preview(&t, &file(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model_id"], baseline.as_str());
    assert!(
        body["model"]["description"]
            .as_str()
            .unwrap()
            .contains("SaaS baseline"),
        "{body}"
    );
    assert_eq!(body["preview"]["ready"], true);
    let id = t.upload_ok("subscriptions.csv", file().into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let done = t.prediction(&id).await;
    assert_eq!(done["model_id"], baseline.as_str(), "{done}");
    let stored: Value = t
        .get(&format!("/api/predictions/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["portfolio"]["revenue_at_risk"].as_f64(), Some(got));
}
