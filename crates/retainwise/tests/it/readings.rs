//! How cells are read, never a different number or level in silence (the second fresh-user
//! trial): respelled numbers (`$85.50`, `1,234.50`, `(12)`, `+5`, `−5`) are read
//! exactly and listed; numbers with two readings (`88%`) are scored as missing and flagged;
//! category aliases (`Fiber`, `2 years`, `monthly`) are listed, with their rows, and flagged.

use serde_json::Value;

use crate::helpers::*;
use crate::mapping::{predict, preview, telco_row as row};

/// Row 1 clean; 2 a currency symbol; 3 thousands separators; 4 a percentage; 5 an accounting
/// negative and a leading `+`; 6 a Unicode minus; 7 two category aliases; 8 a third one.
fn readings_file() -> String {
    format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        row("R1", &[]),
        row("R2", &[("MonthlyCharges", "$85.50")]),
        row("R3", &[("TotalCharges", "\"1,234.50\"")]),
        row("R4", &[("tenure", "88%")]),
        row("R5", &[("TotalCharges", "(12)"), ("tenure", "+5")]),
        row("R6", &[("MonthlyCharges", "\u{2212}85.5")]),
        row(
            "R7",
            &[("InternetService", "Fiber"), ("Contract", "2 years")]
        ),
        row("R8", &[("Contract", "monthly")]),
    )
}

/// (row, id, column, raw value, value used) of every listed warning.
fn listed(report: &Value) -> Vec<(u64, String, String, String, String)> {
    report["validation"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let s = |k: &str| w[k].as_str().unwrap_or_default().to_owned();
            (
                w["row"].as_u64().unwrap(),
                s("customer_id"),
                s("column"),
                s("value"),
                s("used_instead"),
            )
        })
        .collect()
}

fn assert_readings_listed(report: &Value) {
    let v = &report["validation"];
    assert_eq!(v["rows_scored"], 8, "every row is scored: {v}");
    let got = listed(report);
    let missing = "missing (the model's rule for an absent value)";
    for want in [
        (2, "R2", "MonthlyCharges", "$85.50", "85.5"),
        (3, "R3", "TotalCharges", "1,234.50", "1234.5"),
        (4, "R4", "tenure", "88%", missing),
        (5, "R5", "tenure", "+5", "5"),
        (5, "R5", "TotalCharges", "(12)", "-12"),
        (6, "R6", "MonthlyCharges", "\u{2212}85.5", "-85.5"),
        (7, "R7", "InternetService", "Fiber", "Fiber optic"),
        (7, "R7", "Contract", "2 years", "Two year"),
        (8, "R8", "Contract", "monthly", "Month-to-month"),
    ] {
        let want = (
            want.0,
            want.1.to_owned(),
            want.2.to_owned(),
            want.3.to_owned(),
            want.4.to_owned(),
        );
        assert!(got.contains(&want), "{want:?} not in {got:#?}");
    }
    assert!(
        !got.iter().any(|w| w.0 == 1),
        "a clean row has no warning: {got:?}"
    );
    let text = v["warnings"].to_string();
    assert!(
        text.contains("88 or 0.88") && text.contains("currency symbol"),
        "{text}"
    );
    // The aliases, with their rows, in the report.
    let aliases: Vec<(String, String, String, u64, Value)> = v["category_aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["column"].as_str().unwrap().to_owned(),
                a["raw"].as_str().unwrap().to_owned(),
                a["level"].as_str().unwrap().to_owned(),
                a["rows"].as_u64().unwrap(),
                a["first_rows"].clone(),
            )
        })
        .collect();
    assert_eq!(
        aliases,
        [
            (
                "InternetService".into(),
                "Fiber".into(),
                "Fiber optic".into(),
                1,
                serde_json::json!([7])
            ),
            (
                "Contract".into(),
                "2 years".into(),
                "Two year".into(),
                1,
                serde_json::json!([7])
            ),
            (
                "Contract".into(),
                "monthly".into(),
                "Month-to-month".into(),
                1,
                serde_json::json!([8])
            ),
        ]
    );
}

fn assert_flags(results: &str) {
    let (header, rows) = parse_csv(results);
    let q = column(&header, "data_quality");
    let flag = |id: &str| {
        rows.iter()
            .find(|r| r[0] == id)
            .map(|r| r[q].clone())
            .unwrap()
    };
    assert_eq!(flag("R1"), "");
    assert_eq!(flag("R2"), "", "a respelled number is the number written");
    assert_eq!(flag("R4"), "tenure: ambiguous number");
    assert_eq!(
        flag("R7"),
        "InternetService: category alias; Contract: category alias"
    );
    assert_eq!(flag("R8"), "Contract: category alias");
}

#[test]
fn predict_lists_every_respelled_number_and_category_alias() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = predict(dir.path(), &readings_file());
    assert!(ok, "{stderr}");
    assert_readings_listed(&report);
    assert_flags(&results);
}

#[tokio::test]
async fn the_preview_and_an_upload_show_the_same_readings() {
    let t = TestApp::spawn().await;
    let (status, body) = preview(&t, &readings_file(), None).await;
    assert_eq!(status, 200, "{body}");
    let p = &body["preview"];
    let aliases = p["category_aliases"].to_string();
    assert!(
        aliases.contains("\"raw\":\"Fiber\"") && aliases.contains("\"level\":\"Fiber optic\""),
        "{aliases}"
    );
    let cell = |row: usize, feature: &str| {
        p["rows"][row]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["feature"] == feature)
            .cloned()
            .unwrap()
    };
    let percent = cell(3, "tenure");
    assert_eq!(percent["status"], "missing", "{percent}");
    assert!(
        percent["problem"].as_str().unwrap().contains("0.88"),
        "{percent}"
    );
    let dollars = cell(1, "MonthlyCharges");
    assert_eq!(
        (&dollars["status"], &dollars["parsed"]),
        (&Value::from("ok"), &Value::from(85.5))
    );
    assert!(
        dollars["problem"].as_str().unwrap().contains("currency"),
        "{dollars}"
    );

    let id = t
        .upload_ok("readings.csv", readings_file().into_bytes())
        .await;
    let _ = t.work_once().await;
    let report: Value = t
        .get(&format!("/api/predictions/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_readings_listed(&report);
    let results = t
        .get(&format!("/api/predictions/{id}/results"))
        .await
        .text()
        .await
        .unwrap();
    assert_flags(&results);
}
