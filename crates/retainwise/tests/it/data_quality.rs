//! Data that would be lost or scored wrongly in silence: unclosed quotes, empty records,
//! substituted values, absurd values and formula-like ids, through `retainwise predict` and
//! through HTTP upload.

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;
// The same Telco rows and `retainwise predict` run as the mapping tests use.
use crate::mapping::{predict, telco_row as row};

/// Uploads `csv`, runs the worker once, and returns (prediction, report JSON).
async fn upload_and_score(t: &TestApp, name: &str, csv: &str) -> (Value, Value) {
    let id = t.upload_ok(name, csv.as_bytes().to_vec()).await;
    let _ = t.work_once().await;
    let p = t.prediction(&id).await;
    let report: Value = t
        .get(&format!("/api/predictions/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    (p, report)
}

/// A file whose third line opens a quote that is never closed.
fn unclosed_quote_file() -> String {
    format!(
        "{TELCO_HEADER}\n{}\n\"{}\n{}\n{}\n",
        row("A1", &[]),
        row("A2", &[]),
        row("A3", &[]),
        row("A4", &[])
    )
}

fn assert_unclosed_quote_report(report: &Value) {
    let v = &report["validation"];
    assert_eq!(
        (&v["rows_total"], &v["rows_scored"], &v["rows_rejected"]),
        (&Value::from(4), &Value::from(3), &Value::from(1)),
        "{v}"
    );
    assert_eq!(v["balance"], "4 rows read = 3 scored + 1 rejected", "{v}");
    let issue = &v["rejected_rows"][0];
    assert_eq!(issue["row"], 2, "{issue}");
    assert_eq!(issue["column"], "customerID", "{issue}");
    let reason = issue["reason"].as_str().unwrap();
    assert!(
        reason.contains("line 3") && reason.contains("never closed"),
        "{reason}"
    );
}

#[test]
fn predict_rejects_the_row_of_an_unclosed_quote_and_scores_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = predict(dir.path(), &unclosed_quote_file());
    assert!(ok, "{stderr}");
    assert_unclosed_quote_report(&report);
    let (_, rows) = parse_csv(&results);
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        ids,
        ["A1", "A3", "A4"],
        "no customer after the quote is lost"
    );
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[tokio::test]
async fn an_upload_with_an_unclosed_quote_loses_no_customer() {
    let t = TestApp::spawn().await;
    let (p, report) = upload_and_score(&t, "quote.csv", &unclosed_quote_file()).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(
        (p["rows_processed"].as_i64(), p["rows_rejected"].as_i64()),
        (Some(3), Some(1)),
        "{p}"
    );
    assert_unclosed_quote_report(&report);
}

/// Every text of the workbook's sheets and shared strings, for looking up cells.
pub(crate) fn xlsx_text(bytes: &[u8]) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an xlsx is a zip");
    let mut all = String::new();
    for name in [
        "xl/worksheets/sheet1.xml",
        "xl/worksheets/sheet2.xml",
        "xl/sharedStrings.xml",
    ] {
        if let Ok(mut f) = zip.by_name(name) {
            std::io::Read::read_to_string(&mut f, &mut all).unwrap();
        }
    }
    all
}

/// Two Excel ghost rows (all fields empty, one with spaces) between real customers.
fn ghost_rows_file() -> String {
    format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n",
        row("A1", &[]),
        ",".repeat(19),
        " , ,,",
        row("A4", &[])
    )
}

fn assert_ghost_rows_skipped(report: &Value) {
    let v = &report["validation"];
    assert_eq!(v["rows_skipped_empty"], 2, "{v}");
    assert_eq!(v["rows_rejected"], 0, "{v}");
    assert_eq!(v["rows_scored"], 2, "{v}");
    assert_eq!(
        v["balance"], "4 rows read = 2 scored + 0 rejected + 2 skipped as empty",
        "{v}"
    );
}

