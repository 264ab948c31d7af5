//! What the latest fresh-user trial found, one class per test: every remark names the file's
//! column as written and the value actually scored; the preview and the job read a file alike;
//! a rejection says what broke the row; trailing empty fields, long notes and mis-encoded cells
//! are read, not refused or hidden.

use serde_json::Value;

use crate::helpers::*;
use crate::mapping::{predict, telco_row as row};

/// The report's warnings of a `predict` run.
fn warnings(report: &Value) -> Vec<Value> {
    report["validation"]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The warning on data row `n`.
fn warning_on(report: &Value, n: u64) -> Value {
    warnings(report)
        .into_iter()
        .find(|w| w["row"] == n)
        .unwrap_or_else(|| panic!("no warning on row {n}: {report}"))
}

/// A converted column (years to months, an annual amount to a monthly one, a date counted back
/// to a duration): its warnings name the file's column as written and the model input it
/// feeds, the raw value and the converted value the model used, in that input's unit.
#[test]
fn remarks_on_a_converted_column_name_the_files_column_and_the_value_scored() {
    let dir = tempfile::tempdir().unwrap();
    let header = TELCO_HEADER
        .replace(",tenure,", ",tenure_years,")
        .replace("MonthlyCharges", "ARR");
    let csv = format!(
        "{header}\n{}\n{}\n{}\n{}\n",
        row("Y1", &[("tenure", "34"), ("MonthlyCharges", "1200")]),
        row("Y2", &[("tenure", "2"), ("MonthlyCharges", "120000")]),
        row("Y3", &[("tenure", ""), ("MonthlyCharges", "1000")]),
        row("Y4", &[("tenure", "2"), ("MonthlyCharges", "abc")]),
    );
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let w = warning_on(&report, 1);
    assert_eq!(w["column"], "tenure_years", "{w}");
    assert_eq!(w["feature"], "tenure", "{w}");
    assert_eq!(w["value"], "34", "{w}");
    assert_eq!(w["used_instead"], "408 months", "{w}");
    let reason = w["reason"].as_str().unwrap();
    assert!(
        reason.contains("read as 408 months for tenure")
            && reason.contains("0 to 72")
            && reason.contains("scored with 408 months"),
        "{reason}"
    );
    let w = warning_on(&report, 2);
    assert_eq!(
        (&w["column"], &w["feature"], &w["used_instead"]),
        (
            &Value::from("ARR"),
            &Value::from("MonthlyCharges"),
            &Value::from("10000 a month")
        ),
        "{w}"
    );
    // A blank cell of a renamed column and a rejection in one: both name the file's column.
    let w = warning_on(&report, 3);
    assert_eq!(
        (&w["column"], &w["feature"]),
        (&Value::from("tenure_years"), &Value::from("tenure")),
        "{w}"
    );
    let rejected = &report["validation"]["rejected_rows"][0];
    assert_eq!(rejected["column"], "ARR", "{rejected}");
    assert_eq!(rejected["feature"], "MonthlyCharges", "{rejected}");
    // Nothing names the model's input where the file had another column.
    for w in warnings(&report) {
        assert_ne!(w["column"], "tenure", "{w}");
        assert_ne!(w["column"], "MonthlyCharges", "{w}");
    }
    assert!(
        stderr.contains("column tenure_years (model input tenure), value \"34\""),
        "{stderr}"
    );

    // A date column read for tenure: the warning gives the months counted back.
    let header = TELCO_HEADER.replace(",tenure,", ",signup_date,");
    let mut csv = format!("{header}\n");
    for i in 1..=10 {
        let date = if i == 4 {
            "1990-01-01".to_owned()
        } else {
            format!("2024-0{}-01", i % 9 + 1)
        };
        csv.push_str(&row(&format!("D{i}"), &[("tenure", &date)]));
        csv.push('\n');
    }
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let w = warning_on(&report, 4);
    assert_eq!(
        (&w["column"], &w["feature"]),
        (&Value::from("signup_date"), &Value::from("tenure")),
        "{w}"
    );
    assert_eq!(w["value"], "1990-01-01", "{w}");
    let used = w["used_instead"].as_str().unwrap_or_default();
    assert!(used.ends_with(" months") && !used.contains("e"), "{w}");
    let months: f64 = used.trim_end_matches(" months").parse().unwrap();
    assert!((400.0..420.0).contains(&months), "{w}");
}

/// Trains a two-input model (`id`, `score`, `plan`; labelled `churned`) in `dir`: a narrow
/// file's model, to read narrow files with.
fn narrow_model(dir: &std::path::Path) -> std::path::PathBuf {
    let mut csv = String::from("id,score,plan,churned\n");
    for i in 0..300 {
        let score = (i * 37) % 100;
        let plan = ["basic", "pro"][i % 2];
        let churned = if score < 40 { "Yes" } else { "No" };
        csv.push_str(&format!("H{i},{score},{plan},{churned}\n"));
    }
    let history = dir.join("narrow-history.csv");
    std::fs::write(&history, csv).unwrap();
    let model = dir.join("narrow.json");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .args([
            "train",
            history.to_str().unwrap(),
            "--label",
            "churned",
            "--id",
            "id",
            "-o",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    model
}

/// `retainwise predict FILE --model MODEL`: (success, results, report, stderr).
fn predict_with(
    dir: &std::path::Path,
    model: &std::path::Path,
    csv: &str,
) -> (bool, String, Value, String) {
    let (input, output, report) = (
        dir.join("n.csv"),
        dir.join("n-out.csv"),
        dir.join("n-report.json"),
    );
    std::fs::write(&input, csv).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .arg("predict")
        .arg(&input)
        .arg("--model")
        .arg(model)
        .arg("-o")
        .arg(&output)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    (
        run.status.success(),
        std::fs::read_to_string(&output).unwrap_or_default(),
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// Rows ending with one empty field more than the header (`…,No,` from exports) are read as
/// usual, noted once; an extra field that holds something rejects only its row, naming the
/// value. In a narrow file as in a wide one, and with a stray quote among such rows, which is
/// found out by the rows' own width.
#[test]
fn trailing_empty_fields_are_ignored_and_a_filled_extra_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{TELCO_HEADER}\n");
    for i in 1..=12 {
        let tail = match i {
            5 => ",surprise",
            7 => "",
            _ => ",",
        };
        csv.push_str(&format!("{}{tail}\n", row(&format!("E{i}"), &[])));
    }
    let (ok, results, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let v = &report["validation"];
    assert_eq!(v["balance"], "12 rows read = 11 scored + 1 rejected", "{v}");
    assert_eq!(v["rows_with_extra_empty_fields"], 10, "{v}");
    let r = &v["rejected_rows"][0];
    assert_eq!(
        (r["row"].as_u64(), r["value"].as_str()),
        (Some(5), Some("surprise")),
        "{r}"
    );
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("field 21 holds \"surprise\""), "{reason}");
    assert!(
        stderr.contains("10 row(s) end with empty fields"),
        "{stderr}"
    );
    assert_eq!(parse_csv(&results).1.len(), 11);

    // A narrow file (three columns) whose rows, or whose header, end with a delimiter the
    // other lacks, with a stray quote on row 3: that row is rejected naming the quote, every
    // other row is scored (the rows' own width tells a row from a line of a note).
    let model = narrow_model(dir.path());
    for (header, tail) in [("id,score,plan\n", ","), ("id,score,plan,\n", "")] {
        let mut csv = String::from(header);
        for i in 1..=10 {
            let score = if i == 3 {
                "\"7".to_owned()
            } else {
                format!("{}", i * 9)
            };
            // Row 8's plan is quoted properly: its quote must not close row 3's.
            let plan = if i == 8 { "\"pro\"" } else { "basic" };
            csv.push_str(&format!("N{i},{score},{plan}{tail}\n"));
        }
        let (ok, results, report, stderr) = predict_with(dir.path(), &model, &csv);
        assert!(ok, "{stderr}");
        let v = &report["validation"];
        assert_eq!(v["balance"], "10 rows read = 9 scored + 1 rejected", "{v}");
        let r = &v["rejected_rows"][0];
        assert_eq!(r["row"], 3, "{r}");
        assert!(r["reason"].as_str().unwrap().contains("line 4"), "{r}");
        let ids: Vec<String> = parse_csv(&results)
            .1
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(ids.len(), 9, "{ids:?}");
        assert!(!ids.contains(&"N3".to_owned()));
    }
}

/// A row broken by a quote says so: the quote, its field and the lines it joins, not just a
/// wrong field count; `"29,85"` in a file whose decimals are dots is named as a decimal comma.
#[test]
fn a_rejection_names_the_quote_or_the_decimal_comma_that_broke_the_row() {
    let dir = tempfile::tempdir().unwrap();
    // Row 2 opens a quote in its note that closes two lines on, mid-text (`later" she said`):
    // RFC 4180 reads the lines between as one field, which leaves the record a field too many.
    let header = format!("{TELCO_HEADER},note");
    let mut csv = format!("{header}\n");
    csv.push_str(&format!("{},ok\n", row("C1", &[])));
    csv.push_str(&format!(
        "{},\"call back\ntomorrow, maybe\nlater\" she said,extra\n",
        row("C2", &[])
    ));
    csv.push_str(&format!("{},ok\n", row("C3", &[])));
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    assert_eq!(
        report["validation"]["balance"], "3 rows read = 2 scored + 1 rejected",
        "{report}"
    );
    let r = &report["validation"]["rejected_rows"][0];
    let reason = r["reason"].as_str().unwrap();
    assert_eq!(r["row"], 2, "{r}");
    assert!(
        reason.contains("the quote (\") that opens field 21 (column note) on line 3")
            && reason.contains("closed only on line 5"),
        "{reason}"
    );
    // The decimal comma, quoted so that it stays in one field.
    let mut csv = format!("{TELCO_HEADER}\n");
    csv.push_str(&format!("{}\n", row("M1", &[])));
    csv.push_str(&format!(
        "{}\n",
        row("M2", &[("MonthlyCharges", "\"29,85\"")])
    ));
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let r = &report["validation"]["rejected_rows"][0];
    assert_eq!(
        (r["row"].as_u64(), r["column"].as_str(), r["value"].as_str()),
        (Some(2), Some("MonthlyCharges"), Some("29,85")),
        "{r}"
    );
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("decimal comma, but this file writes decimals with '.'"),
        "{r}"
    );
}

/// Repeated customer ids inflate revenue at risk (each row is counted): the revenue note says
/// so with the count, never a silent inflated figure.
#[test]
fn repeated_ids_are_said_in_the_revenue_note() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n",
        row("R1", &[]),
        row("R2", &[]),
        row("R1", &[]),
        row("R1", &[])
    );
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let note = report["portfolio"]["revenue_note"]
        .as_str()
        .unwrap_or_default();
    assert!(
        note.contains("2 scored rows repeat an earlier row's customer id")
            && note.contains("counted more than once"),
        "{report}"
    );
    // A file without repeats has no such note.
    let csv = format!("{TELCO_HEADER}\n{}\n{}\n", row("R1", &[]), row("R2", &[]));
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    assert_eq!(report["portfolio"]["revenue_note"], Value::Null, "{report}");
}

/// The preview reads rows with the job's own reader and checks: a ghost row (`,,,,`) is
/// skipped by both, an unclosed quote and a decimal comma are rejected by both in the same
/// words, and the rows shown are the rows the job reads.
#[tokio::test]
async fn the_preview_says_of_each_row_what_the_job_says() {
    let t = TestApp::spawn().await;
    let mut csv = format!("{TELCO_HEADER}\n{}\n", row("P1", &[]));
    csv.push_str(&",".repeat(19));
    csv.push('\n');
    csv.push_str(&format!("{}\n", row("P3", &[("gender", "\"Male")])));
    csv.push_str(&format!("{}\n", row("P4", &[])));
    csv.push_str(&format!(
        "{}\n",
        row("P5", &[("MonthlyCharges", "\"29,85\"")])
    ));
    csv.push_str(&format!("{}\n", row("P6", &[("tenure", "")])));
    let (status, body) = crate::mapping::preview(&t, &csv, None).await;
    assert_eq!(status, 200, "{body}");
    let p = &body["preview"];
    assert_eq!(p["rows_skipped_empty"], 1, "{p}");
    let shown: Vec<u64> = p["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(shown, [1, 3, 4, 5, 6], "{p}");
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let v = &report["validation"];
    assert_eq!(v["rows_skipped_empty"], 1, "{v}");
    let rejected = v["rejected_rows"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{v}");
    for r in p["rows"].as_array().unwrap() {
        let job = rejected.iter().find(|j| j["row"] == r["row"]);
        match job {
            Some(j) => assert_eq!(
                r["problem"].as_str().unwrap_or_default(),
                format!("rejected: {}", j["reason"].as_str().unwrap()),
                "{r}"
            ),
            None => assert_eq!(r["problem"], Value::Null, "{r}"),
        }
    }
    // The job's remark on a scored row's blank cell is in the preview too.
    let p6 = &p["rows"][4];
    let warned = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["row"] == 6)
        .cloned()
        .unwrap();
    assert_eq!(p6["warnings"][0], warned, "{p6}");
}

/// A cell whose bytes are not valid in the file's encoding (a stray windows-1252 byte in a
/// UTF-8 file) is listed with its row, column, the bytes escaped and the text read, like every
/// other value not used as given; counted as before.
#[test]
fn every_cell_read_as_windows_1252_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = format!("{TELCO_HEADER}\n").into_bytes();
    for i in 1..=6 {
        file.extend_from_slice(row(&format!("Zoë{i}"), &[]).as_bytes());
        file.push(b'\n');
    }
    file.extend_from_slice(row("M\u{1}ller", &[]).replace('\u{1}', "\u{0}").as_bytes());
    let at = file.iter().rposition(|b| *b == 0).unwrap();
    file[at] = 0xfc;
    file.push(b'\n');
    let input = dir.path().join("in.csv");
    std::fs::write(&input, &file).unwrap();
    let (out, report) = (dir.path().join("out.csv"), dir.path().join("r.json"));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let v = &report["validation"];
    assert_eq!(v["encoding"], "UTF-8", "{v}");
    assert_eq!(v["cells_read_as_windows_1252"], 1, "{v}");
    let w = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["row"] == 7)
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(w["column"], "customerID", "{w}");
    assert_eq!(w["value"], "M\\xfcller", "{w}");
    assert_eq!(w["used_instead"], "Müller", "{w}");
    assert!(
        w["reason"].as_str().unwrap().contains("windows-1252"),
        "{w}"
    );
}

