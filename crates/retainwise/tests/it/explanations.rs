//! Explanations a customer-success manager can act on, through `retainwise
//! predict` and the web pages: total charges, which only restate a short tenure, are counted
//! with tenure instead of reading as "a low bill raises the risk", and the top reason and the
//! advice for a new customer are about onboarding; churn and retention on a page add up to
//! 100 %.

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;
use crate::mapping::{predict, telco_row};

/// New customers (one or two months) of several kinds, and a long-standing one.
fn file() -> String {
    let mut csv = format!("{TELCO_HEADER}\n");
    for (id, over) in [
        (
            "NEW-FIBER",
            vec![
                ("tenure", "1"),
                ("MonthlyCharges", "70.7"),
                ("TotalCharges", "70.7"),
            ],
        ),
        (
            "NEW-DSL",
            vec![
                ("tenure", "1"),
                ("PhoneService", "No"),
                ("MultipleLines", "No phone service"),
                ("InternetService", "DSL"),
                ("StreamingTV", "No"),
                ("StreamingMovies", "No"),
                ("PaymentMethod", "Mailed check"),
                ("MonthlyCharges", "29.85"),
                ("TotalCharges", "29.85"),
            ],
        ),
        (
            "NEW-TWO",
            vec![
                ("tenure", "2"),
                ("MonthlyCharges", "53.85"),
                ("TotalCharges", "108.15"),
            ],
        ),
    ] {
        csv.push_str(&telco_row(id, &over));
        csv.push('\n');
    }
    csv.push_str(&telco_row(
        "LOYAL",
        &[
            ("tenure", "60"),
            ("Contract", "Two year"),
            ("PaymentMethod", "Credit card (automatic)"),
            ("MonthlyCharges", "110"),
            ("TotalCharges", "6600"),
        ],
    ));
    csv.push('\n');
    csv
}

#[tokio::test]
async fn a_new_customers_top_reason_and_advice_are_about_onboarding() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, _, err) = predict(dir.path(), &file());
    assert!(ok, "{err}");
    let (header, rows) = parse_csv(&results);
    let at = |r: &Vec<String>, c: &str| r[column(&header, c)].clone();
    for r in rows
        .iter()
        .filter(|r| at(r, "customer_id").starts_with("NEW"))
    {
        let risk: Value = serde_json::from_str(&at(r, "risk_factors")).unwrap();
        let protective: Value = serde_json::from_str(&at(r, "protective_factors")).unwrap();
        let all: Vec<&Value> = risk
            .as_array()
            .unwrap()
            .iter()
            .chain(protective.as_array().unwrap())
            .collect();
        let id = at(r, "customer_id");
        // The top reason is their newness, with the total charges it implies counted in it.
        assert_eq!(risk[0]["feature"], "tenure", "{id}: {risk}");
        assert_eq!(risk[0]["with"], "TotalCharges", "{id}: {risk}");
        assert!(
            all.iter().all(|f| f["feature"] != "TotalCharges"),
            "{id}: total charges never stand alone: {all:?}"
        );
        let summary = at(r, "summary");
        assert!(
            summary.starts_with("Tenure of ") && summary.contains("the total charges it brings"),
            "{id}: {summary}"
        );
        assert!(
            !summary.to_lowercase().contains("total charges of"),
            "{summary}"
        );
        let advice = at(r, "recommendation");
        assert!(
            advice.contains(": give new-customer onboarding"),
            "{id}: {advice}"
        );
    }
    let loyal = rows
        .iter()
        .find(|r| at(r, "customer_id") == "LOYAL")
        .unwrap();
    assert!(!at(loyal, "recommendation").contains("onboarding"));

    // The same on the customer's page.
    let t = TestApp::spawn().await;
    let id = t.upload_ok("new.csv", file().into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let page = t
        .get(&format!("/predictions/{id}/customers/1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("tenure (with TotalCharges)"), "{page}");
    assert!(page.contains("give new-customer onboarding"), "{page}");
}

/// The churn and retention figures of every customer page, and the dashboard's averages, add
/// up to exactly 100.0 %.
#[tokio::test]
async fn churn_and_retention_on_a_page_add_up_to_100_percent() {
    let t = TestApp::spawn().await;
    let n = 40;
    let id = t
        .upload_ok("mixed.csv", synthetic_telco(n).into_bytes())
        .await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let figure = |page: &str, label: &str| -> f64 {
        let at = page
            .find(&format!(">{label}<"))
            .unwrap_or_else(|| panic!("{label}"));
        let rest = &page[at..];
        let start = rest.find("class=\"value\">").unwrap() + "class=\"value\">".len();
        let text = &rest[start..];
        text[..text.find('%').unwrap()].parse().unwrap()
    };
    for row in 1..=n {
        let page = t
            .get(&format!("/predictions/{id}/customers/{row}"))
            .await
            .text()
            .await
            .unwrap();
        let churn = figure(&page, "Churn probability");
        let retention = figure(&page, "Retention probability");
        assert!(
            ((churn + retention) * 10.0).round() == 1000.0,
            "row {row}: {churn} + {retention}"
        );
    }
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let churn = figure(&page, "Average churn probability");
    let retention = figure(&page, "Average retention probability");
    assert!(
        ((churn + retention) * 10.0).round() == 1000.0,
        "{churn} + {retention}"
    );
}
