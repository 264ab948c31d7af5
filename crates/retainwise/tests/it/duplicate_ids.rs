//! A customer id on more than one row gets a warning naming the id and both
//! rows (and a count), through `retainwise predict` and HTTP; both rows are still scored.

use retainwise::worker::Outcome;
use serde_json::Value;

use crate::helpers::*;
use crate::mapping::{predict, telco_row};

/// Rows 1 and 3 share id `A-1`, rows 2 and 4 and 5 share `B-2`; row 6 is alone.
fn file() -> String {
    let mut csv = format!("{TELCO_HEADER}\n");
    for id in ["A-1", "B-2", "A-1", "B-2", "B-2", "C-3"] {
        csv.push_str(&telco_row(id, &[]));
        csv.push('\n');
    }
    csv
}

/// The warnings about repeated ids in a report, as (row, text).
fn repeats(report: &Value) -> Vec<(u64, String)> {
    report["validation"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["reason"].as_str().unwrap().contains("is also on row"))
        .map(|w| {
            (
                w["row"].as_u64().unwrap(),
                w["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check(report: &Value, what: &str) {
    assert_eq!(report["validation"]["duplicate_ids"], 3, "{what}: {report}");
    let r = repeats(report);
    assert_eq!(
        r.iter().map(|(row, _)| *row).collect::<Vec<_>>(),
        [3, 4, 5],
        "{what}"
    );
    assert!(r[0].1.contains("\"A-1\" is also on row 1"), "{what}: {r:?}");
    assert!(r[1].1.contains("\"B-2\" is also on row 2"), "{what}: {r:?}");
    assert!(r[2].1.contains("\"B-2\" is also on row 2"), "{what}: {r:?}");
}

#[tokio::test]
async fn a_repeated_customer_id_is_warned_naming_both_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, err) = predict(dir.path(), &file());
    assert!(ok, "{err}");
    assert_eq!(parse_csv(&results).1.len(), 6, "every row is still scored");
    check(&report, "predict");
    assert!(err.contains("3 row(s) repeat the customer id"), "{err}");
    assert!(err.contains("\"A-1\" is also on row 1"), "{err}");

    let t = TestApp::spawn().await;
    let id = t.upload_ok("repeats.csv", file().into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let stored: Value = t
        .get(&format!("/api/predictions/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    check(stored.get("report").unwrap_or(&stored), "HTTP report");
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("3 rows repeat the customer id of an earlier row"),
        "the dashboard says so"
    );
}