/// A converted value is shown rounded in explanations (`13.14` months from 400 days, not
/// `13.141953633544837`); the probabilities stay exact to their six decimals.
#[test]
fn converted_values_are_shown_rounded_in_explanations() {
    let dir = tempfile::tempdir().unwrap();
    let header = TELCO_HEADER.replace(",tenure,", ",tenure_days,");
    let mut csv = format!("{header}\n");
    for i in 1..=4 {
        csv.push_str(&row(&format!("B{i}"), &[("tenure", "400")]));
        csv.push('\n');
    }
    let (ok, results, _, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    assert!(!results.contains("13.1419"), "{results}");
    let (h, rows) = parse_csv(&results);
    let mut seen = false;
    for r in &rows {
        for c in ["risk_factors", "protective_factors"] {
            let factors: Vec<Value> = serde_json::from_str(&r[column(&h, c)]).unwrap();
            for f in factors.iter().filter(|f| f["feature"] == "tenure") {
                assert_eq!(f["value"], "13.14", "{f}");
                seen = true;
            }
        }
        assert!(
            r[column(&h, "churn_probability")]
                .split('.')
                .nth(1)
                .unwrap()
                .len()
                == 6
        );
    }
    assert!(seen, "tenure is among the factors: {results}");
}

/// A 99 KB quoted note in a column the model does not read is accepted (the file is scored,
/// every row of it), while the same length in an input the model reads still refuses the file
/// naming the row and column, and a record past the reader's bound (64 × the field limit) is
/// refused naming its row: memory stays bounded.
#[test]
fn a_long_note_in_an_ignored_column_does_not_refuse_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let note = "x".repeat(99 * 1024);
    let mut csv = format!("{TELCO_HEADER},note\n");
    for i in 1..=3 {
        let n = if i == 2 {
            format!("\"{note}, more\"")
        } else {
            "ok".into()
        };
        csv.push_str(&format!("{},{n}\n", row(&format!("L{i}"), &[])));
    }
    let (ok, results, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    assert_eq!(
        report["validation"]["balance"], "3 rows read = 3 scored + 0 rejected",
        "{report}"
    );
    assert_eq!(parse_csv(&results).1.len(), 3);

    let csv = format!(
        "{TELCO_HEADER}\n{}\n",
        row("L1", &[("PaymentMethod", &format!("\"{note}\""))])
    );
    let (ok, _, _, stderr) = predict(dir.path(), &csv);
    assert!(!ok);
    assert!(
        stderr.contains("row 1") && stderr.contains("PaymentMethod"),
        "{stderr}"
    );

    let huge = "y".repeat(5 << 20);
    let csv = format!("{TELCO_HEADER},note\n{},\"{huge}\"\n", row("L1", &[]));
    let (ok, _, _, stderr) = predict(dir.path(), &csv);
    assert!(!ok);
    assert!(
        stderr.contains("row 1") || stderr.contains("line 2"),
        "{stderr}"
    );
}

/// Training takes its reference date by scoring's rule: one mistyped late date among 300 does
/// not become the reference; the card and `retainwise train` say where the date came from.
#[test]
fn training_takes_the_reference_date_by_scorings_rule_and_says_where_from() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("account_id,plan,signup_date,churned\n");
    for i in 0..300 {
        let date = if i == 7 {
            "2026-06-01".to_owned()
        } else {
            format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1)
        };
        let churned = if i % 3 == 0 { "Yes" } else { "No" };
        let plan = ["basic", "pro"][i % 2];
        csv.push_str(&format!("A{i},{plan},{date},{churned}\n"));
    }
    let history = dir.path().join("h.csv");
    std::fs::write(&history, csv).unwrap();
    let model = dir.path().join("m.json");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .args([
            "train",
            history.to_str().unwrap(),
            "--label",
            "churned",
            "--id",
            "account_id",
            "-o",
        ])
        .arg(&model)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("reference  2024-12-28"), "{out}");
    assert!(
        out.contains("taken from the latest date in the file, 2024-12-28")
            && out.contains("2026-06-01 (data row 8, column signup_date)"),
        "{out}"
    );
    let artifact: Value = serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
    let card = artifact.get("card").unwrap_or(&artifact);
    assert_eq!(card["reference_date"], "2024-12-28", "{card}");
    assert!(
        card["reference_date_source"]
            .as_str()
            .unwrap_or_default()
            .contains("passed over"),
        "{card}"
    );
}
