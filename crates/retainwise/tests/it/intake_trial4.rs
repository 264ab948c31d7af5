//! What the fourth fresh-user trial found, one class per test: a stray quote that swallows rows
//! one field shorter than their header (a trailing comma in the header) found out like any
//! other unclosed quote, so no customer goes missing in silence.

use serde_json::Value;

use crate::helpers::*;
use crate::mapping::{predict, telco_row as row};

/// Twenty Telco rows with a Churn column; the third opens a quote in its gender that never
/// closes, the twelfth has a properly quoted payment method. `trailing` ends the header (only)
/// with a comma, as spreadsheets export it: 22 header fields over rows of 21.
fn stray_quote_file(trailing: bool) -> String {
    let mut csv = format!("{TELCO_HEADER},Churn{}\n", if trailing { "," } else { "" });
    for i in 1..=20 {
        let over: &[(&str, &str)] = match i {
            3 => &[("gender", "\"Male")],
            12 => &[("PaymentMethod", "\"Mailed check\"")],
            _ => &[],
        };
        csv.push_str(&format!("{},No\n", row(&format!("Q{i}"), over)));
    }
    csv
}

/// Whatever the header's width, the row whose quote never closes is rejected naming the quote
/// and the line it opens on, and every row it would have swallowed is scored: rows in = scored
/// + rejected. A legitimate quoted note across two lines stays one field of one customer.
#[test]
fn a_stray_quote_over_rows_one_field_short_of_the_header_loses_no_customer() {
    for trailing in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (ok, results, report, stderr) = predict(dir.path(), &stray_quote_file(trailing));
        assert!(ok, "{stderr}");
        let v = &report["validation"];
        assert_eq!(v["balance"], "20 rows read = 19 scored + 1 rejected", "{v}");
        let issue = &v["rejected_rows"][0];
        assert_eq!(issue["row"], 3, "{issue}");
        let reason = issue["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("line 4") && reason.contains("never closed"),
            "{reason}"
        );
        let (_, rows) = parse_csv(&results);
        let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        let expected: Vec<String> = (1..=20)
            .filter(|i| *i != 3)
            .map(|i| format!("Q{i}"))
            .collect();
        assert_eq!(ids, expected, "trailing comma {trailing}");
    }
    // A quoted note across lines in a file whose header has a trailing comma: one field.
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "{TELCO_HEADER},note,\n{},\"called twice, no answer\nwill try again\"\n{},ok\n",
        row("N1", &[]),
        row("N2", &[]),
    );
    let (ok, results, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    assert_eq!(
        report["validation"]["balance"],
        Value::from("2 rows read = 2 scored + 0 rejected"),
        "{report}"
    );
    let (_, rows) = parse_csv(&results);
    assert_eq!(rows.len(), 2, "{results}");
}

/// One mistyped date far after the rest (2026-03-15 among 2025 dates) is not the file's
/// reference date: the reference is the latest of the rest, the report and `predict`'s output
/// say where it came from and which date was passed over, and the mistyped row is flagged.
#[test]
fn one_mistyped_late_date_does_not_shift_every_customer_and_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let model = crate::dates::train(dir.path());
    let mut csv = String::from("account_id,plan,signup_date,last_login\n");
    for i in 1..=30 {
        let signup = if i == 3 {
            "2026-03-15".to_owned()
        } else {
            format!("2023-01-{:02}", (i % 28) + 1)
        };
        csv.push_str(&format!(
            "D{i},monthly,{signup},2025-04-{:02}T09:00:00Z\n",
            (i % 17) + 1
        ));
    }
    let input = dir.path().join("in.csv");
    std::fs::write(&input, &csv).unwrap();
    let (out, report) = (dir.path().join("out.csv"), dir.path().join("report.json"));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .arg("predict")
        .arg(&input)
        .arg("--model")
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["reference_date"], "2025-04-17", "{report}");
    let source = report["reference_date_source"].as_str().unwrap_or_default();
    assert!(
        source.contains("2025-04-17 (data row 16, column last_login)")
            && source.contains("2026-03-15 (data row 3, column signup_date)"),
        "{source}"
    );
    assert!(
        stderr.contains("reference date taken from") && stderr.contains("2026-03-15"),
        "{stderr}"
    );
    let (header, rows) = parse_csv(&std::fs::read_to_string(&out).unwrap());
    let dq = column(&header, "data_quality");
    let flagged: Vec<&str> = rows
        .iter()
        .filter(|r| !r[dq].is_empty())
        .map(|r| r[0].as_str())
        .collect();
    assert_eq!(flagged, ["D3"], "{rows:?}");
}