#[test]
fn predict_skips_empty_records_like_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = predict(dir.path(), &ghost_rows_file());
    assert!(ok, "{stderr}");
    assert_ghost_rows_skipped(&report);
    assert_eq!(report["rows_skipped_empty"], 2);
    assert_eq!(parse_csv(&results).1.len(), 2);
}

#[tokio::test]
async fn an_upload_with_empty_records_rejects_nobody() {
    let t = TestApp::spawn().await;
    let (p, report) = upload_and_score(&t, "ghosts.csv", &ghost_rows_file()).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(p["rows_rejected"], 0, "{p}");
    assert_ghost_rows_skipped(&report);
}

/// Row 1 clean; row 2 blank `TotalCharges`; row 3 whitespace `tenure` and `#N/A`
/// `MonthlyCharges`; row 4 an unseen contract and `#DIV/0!` `TotalCharges`.
fn substituted_file() -> String {
    format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n",
        row("C1", &[]),
        row("C2", &[("TotalCharges", "")]),
        row("C3", &[("tenure", "  "), ("MonthlyCharges", "#N/A")]),
        row("C4", &[("Contract", "Weekly"), ("TotalCharges", "#DIV/0!")]),
    )
}

fn assert_substitutions_listed(report: &Value) {
    let v = &report["validation"];
    assert_eq!(v["rows_scored"], 4, "every row is still scored: {v}");
    assert_eq!(v["warnings_total"], 5, "{v}");
    let listed: Vec<(u64, &str, &str, &str)> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert!(
                w["used_instead"].as_str().unwrap().contains("missing"),
                "{w}"
            );
            (
                w["row"].as_u64().unwrap(),
                w["customer_id"].as_str().unwrap(),
                w["column"].as_str().unwrap(),
                w["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (2, "C2", "TotalCharges", ""),
            (3, "C3", "tenure", "  "),
            (3, "C3", "MonthlyCharges", "#N/A"),
            (4, "C4", "Contract", "Weekly"),
            (4, "C4", "TotalCharges", "#DIV/0!"),
        ]
    );
    let reasons = v["warnings"].to_string();
    assert!(
        reasons.contains("blank") && reasons.contains("Excel error value #N/A"),
        "{reasons}"
    );
}

#[test]
fn predict_lists_every_substituted_value() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = predict(dir.path(), &substituted_file());
    assert!(ok, "{stderr}");
    assert_substitutions_listed(&report);
    assert!(stderr.contains("used instead"), "{stderr}");
    let (header, rows) = parse_csv(&results);
    let q = column(&header, "data_quality");
    let flags: Vec<&str> = rows.iter().map(|r| r[q].as_str()).collect();
    assert_eq!(
        flags,
        [
            "",
            "TotalCharges: missing",
            "tenure: missing; MonthlyCharges: missing",
            "Contract: unknown category; TotalCharges: missing",
        ]
    );
}

