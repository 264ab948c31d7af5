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