/// The built-in SaaS baseline learnt nothing, yet an impossible value (a negative count, days
/// or spend) or one far beyond the scale its rules were written for is flagged like a trained
/// model's out-of-range value, and a flagged spend is left out of revenue at risk.
#[test]
fn the_saas_baseline_flags_impossible_values_and_keeps_them_out_of_revenue() {
    let mut csv =
        "customer_id,days_subscribed,monthly_spend,usage_score,tickets,days_since_last_login\n"
            .to_owned();
    let rows = [
        ("OK1", "400", "90.00", "50", "1", "5"),
        ("OK2", "800", "120.00", "70", "0", "12"),
        ("NEGDAYS", "-300", "90.00", "50", "1", "5"),
        ("HUGE", "400", "1e9", "50", "1", "5"),
        ("NEGSPEND", "400", "-500", "50", "1", "5"),
        ("USAGE", "400", "90.00", "250", "1", "5"),
        ("TICKETS", "400", "90.00", "50", "-4", "5"),
        ("LOGIN", "400", "90.00", "50", "1", "-30"),
    ];
    for (id, days, spend, usage, tickets, login) in rows {
        csv.push_str(&format!("{id},{days},{spend},{usage},{tickets},{login}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    assert!(
        report["model_id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("saas-baseline"),
        "{report}"
    );
    let (header, out) = parse_csv(&results);
    let dq = column(&header, "data_quality");
    let flagged: Vec<&str> = out
        .iter()
        .filter(|r| r[dq].contains("outside training range"))
        .map(|r| r[0].as_str())
        .collect();
    assert_eq!(
        flagged,
        ["NEGDAYS", "HUGE", "NEGSPEND", "USAGE", "TICKETS", "LOGIN"],
        "{results}"
    );
    let portfolio = &report["portfolio"];
    let at_risk = portfolio["revenue_at_risk"].as_f64().unwrap();
    assert!(at_risk < 1_000.0, "{portfolio}");
    // The note names each left-out value short, in words that agree with the count.
    let note = portfolio["revenue_note"].as_str().unwrap_or_default();
    assert!(
        note.contains("2 customers are left out of revenue at risk because their mrr")
            && note.contains("\"HUGE\" (1000000000)")
            && note.contains("\"NEGSPEND\" (-500)"),
        "{note}"
    );
}

/// A UTF-8 file with one stray windows-1252 byte (a curly quote, 0x93) among accented ids is
/// read as UTF-8: every accented id stays as written, and only the cell with the stray byte is
/// read as windows-1252 (counted in the report).
#[test]
fn a_stray_windows_1252_byte_does_not_garble_every_accented_id() {
    let mut csv = format!("{TELCO_HEADER}\n").into_bytes();
    for i in 1..=20 {
        csv.extend_from_slice(format!("{}\n", row(&format!("Zoë-{i}"), &[])).as_bytes());
    }
    // The stray byte itself (0x93 alone is not UTF-8), put where the \u{1} is.
    csv.extend_from_slice(row("Q\u{1}X", &[]).as_bytes());
    let csv: Vec<u8> = csv
        .into_iter()
        .map(|b| if b == 1 { 0x93 } else { b })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, &csv).unwrap();
    let (out, report) = (dir.path().join("out.csv"), dir.path().join("report.json"));
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
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["validation"]["encoding"], "UTF-8", "{report}");
    assert_eq!(
        report["validation"]["cells_read_as_windows_1252"], 1,
        "{report}"
    );
    let (_, rows) = parse_csv(&std::fs::read_to_string(&out).unwrap());
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids[0], "Zoë-1");
    assert_eq!(ids[20], "Q\u{201c}X");
}
