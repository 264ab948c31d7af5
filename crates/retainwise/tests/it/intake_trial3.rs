//! What the third fresh-user trial found, one class per test: the header named as the header
//! in messages (never "data row 0").

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