#[tokio::test]
async fn an_upload_lists_every_substituted_value_and_flags_its_rows_everywhere() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("subst.csv", substituted_file().into_bytes())
        .await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let report: Value = t
        .get(&format!("/api/predictions/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_substitutions_listed(&report);

    // The results CSV: the data_quality column, and flagged factors said to be flagged.
    let (header, rows) = parse_csv(&t.results(&id).await);
    let q = column(&header, "data_quality");
    assert_eq!(rows[0][q], "");
    assert_eq!(rows[1][q], "TotalCharges: missing");
    for r in &rows {
        for name in ["risk_factors", "protective_factors"] {
            let factors: Value = serde_json::from_str(&r[column(&header, name)]).unwrap();
            for f in factors.as_array().unwrap() {
                // A grouped factor involves its partner column too.
                let flagged = [&f["feature"], &f["with"]]
                    .iter()
                    .filter_map(|n| n.as_str())
                    .any(|n| r[q].contains(&format!("{n}:")));
                assert_eq!(f.get("quality").is_some(), flagged, "{f} in {r:?}");
            }
        }
        let summary = &r[column(&header, "summary")];
        assert!(
            !summary.to_lowercase().contains("missing ")
                || summary.contains("(no value in the file)")
                || summary.contains("(a category the model does not know"),
            "a missing value named in the summary is said to be missing from the file: {summary}"
        );
    }

    // The dashboard states the balance and how many values were flagged.
    let dashboard = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains("4 rows read = 4 scored + 0 rejected")
            && dashboard.contains("5 values could not be used as given"),
        "{dashboard}"
    );

    // The customers table and the explanation page.
    let table = t
        .get(&format!("/predictions/{id}/customers"))
        .await
        .text()
        .await
        .unwrap();
    assert!(table.contains("Data quality"), "{table}");
    assert!(table.contains("TotalCharges: missing"), "{table}");
    let page = t
        .get(&format!("/predictions/{id}/customers/4"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Contract: unknown category; TotalCharges: missing"),
        "{page}"
    );
    assert!(page.contains("not a fact about the customer"), "{page}");
    let clean = t
        .get(&format!("/predictions/{id}/customers/1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!clean.contains("quality-h"), "a clean row has no note");

    // The Excel export carries the column.
    let xlsx = t
        .get(&format!("/predictions/{id}/export.xlsx"))
        .await
        .bytes()
        .await
        .unwrap();
    let text = xlsx_text(&xlsx);
    assert!(
        text.contains("data_quality") && text.contains("TotalCharges: missing"),
        "the workbook shows the flags"
    );
}

/// Absurd values: a negative tenure, 1e308 monthly charges, a 309-digit total.
fn absurd_file() -> String {
    let huge = format!("1{}", "0".repeat(308));
    format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n",
        row("D1", &[]),
        row("D2", &[("tenure", "-5")]),
        row("D3", &[("MonthlyCharges", "1e308")]),
        row("D4", &[("TotalCharges", &huge)]),
    )
}

fn assert_absurd_flagged(results: &str) {
    let (header, rows) = parse_csv(results);
    let q = column(&header, "data_quality");
    let rec = column(&header, "recommendation");
    let flags: Vec<&str> = rows.iter().map(|r| r[q].as_str()).collect();
    assert_eq!(
        flags,
        [
            "",
            "tenure: outside training range",
            "MonthlyCharges: outside training range",
            "TotalCharges: outside training range",
        ]
    );
    for r in &rows[1..] {
        assert!(
            r[rec].starts_with("Check the data first"),
            "never a silent confident score: {r:?}"
        );
    }
    assert!(
        !results.contains(&"0".repeat(40)),
        "no 309-digit value is written"
    );
}

#[test]
fn predict_flags_values_far_outside_the_training_range() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = predict(dir.path(), &absurd_file());
    assert!(ok, "{stderr}");
    assert_absurd_flagged(&results);
    let w = report["validation"]["warnings"].to_string();
    assert!(
        w.contains("a negative value") && w.contains("far above the training range"),
        "{w}"
    );
    // The built-in model's card holds the ranges these flags come from.
    let card = retainwise_model::Model::embedded_default().card();
    let tenure = card.features.iter().find(|f| f.name == "tenure").unwrap();
    let range = tenure
        .range
        .as_ref()
        .expect("the card records tenure's range");
    assert_eq!((range.min, range.max, range.negatives), (0.0, 72.0, false));
}

#[tokio::test]
async fn an_upload_with_absurd_values_is_flagged_and_pages_keep_their_layout() {
    let t = TestApp::spawn().await;
    let id = t.upload_ok("absurd.csv", absurd_file().into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    assert_absurd_flagged(&t.results(&id).await);
    for row in 1..=4 {
        let page = t
            .get(&format!("/predictions/{id}/customers/{row}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(!page.contains(&"0".repeat(40)), "row {row}: {page}");
    }
    let css = t.get("/static/app.css").await.text().await.unwrap();
    assert!(css.contains("overflow-wrap: anywhere"), "long values wrap");
    // A value too large for any number is rejected, and the dashboard's table of rejected
    // rows shows it cut, with its length, not 309 digits wide.
    let nines = "9".repeat(309);
    let csv = format!(
        "{TELCO_HEADER}\n{}\n{}\n",
        row("E1", &[]),
        row("E2", &[("TotalCharges", &nines)])
    );
    let id = t.upload_ok("overflow.csv", csv.into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("(309 characters)"), "{page}");
    assert!(!page.contains(&"9".repeat(60)), "{page}");
}

/// Ids a spreadsheet would run as formulas, and a number.
fn formula_ids_file() -> String {
    format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n{}\n",
        row("=1+2", &[]),
        row(" @SUM(A1)", &[]),
        row("\u{FF1D}1+2", &[]),
        row("-2", &[]),
        row("\"\nx\"", &[]),
    )
}

/// The escaped ids, as a spreadsheet-safe file must hold them.
const ESCAPED: [&str; 5] = ["'=1+2", "' @SUM(A1)", "'\u{FF1D}1+2", "-2", "'\nx"];

#[test]
fn predict_writes_formula_like_ids_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, _, stderr) = predict(dir.path(), &formula_ids_file());
    assert!(ok, "{stderr}");
    let ids: Vec<String> = parse_csv(&results)
        .1
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, ESCAPED);
}

