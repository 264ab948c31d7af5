//! What the second fresh-user trial found at intake, one class per test: column
//! choices that cannot work refused before anything is queued; customer ids that identify
//! nobody or repeat under other spacing; revenue from an ARR column; date columns for
//! days-since inputs; counts that add up on a failed job and in `retainwise predict`; bounded
//! form fields.

use serde_json::Value;

use crate::helpers::*;
use crate::mapping::telco_row as row;

/// `POST /api/csv` or `POST /api/csv/preview-mapping` (`path`) of `csv` with `mapping` sent as
/// this exact text (so that a JSON object with a repeated key can be sent).
async fn send_mapped(t: &TestApp, path: &str, csv: &str, mapping: &str) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("mapping", mapping.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("mapped.csv"),
        );
    let r = t
        .client
        .post(format!("{}{path}", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn telco_file(n: usize) -> String {
    let mut csv = format!("{TELCO_HEADER}\n");
    for i in 0..n {
        csv.push_str(&row(&format!("T{i}"), &[]));
        csv.push('\n');
    }
    csv
}

/// A column choice that cannot work — an input on the customer-id
/// column, two inputs on one column, a column the file lacks, a column none of whose values
/// the input reads, an input named twice in the JSON object — is answered 422 naming the
/// input and the column (or the key) at upload, and nothing is queued; the preview answers
/// 200 not ready with the same sentence.
#[tokio::test]
async fn column_choices_that_cannot_work_are_refused_with_422_naming_them() {
    let t = TestApp::spawn().await;
    let csv = telco_file(3);
    for (mapping, words) in [
        (
            r#"{"tenure": "customerID"}"#,
            &["tenure", "customerID", "customer id column"][..],
        ),
        (
            r#"{"tenure": "MonthlyCharges", "TotalCharges": "MonthlyCharges"}"#,
            &["MonthlyCharges", "both", "tenure", "TotalCharges"][..],
        ),
        (
            r#"{"tenure": "Months"}"#,
            &["tenure", "\"Months\"", "not a column"][..],
        ),
        (
            r#"{"tenure": "gender", "gender": null}"#,
            &["tenure", "\"gender\"", "Female"][..],
        ),
        (
            r#"{"tenure": "gender"}"#,
            &["tenure", "\"gender\"", "Map gender too"][..],
        ),
        (r#"{"Contract": "tenure"}"#, &["Contract", "\"tenure\""][..]),
        (
            r#"{"tenure": "tenure", "tenure": null}"#,
            &["\"tenure\"", "given twice"][..],
        ),
        (r#"{"tenure": 5}"#, &["mapping"][..]),
    ] {
        let (status, body) = send_mapped(&t, "/api/csv", &csv, mapping).await;
        assert_eq!(status, 422, "{mapping}: {body}");
        let detail = body["detail"].as_str().unwrap();
        for w in words {
            assert!(detail.contains(w), "{mapping}: {w:?} not in {detail}");
        }
        // The preview shows the same sentence beside the file (200, not ready), so that the
        // page can show it and the choice can be undone.
        let (status, body) = send_mapped(&t, "/api/csv/preview-mapping", &csv, mapping).await;
        assert_eq!(status, 200, "{mapping}: {body}");
        assert_eq!(body["ready"], false, "{body}");
        assert_eq!(body["preview"]["ready"], false, "{body}");
        // The upload's sentence is the same (after the file's name for the file's choices).
        let problems = body["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{body}");
        let problem = problems[0].as_str().unwrap();
        assert!(
            detail == problem || detail == format!("\"mapped.csv\": {problem}"),
            "{detail} / {body}"
        );
    }
    // Not JSON at all is a malformed request.
    let (status, body) = send_mapped(&t, "/api/csv", &csv, "{tenure").await;
    assert_eq!(status, 400, "{body}");
    let list = t
        .get("/api/predictions")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(list["total"], 0, "nothing was queued: {list}");
    // A workable choice (the id moved off its column, tenure on it) is still accepted.
    let (status, body) = send_mapped(
        &t,
        "/api/csv",
        &csv.replace("customerID,", "ref,")
            .replacen("tenure", "months", 1),
        r#"{"customerID": "ref", "tenure": "months"}"#,
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

/// Every text field of a form is read bounded, by one reader, before
/// and after the file, at upload and at preview: one longer than its limit is refused naming
/// the field and the limit; a setting given twice with different values and a second file
/// are refused the same way wherever they come.
#[tokio::test]
async fn form_fields_are_read_bounded_and_named() {
    let t = TestApp::spawn().await;
    let csv = telco_file(2);
    let file = || reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("f.csv");
    let send = |form: reqwest::multipart::Form, path: &'static str| {
        let req = t.client.post(format!("{}{path}", t.base)).multipart(form);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let long_mapping = format!("{{\"tenure\": \"{}\"}}", "x".repeat(70 * 1024));
    for path in ["/api/csv", "/api/csv/preview-mapping"] {
        for before in [true, false] {
            let form = reqwest::multipart::Form::new();
            let form = if before {
                form.text("mapping", long_mapping.clone())
                    .part("file", file())
            } else {
                form.part("file", file())
                    .text("mapping", long_mapping.clone())
            };
            let (status, body) = send(form, path).await;
            assert_eq!(status, 400, "{path} before={before}: {body}");
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("\"mapping\"") && detail.contains("65536 bytes"),
                "{detail}"
            );
        }
        let form = reqwest::multipart::Form::new()
            .part("file", file())
            .part("file", file());
        let (status, body) = send(form, path).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("second \"file\""),
            "{body}"
        );
    }
    let form = reqwest::multipart::Form::new()
        .text("reference_date", "x".repeat(2000))
        .part("file", file());
    let (status, body) = send(form, "/api/csv").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("\"reference_date\" is longer than 1024 bytes"),
        "{body}"
    );
    let form = reqwest::multipart::Form::new()
        .text("mapping", "{}")
        .part("file", file())
        .text("mapping", r#"{"tenure": null}"#);
    let (status, body) = send(form, "/api/csv").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("mapping is given twice"),
        "{body}"
    );
    // A file in a field of another name is said to be misnamed, whatever its size.
    let big = telco_file(40);
    assert!(big.len() > 1024);
    for path in ["/api/csv", "/api/csv/preview-mapping"] {
        let form = reqwest::multipart::Form::new().part(
            "upload",
            reqwest::multipart::Part::bytes(big.as_bytes().to_vec()).file_name("bom.csv"),
        );
        let (status, body) = send(form, path).await;
        assert_eq!(status, 400, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("\"bom.csv\" in a field named \"upload\"")
                && detail.contains("named \"file\""),
            "{detail}"
        );
    }
}

/// A row whose customer id is blank, spaces, a missing-value marker or
/// an Excel error value is rejected naming the row and why (a customer nobody can identify is
/// of no use to act on); ids that differ only by the spaces around them are one customer, and
/// the warning shows both spellings.
#[test]
fn rows_without_an_id_are_rejected_and_spaced_ids_are_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        "D1", "", "   ", "#N/A", "#REF!", "NULL", "N/A", " D1", "D2", "D2\u{a0}",
    ];
    let mut csv = format!("{TELCO_HEADER}\n");
    for id in ids {
        csv.push_str(&row(id, &[]));
        csv.push('\n');
    }
    let (ok, results, report, stderr) = crate::mapping::predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let v = &report["validation"];
    assert_eq!(v["balance"], "10 rows read = 4 scored + 6 rejected", "{v}");
    let rejected: Vec<(u64, String, Value)> = v["rejected_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["column"], "customerID", "{i}");
            assert!(
                i["reason"].as_str().unwrap().starts_with("no customer id"),
                "{i}"
            );
            (
                i["row"].as_u64().unwrap(),
                i["value"].as_str().unwrap().to_owned(),
                i["customer_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (2, "".into(), Value::Null),
            (3, "   ".into(), Value::Null),
            (4, "#N/A".into(), Value::Null),
            (5, "#REF!".into(), Value::Null),
            (6, "NULL".into(), Value::Null),
            (7, "N/A".into(), Value::Null),
        ]
    );
    let text = v["rejected_rows"].to_string();
    assert!(
        text.contains("Excel error value #N/A") && text.contains("blank"),
        "{text}"
    );
    assert_eq!(v["duplicate_ids"], 2, "{v}");
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains(r#"\"D1\" is also on row 1 (written \"D1\" there and \" D1\" here"#),
        "{warnings}"
    );
    assert!(
        warnings.contains(r#"\"D2\" is also on row 9"#),
        "{warnings}"
    );
    let (_, rows) = parse_csv(&results);
    let scored: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(scored, ["D1", " D1", "D2", "D2\u{a0}"]);
    assert!(stderr.contains("no customer id"), "{stderr}");
}

/// `retainwise predict`'s closing line accounts for every record read,
/// the empty ones it skipped included: read = scored + rejected + skipped.
#[test]
fn predict_closing_line_adds_up_with_skipped_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n",
        row("S1", &[]),
        ",".repeat(19),
        row("S3", &[("tenure", "twelve")]),
        row("S4", &[])
    );
    let (ok, _, _, stderr) = crate::mapping::predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("4 rows read = 2 scored + 1 rejected + 1 skipped as empty"),
        "{stderr}"
    );
}

