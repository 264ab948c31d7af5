//! What the third fresh-user trial found, one class per test: the header named as the header
//! in messages (never "data row 0"); dates read unpadded as well as padded; headers with
//! characters nobody sees reported as what they are, not exact; a column choice that cannot
//! work shown by the preview (200, not ready) in the upload's words; revenue at risk that no
//! flagged or missing revenue enters in silence; explanations that never hide a flagged value.

use std::process::Command;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// `retainwise predict` of `csv` in `dir`: success and standard error.
fn predict_err(dir: &std::path::Path, csv: &str) -> (bool, String) {
    let input = dir.join("in.csv");
    std::fs::write(&input, csv).unwrap();
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(dir.join("out.csv"))
        .output()
        .unwrap();
    (
        run.status.success(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// A problem in the header line is named as being in the header (and in which column), not
/// at "data row 0", whether scoring or training reads it.
#[test]
fn a_problem_in_the_header_is_named_as_the_header_never_data_row_0() {
    let dir = tempfile::tempdir().unwrap();
    let rows = format!("{}\n", crate::mapping::telco_row("H1", &[]));
    let unclosed = format!("{}\n{rows}", TELCO_HEADER.replace(",gender,", ",\"gender,"));
    let long = format!(
        "{}\n{rows}",
        TELCO_HEADER.replace(",SeniorCitizen,", &format!(",{},", "S".repeat(70_000)))
    );
    for (csv, words) in [
        (&unclosed, &["in the header", "field 2 on line 1"][..]),
        (&long, &["in the header, column 3", "70000 bytes"][..]),
    ] {
        let (ok, stderr) = predict_err(dir.path(), csv);
        assert!(!ok, "{stderr}");
        assert!(!stderr.contains("row 0"), "{stderr}");
        for w in words {
            assert!(stderr.contains(w), "{w}: {stderr}");
        }
    }
    // Training reads the header through its own path: the same wording.
    std::fs::write(dir.path().join("t.csv"), &unclosed).unwrap();
    let run = Command::new(BIN)
        .args(["train", "t.csv", "--label", "Churn", "-o", "m.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("in the header") && !stderr.contains("row 0"),
        "{stderr}"
    );
}

/// Every date spelling read zero-padded is read unpadded too (`2024-6-1` was refused while
/// `2024/6/1` was read), to the same day; a day/month form stays refused as ambiguous, as
/// before, whether or not it is padded.
#[test]
fn dates_read_padded_are_read_unpadded_and_ambiguous_ones_stay_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = crate::dates::train(dir.path());
    let spellings = [
        "2024-06-01",
        "2024-6-1",
        "2024-06-1",
        "2024/6/1",
        "2024/06/01",
        "2024-6-1 9:05",
        "2024-6-1T09:05:00Z",
    ];
    let mut csv = String::from("account_id,plan,signup_date,last_login\n");
    for (i, s) in spellings.iter().enumerate() {
        csv.push_str(&format!("R{i},monthly,2022-1-10,{s}\n"));
    }
    csv.push_str("AMBIGUOUS,monthly,2022-01-10,3/4/2024\n");
    let input = dir.path().join("spellings.csv");
    std::fs::write(&input, csv).unwrap();
    let out = dir.path().join("scored.csv");
    let run = Command::new(BIN)
        .args(["predict", input.to_str().unwrap(), "--model"])
        .arg(&model)
        .args(["--reference-date", "2025-4-17", "-o", out.to_str().unwrap()])
        .env_remove("RETAINWISE_MODEL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let (header, rows) = parse_csv(&std::fs::read_to_string(&out).unwrap());
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, ["R0", "R1", "R2", "R3", "R4", "R5", "R6"], "{stderr}");
    let p = column(&header, "churn_probability");
    assert!(
        rows.iter().all(|r| r[p] == rows[0][p]),
        "one day, one score: {rows:?}"
    );
    assert!(
        stderr.contains("AMBIGUOUS") && stderr.contains("expected a date like 2024-05-31"),
        "{stderr}"
    );
}

/// A header with a character nobody sees — a trailing tab, a control character, a byte-order
/// mark in the middle of the name — is a `normalised` match naming that character, shown as
/// written, never `exact`; the file's own leading byte-order mark is no part of a name.
#[tokio::test]
async fn headers_with_unseen_characters_are_normalised_and_named_never_exact() {
    let header = TELCO_HEADER
        .replace("tenure", "tenure\t")
        .replace("Contract", "Con\u{FEFF}tract")
        .replace("gender", "gender\u{7}");
    let csv = format!(
        "\u{FEFF}{header}\n{}\n{}\n",
        crate::mapping::telco_row("B1", &[]),
        crate::mapping::telco_row("B2", &[])
    );
    let check = |mapping: &serde_json::Value, what: &str| {
        for (input, column, words) in [
            ("tenure", "tenure\t", "a tab (U+0009)"),
            ("Contract", "Con\u{FEFF}tract", "a byte-order mark (U+FEFF)"),
            ("gender", "gender\u{7}", "a control character (U+0007)"),
        ] {
            let e = crate::mapping::entry(mapping, input);
            assert_eq!(e["column"], column, "{what}: {e}");
            assert_eq!(e["method"], "normalised", "{what}: {e}");
            let note = e["note"].as_str().unwrap();
            assert!(note.contains(words), "{what}: {e}");
        }
        // The BOM that starts the file is the encoding's mark, not part of the first name.
        assert_eq!(
            crate::mapping::entry(mapping, "customerID")["method"],
            "exact",
            "{what}"
        );
        assert_eq!(
            crate::mapping::entry(mapping, "MonthlyCharges")["method"],
            "exact"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, report, stderr) = crate::mapping::predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    check(&report["validation"]["mapping"], "predict report");
    assert!(stderr.contains("a byte-order mark (U+FEFF)"), "{stderr}");

    let t = TestApp::spawn().await;
    let (status, body) = crate::mapping::preview(&t, &csv, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["preview"]["header"][5], "tenure\t");
    check(&body["preview"]["mapping"], "preview");
}

/// `POST /api/csv` (or the preview) of `csv` with the `mapping` form field.
async fn send_mapping(
    t: &TestApp,
    path: &str,
    csv: &str,
    mapping: &str,
) -> (u16, serde_json::Value) {
    let form = reqwest::multipart::Form::new()
        .text("mapping", mapping.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("m.csv"),
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

/// Every column choice the upload refuses with 422 — one that cannot be applied (a header the
/// file lacks, an input the model lacks, two inputs on one column), one applied but unreadable
/// (words for a number), one the JSON object itself spoils (an input named twice) — is shown
/// by the preview as 200, `ready: false`, with the upload's own sentence in `problems`, and the
/// file is still previewed (header, rows, mapping) so the page can show it beside the selects.
#[tokio::test]
async fn the_preview_shows_a_choice_the_upload_refuses_as_not_ready_in_the_same_words() {
    let t = TestApp::spawn().await;
    let csv = synthetic_telco(4);
    for mapping in [
        r#"{"tenure": "Months"}"#,
        r#"{"tenure_months": "tenure"}"#,
        r#"{"tenure": "MonthlyCharges", "TotalCharges": "MonthlyCharges"}"#,
        r#"{"tenure": "gender", "gender": null}"#,
        r#"{"tenure": "tenure", "tenure": null}"#,
    ] {
        let (status, upload) = send_mapping(&t, "/api/csv", &csv, mapping).await;
        assert_eq!(status, 422, "{mapping}: {upload}");
        let (status, body) = send_mapping(&t, "/api/csv/preview-mapping", &csv, mapping).await;
        assert_eq!(status, 200, "{mapping}: {body}");
        assert_eq!(body["ready"], false, "{mapping}: {body}");
        assert_eq!(body["preview"]["ready"], false, "{mapping}: {body}");
        // The upload's 422 says the same (after the file's name for the file's choices).
        let problem = body["problems"][0].as_str().unwrap();
        let detail = upload["detail"].as_str().unwrap();
        assert!(
            detail == problem || detail == format!("\"m.csv\": {problem}"),
            "{detail} / {problem}"
        );
        assert_eq!(body["problems"].as_array().unwrap().len(), 1, "{body}");
        let p = &body["preview"];
        assert_eq!(p["header"][0], "customerID", "{mapping}: {p}");
        assert_eq!(p["rows"].as_array().unwrap().len(), 4, "{mapping}");
        assert!(p["mapping"]["features"].as_array().unwrap().len() > 10);
        assert_eq!(p["mapping_problem"], body["problems"][0], "{mapping}");
    }
    // A workable choice is ready, with no problems; a request that is no request stays 400.
    let (status, body) = send_mapping(
        &t,
        "/api/csv/preview-mapping",
        &csv,
        r#"{"TotalCharges": null}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["problems"], serde_json::json!([]), "{body}");
    let (status, _) = send_mapping(&t, "/api/csv/preview-mapping", &csv, "{tenure").await;
    assert_eq!(status, 400);
    let list: serde_json::Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 0, "nothing was queued: {list}");
}

/// Revenue at risk is not driven by one absurd value: a `MonthlyCharges` of 1e9 (flagged
/// outside the training range) is left out of both sums, and so is a revenue cell that is
/// `#N/A` or blank; `portfolio.revenue_note` counts and names each, and the dashboard shows it.
#[tokio::test]
async fn flagged_or_missing_revenue_is_left_out_of_revenue_at_risk_and_named() {
    use crate::mapping::telco_row as row;
    let mut csv = format!("{TELCO_HEADER}\n");
    for i in 0..5 {
        csv.push_str(&row(&format!("OK{i}"), &[("MonthlyCharges", "80")]));
        csv.push('\n');
    }
    for (id, revenue) in [("HUGE", "1e9"), ("NA1", "#N/A"), ("BLANK", "")] {
        csv.push_str(&row(id, &[("MonthlyCharges", revenue)]));
        csv.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = crate::mapping::predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let portfolio = &report["portfolio"];
    let (h, rows) = parse_csv(&results);
    assert_eq!(rows.len(), 8, "every customer is still scored");
    let p = column(&h, "churn_probability");
    let expected: f64 = rows
        .iter()
        .filter(|r| r[0].starts_with("OK"))
        .map(|r| 80.0 * r[p].parse::<f64>().unwrap())
        .sum();
    let got = portfolio["revenue_at_risk"].as_f64().unwrap();
    assert!(
        (got - expected).abs() < 0.01,
        "{got} vs {expected}: {portfolio}"
    );
    assert_eq!(portfolio["monthly_revenue"], 400.0, "{portfolio}");
    assert_eq!(portfolio["revenue_customers"], 5, "{portfolio}");
    assert_eq!(portfolio["revenue_flagged"], 1, "{portfolio}");
    assert_eq!(portfolio["revenue_missing"], 2, "{portfolio}");
    let note = portfolio["revenue_note"].as_str().unwrap();
    for w in [
        "1 customer is left out",
        "outside the values the model was trained on",
        "\"HUGE\" (1000000000)",
        "2 customers are left out",
        "no MonthlyCharges value",
        "\"NA1\", \"BLANK\"",
    ] {
        assert!(note.contains(w), "{w:?} in {note}");
    }

    // The service stores the same, and the dashboard shows the note beside the figure.
    let t = TestApp::spawn().await;
    let id = t.upload_ok("revenue.csv", csv.into_bytes()).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let stored = t.prediction(&id).await;
    assert_eq!(
        stored["summary"]["portfolio"]["revenue_note"], note,
        "{stored}"
    );
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("left out of revenue at risk") && page.contains("HUGE"),
        "the dashboard shows who was left out"
    );
}

/// A flagged column as the explanation words it: `TotalCharges` → `total charges`.
fn words(column: &str) -> String {
    let mut out = String::new();
    for (i, c) in column.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Whenever a row has a flagged value, its summary and its recommendation say so naming the
/// column, and every factor that involves a flagged column — its own or, for a grouped factor
/// such as "tenure (with TotalCharges)", its partner — carries the quality mark: in the
/// results CSV, and on the customers page, the explanation page and in the Excel export.
#[tokio::test]
async fn an_explanation_never_hides_a_flagged_value_of_its_row() {
    use crate::mapping::telco_row as row;
    let mut csv = format!("{TELCO_HEADER}\n");
    let cases: [(&str, &[(&str, &str)]); 8] = [
        ("CLEAN", &[]),
        ("NOTENURE", &[("tenure", "")]),
        ("NEWNOTOTAL", &[("tenure", "1"), ("TotalCharges", "#N/A")]),
        (
            "OLDNOTOTAL",
            &[
                ("tenure", "60"),
                ("Contract", "Two year"),
                ("TotalCharges", ""),
            ],
        ),
        (
            "SAFENOTENURE",
            &[
                ("tenure", "NA"),
                ("Contract", "Two year"),
                ("InternetService", "No"),
            ],
        ),
        (
            "ODDCONTRACT",
            &[("Contract", "Biennial"), ("MonthlyCharges", "")],
        ),
        // The partner flagged with its value kept: tenure is counted with it.
        (
            "NEWHUGETOTAL",
            &[("tenure", "2"), ("TotalCharges", "99999999")],
        ),
        ("HUGETENURE", &[("tenure", "5000")]),
    ];
    for (id, over) in cases {
        csv.push_str(&row(id, over));
        csv.push('\n');
    }
    let check = |results: &str, what: &str| {
        let (h, rows) = parse_csv(results);
        let q = column(&h, "data_quality");
        let mut grouped_marked = 0;
        for r in &rows {
            let flagged: Vec<&str> = r[q]
                .split("; ")
                .filter(|s| !s.is_empty())
                .map(|s| s.split(':').next().unwrap())
                .collect();
            for c in &flagged {
                for text in ["summary", "recommendation"] {
                    let t = &r[column(&h, text)];
                    assert!(
                        t.to_lowercase().contains(&words(c)),
                        "{what}: the {text} of {} names {c}: {t}",
                        r[0]
                    );
                }
            }
            if flagged.is_empty() {
                assert_eq!(r[0], "CLEAN");
            }
            for name in ["risk_factors", "protective_factors"] {
                let factors: serde_json::Value =
                    serde_json::from_str(&r[column(&h, name)]).unwrap();
                for f in factors.as_array().unwrap() {
                    let own = flagged.contains(&f["feature"].as_str().unwrap());
                    let partner = f["with"].as_str().is_some_and(|w| flagged.contains(&w));
                    assert_eq!(
                        f.get("quality").is_some(),
                        own || partner,
                        "{what}: {f} in {r:?}"
                    );
                    if partner && !own {
                        let with = f["with"].as_str().unwrap();
                        assert!(
                            f["quality"]
                                .as_str()
                                .unwrap()
                                .ends_with(&format!(" in {with}")),
                            "{f}"
                        );
                        grouped_marked += 1;
                    }
                }
            }
        }
        assert_eq!(rows.len(), 8);
        grouped_marked
    };
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, _, stderr) = crate::mapping::predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let grouped = check(&results, "predict");
    assert!(
        grouped > 0,
        "a grouped factor with a flagged partner is among the rows:\n{results}"
    );

    let t = TestApp::spawn().await;
    let id = t.upload_ok("flags.csv", csv.into_bytes()).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let stored = t.results(&id).await;
    assert_eq!(check(&stored, "service"), grouped);
    let (h, rows) = parse_csv(&stored);
    let r = rows.iter().position(|r| r[0] == "NEWHUGETOTAL").unwrap();
    let factors = format!(
        "{}{}",
        rows[r][column(&h, "risk_factors")],
        rows[r][column(&h, "protective_factors")]
    );
    let marked = factors.contains("in TotalCharges");
    assert!(marked, "{factors}");
    let page = t
        .get(&format!("/predictions/{id}/customers/{}", r + 1))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("total charges"),
        "the explanation page's summary names it"
    );
    if marked {
        assert!(
            page.contains("outside training range in TotalCharges"),
            "{page}"
        );
        let table = t
            .get(&format!("/predictions/{id}/customers"))
            .await
            .text()
            .await
            .unwrap();
        // The table shows the top risk driver only; the row's flags are in its own column.
        assert!(
            table.contains("TotalCharges: outside training range"),
            "{table}"
        );
        let xlsx = t
            .get(&format!("/predictions/{id}/export.xlsx"))
            .await
            .bytes()
            .await
            .unwrap();
        assert!(crate::data_quality::xlsx_text(&xlsx)
            .contains("outside training range in TotalCharges"));
    }
}