#[tokio::test]
async fn stored_results_keep_raw_ids_and_downloads_escape_them() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("formulas.csv", formula_ids_file().into_bytes())
        .await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    // The page shows the id as given (HTML-escaped by the template, not altered).
    let page = t
        .get(&format!("/predictions/{id}/customers/1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Customer =1+2"), "{page}");
    assert!(!page.contains("'=1+2"), "{page}");
    let table = t
        .get(&format!("/predictions/{id}/customers?q=%3D1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(table.contains(">=1+2<"), "search finds the raw id: {table}");
    // The stored object is raw.
    let key = retainwise::domain::ObjectKey::result(
        &retainwise::domain::OrgId::local(),
        id.parse().unwrap(),
    );
    let stored = t.app.storage.get_bytes(&key).await.unwrap();
    let stored = String::from_utf8(stored.to_vec()).unwrap();
    assert!(stored.contains("\n=1+2,"), "{stored}");
    // The CSV download escapes.
    let ids: Vec<String> = parse_csv(&t.results(&id).await)
        .1
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, ESCAPED);
    // So does the workbook.
    let xlsx = t
        .get(&format!("/predictions/{id}/export.xlsx"))
        .await
        .bytes()
        .await
        .unwrap();
    let text = xlsx_text(&xlsx);
    assert!(
        text.contains("&apos;=1+2") || text.contains("'=1+2"),
        "{text}"
    );
    assert!(!text.contains(">=1+2<"), "no raw formula cell text");
}