/// A subscription file with only an ARR column gets revenue at risk
/// from ARR ÷ 12 (the mapping and the portfolio say so); a file with no revenue column gets
/// no figure (`null`, with the reason), never 0.
#[tokio::test]
async fn revenue_at_risk_comes_from_arr_and_is_null_without_revenue() {
    let header = "user_id,months_subscribed,ARR,plan_type,feature_usage_score,support_tickets,last_activity_days_ago,has_integration";
    let mut csv = format!("{header}\n");
    for i in 0..6 {
        csv.push_str(&format!(
            "u{i},{},{},monthly,{},{},{},No\n",
            3 + i,
            1200 * (i + 1),
            10 + 5 * i,
            i,
            40 - i
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = crate::mapping::predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let mrr = report["validation"]["mapping"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["column"] == "ARR")
        .cloned()
        .unwrap_or_else(|| panic!("ARR is read: {}", report["validation"]["mapping"]));
    assert!(
        mrr["note"].as_str().unwrap().contains("divided by 12"),
        "{mrr}"
    );
    let portfolio = &report["portfolio"];
    let (h, rows) = parse_csv(&results);
    let p = column(&h, "churn_probability");
    let expected: f64 = rows
        .iter()
        .enumerate()
        .map(|(i, r)| 100.0 * (i + 1) as f64 * r[p].parse::<f64>().unwrap())
        .sum();
    let got = portfolio["revenue_at_risk"].as_f64().unwrap();
    assert!(
        (got - expected).abs() < 0.01,
        "{got} vs {expected}: {portfolio}"
    );
    assert!(got > 0.0);
    assert!(
        portfolio["revenue_note"]
            .as_str()
            .unwrap()
            .contains("\"ARR\""),
        "{portfolio}"
    );

    // No revenue column at all: no figure, and why.
    let no_revenue = crate::mapping::without_columns(&csv, &["ARR"]);
    let (ok, _, report, stderr) = crate::mapping::predict(dir.path(), &no_revenue);
    assert!(ok, "{stderr}");
    let portfolio = &report["portfolio"];
    assert_eq!(portfolio["revenue_at_risk"], Value::Null, "{portfolio}");
    assert_eq!(portfolio["monthly_revenue"], Value::Null, "{portfolio}");
    assert!(
        portfolio["revenue_note"]
            .as_str()
            .unwrap()
            .contains("no revenue column"),
        "{portfolio}"
    );
    // And the service stores the same, and its dashboard shows no revenue figure.
    let t = TestApp::spawn().await;
    let id = t.upload_ok("norevenue.csv", no_revenue.into_bytes()).await;
    let _ = t.work_once().await;
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(
        p["summary"]["portfolio"]["revenue_at_risk"],
        Value::Null,
        "{p}"
    );
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("the file has no revenue column for mrr"),
        "the dashboard says why there is no figure"
    );
}

/// A date column named for a days-since input (`last_login_date` for
/// the days since the last activity) is read as the days before the file's reference date
/// (its latest date): the mapping says so, the report names the date, and the scores equal
/// those of the same file written with the day counts.
#[tokio::test]
async fn a_last_login_date_column_is_read_as_days_since() {
    let header = "user_id,months_subscribed,mrr,plan_type,feature_usage_score,support_tickets,{last},has_integration";
    let days = [0, 10, 30, 75];
    let dates = ["2024-06-30", "2024-06-20", "2024-05-31", "2024-04-16"];
    let file = |last: &str, values: &[String]| {
        let mut csv = format!("{}\n", header.replace("{last}", last));
        for (i, v) in values.iter().enumerate() {
            csv.push_str(&format!(
                "u{i},{},{},monthly,{},{},{v},No\n",
                2 + i,
                40 + 10 * i,
                30 + 5 * i,
                i
            ));
        }
        csv
    };
    let as_days = file("last_activity_days_ago", &days.map(|d| d.to_string()));
    let as_dates = file("last_login_date", &dates.map(String::from));
    let dir = tempfile::tempdir().unwrap();
    let (ok, by_days, _, stderr) = crate::mapping::predict(dir.path(), &as_days);
    assert!(ok, "{stderr}");
    let (ok, by_dates, report, stderr) = crate::mapping::predict(dir.path(), &as_dates);
    assert!(ok, "{stderr}");
    assert_eq!(report["reference_date"], "2024-06-30", "{report}");
    let entry = report["validation"]["mapping"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["column"] == "last_login_date")
        .cloned()
        .unwrap_or_else(|| panic!("{}", report["validation"]["mapping"]));
    assert_eq!(entry["from_date"], true, "{entry}");
    assert!(
        entry["note"]
            .as_str()
            .unwrap()
            .contains("a date, read as the days before the file's reference date"),
        "{entry}"
    );
    let probabilities = |csv: &str| {
        let (h, rows) = parse_csv(csv);
        let p = column(&h, "churn_probability");
        rows.iter().map(|r| r[p].clone()).collect::<Vec<_>>()
    };
    assert_eq!(probabilities(&by_dates), probabilities(&by_days));

    // The preview offers it too, reading the cells as dates.
    let t = TestApp::spawn().await;
    let (status, body) = crate::mapping::preview(&t, &as_dates, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["preview"]["ready"], true, "{body}");
    let cell = body["preview"]["rows"][0]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "last_login_date")
        .cloned()
        .unwrap();
    assert_eq!(
        (&cell["status"], &cell["parsed"]),
        (&Value::from("ok"), &Value::from("2024-06-30"))
    );
}

/// A file whose every row is rejected fails, and the failed prediction's counts agree with its
/// report: every row read is a rejected one, none scored (records in = scored + rejected +
/// skipped, whatever the outcome).
#[tokio::test]
async fn a_failed_job_counts_the_rows_its_report_rejected() {
    let t = TestApp::spawn().await;
    let file = |rows: usize| {
        let mut csv = format!("{TELCO_HEADER}\n");
        for _ in 0..rows {
            csv.push_str(&row("#N/A", &[]));
            csv.push('\n');
        }
        csv
    };
    // A file no larger than what the upload reads first is refused at once with the reason.
    let small = t.upload("noids.csv", file(4).into_bytes()).await;
    assert_eq!(small.status(), 400);
    let detail = small.text().await.unwrap();
    assert!(
        detail.contains("none of the 4 rows could be scored"),
        "{detail}"
    );
    // A longer one is found out by the worker, and its counts are the report's.
    let big = file(2500);
    assert!(big.len() > retainwise::registry::HEAD_BYTES);
    let id = t.upload_ok("noids.csv", big.into_bytes()).await;
    let _ = t.work_once().await;
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "FAILED", "{p}");
    assert_eq!(p["rows_total"], 2500, "{p}");
    assert_eq!(p["rows_rejected"], 2500, "{p}");
    assert_eq!(p["rows_processed"], 0, "{p}");
    let report: Value = t
        .get(&format!("/api/predictions/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["validation"]["rows_rejected"], 2500, "{report}");
}