/// A low score that rests on a substituted value is no reason for "no action": a loyal-looking
/// customer whose contract is written in a form the model does not know (`M2M`) gets a
/// recommendation to check that value first, even when it is not among the shown factors.
#[test]
fn a_low_score_resting_on_a_substituted_value_is_never_no_action() {
    let loyal = |id: &str, contract: &str| {
        row(
            id,
            &[
                ("tenure", "60"),
                ("Contract", contract),
                ("InternetService", "DSL"),
                ("OnlineSecurity", "Yes"),
                ("TechSupport", "Yes"),
                ("PaymentMethod", "Bank transfer (automatic)"),
                ("PaperlessBilling", "No"),
                ("MonthlyCharges", "55.0"),
                ("TotalCharges", "3300.0"),
            ],
        )
    };
    let csv = format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n",
        loyal("L1", "Two year"),
        loyal("L2", "M2M"),
        loyal("L3", "monthly"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, _, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let (header, rows) = parse_csv(&results);
    let (level, rec) = (
        column(&header, "risk_level"),
        column(&header, "recommendation"),
    );
    let (risk, protective) = (
        column(&header, "risk_factors"),
        column(&header, "protective_factors"),
    );
    let quality = column(&header, "data_quality");
    let mut checked = 0;
    // A category alias (`monthly`) is flagged too, but it is the level the file meant: a low
    // score resting on it may say "no action"; every other flag may not.
    let substitute = |cell: &str| {
        cell.split("\"quality\":")
            .skip(1)
            .any(|q| !q.starts_with("\"category alias\""))
    };
    let mut aliased_no_action = 0;
    for r in &rows {
        if r[quality].contains("category alias") && r[rec].starts_with("No action needed") {
            aliased_no_action += 1;
        }
        let flagged = r[quality]
            .split("; ")
            .any(|f| !f.is_empty() && !f.ends_with("category alias"))
            || substitute(&r[risk])
            || substitute(&r[protective]);
        if flagged && r[level] == "low" {
            checked += 1;
            assert!(
                r[rec].starts_with("Check the data first") && r[rec].contains("contract"),
                "{r:?}"
            );
        }
        assert_eq!(
            r[rec].starts_with("No action needed"),
            !flagged && r[level] == "low",
            "{r:?}"
        );
    }
    assert!(
        checked > 0,
        "a low row resting on the unknown contract: {results}"
    );
    assert!(
        aliased_no_action > 0,
        "the low row whose contract is an alias: {results}"
    );
}

/// Runs `retainwise predict` on `csv`; asserts the customers scored are `ids`, in order, and the
/// validation balance is `balance`. Returns the report.
fn assert_scored(csv: &str, ids: &[&str], balance: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = predict(dir.path(), csv);
    assert!(ok, "{stderr}");
    let (_, rows) = parse_csv(&results);
    let scored: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(scored, ids, "{report}");
    assert_eq!(report["validation"]["balance"], balance, "{report}");
    report
}

/// The next customer's own quotes do not close an unclosed one in silence: a literal `"` in
/// its last field (`55" TV`), or a quoted field of its own. Each file keeps every customer but
/// the one whose quote never closed, and the counts add up.
#[test]
fn an_unclosed_quote_closed_by_the_next_rows_quote_loses_no_customer() {
    let header = format!("{TELCO_HEADER},product");
    for (broken, next) in [("\"Samsung", "55\" TV"), ("\"Samsung", "\"DSL, fibre\"")] {
        let csv = format!(
            "{header}\n{},x\n{},{broken}\n{},{next}\n{},x\n",
            row("B1", &[]),
            row("B2", &[]),
            row("B3", &[]),
            row("B4", &[]),
        );
        assert_scored(
            &csv,
            &["B1", "B3", "B4"],
            "4 rows read = 3 scored + 1 rejected",
        );
    }
    // A stray quote opening the gender of one customer and another closing the gender of the
    // next: RFC 4180 reads one field across both rows. Neither customer is scored with the
    // other's values: the joined row is rejected naming both lines, and the counts add up.
    let csv = format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n",
        row("G1", &[]),
        row("G2", &[("gender", "\"Male")]),
        row("G3", &[("gender", "Male\"")]),
        row("G4", &[]),
    );
    let report = assert_scored(&csv, &["G1", "G4"], "3 rows read = 2 scored + 1 rejected");
    let reason = report["validation"]["rejected_rows"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("line 3") && reason.contains("closes only on line 4"),
        "{report}"
    );
    // The same, when the quote closes in the same column of the next row (so the joined record
    // has exactly the header's field count) and a column follows it.
    let header = format!("{TELCO_HEADER},product,region");
    let csv = format!(
        "{header}\n{},x,EU\n{},\"55 TV,EU\n{},big 55\" TV,EU\n{},x,EU\n",
        row("B1", &[]),
        row("B2", &[]),
        row("B3", &[]),
        row("B4", &[]),
    );
    assert_scored(
        &csv,
        &["B1", "B3", "B4"],
        "4 rows read = 3 scored + 1 rejected",
    );
}
